"""A partial LLMCDSR release (the offline Movie-Book copy lacks train_B.txt and text_B.pkl): absent files are named
in the card with what follows from them and the import goes on; a Book without a title has its text masked; a file
that is present but broken is still refused. The releases are small copies the tests write; the last test reads the
real ../shared/data/movie-book where it exists."""
from __future__ import annotations

import numpy as np
import pytest

from llmemf_lite.data.build import build_dataset
from llmemf_lite.data.dataset import card_table
from llmemf_lite.data.errors import DataFormatError
from llmemf_lite.data.llmcdsr import import_llmcdsr
from llmemf_lite.paths import resolve

from test_llmcdsr_import import write_release

REAL_MOVIE_BOOK = resolve("../shared/data/movie-book")
# train_A: 2 users, train_B: 2, train_overlap: 1; item 4 (a book) occurs in train_B.txt only
TRAIN_A, TRAIN_B = "1\t0,1,2\n2\t2,1\n", "1\t3,4\n2\t4,3\n"


def partial_release(tmp_path, *, instance_num="2\n2\n1 ", drop=("train_B.txt", "text_B.pkl"), train_b=TRAIN_B):
    """write_release's tiny release (3 movies, 2 books) with instance_num.txt and without the files in `drop`."""
    folder = write_release(tmp_path / "rel", train_a=TRAIN_A, train_b=train_b, overlap="1\t0,3,1\n")
    if instance_num is not None:
        (folder / "instance_num.txt").write_text(instance_num)
    for name in drop:
        (folder / name).unlink()
    return folder


def test_absent_files_are_named_in_the_card_with_what_follows(tmp_path):
    ds = import_llmcdsr(partial_release(tmp_path), "movie_book")
    assert ds.card["absent_files"] == {
        "train_B.txt": {"consequence": "the 2 book-only training users listed in instance_num.txt are not in the "
                                       "training split", "short": "2 book-only users: not in training"},
        "text_B.pkl": {"consequence": "the 2 book items have no title: their text channel is masked (mask False), "
                                      "only their ID channel exists", "short": "2 book items untitled: text masked"}}
    assert ds.card["sequences"]["train"] == {"mixed": 1, "single_x": 2, "single_y": 0}
    assert ds.items["title"].tolist()[:3] == ["Green Tea", "Basil Pesto", "Flour"]
    assert ds.items["title"].iloc[3:].isna().all() and ds.card["coverage"]["titles_book"] == 0.0
    table = card_table(ds.card)["value"]  # notebook 01 shows this table; pandas cuts values past 50 characters
    assert table["absent: train_B.txt"] == "2 book-only users: not in training"
    assert table["absent: text_B.pkl"] == "2 book items untitled: text masked"


def test_cold_targets_are_the_ones_no_training_line_present_holds(tmp_path):
    # test targets: 4 (a book only train_B.txt held) and 4; valid target: 2 (a movie of train_A.txt)
    ds = import_llmcdsr(partial_release(tmp_path), "movie_book")
    assert ds.card["items_in_train"] == {"movie": 3, "book": 1}
    assert ds.card["eval_targets"]["test"] == {"movie": 0, "book": 2}
    assert ds.card["eval_targets_cold"] == {"valid": {"movie": 0, "book": 0}, "test": {"movie": 0, "book": 2}}
    assert card_table(ds.card)["value"]["test targets cold (not in training) movie / book"] == "0 / 2"
    whole = import_llmcdsr(partial_release(tmp_path / "whole", drop=()), "movie_book")
    assert whole.card["absent_files"] == {} and whole.card["eval_targets_cold"]["test"] == {"movie": 0, "book": 0}


def test_without_instance_num_the_consequence_is_said_without_a_count(tmp_path):
    ds = import_llmcdsr(partial_release(tmp_path, instance_num=None, drop=("train_B.txt",)), "movie_book")
    assert ds.card["absent_files"] == {"train_B.txt": {
        "consequence": "the book-only training users are not in the training split",
        "short": "the book-only users: not in training"}}


