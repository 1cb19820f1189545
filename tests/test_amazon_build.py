"""build_dataset with the amazon / c2dsr / recbole sources (caching, parameters), and notebook 01 run on each."""
import json
from pathlib import Path

import pytest

from llmemf_lite.data.build import build_dataset, dataset_folder
from llmemf_lite.data.c2dsr import export_c2dsr
from llmemf_lite.data.recbole import export_recbole
from test_amazon_import import MOVIES, review_lines, write_release

ROOT = Path(__file__).resolve().parent.parent


def test_amazon_source_is_cached_and_keyed_by_parameters(artifacts, tmp_path):
    raw = write_release(tmp_path / "raw")
    ds = build_dataset("movie_book", "amazon", raw, k_core=2, progress=False)
    assert ds.folder.parent == artifacts / "datasets" and ds.card["source"] == "amazon"
    assert build_dataset("movie_book", "amazon", raw, k_core=2, progress=False).folder == ds.folder
    held = build_dataset("movie_book", "amazon", raw, k_core=2, split_protocol="held_out_users", valid_share=0.25,
                         test_share=0.25, progress=False)
    assert held.folder != ds.folder and held.card["users"]["valid"] == 1
    # papermill passes lists; explicit files relative to the project root are resolved like data_dir
    files = [str(raw / f"reviews_{MOVIES}_5.json.gz"), str(raw / "reviews_Books_5.json.gz")]
    metas = [str(raw / f"meta_{MOVIES}.json.gz"), str(raw / "meta_Books.json.gz")]
    explicit = build_dataset("movie_book", "amazon", None, k_core=2, review_files=files, meta_files=metas,
                             progress=False)
    assert explicit.sequences["items"].map(list).tolist() == ds.sequences["items"].map(list).tolist()
    # the cache is keyed by content: a touched file or a copy elsewhere keeps the folder, a changed file rebuilds
    import os
    import shutil
    before = dataset_folder("movie_book", "amazon", raw, k_core=2)
    os.utime(raw / "reviews_Books_5.json.gz", (1, 1))
    assert dataset_folder("movie_book", "amazon", raw, k_core=2) == before
    copy = shutil.copytree(raw, tmp_path / "elsewhere")
    assert dataset_folder("movie_book", "amazon", copy, k_core=2) == before
    (copy / "reviews_Books_5.json.gz").write_bytes((copy / "reviews_Books_5.json.gz").read_bytes() + b"\n")
    assert dataset_folder("movie_book", "amazon", copy, k_core=2) != before


def test_parameters_are_checked(artifacts):
    with pytest.raises(TypeError, match=r"unknown dataset parameter\(s\) \['kcore'\]"):
        build_dataset("food_kitchen", "synthetic", kcore=3)
    with pytest.raises(ValueError, match="unknown source 'amazin'"):
        build_dataset("food_kitchen", "amazin")
    with pytest.raises(ValueError, match="source 'c2dsr' needs data_dir"):
        build_dataset("food_kitchen", "c2dsr")
    with pytest.raises(ValueError, match="unknown split protocol"):
        build_dataset("movie_book", "amazon", "/nowhere", split_protocol="random")
    # the synthetic default keeps its cache key whatever amazon parameters a notebook passes along
    assert dataset_folder("food_kitchen", "synthetic", k_core=5) == dataset_folder("food_kitchen", "synthetic")


def bigger_release(folder, n_users=30, n_items=8):
    """Enough items per domain for notebook 01's item gallery (6 per domain): every user reviews 4 of 8 movies and
    3 of 8 books, chosen by a fixed rule."""
    histories = {f"user{u:02d}": [(0, f"m{(u + k) % n_items}", 10 * u + k) for k in range(4)]
                 + [(1, f"b{(2 * u + k) % n_items}", 10 * u + 5 + k) for k in range(3)] for u in range(n_users)}
    meta = [[repr({"asin": f"{p}{i}", "title": f"{p.upper()} title {i}"}) for i in range(n_items)] for p in "mb"]
    return write_release(folder, reviews=(list(review_lines(0, histories)), list(review_lines(1, histories))),
                         meta=tuple(meta))


@pytest.mark.slow
def test_notebook_01_runs_on_amazon_c2dsr_and_recbole(tmp_path, monkeypatch):
    import papermill as pm

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("LLMEMF_HOME", str(home))  # results/ and figures/ of these runs stay out of the checkout
    monkeypatch.setenv("LLMEMF_ARTIFACTS", str(tmp_path / "artifacts"))
    raw = bigger_release(tmp_path / "raw")
    ds = build_dataset("movie_book", "amazon", raw, k_core=2, progress=False)
    export_c2dsr(ds, tmp_path / "c2dsr")
    export_recbole(ds, tmp_path / "recbole")
    runs = {"amazon": {"data_dir": str(raw), "k_core": 2, "release": 2014},  # an int, as `-p release 2014` gives
            "c2dsr": {"data_dir": str(tmp_path / "c2dsr")},
            "recbole": {"data_dir": str(tmp_path / "recbole")}}
    for source, params in runs.items():
        pm.execute_notebook(str(ROOT / "notebooks/01_data_preparation.ipynb"), str(tmp_path / f"{source}.ipynb"),
                            parameters={"domain_pair": "movie_book", "source": source, **params},
                            cwd=str(ROOT / "notebooks"), progress_bar=False, kernel_name="python3")
        card = json.loads((home / "results" / f"dataset_card_movie_book_{source}.json").read_text())
        assert card["items"] == {"movie": 8, "book": 8, "total": 16}
        assert card["users"]["test"] == 30 and card["sequences"]["test"]["mixed"] == 30
        assert (home / "figures" / f"01_sequence_lengths_movie_book_{source}.png").is_file()
