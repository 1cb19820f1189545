"""The embedded default dataset: a small, deterministic, SYNTHETIC two-domain world with real signal in every modality.

It exists so that a fresh clone can run every notebook in minutes with no network, and so that each part of LLM-EMF
has something to find. It is not Amazon data, and everything it writes says "synthetic".

The generative story (notebook 01 tells it too):
1. A pair has `n_themes` themes shared by both domains (e.g. "italian" in food *and* in kitchen) and `n_styles`
   visual styles. Every item has one theme, one style and a popularity (log-normal).
2. An item's **title** is built from real English words of its theme ("Northwind Organic Basil Pesto"): text
   reveals the theme and says nothing of the style. Its **image** is a small PNG whose colour and shape are its
   style's (with jitter): the image reveals the style and says nothing of the theme.
3. A user prefers one style (for life) and one theme that drifts: at each step it jumps to another theme with
   probability `theme_drift`. The next item's domain is drawn from the user's domain mix; the item is drawn within
   that domain with weight popularity * exp(theme_boost * same_theme + style_boost * same_style). Because the theme
   is shared by both domains and drifts, the most recent items of *either* domain tell the next item's theme: this
   is the cross-domain signal that a per-domain model cannot see.
4. A `cold_share` of items never occurs in training sequences, only in held-out users' histories and targets: their
   ID embeddings cannot be learned, so only text and image can rank them.
5. Some training users are single-domain (as in the LLMCDSR release); valid and test users are held out from
   training, and the last item of their mixed sequence is the target.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..pairs import DomainPair, get_pair
from .dataset import CrossDomainDataset, dataset_card

# Theme vocabularies per pair: theme -> (words of domain X, words of domain Y). Real English words that a text
# encoder can relate; the theme is what a user's taste is about.
THEMES: dict[str, dict[str, tuple[list[str], list[str]]]] = {
    "food_kitchen": {
        "italian": (["Basil Pesto", "Parmesan", "Penne Pasta", "Marinara Sauce", "Olive Oil", "Risotto Rice"],
                    ["Pasta Maker", "Pizza Stone", "Garlic Press", "Ravioli Cutter", "Cheese Grater", "Pizza Peel"]),
        "baking": (["Bread Flour", "Vanilla Extract", "Cocoa Powder", "Baking Yeast", "Sprinkles", "Brown Sugar"],
                   ["Mixing Bowl", "Cake Pan", "Rolling Pin", "Balloon Whisk", "Cookie Sheet", "Muffin Tin"]),
        "coffee": (["Espresso Beans", "Dark Roast Coffee", "Green Tea", "Chai Tea", "Cold Brew Coffee", "Matcha"],
                   ["French Press", "Coffee Grinder", "Tea Kettle", "Espresso Machine", "Pour Over Dripper",
                    "Travel Mug"]),
        "asian": (["Soy Sauce", "Ramen Noodles", "Miso Paste", "Sriracha", "Jasmine Rice", "Curry Paste"],
                  ["Carbon Steel Wok", "Rice Cooker", "Bamboo Steamer", "Chopsticks", "Sushi Mat", "Cleaver"]),
        "grill": (["BBQ Sauce", "Smoked Paprika", "Beef Jerky", "Hickory Rub", "Hot Sauce", "Steak Marinade"],
                  ["Grill Brush", "Meat Thermometer", "Smoker Box", "Basting Brush", "Cast Iron Skillet",
                   "Grill Tongs"]),
        "healthy": (["Quinoa", "Raw Almonds", "Protein Bar", "Chia Seeds", "Granola", "Oat Milk"],
                    ["Blender", "Juicer", "Salad Spinner", "Meal Prep Containers", "Food Scale", "Spiralizer"]),
    },
    "movie_book": {
        "science fiction": (["Starship", "Galaxy Wars", "Android Dreams", "Mars Colony", "Time Machine", "Alien"],
                            ["Robots of Tomorrow", "The Space Station", "Quantum Voyage", "Orbit", "Starlight",
                             "The Last Astronaut"]),
        "romance": (["Love Letters", "Wedding Season", "Summer Kiss", "First Date", "Paris in Spring",
                     "Sweetheart"], ["The Proposal", "Hearts Entwined", "A Kiss at Midnight", "Love in Tuscany",
                                     "The Bride", "Forever Yours"]),
        "horror": (["Haunted House", "The Zombie Night", "Vampire Blood", "The Curse", "Nightmare", "The Ghost"],
                   ["The Haunting", "Graveyard Tales", "The Possession", "Demon Woods", "Bloodlines",
                    "The Crypt"]),
        "mystery": (["The Detective", "Murder at Midnight", "The Heist", "Crime Scene", "The Suspect",
                     "Cold Case"], ["The Locked Room", "A Clue in the Fog", "The Missing Heir", "Poison Pen",
                                    "The Inspector", "Alibi"]),
        "western": (["Gunfight", "The Outlaw", "Desert Sheriff", "Wild Frontier", "Cattle Drive", "The Ranger"],
                    ["Prairie Wind", "The Gunslinger", "Dust and Spurs", "The Homestead", "Frontier Justice",
                     "Saddle Up"]),
        "fantasy": (["Dragon Quest", "The Wizard", "Elven Kingdom", "Sword and Sorcery", "The Enchanted Forest",
                     "Magic Ring"], ["The Dragon's Hoard", "Spellbound", "The Dark Lord", "Realm of Elves",
                                     "The Sorceress", "Crown of Fire"]),
    },
}
BRANDS = ["Northwind", "Bluebird", "Golden Valley", "Silver Oak", "Redwood", "Summit", "Harbor", "Meadow Lane",
          "Stonebridge", "Cedar & Co", "Brightside", "Evergreen"]
ADJECTIVES = ["Classic", "Premium", "Organic", "Deluxe", "Everyday", "Artisan", "Original", "Signature"]
MEDIA = {"movie": ["(DVD)", "(Blu-ray)", "- Special Edition", "- Director's Cut"],
         "book": ["- A Novel", "(Paperback)", "(Hardcover)", "- Book One"]}
# Styles: (name, RGB colour, shape). The image shows its item's style, nothing else.
STYLES = [("crimson circle", (200, 40, 50), "circle"), ("ocean square", (40, 90, 200), "square"),
          ("forest triangle", (40, 160, 70), "triangle"), ("sunny diamond", (230, 190, 40), "diamond")]


@dataclass(frozen=True)
class SyntheticConfig:
    items_per_domain: int = 1200      # >= 1000 so the paper's 999 sampled negatives fit in each domain
    n_styles: int = 4
    n_train_users: int = 2500      # small enough that every notebook trains in minutes on 2 CPU cores
    single_domain_share: float = 0.3  # of training users, split evenly between X-only and Y-only
    n_valid_users: int = 400
    n_test_users: int = 400
    min_length: int = 6
    max_length: int = 20
    theme_drift: float = 0.15
    theme_boost: float = 3.0
    style_boost: float = 2.0
    cold_share: float = 0.2
    image_size: int = 32
    seed: int = 0

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def _titles(pair: DomainPair, domain_index: int, themes: np.ndarray, rng: np.random.Generator) -> list[str]:
    names = list(THEMES[pair.name])
    domain = pair.domains[domain_index]
    titles, seen = [], set()
    for t in themes:
        words = THEMES[pair.name][names[t]][domain_index]
        for _ in range(100):  # unique titles, so two items never share a text
            if domain in MEDIA:
                title = f"{rng.choice(words)} {rng.integers(2, 9)} {rng.choice(MEDIA[domain])}"
            else:
                title = f"{rng.choice(BRANDS)} {rng.choice(ADJECTIVES)} {rng.choice(words)}"
                title += f", {int(rng.choice([6, 8, 12, 16, 24, 32]))} oz" if domain_index == 0 else ""
            if title not in seen:
                break
            title = f"{title} #{len(seen)}"
        seen.add(title)
        titles.append(title)
    return titles


def draw_item_image(style: int, size: int, rng: np.random.Generator):
    """A small product picture: a style-coloured shape on a pale background, with jitter in colour and geometry."""
    from PIL import Image, ImageDraw

    _, colour, shape = STYLES[style]
    background = tuple(int(c) for c in rng.integers(215, 256, size=3))
    img = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(img)
    fill = tuple(int(np.clip(c + rng.normal(0, 18), 0, 255)) for c in colour)
    r = size * rng.uniform(0.25, 0.4)
    cx, cy = size / 2 + rng.uniform(-size / 8, size / 8, size=2)
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)
    return img


def _sample_sequence(rng, length, p_x, theme0, style, item_theme, item_style, item_logpop, cfg, n_themes, allowed):
    """One user's chronological sequence of global item ids (see the module docstring, step 3)."""
    theme, seq = theme0, []
    for _ in range(length):
        if rng.random() < cfg.theme_drift:
            theme = int(rng.integers(n_themes))
        d = 0 if rng.random() < p_x else 1
        logits = item_logpop[d] + cfg.theme_boost * (item_theme[d] == theme) + cfg.style_boost * (item_style[d] == style)
        logits = np.where(allowed[d], logits, -np.inf)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        seq.append(int(rng.choice(len(p), p=p)) + d * cfg.items_per_domain)
    return seq


