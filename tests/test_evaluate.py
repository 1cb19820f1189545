import numpy as np
import pytest
import torch

from llmemf_lite.data.dataset import ItemSpace
from llmemf_lite.evaluate import (METRICS, count_greater_and_ties, expected_rank_metrics, load_candidates,
                                  sample_candidates)

SPACE = ItemSpace(1200, 1500)


def test_exact_metrics_without_ties():
    m = expected_rank_metrics(np.array([0, 1, 4, 9, 10]), np.zeros(5, int))
    np.testing.assert_allclose(m["HR@1"], [1, 0, 0, 0, 0])
    np.testing.assert_allclose(m["HR@5"], [1, 1, 1, 0, 0])
    np.testing.assert_allclose(m["HR@10"], [1, 1, 1, 1, 0])
    np.testing.assert_allclose(m["MRR"], [1, 1 / 2, 1 / 5, 1 / 10, 1 / 11])
    np.testing.assert_allclose(m["NDCG@10"], [1, 1 / np.log2(3), 1 / np.log2(6), 1 / np.log2(11), 0])
    np.testing.assert_allclose(m["NDCG@5"], [1, 1 / np.log2(3), 1 / np.log2(6), 0, 0])


def test_all_tied_model_gets_chance_not_perfect():
    # a constant model: the target ties with all 999 candidates
    m = expected_rank_metrics(np.array([0]), np.array([999]))
    assert m["HR@1"][0] == pytest.approx(1 / 1000)
    assert m["HR@10"][0] == pytest.approx(10 / 1000)
    assert m["MRR"][0] == pytest.approx(np.mean(1 / np.arange(1, 1001)))
    assert m["NDCG@10"][0] == pytest.approx(np.sum(1 / np.log2(np.arange(10) + 2)) / 1000)


def test_ties_average_over_positions():
    # 2 candidates above, 3 tied: rank uniform on {2,3,4,5}
    m = expected_rank_metrics(np.array([2]), np.array([3]))
    assert m["HR@5"][0] == pytest.approx(3 / 4)
    assert m["MRR"][0] == pytest.approx(np.mean([1 / 3, 1 / 4, 1 / 5, 1 / 6]))
    assert set(m) == set(METRICS)


def test_counting_on_scores_sampled_and_full():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.1, 0.5, 0.7]])
    target = torch.tensor([0])
    g, t = count_greater_and_ties(scores, target, candidates=torch.tensor([[1, 2, 3]]))
    assert (int(g), int(t)) == (1, 1)
    mask = torch.tensor([[True, True, True, True, False, False]])   # items 4, 5 are of the other domain
    g, t = count_greater_and_ties(scores, target, domain_mask=mask)
    assert (int(g), int(t)) == (1, 1)                              # item 2 ties; the target is not its own tie


def test_nan_scores_rank_last_not_first():
    nan = float("nan")
    scores = torch.tensor([[nan, 0.9, 0.5, nan], [nan, nan, nan, nan]])
    target = torch.tensor([0, 0])
    g, t = count_greater_and_ties(scores, target, candidates=torch.tensor([[1, 2, 3], [1, 2, 3]]))
    assert g.tolist() == [2, 0] and t.tolist() == [1, 3]     # a NaN ties only with NaN; all-NaN is all tied
    g, t = count_greater_and_ties(scores, target, domain_mask=torch.ones(2, 4, dtype=torch.bool))
    assert g.tolist() == [2, 0] and t.tolist() == [1, 3]
    m = expected_rank_metrics(g.numpy(), t.numpy())
    assert m["HR@1"][1] == pytest.approx(1 / 4)              # a diverged model scores like chance, not like 1


def test_sampled_candidates_are_in_domain_fixed_and_exclude_target():
    targets = np.array([0, 5, 1199, 1200, 2699, 1700])
    a = sample_candidates(targets, SPACE, 999, seed=7)
    b = sample_candidates(targets, SPACE, 999, seed=7)
    assert a.shape == (6, 999) and np.array_equal(a, b)
    assert not (a == targets[:, None]).any()
    assert all(len(set(row)) == 999 for row in a)
    dom = SPACE.domain_of(a)
    assert (dom[:3] == 0).all() and (dom[3:] == 1).all()
    assert not np.array_equal(a, sample_candidates(targets, SPACE, 999, seed=8))
    with pytest.raises(ValueError, match="cannot sample 999"):
        sample_candidates(np.array([0]), ItemSpace(500, 2000), 999, seed=0)


def test_candidates_from_another_codebase(tmp_path):
    targets = np.array([3, 1300])
    good = sample_candidates(targets, SPACE, 999, seed=1)
    np.save(tmp_path / "c.npy", good)
    assert np.array_equal(load_candidates(tmp_path / "c.npy", targets, SPACE), good)
    np.savetxt(tmp_path / "c.txt", good, fmt="%d")
    assert np.array_equal(load_candidates(tmp_path / "c.txt", targets, SPACE), good)
    bad = good.copy()
    bad[1, 5] = 10                     # a food item among a kitchen target's candidates
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(ValueError, match="row 1 has candidates outside the target's domain"):
        load_candidates(tmp_path / "bad.npy", targets, SPACE)
    bad = good.copy()
    bad[0, 0] = 3
    np.save(tmp_path / "self.npy", bad)
    with pytest.raises(ValueError, match="row 0 lists its own target"):
        load_candidates(tmp_path / "self.npy", targets, SPACE)
    with pytest.raises(ValueError, match="expected \\(2, n_negatives\\)"):
        np.save(tmp_path / "short.npy", good[:1])
        load_candidates(tmp_path / "short.npy", targets, SPACE)


