"""C2DSR release files and RecBole atomic files: import, export, and the round trip through each."""
import numpy as np
import pytest

from llmemf_lite.data.c2dsr import export_c2dsr, import_c2dsr
from llmemf_lite.data.dataset import CrossDomainDataset
from llmemf_lite.data.errors import DataFormatError
from llmemf_lite.data.recbole import export_recbole, import_recbole
from llmemf_lite.data.splits import SplitConfig
from llmemf_lite.data.synthetic import SyntheticConfig, generate_synthetic

SMALL = SyntheticConfig(items_per_domain=40, n_train_users=60, n_valid_users=10, n_test_users=10, max_length=8)


def write_c2dsr(folder, *, alist="0\ta0\t0\n1\ta1\t1\n2\ta2\t2\n", blist="0\tb0\t0\n1\tb1\t1\n",
                train="u1\t3\t0|30|d\t3|10|d\t1|20|d\nu2\t2\t2|5|d\t4|6|d\n", valid="v1\t3\t4|3|d\t0|1|d\t2|2|d\n",
                test="t1\t2\t1|1|d\t3|2|d\nt2\t1\t4|9|d\n"):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("Alist.txt", alist), ("Blist.txt", blist), ("traindata_new.txt", train),
                       ("validdata_new.txt", valid), ("testdata_new.txt", test), ("userlist.txt", "u1\t0\n")):
        (folder / name).write_text(text)
    return folder


def rows(ds):
    return sorted((r.user, r.split, r.kind, r.items.tolist(),
                   None if r.timestamps is None else np.asarray(r.timestamps).tolist())
                  for r in ds.sequences.itertuples())


def test_c2dsr_release_is_sorted_by_time_and_counted(tmp_path):
    ds = import_c2dsr(write_c2dsr(tmp_path / "c2"), "food_kitchen")
    assert (ds.space.n_x, ds.space.n_y) == (3, 2)
    assert ds.items["source_id"].tolist() == ["a0", "a1", "a2", "b0", "b1"]
    got = {(r.user, r.split): r.items.tolist() for r in ds.sequences.itertuples()}
    assert got == {("u1", "train"): [3, 1, 0], ("u2", "train"): [2, 4], ("v1", "valid"): [0, 2, 4],
                   ("t1", "test"): [1, 3]}
    assert ds.card["eval_targets"]["valid"] == {"food": 0, "kitchen": 1}
    assert ds.card["skipped"]["testdata_new.txt"]["lines"] == [2]          # t2 has one interaction
    assert ds.card["provenance"]["userlist_lines"] == 1
    assert ds.card["sequences"]["train"] == {"mixed": 2, "single_x": 0, "single_y": 0}


def test_c2dsr_offset_b_ids_are_accepted(tmp_path):
    ds = import_c2dsr(write_c2dsr(tmp_path / "c2", blist="0\tb0\t3\n1\tb1\t4\n"), "food_kitchen")
    assert ds.items["source_id"].tolist()[3:] == ["b0", "b1"]


@pytest.mark.parametrize("kwargs, fname, line, words", [
    ({"train": "u1\t2\t0|1|d\t3|x|d\n"}, "traindata_new.txt", 1, "timestamp 'x' of interaction '3|x|d' is not an integer"),
    ({"train": "u1\t2\t0|1|d\t3\n"}, "traindata_new.txt", 1, "not `item|unix_ts|date`"),
    ({"valid": "v1\t2\t0|1|d\t9|2|d\n"}, "validdata_new.txt", 1, "outside [0, 5)"),
    ({"test": "t1\t2\t1|1|d\nt2 2 1|1|d\n"}, "testdata_new.txt", 2, "tab-separated fields"),
    ({"train": "u1\ttwo\t0|1|d\t3|2|d\n"}, "traindata_new.txt", 1, "not an integer"),
    ({"alist": "0\ta0\t0\n1\ta1\n"}, "Alist.txt", 2, "tab-separated fields"),
    ({"alist": "0\ta0\t0\n1\ta1\t0\n2\ta2\t2\n"}, "Alist.txt", 2, "used twice"),
])
def test_c2dsr_bad_lines(tmp_path, kwargs, fname, line, words):
    with pytest.raises(DataFormatError) as err:
        import_c2dsr(write_c2dsr(tmp_path / "c2", **kwargs), "food_kitchen")
    assert err.value.path.endswith(fname) and err.value.line == line and words in str(err.value)


