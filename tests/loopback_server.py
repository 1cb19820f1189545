"""A real HTTP server on 127.0.0.1 for the downloader and image-fetcher tests (no network beyond loopback).

Serves `files` (path -> bytes) with HTTP Range support, an ETag and a Last-Modified date per content (a changed
content gets new ones) and If-Range (a resume for another version gets the whole file, 200). Behaviours per path,
for testing failures:
    truncate_once:   the first response announces the full length and stops after half (a dropped connection)
    no_range:        ignores Range headers (a server without resume support)
    ignore_if_range: honours Range even when If-Range names another version (a broken server)
    no_validators:   sends no ETag / Last-Modified
    no_length:       sends no Content-Length (the end of the body is the end of the connection)
    content_type:    the Content-Type to send
Every request is logged as (path, Range header or None); `if_range` logs the If-Range headers.
"""
from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.content_type: dict[str, str] = {}
        self.truncate_once: set[str] = set()
        self.no_range: set[str] = set()
        self.ignore_if_range: set[str] = set()
        self.no_validators: set[str] = set()
        self.no_length: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        self.if_range: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                server.if_range.append(self.headers.get("If-Range"))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                digest = hashlib.sha256(data).hexdigest()
                etag, modified = f'"{digest[:16]}"', f"Mon, 0{int(digest[0], 16) % 9 + 1} Jan 2024 00:00:00 GMT"
                start, status = 0, 200
                m = re.match(r"bytes=(\d+)-$", rng or "")
                if_range = self.headers.get("If-Range")
                if if_range and if_range not in (etag, modified) and self.path not in server.ignore_if_range:
                    m = None  # another version than the client holds: all of this one
                if m and self.path not in server.no_range:
                    start, status = int(m.group(1)), 206
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Type", server.content_type.get(self.path, "application/octet-stream"))
                if self.path not in server.no_length:
                    self.send_header("Content-Length", str(len(body)))
                if self.path not in server.no_validators:
                    self.send_header("ETag", etag)
                    self.send_header("Last-Modified", modified)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if self.path in server.truncate_once:
                    server.truncate_once.discard(self.path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
