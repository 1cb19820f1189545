"""Faults in the importers' input files: each is refused with a DataFormatError that names the file, the line (where
there is one) and what was expected, instead of becoming a smaller, doubled or wrong dataset.

Files are written by the tests (the small releases of the importers' own tests), then damaged as a hostile or unlucky
user would: cut short, lines duplicated, bytes in another encoding, times out of range."""
from __future__ import annotations

import gzip

import pytest

from llmemf_lite.data.amazon import AmazonConfig, import_amazon
from llmemf_lite.data.c2dsr import import_c2dsr
from llmemf_lite.data.errors import DataFormatError
from llmemf_lite.data.llmcdsr import import_llmcdsr
from llmemf_lite.data.recbole import export_recbole, import_recbole
from llmemf_lite.data.synthetic import generate_synthetic

from test_amazon_import import BOOKS, MOVIES
from test_amazon_import import write_release as write_amazon
from test_c2dsr_recbole import SMALL, write_c2dsr
from test_llmcdsr_import import write_release as write_llmcdsr

# train_A: 4 users, train_B: 2, train_overlap: 1 (the counts instance_num.txt gives)
TRAIN_A = "1\t0,1,2\n2\t2,1\n3\t1,0\n4\t0,2,1\n"
TRAIN_B = "1\t3,4\n2\t4,3\n"


def release(tmp_path, **kwargs):
    folder = write_llmcdsr(tmp_path / "rel", train_a=TRAIN_A, train_b=TRAIN_B, **kwargs)
    (folder / "instance_num.txt").write_text("4\n2\n1 ")  # as the real release writes it: no final newline
    return folder


ANY_LINE = object()


def refused(call, file: str, line, *words: str) -> DataFormatError:
    """The DataFormatError `call` raises, checked: it names `file`, `line` (None: no line; ANY_LINE: some line) and
    contains each of `words`."""
    with pytest.raises(DataFormatError) as info:
        call()
    err = info.value
    assert err.path.endswith(file), err
    assert (err.line is not None) if line is ANY_LINE else err.line == line, err
    for w in words:
        assert w in str(err), (w, str(err))
    return err


def test_a_complete_release_with_instance_num_is_read(tmp_path):
    ds = import_llmcdsr(release(tmp_path))
    assert ds.card["sequences"]["train"] == {"mixed": 1, "single_x": 4, "single_y": 2}


