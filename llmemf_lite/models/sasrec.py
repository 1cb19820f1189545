"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the item sequence.

Architecture as the paper: learned positional embeddings, `n_blocks` blocks of single-head self-attention and a
point-wise feed-forward net with residuals, LayerNorm and dropout; items scored by the dot product with the shared
item embedding. Paper defaults: d = 50, 2 blocks, 1 head, dropout 0.2 (0.5 on sparse data), max length 50, Adam
lr 1e-3. Choice here: d = 64 like every model of this project, and the softmax cross-entropy objective with
sampled negatives shared by all models instead of the paper's binary cross-entropy with one negative (CE is the
stronger variant; Klenitskiy & Vasilev, RecSys 2023), so that models differ in architecture only.
"""
from __future__ import annotations

from ..data.dataset import ItemSpace
from .blocks import CausalTransformer
from .sequential import SequentialConfig, SingleSequenceRecommender


def SASRec(space: ItemSpace, config: SequentialConfig = SequentialConfig()) -> SingleSequenceRecommender:
    return SingleSequenceRecommender(space, config, lambda c: CausalTransformer(c.d, c.n_blocks, c.n_heads,
                                                                                c.dropout, c.max_len, c.pos_std))
