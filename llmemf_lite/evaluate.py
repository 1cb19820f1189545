"""The evaluation protocol, defined once and used by every model: ranking metrics per domain, two protocols.

Protocols (both always reported):
  "sampled": the target is ranked against `n_negatives` (999, as the paper) items sampled uniformly without
             replacement from the target's own domain, excluding the target. The candidates are fixed by a seed and
             saved (`candidates_path`), so every model is scored on the very same candidates; a file written by
             another codebase ([cases, n_negatives] item ids) can be loaded instead (`load_candidates`).
  "full":    the target is ranked against every other item of its domain (sampled metrics can mislead).

Ties are explicit: a case's rank is uniform over the positions its tied candidates could take, and every metric is
its exact expectation under that random tie-breaking. A model that scores everything equally gets HR@1 = 1/(C+1),
not 1. Per case we keep `greater` (candidates scored strictly above the target) and `ties` (candidates scored
equal); `case_metrics` recomputes every number from those two columns.

Scoring is batched on the model's device: a model exposes `score_all(views) -> [B, n_items]`; no Python loop runs
per test case.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .data.dataset import ItemSpace

METRICS = ("MRR", "NDCG@5", "NDCG@10", "HR@1", "HR@5", "HR@10")
PROTOCOLS = ("sampled", "full")


@dataclass(frozen=True)
class EvalConfig:
    n_negatives: int = 999     # the paper's protocol: 1 target + 999 sampled negatives
    candidate_seed: int = 2025
    batch_size: int = 256


def sample_candidates(targets: np.ndarray, space: ItemSpace, n_negatives: int, seed: int) -> np.ndarray:
    """[cases, n_negatives] negatives per case, uniform without replacement from the target's domain, target
    excluded. Deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(targets), n_negatives), dtype=np.int64)
    for d in range(2):
        rows = np.flatnonzero(space.domain_of(targets) == d)
        lo, size = space.domain_range(d).start, len(space.domain_range(d))
        if size - 1 < n_negatives:
            raise ValueError(f"domain {d} has {size} items: cannot sample {n_negatives} negatives besides the target")
        # argsort of random keys = a random permutation per row, vectorised; drop the target, keep n_negatives
        keys = rng.random((len(rows), size))
        keys[np.arange(len(rows)), targets[rows] - lo] = np.inf        # the target sorts last: never a negative
        out[rows] = np.argsort(keys, axis=1)[:, :n_negatives] + lo
    return out


def load_candidates(path: str | Path, targets: np.ndarray, space: ItemSpace) -> np.ndarray:
    """Read candidates saved as .npy (or whitespace text), [cases, n] item ids; check they fit the cases."""
    path = Path(path)
    cands = np.load(path) if path.suffix == ".npy" else np.loadtxt(path, dtype=np.int64, ndmin=2)
    cands = np.asarray(cands, dtype=np.int64)
    if cands.ndim != 2 or len(cands) != len(targets):
        raise ValueError(f"{path}: candidates of shape {cands.shape}, expected ({len(targets)}, n_negatives)")
    same_domain = space.domain_of(cands) == space.domain_of(targets)[:, None]
    if cands.min() < 0 or cands.max() >= space.n_items or not same_domain.all():
        row = int(np.flatnonzero(~same_domain.all(axis=1))[0]) if not same_domain.all() else 0
        raise ValueError(f"{path}: row {row} has candidates outside the target's domain or the item range")
    if (cands == targets[:, None]).any():
        row = int(np.flatnonzero((cands == targets[:, None]).any(axis=1))[0])
        raise ValueError(f"{path}: row {row} lists its own target among the negatives")
    return cands