def test_c2dsr_round_trip_of_a_synthetic_dataset(tmp_path):
    ds = generate_synthetic("food_kitchen", SMALL)
    ds.sequences = ds.sequences[ds.sequences["kind"] != "single_x"]  # keep it small; kinds are inferred on import
    back = import_c2dsr(export_c2dsr(ds, tmp_path / "c2"), "food_kitchen")
    assert back.items["source_id"].tolist() == ds.items["source_id"].tolist()
    strip = lambda rs: sorted((u, s, items) for u, s, _k, items, _t in rs)  # noqa: E731
    assert strip(rows(back)) == strip(rows(ds))


def test_recbole_round_trip_held_out_users_without_timestamps(tmp_path):
    ds = generate_synthetic("food_kitchen", SMALL)   # held-out users, single-domain rows, no timestamps
    folder = export_recbole(ds, tmp_path / "rb")
    header = (folder / "food_kitchen.inter").read_text().splitlines()[0]
    assert header == "user_id:token\titem_id:token"
    back = import_recbole(tmp_path / "rb", "food_kitchen")
    assert rows(back) == rows(ds)
    assert back.items[["domain", "source_id", "title"]].equals(ds.items[["domain", "source_id", "title"]])
    assert back.card["sequences"] == ds.card["sequences"]


def test_recbole_round_trip_leave_one_out_with_timestamps_and_per_domain_datasets(tmp_path):
    from test_amazon_import import K2, write_release
    from llmemf_lite.data.amazon import import_amazon

    ds = import_amazon(write_release(tmp_path / "raw"), "movie_book", K2, progress=False)
    export_recbole(ds, tmp_path / "rb")
    back = import_recbole(tmp_path / "rb", "movie_book")
    assert rows(back) == rows(ds)
    train = (tmp_path / "rb/movie_book/movie_book.train.inter").read_text().splitlines()
    assert train[0] == "user_id:token\titem_id:token\ttimestamp:float\tkind:token"
    test_lines = (tmp_path / "rb/movie_book/movie_book.test.inter").read_text().splitlines()[1:]
    assert len(test_lines) == 4                                   # leave-one-out: one new interaction per user
    # RecBole-CDR form: two per-domain datasets, merged by user and time, split again by the same protocol
    cdr = import_recbole(tmp_path / "rb", "movie_book", x_dataset="movie_book_movie", y_dataset="movie_book_book")
    assert rows(cdr) == rows(ds)
    # a plain .inter (no benchmark files) is split by splits.py: the same leave-one-out
    for s in ("train", "valid", "test"):
        (tmp_path / f"rb/movie_book/movie_book.{s}.inter").unlink()
    assert rows(import_recbole(tmp_path / "rb/movie_book", "movie_book")) == rows(ds)


def test_recbole_bad_input(tmp_path):
    ds = generate_synthetic("food_kitchen", SMALL)
    folder = export_recbole(ds, tmp_path / "rb")
    inter = folder / "food_kitchen.train.inter"
    lines = inter.read_text().splitlines()
    inter.write_text("\n".join(lines[:3] + [lines[3] + "\textra"] + lines[4:]) + "\n")
    with pytest.raises(DataFormatError, match=r"food_kitchen.train.inter, line 4: found 4 fields"):
        import_recbole(tmp_path / "rb", "food_kitchen")
    inter.write_text("user_id:token\titem_id:token\tkind:token\nu\tNOPE\tmixed\n")
    with pytest.raises(DataFormatError, match="line 2: item token 'NOPE' is not in the .item file"):
        import_recbole(tmp_path / "rb", "food_kitchen")
    inter.write_text("user_id\titem_id:token\n")
    with pytest.raises(DataFormatError, match="header field 'user_id' has no known type"):
        import_recbole(tmp_path / "rb", "food_kitchen")
    with pytest.raises(DataFormatError, match="unknown domain values"):
        import_recbole(tmp_path / "rb", "movie_book", dataset="food_kitchen")
