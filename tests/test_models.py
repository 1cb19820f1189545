import numpy as np
import pytest
import torch

from llmemf_lite.batching import evaluation_views
from llmemf_lite.models import MODELS, build_model
from tests.helpers_small import ground_truth_features, small_world

VARIANTS = [("sasrec", {}), ("sasrec_domain", {}), ("gru4rec", {}), ("gru4rec_domain", {}),
            ("llmemf", {}), ("llmemf", {"fusion": "representation"}), ("llmemf", {"cross_domain": False}),
            ("llmemf", {"use_image": False, "use_text": False}), ("llmemf", {"use_id": False})]


@pytest.mark.parametrize("name, overrides", VARIANTS)
def test_shapes_and_finite_loss(name, overrides):
    ds, train, valid, _, _ = small_world()
    torch.manual_seed(0)
    model = build_model(name, ds.space, ground_truth_features(ds), max_len=20, **overrides)
    loss = model(train.take(np.arange(32)), "cpu", torch.Generator().manual_seed(0))
    assert loss.dim() == 0 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    scores = model.score_all(valid.take(np.arange(7)))
    assert scores.shape == (7, ds.space.n_items) and torch.isfinite(scores).all()


def test_registry_and_bad_settings():
    ds, *_ = small_world()
    assert set(MODELS) >= {"pop", "sasrec", "gru4rec", "llmemf"}
    with pytest.raises(ValueError, match="unknown settings \\['depth'\\]"):
        build_model("sasrec", ds.space, depth=3)
    with pytest.raises(ValueError, match="configured to use image but no image features"):
        build_model("llmemf", ds.space, None)
    with pytest.raises(ValueError, match="unknown model 'bert5rec'"):
        build_model("bert5rec", ds.space)


@pytest.mark.parametrize("fusion", ["representation", "score"])
def test_missing_modality_is_masked_not_scored(fusion):
    ds, _, valid, _, _ = small_world()
    feats = ground_truth_features(ds)
    torch.manual_seed(0)
    model = build_model("llmemf", ds.space, feats, max_len=20, fusion=fusion).eval()
    batch = valid.take(np.arange(5))
    before = model.score_all(batch)
    missing = np.flatnonzero(~feats.masks["image"])
    assert len(missing) > 10
    channel = model.channels["image"]
    with torch.no_grad():   # whatever a masked item's image vector holds must not matter
        channel.vectors[torch.as_tensor(missing)] = torch.randn(len(missing), channel.vectors.shape[1]) * 100
    after = model.score_all(batch)
    torch.testing.assert_close(before, after)
    if fusion == "score":   # and its score is the weighted mean of the streams it has, not dragged towards zero
        w = torch.nn.functional.softplus(model.stream_weight)
        assert w.shape == (3,)


def test_left_padding_and_window_do_not_change_scores():
    ds, *_ = small_world()
    seqs = list(ds.split("valid")["items"])[:6]
    torch.manual_seed(0)
    model = build_model("llmemf", ds.space, ground_truth_features(ds), max_len=40).eval()
    short, _ = evaluation_views(seqs, ds.space, 25)     # every history fits in 25 (max length 20)
    long, _ = evaluation_views(seqs, ds.space, 40)
    torch.testing.assert_close(model.score_all(short), model.score_all(long))


@pytest.mark.parametrize("name", ["gru4rec", "sasrec", "bert4rec", "llmemf"])
def test_a_users_scores_do_not_depend_on_the_other_rows_of_the_batch(name):
    # a batch is trimmed to its longest row, so a short history gets more left padding beside a long one
    ds, *_ = small_world()
    seqs = sorted(ds.split("valid")["items"], key=len)
    seqs = [seqs[0], seqs[-1]]
    assert len(seqs[1]) > len(seqs[0]) + 3
    torch.manual_seed(0)
    features = ground_truth_features(ds) if name == "llmemf" else None
    model = build_model(name, ds.space, features, max_len=40).eval()
    views, _ = evaluation_views(seqs, ds.space, 40)
    with torch.inference_mode():
        alone, together = model.score_all(views.take([0])), model.score_all(views)[:1]
    torch.testing.assert_close(alone, together, atol=2e-5, rtol=0)


def test_future_items_do_not_leak_into_earlier_positions():
    ds, train, *_ = small_world()
    torch.manual_seed(0)
    model = build_model("llmemf", ds.space, ground_truth_features(ds), max_len=20).eval()
    batch = train.take(np.arange(4))
    t = model.tensors(batch, "cpu")
    prefs = model._run(t)[0][0][0]
    t2 = dict(t)
    mixed = t["mixed"].clone()
    mixed[:, -1] = (mixed[:, -1] + 1) % ds.space.n_items     # change only the latest item
    t2["mixed"] = mixed
    prefs2 = model._run(t2)[0][0][0]
    torch.testing.assert_close(prefs[:, :-1], prefs2[:, :-1])
    assert not torch.allclose(prefs[:, -1], prefs2[:, -1])


