"""The papermill runner of the main command: parameters reach the notebooks that declare them, a misspelt one stops
the run before anything executes, progress is reported per notebook, and a failure names notebook and cell."""
import json

import nbformat
import pytest

from llmemf_lite.pipeline import notebook_sequence, run_pipeline


def _notebook(path, parameters: str, *cells: str):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# a stage"),
                nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                *(nbformat.v4.new_code_cell(c) for c in cells)]
    nbformat.write(nb, str(path))


@pytest.fixture
def stages(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "01_first.ipynb", "domain_pair = 'food_kitchen'\nepochs = 1",
              "print(f'first: {domain_pair} {epochs}')")
    _notebook(folder / "02_second.ipynb", "domain_pair = 'food_kitchen'\nlimit = 3",
              "print(f'second: {domain_pair} {limit}')", "x = 1\nraise ValueError(f'stage broke at {x}')",
              "print('never')")
    (folder / "notes.ipynb").write_text("{}")   # not numbered: not a stage
    return folder


def _printed(path) -> str:
    nb = json.loads(path.read_text())
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


@pytest.mark.slow
def test_parameters_progress_and_a_failure_named_by_notebook_and_cell(stages, tmp_path, capfd):
    assert [p.name for p in notebook_sequence(stages)] == ["01_first.ipynb", "02_second.ipynb"]
    out, record = tmp_path / "out", tmp_path / "results" / "timings.json"
    with pytest.raises(SystemExit) as failed:
        run_pipeline(out, {"domain_pair": "movie_book", "epochs": 7}, notebooks_dir=stages, record=record)
    message = str(failed.value)
    # the timing record: one entry per notebook run, the failed one too, with its parameters, machine and commit
    entries = json.loads(record.read_text())
    assert [(e["notebook"], e["status"]) for e in entries] == [("01_first.ipynb", "done"), ("02_second.ipynb", "failed")]
    assert entries[0]["parameters"] == {"domain_pair": "movie_book", "epochs": 7} and entries[0]["seconds"] > 0
    assert entries[0]["invoked"] == entries[1]["invoked"] and "cores" in entries[0]["machine"] and entries[0]["commit"]
    assert "FAILED in 02_second.ipynb" in message and "`x = 1`" in message
    assert "ValueError: stage broke at 1" in message and str(out / "02_second.ipynb") in message
    # each notebook got the parameters it declares, and only those
    assert "first: movie_book 7" in _printed(out / "01_first.ipynb")
    second = _printed(out / "02_second.ipynb")
    assert "second: movie_book 3" in second and "never" not in second
    printed = capfd.readouterr()
    assert "Kernel is running over TCP" not in printed.err    # the kernels' start-up log is held back
    progress = printed.out.splitlines()
    assert progress[0].startswith("[1/2] 01_first.ipynb (domain_pair='movie_book', epochs=7)")
    assert progress[1].startswith("[1/2] 01_first.ipynb done in") and progress[2].startswith("[2/2] 02_second.ipynb")
    # the stages option runs only the ones named; a later invocation appends to the record
    assert [p.name for p in run_pipeline(out, {"epochs": 2}, stages=["01"], notebooks_dir=stages,
                                         record=record)] == ["01_first.ipynb"]
    assert [e["status"] for e in json.loads(record.read_text())] == ["done", "failed", "done"]
    assert "first: food_kitchen 2" in _printed(out / "01_first.ipynb")


def test_a_parameter_no_notebook_declares_stops_the_run_before_it_starts(stages, tmp_path):
    with pytest.raises(SystemExit, match=r"declares the parameter\(s\) \['domian_pair'\].*'domain_pair', 'epochs'"):
        run_pipeline(tmp_path / "out", {"domian_pair": "movie_book"}, notebooks_dir=stages)
    assert not (tmp_path / "out").exists()
    # declared by a notebook left out by --stages: also an error, since no notebook of this run would receive it
    with pytest.raises(SystemExit, match="limit"):
        run_pipeline(tmp_path / "out", {"limit": 5}, stages=["01"], notebooks_dir=stages)
    with pytest.raises(SystemExit, match="no notebook matches stages"):
        run_pipeline(tmp_path / "out", {}, stages=["09"], notebooks_dir=stages)


def test_make_reproduce_real_hands_every_notebook_parameters_it_declares_and_that_fit(capsys):
    # the one command of the real-data study takes hours; its wiring (every -p name declared by some notebook, every
    # value of its default's type) is checked here on the commands make would run, without running them
    import shlex
    import subprocess

    from llmemf_lite.pipeline import main
    from llmemf_lite.paths import project_root

    dry = subprocess.run(["make", "-n", "reproduce-real"], cwd=project_root(), capture_output=True, text=True,
                         check=True).stdout
    commands = [shlex.split(line) for line in dry.splitlines() if "-m llmemf_lite.pipeline" in line]
    assert len(commands) == 2
    for command, pair in zip(commands, ("food_kitchen", "movie_book")):
        assert main(command[command.index("llmemf_lite.pipeline") + 1:] + ["--check"]) == 0
        shown = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
        assert len(shown) == 6 and all(f"domain_pair='{pair}'" in v and "source='llmcdsr'" in v for v in shown.values())
        assert "limit='all'" in shown["02_llm_enrichment.ipynb"] and "tuned=True" in shown["04_train.ipynb"]
        assert "c2dsr" in shown["04_train.ipynb"] and "tuned=True" in shown["05_ablations.ipynb"]
        assert command[command.index("--record") + 1] == "results/reproduce_real.json"


def test_a_timing_record_that_is_not_a_list_is_an_error_naming_it_and_is_left_as_it_was(tmp_path):
    from llmemf_lite.pipeline import record_entry

    record = tmp_path / "timings.json"
    record.write_text('{"notebook": "01"}')
    with pytest.raises(SystemExit, match=r"timings.json: expected a JSON list .* found dict"):
        record_entry(record, {"notebook": "02"})
    assert record.read_text() == '{"notebook": "01"}'
    record_entry(tmp_path / "new" / "t.json", {"notebook": "02"})
    assert json.loads((tmp_path / "new" / "t.json").read_text()) == [{"notebook": "02"}]


def test_a_timed_entry_is_written_at_once_kept_up_to_date_while_it_runs_and_closed_with_how_it_ended(tmp_path,
                                                                                                   monkeypatch):
    import time

    from llmemf_lite import pipeline

    monkeypatch.setattr(pipeline, "HEARTBEAT_S", 0.05)
    record = tmp_path / "timings.json"
    with pipeline.recorded(record, {"notebook": "04_train.ipynb"}):
        assert json.loads(record.read_text()) == [{"notebook": "04_train.ipynb", "seconds": 0.0, "status": "running"}]
        time.sleep(0.4)
        # a run killed outright here (SIGKILL) keeps the time it had run, to within one heartbeat
        running = json.loads(record.read_text())[0]
        assert running["status"] == "running" and running["seconds"] >= 0.2
    assert json.loads(record.read_text())[0]["status"] == "done"
    with pytest.raises(KeyboardInterrupt):
        with pipeline.recorded(record, {"notebook": "05_ablations.ipynb"}):
            raise KeyboardInterrupt
    with pytest.raises(SystemExit):
        with pipeline.recorded(record, {"notebook": "06_attention.ipynb"}) as outcome:
            outcome["status"] = "failed"
            raise SystemExit("a cell failed")
    assert [e["status"] for e in json.loads(record.read_text())] == ["done", "stopped", "failed"]
    assert not list(tmp_path.glob("*.partial"))
