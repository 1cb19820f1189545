"""The raw Amazon importer on small 2014 / 2018 files the tests write, and the two split protocols."""
import gzip
import json

import numpy as np
import pytest

from llmemf_lite.data.amazon import AmazonConfig, import_amazon, k_core_filter
from llmemf_lite.data.dataset import CrossDomainDataset, ItemSpace, history_and_target
from llmemf_lite.data.errors import DataFormatError
from llmemf_lite.data.splits import SplitConfig, held_out_users, leave_one_out

MOVIES, BOOKS = "Movies_and_TV", "Books"

# user -> [(domain, asin, day)], domain 0 = movies (X), 1 = books (Y)
HISTORIES = {
    "u1": [(0, "m1", 1), (1, "b1", 2), (0, "m2", 3), (1, "b2", 4), (0, "m3", 5)],
    "u2": [(1, "b1", 1), (0, "m1", 2), (1, "b2", 3), (0, "m2", 4)],
    "u3": [(0, "m2", 1), (0, "m3", 2), (1, "b1", 3), (1, "b2", 4), (0, "m1", 5)],
    "u4": [(0, "m3", 1), (1, "b2", 2), (0, "m1", 3)],            # 3 interactions: valid + test rows, no train row
    "solo": [(0, "m1", 7)],                                       # one interaction: counted, dropped
    "onlymovies": [(0, "m1", 1), (0, "m2", 2), (0, "m3", 3)],    # one domain only: filtered out
}
TITLES = {"m1": "Alien", "m2": "Brazil", "m3": "Casablanca", "b1": "Dune", "b2": "Emma"}


def review_lines(domain, histories=HISTORIES):
    for user, events in histories.items():
        for d, asin, day in events:
            if d == domain:
                yield json.dumps({"reviewerID": user, "asin": asin, "unixReviewTime": 86400 * day, "overall": 5.0})


def write_gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    return path


def meta_2014(asins):  # Python literals with single quotes, as the 2014 release has them
    return [repr({"asin": a, "title": TITLES[a], "imUrl": f"http://img.example/{a}.jpg", "categories": [["x"]]})
            for a in asins]


def meta_2018(asins):
    return [json.dumps({"asin": a, "title": TITLES[a], "description": ["A", "story."],
                        "imageURLHighRes": [f"http://img.example/{a}_hi.jpg"], "imageURL": []}) for a in asins]


def write_release(folder, release="2014", reviews=(None, None), meta=(None, None)):
    folder.mkdir(parents=True, exist_ok=True)
    for d, cat in enumerate((MOVIES, BOOKS)):
        name = f"reviews_{cat}_5.json.gz" if release == "2014" else f"{cat}_5.json.gz"
        write_gz(folder / name, reviews[d] if reviews[d] is not None else review_lines(d))
        asins = [a for a in TITLES if (a[0] == "m") == (d == 0)]
        lines = meta[d] if meta[d] is not None else (meta_2014(asins) if release == "2014" else meta_2018(asins))
        write_gz(folder / f"meta_{cat}.json.gz", lines)
    return folder


K2 = AmazonConfig(k_core=2)


def test_2014_release_becomes_a_leave_one_out_dataset(tmp_path):
    ds = import_amazon(write_release(tmp_path / "raw"), "movie_book", K2, progress=False)
    assert ds.items["source_id"].tolist() == ["m1", "m2", "m3", "b1", "b2"]   # X first, sorted by ASIN
    assert ds.items["title"].tolist() == ["Alien", "Brazil", "Casablanca", "Dune", "Emma"]
    assert ds.items["image"].iloc[0] == "http://img.example/m1.jpg"
    assert ds.card["users"] == {"train": 3, "valid": 4, "test": 4}
    u1 = {r.split: r.items.tolist() for r in ds.sequences[ds.sequences.user == "u1"].itertuples()}
    assert u1 == {"train": [0, 3, 1], "valid": [0, 3, 1, 4], "test": [0, 3, 1, 4, 2]}
    hist, target = history_and_target(ds.split("test").set_index("user").loc["u2", "items"])
    assert hist.tolist() == [3, 0, 4] and target == 1
    ts = ds.sequences[(ds.sequences.user == "u1") & (ds.sequences.split == "test")].timestamps.iloc[0]
    assert np.all(np.diff(ts) >= 0) and ts[0] == 86400
    skipped = ds.card["skipped"]
    assert skipped["users_with_one_interaction"]["count"] == 1
    assert skipped["train_rows_with_one_item"]["count"] == 1                  # u4
    assert ds.card["filtering"]["users_in_both_domains"] == 4
    assert ds.card["filtering"]["users_kept"] == 4 and ds.card["filtering"]["reviews_read"] == 21
    assert ds.card["provenance"]["files"] and all(len(f["sha256"]) == 64 for f in ds.card["provenance"]["files"].values())
    back = CrossDomainDataset.load(ds.save(tmp_path / "out"))
    assert back.card == ds.card