def test_inference_runs_the_stacked_copies_one_at_a_time_with_the_same_numbers():
    """Without gradients LLM-EMF runs its per-channel network copies one by one (faster on a CPU for large
    evaluation batches); the numbers must be those of the stacked run, to the bit, and attention recording keeps
    the stacked run (its maps hold every copy)."""
    ds, train, *_ = small_world()
    torch.manual_seed(0)
    model = build_model("llmemf", ds.space, ground_truth_features(ds), max_len=20).eval()
    assert model.stream_names == ["id", "image", "text"]
    t = model.tensors(train.take(np.arange(16)), "cpu")
    with model.item_tables():
        with torch.enable_grad():
            stacked = model._run(t)
        with torch.inference_mode():
            one_by_one = model._run(t)
    for a, b in zip(stacked[0][0] + stacked[0][1] + stacked[1][0] + stacked[2],
                    one_by_one[0][0] + one_by_one[0][1] + one_by_one[1][0] + one_by_one[2]):
        assert torch.equal(a.detach(), b)
    assert len(stacked[2]) == 3


def test_attention_hook_returns_weights():
    ds, _, valid, _, _ = small_world()
    model = build_model("llmemf", ds.space, ground_truth_features(ds), max_len=20).eval()
    model.record_attention(True)
    model.score_all(valid.take(np.arange(3)))
    maps = model.attention_maps()
    assert {"mixed.0", "mixed.1", "domain0.0", "domain1.1", "cross0", "cross1"} <= set(maps)
    rows = maps["mixed.1"].sum(-1)
    assert torch.all(((rows - 1).abs() < 1e-4) | (rows == 0))   # each query's weights sum to 1 (or 0 if padding)


def test_attention_maps_by_stream_name_under_score_fusion():
    ds, _, valid, _, _ = small_world()
    model = build_model("llmemf", ds.space, ground_truth_features(ds), max_len=20).eval()
    assert model.config.fusion == "score" and model.stream_names == ["id", "image", "text"]
    model.record_attention(True)
    model.score_all(valid.take(np.arange(3)))
    by_name, by_index = model.attention_maps("text"), model.attention_maps(2)
    assert torch.equal(by_name["cross1"], by_index["cross1"])
    assert not torch.equal(by_name["cross1"], model.attention_maps("id")["cross1"])   # three separate networks
    single = build_model("llmemf", ds.space, ground_truth_features(ds), max_len=20, fusion="representation")
    assert single.stream_names == ["fused"]


def test_projected_item_table_matches_per_lookup_projection():
    ds, *_ = small_world()
    model = build_model("llmemf", ds.space, ground_truth_features(ds), max_len=20).eval()
    ids = torch.tensor([[0, 5, ds.space.n_items], [3, 3, 1]])
    channel = model.channels["text"]
    direct, mask = channel(ids)
    with model.item_tables():
        tabled, mask2 = channel(ids)
    assert channel.table is None                                  # the table lives for one forward pass only
    assert torch.allclose(direct, tabled, atol=1e-6) and torch.equal(mask, mask2)
    assert torch.all(direct[0, 2] == 0)                           # PAD is masked to zero


def test_weight_decay_falls_on_linear_matrices_only_stacked_or_not():
    """AdamW's decay group: the matrices of linear maps. Stacked modules carry their copies on a leading axis, so
    their biases [S, d] and norms [S, d] are 2-D and must still be left out (they were not, at first)."""
    from torch import nn

    from llmemf_lite.models.stacked import StackedLayerNorm, StackedLinear
    from llmemf_lite.train import _param_groups

    ds, *_ = small_world()
    for name in ("llmemf", "sasrec"):
        model = build_model(name, ds.space, ground_truth_features(ds), max_len=20)
        decayed = {id(p) for p in _param_groups(model, 0.01)[0]["params"]}
        expected = set()
        for m in model.modules():
            if isinstance(m, (nn.Linear, StackedLinear)):
                expected.add(id(m.weight))
            elif isinstance(m, nn.MultiheadAttention):
                expected.add(id(m.in_proj_weight))
        assert decayed == expected, name
        norms = [p for m in model.modules() if isinstance(m, (nn.LayerNorm, StackedLayerNorm)) for p in m.parameters()]
        assert norms and not any(id(p) in decayed for p in norms)


def test_stacked_dropout_keeps_the_rate_and_the_mean_and_follows_the_seed():
    from llmemf_lite.models.stacked import dropout

    x = torch.ones(1000, 1000)
    torch.manual_seed(3)
    a = dropout(x, 0.2, True)
    kept = a != 0
    assert abs(kept.float().mean().item() - 0.8) < 0.002                  # 1e6 draws: std of the rate 0.0004
    assert torch.all(a[kept] == 65536 / (65536 - round(0.2 * 65536)))    # the exact inverse of the keep rate
    assert abs(a.mean().item() - 1.0) < 0.003
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.2, True), a)                         # torch's global generator, seeded
    assert dropout(x, 0.2, False) is x and dropout(x, 0.0, True) is x
    odd = dropout(torch.ones(3, 5, 7), 0.5, True)                        # sizes not a multiple of four
    assert odd.shape == (3, 5, 7) and set(odd.unique().tolist()) <= {0.0, 2.0}
