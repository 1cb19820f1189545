"""What every trained sequential model shares: turning `SequenceViews` into tensors, scoring users against items
(with score-level fusion over several item streams), the training loss, and `score_all` for the evaluator.

A subclass defines
  `streams`: a list of item-embedding functions ids -> (vectors [.., d], mask [..]); one stream unless the model
             fuses modalities at score level, when each modality is its own stream;
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

VIEW_FIELDS = ("mixed", "mixed_domain", "domain_seq", "domain_pos", "domain_next", "domain_time", "next_domain",
               "next_item")


class SequentialModel(nn.Module):
    def __init__(self, space: ItemSpace, n_negatives: int):
        super().__init__()
        self.space, self.n_negatives = space, n_negatives
        self.stream_weight = nn.Parameter(torch.zeros(0))   # subclasses with several streams resize it

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
    def item_tables(self):
        """Project every frozen content table once for the forward pass inside (see `items.ContentProjection`)."""
        projections = [m for m in self.modules() if isinstance(m, ContentProjection)]
        for m in projections:
            m.table = m.project_all()
        try:
            yield
        finally:
            for m in projections:
                m.table = None

    def forward(self, views, device, generator: torch.Generator) -> torch.Tensor:
        """The training loss (so that DistributedDataParallel sees the loss computation as the forward pass)."""
        return self.loss(views, device, generator)

    def score(self, users: list[torch.Tensor], ids: torch.Tensor, *, paired: bool) -> torch.Tensor:
        """users: per stream [R, d]. paired: ids [R], row r against item ids[r] -> [R]; else ids [C] shared by all
        rows -> [R, C]."""
        # score-level fusion: a weighted mean over the streams the item has (a missing modality is left out). The
        # weighted logits are summed as they come rather than stacked into [streams, R, C] first (on a 36k-item
        # catalogue the stacks were ~40% of the evaluation time); the order of every addition is the stack's, so
        # the scores and the gradients are the same to the bit
        total = norm = None
        for s, (embed, u) in enumerate(zip(self.streams, users)):
            vec, mask = embed(ids)
            logit = (u * vec).sum(-1) if paired else u @ vec.T
            if len(self.streams) == 1:
                return logit
            w = F.softplus(self.stream_weight[s]) * mask.float()
            w = w if paired else w[None, :].expand_as(logit)
            total, norm = (logit * w, w) if total is None else (total + logit * w, norm + w)
        return total / norm.clamp_min(1e-6)

    def loss(self, views, device, generator: torch.Generator) -> torch.Tensor:
        with self.item_tables():
            return self._loss(views, device, generator)

    def _loss(self, views, device, generator: torch.Generator) -> torch.Tensor:
        t = self.tensors(views, device)
        total = torch.zeros((), device=device)
        for users, targets, weight in self.objectives(t):
            for d in range(2):
                rng = self.space.domain_range(d)
                sel = (targets >= rng.start) & (targets < rng.stop)
                if not bool(sel.any()):
                    continue
                negatives = domain_negatives(self.space, d, self.n_negatives, generator, device)
                U = [u[sel] for u in users]
                pos = self.score(U, targets[sel], paired=True)[:, None]
                # a sampled negative that happens to be the row's target is not a negative
                neg = self.score(U, negatives, paired=False).masked_fill(negatives[None, :] == targets[sel][:, None],
                                                                   float("-inf"))
                logits = torch.cat([pos, neg], dim=1)
                total = total + weight * F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long,
                                                                             device=device))
        return total

    def score_all(self, views, device="cpu") -> torch.Tensor:
        """[B, n_items]: X items scored by the domain-X user, Y items by the domain-Y user, at the last position."""
        t = self.tensors(views, device)
        with self.item_tables():
            finals = self.final_users(t)
            parts = []
            for d in range(2):
                rng = self.space.domain_range(d)
                parts.append(self.score(finals[d], torch.arange(rng.start, rng.stop, device=device), paired=False))
        return torch.cat(parts, dim=1)


def gather_positions(states: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """states [..., B, L, d] (leading axes: stacked copies), positions [B, M] (indices into L, or -1)
    -> [..., B, M, d], zero where -1."""
    safe = positions.clamp(min=0)
    out = states.gather(-2, safe[..., None].expand(*states.shape[:-3], -1, -1, states.shape[-1]))
    return out * (positions >= 0)[..., None]
