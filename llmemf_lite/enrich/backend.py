"""The one small interface every enrichment backend implements.

What this file is: `Generation` (what a backend returns per prompt), `GenerationBackend` (the protocol: a stable
`generator_key` and `generate(list of chat messages) -> list of Generation`) and `BackendError`. It imports nothing
of the package: the backends (`local.py`: transformers on this machine; `http.py`: an OpenAI-compatible server)
build on it, and the driver (`enrich.py`: `make_backend`, `generator_key`) picks one from a config.

`generator_key` names the model *and* the decoding settings that change its output (max_new_tokens, sampling,
repetition penalty): it is part of the cache key, so it must be computable without loading the model (a fully cached
run never loads one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
