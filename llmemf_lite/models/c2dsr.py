"""C2DSR (Cao et al., CIKM 2022, "Contrastive Cross-Domain Sequential Recommendation") on this project's views.

What this file is: the item-item transition graphs (built from the TRAINING sequences only), the graph propagation
that enhances item embeddings, self-attention encoders over S_X, S_Y and S_X+Y, the per-domain next-item objectives
and the contrastive cross-domain infomax objective, as one `SequentialModel`, so that `train_model` and
`evaluate_ranking` run it unchanged. What it is not: a copy of the authors' code (github cjx96/C2DSR, read to learn
the details; no code taken), nor their training script (our shared training loop and evaluation protocol apply).

The model, as the public code does it:
- Graphs. `mixed`: an edge i -> j for each consecutive pair (i, j) of every training sequence. `single`: an edge
  for each consecutive pair of the X items and of the Y items of every training sequence (one matrix for both
  domains; the item sets are disjoint). Edges are directed, weighted by how often the transition occurs, and each
  row is normalised to sum to one (rows without edges stay zero; no self-loops are added). The code's check for a
  repeated edge never fires (the set it looks in is never filled), so repeats count: we reproduce that.
- Item inputs. Three ID tables (mixed, X, Y view); the graph propagation of a table is the mean of the table and
  each layer's output, a layer being h <- A . dropout(h) + b (one layer). Item input = (propagated[i] + table[i])
  * sqrt(d). The code allocates a weight matrix and a LeakyReLU in its GCN layer but applies neither; we follow
  what it computes.
- Encoders. One causal self-attention encoder per view. The X and Y sequences are the items of that domain within
  the merged window of `max_len` items (the code masks the other domain out of the merged window).
- Prediction. A linear output layer over the items (a weight vector and a bias per item, not tied to the input
  tables). Shared objective: the merged state at t scores the next item after t in its domain. Domain-specific
  objective: at each domain-d item, merged state + domain-d state score the next domain-d item. Only the last
  `predict_last` = 10 merged positions carry next-item losses (the code's `used = 10`). At test time, domain d's
  user is the last merged state + the domain-d state at the latest domain-d item.
- Infomax. For domain d: anchor = mean of the domain-d encoder's states over its items that have a next domain-d
  item; positive = mean of the merged encoder's states over the other domain's such positions; negative = the same
  mean from the merged encoder run on the sequence whose domain-d items are replaced by random domain-d items
  (the "corrupted" sequence). A bilinear discriminator per domain, binary cross-entropy on positive (1) and
  negative (0). Loss = lambda * (4 next-item terms) + (1 - lambda) * (2 infomax terms), lambda = 0.7.

What a step computes, and what it costs. The code propagates the three whole tables every step (a sparse product
over every item, dropout over every row), although a step looks up a few thousand items: its sequences and the
corrupted sequences' random items (the output layer is a separate table). Here each lookup computes only the rows
it needs (`GraphPropagation.rows`: with n layers, the rows within n hops, read from the graph's CSR rows), with the
same values and gradients as the whole-table propagation (tests/test_c2dsr.py). Graph dropout keeps the code's
semantics: one mask per (layer, table row) per step, shared by every lookup of that step (the merged view is looked
up three times: the sequences and the two corrupted sequences), same rate, scaled by 1 / (1 - rate); only the
random stream differs (`DropoutMasks`: masks drawn in the order rows are first needed, from torch.rand, where the
code's F.dropout draws all rows at once), hence `GraphPropagation.VERSION` 2. The ID tables and the output layer
are looked up through `row_gradients`, so that the many lookups of a step give each table one dense gradient rather
than one [n_items, d] gradient per lookup. Evaluation (`score_all`) propagates only the batch's input rows too.
Measured on the real Food-Kitchen data (llmcdsr: 36,298 items, graphs of 335k and 326k edges), d = 256, batch
128, one torch thread, AdamW step included, the whole-table version and this one in one process with their steps
interleaved (12 timed steps each), on an AMD EPYC (family 25), 2 cores shared with other work: 52 sequences/s
before, 100 after (1.9x; 2.45 s and 1.29 s a step). What remains is the model's own work: five encoder passes at
d = 256 (most of a step) and AdamW over four dense [36k, 256] tables (about a fifth).

Where the public code and the paper disagree, and what we do. The paper's full text was not available to us
offline; its hyper-parameters as quoted in issue 8 (d = 256, 2 blocks, 1 head, dropout 0.2, Adam lr 1e-3, max
length 15, batch 256, lambda = 0.7) agree with the code's defaults (and GNN depth 1), so we take those. The
disagreements we can name are between what the code declares and what it runs: (a) the GCN weight matrix and
LeakyReLU are unused (we follow the computation: propagation + bias); (b) `--weight_decay 5e-4` and
`--max_grad_norm 5` are parsed but never applied (Adam with betas (0.9, 0.98), no decay, no clipping is what
runs); (c) its attention block is SASRec.pytorch's (LayerNorm on the queries only, residual from the normalised
queries, and no key-padding mask, so real items attend to padding). We depart from the code in:
- the encoder block: this project's pre-LayerNorm block with padding masked out (the SASRec and LLM-EMF baselines
  use the same block, so the comparison isolates C2DSR's graph and objectives), positions counted from the most
  recent item;
- the softmax: the project's sampled softmax over the target's domain (`n_negatives` = 500; 0 = the code's full
  softmax, though without its extra PAD class), as every model here uses;
- training users lacking one domain: the code drops them; we keep them for the next-item losses and leave them out
  of the infomax term only;
- the last X item of a training sequence whose final target is a Y item: the code deletes it from the X sequence
  (its next X item is unknown); we keep it in the input with no target;
- training settings (optimiser, batch, epochs, early stopping) are the project's `TrainConfig`; the paper's
  (Adam 1e-3, batch 256) are in `C2DSRConfig` and offered through `C2DSR.train_settings` for a caller to apply.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..batching import NO_POS, NO_TARGET, SequenceViews
from ..data.dataset import ItemSpace
from .base import SequentialModel, gather_positions
from .biased_items import ItemsWithBias, append_one
from .blocks import CausalTransformer


@dataclass
class C2DSRConfig:
    d: int = 256
    n_blocks: int = 2
    n_heads: int = 1
    dropout: float = 0.2
    max_len: int = 15            # merged window; the domain sequences are its X and Y items
    gnn_layers: int = 1
    lam: float = 0.7             # lambda: weight of the next-item terms; 1 - lambda weighs the infomax terms
    predict_last: int = 10       # merged positions (most recent) that carry next-item losses
    n_negatives: int = 500       # per domain per batch; 0 = full softmax over the domain
    loss_weighting: str = "domain"   # base.LOSS_WEIGHTINGS
    # the paper's training settings; the shared training loop does not read them (see `C2DSR.train_settings`)
    lr: float = 1e-3
    batch_size: int = 256


# -- graphs ----------------------------------------------------------------------------------------------------------
@dataclass
class TransitionGraph:
    """A row-normalised directed item graph over n_items nodes (+ the PAD node, which has no edges), as COO arrays
    sorted by (row, col), each (row, col) once: weight = count(row -> col) / count(row -> anything)."""
    rows: np.ndarray
    cols: np.ndarray
    weights: np.ndarray
    n_nodes: int

    def dense(self) -> np.ndarray:
        out = np.zeros((self.n_nodes, self.n_nodes), np.float32)
        out[self.rows, self.cols] = self.weights
        return out


def _graph_from_pairs(sources: np.ndarray, targets: np.ndarray, n_nodes: int) -> TransitionGraph:
    keys, counts = np.unique(sources * n_nodes + targets, return_counts=True)
    rows, cols = keys // n_nodes, keys % n_nodes
    out_degree = np.bincount(rows, weights=counts, minlength=n_nodes)
    return TransitionGraph(rows.astype(np.int64), cols.astype(np.int64),
                           (counts / out_degree[rows]).astype(np.float32), n_nodes)


def transition_graphs(sequences, space: ItemSpace) -> dict[str, TransitionGraph]:
    """{"mixed", "single"} graphs of the consecutive transitions in `sequences` (chronological item-id arrays):
    of the merged sequence, and of each domain's subsequence (both domains in one graph). Nodes are the n_items
    items plus PAD (id n_items, no edges)."""
    n_nodes = space.n_items + 1
    pairs = {"mixed": ([], []), "single": ([], [])}
    for i, seq in enumerate(sequences):
        seq = np.asarray(seq, np.int64)
        if len(seq) and (seq.min() < 0 or seq.max() >= space.n_items):
            raise ValueError(f"training sequence {i}: item ids must lie in [0, {space.n_items}), got "
                             f"[{seq.min()}, {seq.max()}]")
        pairs["mixed"][0].append(seq[:-1]), pairs["mixed"][1].append(seq[1:])
        domain = space.domain_of(seq)
        for d in range(2):
            sub = seq[domain == d]
            pairs["single"][0].append(sub[:-1]), pairs["single"][1].append(sub[1:])
    empty = np.zeros(0, np.int64)
    return {name: _graph_from_pairs(np.concatenate(src or [empty]), np.concatenate(dst or [empty]), n_nodes)
            for name, (src, dst) in pairs.items()}


class GraphPropagation(nn.Module):
    """Mean of the input table and `n_layers` propagations h <- A . dropout(h) + b over one transition graph.

    `forward` propagates the whole table; `rows` computes only the rows a lookup needs (what the model uses)."""

    VERSION = 2   # 1: dropout drawn over the whole table each step (another random stream; not resumed)

    def __init__(self, graph: TransitionGraph, d: int, n_layers: int, dropout: float):
        super().__init__()
        # Derived from the training data at build time: not saved with the weights (persistent=False), and dense
        # index/value buffers rather than a sparse tensor so that .to(device) and DDP's buffer broadcast work.
        # The edges are sorted by (row, col), so row_starts[i]:row_starts[i + 1] are row i's edges (CSR).
        self.register_buffer("edges", torch.as_tensor(np.stack([graph.rows, graph.cols])), persistent=False)
        self.register_buffer("weights", torch.as_tensor(graph.weights), persistent=False)
        self.register_buffer("row_starts", torch.as_tensor(np.searchsorted(graph.rows, np.arange(graph.n_nodes + 1))),
                             persistent=False)
        self.n_nodes, self.dropout = graph.n_nodes, dropout
        bound = 1.0 / math.sqrt(d)
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(d).uniform_(-bound, bound)) for _ in range(n_layers))

    def _check(self, table: torch.Tensor) -> None:
        if table.shape[0] != self.n_nodes:
            raise ValueError(f"graph over {self.n_nodes} nodes, item table with {table.shape[0]} rows")

    def forward(self, table: torch.Tensor) -> torch.Tensor:
        self._check(table)
        adjacency = torch.sparse_coo_tensor(self.edges, self.weights, (self.n_nodes, self.n_nodes),
                                            is_coalesced=True, check_invariants=False)
        h, total = table, table
        for bias in self.biases:
            h = torch.sparse.mm(adjacency, F.dropout(h, self.dropout, self.training)) + bias
            total = total + h
        return total / (len(self.biases) + 1)

    def _out_edges(self, nodes: torch.Tensor):
        """The edges leaving `nodes` (sorted ids), as (index into nodes, target id, weight), sorted by both."""
        starts = self.row_starts[nodes]
        counts = self.row_starts[nodes + 1] - starts
        source = torch.repeat_interleave(torch.arange(len(nodes), device=nodes.device), counts)
        first = torch.cumsum(counts, 0) - counts
        edge = torch.arange(len(source), device=nodes.device) - first[source] + starts[source]
        return source, self.edges[1, edge], self.weights[edge]

    def rows(self, table: torch.Tensor, ids: torch.Tensor, masks: "DropoutMasks | None" = None,
             sparse_grad: bool = False):
        """(forward(table)[ids], table[ids]), each [*ids.shape, d], computed from the rows within n_layers hops of
        `ids` only. Dropout (when `masks` is given) multiplies each neighbour row by its mask in `masks`.
        sparse_grad: the table's gradient as sparse rows (`table` must then be a `row_gradients` view)."""
        self._check(table)
        wanted, where = torch.unique(ids.reshape(-1), return_inverse=True)
        # needed[j]: the ids where layer n - j must be known (layer 0: the table); links[j]: A[needed[j], needed[j+1]]
        needed, links = [wanted], []
        for _ in self.biases:
            source, target, weight = self._out_edges(needed[-1])
            below = torch.unique(torch.cat([wanted, target]))
            index = torch.stack([source, torch.searchsorted(below, target)])
            links.append(torch.sparse_coo_tensor(index, weight, (len(needed[-1]), len(below)), is_coalesced=True,
                                                 check_invariants=False))
            needed.append(below)
        h = F.embedding(needed[-1], table, sparse=sparse_grad)
        at_wanted = h[torch.searchsorted(needed[-1], wanted)]
        total = at_wanted
        for layer, bias in enumerate(self.biases, start=1):
            j = len(self.biases) - layer
            x = masks.apply(layer, needed[j + 1], h) if masks is not None else h
            h = torch.sparse.mm(links[j], x) + bias
            total = total + h[torch.searchsorted(needed[j], wanted)]
        shape = (*ids.shape, table.shape[1])
        return (total / (len(self.biases) + 1))[where].reshape(shape), at_wanted[where].reshape(shape)