def test_saved_candidates_are_reused_only_for_the_same_cases_and_seed(tmp_path):
    from llmemf_lite.evaluate import EvalConfig
    from llmemf_lite.experiment import _fixed_candidates

    path, cfg = tmp_path / "test_candidates.npy", EvalConfig(n_negatives=999)
    targets = np.array([3, 1300, 7])
    first = _fixed_candidates(path, targets, SPACE, cfg, 1)
    assert np.array_equal(first, sample_candidates(targets, SPACE, 999, cfg.candidate_seed + 1))
    np.save(path, first[:, ::-1])            # a reused file is read, not drawn again
    assert np.array_equal(_fixed_candidates(path, targets, SPACE, cfg, 1), first[:, ::-1])
    # same shape, other cases (the dataset changed under the same folder): drawn again, not reused
    other = np.array([4, 1301, 8])
    again = _fixed_candidates(path, other, SPACE, cfg, 1)
    assert np.array_equal(again, sample_candidates(other, SPACE, 999, cfg.candidate_seed + 1))
    # same cases, another seed: drawn again
    seeded = _fixed_candidates(path, other, SPACE, EvalConfig(n_negatives=999, candidate_seed=5), 1)
    assert np.array_equal(seeded, sample_candidates(other, SPACE, 999, 6))
    # a file damaged in place (a target among its own negatives) is not trusted
    bad = seeded.copy()
    bad[0, 0] = other[0]
    np.save(path, bad)
    assert np.array_equal(_fixed_candidates(path, other, SPACE, EvalConfig(n_negatives=999, candidate_seed=5), 1),
                          seeded)


def test_full_ranking_leaves_out_the_users_own_history_items_and_sampled_keeps_the_llmcdsr_convention():
    """A model that scores the user's history items highest: under full ranking they are not competitors (the data
    have no repeat interactions), so the target is first; the sampled protocol ranks against its candidates as
    given, history items included."""
    from llmemf_lite.batching import evaluation_views
    from llmemf_lite.evaluate import evaluate_ranking

    space = ItemSpace(20, 30)
    history, target = [3, 25, 4, 30], 5

    class HistoryFirst:
        def eval(self):
            return self

        def score_all(self, views, device="cpu"):
            scores = torch.zeros(len(views), space.n_items)
            scores[:, target] = 1.0
            scores[:, [3, 4, 25, 30]] = 2.0                      # the history, above the target
            return scores

    views, targets = evaluation_views([np.array(history + [target])], space, 10)
    candidates = np.array([[3, 4, 6, 7, 8]])                    # two history items among them
    frame = evaluate_ranking(HistoryFirst(), views, targets, space, candidates).set_index("protocol")
    assert frame.loc["full", "greater"] == 0 and frame.loc["full", "HR@1"] == 1.0
    assert frame.loc["sampled", "greater"] == 2


def test_evaluation_batches_cases_of_similar_length_and_returns_them_in_their_own_order():
    """Each batch is trimmed to its longest history, so batches of similar lengths compute little padding; the
    results come back in the cases' order, whatever the batching."""
    from llmemf_lite.batching import evaluation_views
    from llmemf_lite.evaluate import EvalConfig, evaluate_ranking

    space = ItemSpace(20, 30)
    rng = np.random.default_rng(0)
    sequences = [rng.choice(np.arange(space.n_items), n + 1, replace=False) for n in (9, 1, 8, 2, 7, 1, 9, 2)]
    views, targets = evaluation_views(sequences, space, 10)
    widths = []

    class ItemSum:                                  # a score of item i: i times the sum of the history's ids
        def eval(self):
            return self

        def score_all(self, views, device="cpu"):
            lengths = (views.mixed != views.pad).sum(1)
            widths.append(int(lengths.max()))
            total = torch.as_tensor(np.where(views.mixed != views.pad, views.mixed, 0).sum(1), dtype=torch.float32)
            return total[:, None] * torch.arange(space.n_items, dtype=torch.float32)[None] % 7

    candidates = sample_candidates(targets, space, 5, seed=0)
    by_two = evaluate_ranking(ItemSum(), views, targets, space, candidates, EvalConfig(batch_size=2))
    assert widths == [1, 2, 8, 9]                   # [1, 1], [2, 2], [7, 8], [9, 9]: sorted by length
    at_once = evaluate_ranking(ItemSum(), views, targets, space, candidates, EvalConfig(batch_size=8))
    assert by_two.equals(at_once) and by_two["case"].tolist() == list(range(8)) * 2
