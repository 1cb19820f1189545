"""LLM text enrichment (LLM-EMF's first stage): one enriched text per item, generated through a resumable cache.

    import llmemf_lite as L
    texts = L.enriched_texts(ds)                       # list[str | None], one per global item id
    run = L.enrich_dataset(ds, L.EnrichConfig(limit=500))   # the same, plus counts, fallbacks, tokens/s

Modules: prompts.py (templates as data), backend.py (the interface; enrich.py picks one), local.py (transformers, GGUF included),
http.py (OpenAI-compatible servers), guards.py (degenerate-output checks), cache.py (SQLite), enrich.py (driver).
"""
from .backend import BackendError, Generation
from .cache import EnrichmentCache
from .enrich import (REAL_DATA_LIMIT, EnrichConfig, EnrichmentRun, default_limit, enrich_dataset, enriched_texts,
                     generator_key, make_backend, select_items)
from .guards import GuardConfig, check_generation
from .http import OpenAICompatibleBackend
from .local import TransformersBackend, load_causal_lm, locate_smollm2_gguf
from .prompts import TEMPLATES, PromptTemplate, get_template

__all__ = ["BackendError", "EnrichConfig", "EnrichmentCache", "EnrichmentRun", "Generation", "GuardConfig",
           "OpenAICompatibleBackend", "PromptTemplate", "TEMPLATES", "TransformersBackend", "check_generation",
           "enrich_dataset", "enriched_texts", "default_limit", "REAL_DATA_LIMIT", "get_template", "load_causal_lm",
           "generator_key", "locate_smollm2_gguf", "make_backend", "select_items"]
