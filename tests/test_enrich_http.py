"""The OpenAI-compatible HTTP backend against a real HTTP server on 127.0.0.1 started here (chat-completions shape):
429 then success, a timeout, a 400, a response with no choices, and the API key (sent, never shown)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmemf_lite.enrich import BackendError, EnrichConfig, OpenAICompatibleBackend, enrich_dataset
from llmemf_lite.enrich.enrich import generator_key

from test_enrich import tiny_dataset

SECRET = "sk-test-not-a-real-key-123"


class ScriptedServer:
    """A chat-completions server whose answers follow a script: each entry is (status, body dict or None, delay s,
    headers), or a function (request handler, request headers as text) that writes the whole answer itself. When the
    script runs out, it answers 200 with a sentence about the prompt. Every request is logged, a GET (what a client
    following a 302 sends) included."""

    def __init__(self, script=()):
        self.script, self.requests, self.lock = list(script), [], threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                    step = server.script.pop(0) if server.script else None
                if callable(step):
                    try:
                        step(self, str(self.headers))
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                if step is None:
                    title = body["messages"][-1]["content"].split(": ", 1)[-1]
                    step = (200, {"choices": [{"message": {"role": "assistant",
                                                           "content": f"A dependable pick for anyone who buys {title}."},
                                               "finish_reason": "stop"}],
                                  "usage": {"completion_tokens": 9}}, 0.0, {})
                status, payload, delay, headers = step
                time.sleep(delay)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def do_GET(self):
                with server.lock:
                    server.requests.append({"path": self.path, "body": None, "headers": dict(self.headers)})
                self.send_error(405)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def make_backend(url, **kwargs) -> OpenAICompatibleBackend:
    kwargs = {"max_retries": 3, "timeout_s": 5.0, "concurrency": 4, "backoff_s": 0.01, **kwargs}
    return OpenAICompatibleBackend(url, "served-model", "openai:served-model", api_key_env="LLMEMF_TEST_KEY",
                                   max_new_tokens=20, **kwargs)


MESSAGES = [[{"role": "user", "content": "Describe this food product in one short sentence: Jasmine Rice"}]]


def test_429_then_success_is_retried_and_the_key_is_sent_but_never_shown(monkeypatch):
    monkeypatch.setenv("LLMEMF_TEST_KEY", SECRET)
    busy = (429, {"error": {"message": "slow down"}}, 0.0, {"Retry-After": "0"})
    with ScriptedServer([busy, busy]) as server:
        backend = make_backend(server.url)
        [gen] = backend.generate(MESSAGES)
    assert gen.text == "A dependable pick for anyone who buys Jasmine Rice." and gen.finished and gen.n_tokens == 9
    assert len(server.requests) == 3 and backend.retries == 2
    request = server.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "served-model" and request["body"]["max_tokens"] == 20
    assert request["body"]["temperature"] == 0.0 and request["body"]["messages"] == MESSAGES[0]
    assert request["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(backend) and SECRET not in backend.generator_key


def test_5xx_until_retries_run_out_raises_with_the_last_error():
    failing = [(503, {"error": "overloaded"}, 0.0, {})] * 3
    with ScriptedServer(failing) as server:
        with pytest.raises(BackendError, match=r"gave up after 3 attempts; last error: HTTP 503"):
            make_backend(server.url, max_retries=2).generate(MESSAGES)
        assert len(server.requests) == 3


def test_a_timeout_is_retried_then_succeeds_and_gives_up_when_it_persists():
    slow = (200, {"choices": [{"message": {"content": "late"}}]}, 1.5, {})
    with ScriptedServer([slow]) as server:
        backend = make_backend(server.url, timeout_s=0.3)
        [gen] = backend.generate(MESSAGES)
        assert gen.text.startswith("A dependable pick") and backend.retries == 1
    with ScriptedServer([slow, slow]) as server:
        with pytest.raises(BackendError, match="timed out after 0.3 s"):
            make_backend(server.url, timeout_s=0.3, max_retries=1).generate(MESSAGES)


def test_a_400_fails_at_once_with_the_servers_message_and_no_key(monkeypatch):
    monkeypatch.setenv("LLMEMF_TEST_KEY", SECRET)
    bad = (400, {"error": {"message": "model 'served-model' does not exist"}}, 0.0, {})
    with ScriptedServer([bad]) as server:
        with pytest.raises(BackendError) as info:
            make_backend(server.url).generate(MESSAGES)
        assert len(server.requests) == 1  # not retried
    message = str(info.value)
    assert "HTTP 400" in message and "does not exist" in message and SECRET not in message


def test_no_choices_becomes_a_counted_fallback_through_the_driver(artifacts, tmp_path):
    ds = tiny_dataset(tmp_path / "ds")
    empty = (200, {"choices": [], "usage": {"completion_tokens": 0}}, 0.0, {})
    with ScriptedServer([empty]) as server:
        config = EnrichConfig(backend="openai", base_url=server.url, model="served-model", concurrency=1,
                              batch_size=4, max_retries=1)
        run = enrich_dataset(ds, config, progress=False)
    assert run.generator == generator_key(config)
    assert run.fallback_reasons().to_dict() == {"backend error: no choices in the response": 1}
    counts = run.counts().loc["total"]
    assert counts["generated"] == 10 and counts["fallbacks"] == 1 and counts["enriched"] == 9
    first = min(i for i, o in enumerate(run.origin) if o == "generated" and run.reasons[i])
    assert run.texts[first] == ds.items["title"].iat[first]


def test_concurrent_requests_keep_the_order_of_prompts():
    prompts = [[{"role": "user", "content": f"Describe this food product in one short sentence: item {i}"}]
               for i in range(12)]
    with ScriptedServer() as server:
        out = make_backend(server.url, concurrency=6).generate(prompts)
    assert [g.text for g in out] == [f"A dependable pick for anyone who buys item {i}." for i in range(12)]
