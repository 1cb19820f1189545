"""Run the numbered notebooks in order with papermill: the README's main command.

    python -m llmemf_lite.pipeline --out runs/default -p domain_pair food_kitchen -p source synthetic

Each notebook receives the `-p` parameters that its `parameters` cell declares (others are not injected), so one
`-p domain_pair ...` reaches every stage; a parameter that no notebook declares, or a value that does not fit the
type of the declared default (`-p epochs abc`), stops the run before it starts. A value is read as that type:
`-p fetch_images False` is the bool False (papermill's own `-p` reads it so too), `-p release 2014` the string
"2014" where the default is a string.
A progress line is printed per notebook; a failure names the notebook and the cell, and stops the run.
`--in-place` executes the committed notebooks themselves (to refresh their outputs).
`--record PATH` appends one entry per notebook run to the JSON list at PATH (`recorded`: the notebook, its
parameters, when it started, its wall seconds, running / done / failed / stopped, the machine and the commit);
`make reproduce-real` records into results/reproduce_real.json, so its time stage by stage is measured wherever it
runs: a stopped run keeps the time it ran, and its resumed run is a later entry (`report.reproduce_real` adds them).
"""
from __future__ import annotations

import argparse
import datetime
import json
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .paths import project_root, resolve
from .provenance import commit, machine


