"""The resumable downloader against a real HTTP server on 127.0.0.1 (started by the test, loopback only)."""
import gzip
import hashlib
import os

import pytest

from llmemf_lite.data.download import (DownloadConfig, DownloadError, amazon_urls, download, download_amazon,
                                       sha256_of)
from loopback_server import LoopbackServer

PAYLOAD = gzip.compress(os.urandom(3 * 100_003))  # a .json.gz must be gzip; several chunks of the 64 KiB test chunk
SHA = hashlib.sha256(PAYLOAD).hexdigest()
FAST = DownloadConfig(timeout_s=5, attempts=1, retry_wait_s=0, chunk_bytes=65536)


@pytest.fixture
def server():
    with LoopbackServer() as s:
        s.files["/data/reviews.json.gz"] = PAYLOAD
        yield s


def test_download_verifies_and_renames(server, tmp_path):
    dest = download(server.base + "/data/reviews.json.gz", tmp_path / "r.json.gz", size=len(PAYLOAD), sha256=SHA,
                    config=FAST, progress=False)
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "r.json.gz.part").exists()
    assert sha256_of(dest) == SHA
    n = len(server.requests)
    download(server.base + "/data/reviews.json.gz", dest, sha256=SHA, config=FAST, progress=False)
    assert len(server.requests) == n  # a complete, verified file is not fetched again


def test_interrupted_transfer_keeps_part_and_resumes_with_range(server, tmp_path):
    server.truncate_once.add("/data/reviews.json.gz")
    url, dest = server.base + "/data/reviews.json.gz", tmp_path / "r.json.gz"
    with pytest.raises(DownloadError, match="run again to resume") as err:
        download(url, dest, config=FAST, progress=False)
    assert err.value.retryable
    part = tmp_path / "r.json.gz.part"
    half = part.stat().st_size
    assert 0 < half < len(PAYLOAD) and not dest.exists()     # never a half file under the final name
    download(url, dest, sha256=SHA, config=FAST, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/data/reviews.json.gz", f"bytes={half}-")


def test_interrupted_transfer_resumes_within_one_call(server, tmp_path):
    server.truncate_once.add("/data/reviews.json.gz")
    cfg = DownloadConfig(timeout_s=5, attempts=3, retry_wait_s=0, chunk_bytes=65536)
    dest = download(server.base + "/data/reviews.json.gz", tmp_path / "r.gz", sha256=SHA, config=cfg, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert [r[1] is not None for r in server.requests] == [False, True]


def test_server_without_range_support_restarts_cleanly(server, tmp_path):
    server.no_range.add("/data/reviews.json.gz")
    (tmp_path / "r.gz.part").write_bytes(PAYLOAD[:1000])
    dest = download(server.base + "/data/reviews.json.gz", tmp_path / "r.gz", sha256=SHA, config=FAST, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_already_complete_part_file_is_finished_via_416(server, tmp_path):
    server.truncate_once.add("/data/reviews.json.gz")
    url, dest = server.base + "/data/reviews.json.gz", tmp_path / "r.gz"
    with pytest.raises(DownloadError, match="run again to resume"):
        download(url, dest, config=FAST, progress=False)
    (tmp_path / "r.gz.part").write_bytes(PAYLOAD)   # as if the rest had arrived before the rename
    dest = download(url, dest, sha256=SHA, config=FAST, progress=False)
    assert dest.read_bytes() == PAYLOAD and server.requests[-1][1] == f"bytes={len(PAYLOAD)}-"


def test_404_checksum_and_size_mismatch_are_clear_errors(server, tmp_path):
    with pytest.raises(DownloadError, match=r"/nothing/here.gz: HTTP 404 .*not at this address"):
        download(server.base + "/nothing/here.gz", tmp_path / "x.gz", config=FAST, progress=False)
    assert not (tmp_path / "x.gz").exists()
    with pytest.raises(DownloadError, match="checksum mismatch.*deleted"):
        download(server.base + "/data/reviews.json.gz", tmp_path / "y.gz", sha256="0" * 64, config=FAST,
                 progress=False)
    assert not (tmp_path / "y.gz").exists() and not (tmp_path / "y.gz.part").exists()
    with pytest.raises(DownloadError, match=f"got {len(PAYLOAD)} bytes, the expected size is 5"):
        download(server.base + "/data/reviews.json.gz", tmp_path / "z.gz", size=5, config=FAST, progress=False)


def test_amazon_urls_and_download_from_a_mirror(server, tmp_path):
    assert amazon_urls("Books", "2014")[0].endswith("/categoryFiles/reviews_Books_5.json.gz")
    assert amazon_urls("Books", "2018")[1].endswith("/metaFiles2/meta_Books.json.gz")
    server.files["/mirror/reviews_Books_5.json.gz"] = gzip.compress(b"r" * 10)
    server.files["/mirror/meta_Books.json.gz"] = gzip.compress(b"m" * 10)
    paths = download_amazon(["Books"], "2014", tmp_path, base_url=server.base + "/mirror/", progress=False)
    assert [p.name for p in paths] == ["reviews_Books_5.json.gz", "meta_Books.json.gz"]
    from llmemf_lite.data.errors import DataFormatError
    with pytest.raises(DataFormatError, match="unknown category 'Bookz'"):
        download_amazon(["Bookz"], "2014", tmp_path, base_url=server.base + "/mirror/", progress=False)


def test_command_line_downloads_a_pair(server, tmp_path, capsys):
    from llmemf_lite.data.download import main

    for name in ("reviews_Movies_and_TV_5.json.gz", "meta_Movies_and_TV.json.gz", "reviews_Books_5.json.gz",
                 "meta_Books.json.gz"):
        server.files[f"/m/{name}"] = gzip.compress(name.encode())
    assert main(["--pair", "movie_book", "--dir", str(tmp_path), "--base-url", server.base + "/m/"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta_Books.json.gz", "meta_Movies_and_TV.json.gz",
                                                          "reviews_Books_5.json.gz", "reviews_Movies_and_TV_5.json.gz"]
    assert "reviews_Books_5.json.gz" in capsys.readouterr().out
