"""Shared test fixtures. Tests never touch the network: HF_HUB_OFFLINE is forced here as well as in the Makefile."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from llmemf_lite.paths import SHARED_FOOD_KITCHEN, resolve  # noqa: E402

REAL_FOOD_KITCHEN = resolve(SHARED_FOOD_KITCHEN)


@pytest.fixture
def real_food_kitchen() -> Path:
    if not (REAL_FOOD_KITCHEN / "num.txt").is_file():
        pytest.skip(f"the real LLMCDSR Food-Kitchen data is not at {REAL_FOOD_KITCHEN} (expected ../shared beside "
                    "the checkout)")
    return REAL_FOOD_KITCHEN


@pytest.fixture
def artifacts(tmp_path, monkeypatch) -> Path:
    """An empty artefact cache for one test."""
    monkeypatch.setenv("LLMEMF_ARTIFACTS", str(tmp_path / "artifacts"))
    return tmp_path / "artifacts"
