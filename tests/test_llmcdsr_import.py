import pickle
from pathlib import Path

import numpy as np
import pytest

from llmemf_lite.data.errors import DataFormatError
from llmemf_lite.data.llmcdsr import import_llmcdsr


def write_release(folder, *, num="3\n2\n", train_a="1\t0,1,2\n2\t2,1\n", train_b="1\t3,4\n",
                  overlap="1\t0,3,4,1\n", valid="1\t0,3,2\n", test="1\t1,4\n2\t3,0,4\n",
                  item_set_a=None, item_set_b=None, text_a=None, text_b=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "num.txt").write_text(num)
    for name, text in (("train_A.txt", train_a), ("train_B.txt", train_b), ("train_overlap.txt", overlap),
                       ("valid.txt", valid), ("test.txt", test)):
        (folder / name).write_text(text)
    objs = {"item_set_A.pkl": item_set_a or {"a0": 0, "a1": 1, "a2": 2},
            "item_set_B.pkl": item_set_b or {"b0": 0, "b1": 1},
            "text_A.pkl": text_a if text_a is not None else {"a0": "Green Tea", "a1": "Basil Pesto", "a2": "Flour"},
            "text_B.pkl": text_b if text_b is not None else {"b0": "Wok", "b1": "Whisk"}}
    for name, obj in objs.items():
        (folder / name).write_bytes(pickle.dumps(obj))
    return folder


def test_small_release_becomes_canonical(tmp_path):
    ds = import_llmcdsr(write_release(tmp_path / "rel"))
    assert ds.space.n_x == 3 and ds.space.n_y == 2
    assert ds.items["source_id"].tolist() == ["a0", "a1", "a2", "b0", "b1"]
    assert ds.items["title"].tolist() == ["Green Tea", "Basil Pesto", "Flour", "Wok", "Whisk"]
    assert ds.items["domain"].tolist() == ["food"] * 3 + ["kitchen"] * 2
    counts = ds.card["sequences"]
    assert counts["train"] == {"mixed": 1, "single_x": 2, "single_y": 1}
    assert counts["valid"]["mixed"] == 1 and counts["test"]["mixed"] == 2
    # targets: valid 2 (food); test 4 (kitchen), 4 (kitchen)
    assert ds.card["eval_targets"]["test"] == {"food": 0, "kitchen": 2}
    assert ds.card["eval_targets"]["valid"] == {"food": 1, "kitchen": 0}
    np.testing.assert_array_equal(ds.split("test")["items"].iloc[1], [3, 0, 4])
    # mixed rows: train 0,3,4,1 (2 of 3 transitions cross), valid 0,3,2 (2 of 2), test 1,4 (1 of 1), 3,0,4 (2 of 2)
    assert ds.card["cross_domain_transition_share"] == pytest.approx(7 / 8)


def test_cache_folder_is_keyed_by_content_not_by_path_or_copy_time(tmp_path, artifacts):
    import json
    import os
    import shutil

    from llmemf_lite.data.build import dataset_folder

    first = write_release(tmp_path / "rel")
    key = dataset_folder("food_kitchen", "llmcdsr", first)
    # a fresh copy in another place, with other modification times (a new machine, a new checkout): same folder
    copy = Path(shutil.copytree(first, tmp_path / "elsewhere" / "rel"))
    for f in copy.iterdir():
        os.utime(f, (1_000_000, 1_000_000))
    assert dataset_folder("food_kitchen", "llmcdsr", copy) == key
    # each file was hashed once and memoised by path, size and mtime
    memo = json.loads((artifacts / "datasets" / "file_hashes.json").read_text())
    assert len(memo) == 2 * len(list(first.iterdir())) and str((copy / "test.txt").resolve()) in memo
    # one changed byte: another folder
    (copy / "test.txt").write_text("1\t1,4\n2\t3,0,3\n")
    assert dataset_folder("food_kitchen", "llmcdsr", copy) != key


