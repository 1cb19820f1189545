"""Where things live: the project root, the artefact cache, results/ and figures/.

Notebooks run with different working directories (papermill: where it was started; JupyterLab and nbval: the
notebook's folder), so every path here is anchored at the project root, never at the cwd. A relative path given by a
user (e.g. `data_dir="../shared/data/food-kitchen"`) is resolved against the project root too.
"""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """$LLMEMF_HOME if set; else the checkout that holds this package; else the current directory."""
    if os.environ.get("LLMEMF_HOME"):
        return Path(os.environ["LLMEMF_HOME"]).resolve()
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def resolve(path: str | Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else (project_root() / path).resolve()


def artifacts_dir() -> Path:
    """Caches of built artefacts (datasets, enrichments, embeddings, checkpoints); git-ignored, safe to delete."""
    return resolve(os.environ.get("LLMEMF_ARTIFACTS", "artifacts"))


def results_dir() -> Path:
    d = project_root() / "results"
    d.mkdir(exist_ok=True)
    return d


def figures_dir() -> Path:
    d = project_root() / "figures"
    d.mkdir(exist_ok=True)
    return d


SHARED_FOOD_KITCHEN = "../shared/data/food-kitchen"  # the real LLMCDSR Food-Kitchen release, beside the checkout
