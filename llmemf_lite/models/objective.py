"""Negatives for the next-item objective (`SequentialModel.loss`): softmax cross-entropy over the target's domain,
either full or against `n_negatives` uniformly sampled in-domain negatives shared by the batch, which keeps a
domain of tens of thousands of items cheap on a CPU (a sampled negative equal to a row's target is masked out).
"""
from __future__ import annotations

import torch

from ..data.dataset import ItemSpace


def domain_negatives(space: ItemSpace, domain: int, n_negatives: int, generator: torch.Generator,
                     device) -> torch.Tensor:
    """Ids of `n_negatives` items of `domain` (uniform, with replacement); all of the domain if n_negatives is 0 or
    not smaller than the domain."""
    rng = space.domain_range(domain)
    if n_negatives <= 0 or n_negatives >= len(rng):
        return torch.arange(rng.start, rng.stop, device=device)
    return torch.randint(rng.start, rng.stop, (n_negatives,), generator=generator).to(device)
