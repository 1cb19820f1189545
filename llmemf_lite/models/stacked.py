"""Stacked networks: S independent copies of a transformer encoder whose weights are stacked along a leading axis,
so that one batched operation runs all S copies.

LLM-EMF's score-level fusion runs one multiple-attention network per item channel (ID, image, text). The copies
share no weights, but they read the very same sequences, so their masks, shapes and steps are the same. Run one
after the other, a training step was some 1,500 small operations (an attention block over 64 x 15 items: about
5 ms for 1 ms of matrix products). Stacked, each operation is issued once for all copies, and the masks are built
once per encoder. Together with the cheaper dropout masks below, a training step with three copies is 1.33x
faster than three separate networks (side by side, one CPU thread); what is left is element-wise work and batched
products that grow with the data. In inference LLM-EMF runs the copies one at a time through these same weights
(`LLMEMF._run`): the numbers are the same, and a large evaluation batch three copies wide no longer fits the caches.

Every tensor carries the copies first: activations [S, B, L, d], masks shared by all copies ([B, Lq, Lk]). Each
copy is initialised as its unstacked PyTorch module would be (nn.Linear, nn.LayerNorm, nn.MultiheadAttention,
nn.Embedding), and copy s computes what that module computes; only the rounding of the batched products differs.

Not in here: what the networks are wired into (`llmemf.py`), and the single-copy blocks the baselines use
(`blocks.py`, whose numbers stay as they were).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import causal_allowed, with_fallback_key


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout whose mask comes from 16-bit slices of 64-bit random integers, on a CPU.

    torch's CPU dropout draws one Bernoulli number at a time: here about 12 ns per element, a fifth of an LLM-EMF
    training step. Four 16-bit slices per 64-bit draw, compared with a threshold, make the same mask 3.6 times
    faster (a [3, 64, 19, 64] tensor: 0.71 against 2.53 ms). The drop probability is p rounded to a multiple of
    1/65536, and the kept values are scaled by the exact inverse of the keep probability. It draws from torch's
    global generator, as F.dropout does, so `torch.manual_seed` fixes it. On other devices: F.dropout."""
    if not training or p == 0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    n, drop = x.numel(), round(p * 65536)
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2 ** 63, None)
    keep = bits.view(torch.int16)[:n].view(x.shape) >= drop - 32768
    return x * keep.to(x.dtype).mul_(65536 / (65536 - drop))


class StackedLinear(nn.Module):
    """S linear maps d_in -> d_out: weight [S, d_in, d_out], bias [S, d_out]; x [S, ..., d_in]."""

    STACKED = True   # its parameters carry the copies on axis 0: a matrix is 3-D here (train._param_groups)

    def __init__(self, copies: int, d_in: int, d_out: int, *, init: str = "linear"):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(copies, d_in, d_out))
        self.bias = nn.Parameter(torch.empty(copies, d_out))
        with torch.no_grad():
            if init == "xavier":   # nn.MultiheadAttention's in-projection: xavier-uniform weights, zero bias
                self.weight.uniform_(-math.sqrt(6 / (d_in + d_out)), math.sqrt(6 / (d_in + d_out)))
                self.bias.zero_()
            else:                  # nn.Linear: kaiming-uniform(a=sqrt(5)), i.e. U(+-1/sqrt(d_in)), bias alike
                bound = 1 / math.sqrt(d_in)
                self.weight.uniform_(-bound, bound)
                if init == "zero_bias":   # nn.MultiheadAttention's out-projection
                    self.bias.zero_()
                else:
                    self.bias.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S, d_in = x.shape[0], x.shape[-1]
        y = torch.baddbmm(self.bias[:, None], x.reshape(S, -1, d_in), self.weight)
        return y.view(*x.shape[:-1], y.shape[-1])


class StackedLayerNorm(nn.Module):
    """S LayerNorms over the last axis: weight and bias [S, d]; x [S, ..., d]."""

    STACKED = True

    def __init__(self, copies: int, d: int, eps: float = 1e-5):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(copies, d)), nn.Parameter(torch.zeros(copies, d))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        return torch.addcmul(self.bias.view(shape), F.layer_norm(x, x.shape[-1:], eps=self.eps),
                             self.weight.view(shape))


