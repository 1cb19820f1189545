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
from .data.errors import DataFormatError
from .data.lines import text_lines

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


def load_candidates(path: str | Path, targets: np.ndarray, space: ItemSpace, *,
                    n_negatives: int | None = None) -> np.ndarray:
    """Candidates written by another codebase: .npy, or whitespace-separated text with one case per line; [cases,
    n] item ids. Each row must hold n distinct items of its target's domain, the target not among them; with
    `n_negatives`, n must be that number, so that the file's protocol is the one its results are reported under.
    A violation is a DataFormatError (a ValueError) naming the file, the row (for text: the line) and what was
    expected: a repeated negative weighs that item several times and a short row makes the ranking easy, so either
    would be a wrong number, not a warning."""
    path = Path(path)
    cands = _candidate_ids(path)
    n = cands.shape[1]
    if len(cands) != len(targets):
        raise DataFormatError(path, f"candidates of shape {cands.shape}",
                              expected=f"({len(targets)}, n_negatives): one row per test case")
    if n_negatives is not None and n != n_negatives:
        raise DataFormatError(path, f"{n} negatives per case",
                              expected=f"{n_negatives} as the evaluation setting says (1 target + {n_negatives}); "
                                       f"set n_negatives={n} to evaluate under the file's own protocol")
    same_domain = space.domain_of(np.clip(cands, 0, space.n_items - 1)) == space.domain_of(targets)[:, None]
    ok = (cands >= 0) & (cands < space.n_items) & same_domain
    if not ok.all():
        row = int(np.flatnonzero(~ok.all(axis=1))[0])
        raise DataFormatError(path, f"row {row} has candidates outside the target's domain or the item range "
                              f"(item {int(cands[row][~ok[row]][0])})", line=_line(path, row),
                              expected=f"items of the target's domain, range "
                                       f"{space.domain_range(int(space.domain_of(targets[row])))}")
    if (cands == targets[:, None]).any():
        row = int(np.flatnonzero((cands == targets[:, None]).any(axis=1))[0])
        raise DataFormatError(path, f"row {row} lists its own target among the negatives", line=_line(path, row),
                              expected="negatives other than the target")
    ordered = np.sort(cands, axis=1)
    repeated = ordered[:, 1:] == ordered[:, :-1]
    if repeated.any():
        row = int(np.flatnonzero(repeated.any(axis=1))[0])
        item = int(ordered[row, 1:][repeated[row]][0])
        raise DataFormatError(path, f"row {row} lists item {item} {int((cands[row] == item).sum())} times",
                              line=_line(path, row), expected=f"{n} distinct negatives per case")
    return cands


def _line(path: Path, row: int) -> int | None:
    """The line of a text candidates file that holds `row` (a .npy file has rows, not lines)."""
    return None if path.suffix == ".npy" else row + 1


def _candidate_ids(path: Path) -> np.ndarray:
    """[cases, n] int64 ids of a candidates file; a value that is not a whole number is an error naming its row."""
    if not path.is_file():
        raise DataFormatError(path, "file not found", expected="a candidates file (.npy or text)")
    if path.suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise DataFormatError(path, f"cannot be read as a NumPy array ({e})",
                                  expected="a .npy file of integer item ids") from None
        if values.ndim != 2 or values.shape[1] == 0:
            raise DataFormatError(path, f"an array of shape {values.shape}", expected="(cases, n_negatives)")
        values = values.astype(np.float64) if values.dtype.kind == "f" else values
        if values.dtype.kind not in "iuf":
            raise DataFormatError(path, f"holds {values.dtype} values", expected="integer item ids")
    else:
        rows = [(n, line.split()) for n, line in text_lines(path, final_newline=False, what="a candidates file")
                if line.strip()]
        if not rows:
            raise DataFormatError(path, "holds no rows", expected="one line of item ids per test case")
        width = len(rows[0][1])
        for n, row in rows:
            if len(row) != width:
                raise DataFormatError(path, f"found {len(row)} ids", line=n,
                                      expected=f"{width} ids on every line, as on line {rows[0][0]}")
        try:
            values = np.array([row for _n, row in rows], dtype=np.float64)
        except ValueError:
            n, token = next((n, t) for n, row in rows for t in row if not _is_number(t))
            raise DataFormatError(path, f"{token!r} is not an item id", line=n,
                                  expected="whitespace-separated integer item ids") from None
    if values.dtype.kind == "f":
        whole = np.isfinite(values) & (values == np.round(values))
        if not whole.all():
            row, col = (int(i) for i in np.argwhere(~whole)[0])
            raise DataFormatError(path, f"row {row}, column {col} holds {values[row, col]!r}", line=_line(path, row),
                                  expected="integer item ids (a fractional id is not cut to an integer)")
    return values.astype(np.int64)


