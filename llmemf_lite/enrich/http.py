"""The HTTP backend: any server that speaks OpenAI's chat-completions API (vLLM, llama.cpp's llama-server, Ollama,
hosted APIs). This is how enrichment scales past one machine: point `base_url` at a vLLM server or a fleet behind
one URL and raise `concurrency`.

What this file is: one POST per item to `{base_url}/chat/completions`, at most `concurrency` in flight, a timeout per
request, retries with exponential backoff and jitter on 429 / 5xx / timeouts / refused connections (a `Retry-After`
header is honoured), and a `BackendError` at once on any other 4xx (a wrong model name or a bad request will not fix
itself). A response with no choices is not an exception: that item becomes a fallback, counted by the guards.
What it is not: prompt text, output checks, caching (see `prompts.py`, `guards.py`, `cache.py`).

The API key is read from the environment variable named by `api_key_env` when the backend is built; it is sent in the
Authorization header and never logged, printed, stored in the cache or put into an error message. Standard library
only (urllib), so no client package is needed.
"""
from __future__ import annotations

import json
import os
import random
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from .backend import BackendError, Generation

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAICompatibleBackend:
    def __init__(self, base_url: str, model: str | None, generator_key: str, *, api_key_env: str = "OPENAI_API_KEY",
                 max_new_tokens: int = 32, do_sample: bool = False, temperature: float = 0.7, top_p: float = 0.95,
                 extra_body: dict | None = None, seed: int = 0, concurrency: int = 8, timeout_s: float = 60.0,
                 max_retries: int = 5, backoff_s: float = 1.0, max_backoff_s: float = 30.0):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.generator_key = model, generator_key
        self._api_key = os.environ.get(api_key_env) or None
        self.max_new_tokens, self.do_sample, self.temperature, self.top_p = max_new_tokens, do_sample, temperature, top_p
        self.extra_body, self.seed = dict(extra_body or {}), seed
        self.concurrency, self.timeout_s, self.max_retries = concurrency, timeout_s, max_retries
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.retries = 0  # how many retries this backend has made, over all requests (shown in the run summary)

    @classmethod
    def from_config(cls, config, generator_key: str) -> "OpenAICompatibleBackend":
        """The backend an EnrichConfig describes; `generator_key`: its name in the cache (`enrich.generator_key`)."""
        return cls(config.base_url, config.model, generator_key, api_key_env=config.api_key_env,
                   max_new_tokens=config.max_new_tokens, do_sample=config.do_sample, temperature=config.temperature,
                   top_p=config.top_p, extra_body=config.http_extra, seed=config.seed,
                   concurrency=config.concurrency, timeout_s=config.timeout_s, max_retries=config.max_retries)

    def __repr__(self) -> str:  # no key, ever
        return f"OpenAICompatibleBackend(url={self.url!r}, model={self.model!r}, key={'set' if self._api_key else 'none'})"

    def request_body(self, messages: list[dict]) -> dict:
        body = {"messages": messages, "max_tokens": self.max_new_tokens, "n": 1, "seed": self.seed,
                "temperature": self.temperature if self.do_sample else 0.0}
        if self.model:
            body["model"] = self.model
        if self.do_sample:
            body["top_p"] = self.top_p
        # server-specific fields, e.g. {"repetition_penalty": 1.1} for vLLM or {"repeat_penalty": 1.1} for llama.cpp;
        # not sent by default because OpenAI's own API rejects unknown fields with a 400
        return {**body, **self.extra_body}

    def generate(self, prompts: list[list[dict]]) -> list[Generation]:
        if len(prompts) <= 1 or self.concurrency <= 1:
            return [self._complete(m) for m in prompts]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(self._complete, prompts))

    def _complete(self, messages: list[dict]) -> Generation:
        payload = json.dumps(self.request_body(messages)).encode()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        last = "nothing tried"
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return self._parse(response.read())
            except urllib.error.HTTPError as e:
                detail = e.read()[:300].decode("utf-8", "replace")
                if e.code not in RETRY_STATUSES:
                    raise BackendError(f"{self.url} answered HTTP {e.code} ({e.reason}): {detail!r}; a 4xx other "
                                       f"than 429 means the request itself is wrong (model name "
                                       f"{self.model!r}? max_tokens?), so it is not retried") from None
                last, retry_after = f"HTTP {e.code}: {detail!r}", e.headers.get("Retry-After")
            except (TimeoutError, socket.timeout) as e:
                last = f"timed out after {self.timeout_s} s ({e})"
            except urllib.error.URLError as e:  # refused / reset connections: the server may be starting up
                if isinstance(e.reason, (TimeoutError, socket.timeout)):
                    last = f"timed out after {self.timeout_s} s"
                else:
                    last = f"connection failed: {e.reason}"
            except ConnectionError as e:
                last = f"connection failed: {e}"
            if attempt < self.max_retries:
                self.retries += 1
                time.sleep(self._backoff(attempt, retry_after))
        raise BackendError(f"{self.url}: gave up after {self.max_retries + 1} attempts; last error: {last}")

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(float(retry_after), self.max_backoff_s)
            except ValueError:
                pass  # an HTTP date: fall back to exponential backoff
        # exponential with full jitter, so that many clients hitting one busy server do not retry in lockstep
        return random.uniform(0.5, 1.0) * min(self.max_backoff_s, self.backoff_s * 2 ** attempt)

    def _parse(self, raw: bytes) -> Generation:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            return Generation("", 0, True, error=f"response is not JSON: {raw[:80]!r}")
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices:
            return Generation("", 0, True, error="no choices in the response")
        choice = choices[0]
        text = (choice.get("message") or {}).get("content") or choice.get("text") or ""
        usage = data.get("usage") or {}
        n_tokens = int(usage.get("completion_tokens") or len(text.split()))
        return Generation(text.strip(), n_tokens, choice.get("finish_reason") != "length")
