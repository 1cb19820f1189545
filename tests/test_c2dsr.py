import math

import numpy as np
import pytest
import torch

from llmemf_lite.batching import NO_POS, evaluation_views, training_views
from llmemf_lite.data.dataset import ItemSpace
from llmemf_lite.models import build_model
from llmemf_lite.models.biased_items import ItemsWithBias
from llmemf_lite.models.c2dsr import (C2DSR, DropoutMasks, GraphPropagation, OutputItems, infomax_loss,
                                      masked_mean, merged_window, transition_graphs)
from tests.helpers_small import small_world

TINY = dict(d=16, n_blocks=1, max_len=20, n_negatives=0)


def _train_seqs(ds):
    return list(ds.split("train")["items"])


def test_graphs_of_a_hand_written_dataset_edge_by_edge():
    space = ItemSpace(n_x=3, n_y=3)                   # X items 0, 1, 2; Y items 3, 4, 5; PAD 6
    seqs = [[0, 3, 1, 4], [0, 1], [3, 3], [2]]
    g = transition_graphs(seqs, space)
    mixed = {(int(r), int(c)): float(w) for r, c, w in zip(g["mixed"].rows, g["mixed"].cols, g["mixed"].weights)}
    # transitions 0->3, 3->1, 1->4, 0->1, 3->3: rows normalised over each item's successors
    assert mixed == {(0, 3): 0.5, (0, 1): 0.5, (3, 1): 0.5, (3, 3): 0.5, (1, 4): 1.0}
    single = {(int(r), int(c)): float(w) for r, c, w in zip(g["single"].rows, g["single"].cols, g["single"].weights)}
    # X subsequences [0, 1], [0, 1]: 0->1 twice; Y subsequences [3, 4], [3, 3]: 3->4, 3->3
    assert single == {(0, 1): 1.0, (3, 4): 0.5, (3, 3): 0.5}
    dense = g["mixed"].dense()
    assert dense.shape == (7, 7) and dense[6].sum() == 0 and dense[2].sum() == 0     # PAD and item 2: no edges
    # repeated transitions weigh in: 0->1 three times, 0->2 once
    counted = transition_graphs([[0, 1], [0, 1], [0, 1], [0, 2]], space)["mixed"].dense()
    assert counted[0, 1] == pytest.approx(0.75) and counted[0, 2] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="training sequence 1: item ids must lie in \\[0, 6\\)"):
        transition_graphs([[0], [7]], space)


def test_graph_propagation_is_the_mean_of_input_and_layer():
    space = ItemSpace(n_x=3, n_y=3)
    graph = transition_graphs([[0, 3, 1, 4], [0, 1]], space)["mixed"]
    prop = GraphPropagation(graph, d=4, n_layers=1, dropout=0.0).eval()
    table = torch.randn(7, 4)
    expected = (table + (torch.as_tensor(graph.dense()) @ table + prop.biases[0])) / 2
    torch.testing.assert_close(prop(table), expected)


def _graph_of_small_world():
    ds, *_ = small_world()
    return ds, transition_graphs(_train_seqs(ds), ds.space)["mixed"]


@pytest.mark.parametrize("n_layers", [1, 2])
def test_propagated_rows_are_the_rows_of_the_whole_table_propagation(n_layers):
    ds, graph = _graph_of_small_world()
    torch.manual_seed(0)
    prop = GraphPropagation(graph, d=8, n_layers=n_layers, dropout=0.3).eval()
    table = torch.randn(graph.n_nodes, 8, requires_grad=True)
    pad = ds.space.n_items
    ids = torch.tensor([[3, pad, 3, 17], [graph.n_nodes - 2, 0, 250, pad]])    # repeats, PAD, both domains
    rows, own = prop.rows(table, ids)
    full = prop(table)
    torch.testing.assert_close(rows, full[ids])
    assert torch.equal(own, table[ids].detach())
    # and the same gradient into the table
    weights = torch.randn(rows.shape)
    (grad_rows,) = torch.autograd.grad((rows * weights).sum(), table)
    (grad_full,) = torch.autograd.grad((full[ids] * weights).sum(), table)
    torch.testing.assert_close(grad_rows, grad_full)


