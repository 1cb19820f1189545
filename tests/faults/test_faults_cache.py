"""A complete enrichment cache that may not be written (a read-only copy) is still read, and storing into it is an
error naming the file (before: sqlite3's bare 'attempt to write a readonly database' on opening)."""
import shutil
import subprocess

import pytest

from llmemf_lite.data.errors import DataFormatError
from llmemf_lite.enrich.cache import CachedEnrichment, EnrichmentCache


def _entry(key: str) -> CachedEnrichment:
    return CachedEnrichment(key=key, item_id=1, generator="g", prompt_hash="p", source_sha="s", prompt="q", raw="r",
                            generated="t", text="t", status="ok", reason="", trimmed=False, n_tokens=3, seconds=0.1)


@pytest.mark.skipif(shutil.which("chattr") is None, reason="chattr (e2fsprogs) makes a file read-only even for root")
def test_a_read_only_cache_is_read_and_refuses_writes_by_name(tmp_path):
    tmp_path = tmp_path / "copy"                                  # the cache's folder, read-only too
    path = tmp_path / "cache.sqlite"
    with EnrichmentCache(path) as cache:
        cache.put_many([_entry("a"), _entry("b")])
    with EnrichmentCache(path):
        pass                                                     # checkpoints the WAL into the file
    for extra in ("cache.sqlite-wal", "cache.sqlite-shm"):
        (tmp_path / extra).unlink(missing_ok=True)
    if subprocess.run(["chattr", "+i", str(path), str(tmp_path)], capture_output=True).returncode:
        pytest.skip("this file system cannot make a file immutable")
    try:
        with EnrichmentCache(path) as cache:
            assert cache.read_only
            assert set(cache.get_many(["a", "b", "c"], "g", "p")) == {"a", "b"}
            with pytest.raises(DataFormatError) as err:
                cache.put_many([_entry("c")])
        assert str(path) in str(err.value) and "read-only" in str(err.value)
    finally:
        subprocess.run(["chattr", "-i", str(path), str(tmp_path)], check=True)