def test_2018_release_and_held_out_users(tmp_path):
    split = SplitConfig("held_out_users", valid_share=0.25, test_share=0.25, seed=3)
    ds = import_amazon(write_release(tmp_path / "raw", "2018"), "movie_book", K2, split, progress=False)
    assert ds.items["image"].iloc[3] == "http://img.example/b1_hi.jpg"
    assert ds.items["description"].iloc[0] == "A story."
    assert ds.card["users"] == {"train": 2, "valid": 1, "test": 1}
    assert set(ds.sequences.groupby("user").size()) == {1}                    # each user in exactly one split
    assert ds.card["provenance"]["files"][next(iter(ds.card["provenance"]["files"]))]["release"] == "2018"
    again = import_amazon(tmp_path / "raw", "movie_book", K2, split, progress=False)
    assert again.sequences["user"].tolist() == ds.sequences["user"].tolist()  # same seed, same users held out


def test_k_core_is_a_fixpoint_and_both_domain_users_only():
    # user 0: two X, user 1: X + Y x2, user 2: only X; item 2 seen once
    user = np.array([0, 0, 1, 1, 1, 2, 2])
    domain = np.array([0, 0, 0, 1, 1, 0, 0])
    item = np.array([0, 1, 0, 0, 1, 0, 2])
    keep, info = k_core_filter(user, domain, item, (3, 2), k=2, min_per_domain=1, max_rounds=10)
    # users 0 and 2 lack domain Y; then item 0 (X) has only user 1 -> < 2 -> removed; user 1 then has 2 left (Y)
    # but no X interaction -> removed: nothing survives
    assert not keep.any() and info["rounds"] >= 2
    keep, _ = k_core_filter(user, domain, item, (3, 2), k=1, min_per_domain=1, max_rounds=10)
    assert keep.tolist() == [False, False, True, True, True, False, False]


def test_k_core_filters_items_and_users(tmp_path):
    folder = write_release(tmp_path / "raw")
    ds = import_amazon(folder, "movie_book", AmazonConfig(k_core=3), progress=False)
    assert sorted(set(ds.sequences["user"])) == ["u1", "u2", "u3", "u4"]     # "onlymovies" lacks books, "solo" < 3
    assert ds.card["filtering"]["users_kept"] == 4 and ds.space.n_items == 5
    # k=4 removes u4 (3 interactions), which leaves m3 and b1 with 3 users each, which cascades to nothing
    with pytest.raises(DataFormatError, match="no user is left .* 4-core"):
        import_amazon(folder, "movie_book", AmazonConfig(k_core=4), progress=False)


def test_duplicate_reviews_are_counted_and_the_earliest_kept(tmp_path):
    dup = list(review_lines(0)) + [json.dumps({"reviewerID": "u1", "asin": "m1", "unixReviewTime": 86400 * 9})]
    ds = import_amazon(write_release(tmp_path / "raw", reviews=(dup, None)), "movie_book", K2, progress=False)
    assert ds.card["skipped"][f"reviews_{MOVIES}_5.json.gz: duplicate reviews"]["count"] == 1
    test_u1 = ds.split("test").set_index("user").loc["u1", "items"].tolist()
    assert test_u1 == [0, 3, 1, 4, 2]


def test_items_without_metadata_are_counted(tmp_path):
    ds = import_amazon(write_release(tmp_path / "raw", meta=(meta_2014(["m1", "m2"]), None)), "movie_book", K2,
                       progress=False)
    assert ds.items["title"].isna().sum() == 1
    assert ds.card["skipped"][f"meta_{MOVIES}.json.gz: items without metadata"]["count"] == 1
    assert ds.card["coverage"]["titles_movie"] == pytest.approx(2 / 3, abs=1e-4)


