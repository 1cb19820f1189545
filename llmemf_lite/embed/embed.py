"""`item_embeddings`: frozen item vectors for one modality of a dataset, computed once, cached, resumable.

    emb = item_embeddings(ds, "image")                                   # CLIP image tower
    emb = item_embeddings(ds, "text", EmbedConfig(encoder="minilm"))     # MiniLM over enriched text (title fallback)
    emb.vectors  # float32 [n_items, dim], L2-normalised rows, zero rows where the item lacks the modality
    emb.mask     # bool [n_items]
    emb.manifest # the weights in plain words, coverage, every skipped item and why

What this file is: the config, the result, and the driver (inputs -> cache key -> cache hit, or resume + compute ->
save). What it is not: model code (`clip.py`, `minilm.py`), file decoding (`images.py`) or storage (`cache.py`).
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import cache as cache_mod
from .clip import NO_WEIGHTS_NOTE, CheckpointLoadError  # noqa: F401 - the note is re-exported
from .texts import TEXT_SOURCES, text_inputs

log = logging.getLogger("llmemf_lite.embed")
MODALITIES = ("image", "text")
ENCODERS = ("clip", "minilm")


@dataclass
class EmbedConfig:
    encoder: str = "clip"            # "clip" (image and text) | "minilm" (text only: real pretrained semantics)
    clip_model: str = "ViT-B-32"     # an open_clip model name; the paper names no variant, ViT-B/32 is CLIP's base
    pretrained: str | None = "openai"  # open_clip tag / hub id / local checkpoint; where none can be had offline,
    #                                    the real architecture with random weights from `seed`, said in the manifest
    text_source: str = "enriched"    # "enriched" (LLM text, title fallback) | "title"
    image_size: int | str = "auto"   # "auto": native size with pretrained weights; with random weights the smallest
    #                                  patch multiple covering the source pictures (32 px for the synthetic set)
    batch_size: int | None = None    # None: about `batch_tokens` tokens per batch (small batches run CPU matmuls
    batch_tokens: int = 4096         # at half speed; 64 images at 224 px, ~2000 at 32 px, ~300 titles)
    num_workers: int | None = None   # image-decoding processes; None: one per spare core (at least 1)
    device: str = "auto"             # "auto" | "cpu" | "cuda" | "cuda:N"
    seed: int = 0                    # random-init weights (only used when no checkpoint is loaded)
    chunk_size: int = 1024           # items per saved part: how much an interrupted run can lose

    def check(self, modality: str) -> None:
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; expected one of {ENCODERS}")
        if self.encoder == "minilm" and modality == "image":
            raise ValueError("the MiniLM encoder has no image tower; use encoder='clip' for images")
        if self.text_source not in TEXT_SOURCES:
            raise ValueError(f"unknown text_source {self.text_source!r}; expected one of {TEXT_SOURCES}")
        if not (self.image_size == "auto" or (isinstance(self.image_size, int) and self.image_size > 0)):
            raise ValueError(f"image_size must be 'auto' or a positive int, got {self.image_size!r}")
        if not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ValueError(f"unknown device {self.device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'")


@dataclass
class ItemEmbeddings:
    vectors: np.ndarray   # float32 [n_items, dim], L2-normalised rows, zero rows where missing
    mask: np.ndarray      # bool [n_items], True where the item has this modality
    manifest: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def weights_note(self) -> str:
        return self.manifest.get("weights_note", "")

    def summary(self) -> str:
        m = self.manifest
        return (f"{m['modality']} embeddings [{len(self.vectors)} x {self.dim}] from {m['model']} "
                f"({m['encoder']}): {int(self.mask.sum())} of {len(self.mask)} items have one. {self.weights_note}")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was asked for but torch sees no CUDA device; use 'auto' or 'cpu'")
    return device


def dataset_name(ds) -> str:
    return ds.folder.name if ds.folder is not None else f"{ds.pair.name}-in-memory"


# -- the plan: everything that decides the vectors, known before any model is loaded ---------------------------------
@dataclass
class _Plan:
    modality: str
    encoder: str
    model: str
    weights: object            # ClipWeights for CLIP; None for MiniLM
    weights_note: str
    key_fields: dict
    item_ids: np.ndarray       # items with an input to embed
    inputs: list               # their paths (image) or texts (text)
    details: dict              # coverage facts known before computing (no image, URL only, text origins)
    image_size: int | None = None
    image_size_rule: str = ""

    @property
    def key(self) -> str:
        return cache_mod.cache_key(self.key_fields)


def _plan(ds, modality: str, cfg: EmbedConfig, device: str, progress: bool, weights=None) -> _Plan:
    from .clip import autocast_context, choose_image_size, resolve_clip_weights

    _, precision = autocast_context(device)
    n = ds.space.n_items
    common = {"modality": modality, "encoder": cfg.encoder, "n_items": n, "precision": precision}
    if modality == "image":
        from .images import fingerprint_files, image_inputs, sample_image_sides

        inputs = image_inputs(ds)
        weights = weights or resolve_clip_weights(cfg.clip_model, cfg.pretrained, cfg.seed)
        if cfg.image_size == "auto":
            size, rule = choose_image_size(cfg.clip_model, weights, sample_image_sides(inputs.paths))
        else:
            size, rule = int(cfg.image_size), "set in the config"
        sources = cache_mod.sha256_of([ds.items["image"].tolist(), fingerprint_files(inputs.paths)])
        fields = {**common, "model": cfg.clip_model, "weights": weights.identity, "image_size": size,
                  "preprocess": {k: weights.tag_cfg.get(k) for k in ("mean", "std", "interpolation", "resize_mode")},
                  "images_sha256": sources}
        return _Plan(modality, "clip", cfg.clip_model, weights, weights.note, fields, inputs.item_ids, inputs.paths,
                     {"inputs": inputs.counts()}, size, rule)
    texts = text_inputs(ds, cfg.text_source, progress)
    have = np.asarray([i for i, t in enumerate(texts.texts) if t is not None], dtype=np.int64)
    fields = {**common, "text_source": cfg.text_source, "texts_sha256": cache_mod.sha256_of(texts.texts)}
    if cfg.encoder == "minilm":
        from .minilm import MODEL_NAME, minilm_identity, minilm_note

        fields.update(model=MODEL_NAME, weights=minilm_identity())
        return _Plan(modality, "minilm", MODEL_NAME, None, minilm_note(), fields, have,
                     [texts.texts[i] for i in have], {"text_origin": texts.origin})
    weights = weights or resolve_clip_weights(cfg.clip_model, cfg.pretrained, cfg.seed)
    fields.update(model=cfg.clip_model, weights=weights.identity, context="cut-at-eot")
    return _Plan(modality, "clip", cfg.clip_model, weights, weights.note, fields, have,
                 [texts.texts[i] for i in have], {"text_origin": texts.origin})


# -- computing --------------------------------------------------------------------------------------------------------
class _Timer:
    def __init__(self):
        self.model_s = 0.0

    def run(self, fn, *args):
        start = time.perf_counter()
        out = fn(*args)  # outputs come back as numpy arrays, so on CUDA the time includes the device sync
        self.model_s += time.perf_counter() - start
        return out


def _image_stream(plan: _Plan, pending: np.ndarray, cfg: EmbedConfig, device: str, timer: _Timer):
    """Loads the model now; returns an iterator of (ids, vectors, ok, failures) per batch, pending items in id order."""
    from .clip import encode_image_batch, load_clip, model_geometry
    from .images import image_loader

    model, transform, _ = load_clip(plan.model, plan.weights, plan.image_size, cfg.seed, device)
    geo = model_geometry(plan.model)
    tokens_per_image = (plan.image_size // (geo["patch_size"] or 32)) ** 2 + 1
    batch = cfg.batch_size or int(np.clip(cfg.batch_tokens // tokens_per_image, 8, 1024))
    where = {int(i): k for k, i in enumerate(plan.item_ids)}
    paths = [plan.inputs[where[int(i)]] for i in pending]
    loader = image_loader(pending, paths, transform, batch, cfg.num_workers, pin_memory=device.startswith("cuda"))

    def batches():
        for ids, pixels, failures in loader:
            vecs = timer.run(encode_image_batch, model, pixels, device) if pixels is not None else \
                np.zeros((0, geo["dim"]), np.float32)
            yield ids, vecs, np.ones(len(ids), bool), failures
    return batches()


def _clip_text_stream(plan: _Plan, pending: np.ndarray, cfg: EmbedConfig, device: str, timer: _Timer,
                      details: dict):
    from .clip import encode_text_tokens, load_clip, model_geometry, text_batches

    model, _, tokenizer = load_clip(plan.model, plan.weights, model_geometry(plan.model)["image_size"], cfg.seed,
                                    device)
    where = {int(i): k for k, i in enumerate(plan.item_ids)}
    tokens = tokenizer([plan.inputs[where[int(i)]] for i in pending])
    # a text that fills the whole window had its tail cut off by the tokenizer (or fits exactly): counted, not silent
    details["texts_at_context_limit"] = int((tokens[:, -1] != 0).sum())

    def batches():
        for rows, batch in text_batches(tokens, cfg.batch_tokens, cfg.batch_size):
            yield pending[rows], timer.run(encode_text_tokens, model, batch, device), np.ones(len(rows), bool), []
    return batches()


def _minilm_stream(plan: _Plan, pending: np.ndarray, cfg: EmbedConfig, device: str, timer: _Timer, details: dict):
    from .minilm import count_truncated, encode_minilm, load_minilm

    model = load_minilm(device)
    where = {int(i): k for k, i in enumerate(plan.item_ids)}
    texts = [plan.inputs[where[int(i)]] for i in pending]
    details["texts_truncated"] = count_truncated(model, texts)
    step = max(cfg.chunk_size, 1)

    def batches():
        for s in range(0, len(texts), step):
            vecs = timer.run(encode_minilm, model, texts[s:s + step], cfg.batch_size or 128, device)
            yield pending[s:s + step], vecs, np.ones(len(vecs), bool), []
    return batches()


def _compute(plan: _Plan, store: "cache_mod.EmbeddingCache", cfg: EmbedConfig, device: str, progress: bool) -> dict:
    """Embed the items the parts on disk do not yet hold, writing a part every `chunk_size` items."""
    from tqdm.auto import tqdm

    done = store.load_parts()
    pending = np.setdiff1d(plan.item_ids, done["ids"])
    facts = {"resumed_items": int(len(done["ids"])), "computed_items": int(len(pending))}
    if len(pending) == 0:
        return facts
    timer, load_start = _Timer(), time.perf_counter()
    if plan.modality == "image":
        stream = _image_stream(plan, pending, cfg, device, timer)
    elif plan.encoder == "clip":
        stream = _clip_text_stream(plan, pending, cfg, device, timer, facts)
    else:
        stream = _minilm_stream(plan, pending, cfg, device, timer, facts)
    bar = tqdm(total=len(plan.item_ids), initial=len(done["ids"]), desc=f"{plan.modality} embeddings ({plan.model})",
               unit=" items", disable=not progress, mininterval=1.0)
    buffer: list = []
    buffered, dim = 0, _output_dim(plan)
    first_batch_at = None
    start = time.perf_counter()  # the model is loaded: from here on, wall time is embedding time

    def flush():
        nonlocal buffer, buffered
        if not buffer:
            return
        ids = np.concatenate([b[0] for b in buffer])
        vecs = np.concatenate([b[1].reshape(-1, dim) for b in buffer])
        ok = np.concatenate([b[2] for b in buffer])
        failed = [f for b in buffer for f in b[3]]
        # failed items are stored too (ok False, zero vector), so a resumed run does not try them again
        all_ids = np.concatenate([ids, np.asarray([i for i, _ in failed], np.int64)])
        all_vecs = np.concatenate([vecs, np.zeros((len(failed), dim), np.float32)])
        all_ok = np.concatenate([ok, np.zeros(len(failed), bool)])
        store.write_part(all_ids, all_vecs, all_ok, failed)
        buffer, buffered = [], 0

    for ids, vecs, ok, failures in stream:
        if first_batch_at is None:
            first_batch_at = time.perf_counter()
        buffer.append((ids, vecs, ok, failures))
        buffered += len(ids) + len(failures)
        bar.update(len(ids) + len(failures))
        if buffered >= cfg.chunk_size:
            flush()
    flush()
    bar.close()
    wall = time.perf_counter() - start
    facts["timing"] = {"model_load_s": round(start - load_start, 3), "wall_s": round(wall, 3),
                       "model_s": round(timer.model_s, 3),
                       "model_share_of_wall": round(timer.model_s / wall, 3) if wall else None,
                       "items_per_s": round(len(pending) / wall, 2) if wall else None,
                       "until_first_batch_s": round((first_batch_at or start) - start, 3)}
    return facts


def _assemble(plan: _Plan, store, ds, facts: dict, device: str) -> tuple[np.ndarray, np.ndarray, dict]:
    parts = store.load_parts()
    dim = _output_dim(plan)
    n = ds.space.n_items
    vectors, mask = np.zeros((n, dim), np.float32), np.zeros(n, bool)
    if parts["vectors"] is not None:
        ok_ids = parts["ids"][parts["ok"]]
        vectors[ok_ids] = parts["vectors"][parts["ok"]]
        mask[ok_ids] = True
    failures = sorted(dict(parts["failures"]).items())
    if plan.modality == "image" and plan.item_ids.size and len(failures) == len(plan.item_ids):
        raise RuntimeError(f"every one of the {len(failures)} item images failed to decode; that points at the "
                           f"pipeline, not the files. First: item {failures[0][0]}: {failures[0][1]}")
    return vectors, mask, _manifest(plan, ds, mask, failures, facts, device, dim)


def _output_dim(plan: _Plan) -> int:
    if plan.encoder == "minilm":
        return 384
    from .clip import model_geometry

    return model_geometry(plan.model)["dim"]


def _manifest(plan: _Plan, ds, mask: np.ndarray, failures: list, facts: dict, device: str, dim: int) -> dict:
    space = ds.space
    per_domain = {name: {"items": len(space.domain_range(d)),
                         "with_modality": int(mask[space.domain_range(d).start:space.domain_range(d).stop].sum())}
                  for d, name in enumerate(ds.pair.domains)}
    coverage = {"items": int(space.n_items), "with_modality": int(mask.sum()), "per_domain": per_domain}
    m = {"dataset": dataset_name(ds), "domain_pair": ds.pair.name, "synthetic": bool(ds.card.get("synthetic")),
         "modality": plan.modality, "encoder": plan.encoder, "model": plan.model, "dim": dim,
         "pretrained": bool(plan.weights.pretrained) if plan.weights is not None else True,
         "weights": plan.key_fields["weights"], "weights_note": plan.weights_note,
         "normalised": "L2 (unit rows); zero rows where mask is False", "device": device,
         "precision": plan.key_fields["precision"], "coverage": coverage, "key_fields": plan.key_fields}
    if plan.weights is not None:
        m["pretrained_requested"] = plan.weights.requested
        m["weights_reason"] = plan.weights.reason
    if plan.modality == "image":
        m["image_size"], m["image_size_rule"] = plan.image_size, plan.image_size_rule
        coverage["missing"] = {**{k: v for k, v in plan.details["inputs"].items() if k != "local_file"},
                               "bad_file": len(failures)}
        where = {int(i): p for i, p in zip(plan.item_ids, plan.inputs)}
        m["bad_files"] = [{"item_id": i, "path": where.get(i), "error": e} for i, e in failures]
    else:
        m["text_source"] = plan.key_fields["text_source"]
        coverage["text_origin"] = plan.details["text_origin"]
    m.update({k: v for k, v in facts.items() if k not in ("resumed_items", "computed_items")})
    m["run"] = {"resumed_items": facts.get("resumed_items", 0), "computed_items": facts.get("computed_items", 0)}
    return m


def item_embeddings(ds, modality: str, config: EmbedConfig | None = None, *, progress: bool = True) -> ItemEmbeddings:
    """Frozen, L2-normalised item vectors for `modality` ("image" | "text") of `ds`, from the cache when the key
    matches (dataset inputs, modality, encoder, model, weights, image size / text source and texts, precision)."""
    from .clip import _random

    cfg = config or EmbedConfig()
    cfg.check(modality)
    device = resolve_device(cfg.device)
    plan = _plan(ds, modality, cfg, device, progress)
    for attempt in range(2):
        store = cache_mod.EmbeddingCache(
            cache_mod.cache_folder(dataset_name(ds), modality, plan.encoder, plan.model, plan.key), plan.key)
        hit = store.load()
        if hit is not None:
            vectors, mask, manifest = hit
            _announce(plan, modality)
            return ItemEmbeddings(vectors, mask, {**manifest, "from_cache": True})
        try:
            facts = _compute(plan, store, cfg, device, progress)
            break
        except CheckpointLoadError as e:
            if attempt or plan.weights is None or not plan.weights.pretrained:
                raise
            # a checkpoint that is there but does not load: say so, and fall back to random init (a new key)
            log.warning("loading CLIP checkpoint %s failed (%s: %s); falling back to random init",
                        plan.weights.checkpoint, type(e).__name__, e)
            plan = _plan(ds, modality, cfg, device, progress, weights=_random(
                cfg.pretrained, cfg.seed, f"checkpoint {plan.weights.checkpoint} failed to load: {type(e).__name__}"))
    vectors, mask, manifest = _assemble(plan, store, ds, facts, device)
    store.save(vectors, mask, manifest)
    _announce(plan, modality)
    return ItemEmbeddings(vectors, mask, {**manifest, "key": store.key, "from_cache": False})


# the (model, note) pairs already said in this process: a kernel, so once per notebook
_SAID: set[tuple[str, str]] = set()


def _announce(plan: _Plan, modality: str) -> None:
    """Say, once per process, when the vectors carry no pretrained semantics: a reader of any notebook that uses them
    must see it, and once is enough (the image and text towers of one CLIP share the note)."""
    log.info("%s embeddings (%s): %s", modality, plan.model, plan.weights_note)
    if plan.weights is not None and not plan.weights.pretrained:
        announce_weights(plan.model, plan.weights_note)


def announce_weights(model: str, note: str) -> bool:
    """Tell the reader what the CLIP weights are, the first time in this process only (returns whether it said it).
    In a Jupyter kernel it is a rendered note, elsewhere a line on stderr (not through logging, so that it reads the
    same whatever logging configuration a kernel has: notebook outputs are compared run to run)."""
    if (model, note) in _SAID:
        return False
    _SAID.add((model, note))
    text = f"{note} ({model}, image and text towers)."
    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
    except ImportError:
        kernel = None
    if kernel is None:
        print(f"llmemf_lite.embed: {text}", file=sys.stderr, flush=True)
        return True
    from IPython.display import Markdown, display

    display(Markdown(f"> **Note.** {text} Said once per notebook; `emb.weights_note` and the manifest of every "
                     "embedding say it too."))
    return True
