import numpy as np
import pytest
import torch

from llmemf_lite.batching import evaluation_views
from llmemf_lite.models import MODELS, ItemFeatures, build_model
from tests.helpers_small import ground_truth_features, small_world

VARIANTS = [("sasrec", {}), ("sasrec_domain", {}), ("gru4rec", {}), ("gru4rec_domain", {}),
            ("llmemf", {}), ("llmemf", {"fusion": "representation"}), ("llmemf", {"fusion": "network"}),
            ("llmemf", {"cross_domain": False}),
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


@pytest.mark.parametrize("fusion", ["representation", "score", "network"])
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
    if fusion != "representation":   # and its score is the weighted mean of the streams it has, not dragged towards zero
        w = torch.nn.functional.softplus(model.stream_weight)
        assert model.stream_names == ["id", "image", "text"] and w.shape == (3,)


def test_fused_scale_item_scores_an_item_lacking_a_channel_like_the_sum_of_those_it_has():
    """fused_scale="item": an item's channel weights are renormalised to the number of channels it has, not the
    model's; an item with every channel gets the same vector as under "model", bit for bit (so data where every
    item has every channel trains the same model either way)."""
    ds, *_ = small_world()
    feats = ground_truth_features(ds)
    ids = torch.arange(ds.space.n_items)
    out = {}
    for scale in ("model", "item"):
        torch.manual_seed(0)
        model = build_model("llmemf", ds.space, feats, max_len=20, fused_scale=scale).eval()
        with torch.no_grad():
            out[scale] = model._output_items(ids)[0]
    channels = 1 + torch.as_tensor(feats.masks["image"]).int() + torch.as_tensor(feats.masks["text"]).int()
    full, two = channels == 3, channels == 2
    assert full.sum() > 10 and two.sum() > 10
    assert torch.equal(out["model"][full], out["item"][full])
    # at the initial (equal) weights each channel a two-channel item has is weighted 1 under "item", 3/2 under "model"
    torch.testing.assert_close(out["model"][two], out["item"][two] * 1.5)
    with pytest.raises(ValueError, match="fused_scale must be one of"):
        build_model("llmemf", ds.space, feats, fused_scale="mean")


def test_where_every_item_has_every_channel_both_fused_scales_train_the_same_model_bit_for_bit():
    ds, train, *_ = small_world()
    feats = ground_truth_features(ds)
    feats.masks = {m: np.ones_like(v) for m, v in feats.masks.items()}
    batch = train.take(np.arange(32))
    out = {}
    for scale in ("model", "item"):
        torch.manual_seed(0)
        model = build_model("llmemf", ds.space, feats, max_len=20, fused_scale=scale)
        loss = model(batch, "cpu", torch.Generator().manual_seed(0))
        loss.backward()
        out[scale] = [loss.detach()] + [p.grad.clone() for p in model.parameters() if p.grad is not None]
    assert len(out["model"]) == len(out["item"]) > 10
    assert all(torch.equal(a, b) for a, b in zip(out["model"], out["item"]))


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
    t = model.tensors(train.take(np.arange(4)), "cpu")
    t2 = dict(t)
    mixed = t["mixed"].clone()
    mixed[:, -1] = (mixed[:, -1] + 1) % ds.space.n_items     # change only the latest item
    t2["mixed"] = mixed
    with model.item_tables():
        prefs, prefs2 = model.preferences(t)[0], model.preferences(t2)[0]
    torch.testing.assert_close(prefs[:, :-1], prefs2[:, :-1])
    assert not torch.allclose(prefs[:, -1], prefs2[:, -1])


def test_training_and_inference_take_one_forward_path():
    """Version 3 has one forward path: the preferences computed with gradients (training) are those computed in
    inference mode (up to the rounding of torch's fused inference attention kernel), and score_all scores the last
    position's preferences."""
    ds, train, *_ = small_world()
    torch.manual_seed(0)
    model = build_model("llmemf", ds.space, ground_truth_features(ds), max_len=20).eval()
    views = train.take(np.arange(8))
    t = model.tensors(views, "cpu")
    with model.item_tables():
        with torch.enable_grad():
            trained = model.preferences(t)
        with torch.inference_mode():
            inferred = model.preferences(t)
            items = model._output_items(torch.arange(ds.space.domain_range(1).start, ds.space.n_items))[0]
    for a, b in zip(trained, inferred):
        torch.testing.assert_close(a.detach(), b, atol=2e-5, rtol=0)
    with torch.inference_mode():
        scores = model.score_all(views)
    torch.testing.assert_close(scores[:, ds.space.domain_range(1).start:], inferred[1][:, -1] @ items.T)


@pytest.mark.parametrize("cross_domain", [True, False])
def test_inference_runs_the_last_block_only_at_the_positions_the_users_read(cross_domain):
    """Scoring reads the preferences at the last position, which read the states of the last item and of each
    domain's latest item: the last block computes those three queries only, with the whole pass's values."""
    ds, train, *_ = small_world()
    torch.manual_seed(0)
    model = build_model("llmemf", ds.space, ground_truth_features(ds), max_len=20, cross_domain=cross_domain).eval()
    t = model.tensors(train.take(np.arange(16)), "cpu")
    shapes = []
    model.network.blocks[-1].register_forward_hook(lambda m, i, out: shapes.append(tuple(out.shape)))
    with torch.inference_mode(), model.item_tables():
        x = model._input_items(t["mixed"])
        every, _ = model.network(x, t)
        last, _ = model.network(x, t, last_only=True)
    L, d = t["mixed"].shape[1], model.config.d
    assert shapes == [(16, L, d), (16, 3, d)]
    for a, b in zip(every, last):
        assert b.shape == (16, 1, d)
        torch.testing.assert_close(b[:, 0], a[:, -1], atol=1e-5, rtol=1e-5)


def test_attention_hook_returns_weights():
    ds, _, valid, _, _ = small_world()
    model = build_model("llmemf", ds.space, ground_truth_features(ds), max_len=20).eval()
    model.record_attention(True)
    model.score_all(valid.take(np.arange(3)))
    maps = model.attention_maps()
    assert {"mixed.0", "mixed.1", "domain0.0", "domain1.1", "cross0", "cross1"} <= set(maps)
    for name in ("mixed.1", "domain0.1", "cross1"):
        rows = maps[name].sum(-1)
        assert torch.all(((rows - 1).abs() < 1e-4) | (rows == 0)), name   # each query's weights sum to 1 (or 0)


def test_own_domain_heads_never_attend_across_domains_and_merged_heads_do():
    """The single-domain view is the own-domain heads' mask: their weight on items of the other domain is zero;
    the merged heads (the cross-domain view) put weight there."""
    ds, _, valid, _, _ = small_world()
    model = build_model("llmemf", ds.space, ground_truth_features(ds), max_len=20).eval()
    views = valid.take(np.arange(6))
    model.record_attention(True)
    model.score_all(views)
    w = model.network.blocks[-1].last_head_weights                     # [B, H, L, L]; head 0 merged, head 1 own
    dom = torch.as_tensor(views.mixed_domain[:, -w.shape[-1]:])
    valid = torch.as_tensor(views.mixed[:, -w.shape[-1]:] != views.pad)
    across = (dom[:, :, None] != dom[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    assert across.any()
    assert float(w[:, 1][across].abs().max()) == 0.0
    assert float(w[:, 0][across].sum()) > 0.1


def test_projected_item_table_matches_per_lookup_projection():
    ds, *_ = small_world()
    model = build_model("llmemf", ds.space, ground_truth_features(ds), max_len=20).eval()
    ids = torch.tensor([[0, 5, ds.space.n_items], [3, 3, 1]])
    channel = model.channels["text"]
    direct, mask = channel(ids)
    with model.item_tables():
        tabled, mask2 = channel(ids)
    with model.item_tables(touched=torch.tensor([5, 0, 1, 3, ds.space.n_items, 5])):
        touched, _ = channel(ids)                                 # only the ids a training step touches
        with pytest.raises(IndexError):
            channel(torch.tensor([7]))                            # one it did not touch fails loudly
    assert channel.table is None                                  # the table lives for one forward pass only
    assert torch.allclose(direct, tabled, atol=1e-6) and torch.equal(mask, mask2)
    assert torch.allclose(direct, touched, atol=1e-6)
    assert torch.all(direct[0, 2] == 0)                           # PAD is masked to zero


def test_position_tables_start_at_the_scale_of_the_item_inputs():
    """nn.Embedding's N(0, 1) position rows (norm ~8 at d = 64) beside std-0.02 item rows (norm ~0.16) left the
    first block seeing almost only position, and SASRec learned half as well on the real data
    (results/diagnostics/position_init/). Every model with a position table starts it at its items' scale."""
    from llmemf_lite.diagnostics import init_norms

    frame = init_norms()
    default = frame[frame["setting"] == "default"].set_index("model")["ratio"]
    assert set(default.index) == {"sasrec", "llmemf_id", "bert4rec", "c2dsr"}
    assert default.between(0.5, 2.0).all(), default
    assert frame[frame["setting"] != "default"]["ratio"].min() > 20        # the old initialisation, for contrast


def test_target_weighting_weighs_every_target_alike():
    """loss_weighting="domain" sums the domains' mean cross-entropies; "target" divides their summed
    cross-entropies by the number of targets, so a domain with few targets in a batch weighs by its count."""
    ds, train, *_ = small_world()
    batch = train.take(np.arange(32))
    parts = {}
    for weighting in ("domain", "target"):
        torch.manual_seed(0)
        model = build_model("sasrec", ds.space, max_len=20, loss_weighting=weighting, n_negatives=0).eval()
        t = model.tensors(batch, "cpu")
        targets = t["next_item"]
        counts = [int(((targets >= r.start) & (targets < r.stop)).sum()) for r in map(ds.space.domain_range, (0, 1))]
        one_domain = []
        for d in range(2):
            keep = (targets >= ds.space.domain_range(d).start) & (targets < ds.space.domain_range(d).stop)
            only = dict(t, next_item=torch.where(keep, targets, -1))
            one_domain.append(float(model._loss(only, "cpu", None)))            # full softmax: no generator
        parts[weighting] = float(model._loss(t, "cpu", None)), one_domain, counts
    total, (l0, l1), _ = parts["domain"]
    assert abs(total - (l0 + l1)) < 1e-4
    total, (m0, m1), (n0, n1) = parts["target"]
    assert abs(m0 - l0) < 1e-4 and abs(m1 - l1) < 1e-4          # one domain alone: its mean either way
    assert n0 != n1 and abs(total - (n0 * l0 + n1 * l1) / (n0 + n1)) < 1e-4
    with pytest.raises(ValueError, match="loss_weighting must be one of"):
        build_model("sasrec", ds.space, loss_weighting="batch")


def test_the_groups_earlier_models_are_presets_of_the_llmemf_class():
    from llmemf_lite.experiment import default_specs
    from llmemf_lite.models import LLMEMF

    ds, *_ = small_world()
    feats = ground_truth_features(ds)
    ifcdsr, hafvt = build_model("ifcdsr", ds.space, feats), build_model("hafvt", ds.space, feats)
    assert isinstance(ifcdsr, LLMEMF) and list(ifcdsr.channels) == ["id", "image"]
    assert isinstance(hafvt, LLMEMF) and list(hafvt.channels) == ["id", "image", "text"]
    specs = {s.model: s for s in default_specs(["llmemf", "hafvt", "ifcdsr"], "minilm", "enriched")}
    assert specs["hafvt"].text_source == "title" and specs["llmemf"].text_source == "enriched"
    assert specs["ifcdsr"].uses_features and not default_specs(["llmemf_id"])[0].uses_features


def test_weight_decay_falls_on_linear_matrices_only():
    """AdamW's decay group: the matrices of linear maps, not biases, norms, item tables or positions."""
    from torch import nn

    from llmemf_lite.train import _param_groups

    ds, *_ = small_world()
    for name in ("llmemf", "sasrec"):
        model = build_model(name, ds.space, ground_truth_features(ds), max_len=20)
        decayed = {id(p) for p in _param_groups(model, 0.01)[0]["params"]}
        expected = set()
        for m in model.modules():
            if isinstance(m, nn.Linear):
                expected.add(id(m.weight))
            elif isinstance(m, nn.MultiheadAttention):
                expected.add(id(m.in_proj_weight))
        assert decayed == expected, name
        norms = [p for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()]
        assert norms and not any(id(p) in decayed for p in norms)


def test_target_weighting_spans_the_objectives():
    """LLM-EMF yields one objective per domain; "target" weighting must still weigh each domain by its number of
    targets (it first averaged within each objective, which made it the "domain" weighting again)."""
    ds, train, *_ = small_world()
    batch = train.take(np.arange(32))
    torch.manual_seed(0)
    model = build_model("llmemf_id", ds.space, max_len=20, n_negatives=0, aux_weight=0.0).eval()
    t = model.tensors(batch, "cpu")
    counts = [int((t["next_domain"][d] >= 0).sum()) for d in range(2)]
    means = []
    for d in range(2):
        only = dict(t, next_domain=t["next_domain"].clone())
        only["next_domain"][1 - d] = -1                                  # the other domain's targets left out
        means.append(float(model._loss(only, "cpu", None)))
    model.loss_weighting = "target"
    expected = (counts[0] * means[0] + counts[1] * means[1]) / sum(counts)
    assert counts[0] != counts[1] and abs(float(model._loss(t, "cpu", None)) - expected) < 1e-4


def test_network_fusion_runs_one_network_per_channel_on_that_channel_alone():
    """fusion="network" (version 2's fusion level): channel c's part of every user comes from channel c's own
    network, which reads only channel c's vectors: changing every text vector leaves the ID and image parts of the
    users as they were and changes the text part."""
    ds, _, valid, _, _ = small_world()
    feats = ground_truth_features(ds)
    torch.manual_seed(0)
    model = build_model("llmemf", ds.space, feats, max_len=20, fusion="network").eval()
    assert len(model.networks) == 3 and model.stream_names == ["id", "image", "text"]
    assert not hasattr(model, "user_heads")
    t = model.tensors(valid.take(np.arange(6)), "cpu")
    d = model.config.d
    with torch.no_grad():
        with model.item_tables():
            before = model.preferences(t)
        model.channels["text"].vectors.mul_(-3.0)
        with model.item_tables():
            after = model.preferences(t)
    for b, a in zip(before, after):
        assert b.shape[-1] == 3 * d
        torch.testing.assert_close(b[..., :2 * d], a[..., :2 * d])
        assert (b[..., 2 * d:] - a[..., 2 * d:]).abs().max() > 1e-3
    model.record_attention(True)
    model.score_all(valid.take(np.arange(4)))
    text_maps, id_maps = model.attention_maps("text"), model.attention_maps(0)
    assert not torch.equal(text_maps["mixed.0"], id_maps["mixed.0"])
    assert set(text_maps) < set(id_maps) and "mixed.1" in id_maps and "mixed.1" not in text_maps   # 1 block, 2


def test_joint_content_network_reads_the_sum_of_the_modalities_an_item_has():
    """content_network="joint" (a measured alternative, docs/diagnostics.md section 7): one network over the IDs and
    one over the item's content, its image and text projections summed where the item has them; an item lacking its
    image has its text alone as content (not a zero image added), and the content network is the only one a change
    of the text vectors moves. With one content modality (the real data's text) the joint and per-modality models
    are one model, bit for bit."""
    ds, train, valid, _, _ = small_world()
    feats = ground_truth_features(ds)
    torch.manual_seed(0)
    model = build_model("llmemf", ds.space, feats, max_len=20, content_network="joint").eval()
    assert model.stream_names == ["id", "image+text"]
    assert model.stream_index("text") == model.stream_index("image") == model.stream_index("image+text") == 1
    with pytest.raises(ValueError, match="no item stream reads 'audio'"):
        model.stream_index("audio")
    ids = torch.arange(ds.space.n_items)
    with torch.no_grad(), model.item_tables():
        (_, _), (content, has) = model._stream_items(ids)
        image, text = model.channels["image"](ids)[0], model.channels["text"](ids)[0]
    torch.testing.assert_close(content, image + text)
    lacking = torch.as_tensor(~feats.masks["image"] & feats.masks["text"])
    assert lacking.sum() > 10 and torch.equal(content[lacking], text[lacking]) and has[lacking].all()
    t = model.tensors(valid.take(np.arange(6)), "cpu")
    d = model.config.d
    with torch.no_grad():
        with model.item_tables():
            before = model.preferences(t)
        model.channels["text"].vectors.mul_(-3.0)
        with model.item_tables():
            after = model.preferences(t)
    for b, a in zip(before, after):
        assert b.shape[-1] == 2 * d
        torch.testing.assert_close(b[..., :d], a[..., :d])
        assert (b[..., d:] - a[..., d:]).abs().max() > 1e-3

    text_only = ItemFeatures().add("text", feats.vectors["text"], feats.masks["text"])
    batch, losses, scores = train.take(np.arange(16)), [], []
    for content_network in ("per_modality", "joint"):
        torch.manual_seed(0)
        m = build_model("llmemf", ds.space, text_only, max_len=20, use_image=False, content_network=content_network)
        assert m.stream_names == ["id", "text"]
        losses.append(m(batch, "cpu", torch.Generator().manual_seed(0)))
        scores.append(m.eval().score_all(valid.take(np.arange(5))))
    assert torch.equal(losses[0], losses[1]) and torch.equal(scores[0], scores[1])


def test_network_fusion_checkpoints_round_trip(tmp_path):
    """Its networks are saved once each (safetensors refuses a tensor under two names: a ModuleList holding the
    first network beside `network` stopped a real run at its first checkpoint) and load back to the same scores."""
    from llmemf_lite.train import _save_checkpoint, load_checkpoint

    ds, _, valid, _, _ = small_world()
    feats = ground_truth_features(ds)
    torch.manual_seed(0)
    model = build_model("llmemf", ds.space, feats, max_len=20, fusion="network").eval()
    _save_checkpoint(tmp_path / "m.safetensors", model, None, {"epoch": 1})
    torch.manual_seed(1)
    again = build_model("llmemf", ds.space, feats, max_len=20, fusion="network").eval()
    batch = valid.take(np.arange(5))
    assert not torch.equal(model.score_all(batch), again.score_all(batch))
    load_checkpoint(tmp_path / "m.safetensors", again)
    torch.testing.assert_close(model.score_all(batch), again.score_all(batch))
    assert {k.split(".")[0] for k in model.state_dict()} >= {"network", "more_networks"}
    shallow = build_model("llmemf", ds.space, feats, max_len=20, fusion="network", content_blocks=1)
    assert [len(net.blocks) for net in shallow.networks] == [2, 1, 1]   # the ID network keeps n_blocks


def test_the_default_is_one_network_per_channel_with_one_block_content_networks():
    """Model version 3's default (docs/diagnostics.md section 7): fusion="network", the ID network at n_blocks and
    each content network one block deep; with IDs only the fusion levels build the same model (one network, no
    per-channel parts), so its scores do not depend on the level."""
    ds, _, valid, _, _ = small_world()
    feats = ground_truth_features(ds)
    model = build_model("llmemf", ds.space, feats, max_len=20)
    assert model.config.fusion == "network" and [len(net.blocks) for net in model.networks] == [2, 1, 1]
    batch = valid.take(np.arange(5))
    scores = []
    for fusion in ("network", "score", "representation"):
        torch.manual_seed(0)
        id_only = build_model("llmemf_id", ds.space, None, max_len=20, fusion=fusion).eval()
        assert len(id_only.networks) == 1 and not hasattr(id_only, "user_heads")
        scores.append(id_only.score_all(batch))
    torch.testing.assert_close(scores[0], scores[1])
    torch.testing.assert_close(scores[0], scores[2])


def test_score_fusion_is_c_times_the_weighted_mean_of_the_channels_an_item_has():
    """At initialisation (equal channel weights, per-channel user maps the identity) an item with every channel
    scores <u, sum_c v_c>, as under representation fusion, and an item lacking its image scores 3/2 of its two
    channels' sum: a missing modality is left out, not scored as zero (a plain mean divided every logit by 3)."""
    ds, *_ = small_world()
    feats = ground_truth_features(ds)
    model = build_model("llmemf", ds.space, feats, max_len=20, fusion="score").eval()
    full, lacking = int(np.flatnonzero(feats.masks["image"])[0]), int(np.flatnonzero(~feats.masks["image"])[0])
    u = torch.randn(1, model.config.d)
    with torch.no_grad(), model.item_tables():
        users = model.user_heads(u)
        for item, share in ((full, 1.0), (lacking, 1.5)):
            ids = torch.tensor([item])
            channels = [c(ids)[0] for c in model.channels.values()]
            fused = model.score([users], ids, paired=False)
            torch.testing.assert_close(fused, share * (u @ sum(channels).T), atol=1e-5, rtol=1e-5)