def expected_rank_metrics(greater: np.ndarray, ties: np.ndarray) -> dict[str, np.ndarray]:
    """Per-case metrics, exact expectations over a uniform random order of the `ties` candidates tied with the
    target: the target's 0-based rank is uniform on {greater, ..., greater + ties}."""
    greater = np.asarray(greater, dtype=np.float64)
    ties = np.asarray(ties, dtype=np.int64)
    span = ties + 1
    out = {}
    # MRR: mean of 1/(r+1) over the span, via harmonic numbers H(n) = sum_{i<=n} 1/i
    out["MRR"] = (_harmonic(greater + span) - _harmonic(greater)) / span
    for k in (1, 5, 10):
        out[f"HR@{k}"] = np.clip((k - greater) / span, 0.0, 1.0)
    for k in (5, 10):
        disc = 1.0 / np.log2(np.arange(k) + 2.0)                       # gain of rank r < k
        cum = np.concatenate([[0.0], np.cumsum(disc)])
        lo = np.clip(greater, 0, k).astype(np.int64)
        hi = np.clip(greater + span, 0, k).astype(np.int64)
        out[f"NDCG@{k}"] = (cum[hi] - cum[lo]) / span
    return {m: out[m] for m in METRICS}


def _harmonic(n: np.ndarray) -> np.ndarray:
    # exact for the integer arguments used here; vectorised through a cumulative table
    n = np.asarray(n, dtype=np.int64)
    table = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, int(n.max()) + 1))]) if n.size else np.zeros(1)
    return table[n]


def count_greater_and_ties(scores, targets, domain_mask=None, candidates=None):
    """torch: scores [B, n_items]; either candidates [B, C] (sampled) or domain_mask [B, n_items] (full ranking,
    the target excluded from its own ties). Returns (greater [B], ties [B]) as int64 tensors. A NaN score counts
    as -inf: a NaN target would otherwise be above nothing and tied with nothing, i.e. ranked first."""
    import torch

    def nan_last(x):
        return x.masked_fill(x.isnan(), float("-inf"))

    target_score = nan_last(scores.gather(1, targets[:, None]))
    if candidates is not None:   # only the gathered scores need it, not the whole [B, n_items] matrix
        cand = nan_last(scores.gather(1, candidates))
        return (cand > target_score).sum(1), (cand == target_score).sum(1)
    scores = nan_last(scores)
    greater = ((scores > target_score) & domain_mask).sum(1)
    ties = ((scores == target_score) & domain_mask).sum(1) - 1
    return greater, torch.clamp(ties, min=0)


def evaluate_ranking(model, views, targets: np.ndarray, space: ItemSpace, candidates: np.ndarray,
                     config: EvalConfig = EvalConfig(), device: str = "cpu") -> pd.DataFrame:
    """Score every case under both protocols; one row per (case, protocol) with greater, ties and the metrics."""
    import torch

    item_domain = torch.as_tensor(space.domain_of(np.arange(space.n_items)), device=device)
    rows = {p: {"greater": [], "ties": []} for p in PROTOCOLS}
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(targets), config.batch_size):
            idx = np.arange(start, min(start + config.batch_size, len(targets)))
            scores = model.score_all(views.take(idx), device=device).float()
            tgt = torch.as_tensor(targets[idx], device=device)
            g, t = count_greater_and_ties(scores, tgt, candidates=torch.as_tensor(candidates[idx], device=device))
            rows["sampled"]["greater"].append(g.cpu().numpy()), rows["sampled"]["ties"].append(t.cpu().numpy())
            mask = item_domain[None, :] == item_domain[tgt][:, None]
            g, t = count_greater_and_ties(scores, tgt, domain_mask=mask)
            rows["full"]["greater"].append(g.cpu().numpy()), rows["full"]["ties"].append(t.cpu().numpy())
    frames = []
    for p in PROTOCOLS:
        greater, ties = np.concatenate(rows[p]["greater"]), np.concatenate(rows[p]["ties"])
        frame = pd.DataFrame({"case": np.arange(len(targets)), "protocol": p, "target": targets,
                              "domain": space.domain_of(targets), "greater": greater, "ties": ties})
        for m, v in expected_rank_metrics(greater, ties).items():
            frame[m] = v
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def summarize(case_frame: pd.DataFrame, domain_names: tuple[str, str]) -> pd.DataFrame:
    """Mean metrics per (protocol, domain), from a per-case frame of `evaluate_ranking`."""
    out = case_frame.groupby(["protocol", "domain"])[list(METRICS)].mean().reset_index()
    out["domain"] = out["domain"].map(dict(enumerate(domain_names)))
    out["cases"] = case_frame.groupby(["protocol", "domain"]).size().to_numpy()
    return out