def test_saved_and_loaded_dataset_is_identical(tmp_path):
    ds = import_llmcdsr(write_release(tmp_path / "rel"))
    from llmemf_lite.data.dataset import CrossDomainDataset
    back = CrossDomainDataset.load(ds.save(tmp_path / "out"))
    assert back.items.equals(ds.items.astype(back.items.dtypes)) or back.items.values.tolist() == ds.items.values.tolist()
    assert [a.tolist() for a in back.sequences["items"]] == [a.tolist() for a in ds.sequences["items"]]
    assert back.card == ds.card


def test_single_item_training_line_is_skipped_and_counted(tmp_path):
    ds = import_llmcdsr(write_release(tmp_path / "rel", train_a="1\t0,1\n2\t2\n3\t1,2\n"))
    assert ds.card["sequences"]["train"]["single_x"] == 2
    assert ds.card["skipped"]["train_A.txt"]["count"] == 1
    assert ds.card["skipped"]["train_A.txt"]["lines"] == [2]


@pytest.mark.parametrize("kwargs, line, words", [
    ({"train_a": "1\t0,1\n2 0,1\n"}, 2, "tab-separated"),
    ({"train_b": "1\t3,x4\n"}, 1, "not an integer"),
    ({"train_a": "1\t0,3\n"}, 1, "outside this file's id range"),   # 3 is a kitchen id in a food-only file
    ({"test": "1\t0,5\n"}, 1, "outside"),                          # 5 is past the last item
    ({"valid": "1\t0,1\n7\t\n"}, 2, "empty sequence"),
])
def test_bad_sequence_lines_name_file_and_line(tmp_path, kwargs, line, words):
    folder = write_release(tmp_path / "rel", **kwargs)
    with pytest.raises(DataFormatError) as err:
        import_llmcdsr(folder)
    assert err.value.line == line
    assert words in str(err.value)
    assert err.value.path.endswith(".txt")


def test_unknown_asin_in_titles_is_an_error(tmp_path):
    folder = write_release(tmp_path / "rel", text_b={"b0": "Wok", "zz9": "Mystery"})
    with pytest.raises(DataFormatError, match="text_B.pkl.*not in item_set_B.pkl.*zz9"):
        import_llmcdsr(folder)


def test_missing_title_is_counted_in_coverage(tmp_path):
    ds = import_llmcdsr(write_release(tmp_path / "rel", text_b={"b0": "Wok"}))
    assert ds.items["title"].isna().sum() == 1
    assert ds.card["coverage"]["titles_kitchen"] == 0.5


@pytest.mark.parametrize("num, words", [("3\n", "1 non-empty lines"), ("3\nabc\n", "not a positive integer")])
def test_bad_num_txt(tmp_path, num, words):
    with pytest.raises(DataFormatError, match=words):
        import_llmcdsr(write_release(tmp_path / "rel", num=num))


def test_missing_file_and_item_set_gap(tmp_path):
    folder = write_release(tmp_path / "rel")
    (folder / "valid.txt").unlink()
    with pytest.raises(DataFormatError, match="valid.txt: file not found"):
        import_llmcdsr(folder)
    folder = write_release(tmp_path / "rel2", item_set_a={"a0": 0, "a1": 1, "a2": 5})
    with pytest.raises(DataFormatError, match="item_set_A.pkl.*'a2' maps to 5"):
        import_llmcdsr(folder)
    with pytest.raises(DataFormatError, match="folder not found"):
        import_llmcdsr(tmp_path / "nowhere")


def test_real_food_kitchen_release(real_food_kitchen):
    ds = import_llmcdsr(real_food_kitchen)
    assert (ds.space.n_x, ds.space.n_y) == (8661, 27637)
    assert ds.card["coverage"]["titles_food"] == 1.0 and ds.card["coverage"]["titles_kitchen"] == 1.0
    assert ds.card["sequences"]["train"] == {"mixed": 7501, "single_x": 5472, "single_y": 38191}
    assert ds.card["users"]["valid"] == 960 and ds.card["users"]["test"] == 937
    assert ds.card["eval_targets"]["test"] == {"food": 300, "kitchen": 637}
    assert ds.card["eval_targets_cold"]["test"] == {"food": 4, "kitchen": 7}  # the complete release: almost all warm
    assert ds.card["skipped"] == {} and ds.card["absent_files"] == {}
