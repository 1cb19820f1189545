"""Faults in a candidates file from another codebase: refused with an error naming the file and the row, never
scored. A repeated negative weighs one item several times, a short row makes the ranking easy, a fractional id was
cut to an integer: each would be a wrong metric reported under the paper's protocol."""
from __future__ import annotations

import numpy as np
import pytest

from llmemf_lite.data.dataset import ItemSpace
from llmemf_lite.data.errors import DataFormatError
from llmemf_lite.evaluate import load_candidates, sample_candidates

SPACE = ItemSpace(1200, 1500)
TARGETS = np.array([3, 1300, 17])


@pytest.fixture
def good():
    return sample_candidates(TARGETS, SPACE, 999, seed=1)


def refused(path, *words, n_negatives=999, line=None):
    with pytest.raises(DataFormatError) as info:
        load_candidates(path, TARGETS, SPACE, n_negatives=n_negatives)
    err = info.value
    assert err.path == str(path) and err.line == line, err
    for w in words:
        assert w in str(err), (w, str(err))


def test_the_sampled_candidates_pass_with_their_count(tmp_path, good):
    np.save(tmp_path / "c.npy", good)
    assert np.array_equal(load_candidates(tmp_path / "c.npy", TARGETS, SPACE, n_negatives=999), good)


def test_a_negative_repeated_in_one_row_is_refused(tmp_path, good):
    bad = good.copy()
    bad[1, :4] = bad[1, 10]
    np.save(tmp_path / "c.npy", bad)
    refused(tmp_path / "c.npy", f"row 1 lists item {int(good[1, 10])} 5 times", "999 distinct negatives")


def test_every_negative_the_same_item_is_refused(tmp_path):
    same = np.array([[5] * 999, [1201] * 999, [5] * 999])
    np.savetxt(tmp_path / "c.txt", same, fmt="%d")
    refused(tmp_path / "c.txt", "row 0 lists item 5 999 times", line=1)


def test_five_negatives_are_not_reported_as_999(tmp_path, good):
    np.save(tmp_path / "c.npy", good[:, :5])
    refused(tmp_path / "c.npy", "5 negatives per case", "999 as the evaluation setting says",
            "set n_negatives=5")
    # asked for its own protocol, the same file is read
    assert load_candidates(tmp_path / "c.npy", TARGETS, SPACE, n_negatives=5).shape == (3, 5)


def test_fractional_ids_are_refused_not_cut(tmp_path, good):
    frac = good.astype(np.float64)
    frac[2, 7] += 0.5
    np.save(tmp_path / "c.npy", frac)
    refused(tmp_path / "c.npy", f"row 2, column 7 holds {frac[2, 7]!r}", "not cut to an integer")
    lines = [" ".join(map(str, row)) for row in good]
    lines[1] = lines[1].replace(str(good[1, 0]), f"{good[1, 0]}.25", 1)
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n")
    refused(tmp_path / "c.txt", f"holds {good[1, 0] + 0.25!r}", line=2)


def test_whole_floats_are_ids(tmp_path, good):
    np.save(tmp_path / "c.npy", good.astype(np.float32))
    assert np.array_equal(load_candidates(tmp_path / "c.npy", TARGETS, SPACE, n_negatives=999), good)


def test_a_ragged_or_non_numeric_text_file_names_the_line(tmp_path, good):
    lines = [" ".join(map(str, row)) for row in good]
    (tmp_path / "c.txt").write_text("\n".join([lines[0], lines[1] + " 7", lines[2]]) + "\n")
    refused(tmp_path / "c.txt", "found 1000 ids", "999 ids on every line", line=2)
    (tmp_path / "c.txt").write_text("\n".join([lines[0], lines[1], "x" + lines[2][lines[2].index(" "):]]) + "\n")
    refused(tmp_path / "c.txt", "'x' is not an item id", line=3)


def test_a_file_that_is_not_an_array_is_named(tmp_path):
    (tmp_path / "c.npy").write_bytes(b"<html>not numpy</html>")
    refused(tmp_path / "c.npy", "cannot be read as a NumPy array")
