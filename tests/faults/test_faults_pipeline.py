"""`-p` values of the main command: read as the type of the parameter's declared default, as papermill's own `-p`
reads them, so that `-p fetch_images False` is False (it was the string "False", which is true), and a value that
does not fit stops the run before any notebook runs, naming the parameter (`-p epochs abc` failed inside notebook 04
with `TypeError: can only concatenate str (not "int") to str`)."""
from __future__ import annotations

import json

import pytest

from llmemf_lite.pipeline import main, notebook_value, parse_text, run_pipeline

from test_pipeline import _notebook


@pytest.mark.parametrize("text, value", [("False", False), ("True", True), ("None", None), ("null", None),
                                         ("false", False), ("3", 3), ("1e-3", 0.001), ("0.5", 0.5),
                                         ("[1, 2]", [1, 2]), ("movie_book", "movie_book"), ("yes", "yes"),
                                         ("../shared/data/food-kitchen", "../shared/data/food-kitchen")])
def test_a_text_is_read_as_papermill_reads_it(text, value):
    assert parse_text(text) == value and type(parse_text(text)) is type(value)


@pytest.mark.parametrize("text, default, value", [
    ("False", "False", False), ("false", "False", False), ("True", "False", True),
    ("3", "4", 3), ("3", "0.5", 3.0), ("1e-3", "0.5", 0.001),
    ("2014", '"auto"', "2014"), ("0", '"0,1,2"', "0"), ("None", '"x"', "None"),   # a str default keeps the text
    ("null", "None", None), ("5", "None", 5), ("a,b", "None", "a,b"),             # None says nothing of the type
])
def test_a_command_line_value_takes_the_type_of_the_declared_default(text, default, value):
    got = notebook_value("p", text, default, "01_x.ipynb", from_text=True)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text, default, words", [
    ("abc", "4", "parameter epochs of 01_x.ipynb: 'abc' is not an integer (its default is 4)"),
    ("2.5", "4", "2.5 is not an integer"),
    ("False", "4", "False is not an integer"),
    ("Flase", "False", "'Flase' is not True or False"),
    ("1", "False", "1 is not True or False"),
    ("x", "0.5", "'x' is not a number"),
])
def test_a_value_of_another_type_names_the_parameter(text, default, words):
    with pytest.raises(SystemExit) as info:
        notebook_value("epochs", text, default, "01_x.ipynb", from_text=True)
    assert words in str(info.value)


def test_python_values_are_checked_too():
    assert notebook_value("epochs", 7, "4", "nb", from_text=False) == 7
    with pytest.raises(SystemExit, match="parameter epochs of nb: '7' is not an integer"):
        notebook_value("epochs", "7", "4", "nb", from_text=False)


@pytest.fixture
def stages(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "01_first.ipynb", "fetch_images = False\nepochs = 4\nrelease = 'auto'",
              "print(repr(fetch_images), repr(epochs + 1), repr(release))")
    _notebook(folder / "02_second.ipynb", "epochs = 4", "print(epochs)")
    return folder


def test_a_bad_value_stops_the_run_before_any_notebook_runs(stages, tmp_path):
    with pytest.raises(SystemExit, match="parameter epochs of 01_first.ipynb: 'abc' is not an integer"):
        run_pipeline(tmp_path / "out", {"epochs": "abc"}, notebooks_dir=stages, from_text=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_false_reaches_the_notebook_as_false(stages, tmp_path, monkeypatch):
    import llmemf_lite.pipeline as pipeline

    monkeypatch.setattr(pipeline, "notebook_sequence", lambda folder=None: sorted(stages.glob("0*.ipynb"))[:1])
    assert main(["--out", str(tmp_path / "out"), "-p", "fetch_images", "False", "-p", "epochs", "3",
                 "-p", "release", "2014"]) == 0
    nb = json.loads((tmp_path / "out" / "01_first.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert printed.strip() == "False 4 '2014'"
