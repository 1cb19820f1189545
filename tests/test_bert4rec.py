import numpy as np
import pytest
import torch

from llmemf_lite.batching import evaluation_views
from llmemf_lite.models import build_model
from llmemf_lite.models.bert4rec import cloze_mask
from tests.helpers_small import small_world

TINY = dict(d=16, n_blocks=1, max_len=21, n_negatives=0)


def test_cloze_masking_rate_over_many_draws():
    lengths = torch.tensor([10, 5, 1, 0, 20])
    width = 20
    valid = torch.arange(width)[None, :] >= (width - lengths)[:, None]          # left padding
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([cloze_mask(valid, 0.6, 30, 0.0, gen) for _ in range(2000)]).float()
    assert not draws[:, ~valid].any()                                           # padding is never masked
    # each row masks round(n * 0.6) items (at least 1, at most max_predictions): 6, 3, 1, 0, 12
    assert draws.sum(-1).mean(0).tolist() == [6.0, 3.0, 1.0, 0.0, 12.0]
    per_position = draws.mean(0)[0, valid[0]]
    assert torch.all((per_position - 0.6).abs() < 0.05)                          # uniform over the items
    assert draws.mean(0)[4, valid[4]].mean().item() == pytest.approx(0.6, abs=1e-6)
    capped = cloze_mask(valid, 0.6, 4, 0.0, gen)
    assert capped.sum(-1).tolist() == [4, 3, 1, 0, 4]
    # the share of last-item-only rows
    last_only = torch.stack([cloze_mask(valid[:1].expand(400, -1), 0.6, 30, 0.25, gen) for _ in range(10)])
    share = (last_only.sum(-1) == 1).float().mean().item()
    assert share == pytest.approx(0.25, abs=0.03)
    assert last_only[last_only.sum(-1) == 1][:, -1].all()                       # and they mask the last item


def test_shapes_finite_loss_and_mask_at_inference():
    ds, train, valid, _, _ = small_world()
    torch.manual_seed(0)
    model = build_model("bert4rec", ds.space, **TINY)
    loss = model(train.take(np.arange(32)), "cpu", torch.Generator().manual_seed(0))
    assert loss.dim() == 0 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert model.items.table.weight.grad[model.mask_id].abs().sum() > 0       # [MASK] was an input
    model.eval()
    batch = valid.take(np.arange(6))
    scores = model.score_all(batch)
    assert scores.shape == (6, ds.space.n_items) and torch.isfinite(scores).all()
    # the user is the state of a [MASK] appended after the history, and padding does not change it
    t = model.tensors(batch, "cpu")
    window = model._window(t["mixed"], torch.full_like(t["mixed"][:, -1], model.mask_id))
    assert (window[:, -1] == model.mask_id).all() and torch.equal(window[:, :-1], t["mixed"][:, -(TINY["max_len"] - 1):])
    wide, _ = evaluation_views(list(ds.split("valid")["items"])[:6], ds.space, 40)
    torch.testing.assert_close(scores, model.score_all(wide))


def test_attention_is_bidirectional():
    ds, train, *_ = small_world()
    torch.manual_seed(0)
    model = build_model("bert4rec", ds.space, **TINY).eval()
    seq = torch.as_tensor(train.mixed[:4, -10:])
    states = model.encode(seq)
    changed = seq.clone()
    changed[:, -1] = (changed[:, -1] + 1) % ds.space.n_items
    states2 = model.encode(changed)
    # changing the latest item changes the earlier positions too (SASRec's causal mask would not)
    valid_rows = (seq[:, -3] != ds.space.n_items)
    assert not torch.allclose(states[valid_rows, -3], states2[valid_rows, -3])


def test_paper_defaults_and_training_window():
    ds, train, *_ = small_world()
    c = build_model("bert4rec", ds.space).config
    assert (c.d, c.n_blocks, c.n_heads, c.max_len, c.mask_prob, c.max_predictions) == (64, 2, 2, 50, 0.6, 30)
    with pytest.raises(ValueError, match="exceeds max_len 21"):
        build_model("bert4rec", ds.space, **TINY).encode(torch.zeros(1, 22, dtype=torch.long))


@pytest.mark.slow
def test_short_training_beats_popularity(tmp_path):
    from llmemf_lite.evaluate import evaluate_ranking, summarize
    from llmemf_lite.train import TrainConfig, train_model

    ds, train, valid, targets, cands = small_world()
    seqs = list(ds.split("train")["items"])

    def ndcg(model):
        s = summarize(evaluate_ranking(model, valid, targets, ds.space, cands), ds.pair.domains)
        return float(s.loc[s["protocol"] == "sampled", "NDCG@10"].mean())

    torch.manual_seed(0)
    model = build_model("bert4rec", ds.space, max_len=21)
    cfg = TrainConfig(epochs=6, batch_size=64, patience=10, progress=False)
    train_model(model, train, valid, targets, cands, ds.space, ds.pair.domains, cfg, tmp_path)
    assert ndcg(model) > ndcg(build_model("pop", ds.space).fit(seqs))