class DropoutMasks:
    """The graph dropout of one training step: one mask per (layer, table row), drawn the first time a lookup of
    the step needs that row and reused by every later lookup of the step, so that the rows a step sees are
    dropped as `F.dropout` over the whole table would drop them (same rate, same scaling by 1 / (1 - rate)), only
    from another random stream: masks are drawn in the order rows are first needed."""

    def __init__(self, rate: float, n_nodes: int):
        self.rate, self.n_nodes = rate, n_nodes
        self.slot: dict[int, torch.Tensor] = {}      # layer -> [n_nodes] index into masks[layer], -1 = not drawn
        self.masks: dict[int, torch.Tensor] = {}

    def apply(self, layer: int, nodes: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """h [len(nodes), d], the rows `nodes` of layer `layer`'s input, dropped."""
        if self.rate <= 0:
            return h
        if self.rate >= 1:
            return h * 0.0
        slot = self.slot.setdefault(layer, torch.full((self.n_nodes,), -1, dtype=torch.long, device=h.device))
        stored = self.masks.get(layer, h.new_empty(0, h.shape[1]))
        new = nodes[slot[nodes] < 0]
        if len(new):
            keep = 1.0 - self.rate
            # P(u < keep) = keep for u uniform on [0, 1): Bernoulli(keep), drawn faster than by bernoulli_
            fresh = torch.rand(len(new), h.shape[1], dtype=h.dtype, device=h.device).lt_(keep).div_(keep)
            slot[new] = torch.arange(len(stored), len(stored) + len(new), device=h.device)
            stored = self.masks[layer] = torch.cat([stored, fresh])
        return h * stored[slot[nodes]]


class _RowGradients(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table):
        return table.view_as(table)

    @staticmethod
    def backward(ctx, grad):
        return grad.to_dense() if grad.layout == torch.sparse_coo else grad


def row_gradients(table: torch.Tensor) -> torch.Tensor:
    """`table` itself, for a step that looks it up many times with F.embedding(..., sparse=True): each lookup's
    gradient stays sparse (its rows), autograd sums them sparse, and the table receives one dense gradient (what
    AdamW and DDP expect) instead of one dense [n_items, d] gradient to allocate, zero and add per lookup."""
    return _RowGradients.apply(table)


class OutputItems(ItemsWithBias):
    """`ItemsWithBias` whose weight rows, inside `C2DSR.loss`, are looked up through one `row_gradients` view of
    the table per step (the shared loss looks the output layer up once per objective, domain and side)."""

    step_table: torch.Tensor | None = None

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.step_table is None:
            return super().forward(ids)
        rows = F.embedding(ids, self.step_table, sparse=True)
        return torch.cat([rows, self.bias[ids][..., None]], dim=-1), torch.ones_like(ids, dtype=torch.bool)


# -- the window ------------------------------------------------------------------------------------------------------
def merged_window(views: SequenceViews, n: int) -> SequenceViews:
    """Views restricted to the last `n` merged positions, with each domain sequence reduced to the domain's items
    inside that window (C2DSR's S_X and S_Y are the X and Y items of the merged window). Also applied when the views
    are no wider than n: domain items older than the merged window are dropped either way."""
    L = views.mixed.shape[1]
    off = max(0, L - n)
    inside = views.domain_time >= off                      # NO_POS (-1) is never inside
    pos = views.domain_pos
    pos_inside = np.take_along_axis(inside, np.clip(pos, 0, None), axis=-1) & (pos >= 0)
    # at most n domain items fit in the window and they are the latest, so they sit in the last n columns
    return SequenceViews(
        mixed=views.mixed[:, off:],
        domain_seq=np.where(inside, views.domain_seq, views.pad)[..., off:],
        domain_pos=np.where(pos_inside, pos - off, NO_POS)[..., off:],
        mixed_domain=views.mixed_domain[:, off:],
        next_domain=views.next_domain[..., off:],
        next_item=views.next_item[:, off:],
        domain_next=np.where(inside, views.domain_next, NO_TARGET)[..., off:],
        domain_time=np.where(inside, views.domain_time - off, NO_POS)[..., off:],
        pad=views.pad)


# -- infomax ---------------------------------------------------------------------------------------------------------
def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """states [B, L, d], mask [B, L] -> [B, d]: the mean over the masked positions (zero where none)."""
    m = mask.to(states.dtype)[..., None]
    return (states * m).sum(1) / m.sum(1).clamp_min(1.0)


def infomax_loss(discriminator: nn.Bilinear, anchor: torch.Tensor, positive: torch.Tensor,
                 negative: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of a bilinear discriminator D(node, anchor) = node^T W anchor + b telling the positive
    (label 1) from the negative (label 0), each averaged over the rows: a Deep-InfoMax lower bound on the mutual
    information between the anchor and the positive."""
    pos = discriminator(positive, anchor)
    neg = discriminator(negative, anchor)
    return (F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
            + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg)))


# -- the model -------------------------------------------------------------------------------------------------------
class C2DSR(SequentialModel):
    """View index v: 0 = domain X, 1 = domain Y, 2 = merged (so a domain's index is its view's)."""

    MIXED = 2

    def __init__(self, space: ItemSpace, config: C2DSRConfig, train_sequences):
        super().__init__(space, config.n_negatives, config.loss_weighting)
        if train_sequences is None:
            raise ValueError("C2DSR builds its item graphs from the training sequences: pass "
                             "build_model('c2dsr', space, train_sequences=...)")
        self.config = c = config
        n = space.n_items
        graphs = transition_graphs(train_sequences, space)
        self.graph_sizes = {name: len(g.rows) for name, g in graphs.items()}
        # ID tables. The code keeps nn.Embedding's N(0, 1) and scales inputs by sqrt(d) (std ~ sqrt(d)), which
        # under our pre-LN block drowns the position embedding and learns slowly; std 1/sqrt(d) makes the scaled
        # input unit-sized, like the position embedding.
        self.tables = nn.ModuleList(nn.Embedding(n + 1, c.d, padding_idx=n) for _ in range(3))
        for table in self.tables:
            nn.init.normal_(table.weight, std=1.0 / math.sqrt(c.d))
            with torch.no_grad():
                table.weight[n].zero_()
        graph_of_view = [graphs["single"], graphs["single"], graphs["mixed"]]
        self.propagation = nn.ModuleList(GraphPropagation(g, c.d, c.gnn_layers, c.dropout) for g in graph_of_view)
        # positions at N(0, 1), like its unit-sized item inputs (the code's nn.Embedding default)
        self.encoders = nn.ModuleList(CausalTransformer(c.d, c.n_blocks, c.n_heads, c.dropout, c.max_len,
                                                        pos_std=1.0) for _ in range(3))
        self.discriminators = nn.ModuleList(nn.Bilinear(c.d, c.d, 1) for _ in range(2))
        for disc in self.discriminators:
            nn.init.xavier_uniform_(disc.weight)
            nn.init.zeros_(disc.bias)
        # the output layer: weight and bias per item, initialised like nn.Linear (uniform +-1/sqrt(d))
        head = nn.Embedding(n + 1, c.d, padding_idx=n)
        bound = 1.0 / math.sqrt(c.d)
        with torch.no_grad():
            head.weight.uniform_(-bound, bound)
            head.weight[n].zero_()
        self.head = OutputItems(head)
        with torch.no_grad():
            self.head.bias.uniform_(-bound, bound)
            self.head.bias[n] = 0.0
        self.streams = [self.head]
        self._generator: torch.Generator | None = None
        self._infomax: torch.Tensor | None = None

    @property
    def train_settings(self) -> dict:
        """The paper's training settings, as `TrainConfig` fields."""
        return {"lr": self.config.lr, "batch_size": self.config.batch_size}

    def tensors(self, views, device) -> dict:
        return super().tensors(merged_window(views, self.config.max_len), device)

    # -- encoding ----------------------------------------------------------------------------------------------------
    def _item_inputs(self) -> list:
        """Per view, a function ids -> (graph-enhanced + ID embedding) * sqrt(d). Each lookup propagates only the
        rows it needs (`GraphPropagation.rows`); the lookups of one call share one graph-dropout draw."""
        scale, pad = math.sqrt(self.config.d), self.space.n_items
        out = []
        sparse = torch.is_grad_enabled()
        for table, propagation in zip(self.tables, self.propagation):
            masks = DropoutMasks(propagation.dropout, propagation.n_nodes) if self.training else None
            weight = row_gradients(table.weight) if sparse else table.weight

            def lookup(ids, weight=weight, propagation=propagation, masks=masks):
                enhanced, own = propagation.rows(weight, ids, masks, sparse_grad=sparse)
                # the ID term as nn.Embedding(padding_idx=PAD) gives it: no gradient into the PAD row
                own = torch.where((ids == pad)[..., None], own.detach(), own)
                return (enhanced + own) * scale
            out.append(lookup)
        return out

    def _encode(self, seq: torch.Tensor, view: int, inputs) -> torch.Tensor:
        return self.encoders[view](inputs[view](seq), seq != self.space.n_items)

    def encode(self, t: dict):
        """(merged states [B, W, d], [X states, Y states] [B, W, d]) for the views in `t`."""
        inputs = self._item_inputs()
        merged = self._encode(t["mixed"], self.MIXED, inputs)
        return merged, [self._encode(t["domain_seq"][d], d, inputs) for d in range(2)], inputs

    def corrupt(self, mixed: torch.Tensor, domain: int, generator: torch.Generator) -> torch.Tensor:
        """The merged sequence with every item of `domain` replaced by a uniformly random item of that domain."""
        rng = self.space.domain_range(domain)
        pad = self.space.n_items
        is_domain = (mixed != pad) & (mixed >= rng.start) & (mixed < rng.stop)
        random_items = torch.randint(rng.start, rng.stop, mixed.shape, generator=generator).to(mixed.device)
        return torch.where(is_domain, random_items, mixed)

    # -- objectives --------------------------------------------------------------------------------------------------
    def loss(self, views, device, generator: torch.Generator) -> torch.Tensor:
        # `objectives` (called by the shared next-item loss) also computes the infomax term, from the same states
        self._generator, self._infomax = generator, None
        if torch.is_grad_enabled():
            self.head.step_table = row_gradients(self.head.table.weight)
        try:
            prediction = super().loss(views, device, generator)
        finally:
            self.head.step_table = None
        infomax, self._infomax, self._generator = self._infomax, None, None
        return prediction + (1.0 - self.config.lam) * infomax

    def objectives(self, t):
        c, pad = self.config, self.space.n_items
        merged, domain_states, inputs = self.encode(t)
        width = merged.shape[1]
        recent_from = width - c.predict_last
        columns = torch.arange(width, device=merged.device)
        yield [append_one(merged)], torch.where(columns >= recent_from, t["next_item"], NO_TARGET), c.lam
        for d in range(2):
            time = t["domain_time"][d]
            users = gather_positions(merged, time) + domain_states[d]
            targets = torch.where(time >= recent_from, t["domain_next"][d], NO_TARGET)
            yield [append_one(users)], targets, c.lam
        self._infomax = self._infomax_term(t, merged, domain_states, inputs)

    def _infomax_term(self, t, merged, domain_states, inputs) -> torch.Tensor:
        pad = self.space.n_items
        has_target = [(t["domain_seq"][d] != pad) & (t["domain_next"][d] >= 0) for d in range(2)]
        # merged states at the merged positions of each domain's items
        merged_at = [gather_positions(merged, t["domain_time"][d]) for d in range(2)]
        both = has_target[0].any(1) & has_target[1].any(1)   # users with both domains (the code keeps only them)
        total = merged.new_zeros(())
        if not bool(both.any()):
            return total
        for d in range(2):
            other = 1 - d
            anchor = masked_mean(domain_states[d], has_target[d])
            positive = masked_mean(merged_at[other], has_target[other])
            corrupted = self._encode(self.corrupt(t["mixed"], d, self._generator), self.MIXED, inputs)
            negative = masked_mean(gather_positions(corrupted, t["domain_time"][other]), has_target[other])
            total = total + infomax_loss(self.discriminators[d], anchor[both], positive[both], negative[both])
        return total

    def final_users(self, t):
        merged, domain_states, _ = self.encode(t)
        last = merged[:, -1]
        return [[append_one(last + gather_positions(domain_states[d], t["domain_pos"][d][:, -1:])[:, 0])]
                for d in range(2)]
