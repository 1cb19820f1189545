"""A damaged embedding cache (a truncated vectors.npy, a truncated part of an interrupted run) is refused with an
error that names the file and says what deleting it does (numpy's bare 'cannot reshape' / 'File is not a zip
file' named nothing)."""
import numpy as np
import pytest

from llmemf_lite.data.errors import DataFormatError
from llmemf_lite.embed.cache import EmbeddingCache


def test_a_truncated_vectors_file_names_itself_and_the_remedy(tmp_path):
    cache = EmbeddingCache(tmp_path / "emb", "k")
    cache.save(np.ones((50, 8), np.float32), np.ones(50, bool), {"coverage": {"items": 50}, "dim": 8})
    vectors = tmp_path / "emb" / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:700])
    with pytest.raises(DataFormatError) as err:
        cache.load()
    assert str(vectors) in str(err.value) and "delete the folder" in str(err.value)


def test_a_truncated_part_names_itself_and_the_remedy(tmp_path):
    cache = EmbeddingCache(tmp_path / "emb", "k")
    cache.write_part(np.arange(10), np.ones((10, 8), np.float32), np.ones(10, bool), [])
    cache.write_part(np.arange(10, 20), np.ones((10, 8), np.float32), np.ones(10, bool), [])
    part = sorted((tmp_path / "emb" / "parts").glob("part-*.npz"))[1]
    part.write_bytes(part.read_bytes()[:100])
    with pytest.raises(DataFormatError) as err:
        cache.load_parts()
    assert str(part) in str(err.value) and "embedded again" in str(err.value)
