"""The frozen CLIP encoder (open_clip): which weights, which input size, and the two towers' batched forward passes.

What this file is: resolving `pretrained` to a local checkpoint without touching the network, building the model
(real architecture; deterministic random weights where no checkpoint can be had, said in plain words), and
`encode_images` / `encode_texts` over batches. What it is not: reading image files (`images.py`), caching
(`cache.py`) or deciding which items to embed (`embed.py`).

Weights. `pretrained` may be an open_clip tag of the model (e.g. "openai", "laion2b_s34b_b79k"), a hub id
("hf-hub:org/repo" or "org/repo"), a local checkpoint file or a folder holding one. Only local files are ever read:
a tag or hub id counts only when its file is already in the Hugging Face cache (or open_clip's ~/.cache/clip). When
nothing can be had, the model is built with its real architecture and random weights drawn from `seed`, and the
note every output carries is `NO_WEIGHTS_NOTE`.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NO_WEIGHTS_NOTE = "CLIP weights: none, random init; these embeddings carry no pretrained semantics"
CHECKPOINT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "model.safetensors",
                    "pytorch_model.bin")


class CheckpointLoadError(RuntimeError):
    """A checkpoint file that exists but does not load into the model (wrong model, corrupt file)."""


@dataclass(frozen=True)
class ClipWeights:
    """What `pretrained` resolved to. `checkpoint` None means random init (from `seed`)."""
    requested: str | None
    checkpoint: str | None
    identity: str          # what the cache key records: a file's name, size and mtime, or the random-init seed
    reason: str            # plain words: where the weights come from, or why there are none
    tag_cfg: dict = field(default_factory=dict)  # an open_clip tag's preprocessing and quick_gelu settings

    @property
    def pretrained(self) -> bool:
        return self.checkpoint is not None

    @property
    def note(self) -> str:
        if not self.pretrained:
            return NO_WEIGHTS_NOTE
        return f"CLIP weights: {self.requested} ({Path(self.checkpoint).name}), loaded from a local checkpoint"


def _file_identity(path: Path) -> str:
    # Name, size and mtime: hashing a 600 MB checkpoint on every call would make a cache hit slow.
    st = path.stat()
    return f"{path.name}:{st.st_size}:{int(st.st_mtime)}"


def _random(requested: str | None, seed: int, reason: str) -> ClipWeights:
    return ClipWeights(requested, None, f"random-init-seed{seed}", reason)


def _cached_hub_file(repo_id: str, filenames: list[str]) -> str | None:
    """A file of a hub repo if it is already in the local Hugging Face cache; never downloads."""
    from huggingface_hub import try_to_load_from_cache

    for name in filenames:
        hit = try_to_load_from_cache(repo_id, name)
        if isinstance(hit, str) and os.path.isfile(hit):
            return hit
    return None


def _cached_tag_file(tag_cfg: dict) -> str | None:
    if tag_cfg.get("file"):
        return tag_cfg["file"] if os.path.isfile(tag_cfg["file"]) else None
    if tag_cfg.get("hf_hub"):
        # open_clip's form: "org/repo/filename", or "org/repo/" for the default checkpoint name
        repo_id, filename = os.path.split(tag_cfg["hf_hub"])
        names = [filename] if filename else list(CHECKPOINT_NAMES[:2])
        if filename.endswith((".bin", ".pth", ".pt")):
            names.insert(0, filename.rsplit(".", 1)[0] + ".safetensors")  # open_clip prefers the safetensors twin
        hit = _cached_hub_file(repo_id, names)
        if hit:
            return hit
    if tag_cfg.get("url"):
        local = Path("~/.cache/clip").expanduser() / os.path.basename(tag_cfg["url"])
        if local.is_file():
            return str(local)
    return None


def resolve_clip_weights(model_name: str, pretrained: str | None, seed: int = 0) -> ClipWeights:
    """Find the checkpoint that `pretrained` names, locally; or say in plain words why there is none."""
    import open_clip

    if not pretrained or str(pretrained).lower() in ("none", "random"):
        return _random(pretrained, seed, "no pretrained weights were asked for")
    path = Path(str(pretrained)).expanduser()
    if path.is_file():
        return ClipWeights(pretrained, str(path), _file_identity(path), f"local checkpoint file {path.name}")
    if path.is_dir():
        for name in CHECKPOINT_NAMES:
            if (path / name).is_file():
                return ClipWeights(pretrained, str(path / name), _file_identity(path / name),
                                   f"local checkpoint {name} in folder {path.name}")
        return _random(pretrained, seed, f"folder {path} holds none of {list(CHECKPOINT_NAMES)}")
    tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if tag_cfg:
        hit = _cached_tag_file(tag_cfg)
        if hit:
            return ClipWeights(pretrained, hit, f"tag-{pretrained}:{_file_identity(Path(hit))}",
                               f"open_clip tag {pretrained!r} of {model_name}, found in the local cache", tag_cfg)
        return _random(pretrained, seed, f"open_clip tag {pretrained!r} of {model_name} is not in the local caches "
                                         "(Hugging Face cache, ~/.cache/clip) and nothing is downloaded here")
    repo_id = pretrained[len("hf-hub:"):] if pretrained.startswith("hf-hub:") else pretrained
    if repo_id.count("/") == 1:
        hit = _cached_hub_file(repo_id, list(CHECKPOINT_NAMES))
        if hit:
            return ClipWeights(pretrained, hit, f"hub-{repo_id}:{_file_identity(Path(hit))}",
                               f"hub id {repo_id}, found in the local Hugging Face cache")
        return _random(pretrained, seed, f"hub id {repo_id!r} is not in the local Hugging Face cache and nothing is "
                                         "downloaded here")
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    return _random(pretrained, seed, f"{pretrained!r} is not a checkpoint file or folder, not an open_clip tag of "
                                     f"{model_name} (known: {tags[:6]}...), and not a hub id")


def model_geometry(model_name: str) -> dict:
    """Native image size, ViT patch size (None for ResNets), context length and embedding width, from the config."""
    import open_clip

    cfg = open_clip.get_model_config(model_name)
    if cfg is None:
        raise ValueError(f"unknown open_clip model {model_name!r}; e.g. ViT-B-32, ViT-B-16, RN50 "
                         "(open_clip.list_models() has them all)")
    vision, text = cfg["vision_cfg"], cfg["text_cfg"]
    size = vision.get("image_size", 224)
    return {"image_size": size if isinstance(size, int) else max(size), "patch_size": vision.get("patch_size"),
            "context_length": text.get("context_length", 77), "dim": cfg["embed_dim"]}


def choose_image_size(model_name: str, weights: ClipWeights, source_sides: list[int]) -> tuple[int, str]:
    """The input resolution for `image_size="auto"`, with the reason in words.

    Pretrained weights: the model's native size (what the weights were trained at). Random weights: there is no
    trained resolution to respect, and up-sampling a 32 px picture to 224 px adds no information but costs ~25x the
    compute; so the smallest multiple of the ViT patch that covers the largest sampled source image, up to native."""
    geo = model_geometry(model_name)
    native, patch = geo["image_size"], geo["patch_size"]
    if weights.pretrained:
        return native, f"native {native} px: pretrained weights were trained at that size"
    if not patch or not source_sides:
        return native, f"native {native} px" + ("" if patch else " (not a ViT: a fixed-size model)")
    largest = max(source_sides)
    size = min(native, max(patch, int(math.ceil(largest / patch)) * patch))
    return size, (f"{size} px: random weights have no trained resolution, and the largest of {len(source_sides)} "
                  f"sampled source images is {largest} px (ViT patch {patch}, native {native})")


@contextlib.contextmanager
def _quiet_open_clip():
    # open_clip logs "No pretrained weights loaded ... initialized randomly" on the root logger; we say it ourselves,
    # in the manifest and the notebook, so the duplicate is held back here.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def load_clip(model_name: str, weights: ClipWeights, image_size: int, seed: int = 0, device: str = "cpu"):
    """(model in eval mode with gradients off, image transform, tokenizer). Random init is drawn from `seed` inside a
    forked RNG, so the same seed gives the same weights and the caller's RNG state is left as it was."""
    import open_clip
    import torch

    kwargs = {"force_image_size": image_size}
    cfg = weights.tag_cfg
    if cfg:
        kwargs.update(force_quick_gelu=bool(cfg.get("quick_gelu", False)), image_mean=cfg.get("mean"),
                      image_std=cfg.get("std"), image_interpolation=cfg.get("interpolation"),
                      image_resize_mode=cfg.get("resize_mode"))
    with torch.random.fork_rng(devices=[]), _quiet_open_clip():
        torch.manual_seed(seed)
        try:
            model, _, transform = open_clip.create_model_and_transforms(model_name, pretrained=weights.checkpoint,
                                                                        **kwargs)
        except Exception as e:  # noqa: BLE001 - re-raised with the file named; the caller may fall back
            if weights.checkpoint is None:
                raise
            raise CheckpointLoadError(f"{weights.checkpoint}: does not load into open_clip {model_name}: "
                                      f"{type(e).__name__}: {e}") from e
    model = model.to(device).eval().requires_grad_(False)
    return model, transform, open_clip.get_tokenizer(model_name)


