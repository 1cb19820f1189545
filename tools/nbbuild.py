"""Notebook files as they are committed.

    python tools/nbbuild.py clean notebooks/*.ipynb   # after `make notebooks`: strip what an execution leaves behind

`write_notebook` writes a notebook from a compact cell list (`cell("md", text)`, `cell("code", text, tags)`); it was
used once to create each skeleton, whose outputs `make notebooks` then fills in; the .ipynb files are the source of
truth. `clean_notebook` keeps a committed notebook free of what papermill records of one execution (its temporary
input and output paths, the start and end time of every cell), which would change with every run and mean nothing
to a reader, and gives it the kernelspec of the installed kernel, so that JupyterLab does not rewrite the metadata
on opening (and show the notebook as unsaved).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

# ipykernel's own kernelspec, as `jupyter kernelspec` installs it (tests/test_report.py checks it against the
# installed kernel)
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def cell(kind: str, text: str, tags: tuple[str, ...] = ()) -> dict:
    lines = text.strip("\n").splitlines(keepends=True)
    base = {"metadata": {"tags": list(tags)} if tags else {}, "source": lines}
    if kind == "md":
        return {"cell_type": "markdown", **base}
    return {"cell_type": "code", "execution_count": None, "outputs": [], **base}


def write_notebook(path: str | Path, cells: list[dict]) -> None:
    nb = {"cells": cells, "metadata": {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    for i, c in enumerate(cells):
        c["id"] = f"c{i:02d}"
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def clean(nb: dict) -> dict:
    """`nb` without papermill's run record and the per-cell timings, with the installed kernel's kernelspec."""
    nb["metadata"].pop("papermill", None)
    nb["metadata"]["kernelspec"] = dict(KERNELSPEC)
    for c in nb["cells"]:
        for key in ("papermill", "execution"):
            c.get("metadata", {}).pop(key, None)
    return nb


def clean_notebook(path: str | Path) -> bool:
    """Clean one notebook file in place (see `clean`); returns whether it changed. Written by nbformat, as Jupyter
    and papermill write it, so a clean notebook's diff shows only what changed."""
    import nbformat

    path = Path(path)
    text = path.read_text()
    fresh = nbformat.writes(clean(nbformat.reads(text, as_version=4)))
    if fresh == text:
        return False
    path.write_text(fresh)
    return True


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "clean":
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    for name in argv[1:]:
        if clean_notebook(name):
            print(f"cleaned {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