def notebook_sequence(folder: str | Path | None = None) -> list[Path]:
    """The numbered notebooks (01_..., 02_..., ...) of `folder` (default: the project's notebooks/) in order."""
    return sorted(Path(folder or project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def failure_message(notebook: str, target, error) -> str:
    """What a failed notebook is reported as: the notebook, the cell (its execution count, as Jupyter shows it, and
    its first line of code, since papermill's injected parameters cell shifts the count by one), the error, and
    where the executed notebook with the whole traceback is."""
    first = next((line.strip() for line in (error.source or "").splitlines() if line.strip()), "")
    return (f"FAILED in {notebook}, cell [{error.exec_count}] `{first[:100]}`: {error.ename}: {error.evalue}\n"
            f"the executed notebook with the traceback is at {target}")


def parse_text(text: str):
    """A `-p` value as papermill's own `-p` reads it (True, False, None, an int, a float, else the string), and what
    its `-y` YAML adds: true / false / null and [lists] or {mappings}. "1e-3" is 0.001 here, where YAML 1.1 would
    keep a string."""
    import yaml

    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if text.strip().lower() in ("true", "false", "null", "~") or isinstance(value, (list, dict)):
        return value
    return text  # yes/on/dates and the like stay strings: only the spellings above change type


def notebook_value(name: str, value, default: str, notebook: str, *, from_text: bool):
    """`value` for parameter `name` of `notebook`, checked against the type of its declared default (the literal in
    the parameters cell, as papermill reports it): a text from the command line is read as that type (the default
    False makes `-p fetch_images False` the bool False, not the true string "False"; a str default keeps the text
    as it is); a value of another type stops the run with a message that names the parameter. A default of None
    says nothing of the type: the value is read as `parse_text` reads it."""
    import ast

    try:
        declared = ast.literal_eval(default)
    except (ValueError, SyntaxError):
        declared = None  # an expression as default: no type to check against
    kind = type(declared)
    if from_text and kind is str:
        return value
    if from_text:
        value = parse_text(value)
    if declared is None or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = {bool: "True or False", int: "an integer", float: "a number", str: "a string",
                list: "a [list]", dict: "a {mapping}"}.get(kind, kind.__name__)
    raise SystemExit(f"parameter {name} of {notebook}: {value!r} is not {expected} (its default is {default}); "
                     f"e.g. -p {name} {default}")


def notebook_parameters(parameters: dict, stages: list[str] | None = None, notebooks_dir: str | Path | None = None,
                        *, from_text: bool = False) -> dict[Path, dict]:
    """The notebooks that `stages` selects (all when None), each with the values of `parameters` it declares, read
    as the types of its declared defaults. Raises SystemExit naming a parameter that no selected notebook declares
    or a value that does not fit its type: the check `run_pipeline` makes before anything runs."""
    import papermill as pm

    everything = notebook_sequence(notebooks_dir)
    notebooks = everything
    if stages:
        notebooks = [nb for nb in everything if nb.name[:2] in stages or nb.stem in stages]
        if not notebooks:
            raise SystemExit(f"no notebook matches stages {stages}; have {[p.name for p in everything]}")
    declared = {nb: pm.inspect_notebook(str(nb)) for nb in notebooks}
    # a parameter no notebook declares (a typo such as -p domian_pair) would be dropped without a word
    known = {name for names in declared.values() for name in names}
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise SystemExit(f"no notebook of {[nb.name for nb in notebooks]} declares the parameter(s) {unknown}; "
                         f"the declared ones are {sorted(known)}")
    return {nb: {k: notebook_value(k, v, declared[nb][k]["default"], nb.name, from_text=from_text)
                 for k, v in parameters.items() if k in declared[nb]} for nb in notebooks}


def shown_parameters(params: dict) -> str:
    """How a notebook's parameters are printed: by `run_pipeline` before it runs, by `--check` instead of running."""
    return ", ".join(f"{k}={v!r}" for k, v in params.items()) or "defaults"


HEARTBEAT_S = 60.0   # how often a running notebook's entry in the timing record has its seconds refreshed


def record_entry(record: Path, entry: dict, index: int | None = None) -> int:
    """Append `entry` to the JSON list in `record` (made where absent), or put it in place of the entry at `index`;
    returns its index. A file that is not such a list is an error naming it, never overwritten. Written to a
    temporary file and renamed, so a run killed while writing leaves the record whole."""
    entries = []
    if record.is_file():
        entries = json.loads(record.read_text() or "[]")
        if not isinstance(entries, list):
            raise SystemExit(f"{record}: expected a JSON list of pipeline timing entries, found "
                             f"{type(entries).__name__}")
    if index is None:
        index = len(entries)
        entries.append(entry)
    else:
        entries[index] = entry
    record.parent.mkdir(parents=True, exist_ok=True)
    partial = record.with_name(record.name + ".partial")
    partial.write_text(json.dumps(entries, indent=1) + "\n")
    partial.replace(record)
    return index


@contextmanager
def recorded(record: Path | None, entry: dict):
    """Time the block as one entry of `record` (none where None). The entry is written at once with status
    "running", and its seconds are refreshed every HEARTBEAT_S, so a run killed outright keeps the time it had run
    (to within HEARTBEAT_S); at the end the status is "done", or what the block set in the yielded dict's "status"
    ("failed": the notebook's own error), or "stopped" (anything else that ended it: Ctrl-C, SIGTERM)."""
    outcome = {"status": "stopped"}
    if record is None:
        yield outcome
        return
    start = time.perf_counter()
    index = record_entry(record, {**entry, "seconds": 0.0, "status": "running"})
    beating = threading.Event()

    def write(status: str) -> None:
        record_entry(record, {**entry, "seconds": round(time.perf_counter() - start, 1), "status": status}, index)

    def beat() -> None:
        while not beating.wait(HEARTBEAT_S):
            write("running")
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield outcome
        outcome["status"] = "done"
    finally:
        beating.set()
        thread.join()
        write(outcome["status"])


def run_pipeline(output_dir: str | Path | None, parameters: dict | None = None, stages: list[str] | None = None,
                 in_place: bool = False, notebooks_dir: str | Path | None = None, *,
                 from_text: bool = False, record: str | Path | None = None) -> list[Path]:
    """Execute the numbered notebooks of `notebooks_dir` (default notebooks/) in order; returns the executed paths.
    Every parameter is checked against the type of each declared default before anything runs (from_text: the
    values are command-line texts, read as those types; see `notebook_value`). Raises SystemExit naming the
    parameter that does not fit, or the notebook and cell where one fails (the later ones are not run).
    `record`: a JSON list that gets one entry per notebook run (`recorded`), a failed or stopped one too."""
    import papermill as pm

    values = notebook_parameters(parameters or {}, stages, notebooks_dir, from_text=from_text)
    notebooks = list(values)
    out_dir = None if in_place else resolve(output_dir or "runs/default")
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    record = resolve(record) if record else None
    invocation = {"invoked": _utc_now(), "out": _shown_path(out_dir) if out_dir else "in place",
                  "machine": machine(), "commit": commit()}
    for i, nb in enumerate(notebooks, 1):
        params = values[nb]
        target = nb if in_place else out_dir / nb.name
        shown = shown_parameters(params)
        print(f"[{i}/{len(notebooks)}] {nb.name} ({shown}) ...", flush=True)
        start = time.perf_counter()
        with recorded(record, {**invocation, "notebook": nb.name, "parameters": params,
                               "started": _utc_now()}) as outcome:
            try:
                # the kernel's own log (a TCP-transport warning at each start) is held back; what the notebook's
                # code prints or warns still lands in the executed notebook
                pm.execute_notebook(str(nb), str(target), parameters=params, cwd=str(nb.parent),
                                    progress_bar=False, kernel_name="python3",
                                    extra_arguments=["--IPKernelApp.log_level=ERROR"])
            except pm.PapermillExecutionError as e:
                outcome["status"] = "failed"
                raise SystemExit(failure_message(nb.name, target, e)) from None
        print(f"[{i}/{len(notebooks)}] {nb.name} done in {time.perf_counter() - start:.1f} s -> {target}", flush=True)
        written.append(target)
    return written


def _shown_path(path: Path) -> str:
    """`path` relative to the project root where it lies inside it (a record committed from one checkout names no
    other checkout's folder)."""
    try:
        return str(path.relative_to(project_root().resolve()))
    except ValueError:
        return str(path)


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/default", help="folder for the executed notebooks")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a notebook parameter; VALUE is read as the type of the parameter's default (False, "
                         "3, 1e-3, a string), and as papermill reads -p where the default is None (null, [lists])")
    ap.add_argument("--stages", default="", help="comma-separated notebook numbers, e.g. 01,04 (default: all)")
    ap.add_argument("--in-place", action="store_true", help="execute the committed notebooks themselves")
    ap.add_argument("--record", default=None, help="a JSON file to append one timing entry per notebook run to")
    ap.add_argument("--check", action="store_true", help="check the parameters and print what each notebook would "
                                                         "get, without running anything")
    args = ap.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()] or None
    if args.check:
        for nb, params in notebook_parameters(dict(args.parameter), stages, from_text=True).items():
            print(f"{nb.name}: {shown_parameters(params)}")
        return 0
    # a kill's SIGTERM as an exception, so that the notebook it stopped is recorded with the time it ran
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run_pipeline(args.out, dict(args.parameter), stages, in_place=args.in_place, from_text=True, record=args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
