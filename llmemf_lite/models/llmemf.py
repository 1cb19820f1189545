"""LLM-EMF: multimodal item representations + a multiple-attention network over the three sequences of a user.

The paper describes the method in outline only. This is our reading; every choice the paper leaves open is marked
CHOICE with its reason (docs/model.md lists them too). Model version 3 (`MultipleAttention.VERSION`).

Items. A learnable ID embedding (width d) and frozen image / text vectors (CLIP or MiniLM, width e), each projected
to d by a learnable linear map (dropout `content_dropout` after it). An item lacking a modality has it masked: the
projection is not added to its input, and that modality's score is left out of its fused score.
  CHOICE q = d = 64 and one shared width for all projections: the paper gives neither; equal widths let the
  modalities be summed into one input vector.
  CHOICE one sequence network per item channel, each over that channel's vectors alone, and score-level fusion at
  the output (`fusion="network"`, the default; IFCDSR's fused probability of ID- and content-based similarities):
  the user's part u_c comes from channel c's network, and the fused score of item i is sum_c w_ci <u_c, v_ci>, with
  v_ci the item's channel vector (the input's ID row and projections) and w_ci softplus weights renormalised over
  the channels the item has and times the number of channels C (so that at equal weights an item with every channel
  scores like the sum of its channels; a plain weighted mean divided every logit by C and learned slower: 0.073 /
  0.093 against 0.090 / 0.112 test NDCG@10 on the default world, 3 seeds). It is computed as one dot product of
  [u_c]_c with [w_ci v_ci]_c.
  `fused_scale="item"` multiplies by the number of channels the item has instead of C, so that an item lacking a
  channel scores like the sum of those it has (under the default "model", a real Movie-Book Book, which has no
  text, scores twice its ID part). MEASURED (real Movie-Book, 3 seeds, docs/diagnostics.md section 8): test Books
  sampled NDCG@10 0.052 against 0.043, the ID-only network's level, Movies within noise; but the validation users
  do not show it (Books 0.049 against 0.051), and choices here are made on validation, so the default stays.
  Where every item has every channel (the default world, real Food-Kitchen) the two are one model, bit for bit.
  CHOICE the content channels' networks one block deep (`content_blocks=1`; the first channel's network, the ID
  network where IDs are used, keeps `n_blocks`).
  CHOICE one network per content modality (`content_network="per_modality"`). `"joint"` runs one content network
  over the sum of an item's projected image and text beside the ID network, scored as two streams: with three
  channels it trains faster (two networks, users 2d wide instead of 3d) but lost accuracy on the default world
  (docs/diagnostics.md section 7), as the fused item vector did; with one content modality (the real data's text)
  the two are one model, bit for bit.
  MEASURED (real Food-Kitchen, ID + MiniLM titles, 3 seeds, docs/diagnostics.md section 7): test NDCG@10 sampled
  0.296 / 0.277, full 0.095 / 0.040: within the seed spread of model version 2 in three cells and below it in Food
  under full ranking by the spread's width (-0.013 +- 0.013; a paired bootstrap over the test cases puts that
  cell's 95 % interval across 0), at 0.48x SASRec's training rate at 500 negatives and 0.38x at the tuning
  protocol's 2,000 (0.28-0.31x on the default world's three channels; docs/performance.md). Full-depth content
  networks (`content_blocks=None`): 0.305 / 0.284 and 0.101 / 0.040, also within noise of version 2, at 0.43x.
  `fusion="score"`, one network over the fused item vector (ID + projected content, summed) whose user vector u
  is mapped to the parts u_c = U_c u (U_c starting at the identity), trains at 0.62x but lost accuracy: 0.270 /
  0.254 and 0.075 / 0.033, below version 2 in every cell. `fusion="representation"` scores the fused input vector
  itself with u. With one channel (IDs only) the three levels are the same model:
  one network, no per-channel parts.
Sequences. For each user, the merged sequence S_X+Y and the domain sequences S_X and S_Y (`batching.py`), here as
views of the merged sequence: each attention block's heads are split in two groups with their own masks.
  - single-domain preference: heads that attend causally to the items of the query's own domain only (over S_X
    for an X item, S_Y for a Y item: SASRec over each domain sequence);
  - cross-domain preference: heads that attend causally to the whole merged sequence S_X+Y; read at the items of
    domain d they are the cross-attention between the domain sequence S_d and the merged one (the "cross{d}" maps);
  - the user's domain-d preference at merged time t sums the state at t and the state at the latest d-item up to t,
    then a LayerNorm per domain.
  CHOICE domain views as masked heads of one encoder, not separate encoders: the paper names the preferences, not
  the layers; one encoder over the merged width runs each block once (version 2 ran three encoders and two
  cross-attention blocks per channel, the domain ones padded to the merged width).
  CHOICE sum-then-LayerNorm to combine the preferences: the paper says they are "integrated"; a sum is the
  simplest operator that keeps both and is what C2DSR does with its shared and domain-specific states.
  `cross_domain=False` (the ablation "without cross-domain attention"): every head attends to its own domain only,
  and the domain-d preference is the state at the latest d-item alone (two SASRecs with shared weights).

Objective. The weighted sum of the per-sequence next-item objectives (softmax cross-entropy over the target's
domain, `loss_weighting`): at every merged position, the next item of X and the next item of Y from the domain
preferences (S_X's and S_Y's objectives, weight 1 each), and the very next item from the encoder's state h(t)
(S_X+Y's, `aux_weight`).
  CHOICE aux_weight = 1: the paper gives no weights. Without the merged objective the ID-only network stayed below
  SASRec on the real Food-Kitchen validation users (0.253 against 0.265); with it, 0.271 (docs/diagnostics.md).
CHOICE d = 64, 2 blocks, 2 heads (one per view), dropout 0.2, max length 50: SASRec / C2DSR-scale defaults.

Attention hook: `model.record_attention(True)` makes the attention blocks keep their last weights per head; after a
forward pass, `model.attention_maps()` returns {name: [B, Lq, Lk]}: "mixed.{i}" (the merged heads of block i over
S_X+Y), "domain{d}.{i}" (the own-domain heads at the d-items, in S_d's coordinates) and "cross{d}" (the last block's
merged heads at the d-items over S_X+Y).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import ItemSpace
from .base import SequentialModel, gather_positions
from .blocks import AttentionBlock, causal_allowed
from .items import ItemFeatures, item_channels
from .objective import domain_negatives


@dataclass
class LLMEMFConfig:
    d: int = 64
    n_blocks: int = 2
    n_heads: int = 2                 # with cross_domain, the first half are merged heads, the rest own-domain heads
    dropout: float = 0.2
    max_len: int = 50
    use_id: bool = True
    use_image: bool = True
    use_text: bool = True
    cross_domain: bool = True
    fusion: str = "network"          # FUSIONS: "network" | "score" | "representation" (module docstring)
    n_negatives: int = 500           # per domain per batch; 0 = full softmax
    loss_weighting: str = "domain"   # base.LOSS_WEIGHTINGS
    pos_std: float = 0.02            # the position table at init (blocks.CausalTransformer's reason)
    content_dropout: float | None = None   # on the projected content vectors; None: `dropout`
    aux_weight: float = 1.0          # weight of the merged sequence's own next-item objective (SASRec's), from h(t)
    content_blocks: int | None = 1   # fusion="network": blocks of the content channels' networks (None: n_blocks)
    fused_scale: str = "model"       # FUSED_SCALES: a fused score is n times the weighted mean of the item's channels,
                                     # n the number of channels the model has ("model") or the item has ("item")
    content_network: str = "per_modality"   # CONTENT_NETWORKS, fusion="network": one network per content modality,
                                            # or one over the item's projected image and text summed ("joint")


FUSIONS = ("network", "score", "representation")
FUSED_SCALES = ("model", "item")
CONTENT_NETWORKS = ("per_modality", "joint")


class MultipleAttention(nn.Module):
    """One causal encoder over the merged sequence whose heads are the single-domain and cross-domain views."""

    VERSION = 3   # 2: one stacked network per item channel, three encoders each; its checkpoints are not resumed

    def __init__(self, c: LLMEMFConfig):
        super().__init__()
        if c.cross_domain and c.n_heads < 2:
            raise ValueError(f"cross-domain attention needs n_heads >= 2 (merged and own-domain heads), "
                             f"got {c.n_heads}")
        self.cross_domain, self.max_len = c.cross_domain, c.max_len
        self.n_heads, self.merged_heads = c.n_heads, c.n_heads // 2 if c.cross_domain else 0
        self.pos = nn.Embedding(c.max_len, c.d)
        nn.init.normal_(self.pos.weight, std=c.pos_std)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(AttentionBlock(c.d, c.n_heads, c.dropout) for _ in range(c.n_blocks))
        self.ln = nn.LayerNorm(c.d)
        if c.cross_domain:
            self.combine = nn.ModuleList(nn.LayerNorm(c.d) for _ in range(2))

    def head_masks(self, t: dict) -> torch.Tensor:
        """[B, H, L, L] "may attend": merged heads causally over every item, own-domain heads over the items of the
        query's domain."""
        valid = t["mixed"] != t["pad"]
        causal = causal_allowed(valid)
        own = causal & (t["mixed_domain"][:, :, None] == t["mixed_domain"][:, None, :])
        return torch.stack([causal] * self.merged_heads + [own] * (self.n_heads - self.merged_heads), dim=1)

    def forward(self, x: torch.Tensor, t: dict, last_only: bool = False) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x: the merged sequence's item vectors [B, L, d] -> (the domain-d preferences [2][B, L, d] at every merged
        position (zero where neither view has an item yet), the encoder's states h [B, L, d]). `last_only`: both at
        the last position only ([B, 1, d]), the last block computing just the states they read there (the last
        item's and each domain's latest item's): inference, where only the user's current preferences score."""
        valid = (t["mixed"] != t["pad"])[..., None]
        L = x.shape[1]
        x = self.drop(x + self.pos(torch.arange(self.max_len - L, self.max_len, device=x.device))[None]) * valid
        allowed = self.head_masks(t)
        last_only = last_only and len(self.blocks) > 0
        for block in self.blocks[:-1] if last_only else self.blocks:
            x = block(x, allowed) * valid
        latest = [self._latest_of_domain(t, d) for d in range(2)]       # [2][B, L]
        if last_only:
            at = torch.stack([torch.full_like(latest[0][:, -1], L - 1), latest[0][:, -1], latest[1][:, -1]], 1)
            h_at = self.ln(self.blocks[-1](x, allowed, queries=at.clamp(min=0))) * (at >= 0)[..., None]
            h, at_latest = h_at[:, :1], [h_at[:, 1:2], h_at[:, 2:3]]
            valid = valid[:, -1:]
        else:
            h = self.ln(x) * valid
            at_latest = [gather_positions(h, pos) for pos in latest]
        prefs = [self.combine[d](h + at_latest[d]) * valid if self.cross_domain else at_latest[d] for d in range(2)]
        return prefs, h

    @staticmethod
    def _latest_of_domain(t: dict, d: int) -> torch.Tensor:
        """[B, L]: the merged index of the latest d-item at or before each merged position (-1: none yet)."""
        pos = t["domain_pos"][d]
        return t["domain_time"][d].gather(1, pos.clamp(min=0)).masked_fill(pos < 0, -1)


class LLMEMF(SequentialModel):
    # the item side's version, part of the checkpoint signature beside MultipleAttention's: 2 from score fusion as C
    # times the weighted mean of an item's channels (1: the plain mean; its checkpoints are not resumed)
    VERSION = 2

    def __init__(self, space: ItemSpace, config: LLMEMFConfig = LLMEMFConfig(), features: ItemFeatures | None = None):
        super().__init__(space, config.n_negatives, config.loss_weighting)
        if config.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {config.fusion!r}")
        if config.fused_scale not in FUSED_SCALES:
            raise ValueError(f"fused_scale must be one of {FUSED_SCALES}, got {config.fused_scale!r}")
        if config.content_network not in CONTENT_NETWORKS:
            raise ValueError(f"content_network must be one of {CONTENT_NETWORKS}, got {config.content_network!r}")
        self.config = config
        self.channels = item_channels(space.n_items, config.d, features, use_id=config.use_id,
                                      use_image=config.use_image, use_text=config.use_text,
                                      dropout=config.dropout if config.content_dropout is None
                                      else config.content_dropout)
        # the item streams that are scored apart (channel names per stream): under fusion="network" with a joint
        # content network, the IDs and the item's content; else every channel alone
        names = list(self.channels)
        modalities = [n for n in names if n != "id"]
        joint = config.fusion == "network" and config.content_network == "joint" and len(modalities) > 1
        self.stream_groups = ([[n] for n in names if n == "id"] + [modalities]) if joint else [[n] for n in names]
        self.score_fusion = config.fusion in ("score", "network") and len(self.stream_groups) > 1
        # fusion="network": one sequence network per stream, each reading that stream alone
        self.per_channel = self.score_fusion and config.fusion == "network"
        if self.score_fusion:
            C, d = len(self.stream_groups), config.d
            if not self.per_channel:
                self.user_heads = nn.Linear(d, C * d, bias=False)   # u -> [U_c u]_c, each U_c the identity at first
                with torch.no_grad():
                    self.user_heads.weight.copy_(torch.eye(d).repeat(C, 1))
            self.stream_weight = nn.Parameter(torch.zeros(C))
        self.streams = [self._output_items]
        self.network = MultipleAttention(config)   # fusion="network": the first channel's, the others' after it
        content = config if config.content_blocks is None else replace(config, n_blocks=config.content_blocks)
        self.more_networks = nn.ModuleList(MultipleAttention(content)
                                           for _ in range(len(self.stream_groups) - 1 if self.per_channel else 0))
        self._recorded_time: torch.Tensor | None = None   # the views' domain_time of the last recorded forward

    def _summed(self, ids: torch.Tensor, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """ids -> (the sum of these channels' vectors [.., d], where the item has any of them [..]): each channel's
        vector is already zero where the item lacks it, so a missing modality is left out, not added."""
        parts = [self.channels[name](ids) for name in names]
        vec, mask = parts[0]
        for v, m in parts[1:]:
            vec, mask = vec + v, mask | m
        return vec, mask

    def _input_items(self, ids: torch.Tensor) -> torch.Tensor:
        """ids -> the fused item vectors [.., d]: the sum of the channels each item has."""
        return self._summed(ids, list(self.channels))[0]

    def _stream_items(self, ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """ids -> per stream (vectors [.., d], mask [..]): a stream of one channel is that channel; a joint content
        stream is the sum of the modalities the item has, present where any of them is."""
        return [self._summed(ids, group) for group in self.stream_groups]

    def _output_items(self, ids: torch.Tensor):
        """ids -> (item vectors as the users score them, mask): under score fusion [w_ci v_ci]_c of width C * d,
        c over the streams."""
        if not self.score_fusion:
            return self._input_items(ids), torch.ones_like(ids, dtype=torch.bool)
        vecs, masks = zip(*self._stream_items(ids))
        have = torch.stack(masks, -1)                                                  # [.., C]
        w = F.softplus(self.stream_weight) * have.float()
        # C times the weighted mean: at equal weights and U_c = I an item with every channel scores <u, sum_c v_c>,
        # as under representation fusion (a plain mean divided every logit by C, and learned slower).
        w = w * (len(vecs) / w.sum(-1, keepdim=True).clamp_min(1e-6))
        if self.config.fused_scale == "item":
            # n_i times the weighted mean, n_i the channels item i has: an item lacking one scores like the sum of
            # those it has (under "model" a Movie-Book Book, which has no text, scores twice its ID part). A factor
            # of exactly 1 for an item with every channel, so there both scales train the same model bit for bit
            w = w * (have.sum(-1, keepdim=True) / len(vecs))
        return torch.cat([v * w[..., c:c + 1] for c, v in enumerate(vecs)], -1), have.any(-1)

    @property
    def networks(self) -> list[MultipleAttention]:
        """The sequence networks, one per channel under fusion="network" (in `channels` order), else the one."""
        return [self.network, *self.more_networks]

    def _users(self, t: dict, last_only: bool = False) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(the users [2][B, L, width] that score domain d's next item at each merged position, the users [B, L,
        width] from the encoder's states, which score the very next item). Under score fusion the width is C * d,
        the per-channel parts [u_c]_c: U_c u of one network over the fused item vectors, or (fusion="network") each
        channel's own network over that channel's vectors."""
        if self.per_channel:
            outs = [net(vec, t, last_only) for net, (vec, _) in zip(self.networks, self._stream_items(t["mixed"]))]
            return [torch.cat([o[0][d] for o in outs], -1) for d in range(2)], torch.cat([o[1] for o in outs], -1)
        prefs, states = self.network(self._input_items(t["mixed"]), t, last_only)
        as_users = self.user_heads if self.score_fusion else (lambda x: x)
        return [as_users(p) for p in prefs], as_users(states)

    def preferences(self, t: dict) -> list[torch.Tensor]:
        """The users [2][B, L, width] that score domain d's next item at each merged position."""
        return self._users(t)[0]

    def loss(self, views, device, generator: torch.Generator) -> torch.Tensor:
        """The shared next-item loss, with the content of only the items this step touches projected (its
        sequence, its targets and the negatives, one set per domain shared by both objectives)."""
        t = self.tensors(views, device)
        negatives = [domain_negatives(self.space, d, self.n_negatives, generator, device) for d in range(2)]
        touched = torch.cat([t["mixed"].flatten(), t["next_domain"].flatten(), t["next_item"].flatten(), *negatives])
        with self.item_tables(touched):
            return self._loss(t, device, generator, negatives)

    def objectives(self, t):
        prefs, states = self._users(t)
        for d, p in enumerate(prefs):
            yield [p], t["next_domain"][d], 1.0
        if self.config.aux_weight > 0:
            yield [states], t["next_item"], self.config.aux_weight

    def final_users(self, t):
        # the whole sequence's states only where attention maps are recorded (they show every position)
        prefs, _ = self._users(t, last_only=not self._recording)
        if self._recording:
            self._recorded_time = t["domain_time"]
        return [[p[:, -1]] for p in prefs]

    # -- attention hook ----------------------------------------------------------------------------------------------
    _recording = False

    def record_attention(self, on: bool = True) -> None:
        self._recording = on
        for net in self.networks:
            for block in net.blocks:
                block.record = on

    @property
    def stream_names(self) -> list[str]:
        """The item streams scored apart, a joint content stream named by its channels ("image+text"); under
        fusion="network" stream i is read by network i."""
        return ["+".join(group) for group in self.stream_groups]

    def stream_index(self, stream: int | str) -> int:
        """The index of a stream given as an index, a name of `stream_names` or a channel it reads ("text" is the
        joint content stream "image+text" where there is one)."""
        if isinstance(stream, int):
            return stream
        for i, group in enumerate(self.stream_groups):
            if stream == "+".join(group) or stream in group:
                return i
        raise ValueError(f"no item stream reads {stream!r}; this model's streams are {self.stream_names}")

    def attention_maps(self, stream: int | str = 0) -> dict[str, torch.Tensor]:
        """The last recorded weights [B, Lq, Lk] (see the module docstring) of one network: under fusion="network"
        the one of `stream` (`stream_index`: an index, a stream's name or a channel it reads); else the one
        network, which reads every channel."""
        if self.per_channel:
            net = self.networks[self.stream_index(stream)]
        else:
            net = self.network
        maps = {}
        time = self._recorded_time                                                  # [2, B, Ld]
        hm = net.merged_heads
        for i, block in enumerate(net.blocks):
            w = block.last_head_weights                                             # [B, H, L, L]
            own = w[:, hm:].mean(1)
            for d in range(2):
                maps[f"domain{d}.{i}"] = _at(_at(own, time[d], 1), time[d], 2)
            if net.cross_domain:
                maps[f"mixed.{i}"] = w[:, :hm].mean(1)
        if net.cross_domain:
            for d in range(2):
                maps[f"cross{d}"] = _at(maps[f"mixed.{len(net.blocks) - 1}"], time[d], 1)
        return maps


def _at(weights: torch.Tensor, index: torch.Tensor, axis: int) -> torch.Tensor:
    """weights [B, Lq, Lk] with rows (axis 1) or columns (axis 2) taken at index [B, M] (-1: a zero row/column)."""
    safe = index.clamp(min=0)
    if axis == 1:
        out = weights.gather(1, safe[..., None].expand(-1, -1, weights.shape[2]))
        return out * (index >= 0)[..., None]
    out = weights.gather(2, safe[:, None, :].expand(-1, weights.shape[1], -1))
    return out * (index >= 0)[:, None, :]
