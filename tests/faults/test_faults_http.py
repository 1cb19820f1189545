"""Faults of an OpenAI-compatible server, against real HTTP servers on 127.0.0.1 started here: the API key never
appears in an exception, a generation or the cache; a redirect is an error and the key does not follow it; an answer
that is not a JSON completion is retried and never cached; `timeout_s` bounds the whole request."""
from __future__ import annotations

import json
import time

import pytest

from llmemf_lite.enrich import BackendError, EnrichConfig, OpenAICompatibleBackend, enrich_dataset

from test_enrich import tiny_dataset
from test_enrich_http import ScriptedServer

SECRET = "sk-fault-test-key-0123456789"
MESSAGES = [[{"role": "user", "content": "Describe this food product in one short sentence: Jasmine Rice"}]]


def completion(text: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                       "usage": {"completion_tokens": 8}}).encode()


GOOD = completion("A fragrant long-grain rice for everyday cooking.")


def answer(status: int, body: bytes, content_type: str = "application/json", **headers):
    def write(handler, _request_headers):
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            handler.send_header(k.replace("_", "-"), v)
        handler.end_headers()
        handler.wfile.write(body)
    return write


def echo(status: int, as_completion: bool = False):
    """An answer that repeats the request's headers, Authorization included, in its body."""
    def write(handler, request_headers):
        text = f"you sent: {request_headers}"
        body = completion(text) if as_completion else json.dumps({"error": {"message": text}}).encode()
        answer(status, body)(handler, request_headers)
    return write


def trickle(seconds_per_byte: float, body: bytes = GOOD, headers_too: bool = False):
    def write(handler, _request_headers):
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        if not headers_too:
            handler.wfile.write(head)
            handler.wfile.flush()
        for byte in (head if headers_too else b"") + body:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(seconds_per_byte)
    return write


def backend(url, **kwargs) -> OpenAICompatibleBackend:
    kwargs = {"max_retries": 2, "timeout_s": 5.0, "concurrency": 1, "backoff_s": 0.01, **kwargs}
    return OpenAICompatibleBackend(url, "served-model", "openai:served-model", api_key_env="LLMEMF_FAULT_KEY",
                                   max_new_tokens=20, **kwargs)


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("LLMEMF_FAULT_KEY", SECRET)


def cache_bytes(run) -> bytes:
    """Every byte of the cache's files (the database, its write-ahead log and shared memory)."""
    return b"".join(p.read_bytes() for p in run.cache_path.parent.glob("cache.sqlite*"))


def enrich_config(url, **kwargs) -> EnrichConfig:
    return EnrichConfig(backend="openai", base_url=url, model="served-model", api_key_env="LLMEMF_FAULT_KEY",
                        concurrency=1, batch_size=4, max_retries=1, **kwargs)


@pytest.mark.parametrize("status", [400, 401])
def test_an_error_echoing_the_headers_never_shows_the_key(status):
    with ScriptedServer([echo(status)]) as server:
        with pytest.raises(BackendError) as info:
            backend(server.url).generate(MESSAGES)
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"   # it was sent, and echoed
    message = str(info.value)
    assert f"HTTP {status}" in message and "Bearer <redacted>" in message and SECRET not in message


def test_retries_that_run_out_on_echoing_5xx_never_show_the_key():
    with ScriptedServer([echo(503)] * 3) as server:
        with pytest.raises(BackendError) as info:
            backend(server.url).generate(MESSAGES)
    assert "gave up after 3 attempts" in str(info.value) and SECRET not in str(info.value)