class AttentionMask(NamedTuple):
    """An attention mask prepared once and used by every block and copy that attends with it.
    bias [B, 1, Lq, Lk]: 0 where a query may attend, -inf elsewhere (a query with no key gets its first key, so its
    softmax stays finite); has_key [B, Lq, 1]: False for such queries, whose output is zeroed."""
    bias: torch.Tensor
    has_key: torch.Tensor

    @classmethod
    def from_allowed(cls, allowed: torch.Tensor) -> "AttentionMask":
        """allowed: boolean "may attend" [B, Lq, Lk]."""
        safe, has_key = with_fallback_key(allowed)
        bias = torch.zeros(safe.shape, device=allowed.device).masked_fill_(~safe, float("-inf"))
        return cls(bias[:, None], has_key)


class StackedAttentionBlock(nn.Module):
    """S copies of `blocks.AttentionBlock` (pre-LayerNorm multi-head attention + feed-forward, self- or cross-).

    `record = True` keeps the last forward's weights, averaged over heads, in `last_weights` [S, B, Lq, Lk] (zero
    rows for queries with no key): the hook the attention-visualisation notebook reads."""

    def __init__(self, copies: int, d: int, n_heads: int, dropout: float):
        super().__init__()
        if d % n_heads:
            raise ValueError(f"width {d} is not divisible by {n_heads} heads")
        self.ln_q, self.ln_kv, self.ln_ff = (StackedLayerNorm(copies, d) for _ in range(3))
        self.in_proj = StackedLinear(copies, d, 3 * d, init="xavier")
        self.out_proj = StackedLinear(copies, d, d, init="zero_bias")
        self.ff1, self.ff2 = StackedLinear(copies, d, d), StackedLinear(copies, d, d)
        self.n_heads, self.dropout = n_heads, dropout
        self.record = False
        self.last_weights: torch.Tensor | None = None

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        S, B, L, d = x.shape
        return x.view(S, B, L, self.n_heads, d // self.n_heads).transpose(2, 3)      # [S, B, H, L, dh]

    def forward(self, x: torch.Tensor, mask: AttentionMask, context: torch.Tensor | None = None) -> torch.Tensor:
        S, B, Lq, d = x.shape
        p = self.dropout if self.training else 0.0
        q_in = self.ln_q(x)
        if context is None:
            q, k, v = self.in_proj(q_in).split(d, dim=-1)
        else:
            w, b = self.in_proj.weight, self.in_proj.bias
            q = torch.baddbmm(b[:, None, :d], q_in.reshape(S, -1, d), w[..., :d]).view(S, B, Lq, d)
            kv_in = self.ln_kv(context).reshape(S, -1, d)
            k, v = torch.baddbmm(b[:, None, d:], kv_in, w[..., d:]).view(S, B, context.shape[2], 2 * d).split(d, -1)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        scores = q @ k.transpose(-1, -2) * (1 / math.sqrt(d // self.n_heads)) + mask.bias[None]
        weights = scores.softmax(-1)                                                  # [S, B, H, Lq, Lk]
        if self.record:
            self.last_weights = (weights.mean(2) * mask.has_key).detach()
        out = (dropout(weights, p, self.training) @ v).transpose(2, 3).reshape(S, B, Lq, d)
        x = x + dropout(self.out_proj(out), p, self.training) * mask.has_key
        hidden = dropout(F.gelu(self.ff1(self.ln_ff(x))), p, self.training)
        return x + dropout(self.ff2(hidden), p, self.training)


class StackedCausalTransformer(nn.Module):
    """S copies of `blocks.CausalTransformer`: learned positions (counting back from the most recent item), causal
    self-attention blocks, a final LayerNorm. x [S, B, L, d], valid [B, L] -> [S, B, L, d]."""

    def __init__(self, copies: int, d: int, n_blocks: int, n_heads: int, dropout: float, max_len: int):
        super().__init__()
        self.pos = nn.Parameter(torch.randn(copies, max_len, d))    # nn.Embedding's N(0, 1) init
        self.blocks = nn.ModuleList(StackedAttentionBlock(copies, d, n_heads, dropout) for _ in range(n_blocks))
        self.ln = StackedLayerNorm(copies, d)
        self.dropout, self.max_len = dropout, max_len

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        L = x.shape[2]
        keep = valid[..., None].to(x.dtype)                                           # [B, L, 1]
        x = dropout(x + self.pos[:, None, self.max_len - L:], self.dropout, self.training) * keep
        mask = AttentionMask.from_allowed(causal_allowed(valid))
        for block in self.blocks:
            x = block(x, mask) * keep
        return self.ln(x)
