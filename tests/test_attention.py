"""Reading attention for notebook 06: the maps of one user come from the model's hook, trimmed to the user's items,
and the figures are drawn for ordinary users and for one without any item of the target's domain."""
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from llmemf_lite.attention import final_step_attention, user_attention
from llmemf_lite.batching import evaluation_views
from llmemf_lite.models import build_model
from llmemf_lite.plots import plot_other_domain_attention, plot_user_attention
from tests.helpers_small import ground_truth_features, small_world


def _model(ds):
    torch.manual_seed(0)
    return build_model("llmemf", ds.space, ground_truth_features(ds), max_len=20).eval()


def _mixed_sequence(ds, min_each: int = 3):
    for seq in ds.split("valid")["items"]:
        dom = ds.space.domain_of(seq[:-1])
        if len(seq) <= 20 and (dom == 0).sum() >= min_each and (dom == 1).sum() >= min_each:
            return np.asarray(seq)
    raise AssertionError("the small world has no mixed validation user")


def test_user_attention_is_the_hooks_last_blocks_trimmed_to_the_users_items():
    ds, *_ = small_world()
    model, seq = _model(ds), _mixed_sequence(ds)
    ua = user_attention(model, ds, seq, max_len=20, stream="text")
    history = seq[:-1]
    dom = ds.space.domain_of(history)
    assert ua.target == seq[-1] and np.array_equal(ua.mixed_items, history)
    m, k = len(history), [int((dom == d).sum()) for d in range(2)]
    assert ua.mixed.shape == (m, m)
    for d in range(2):
        assert np.array_equal(ua.domain_items[d], history[dom == d])
        assert ua.domain[d].shape == (k[d], k[d]) and ua.cross[d].shape == (k[d], m)
    # every query's weights sum to 1 over the keys it may see: causal, nothing on padding or later items
    for mat in (ua.mixed, ua.domain[0], ua.domain[1]):
        np.testing.assert_allclose(mat.sum(-1), 1, atol=1e-5)
        assert np.abs(np.triu(mat, 1)).max() == 0
    for d in range(2):
        np.testing.assert_allclose(ua.cross[d].sum(-1), 1, atol=1e-5)
        positions = np.flatnonzero(dom == d)          # a domain item attends to merged items no later than itself
        for row, p in zip(ua.cross[d], positions):
            assert np.abs(row[p + 1:]).max(initial=0) == 0
    # the very numbers of the documented hook, for the same user
    views, _ = evaluation_views([seq], ds.space, 20)
    model.record_attention(True)
    with torch.inference_mode():
        model.score_all(views)
    maps = model.attention_maps("text")
    model.record_attention(False)
    last = len(model.networks[model.stream_index("text")].blocks) - 1   # the text network's last block
    assert np.array_equal(ua.domain[1], maps[f"domain1.{last}"][0].numpy()[-k[1]:, -k[1]:])
    assert np.array_equal(ua.mixed, maps[f"mixed.{last}"][0].numpy()[-m:, -m:])
    per_domain = build_model("llmemf", ds.space, ground_truth_features(ds), max_len=20, cross_domain=False).eval()
    with pytest.raises(ValueError, match="cross_domain=False"):
        user_attention(per_domain, ds, seq, max_len=20)


def test_attention_figures_for_a_user_with_and_without_items_of_the_targets_domain(tmp_path):
    ds, *_ = small_world()
    model, seq = _model(ds), _mixed_sequence(ds)
    ua = user_attention(model, ds, seq, max_len=20)
    wide = plot_user_attention(ua, ds, tmp_path / "user.png", title="test: ")
    w, h = Image.open(wide).size
    assert w > 1.5 * h     # three panels side by side
    # a target in one domain after a history entirely of the other: that domain's panels are empty, not an error
    target_domain = int(ds.space.domain_of([seq[-1]])[0])
    only_other = np.append(seq[:-1][ds.space.domain_of(seq[:-1]) != target_domain], seq[-1])
    lone = user_attention(model, ds, only_other, max_len=20)
    assert lone.domain[target_domain].shape == (0, 0) and lone.cross[target_domain].shape[0] == 0
    assert plot_user_attention(lone, ds, tmp_path / "lone.png").is_file()
    heavy = final_step_attention(model, ds, [seq, only_other], max_len=20, cases=[7, 8])
    assert list(heavy["case"]) == [7]           # no cross-attention row for the user without target-domain items
    scatter = plot_other_domain_attention(heavy, tmp_path / "heavy.png", "kitchen", "food")
    assert Image.open(scatter).size[0] > 300


def test_other_domain_attention_figure_draws_every_user(tmp_path):
    heavy = pd.DataFrame({"history_other_domain": [0.6, 0.8, 1.0], "attention_other_domain": [0.1, 0.9, 0.5]})

    def reddish(path):   # the users' dots (tab:red, drawn translucent), not the grey diagonal or the frame
        rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
        return int(((rgb[..., 0] > 180) & (rgb[..., 1] < 140) & (rgb[..., 2] < 140)).sum())

    none, one, three = (reddish(plot_other_domain_attention(heavy.iloc[:n], tmp_path / f"{n}.png", "kitchen", "food"))
                        for n in (0, 1, 3))
    assert three - none > 2.5 * (one - none) > 0     # a dot per user, on top of the legend's sample dot
