"""GRU4Rec (Hidasi et al., ICLR 2016): a GRU over the item sequence, its hidden state scoring the next item.

Paper defaults: one GRU layer, hidden 100, dropout 0.5 on the hidden layer, session-parallel mini-batches, ranking
losses (BPR / TOP1). Choices here: hidden d = 64 like every model of this project, dropout 0.2, and the shared
softmax cross-entropy with sampled negatives (the later GRU4Rec paper, Hidasi & Karatzoglou 2018, found
cross-entropy competitive), over padded user sequences instead of session-parallel batches.
"""
from __future__ import annotations

from ..data.dataset import ItemSpace
from .blocks import GRUEncoder
from .sequential import SequentialConfig, SingleSequenceRecommender


def GRU4Rec(space: ItemSpace, config: SequentialConfig = SequentialConfig(n_blocks=1)) -> SingleSequenceRecommender:
    return SingleSequenceRecommender(space, config, lambda c: GRUEncoder(c.d, c.n_blocks, c.dropout))
