"""The HTTP backend: any server that speaks OpenAI's chat-completions API (vLLM, llama.cpp's llama-server, Ollama,
hosted APIs). This is how enrichment scales past one machine: point `base_url` at a vLLM server or a fleet behind
one URL and raise `concurrency`.

What this file is: one POST per item to `{base_url}/chat/completions`, at most `concurrency` in flight, retries with
exponential backoff and jitter on 429 / 5xx / timeouts / refused connections / an answer that is not a JSON
completion (a `Retry-After` header is honoured), and a `BackendError` at once on any other 4xx (a wrong model name or
a bad request will not fix itself). A JSON completion with no choices is not an exception: that item becomes a
fallback, counted by the guards. What it is not: prompt text, output checks, caching (see `prompts.py`,
`guards.py`, `cache.py`).

What a caller can rely on:
  - the API key (read from the environment variable named by `api_key_env` when the backend is built) is sent in
    the Authorization header of requests to `base_url`'s host only, and is redacted from every text the backend
    returns or raises: a server that echoes the request headers in an error or in a completion puts `<redacted>`
    into the message or the cache, never the key;
  - redirects are not followed: a 3xx is a BackendError naming where it points (set `base_url` to that address),
    so the key never travels to another host and another host's answer is never cached as the enrichment;
  - transport failures (a dropped connection, an HTML error page with status 200, a JSON error object) are retried
    and, when retries run out, raised: they never become cached results;
  - `timeout_s` bounds the whole request (connecting, sending, the headers and the body), not each read: a server
    trickling one byte a second is cut off at `timeout_s`.
Standard library only (http.client), no client package: see the note on httpx and openai below. Proxy
environment variables are not read; point `base_url` at the server itself.

Why not httpx or the official openai client: neither bounds the whole request (httpx's timeouts are per connect,
read, write and pool operation, so a trickling server holds a request for as long as it likes: encode/httpx#1450,
open; the total-timeout PR encode/httpcore#936 was closed), the openai client adds its own retry policy on top of
ours and follows redirects, and neither is a declared dependency (httpx comes only through jupyterlab, openai not
at all). What the fixes need (a deadline, no redirects, redaction, the retry rule) is ours to write either way.
"""
from __future__ import annotations

import http.client
import json
import os
import random
import socket
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from .backend import BackendError, Generation

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_ANSWER_BYTES = 8 << 20  # a chat completion of a few dozen tokens is a few kB; more is not an answer
REDACTED = "<redacted>"


class TransportError(Exception):
    """A request that did not bring back a usable answer, for a reason that retrying may fix."""


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

    def redact(self, text: str) -> str:
        """`text` with the API key replaced: for every message and every text the backend returns."""
        return text.replace(self._api_key, REDACTED) if self._api_key else text

    def _complete(self, messages: list[dict]) -> Generation:
        payload = json.dumps(self.request_body(messages)).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        last = "nothing tried"
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                status, answer_headers, raw = self._post(payload, headers)
                if 200 <= status < 300:
                    return self._parse(raw, status)
                detail = raw[:300].decode("utf-8", "replace")
                if 300 <= status < 400:
                    target = answer_headers.get("Location") or "nowhere"
                    raise BackendError(self.redact(
                        f"{self.url} answered HTTP {status}, a redirect to {target!r}; redirects are not followed "
                        f"(the key is sent to {self._host} only): set base_url to the address that answers"))
                if status not in RETRY_STATUSES:
                    raise BackendError(self.redact(
                        f"{self.url} answered HTTP {status}: {detail!r}; a 4xx other than 429 means the request "
                        f"itself is wrong (model name {self.model!r}? max_tokens?), so it is not retried"))
                last, retry_after = f"HTTP {status}: {detail!r}", answer_headers.get("Retry-After")
            except TransportError as e:
                last = str(e)
            if attempt < self.max_retries:
                self.retries += 1
                time.sleep(self._backoff(attempt, retry_after))
        raise BackendError(self.redact(f"{self.url}: gave up after {self.max_retries + 1} attempts; "
                                       f"last error: {last}"))

    @property
    def _host(self) -> str:
        return urllib.parse.urlsplit(self.url).netloc

    def _post(self, payload: bytes, headers: dict) -> tuple[int, http.client.HTTPMessage, bytes]:
        """(status, headers, body) of one POST, the whole of it within `timeout_s`: a timer shuts the socket when
        the time is up, which ends any read that is still waiting. Raises TransportError."""
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(f"base_url {self.url!r} is not an http(s) URL")
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = kind(parts.hostname, parts.port, timeout=self.timeout_s)
        expired = threading.Event()

        def expire():
            expired.set()
            if connection.sock is not None:
                try:
                    connection.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        timer = threading.Timer(self.timeout_s, expire)
        timer.daemon = True
        timer.start()
        try:
            connection.request("POST", parts.path + (f"?{parts.query}" if parts.query else ""), body=payload,
                               headers=headers)
            response = connection.getresponse()
            raw = response.read(MAX_ANSWER_BYTES + 1)
            if expired.is_set():
                raise TransportError(f"timed out after {self.timeout_s} s (the whole request is bounded)")
            if len(raw) > MAX_ANSWER_BYTES:
                raise TransportError(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
            return response.status, response.headers, raw
        except (OSError, http.client.HTTPException) as e:
            if expired.is_set() or isinstance(e, (TimeoutError, socket.timeout)):
                raise TransportError(f"timed out after {self.timeout_s} s (the whole request is bounded)") from None
            raise TransportError(f"connection failed: {type(e).__name__}: {e}") from None
        finally:
            timer.cancel()
            connection.close()

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(float(retry_after), self.max_backoff_s)
            except ValueError:
                pass  # an HTTP date: fall back to exponential backoff
        # exponential with full jitter, so that many clients hitting one busy server do not retry in lockstep
        return random.uniform(0.5, 1.0) * min(self.max_backoff_s, self.backoff_s * 2 ** attempt)

    def _parse(self, raw: bytes, status: int = 200) -> Generation:
        """The first choice of a JSON completion. An answer that is not one (an HTML page from a proxy, a JSON
        error object) is a TransportError: retried, never a cached result."""
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            shown = self.redact(raw[:80].decode("utf-8", "replace"))
            raise TransportError(f"HTTP {status} answer is not JSON: {shown!r}") from None
        if not isinstance(data, dict):
            raise TransportError(f"HTTP {status} answer is a JSON {type(data).__name__}, not a completion object")
        choices = data.get("choices")
        if not choices and data.get("error"):
            raise TransportError(f"HTTP {status} answer is an error: {self.redact(json.dumps(data['error']))[:200]}")
        if not choices:
            return Generation("", 0, True, error="no choices in the response")
        try:
            choice = choices[0]
            text = (choice.get("message") or {}).get("content") or choice.get("text") or ""
            n_tokens = int((data.get("usage") or {}).get("completion_tokens") or len(str(text).split()))
        except (AttributeError, TypeError, ValueError, KeyError, IndexError):
            raise TransportError(f"HTTP {status} answer is not a chat completion: "
                                 f"{self.redact(raw[:120].decode('utf-8', 'replace'))!r}") from None
        return Generation(self.redact(str(text)).strip(), n_tokens, choice.get("finish_reason") != "length")
