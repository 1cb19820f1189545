"""Sequence-encoder building blocks shared by SASRec, GRU4Rec and LLM-EMF: attention blocks with explicit masks
(and a hook that records their weights), a causal transformer encoder, a GRU encoder.

Masks are boolean "may attend" tensors [B, Lq, Lk]. A query that may attend to nothing (a padding position, or an
item older than the merged window) gets a zero output instead of the NaN a softmax over nothing would give.
"""
from __future__ import annotations

import torch
from torch import nn


class AttentionBlock(nn.Module):
    """Pre-LayerNorm attention + position-wise feed-forward (SASRec's block), self- or cross-attention: the one
    attention block of every model here.

    `allowed`: [B, Lq, Lk], one mask for every head, or [B, H, Lq, Lk], a mask per head (LLM-EMF's heads are its
    single- and cross-domain views). Set `record = True` to keep the last forward's attention weights: per head in
    `last_head_weights` [B, H, Lq, Lk] and averaged over heads in `last_weights` [B, Lq, Lk] (zero rows for queries
    with no key): the documented hook the attention-visualisation notebook reads."""

    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.ln_q, self.ln_kv, self.ln_ff = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, n_heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Dropout(dropout), nn.Linear(d, d))
        self.drop = nn.Dropout(dropout)
        self.n_heads = n_heads
        self.record = False
        self.last_weights: torch.Tensor | None = None
        self.last_head_weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, context: torch.Tensor | None = None,
                queries: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, L, d] -> [B, L, d]; with `queries` [B, M] (positions of x), the output at those positions only
        [B, M, d], every position still a key: what inference needs from a last block, at a fraction of its cost
        (the same values as the whole output gathered there, to rounding)."""
        if queries is not None:
            rows = queries[:, None, :, None] if allowed.dim() == 4 else queries[..., None]
            allowed = allowed.gather(-2, rows.expand(*allowed.shape[:-2], -1, allowed.shape[-1]))
        safe, has_key = with_fallback_key(allowed)
        if allowed.dim() == 4:                                          # a mask per head
            mask, has_key = ~safe.flatten(0, 1), has_key.any(1)
        else:
            mask = (~safe).repeat_interleave(self.n_heads, dim=0)      # True = blocked, per head
        q = self.ln_q(x)
        kv = q if context is None else self.ln_kv(context)
        if queries is not None:
            take = queries[..., None].expand(-1, -1, x.shape[-1])
            x, q = x.gather(1, take), q.gather(1, take)
        out, weights = self.attn(q, kv, kv, attn_mask=mask, need_weights=self.record, average_attn_weights=False)
        if self.record:
            self.last_head_weights = (weights * has_key[:, None]).detach()
            self.last_weights = self.last_head_weights.mean(1)
        x = x + self.drop(out) * has_key
        return x + self.drop(self.ff(self.ln_ff(x)))


def with_fallback_key(allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """allowed [B, Lq, Lk] -> (safe, has_key [B, Lq, 1]): a query that may attend to nothing gets its first key, a
    harmless one that keeps its softmax finite; its output is to be zeroed where has_key is False."""
    has_key = allowed.any(-1, keepdim=True)
    return allowed | (~has_key & (torch.arange(allowed.shape[-1], device=allowed.device) == 0)), has_key


def causal_allowed(valid: torch.Tensor) -> torch.Tensor:
    """[B, L] validity -> [B, L, L]: position i may attend to valid positions j <= i."""
    L = valid.shape[1]
    tri = torch.ones(L, L, dtype=torch.bool, device=valid.device).tril()
    return tri[None] & valid[:, None, :] & valid[:, :, None]


class CausalTransformer(nn.Module):
    """SASRec's encoder: learned positions + `n_blocks` causal self-attention blocks + final LayerNorm.

    `pos_std`: the position table starts at N(0, pos_std^2). It must match the scale of the item inputs: under
    pre-LayerNorm a position row of norm ~8 (nn.Embedding's N(0, 1) at d = 64) beside item rows of norm ~0.16 (std
    0.02) leaves the first block seeing almost only position, and SASRec learned half as well in 8 epochs on the real
    Food-Kitchen data (docs/training.md, results/diagnostics/position_init/). The models with std-0.02 item tables
    pass 0.02 (RecBole's SASRec initialises every embedding so); C2DSR, whose inputs are unit-sized, keeps 1.0."""

    def __init__(self, d: int, n_blocks: int, n_heads: int, dropout: float, max_len: int, pos_std: float = 0.02):
        super().__init__()
        self.pos = nn.Embedding(max_len, d)
        if pos_std != 1.0:   # nn.Embedding's own init is N(0, 1); re-drawing only otherwise keeps C2DSR's stream
            nn.init.normal_(self.pos.weight, std=pos_std)
        self.blocks = nn.ModuleList(AttentionBlock(d, n_heads, dropout) for _ in range(n_blocks))
        self.drop, self.ln = nn.Dropout(dropout), nn.LayerNorm(d)
        self.max_len = max_len

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        # Positions count back from the most recent item (left padding), so a batch trimmed to its longest
        # sequence uses the same position embeddings as an untrimmed one.
        L = x.shape[1]
        x = self.drop(x + self.pos(torch.arange(self.max_len - L, self.max_len, device=x.device))[None])
        x = x * valid[..., None]
        allowed = causal_allowed(valid)
        for block in self.blocks:
            x = block(x, allowed) * valid[..., None]
        return self.ln(x)


class GRUEncoder(nn.Module):
    """GRU4Rec's encoder: a GRU over the real items of each (left-padded) sequence; output at each position.

    The GRU never steps over padding: its biases would move the hidden state at every padding step, so the state
    at a user's first item would depend on how much padding precedes it, i.e. on the other rows of the batch (a
    batch is trimmed to its longest row). Each row is shifted to the left, packed to its own length, and the
    outputs are shifted back."""

    VERSION = 2   # 1: stepped over the left padding (checkpoints of version 1 are not resumed)

    def __init__(self, d: int, n_layers: int, dropout: float):
        super().__init__()
        self.gru = nn.GRU(d, d, num_layers=n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        _, L, d = x.shape
        n = valid.sum(1)                                                   # items per row (left padding)
        steps = torch.arange(L, device=x.device)[None, :]
        to_front = (steps + (L - n)[:, None]) % L                          # row-wise shift: items first
        front = self.drop(x).gather(1, to_front[..., None].expand(-1, -1, d))
        packed = pack_padded_sequence(front, n.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=L)
        back = (steps - (L - n)[:, None]) % L
        return out.gather(1, back[..., None].expand(-1, -1, d)) * valid[..., None]