@pytest.mark.parametrize("which, lines, line_no, words", [
    ("reviews", ['{"reviewerID": "u1", "asin": "m1", "unixReviewTime": 86400}', '{"reviewerID": "u2", "asin"'],
     2, "malformed line"),
    ("reviews", ['{"reviewerID": "u1", "asin": "m1"}'], 1, "unixReviewTime"),
    ("reviews", ['{"asin": "m1", "unixReviewTime": 5}'], 1, "reviewerID"),
    ("reviews", ['["not", "an", "object"]'], 1, "not an object"),
    ("meta", ["{'asin': 'm1', 'title': 'Alien'}", "{'asin': 'm2', 'title': 'Brazil'"], 2, "malformed line"),
    ("meta", ["{'asin': 'm1', 'title': 'Alien'}", "{'title': __import__('os').system('echo pwned')}"], 2,
     "malformed line"),                                      # literal_eval refuses code; eval would have run it
    ("meta", ["{'asin': 'm1', 'title': 'Alien'}", "{'title': 'No asin here'}"], 2, "no 'asin' field"),
])
def test_bad_lines_name_file_and_line(tmp_path, which, lines, line_no, words):
    kwargs = {"reviews": (lines, None)} if which == "reviews" else {"meta": (lines, None)}
    folder = write_release(tmp_path / "raw", **kwargs)
    with pytest.raises(DataFormatError) as err:
        import_amazon(folder, "movie_book", K2, progress=False)
    assert err.value.line == line_no and words in str(err.value)
    assert MOVIES in err.value.path


def test_bad_lines_can_be_skipped_and_counted(tmp_path):
    lines = list(review_lines(0)) + ["{broken", '{"reviewerID": "u9", "asin": "m1"}']
    folder = write_release(tmp_path / "raw", reviews=(lines, None))
    ds = import_amazon(folder, "movie_book", AmazonConfig(k_core=2, on_bad_line="skip"), progress=False)
    sk = ds.card["skipped"]
    n = len(lines)
    assert sk[f"reviews_{MOVIES}_5.json.gz: malformed line"] == {"reason": "malformed line", "unit": "lines",
                                                                 "count": 1, "lines": [n - 1]}
    assert sk[f"reviews_{MOVIES}_5.json.gz: missing or invalid field among "
              f"['reviewerID', 'asin', 'unixReviewTime']"]["lines"] == [n]


def test_unknown_category_and_missing_files(tmp_path):
    folder = write_release(tmp_path / "raw")
    with pytest.raises(DataFormatError, match="unknown category 'Moovies'"):
        import_amazon(folder, "movie_book", AmazonConfig(categories=("Moovies", BOOKS)), progress=False)
    with pytest.raises(DataFormatError, match="no review file for category 'Movies_and_TV'"):
        import_amazon(tmp_path / "raw", "movie_book", AmazonConfig(release="2018"), progress=False)
    (folder / f"meta_{BOOKS}.json.gz").unlink()
    with pytest.raises(DataFormatError, match=f"meta_{BOOKS}.json.gz: file not found"):
        import_amazon(folder, "movie_book", K2, progress=False)
    with pytest.raises(DataFormatError, match="folder not found"):
        import_amazon(tmp_path / "nowhere", "movie_book", K2, progress=False)


def test_explicit_files_and_a_user_registered_pair(tmp_path):
    from llmemf_lite.pairs import register_pair

    register_pair("film_novel_test", ("film", "novel"), (MOVIES, BOOKS), overwrite=True)
    folder = write_release(tmp_path / "raw")
    cfg = AmazonConfig(k_core=2, review_files=(str(folder / f"reviews_{MOVIES}_5.json.gz"),
                                               str(folder / f"reviews_{BOOKS}_5.json.gz")),
                       meta_files=(str(folder / f"meta_{MOVIES}.json.gz"), str(folder / f"meta_{BOOKS}.json.gz")))
    ds = import_amazon(None, "film_novel_test", cfg, progress=False)
    assert ds.items["domain"].tolist() == ["film"] * 3 + ["novel"] * 2
    assert ds.items["title"].iloc[0] == "Alien"                               # literal syntax detected


def test_split_functions_directly():
    space = ItemSpace(2, 2)
    seqs = [("a", np.array([0, 2, 1, 3]), None), ("b", np.array([0, 1]), None)]
    rows, skipped = leave_one_out(seqs, space)
    assert [(r[0], r[1], r[2], r[3].tolist()) for r in rows] == [
        ("a", "train", "mixed", [0, 2]), ("a", "valid", "mixed", [0, 2, 1]), ("a", "test", "mixed", [0, 2, 1, 3])]
    assert skipped["users_too_short_for_leave_one_out"]["count"] == 1
    many = [(f"u{i:02d}", np.array([0, 2]), None) for i in range(20)]
    rows, _ = held_out_users(many, space, valid_share=0.1, test_share=0.2, seed=0)
    splits = [r[1] for r in rows]
    assert (splits.count("valid"), splits.count("test"), splits.count("train")) == (2, 4, 14)
    with pytest.raises(ValueError, match="unknown split protocol"):
        SplitConfig("random")