def test_a_completion_echoing_the_headers_keeps_no_key_in_the_cache(artifacts, tmp_path):
    ds = tiny_dataset(tmp_path / "ds")
    with ScriptedServer([echo(200, as_completion=True)] * 50) as server:
        run = enrich_dataset(ds, enrich_config(server.url), progress=False)
    assert any("<redacted>" in (t or "") for t in run.texts)
    assert not any(SECRET in (t or "") for t in run.texts + run.generated_text)
    assert SECRET.encode() not in cache_bytes(run)


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_to_another_host_is_an_error_and_the_key_does_not_follow(artifacts, tmp_path, status):
    with ScriptedServer() as other:
        elsewhere = other.url.replace("127.0.0.1", "localhost") + "/chat/completions"
        with ScriptedServer([answer(status, b"", Location=elsewhere)] * 3) as server:
            with pytest.raises(BackendError) as info:
                backend(server.url).generate(MESSAGES)
            assert f"a redirect to {elsewhere!r}" in str(info.value) and "not followed" in str(info.value)
            assert len(server.requests) == 1                            # not retried either
            ds = tiny_dataset(tmp_path / "ds")
            with pytest.raises(BackendError, match="redirect"):
                enrich_dataset(ds, enrich_config(server.url), progress=False)
    assert other.requests == []                                         # nothing, and no key, reached the other host
    run = enrich_dataset(ds, enrich_config(server.url), progress=False, build_if_missing=False)
    assert run.origin.count("cache") == 0                               # its answer was not cached


def test_an_html_page_with_status_200_is_retried_and_never_cached(artifacts, tmp_path):
    html = answer(200, b"<html><body>502 Bad Gateway (proxy)</body></html>", "text/html")
    with ScriptedServer([html]) as server:
        b = backend(server.url)
        [gen] = b.generate(MESSAGES)
    assert gen.text.startswith("A dependable pick for anyone who buys") and gen.error is None and b.retries == 1
    ds = tiny_dataset(tmp_path / "ds")
    with ScriptedServer([html] * 20) as server:
        with pytest.raises(BackendError, match="answer is not JSON"):
            enrich_dataset(ds, enrich_config(server.url), progress=False)
    with ScriptedServer() as server:   # the glitch is over: everything is generated, nothing was cached as a fallback
        run = enrich_dataset(ds, enrich_config(server.url), progress=False)
    assert run.origin.count("generated") == 10 and run.fallback_reasons().empty


def test_a_json_error_object_with_status_200_is_retried():
    with ScriptedServer([answer(200, b'{"error": {"message": "model is loading"}}')]) as server:
        b = backend(server.url)
        [gen] = b.generate(MESSAGES)
    assert gen.error is None and b.retries == 1


@pytest.mark.parametrize("headers_too", [False, True])
def test_the_timeout_bounds_the_whole_request_not_each_read(headers_too):
    with ScriptedServer([trickle(0.05, headers_too=headers_too)]) as server:
        start = time.perf_counter()
        with pytest.raises(BackendError, match=r"timed out after 0.6 s \(the whole request is bounded\)"):
            backend(server.url, timeout_s=0.6, max_retries=0).generate(MESSAGES)
        took = time.perf_counter() - start
    # the answer takes len(GOOD) * 0.05 s > 5 s to trickle in, each byte well inside the timeout
    assert len(GOOD) * 0.05 > 5 and took < 1.5


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_enrichment_cache_is_named_with_what_to_do(artifacts, tmp_path, damage):
    from llmemf_lite.data.errors import DataFormatError

    ds = tiny_dataset(tmp_path / "ds")
    with ScriptedServer() as server:
        run = enrich_dataset(ds, enrich_config(server.url), progress=False)
    path = run.cache_path
    for extra in path.parent.glob("cache.sqlite-*"):
        extra.unlink()
    data = path.read_bytes()
    path.write_bytes(b"this is not a database" * 100 if damage == "garbage" else data[:len(data) // 3])
    with pytest.raises(DataFormatError) as info:
        enrich_dataset(ds, enrich_config(server.url), progress=False, build_if_missing=False)
    assert info.value.path == str(path) and "is not a readable enrichment cache" in str(info.value)
    assert "delete it to enrich again" in str(info.value)