def _is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


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
        return torch.count_nonzero(cand > target_score, dim=1), torch.count_nonzero(cand == target_score, dim=1)
    if bool(scores.isnan().any()):   # a copy of the whole matrix only where it holds a NaN
        scores = nan_last(scores)
    # count_nonzero, not .sum(1): a bool sum first converts the whole [B, n_items] matrix to int64
    greater = torch.count_nonzero((scores > target_score) & domain_mask, dim=1)
    ties = torch.count_nonzero((scores == target_score) & domain_mask, dim=1) - 1
    return greater, torch.clamp(ties, min=0)


def history_mask(views, n_items: int, device="cpu"):
    """[B, n_items] bool: True at the items of each row's history (the merged window the model reads)."""
    import torch

    mixed = torch.as_tensor(views.mixed, device=device)
    out = torch.zeros(len(mixed), n_items + 1, dtype=torch.bool, device=device)   # the last column: PAD
    out.scatter_(1, mixed, True)
    return out[:, :n_items]


def evaluate_ranking(model, views, targets: np.ndarray, space: ItemSpace, candidates: np.ndarray,
                     config: EvalConfig = EvalConfig(), device: str = "cpu") -> pd.DataFrame:
    """Score every case under both protocols; one row per (case, protocol) with greater, ties and the metrics.

    Full ranking ranks the target among every item of its domain except the user's own history items (the data
    have no repeat interactions, so a history item ranked above the target is a sure miss that no deployed
    recommender would make; RecBole's full ranking masks them too). The sampled protocol keeps the LLMCDSR
    convention: the target against its candidates, whatever they are, so candidate files of other codebases
    compare. The frozen content tables are projected once for all batches (`item_tables`)."""
    import contextlib

    import torch

    rows = {p: {"greater": np.zeros(len(targets), np.int64), "ties": np.zeros(len(targets), np.int64)}
            for p in PROTOCOLS}
    model.eval()
    tables = model.item_tables() if hasattr(model, "item_tables") else contextlib.nullcontext()
    ranges = [space.domain_range(d) for d in range(2)]
    target_domain = space.domain_of(targets)
    # batches of similar lengths, shortest first: each batch is trimmed to its longest history (models.base), so
    # little padding is computed (the cases' results are put back in their own order)
    order = np.argsort((views.mixed != views.pad).sum(1), kind="stable")
    with torch.inference_mode(), tables:
        for start in range(0, len(targets), config.batch_size):
            idx = order[start:start + config.batch_size]
            batch = views.take(idx)
            # each domain's scores apart: a target competes with its own domain only, so the [cases, n_items]
            # matrix of both domains is never built (its copy and comparisons were a third of the evaluation)
            picks = [np.flatnonzero(target_domain[idx] == d) for d in range(2)]
            rows_of = [torch.as_tensor(sel, device=device) for sel in picks]
            if hasattr(model, "score_domains"):
                parts = model.score_domains(batch, device, rows=rows_of)
            else:
                every = model.score_all(batch, device)
                parts = [every[rows_of[d], r.start:r.stop] for d, r in enumerate(ranges)]
            history = history_mask(batch, space.n_items, device)
            for d, r in enumerate(ranges):
                sel, rows_d = picks[d], rows_of[d]
                if not len(sel):
                    continue
                scores = parts[d].float()
                tgt = torch.as_tensor(targets[idx[sel]] - r.start, device=device)
                cands = torch.as_tensor(candidates[idx[sel]] - r.start, device=device)
                g, t = count_greater_and_ties(scores, tgt, candidates=cands)
                rows["sampled"]["greater"][idx[sel]] = g.cpu().numpy()
                rows["sampled"]["ties"][idx[sel]] = t.cpu().numpy()
                mask = ~history[rows_d, r.start:r.stop]
                mask[torch.arange(len(tgt), device=device), tgt] = True   # a target is never masked as history
                g, t = count_greater_and_ties(scores, tgt, domain_mask=mask)
                rows["full"]["greater"][idx[sel]] = g.cpu().numpy()
                rows["full"]["ties"][idx[sel]] = t.cpu().numpy()
    frames = []
    for p in PROTOCOLS:
        greater, ties = rows[p]["greater"], rows[p]["ties"]
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