def test_books_without_a_title_have_their_text_masked(tmp_path, artifacts):
    from llmemf_lite.embed import EmbedConfig, item_embeddings

    ds = build_dataset("movie_book", "llmcdsr", partial_release(tmp_path))
    emb = item_embeddings(ds, "text", EmbedConfig(encoder="minilm", text_source="title"), progress=False)
    assert emb.mask.tolist() == [True, True, True, False, False]
    assert not emb.vectors[3:].any()
    np.testing.assert_allclose(np.linalg.norm(emb.vectors[:3], axis=1), 1.0, atol=1e-5)
    assert emb.manifest["coverage"]["text_origin"] == {"title": 3, "no_text": 2}


def test_a_present_but_short_training_file_is_still_refused(tmp_path):
    folder = partial_release(tmp_path, drop=("text_B.pkl",), train_b="1\t3,4\n")  # instance_num.txt says 2
    with pytest.raises(DataFormatError, match=r"train_B.txt: holds 1 sequences \(expected 2, as instance_num"):
        import_llmcdsr(folder, "movie_book")


def test_a_present_but_truncated_file_is_still_refused(tmp_path):
    folder = partial_release(tmp_path)
    data = (folder / "train_A.txt").read_bytes()
    (folder / "train_A.txt").write_bytes(data[:-3])  # cut mid-line
    with pytest.raises(DataFormatError, match="train_A.txt, line 2: the last line has no newline"):
        import_llmcdsr(folder, "movie_book")
    folder = partial_release(tmp_path / "pkl", drop=("train_B.txt",))
    (folder / "text_B.pkl").write_bytes((folder / "text_B.pkl").read_bytes()[:10])
    with pytest.raises(DataFormatError, match="text_B.pkl: not a readable pickle"):
        import_llmcdsr(folder, "movie_book")


def test_required_files_and_at_least_one_training_file(tmp_path):
    folder = partial_release(tmp_path, drop=("train_A.txt", "train_B.txt", "train_overlap.txt"))
    with pytest.raises(DataFormatError, match="holds none of the training files"):
        import_llmcdsr(folder, "movie_book")
    for name in ("num.txt", "item_set_B.pkl", "test.txt"):
        folder = partial_release(tmp_path / name)
        (folder / name).unlink()
        with pytest.raises(DataFormatError, match=f"{name}: file not found"):
            import_llmcdsr(folder, "movie_book")


def test_real_movie_book_release(artifacts):
    if not (REAL_MOVIE_BOOK / "num.txt").is_file() or (REAL_MOVIE_BOOK / "train_B.txt").exists():
        pytest.skip(f"the partial LLMCDSR Movie-Book release is not at {REAL_MOVIE_BOOK}")
    ds = build_dataset("movie_book", "llmcdsr", REAL_MOVIE_BOOK)
    assert (ds.pair.x, ds.pair.amazon_categories) == ("movie", ("Movies_and_TV", "Books"))
    assert (ds.space.n_x, ds.space.n_y) == (12875, 93860)
    assert ds.card["sequences"]["train"] == {"mixed": 6652, "single_x": 12185, "single_y": 0}
    assert ds.card["eval_targets"]["test"] == {"movie": 311, "book": 525}
    assert ds.card["eval_targets_cold"]["test"] == {"movie": 1, "book": 207}
    assert ds.card["items_in_train"]["book"] == 23688
    assert set(ds.card["absent_files"]) == {"train_B.txt", "text_B.pkl"}
    table = card_table(ds.card)["value"]
    assert table["absent: train_B.txt"] == "124,889 book-only users: not in training"
    assert table["absent: text_B.pkl"] == "93,860 book items untitled: text masked"
    assert all(len(v) <= 50 for v in table if isinstance(v, str))