def test_graph_dropout_is_one_mask_per_row_per_step():
    ds, graph = _graph_of_small_world()
    torch.manual_seed(0)
    rate = 0.3
    prop = GraphPropagation(graph, d=8, n_layers=1, dropout=rate)
    table = torch.randn(graph.n_nodes, 8)
    masks = DropoutMasks(rate, graph.n_nodes)
    first = torch.arange(0, 120)
    a, _ = prop.rows(table, first, masks)
    b, _ = prop.rows(table, torch.arange(100, 300), masks)           # a later lookup of the same step
    torch.testing.assert_close(b[:20], a[100:])                      # rows 100..119: the masks drawn for a
    # each lookup is the whole-table formula with the step's masks (rows never needed keep mask 1)
    drawn = masks.slot[1] >= 0
    M = torch.ones_like(table)
    M[drawn] = masks.masks[1][masks.slot[1][drawn]]
    A = torch.as_tensor(graph.dense())
    expected = (table + A @ (table * M) + prop.biases[0]) / 2
    torch.testing.assert_close(torch.cat([a, b]), expected[torch.cat([first, torch.arange(100, 300)])])
    # F.dropout's rate and scale: each entry 0 or 1 / (1 - rate)
    values = masks.masks[1]
    assert ((values == 0) | torch.isclose(values, torch.tensor(1 / (1 - rate)))).all()
    assert (values == 0).float().mean().item() == pytest.approx(rate, abs=0.03)
    # a new step draws again
    c, _ = prop.rows(table, first, DropoutMasks(rate, graph.n_nodes))
    assert not torch.allclose(a, c)


def _whole_table_inputs(model):
    """C2DSR's item inputs as version 1 computed them: every view's whole table propagated once."""
    scale = math.sqrt(model.config.d)
    out = []
    for table, prop in zip(model.tables, model.propagation):
        enhanced = prop(table.weight)
        out.append(lambda ids, e=enhanced, t=table: (e[ids] + t(ids)) * scale)
    return out


@pytest.mark.parametrize("gnn_layers", [1, 2])
def test_scores_and_loss_without_dropout_match_the_whole_table_model(gnn_layers, monkeypatch):
    ds, train, valid, *_ = small_world()
    torch.manual_seed(0)
    model = build_model("c2dsr", ds.space, train_sequences=_train_seqs(ds), gnn_layers=gnn_layers,
                        **{**TINY, "n_negatives": 50}).eval()
    assert model.propagation[0].VERSION == 2      # its random stream changed: older checkpoints are not resumed
    batch, steps = valid.take(np.arange(20)), train.take(np.arange(48))

    def run():
        model.zero_grad()
        with torch.no_grad():
            scores = model.score_all(batch)
        loss = model(steps, "cpu", torch.Generator().manual_seed(1))
        loss.backward()
        return scores, loss, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    scores, loss, grads = run()
    assert grads["head.table.weight"].layout == torch.strided and grads["tables.0.weight"].layout == torch.strided
    monkeypatch.setattr(C2DSR, "_item_inputs", _whole_table_inputs)
    monkeypatch.setattr(OutputItems, "forward", ItemsWithBias.forward)
    ref_scores, ref_loss, ref_grads = run()
    torch.testing.assert_close(scores, ref_scores)
    torch.testing.assert_close(loss, ref_loss)
    assert grads.keys() == ref_grads.keys()
    for k in grads:
        torch.testing.assert_close(grads[k], ref_grads[k], msg=k)


def test_infomax_loss_known_answer():
    disc = torch.nn.Bilinear(2, 2, 1)
    with torch.no_grad():
        disc.weight.copy_(torch.eye(2)[None])
        disc.bias.zero_()
    anchor = torch.tensor([[1.0, 0.0]])
    positive, negative = torch.tensor([[2.0, 0.0]]), torch.tensor([[-1.0, 0.0]])
    # D(pos) = 2, D(neg) = -1: BCE = softplus(-2) + softplus(-1)
    expected = math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))
    assert infomax_loss(disc, anchor, positive, negative).item() == pytest.approx(expected, rel=1e-6)
    # a discriminator that cannot tell them apart scores log 2 on each side
    with torch.no_grad():
        disc.weight.zero_()
    assert infomax_loss(disc, anchor, positive, negative).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    states = torch.tensor([[[1.0], [3.0], [5.0]]])
    assert masked_mean(states, torch.tensor([[True, False, True]])).item() == 3.0
    assert masked_mean(states, torch.tensor([[False, False, False]])).item() == 0.0


