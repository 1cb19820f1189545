import dataclasses

import numpy as np
import pytest
from PIL import Image

from llmemf_lite.data.synthetic import STYLES, THEMES, SyntheticConfig, generate_synthetic

SMALL = SyntheticConfig(items_per_domain=200, n_train_users=200, n_valid_users=30, n_test_users=30)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("syn")
    return generate_synthetic("food_kitchen", SyntheticConfig(), image_dir=folder / "images"), folder


def test_same_config_same_world_bit_for_bit(tmp_path):
    a = generate_synthetic("movie_book", SMALL, image_dir=tmp_path / "a" / "images")
    b = generate_synthetic("movie_book", SMALL, image_dir=tmp_path / "b" / "images")
    assert a.items.equals(b.items)
    assert [s.tolist() for s in a.sequences["items"]] == [s.tolist() for s in b.sequences["items"]]
    for name in ("000000.png", "000399.png"):
        assert (tmp_path / "a" / "images" / name).read_bytes() == (tmp_path / "b" / "images" / name).read_bytes()
    c = generate_synthetic("movie_book", dataclasses.replace(SMALL, seed=1))
    assert [s.tolist() for s in a.sequences["items"]] != [s.tolist() for s in c.sequences["items"]]


def test_says_synthetic_and_uses_pair_vocabulary():
    ds = generate_synthetic("movie_book", SMALL)
    assert ds.card["synthetic"] is True and "SYNTHETIC" in ds.card["provenance"]["note"]
    assert ds.items["source_id"].str.startswith("SYN-").all()
    movies = ds.items[ds.items["domain"] == "movie"]["title"]
    assert movies.str.contains(r"\((?:DVD|Blu-ray)\)|Edition|Cut").all()
    assert ds.items["title"].is_unique
    with pytest.raises(ValueError, match="vocabularies"):
        from llmemf_lite.pairs import register_pair
        register_pair("toys_games", ("toy", "game"), ("Toys", "Games"), overwrite=True)
        generate_synthetic("toys_games", SMALL)


def test_titles_reveal_theme_not_style(world):
    ds, _ = world
    names = list(THEMES["food_kitchen"])
    for d in range(2):
        rows = ds.items[ds.items["domain"] == ds.pair.domains[d]]
        for title, theme in zip(rows["title"], rows["theme"]):
            hits = [t for t, name in enumerate(names) if any(w in title for w in THEMES["food_kitchen"][name][d])]
            assert hits == [theme], title
    # style is independent of the title's theme: the theme-style contingency table is near uniform
    table = np.histogram2d(ds.items["theme"], ds.items["style"], bins=[6, 4])[0]
    assert table.min() > 0.5 * table.mean()


def test_images_reveal_style_not_theme(world):
    ds, folder = world
    colours = np.array([c for _, c, _ in STYLES], dtype=float)
    sample = ds.items.sample(300, random_state=0)
    predicted_style, theme_colour = [], {}
    for path, theme in zip(sample["image"], sample["theme"]):
        pixels = np.asarray(Image.open(folder / path).convert("RGB"), dtype=float).reshape(-1, 3)
        saturated = pixels[pixels.min(axis=1) < 150]         # the shape, not the pale background
        mean = saturated.mean(axis=0)
        predicted_style.append(int(np.argmin(((colours - mean) ** 2).sum(axis=1))))
        theme_colour.setdefault(theme, []).append(mean)
    assert (np.array(predicted_style) == sample["style"].to_numpy()).mean() > 0.97
    # every theme's images average to about the same colour: images say nothing of themes
    means = np.array([np.mean(v, axis=0) for v in theme_colour.values()])
    assert means.std(axis=0).max() < 25


def test_sequences_carry_cross_domain_taste_signal(world):
    ds, _ = world
    theme, style = ds.items["theme"].to_numpy(), ds.items["style"].to_numpy()
    dom = ds.space.domain_of(np.arange(ds.space.n_items))
    same_theme_cross, same_style = [], []
    for seq in ds.split("train", "mixed")["items"]:
        for a, b in zip(seq[:-1], seq[1:]):
            if dom[a] != dom[b]:
                same_theme_cross.append(theme[a] == theme[b])
            same_style.append(style[a] == style[b])
    # chance is 1/6 for themes and 1/4 for styles
    assert np.mean(same_theme_cross) > 0.5
    assert np.mean(same_style) > 0.45


def test_cold_items_never_train_but_are_targets(world):
    ds, _ = world
    cold = ds.items["cold"].to_numpy()
    train_items = np.concatenate(ds.split("train")["items"].to_list())
    assert not cold[train_items].any()
    targets = np.array([s[-1] for s in ds.split("test")["items"]])
    assert 0.05 < cold[targets].mean() < 0.4
    assert ds.card["eval_targets"]["test"]["food"] > 100 and ds.card["eval_targets"]["test"]["kitchen"] > 100
