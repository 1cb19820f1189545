import numpy as np
import pandas as pd
from PIL import Image

from llmemf_lite.plots import plot_ablation_bars


def _metrics(labels):
    rows = [{"label": label, "seed": seed, "protocol": "sampled", "domain": domain, "NDCG@10": 0.01 * (i + 1) + 0.001 * seed}
            for i, label in enumerate(labels) for seed in range(3) for domain in ("food", "kitchen")]
    return pd.DataFrame(rows)


def test_ablation_figure_has_one_panel_per_domain_and_grows_with_the_variants(tmp_path):
    few = plot_ablation_bars(_metrics(["full", "w/o image"]), tmp_path / "few.png")
    many = plot_ablation_bars(_metrics([f"variant {i}" for i in range(10)]), tmp_path / "many.png")
    (w1, h1), (w2, h2) = Image.open(few).size, Image.open(many).size
    assert abs(w1 - w2) < 0.05 * w1 and h2 > h1   # the same two panels side by side; a row per variant
    assert w2 / h2 < 3                   # readable proportions, not a ribbon
    pixels = np.asarray(Image.open(many).convert("RGB"))
    assert (np.abs(pixels.astype(int) - [0x1f, 0x3b, 0x73]).sum(-1) < 30).any()   # the reference bar is drawn dark


def test_items_without_a_title_are_drawn_as_no_title():
    """Missing titles come back from parquet as NaN (Books of the partial Movie-Book release): the gallery and
    the attention labels say "(no title)" (textwrap failed on NaN and notebook 01 stopped)."""
    from llmemf_lite.plots import _short, _title_or_none

    assert _title_or_none(float("nan")) == _title_or_none(None) == _title_or_none("  ") == "(no title)"
    assert _short(float("nan")) == "(no title)" and _short("A title") == "A title"
