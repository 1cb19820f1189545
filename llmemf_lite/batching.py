"""From canonical sequences to the padded index arrays every model reads: the three views of a user and their targets.

What this file is: the one place that turns a chronological mixed sequence into
  - the merged view S_X+Y, the domain views S_X and S_Y (left-padded to `max_len`),
  - the map from each merged position to the latest position of each domain view at or before it,
  - the next-item targets of each position (next item of domain X, of domain Y, and the very next item).
What it is not: a model, a sampler of negatives, or the evaluation protocol (`evaluate.py`).

Conventions (used by every model):
  PAD: the padding id is `n_items` (one past the last real item), so embedding tables have n_items + 1 rows.
  NO_TARGET: -1 marks a position with nothing to predict; NO_POS: -1 marks "no item of that domain yet".
  Left padding: the most recent item is always at index max_len - 1.
  A training row's input is sequence[:-1] and its targets come from sequence[1:]; an evaluation row's input is its
  history (sequence[:-1]) and its target is sequence[-1] (see `data.dataset.history_and_target`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data.dataset import ItemSpace

NO_TARGET = -1
NO_POS = -1


@dataclass
class SequenceViews:
    """Arrays for N user rows, each [N, L] int64 unless noted."""
    mixed: np.ndarray          # merged items, PAD-padded on the left
    domain_seq: np.ndarray     # [2, N, L]: S_X and S_Y, PAD-padded on the left
    domain_pos: np.ndarray     # [2, N, L]: for merged position t, index in domain_seq[d] of the latest d-item <= t
    mixed_domain: np.ndarray   # domain (0/1) of each merged item, 0 on padding
    next_domain: np.ndarray    # [2, N, L]: next item of domain d after merged position t (NO_TARGET if none)
    next_item: np.ndarray      # the very next item after merged position t (NO_TARGET if none)
    domain_next: np.ndarray    # [2, N, L]: for position k of domain_seq[d], the next d-item after it
    domain_time: np.ndarray    # [2, N, L]: for position k of domain_seq[d], its index in `mixed` (NO_POS if older
                               # than the merged window)
    pad: int

    def __len__(self) -> int:
        return len(self.mixed)

    def take(self, index) -> "SequenceViews":
        return SequenceViews(self.mixed[index], self.domain_seq[:, index], self.domain_pos[:, index],
                             self.mixed_domain[index], self.next_domain[:, index], self.next_item[index],
                             self.domain_next[:, index], self.domain_time[:, index], self.pad)


def _views_of_one(seq: np.ndarray, future: np.ndarray, space: ItemSpace, L: int, out: dict, row: int) -> None:
    """Fill row `row` of the arrays in `out` for input `seq` (chronological) whose continuation is `future`."""
    full = np.concatenate([seq, future])
    dom_full = space.domain_of(full)
    n = len(seq)
    # next item of each domain strictly after position t, for t in the input (scan from the end)
    nxt = np.full((2, len(full)), NO_TARGET, dtype=np.int64)
    upcoming = [NO_TARGET, NO_TARGET]
    for t in range(len(full) - 1, -1, -1):
        nxt[:, t] = upcoming
        upcoming[dom_full[t]] = full[t]
    start = max(0, n - L)
    window = slice(start, n)
    m = n - start
    out["mixed"][row, L - m:] = seq[window]
    out["mixed_domain"][row, L - m:] = dom_full[window]
    out["next_domain"][:, row, L - m:] = nxt[:, window]
    out["next_item"][row, L - m:] = np.where(np.arange(start, n) + 1 < len(full),
                                              full[np.minimum(np.arange(start, n) + 1, len(full) - 1)], NO_TARGET)
    dom_in = dom_full[:n]
    for d in range(2):
        positions = np.flatnonzero(dom_in == d)            # merged positions of d-items in the whole input
        kept = positions[-L:]                              # the domain view keeps its last L items
        k = len(kept)
        out["domain_seq"][d, row, L - k:] = seq[kept]
        out["domain_next"][d, row, L - k:] = nxt[d, kept]
        # latest d-item at or before each merged position, as an index into the left-padded domain view
        count_upto = np.cumsum(dom_in == d) - 1            # index among all d-items, -1 if none yet
        idx = count_upto[window] - (len(positions) - k)    # shift to the kept window
        out["domain_pos"][d, row, L - m:] = np.where(idx >= 0, L - k + idx, NO_POS)
        merged_index = kept - start + (L - m)               # position of each kept d-item in the padded `mixed`
        out["domain_time"][d, row, L - k:] = np.where(kept >= start, merged_index, NO_POS)


def build_views(sequences, space: ItemSpace, max_len: int, *, futures=None) -> SequenceViews:
    """Views for a list of input sequences. `futures[i]` (optional) continues sequence i: its items supply the
    targets of the last positions (training rows pass their own last item; evaluation rows pass nothing)."""
    N, L, pad = len(sequences), max_len, space.n_items
    out = {"mixed": np.full((N, L), pad, np.int64), "mixed_domain": np.zeros((N, L), np.int64),
           "next_item": np.full((N, L), NO_TARGET, np.int64),
           "domain_seq": np.full((2, N, L), pad, np.int64), "domain_pos": np.full((2, N, L), NO_POS, np.int64),
           "next_domain": np.full((2, N, L), NO_TARGET, np.int64),
           "domain_next": np.full((2, N, L), NO_TARGET, np.int64),
           "domain_time": np.full((2, N, L), NO_POS, np.int64)}
    empty = np.zeros(0, np.int64)
    for i, seq in enumerate(sequences):
        _views_of_one(np.asarray(seq, np.int64), empty if futures is None else np.asarray(futures[i], np.int64),
                      space, L, out, i)
    return SequenceViews(pad=pad, **out)


def training_views(sequences, space: ItemSpace, max_len: int) -> SequenceViews:
    """Training rows: input sequence[:-1], every position's targets taken from what follows it."""
    return build_views([s[:-1] for s in sequences], space, max_len, futures=[s[-1:] for s in sequences])


def evaluation_views(sequences, space: ItemSpace, max_len: int) -> tuple[SequenceViews, np.ndarray]:
    """Evaluation rows: (views of each history, targets). The target is each sequence's last item."""
    views = build_views([s[:-1] for s in sequences], space, max_len)
    return views, np.array([int(s[-1]) for s in sequences], dtype=np.int64)