def generate_synthetic(domain_pair: str = "food_kitchen", config: SyntheticConfig = SyntheticConfig(),
                       image_dir: str | Path | None = None) -> CrossDomainDataset:
    """Generate the synthetic world; if `image_dir` is given, write one PNG per item there (paths relative to its
    parent folder, the dataset folder). Same config, same output, bit for bit."""
    pair = get_pair(domain_pair)
    if pair.name not in THEMES:
        raise ValueError(f"the synthetic world has vocabularies for {sorted(THEMES)}, not {pair.name!r}")
    cfg, rng = config, np.random.default_rng(config.seed)
    n, n_themes = cfg.items_per_domain, len(THEMES[pair.name])
    item_theme = [rng.integers(n_themes, size=n) for _ in range(2)]
    item_style = [rng.integers(cfg.n_styles, size=n) for _ in range(2)]
    item_logpop = [rng.normal(0.0, 1.0, size=n) for _ in range(2)]
    cold = [rng.random(n) < cfg.cold_share for _ in range(2)]

    titles = _titles(pair, 0, item_theme[0], rng) + _titles(pair, 1, item_theme[1], rng)
    theme_names = list(THEMES[pair.name])
    rows = []
    for d in range(2):
        for i in range(n):
            gid = d * n + i
            rows.append((gid, pair.domains[d], f"SYN-{pair.domains[d][:1].upper()}{i:05d}", titles[gid],
                         f"synthetic {pair.domains[d]} item; theme {theme_names[item_theme[d][i]]}, "
                         f"style {STYLES[item_style[d][i]][0]}", None))
    items = pd.DataFrame(rows, columns=["item_id", "domain", "source_id", "title", "description", "image"])
    items["theme"] = np.concatenate(item_theme)     # ground truth, kept for the notebook's story and the tests
    items["style"] = np.concatenate(item_style)
    items["cold"] = np.concatenate(cold)

    if image_dir is not None:
        image_dir = Path(image_dir)
        image_dir.mkdir(parents=True, exist_ok=True)
        img_rng = np.random.default_rng(cfg.seed + 1)
        paths = []
        for gid, style in enumerate(items["style"]):
            path = image_dir / f"{gid:06d}.png"
            draw_item_image(int(style), cfg.image_size, img_rng).save(path, optimize=False)
            paths.append(f"{image_dir.name}/{path.name}")
        items["image"] = paths

    warm = [~c for c in cold]
    everything = [np.ones(n, dtype=bool)] * 2
    n_single = int(cfg.n_train_users * cfg.single_domain_share)
    seq_rows = []
    users = ([("train", "mixed")] * (cfg.n_train_users - n_single) + [("train", "single_x")] * (n_single // 2)
             + [("train", "single_y")] * (n_single - n_single // 2)
             + [("valid", "mixed")] * cfg.n_valid_users + [("test", "mixed")] * cfg.n_test_users)
    for u, (split, kind) in enumerate(users):
        p_x = {"mixed": rng.uniform(0.3, 0.7), "single_x": 1.0, "single_y": 0.0}[kind]
        length = int(rng.integers(cfg.min_length, cfg.max_length + 1))
        seq = _sample_sequence(rng, length, p_x, int(rng.integers(n_themes)), int(rng.integers(cfg.n_styles)),
                               item_theme, item_style, item_logpop, cfg, n_themes,
                               warm if split == "train" else everything)
        seq_rows.append((f"syn{u:05d}", split, kind, np.asarray(seq, dtype=np.int64), None))
    sequences = pd.DataFrame(seq_rows, columns=["user", "split", "kind", "items", "timestamps"])

    ds = CrossDomainDataset(pair, items, sequences)
    ds.card = dataset_card(ds, source="synthetic", synthetic=True, provenance={
        "format": "synthetic", "generator": "llmemf_lite.data.synthetic.generate_synthetic",
        "config": asdict(cfg), "note": "SYNTHETIC data generated by this package; not Amazon data",
        "split_protocol": "held-out users: valid/test users are unseen in training; their last item is the target"})
    return ds
