"""The canonical cross-domain dataset: the one on-disk form that every importer writes and everything downstream reads.

What this file is: the table layouts, the item-id convention, saving/loading with validation, and the dataset card.
What it is not: any importer (see `llmcdsr.py`, `synthetic.py`) or any model-side batching.

Layout of a dataset folder:
    items.parquet      item_id (int, global), domain (str), source_id (str, e.g. an ASIN), title (str|null),
                       description (str|null), image (str|null: a path relative to the folder, or a URL)
    sequences.parquet  user (str), split ("train"|"valid"|"test"), kind ("mixed"|"single_x"|"single_y"),
                       items (list<int>), timestamps (list<int>|null)
    card.json          statistics and provenance (`dataset_card`)

The id convention (one source of truth, `ItemSpace`): domain X items have global ids 0..n_x-1, domain Y items
n_x..n_x+n_y-1. This is the LLMCDSR release's convention ("domain-B ids are offset by the A count").

An evaluation case (a valid or test row) is a chronological sequence whose last item is the target and whose other
items are the history; `history_and_target` is the only place that rule is spelt out. A training row is a whole
chronological sequence.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..pairs import DomainPair, get_pair
from .errors import DataFormatError

SPLITS = ("train", "valid", "test")
KINDS = ("mixed", "single_x", "single_y")
ITEM_COLUMNS = ("item_id", "domain", "source_id", "title", "description", "image")
SEQUENCE_COLUMNS = ("user", "split", "kind", "items", "timestamps")


@dataclass(frozen=True)
class ItemSpace:
    """Global item ids of a domain pair: X in [0, n_x), Y in [n_x, n_x + n_y)."""
    n_x: int
    n_y: int

    @property
    def n_items(self) -> int:
        return self.n_x + self.n_y

    def domain_of(self, item_ids) -> np.ndarray:
        """0 for domain X, 1 for domain Y, elementwise."""
        return (np.asarray(item_ids) >= self.n_x).astype(np.int64)

    def domain_range(self, domain: int) -> range:
        return range(0, self.n_x) if domain == 0 else range(self.n_x, self.n_items)


def history_and_target(sequence) -> tuple[np.ndarray, int]:
    """Split an evaluation row into (history, target): the target is the last item."""
    seq = np.asarray(sequence)
    return seq[:-1], int(seq[-1])


@dataclass
class CrossDomainDataset:
    pair: DomainPair
    items: pd.DataFrame
    sequences: pd.DataFrame
    card: dict = field(default_factory=dict)
    folder: Path | None = None  # where it was loaded from; relative image paths are taken from here

    @property
    def space(self) -> ItemSpace:
        n_x = int((self.items["domain"] == self.pair.x).sum())
        return ItemSpace(n_x, len(self.items) - n_x)

    def split(self, name: str, kind: str | None = None) -> pd.DataFrame:
        rows = self.sequences[self.sequences["split"] == name]
        return rows if kind is None else rows[rows["kind"] == kind]

    def image_location(self, item_id: int) -> str | None:
        """The item's image as an absolute path or a URL; None when the item has no image."""
        image = self.items["image"].iat[item_id]
        if image is None or (isinstance(image, float) and np.isnan(image)) or image == "":
            return None
        if "://" in image or Path(image).is_absolute() or self.folder is None:
            return image
        return str(self.folder / image)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        validate(self)
        self.items.to_parquet(folder / "items.parquet", index=False)
        self.sequences.to_parquet(folder / "sequences.parquet", index=False)
        (folder / "card.json").write_text(json.dumps(self.card, indent=2, default=_json_default) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "CrossDomainDataset":
        folder = Path(folder)
        for name in ("items.parquet", "sequences.parquet", "card.json"):
            if not (folder / name).is_file():
                raise DataFormatError(folder / name, "file not found", expected="a canonical dataset folder")
        card = json.loads((folder / "card.json").read_text())
        ds = cls(get_pair(card["domain_pair"]), pd.read_parquet(folder / "items.parquet"),
                 pd.read_parquet(folder / "sequences.parquet"), card, folder)
        ds.sequences["items"] = ds.sequences["items"].map(lambda a: np.asarray(a, dtype=np.int64))
        validate(ds)
        return ds


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def validate(ds: CrossDomainDataset) -> None:
    """Check the invariants every consumer relies on; raise ValueError naming the first one broken."""
    items, seqs = ds.items, ds.sequences
    missing = [c for c in ITEM_COLUMNS if c not in items.columns]
    missing += [c for c in SEQUENCE_COLUMNS if c not in seqs.columns]
    if missing:
        raise ValueError(f"dataset lacks columns {missing}")
    if not np.array_equal(items["item_id"].to_numpy(), np.arange(len(items))):
        raise ValueError("items.item_id must be 0..n_items-1 in order")
    space = ds.space
    dom = items["domain"].to_numpy()
    if not ((dom[:space.n_x] == ds.pair.x).all() and (dom[space.n_x:] == ds.pair.y).all()):
        raise ValueError(f"domain {ds.pair.x!r} items must come first, then {ds.pair.y!r} (the id convention)")
    bad = set(seqs["split"]) - set(SPLITS) | set(seqs["kind"]) - set(KINDS)
    if bad:
        raise ValueError(f"unknown split/kind values {sorted(bad)}")
    lengths = seqs["items"].map(len).to_numpy()
    if (lengths < 2).any():
        raise ValueError(f"{int((lengths < 2).sum())} sequences have fewer than 2 items")
    flat = np.concatenate(seqs["items"].to_list()) if len(seqs) else np.zeros(0, dtype=np.int64)
    if len(flat) and (flat.min() < 0 or flat.max() >= space.n_items):
        raise ValueError(f"item ids outside [0, {space.n_items})")


def _describe_lengths(lengths: np.ndarray) -> dict:
    if len(lengths) == 0:
        return {"count": 0}
    return {"count": int(len(lengths)), "mean": round(float(lengths.mean()), 3), "median": float(np.median(lengths)),
            "min": int(lengths.min()), "max": int(lengths.max())}



def items_in_training(train_sequences, n_items: int) -> np.ndarray:
    """[n_items] bool: the item occurs in a training sequence (a *warm* item, whose ID embedding is trained); False:
    a *cold* item, which only its content channels know. The one definition of warm and cold in the project."""
    warm = np.zeros(n_items, bool)
    if len(train_sequences):
        warm[np.concatenate([np.asarray(s, dtype=np.int64) for s in train_sequences])] = True
    return warm

def dataset_card(ds: CrossDomainDataset, *, source: str, synthetic: bool, provenance: dict,
                 skipped: dict | None = None, absent: dict | None = None) -> dict:
    """Statistics and provenance of a dataset, as stored in card.json and shown by notebook 01. `absent`: input
    files of a partial release that are not there, each {"consequence": sentence, "short": the table's text}."""
    space, seqs, items = ds.space, ds.sequences, ds.items
    card: dict = {"domain_pair": ds.pair.name, "domains": list(ds.pair.domains), "source": source,
                  "synthetic": synthetic, "provenance": provenance,
                  "items": {ds.pair.x: space.n_x, ds.pair.y: space.n_y, "total": space.n_items}}
    card["sequences"] = {s: {k: int(((seqs["split"] == s) & (seqs["kind"] == k)).sum()) for k in KINDS}
                         for s in SPLITS}
    card["users"] = {s: int(seqs.loc[seqs["split"] == s, "user"].nunique()) for s in SPLITS}
    card["interactions"] = {s: int(seqs.loc[seqs["split"] == s, "items"].map(len).sum()) for s in SPLITS}
    train = seqs[seqs["split"] == "train"]
    n_users = max(card["users"]["train"], 1)
    card["sparsity_train"] = round(1.0 - card["interactions"]["train"] / (n_users * space.n_items), 6)
    # Per-domain lengths: how many items of each domain a sequence holds (mixed and single-domain rows together).
    per_domain = {}
    for d, name in enumerate(ds.pair.domains):
        counts = seqs["items"].map(lambda a: int((space.domain_of(a) == d).sum())).to_numpy()
        per_domain[name] = _describe_lengths(counts[counts > 0])
    card["sequence_length_per_domain"] = per_domain
    card["sequence_length"] = {s: _describe_lengths(seqs.loc[seqs["split"] == s, "items"].map(len).to_numpy())
                               for s in SPLITS}
    card["cross_domain_transition_share"] = round(cross_domain_transition_share(
        seqs.loc[seqs["kind"] == "mixed", "items"], space), 4)
    in_train = items_in_training(train["items"].to_list(), space.n_items)
    card["items_in_train"] = {ds.pair.x: int(in_train[:space.n_x].sum()), ds.pair.y: int(in_train[space.n_x:].sum())}
    targets, cold = {}, {}
    for s in ("valid", "test"):
        last = np.array([int(a[-1]) for a in seqs.loc[seqs["split"] == s, "items"]], dtype=np.int64)
        dom = space.domain_of(last)
        targets[s] = {ds.pair.x: int((dom == 0).sum()), ds.pair.y: int((dom == 1).sum())}
        cold[s] = {name: int(((dom == d) & ~in_train[last]).sum()) for d, name in enumerate(ds.pair.domains)}
    card["eval_targets"] = targets
    card["eval_targets_cold"] = cold
    has_title = items["title"].fillna("").str.strip().str.len() > 0
    has_image = items["image"].notna()
    card["coverage"] = {f"titles_{n}": round(float(has_title[items["domain"] == n].mean()), 4) for n in ds.pair.domains}
    card["coverage"].update({f"images_{n}": round(float(has_image[items["domain"] == n].mean()), 4)
                             for n in ds.pair.domains})
    card["skipped"] = skipped or {}
    card["absent_files"] = absent or {}
    return card


def cross_domain_transition_share(sequences, space: ItemSpace) -> float:
    """Share of consecutive item pairs in the given sequences whose two items lie in different domains."""
    crossings = pairs = 0
    for seq in sequences:
        dom = space.domain_of(seq)
        crossings += int((dom[1:] != dom[:-1]).sum())
        pairs += max(len(dom) - 1, 0)
    return crossings / pairs if pairs else 0.0


def card_table(card: dict) -> "pd.DataFrame":
    """The dataset card as a two-column table (statistic, value) for notebooks and the README."""
    x, y = card["domains"]
    rows = [("source", card["source"] + (" (SYNTHETIC)" if card["synthetic"] else "")),
            (f"items {x}", card["items"][x]), (f"items {y}", card["items"][y])]
    for s in SPLITS:
        rows.append((f"users {s}", card["users"][s]))
        rows.append((f"interactions {s}", card["interactions"][s]))
    for s in SPLITS:
        for k, v in card["sequences"][s].items():
            if v:
                rows.append((f"sequences {s} {k}", v))
    for s, t in card["eval_targets"].items():
        rows.append((f"{s} targets {x} / {y}", f"{t[x]} / {t[y]}"))
        if "eval_targets_cold" in card:  # cards written before the warm/cold count lack it
            c = card["eval_targets_cold"][s]
            rows.append((f"{s} targets cold (not in training) {x} / {y}", f"{c[x]} / {c[y]}"))
    if "items_in_train" in card:
        rows.append((f"items in training {x} / {y}", f"{card['items_in_train'][x]} / {card['items_in_train'][y]}"))
    rows += [("sparsity (train)", f"{card['sparsity_train']:.5f}"),
             ("cross-domain transition share (mixed)", f"{card['cross_domain_transition_share']:.3f}")]
    rows += [(f"coverage {k.replace('_', ' ')}", f"{v:.1%}") for k, v in card["coverage"].items()]
    skipped = sum(v["count"] for v in card["skipped"].values())
    rows.append(("skipped lines", skipped))
    rows += [(f"absent: {name}", what["short"]) for name, what in card.get("absent_files", {}).items()]
    return pd.DataFrame(rows, columns=["statistic", "value"]).set_index("statistic")
