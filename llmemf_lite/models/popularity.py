"""Popularity: every user gets the items of the target's domain ranked by how often they occur in training.
A floor for every other model; items never seen in training tie at zero (the evaluator's tie rule applies)."""
from __future__ import annotations

import numpy as np
import torch

from ..data.dataset import ItemSpace


class Popularity:
    trainable = False

    def __init__(self, space: ItemSpace):
        self.space = space
        self.counts = torch.zeros(space.n_items)

    def fit(self, train_sequences) -> "Popularity":
        flat = np.concatenate([np.asarray(s) for s in train_sequences])
        self.counts = torch.as_tensor(np.bincount(flat, minlength=self.space.n_items), dtype=torch.float32)
        return self

    def eval(self):
        return self

    def score_all(self, views, device="cpu") -> torch.Tensor:
        return self.counts.to(device)[None, :].expand(len(views), -1)
