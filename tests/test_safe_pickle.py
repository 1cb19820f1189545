import os
import pickle

import pytest

from llmemf_lite.data.errors import DataFormatError
from llmemf_lite.data.safe_pickle import load_plain_pickle


class RunsCode:
    def __reduce__(self):  # what a malicious pickle does: call os.system when loaded
        return (os.system, ("touch PWNED",))


def test_plain_data_round_trips(tmp_path):
    obj = {"B00X": 1, "t": ("a", 2.5, None, True), "l": [1, 2, {3}], "b": b"\x00"}
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps(obj))
    assert load_plain_pickle(tmp_path / "ok.pkl") == obj


def test_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"x": RunsCode()}))
    with pytest.raises(DataFormatError, match=r"evil.pkl: refused to load posix.system|refused to load os.system"):
        load_plain_pickle(tmp_path / "evil.pkl")
    assert not (tmp_path / "PWNED").exists()


def test_class_instances_are_refused(tmp_path):
    import collections
    (tmp_path / "od.pkl").write_bytes(pickle.dumps(collections.OrderedDict(a=1)))
    with pytest.raises(DataFormatError, match="collections.OrderedDict"):
        load_plain_pickle(tmp_path / "od.pkl")


def test_truncated_and_missing(tmp_path):
    (tmp_path / "cut.pkl").write_bytes(pickle.dumps({"a": list(range(100))})[:20])
    with pytest.raises(DataFormatError, match="not a readable pickle"):
        load_plain_pickle(tmp_path / "cut.pkl")
    with pytest.raises(DataFormatError, match="file not found"):
        load_plain_pickle(tmp_path / "none.pkl")
