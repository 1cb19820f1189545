"""Frozen item embeddings (LLM-EMF's image and text item features): open_clip CLIP towers and a pretrained MiniLM
text encoder, batched, cached per key, resumable. Entry point: `item_embeddings(ds, "image" | "text", EmbedConfig())`.

Files: embed.py (config, result, driver), clip.py (weights, model, forward passes), minilm.py (the offline MiniLM),
images.py (decoding in DataLoader workers), texts.py (which text per item), cache.py (folders, key, parts),
explore.py (PCA, neighbours and coverage tables for notebook 03).
"""
from .clip import NO_WEIGHTS_NOTE, ClipWeights, resolve_clip_weights
from .embed import EmbedConfig, ItemEmbeddings, announce_weights, item_embeddings

__all__ = ["EmbedConfig", "ItemEmbeddings", "item_embeddings", "announce_weights", "NO_WEIGHTS_NOTE", "ClipWeights",
           "resolve_clip_weights"]