def autocast_context(device: str):
    """bf16 (or fp16 where bf16 is unsupported) autocast on CUDA; nothing on CPU, where fp32 is the fast path."""
    import torch

    if device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype), str(dtype).replace("torch.", "")
    return contextlib.nullcontext(), "float32"


def _l2(features) -> np.ndarray:
    import torch.nn.functional as F

    return F.normalize(features.float(), dim=-1).cpu().numpy()


def encode_image_batch(model, pixels, device: str) -> np.ndarray:
    import torch

    amp, _ = autocast_context(device)
    with torch.inference_mode(), amp:
        return _l2(model.encode_image(pixels.to(device, non_blocking=True)))


def can_truncate_context(model) -> bool:
    """True when the text tower reads the EOT position through a causal mask: then tokens after the longest EOT in a
    batch cannot change any output, and the batch may be cut there (exact, and ~6x faster for titles)."""
    import open_clip

    return (isinstance(model, open_clip.CLIP) and getattr(model, "attn_mask", None) is not None
            and getattr(model, "text_pool_type", "argmax") in ("argmax", "eos", "first"))


def encode_text_tokens(model, tokens, device: str) -> np.ndarray:
    """The CLIP text tower on tokens [B, L], L <= context length (see `can_truncate_context`)."""
    import torch
    from open_clip.transformer import text_global_pool

    amp, _ = autocast_context(device)
    tokens = tokens.to(device)
    with torch.inference_mode(), amp:
        if tokens.shape[1] == model.positional_embedding.shape[0] or not can_truncate_context(model):
            return _l2(model.encode_text(tokens))
        n = tokens.shape[1]
        cast = model.transformer.get_cast_dtype()
        x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:n].to(cast)
        x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:n, :n]))
        x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
        if isinstance(model.text_projection, torch.nn.Linear):
            x = model.text_projection(x)
        elif model.text_projection is not None:
            x = x @ model.text_projection
        return _l2(x)


def text_batches(tokens, batch_tokens: int, batch_size: int | None):
    """Index batches over tokenised texts sorted by length, each cut to its longest text; yields (rows, tokens).

    Sorting by length keeps padding small; a batch holds about `batch_tokens` tokens (or `batch_size` texts)."""
    lengths = (tokens != 0).sum(dim=1).numpy()
    order = np.argsort(lengths, kind="stable")
    start, n = 0, len(order)
    while start < n:
        if batch_size:
            stop = min(start + batch_size, n)
        else:
            stop = start + 1  # ascending lengths: the member just added is the batch's longest
            while stop < n and (stop + 1 - start) * int(lengths[order[stop]]) <= batch_tokens:
                stop += 1
        rows = order[start:stop]
        yield rows, tokens[rows, :max(int(lengths[order[stop - 1]]), 1)]
        start = stop
