"""Write a notebook from a compact cell list: `cell("md", text)`, `cell("code", text, tags)`. Used once to create
each notebook skeleton (outputs are then filled in by `make notebooks`); the .ipynb files are the source of truth."""
from __future__ import annotations

import json
from pathlib import Path


def cell(kind: str, text: str, tags: tuple[str, ...] = ()) -> dict:
    lines = text.strip("\n").splitlines(keepends=True)
    base = {"metadata": {"tags": list(tags)} if tags else {}, "source": lines}
    if kind == "md":
        return {"cell_type": "markdown", **base}
    return {"cell_type": "code", "execution_count": None, "outputs": [], **base}


def write_notebook(path: str | Path, cells: list[dict]) -> None:
    nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                      "name": "python3"},
                                       "language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    for i, c in enumerate(cells):
        c["id"] = f"c{i:02d}"
    Path(path).write_text(json.dumps(nb, indent=1) + "\n")
