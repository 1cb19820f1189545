"""Item representations: a learnable ID embedding plus frozen content vectors (image, text) projected to the model
width. Items lacking a modality are masked: their projected vector is not added (not a zero-scored vector).

`ItemFeatures` is what the embedding stage hands the model: per modality a float32 matrix [n_items, e] and a
boolean mask [n_items]. The frozen matrices live in buffers (saved with checkpoints, never trained).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MODALITIES = ("image", "text")


@dataclass
class ItemFeatures:
    vectors: dict[str, np.ndarray] = field(default_factory=dict)   # modality -> [n_items, e] float32
    masks: dict[str, np.ndarray] = field(default_factory=dict)     # modality -> [n_items] bool

    def add(self, modality: str, vectors: np.ndarray, mask: np.ndarray) -> "ItemFeatures":
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
        if len(vectors) != len(mask):
            raise ValueError(f"{modality}: {len(vectors)} vectors but {len(mask)} mask entries")
        self.vectors[modality], self.masks[modality] = np.asarray(vectors, np.float32), np.asarray(mask, bool)
        return self


class ContentProjection(nn.Module):
    """One frozen modality: buffer [n_items + 1, e] (the PAD row zero) -> Linear -> width d -> Dropout, masked.

    Inside `SequentialModel.item_tables()` the items a forward pass will look up are projected once (one matmul, one
    dropout mask per item) and every lookup indexes that table: a training step looks items up several times
    (sequences, targets, negatives), and projecting the wide frozen vectors per lookup, or all 36k items of the real
    data whatever the batch touches, cost more than the sequence network. A training step projects only the ids it
    touches (`project(touched)`); evaluation, which scores every item, projects all. A lookup of an id outside the
    projected set fails (an index error), never a silent zero.
    CHOICE dropout after the projection (width d), not on the wide input: the same regulariser on 8x fewer numbers,
    and one mask per item per step."""

    def __init__(self, vectors: np.ndarray, mask: np.ndarray, d: int, dropout: float):
        super().__init__()
        pad_row = np.zeros((1, vectors.shape[1]), np.float32)
        self.register_buffer("vectors", torch.from_numpy(np.concatenate([vectors, pad_row])))
        self.register_buffer("mask", torch.from_numpy(np.concatenate([mask, [False]])))
        self.proj = nn.Sequential(nn.Linear(vectors.shape[1], d), nn.Dropout(dropout))
        self.table: torch.Tensor | None = None   # the projected rows while `item_tables()` is active
        self.row: torch.Tensor | None = None     # item id -> its row of `table` (None: every item, in id order)

    def project(self, touched: torch.Tensor | None = None) -> None:
        if touched is None:
            self.table, self.row = self.proj(self.vectors), None
            return
        ids = torch.unique(touched[(touched >= 0) & (touched < len(self.vectors))])
        self.row = torch.full((len(self.vectors),), -1, dtype=torch.long, device=ids.device)
        self.row[ids] = torch.arange(len(ids), device=ids.device)
        self.table = self.proj(self.vectors[ids])

    def release(self) -> None:
        self.table = self.row = None

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.mask[ids]
        # F.embedding, not table[ids]: its backward accumulates in a fixed order (indexing's does not on CPU
        # threads), which keeps CPU training bit for bit repeatable
        if self.table is None:
            vec = self.proj(self.vectors[ids])
        else:
            vec = F.embedding(ids if self.row is None else self.row[ids], self.table)
        return vec * m[..., None], m


class IDEmbedding(nn.Module):
    def __init__(self, n_items: int, d: int):
        super().__init__()
        self.table = nn.Embedding(n_items + 1, d, padding_idx=n_items)
        nn.init.normal_(self.table.weight, std=0.02)
        with torch.no_grad():
            self.table.weight[n_items].zero_()

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.table(ids), torch.ones_like(ids, dtype=torch.bool)


def item_channels(n_items: int, d: int, features: ItemFeatures | None, *, use_id: bool, use_image: bool,
                  use_text: bool, dropout: float) -> nn.ModuleDict:
    """The item channels a model uses: "id", "image", "text", each a module ids -> (vectors [.., d], mask [..])."""
    channels = nn.ModuleDict()
    if use_id:
        channels["id"] = IDEmbedding(n_items, d)
    for name, wanted in (("image", use_image), ("text", use_text)):
        if not wanted:
            continue
        if features is None or name not in features.vectors:
            raise ValueError(f"the model is configured to use {name} but no {name} features were given "
                             f"(pass ItemFeatures with {name!r}, or switch use_{name} off)")
        channels[name] = ContentProjection(features.vectors[name], features.masks[name], d, dropout)
    if not channels:
        raise ValueError("a model needs at least one item channel (id, image or text)")
    return channels
