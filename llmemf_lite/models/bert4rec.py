"""BERT4Rec (Sun et al., CIKM 2019): a bidirectional transformer over the merged sequence, trained with the cloze
objective (predict randomly masked items from both sides), asked at test time about a [MASK] appended after the
history.

What this file is: the cloze masking (`cloze_mask`), the bidirectional encoder, and the model as a
`SequentialModel`, so that `train_model` and `evaluate_ranking` run it unchanged. What it is not: the authors'
TensorFlow pipeline (github FeiSun/BERT4Rec, read to learn the settings; no code taken).

As the paper and its public run scripts:
- input: the item embedding (a [MASK] token of its own, id n_items + 1) plus a learned position embedding,
  LayerNorm, dropout; `n_blocks` bidirectional self-attention blocks (every real item attends to every real item);
  output: BERT's transform (Linear, GELU, LayerNorm), then the dot product with the TIED item embedding plus a
  per-item output bias;
- cloze training: each row masks max(1, round(n * mask_prob)) of its n items (at most `max_predictions`), chosen
  uniformly, always replaced by [MASK] (the scripts' `mask_prob=1.0`: no BERT-style 10 % random / 10 % kept);
  a share of rows instead masks only the last item (the scripts add one such copy per user to 10 random-mask copies:
  share 1/11), which matches training to inference;
- the window: the last `max_len` items including the [MASK] (at test: the last max_len - 1 history items + [MASK]);
- mask_prob = 0.6: the value of the authors' script for Amazon Beauty, a sparse Amazon dataset with short sequences
  like ours; 0.2 is their value for the dense, long MovieLens sequences. Also from that script: d = 64, 2 blocks,
  2 heads, max length 50, at most 30 masked items, Adam lr 1e-4, batch 256 (the last two in the config and
  `BERT4Rec.train_settings`, not applied by the shared training loop).
Departures, each to keep the baselines comparable: this project's pre-LayerNorm attention block (feed-forward width
d, one dropout of 0.2; the script's post-LN BERT block has width 4d, hidden dropout 0.5, attention dropout 0.2);
the project's sampled softmax over the target's domain instead of a full softmax over all items; training rows are
the users' training sequences (re-masked at every epoch) instead of 10 pre-masked copies and sliding windows.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..batching import NO_TARGET
from ..data.dataset import ItemSpace
from .base import SequentialModel
from .biased_items import ItemsWithBias, append_one
from .blocks import AttentionBlock


@dataclass
class BERT4RecConfig:
    d: int = 64
    n_blocks: int = 2
    n_heads: int = 2
    dropout: float = 0.2
    max_len: int = 50              # including the [MASK] position
    mask_prob: float = 0.6         # cloze proportion rho (Amazon Beauty's setting; 0.2 for MovieLens)
    max_predictions: int = 30      # at most this many masked items per row
    mask_last_share: float = 1 / 11   # rows that mask only their last item
    n_negatives: int = 500         # per domain per batch; 0 = full softmax over the domain
    loss_weighting: str = "domain"   # base.LOSS_WEIGHTINGS
    # the paper's training settings; the shared training loop does not read them (see `BERT4Rec.train_settings`)
    lr: float = 1e-4
    batch_size: int = 256


def cloze_mask(valid: torch.Tensor, mask_prob: float, max_predictions: int, mask_last_share: float,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """valid [B, W] (left-padded rows) -> masked [B, W]: per row with n > 0 items, max(1, round(n * mask_prob))
    of them (at most `max_predictions`) chosen uniformly; with probability `mask_last_share` a row masks only its
    last item instead. Padding is never masked."""
    n = valid.sum(1)
    count = torch.floor(n.to(torch.float64) * mask_prob + 0.5).long().clamp(min=1, max=max_predictions)
    count = torch.minimum(count, n)
    keys = torch.rand(valid.shape, generator=generator).to(valid.device).masked_fill(~valid, 2.0)
    rank = keys.argsort(1).argsort(1)           # 0 = the smallest key: a uniform random order of the real items
    masked = (rank < count[:, None]) & valid
    last_only = torch.rand(valid.shape[0], generator=generator).to(valid.device) < mask_last_share
    last = torch.zeros_like(valid)
    last[:, -1] = valid[:, -1]
    return torch.where(last_only[:, None], last, masked)


class BERT4Rec(SequentialModel):
    def __init__(self, space: ItemSpace, config: BERT4RecConfig = BERT4RecConfig()):
        super().__init__(space, config.n_negatives, config.loss_weighting)
        self.config = c = config
        n = space.n_items
        self.mask_id = n + 1
        table = nn.Embedding(n + 2, c.d, padding_idx=n)           # items, PAD, [MASK]
        nn.init.normal_(table.weight, std=0.02)                   # BERT's initializer_range
        with torch.no_grad():
            table.weight[n].zero_()
        # one table, registered once (a checkpoint must not hold a tied tensor twice): the input embedding is
        # self.items.table, the output is the same table plus a per-item bias
        self.items = ItemsWithBias(table)
        self.streams = [self.items]
        self.pos = nn.Embedding(c.max_len, c.d)
        nn.init.normal_(self.pos.weight, std=0.02)
        self.ln_in, self.drop = nn.LayerNorm(c.d), nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(AttentionBlock(c.d, c.n_heads, c.dropout) for _ in range(c.n_blocks))
        self.ln_out = nn.LayerNorm(c.d)
        self.transform = nn.Sequential(nn.Linear(c.d, c.d), nn.GELU(), nn.LayerNorm(c.d))
        self._generator: torch.Generator | None = None

    @property
    def train_settings(self) -> dict:
        """The paper's training settings, as `TrainConfig` fields."""
        return {"lr": self.config.lr, "batch_size": self.config.batch_size}

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """seq [B, W] of item ids, PAD and [MASK] (left-padded, W <= max_len) -> output states [B, W, d]."""
        W = seq.shape[1]
        if W > self.config.max_len:
            raise ValueError(f"BERT4Rec input of width {W} exceeds max_len {self.config.max_len}")
        valid = seq != self.space.n_items
        # positions count back from the most recent item, so trimming a batch's padding changes nothing
        x = self.items.table(seq) + self.pos(torch.arange(self.config.max_len - W, self.config.max_len, device=seq.device))
        x = self.drop(self.ln_in(x)) * valid[..., None]
        allowed = valid[:, None, :] & valid[:, :, None]           # bidirectional: any real item, either side
        for block in self.blocks:
            x = block(x, allowed) * valid[..., None]
        return self.transform(self.ln_out(x))

    def _window(self, seq: torch.Tensor, last_column: torch.Tensor) -> torch.Tensor:
        return torch.cat([seq, last_column[:, None]], dim=1)[:, -self.config.max_len:]

    def loss(self, views, device, generator: torch.Generator) -> torch.Tensor:
        self._generator = generator
        try:
            return super().loss(views, device, generator)
        finally:
            self._generator = None

    def objectives(self, t):
        c, pad = self.config, self.space.n_items
        last = t["next_item"][:, -1]                              # a training row's final item (its future)
        full = self._window(t["mixed"], torch.where(last >= 0, last, torch.full_like(last, pad)))
        masked = cloze_mask(full != pad, c.mask_prob, c.max_predictions, c.mask_last_share, self._generator)
        states = self.encode(torch.where(masked, torch.full_like(full, self.mask_id), full))
        yield [append_one(states)], torch.where(masked, full, torch.full_like(full, NO_TARGET)), 1.0

    def final_users(self, t):
        mask_column = torch.full_like(t["mixed"][:, -1], self.mask_id)
        user = append_one(self.encode(self._window(t["mixed"], mask_column))[:, -1])
        return [[user], [user]]
