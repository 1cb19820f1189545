"""What every trained sequential model shares: turning `SequenceViews` into tensors, scoring users against items,
the training loss, and `score_all` for the evaluator.

A subclass defines
  `streams`: [the item-embedding function ids -> (vectors [.., d], mask [..]) that users are scored against] (one
             stream: LLM-EMF's score-level fusion happens inside its item vectors, `llmemf.LLMEMF._output_items`);
  `objectives(t)`: (users per stream [B, L, d], targets [B, L], weight) triples; targets < 0 are ignored;
  `final_users(t)`: for each domain, the users per stream [B, d] that score the next item of that domain.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import ItemSpace
from .items import ContentProjection
from .objective import domain_negatives

# How an objective's per-domain cross-entropies are combined (`SequentialModel._loss`):
#   "domain": each domain's targets averaged, the domain means summed (a batch with three Food targets and a
#             thousand Kitchen targets weighs the three like the thousand);
#   "target": every target weighs the same: the weighted cross-entropies summed over every objective's targets, over
#             the number of targets of all objectives (LLM-EMF's objectives are one per domain, so only this weighs
#             its domains by their counts).
LOSS_WEIGHTINGS = ("domain", "target")

VIEW_FIELDS = ("mixed", "mixed_domain", "domain_seq", "domain_pos", "domain_next", "domain_time", "next_domain",
               "next_item")


class SequentialModel(nn.Module):
    def __init__(self, space: ItemSpace, n_negatives: int, loss_weighting: str = "domain"):
        super().__init__()
        if loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"loss_weighting must be one of {LOSS_WEIGHTINGS}, got {loss_weighting!r}")
        self.space, self.n_negatives, self.loss_weighting = space, n_negatives, loss_weighting

    # -- to implement ----------------------------------------------------------------------------------------------
    streams: list

    def objectives(self, t: dict):
        raise NotImplementedError

    def final_users(self, t: dict) -> list[list[torch.Tensor]]:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------------------------------
    def tensors(self, views, device) -> dict:
        """Views as tensors, trimmed to the longest sequence of the batch: columns that are padding in every row
        are dropped (left padding, so the kept columns are the last ones) and position indices shifted to match."""
        pad = views.pad
        lengths = max(int((views.mixed != pad).sum(1).max(initial=1)), int((views.domain_seq != pad).sum(-1).max(initial=1)))
        offset = views.mixed.shape[1] - lengths
        t = {}
        for f in VIEW_FIELDS:
            a = getattr(views, f)[..., offset:]
            if f in ("domain_pos", "domain_time"):
                a = np.where(a >= 0, a - offset, a)
            t[f] = torch.as_tensor(a, device=device)
        t["pad"] = pad
        return t

    @contextmanager
    def item_tables(self, touched: torch.Tensor | None = None):
        """Project the frozen content tables once for the forward pass inside (see `items.ContentProjection`):
        every item, or only the ids in `touched` (a training step: its sequences, targets and negatives)."""
        # a table already projected by an enclosing item_tables() (an evaluation over many batches) is kept
        projections = [m for m in self.modules() if isinstance(m, ContentProjection) and m.table is None]
        for m in projections:
            m.project(touched)
        try:
            yield
        finally:
            for m in projections:
                m.release()

    def forward(self, views, device, generator: torch.Generator) -> torch.Tensor:
        """The training loss (so that DistributedDataParallel sees the loss computation as the forward pass)."""
        return self.loss(views, device, generator)

    def score(self, users: list[torch.Tensor], ids: torch.Tensor, *, paired: bool) -> torch.Tensor:
        """users: [R, d] in a one-element list (the model's one item stream). paired: ids [R], row r against item
        ids[r] -> [R]; else ids [C] shared by all rows -> [R, C]."""
        (embed,), (u,) = self.streams, users
        vec = embed(ids)[0]
        return (u * vec).sum(-1) if paired else u @ vec.T

    def loss(self, views, device, generator: torch.Generator) -> torch.Tensor:
        with self.item_tables():
            return self._loss(self.tensors(views, device), device, generator)

    def _loss(self, t: dict, device, generator: torch.Generator, negatives: list | None = None) -> torch.Tensor:
        """The weighted next-item cross-entropies of `objectives(t)`. `negatives`: one id tensor per domain, shared
        by every objective (drawn here per objective and domain when None)."""
        total = torch.zeros((), device=device)
        per_target, n_targets = self.loss_weighting == "target", 0
        for users, targets, weight in self.objectives(t):
            n_targets += int((targets >= 0).sum()) if per_target else 0
            for d in range(2):
                rng = self.space.domain_range(d)
                sel = (targets >= rng.start) & (targets < rng.stop)
                if not bool(sel.any()):
                    continue
                neg_ids = negatives[d] if negatives is not None else \
                    domain_negatives(self.space, d, self.n_negatives, generator, device)
                U = [u[sel] for u in users]
                pos = self.score(U, targets[sel], paired=True)[:, None]
                # a sampled negative that happens to be the row's target is not a negative
                neg = self.score(U, neg_ids, paired=False).masked_fill(neg_ids[None, :] == targets[sel][:, None],
                                                                 float("-inf"))
                logits = torch.cat([pos, neg], dim=1)
                zeros = torch.zeros(len(logits), dtype=torch.long, device=device)
                ce = F.cross_entropy(logits, zeros, reduction="sum" if per_target else "mean")
                total = total + weight * ce
        return total / max(n_targets, 1) if per_target else total

    def score_domains(self, views, device="cpu", rows: list | None = None) -> list[torch.Tensor]:
        """[[B, n_x], [B, n_y]]: each domain's items scored by that domain's user at the last position; with
        `rows` (one index tensor per domain), only those rows of each domain ([len(rows[d]), n_d])."""
        t = self.tensors(views, device)
        with self.item_tables():
            finals = self.final_users(t)
            return [self.score(finals[d] if rows is None else [u[rows[d]] for u in finals[d]],
                               torch.arange(r.start, r.stop, device=device), paired=False)
                    for d, r in enumerate(map(self.space.domain_range, range(2)))]

    def score_all(self, views, device="cpu") -> torch.Tensor:
        """[B, n_items]: X items scored by the domain-X user, Y items by the domain-Y user, at the last position."""
        return torch.cat(self.score_domains(views, device), dim=1)


def gather_positions(states: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """states [..., B, L, d] (leading axes: stacked copies), positions [B, M] (indices into L, or -1)
    -> [..., B, M, d], zero where -1."""
    safe = positions.clamp(min=0)
    out = states.gather(-2, safe[..., None].expand(*states.shape[:-3], -1, -1, states.shape[-1]))
    return out * (positions >= 0)[..., None]
