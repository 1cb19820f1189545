"""Faults of the downloader against a real HTTP server on 127.0.0.1 started here: a file that changes on the server
between an interrupted transfer and its resume is fetched again, never stitched from two versions; a .gz cut short
without a Content-Length, or an HTML page where the file should be, never gets the final name."""
from __future__ import annotations

import gzip
import hashlib
import os

import pytest

from llmemf_lite.data.download import DownloadConfig, DownloadError, download

from loopback_server import LoopbackServer

OLD = gzip.compress(os.urandom(200_000))
NEW = gzip.compress(os.urandom(200_000))
PATH = "/data/meta_Books.json.gz"
ONE = DownloadConfig(timeout_s=5, attempts=1, retry_wait_s=0, chunk_bytes=65536)
TWO = DownloadConfig(timeout_s=5, attempts=2, retry_wait_s=0, chunk_bytes=65536)
HTML = b"<!DOCTYPE html><html><body>Please fill in the form to get the data</body></html>\n"


@pytest.fixture
def server():
    with LoopbackServer() as s:
        s.files[PATH] = OLD
        yield s


def interrupted(server, dest):
    """An interrupted first transfer: half of OLD in dest.part."""
    server.truncate_once.add(PATH)
    with pytest.raises(DownloadError, match="run again to resume"):
        download(server.base + PATH, dest, config=ONE, progress=False)
    assert 0 < dest.with_name(dest.name + ".part").stat().st_size < len(OLD)


def test_a_file_changed_on_the_server_is_fetched_again_not_stitched(server, tmp_path):
    dest = tmp_path / "meta_Books.json.gz"
    interrupted(server, dest)
    server.files[PATH] = NEW
    download(server.base + PATH, dest, config=ONE, progress=False)
    assert dest.read_bytes() == NEW
    old_etag = f'"{hashlib.sha256(OLD).hexdigest()[:16]}"'                       # as the loopback server makes it
    assert server.requests[-1][1] is not None and server.if_range[-1] == old_etag  # a resume, for OLD only


def test_an_unchanged_file_is_resumed_with_if_range(server, tmp_path):
    dest = tmp_path / "meta_Books.json.gz"
    interrupted(server, dest)
    download(server.base + PATH, dest, config=ONE, progress=False)
    assert dest.read_bytes() == OLD and server.requests[-1][1].startswith("bytes=") and server.if_range[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta_Books.json.gz"]   # no .part, no record left


def test_a_server_ignoring_if_range_is_caught_by_the_changed_etag(server, tmp_path):
    dest = tmp_path / "meta_Books.json.gz"
    interrupted(server, dest)
    server.files[PATH] = NEW
    server.ignore_if_range.add(PATH)          # it answers 206 with the rest of the NEW file
    with pytest.raises(DownloadError, match="another version of the file"):
        download(server.base + PATH, dest, config=ONE, progress=False)
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()
    download(server.base + PATH, dest, config=ONE, progress=False)
    assert dest.read_bytes() == NEW


def test_a_part_file_nothing_identifies_starts_over(server, tmp_path):
    dest = tmp_path / "meta_Books.json.gz"
    dest.with_name(dest.name + ".part").write_bytes(NEW[:1000])   # left by another tool, or another version
    download(server.base + PATH, dest, config=ONE, progress=False)
    assert dest.read_bytes() == OLD and server.requests[-1][1] is None
    server.no_validators.add(PATH)   # a server that names no version: an interrupted transfer starts over too
    dest.unlink()
    interrupted(server, dest)
    download(server.base + PATH, dest, config=ONE, progress=False)
    assert dest.read_bytes() == OLD and server.requests[-1][1] is None


def test_a_gz_cut_short_without_content_length_never_gets_its_name(server, tmp_path):
    server.no_length.add(PATH)
    server.truncate_once.add(PATH)
    dest = tmp_path / "meta_Books.json.gz"
    with pytest.raises(DownloadError, match="the gzip stream ends early") as info:
        download(server.base + PATH, dest, config=ONE, progress=False)
    assert info.value.retryable and not dest.exists() and not dest.with_name(dest.name + ".part").exists()
    server.truncate_once.add(PATH)   # within one call, the next attempt fetches it whole
    assert download(server.base + PATH, dest, config=TWO, progress=False).read_bytes() == OLD


def test_an_html_page_is_never_saved_as_json_gz(server, tmp_path):
    server.files[PATH] = HTML
    server.content_type[PATH] = "text/html; charset=utf-8"
    dest = tmp_path / "meta_Books.json.gz"
    with pytest.raises(DownloadError, match=r"sent an HTML page \(Content-Type text/html\).*download the file in a"):
        download(server.base + PATH, dest, config=TWO, progress=False)
    assert len(server.requests) == 1 and not dest.exists()                    # not retried, nothing kept
    server.content_type[PATH] = "application/octet-stream"                     # the same page, mislabelled
    with pytest.raises(DownloadError, match=r"it is not gzip \(it starts with b'<!DOCTYPE html>"):
        download(server.base + PATH, dest, config=ONE, progress=False)
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()


def test_an_html_page_left_under_the_final_name_is_fetched_again(server, tmp_path):
    dest = tmp_path / "meta_Books.json.gz"
    dest.write_bytes(HTML)
    assert download(server.base + PATH, dest, config=ONE, progress=False).read_bytes() == OLD
