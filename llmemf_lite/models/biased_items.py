"""An item stream whose scores carry a per-item bias: score(u, i) = u . w_i + b_i.

BERT4Rec (tied input embedding + output bias) and C2DSR (a separate linear output layer, i.e. weights and a bias
per item) both score items this way. `SequentialModel.score` scores a user against a stream by a plain dot product,
so the bias rides along as one extra column: the stream returns [w_i, b_i] and the user is [u, 1] (`append_one`).
What this file is not: an item representation for a sequence encoder (see `items.py`).
"""
from __future__ import annotations

import torch
from torch import nn


class ItemsWithBias(nn.Module):
    """ids -> ([w_ids, b_ids] of width d + 1, mask of ones). `table` holds the w rows (n_items + extra rows,
    the PAD row at n_items); the bias has one entry per row of the table, PAD's kept at zero."""

    def __init__(self, table: nn.Embedding, bias_init: float = 0.0):
        super().__init__()
        self.table = table
        self.bias = nn.Parameter(torch.full((table.num_embeddings,), float(bias_init)))

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([self.table(ids), self.bias[ids][..., None]], dim=-1), torch.ones_like(ids, dtype=torch.bool)


def append_one(users: torch.Tensor) -> torch.Tensor:
    """[..., d] -> [..., d + 1]: the constant 1 that multiplies an `ItemsWithBias` item's bias."""
    return torch.cat([users, users.new_ones(users.shape[:-1] + (1,))], dim=-1)