def test_merged_window_keeps_only_the_domain_items_inside_it():
    space = ItemSpace(n_x=3, n_y=3)
    seq = [0, 1, 2, 3, 0, 4]                          # X X X Y X Y: history for evaluation is seq[:-1]
    views, _ = evaluation_views([seq], space, 5)
    win = merged_window(views, 2)                     # merged window: [Y 3, X 0]
    assert win.mixed.tolist() == [[3, 0]]
    assert win.domain_seq[0].tolist() == [[6, 0]] and win.domain_seq[1].tolist() == [[6, 3]]
    assert win.domain_time[0].tolist() == [[NO_POS, 1]] and win.domain_time[1].tolist() == [[NO_POS, 0]]
    assert win.domain_pos[0].tolist() == [[NO_POS, 1]]   # at merged 0 the latest X item (2) is outside
    assert win.domain_pos[1].tolist() == [[1, 1]]


def test_shapes_masking_and_finite_loss():
    ds, train, valid, _, _ = small_world()
    torch.manual_seed(0)
    model = build_model("c2dsr", ds.space, train_sequences=_train_seqs(ds), **TINY)
    assert model.graph_sizes["mixed"] > 0 and model.graph_sizes["single"] > 0
    loss = model(train.take(np.arange(32)), "cpu", torch.Generator().manual_seed(0))
    assert loss.dim() == 0 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert model.discriminators[0].weight.grad.abs().sum() > 0       # the infomax term reaches its discriminator
    assert model.tables[0].weight.grad.abs().sum() > 0
    model.eval()
    batch = valid.take(np.arange(6))
    scores = model.score_all(batch)
    assert scores.shape == (6, ds.space.n_items) and torch.isfinite(scores).all()
    # left padding and a wider view do not change the scores (masking), nor does the checkpoint round trip
    wide, _ = evaluation_views(list(ds.split("valid")["items"])[:6], ds.space, 40)
    torch.testing.assert_close(scores, model.score_all(wide))
    assert not any("edges" in k for k in model.state_dict())        # the graph is data, not weights


def test_future_items_do_not_leak():
    ds, train, *_ = small_world()
    torch.manual_seed(0)
    model = build_model("c2dsr", ds.space, train_sequences=_train_seqs(ds), **TINY).eval()
    t = model.tensors(train.take(np.arange(4)), "cpu")
    merged, _, _ = model.encode(t)
    t2 = dict(t)
    t2["mixed"] = t["mixed"].clone()
    t2["mixed"][:, -1] = (t2["mixed"][:, -1] + 1) % ds.space.n_items
    merged2, _, _ = model.encode(t2)
    torch.testing.assert_close(merged[:, :-1], merged2[:, :-1])
    assert not torch.allclose(merged[:, -1], merged2[:, -1])


def test_corruption_replaces_only_the_chosen_domain():
    ds, train, *_ = small_world()
    model = build_model("c2dsr", ds.space, train_sequences=_train_seqs(ds), **TINY)
    mixed = torch.as_tensor(train.mixed[:50])
    out = model.corrupt(mixed, 0, torch.Generator().manual_seed(0))
    is_x = (mixed < ds.space.n_x)
    assert torch.equal(out[~is_x], mixed[~is_x])                      # Y items and PAD kept
    assert (out[is_x] < ds.space.n_x).all() and (out[is_x] != mixed[is_x]).float().mean() > 0.9


def test_needs_training_sequences_and_has_paper_defaults():
    ds, *_ = small_world()
    with pytest.raises(ValueError, match="pass build_model\\('c2dsr', space, train_sequences=...\\)"):
        build_model("c2dsr", ds.space)
    c = build_model("c2dsr", ds.space, train_sequences=_train_seqs(ds)).config
    assert (c.d, c.n_blocks, c.n_heads, c.dropout, c.max_len, c.lam, c.lr, c.batch_size) == \
        (256, 2, 1, 0.2, 15, 0.7, 1e-3, 256)


@pytest.mark.slow
def test_short_training_beats_popularity(tmp_path):
    from llmemf_lite.evaluate import evaluate_ranking, summarize
    from llmemf_lite.train import TrainConfig, train_model

    ds, train, valid, targets, cands = small_world()
    seqs = _train_seqs(ds)

    def ndcg(model):
        s = summarize(evaluate_ranking(model, valid, targets, ds.space, cands), ds.pair.domains)
        return float(s.loc[s["protocol"] == "sampled", "NDCG@10"].mean())

    torch.manual_seed(0)
    model = build_model("c2dsr", ds.space, train_sequences=seqs, d=64, max_len=20)
    cfg = TrainConfig(epochs=3, batch_size=64, patience=10, progress=False)
    train_model(model, train, valid, targets, cands, ds.space, ds.pair.domains, cfg, tmp_path)
    assert ndcg(model) > ndcg(build_model("pop", ds.space).fit(seqs))
