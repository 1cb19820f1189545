"""ID-based single-sequence recommenders: one encoder over either the merged sequence or each domain's sequence.

`view="mixed"`: one encoder over S_X+Y; the state at the last position scores the next item of either domain.
`view="domain"`: one encoder per domain over S_X and S_Y (two single-domain models in one module; the item sets are
disjoint, so nothing is shared between them); the state at the domain's latest item scores that domain's next item.
SASRec and GRU4Rec (sasrec.py, gru4rec.py) are this class with their encoder.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data.dataset import ItemSpace
from .base import SequentialModel, gather_positions
from .items import IDEmbedding


@dataclass
class SequentialConfig:
    d: int = 64
    n_blocks: int = 2
    n_heads: int = 1
    dropout: float = 0.2
    max_len: int = 50
    view: str = "mixed"          # "mixed" | "domain"
    n_negatives: int = 500       # per domain per batch; 0 = full softmax
    loss_weighting: str = "domain"   # base.LOSS_WEIGHTINGS
    pos_std: float = 0.02        # SASRec's position table at init (blocks.CausalTransformer); GRU4Rec has none
    item_scale: float = 1.0      # item inputs times this (SASRec's paper: sqrt(d)); the output table is unscaled


class SingleSequenceRecommender(SequentialModel):
    def __init__(self, space: ItemSpace, config: SequentialConfig, make_encoder):
        super().__init__(space, config.n_negatives, config.loss_weighting)
        if config.view not in ("mixed", "domain"):
            raise ValueError(f"view must be 'mixed' or 'domain', got {config.view!r}")
        self.config = config
        self.items = IDEmbedding(space.n_items, config.d)
        self.streams = [self.items]
        n = 1 if config.view == "mixed" else 2
        self.encoders = nn.ModuleList(make_encoder(config) for _ in range(n))

    def _encode(self, seq: torch.Tensor, encoder) -> torch.Tensor:
        valid = seq != self.space.n_items
        x = self.items(seq)[0]
        return encoder(x * self.config.item_scale if self.config.item_scale != 1.0 else x, valid)

    def objectives(self, t):
        if self.config.view == "mixed":
            yield [self._encode(t["mixed"], self.encoders[0])], t["next_item"], 1.0
        else:
            for d in range(2):
                yield [self._encode(t["domain_seq"][d], self.encoders[d])], t["domain_next"][d], 1.0

    def final_users(self, t):
        if self.config.view == "mixed":
            last = self._encode(t["mixed"], self.encoders[0])[:, -1]
            return [[last], [last]]
        out = []
        for d in range(2):
            states = self._encode(t["domain_seq"][d], self.encoders[d])
            out.append([gather_positions(states, t["domain_pos"][d][:, -1:])[:, 0]])
        return out
