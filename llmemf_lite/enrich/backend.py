"""The one small interface every enrichment backend implements, and the factory that picks one from a config.

What this file is: `Generation` (what a backend returns per prompt), `GenerationBackend` (the protocol: a stable
`generator_key` and `generate(list of chat messages) -> list of Generation`), `BackendError`, and `make_backend`.
What it is not: any model code (`local.py`: transformers on this machine; `http.py`: an OpenAI-compatible server).

`generator_key` names the model *and* the decoding settings that change its output (max_new_tokens, sampling,
repetition penalty): it is part of the cache key, so it must be computable without loading the model (a fully cached
run never loads one).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .enrich import EnrichConfig


class BackendError(RuntimeError):
    """A backend failed in a way that retrying will not fix (a 4xx, a missing model file, retries exhausted)."""


@dataclass
class Generation:
    text: str               # the generated continuation, chat markup and end-of-sequence tokens removed
    n_tokens: int           # new tokens generated (the end-of-sequence token included when there was one)
    finished: bool          # True: the model ended the text itself; False: cut at max_new_tokens
    error: str | None = None  # a per-item backend problem (e.g. "no choices"): the guards turn it into a fallback


class GenerationBackend(Protocol):
    generator_key: str

    def generate(self, prompts: list[list[dict]]) -> list[Generation]:
        ...


def make_backend(config: "EnrichConfig") -> GenerationBackend:
    """The backend `config.backend` names: "local" (transformers) or "openai" (an OpenAI-compatible HTTP server)."""
    if config.backend == "local":
        from .local import TransformersBackend
        return TransformersBackend.from_config(config)
    if config.backend == "openai":
        from .http import OpenAICompatibleBackend
        return OpenAICompatibleBackend.from_config(config)
    raise ValueError(f"unknown enrichment backend {config.backend!r}; choose 'local' or 'openai'")


def generator_key(config: "EnrichConfig") -> str:
    """The model and decoding settings of `config` as one string, without loading anything."""
    if config.backend == "local":
        from .local import model_identity
        model = model_identity(config.model, config.gguf_file)
    elif config.backend == "openai":
        model = f"openai:{config.model or 'default'}"
    else:
        raise ValueError(f"unknown enrichment backend {config.backend!r}; choose 'local' or 'openai'")
    decoding = (f"sample(t={config.temperature},p={config.top_p},seed={config.seed})" if config.do_sample
                else "greedy")
    if config.backend == "openai":  # the server applies only what is sent: the extra fields, not our penalty
        extra = json.dumps(config.http_extra or {}, sort_keys=True)
        return f"{model}|{decoding}|max_new={config.max_new_tokens}|extra={extra}"
    return f"{model}|{decoding}|max_new={config.max_new_tokens}|rep={config.repetition_penalty}"
