"""The two split protocols of cross-domain sequential recommendation, as functions: the one place they are defined.

What this file is: turning per-user chronological sequences into canonical `sequences` rows (user, split, kind,
items, timestamps) under either protocol. Every importer that builds splits itself (raw Amazon, RecBole atomic
files without benchmark files) calls `split_sequences`; nothing else re-implements a split.
What it is not: reading files, filtering users or items (see `amazon.py`), or evaluation.

- `leave_one_out` (per-user chronological, SASRec / C2DSR style): a user's sequence s gives a training row s[:-2],
  a validation row s[:-1] (target s[-2]) and a test row s (target s[-1]). Every user appears in all three splits.
- `held_out_users` (the LLMCDSR release's protocol): users are shuffled with a seed and a share of them is held out
  for validation and for test; a held-out user's whole sequence is one evaluation row whose last item is the target,
  and none of their items is seen in training.

In both, an evaluation row is a chronological sequence whose last item is the target (`history_and_target`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .dataset import SEQUENCE_COLUMNS, ItemSpace

PROTOCOLS = ("leave_one_out", "held_out_users")


@dataclass(frozen=True)
class SplitConfig:
    split_protocol: str = "leave_one_out"  # "leave_one_out" | "held_out_users"
    valid_share: float = 0.1               # held_out_users: share of users held out for validation
    test_share: float = 0.1                # held_out_users: share of users held out for test
    seed: int = 0                          # held_out_users: which users are held out

    def __post_init__(self):
        if self.split_protocol not in PROTOCOLS:
            raise ValueError(f"unknown split protocol {self.split_protocol!r}; choose one of {PROTOCOLS}")
        if not (0 <= self.valid_share < 1 and 0 <= self.test_share < 1 and self.valid_share + self.test_share < 1):
            raise ValueError(f"valid_share + test_share must lie in [0, 1), got {self.valid_share} + {self.test_share}")

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One line for the dataset card and the notebook."""
        if self.split_protocol == "leave_one_out":
            return "leave-one-out per user: train s[:-2], valid s[:-1] (target s[-2]), test s (target s[-1])"
        return (f"held-out users: {self.valid_share:.0%} valid and {self.test_share:.0%} test users (seed {self.seed}), "
                f"each a whole sequence whose last item is the target")


# one user's chronological sequence: (user name, global item ids, timestamps or None)
UserSequence = tuple[str, np.ndarray, "np.ndarray | None"]


def kind_of(items: np.ndarray, space: ItemSpace) -> str:
    """"mixed" when a row holds items of both domains, else "single_x" / "single_y"."""
    dom = space.domain_of(items)
    if dom.min() != dom.max():
        return "mixed"
    return "single_x" if dom[0] == 0 else "single_y"


def _row(user: str, split: str, items: np.ndarray, ts, space: ItemSpace) -> tuple:
    return (user, split, kind_of(items, space), np.asarray(items, dtype=np.int64),
            None if ts is None else np.asarray(ts, dtype=np.int64))


def leave_one_out(sequences: Iterable[UserSequence], space: ItemSpace) -> tuple[list[tuple], dict]:
    """Rows of the per-user leave-one-out split, and the counted skips.

    A user needs 3 items (a history, a validation target, a test target); with exactly 3 the training row would hold
    one item, which carries no next-item pair, so it is left out (counted) while the valid and test rows stay."""
    rows, too_short, no_train_row = [], [], 0
    for user, items, ts in sequences:
        n = len(items)
        if n < 3:
            too_short.append(user)
            continue
        cut = (lambda k: None if ts is None else ts[:k])
        if n >= 4:
            rows.append(_row(user, "train", items[:-2], cut(-2), space))
        else:
            no_train_row += 1
        rows.append(_row(user, "valid", items[:-1], cut(-1), space))
        rows.append(_row(user, "test", items, ts, space))
    skipped = {}
    if too_short:
        skipped["users_too_short_for_leave_one_out"] = {
            "reason": "fewer than 3 interactions: no history + validation target + test target", "unit": "users",
            "count": len(too_short), "examples": too_short[:10]}
    if no_train_row:
        skipped["train_rows_with_one_item"] = {
            "reason": "users with exactly 3 interactions: their training row would hold one item (no next-item pair); "
                      "their valid and test rows are kept", "unit": "rows", "count": no_train_row}
    return rows, skipped


def held_out_users(sequences: Sequence[UserSequence], space: ItemSpace, *, valid_share: float, test_share: float,
                   seed: int) -> tuple[list[tuple], dict]:
    """Rows of the held-out-users split: a seeded shuffle of the users (sorted by name first, so the result does not
    depend on input order) puts round(valid_share * n) users in valid, round(test_share * n) in test, the rest in
    train; each user contributes one row, the whole sequence."""
    usable = sorted((s for s in sequences if len(s[1]) >= 2), key=lambda s: s[0])
    too_short = [s[0] for s in sequences if len(s[1]) < 2]
    order = np.random.default_rng(seed).permutation(len(usable))
    n_valid, n_test = round(valid_share * len(usable)), round(test_share * len(usable))
    split_of = np.array(["train"] * len(usable), dtype=object)
    split_of[order[:n_valid]] = "valid"
    split_of[order[n_valid:n_valid + n_test]] = "test"
    rows = [_row(user, split_of[i], items, ts, space) for i, (user, items, ts) in enumerate(usable)]
    skipped = {}
    if too_short:
        skipped["users_with_one_interaction"] = {"reason": "a single interaction carries no next-item pair",
                                                 "unit": "users", "count": len(too_short), "examples": too_short[:10]}
    return rows, skipped


def split_sequences(sequences: Sequence[UserSequence], space: ItemSpace,
                    config: SplitConfig = SplitConfig()) -> tuple[pd.DataFrame, dict]:
    """Canonical `sequences` table for chronological per-user sequences under `config`, and the counted skips."""
    if config.split_protocol == "leave_one_out":
        rows, skipped = leave_one_out(sequences, space)
    else:
        rows, skipped = held_out_users(sequences, space, valid_share=config.valid_share,
                                       test_share=config.test_share, seed=config.seed)
    order = {"train": 0, "valid": 1, "test": 2}
    rows.sort(key=lambda r: (order[r[1]], r[0]))  # a stable, readable order: split, then user
    return pd.DataFrame(rows, columns=list(SEQUENCE_COLUMNS)), skipped