def test_a_release_file_cut_mid_line_is_refused(tmp_path):
    folder = release(tmp_path)
    data = (folder / "train_A.txt").read_bytes()
    (folder / "train_A.txt").write_bytes(data[:len(data) // 2 + 2])  # "1\t0,1,2\n2\t2,1\n3\t"
    refused(lambda: import_llmcdsr(folder), "train_A.txt", 3, "the last line has no newline", "cut short")


def test_a_release_file_cut_at_a_line_end_is_refused_by_instance_num(tmp_path):
    folder = release(tmp_path)
    (folder / "train_A.txt").write_text("".join(TRAIN_A.splitlines(keepends=True)[:2]))  # half the users
    refused(lambda: import_llmcdsr(folder), "train_A.txt", None, "holds 2 sequences",
            "expected 4, as instance_num.txt says")


def test_a_cut_test_file_is_refused_even_without_instance_num(tmp_path):
    folder = write_llmcdsr(tmp_path / "rel", test="1\t1,4\n2\t3,0")
    refused(lambda: import_llmcdsr(folder), "test.txt", 2, "no newline")


def test_a_duplicated_line_in_test_txt_is_refused(tmp_path):
    folder = write_llmcdsr(tmp_path / "rel", test="1\t1,4\n2\t3,0,4\n1\t1,4\n")
    refused(lambda: import_llmcdsr(folder), "test.txt", 3, "user '1' is listed again (first at line 1)")


def test_an_empty_test_txt_is_refused_at_import_not_in_training(tmp_path):
    folder = write_llmcdsr(tmp_path / "rel", test="")
    refused(lambda: import_llmcdsr(folder), "test.txt", None, "no test user", "at least one line")
    folder = write_llmcdsr(tmp_path / "rel2", test="1\t4\n")  # only a one-item line: no history, nothing to test
    refused(lambda: import_llmcdsr(folder), "test.txt", None, "no test user")


def test_latin1_bytes_in_a_utf8_release_file_name_the_line(tmp_path):
    folder = release(tmp_path)
    (folder / "valid.txt").write_bytes(b"1\t0,3,2\nJos\xe9\t0,3\n")
    refused(lambda: import_llmcdsr(folder), "valid.txt", 2, "b'\\xe9' at column 4 is not UTF-8")


def test_a_bad_instance_num_is_named(tmp_path):
    folder = release(tmp_path)
    (folder / "instance_num.txt").write_text("4\n2\n")
    refused(lambda: import_llmcdsr(folder), "instance_num.txt", None, "3 integers")


def test_a_duplicated_line_in_c2dsr_testdata_is_refused(tmp_path):
    folder = write_c2dsr(tmp_path / "c2", test="t1\t2\t1|1|d\t3|2|d\nt2\t2\t4|9|d\t0|10|d\nt1\t2\t1|1|d\t3|2|d\n")
    refused(lambda: import_c2dsr(folder, "food_kitchen"), "testdata_new.txt", 3,
            "user 't1' is listed again (first at line 1)")


def test_a_duplicated_asin_in_a_c2dsr_item_list_is_refused(tmp_path):
    folder = write_c2dsr(tmp_path / "c2", alist="0\ta0\t0\n1\ta1\t1\n2\ta0\t2\n")
    refused(lambda: import_c2dsr(folder, "food_kitchen"), "Alist.txt", 3, "ASIN 'a0' is listed again (first at line 1)")


def test_an_empty_c2dsr_testdata_is_refused(tmp_path):
    folder = write_c2dsr(tmp_path / "c2", test="")
    refused(lambda: import_c2dsr(folder, "food_kitchen"), "testdata_new.txt", None, "no test user")


def test_a_non_integer_c2dsr_timestamp_names_the_field(tmp_path):
    folder = write_c2dsr(tmp_path / "c2", valid="v1\t2\t4|3|d\t0|1.5|d\n")
    refused(lambda: import_c2dsr(folder, "food_kitchen"), "validdata_new.txt", 1,
            "timestamp '1.5' of interaction '0|1.5|d' is not an integer")


def write_recbole(folder, bad_time: str | None = None):
    """A combined RecBole dataset written by hand: 3 users with 4 timed interactions over 4 items of each domain."""
    folder.mkdir(parents=True, exist_ok=True)
    items = ["item_id:token\tdomain:token"] + [f"f{i}\tfood" for i in range(4)] + [f"k{i}\tkitchen" for i in range(4)]
    inter = ["user_id:token\titem_id:token\ttimestamp:float"]
    for u in range(3):
        inter += [f"u{u}\t{'fk'[t % 2]}{(u + t) % 4}\t{1_600_000_000 + 86400 * t}" for t in range(4)]
    if bad_time is not None:
        user, item, _t = inter[5].split("\t")
        inter[5] = f"{user}\t{item}\t{bad_time}"
    (folder / "food_kitchen.item").write_text("\n".join(items) + "\n")
    (folder / "food_kitchen.inter").write_text("\n".join(inter) + "\n")
    return folder


def test_a_recbole_dataset_with_whole_second_times_is_read(tmp_path):
    ds = import_recbole(write_recbole(tmp_path / "rb", bad_time="1600000000.0"), "food_kitchen")  # 1.6e9 as a float
    test = ds.split("test")
    times = [1_600_000_000 + 86400 * t for t in range(4)]
    assert len(test) == 3 and [t.tolist() for t in test["timestamps"]] == [times] * 3


@pytest.mark.parametrize("value", ["1e30", "inf", "-inf", "nan", "12.5", "9.3e18"])
def test_a_recbole_timestamp_out_of_range_or_fractional_is_refused(tmp_path, value):
    folder = write_recbole(tmp_path / "rb", bad_time=value)
    refused(lambda: import_recbole(folder, "food_kitchen"), "food_kitchen.inter", 6,
            f"timestamp {value!r} is not a time in whole seconds", "within +-2**53")


@pytest.fixture
def recbole_inter(tmp_path):
    ds = generate_synthetic("food_kitchen", SMALL)
    folder = export_recbole(ds, tmp_path / "rb")
    return folder / "food_kitchen.inter"


def test_a_recbole_kind_in_capitals_is_named(tmp_path, recbole_inter):
    bench = recbole_inter.parent / "food_kitchen.test.inter"
    lines = bench.read_text().splitlines()
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\tMIXED"
    bench.write_text("\n".join(lines) + "\n")
    refused(lambda: import_recbole(tmp_path / "rb", "food_kitchen"), "food_kitchen.test.inter", 3,
            "kind 'MIXED' is not a row kind", "'mixed', 'single_x', 'single_y'")


def _cut_gz(path, keep: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


@pytest.mark.parametrize("on_bad_line", ["error", "skip"])
def test_a_json_gz_cut_mid_stream_is_refused_also_when_skipping_bad_lines(tmp_path, on_bad_line):
    folder = write_amazon(tmp_path / "raw")
    reviews = folder / f"reviews_{BOOKS}_5.json.gz"
    with gzip.open(reviews, "wt") as f:  # enough lines that half the compressed bytes end inside the stream
        for i in range(400):
            f.write(f'{{"reviewerID": "u{i}", "asin": "b{i % 7}", "unixReviewTime": {86400 * i}}}\n')
    _cut_gz(reviews)
    err = refused(lambda: import_amazon(folder, "movie_book", AmazonConfig(k_core=2, on_bad_line=on_bad_line),
                                        progress=False),
                  reviews.name, ANY_LINE, "the gzip stream ends early", "download it again")
    assert err.line > 1


def test_a_json_gz_that_is_not_gzip_is_named(tmp_path):
    folder = write_amazon(tmp_path / "raw")
    meta = folder / f"meta_{MOVIES}.json.gz"
    meta.write_bytes(b"<!DOCTYPE html><html><body>Please fill in the form</body></html>\n")
    refused(lambda: import_amazon(folder, "movie_book", AmazonConfig(k_core=2), progress=False), meta.name, None,
            "is not a readable gzip file", "an HTML page saved under the name?")


def test_an_empty_reviews_file_is_named_not_the_other_category(tmp_path):
    folder = write_amazon(tmp_path / "raw", reviews=(None, []))
    refused(lambda: import_amazon(folder, "movie_book", AmazonConfig(k_core=2), progress=False),
            f"reviews_{BOOKS}_5.json.gz", None, f"no review of category {BOOKS!r} was read", "the file is empty")


def test_latin1_bytes_in_a_reviews_file_name_the_line(tmp_path):
    folder = write_amazon(tmp_path / "raw")
    reviews = folder / f"reviews_{MOVIES}_5.json.gz"
    lines = gzip.decompress(reviews.read_bytes()).splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"overall"', b'"summary": "Caf\xe9", "overall"')
    reviews.write_bytes(gzip.compress(b"".join(lines)))
    refused(lambda: import_amazon(folder, "movie_book", AmazonConfig(k_core=2), progress=False), reviews.name, 2,
            "is not UTF-8")
