"""`build_dataset`: the one call every notebook and test uses to get a canonical dataset, built once and cached.

The cache folder is keyed by what determines the content (the synthetic config, or the source folder's file
names, sizes and modification times), so a changed input rebuilds and an unchanged one loads in well under a second.
A folder is written under a temporary name and renamed when complete, so an interrupted build never looks finished.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from ..paths import SHARED_FOOD_KITCHEN, artifacts_dir, resolve
from .dataset import CrossDomainDataset
from .llmcdsr import import_llmcdsr
from .synthetic import SyntheticConfig, generate_synthetic

SOURCES = ("synthetic", "llmcdsr")


def _folder_fingerprint(folder: Path) -> list:
    return sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in folder.iterdir() if p.is_file())


def dataset_folder(domain_pair: str, source: str, data_dir: str | Path | None = None,
                   synthetic: SyntheticConfig | None = None) -> Path:
    if source == "synthetic":
        key = (synthetic or SyntheticConfig()).key()
    elif source == "llmcdsr":
        folder = resolve(data_dir or SHARED_FOOD_KITCHEN)
        key_src = json.dumps([str(folder), _folder_fingerprint(folder) if folder.is_dir() else None])
        key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    else:
        raise ValueError(f"unknown source {source!r}; choose one of {SOURCES}")
    return artifacts_dir() / "datasets" / f"{domain_pair}-{source}-{key}"


def build_dataset(domain_pair: str = "food_kitchen", source: str = "synthetic", data_dir: str | Path | None = None,
                  synthetic: SyntheticConfig | None = None, *, rebuild: bool = False) -> CrossDomainDataset:
    """Load the canonical dataset for (pair, source) from the cache, building it first if needed.

    source="synthetic": the embedded default world (`SyntheticConfig`); source="llmcdsr": an LLMCDSR release folder
    (`data_dir`, default ../shared/data/food-kitchen; relative paths are taken from the project root)."""
    folder = dataset_folder(domain_pair, source, data_dir, synthetic)
    if folder.is_dir() and not rebuild:
        return CrossDomainDataset.load(folder)
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    if source == "synthetic":
        ds = generate_synthetic(domain_pair, synthetic or SyntheticConfig(), image_dir=tmp / "images")
    else:
        ds = import_llmcdsr(resolve(data_dir or SHARED_FOOD_KITCHEN), domain_pair)
    ds.save(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return CrossDomainDataset.load(folder)


def save_card(ds: CrossDomainDataset) -> Path:
    """Write the dataset card to results/ as data: results/dataset_card_<pair>_<source>.json."""
    from ..paths import results_dir

    path = results_dir() / f"dataset_card_{ds.pair.name}_{ds.card['source']}.json"
    path.write_text(json.dumps(ds.card, indent=2) + "\n")
    return path
