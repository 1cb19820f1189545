"""`build_dataset`: the one call every notebook and test uses to get a canonical dataset, built once and cached.

The cache folder is keyed by what determines the content (the synthetic config, or the source files' names, sizes
and SHA-256 plus the importer's parameters), so a changed input rebuilds and an unchanged one loads in well under a
second, and the same files give the same folder on every machine: a fresh copy of the data (new modification
times) or another checkout location does not orphan the caches and checkpoints keyed by it. Each file's hash is
memoised by (path, size, modification time) in `artifacts/datasets/file_hashes.json`, so a multi-GB dump is read
once. A folder is written under a temporary name and renamed when complete, so an interrupted build
never looks finished.

Sources: "synthetic" (the embedded default), "llmcdsr" (the LLMCDSR release), "amazon" (raw Amazon reviews +
metadata, `amazon.py`), "c2dsr" (the C2DSR release, `c2dsr.py`), "recbole" (RecBole atomic files, `recbole.py`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

from ..paths import SHARED_FOOD_KITCHEN, artifacts_dir, resolve
from .dataset import CrossDomainDataset
from .download import default_amazon_dir, sha256_of
from .llmcdsr import import_llmcdsr
from .synthetic import SyntheticConfig, generate_synthetic

SOURCES = ("synthetic", "llmcdsr", "amazon", "c2dsr", "recbole")
RECBOLE_PARAMS = ("dataset", "x_dataset", "y_dataset")


def _content_fingerprint(files: list[Path], names: list[str]) -> list:
    """(name, bytes, SHA-256) per file, sorted by name: what a source's content key is made of. Each hash is
    memoised by (absolute path, size, mtime_ns) in artifacts/datasets/file_hashes.json: unchanged files are not read
    again."""
    memo_path = artifacts_dir() / "datasets" / "file_hashes.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    rows, changed = [], False
    for f, name in zip(files, names):
        st, where = f.stat(), str(f.resolve())
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
        if memo.get(where, [None])[0] != stamp:
            memo[where], changed = [stamp, sha256_of(f)], True
        rows.append((name, st.st_size, memo[where][1]))
    if changed:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo, indent=0, sort_keys=True))
        tmp.replace(memo_path)   # atomic; processes building side by side at worst hash a file twice
    return sorted(rows)


def _folder_fingerprint(folder: Path) -> list:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    return _content_fingerprint(files, [p.name for p in files])


def _tree_fingerprint(folder: Path, name_filter=None) -> list:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and (name_filter is None or name_filter(p.name)))
    return _content_fingerprint(files, [str(p.relative_to(folder)) for p in files])


def source_options(source: str, params: dict, amazon=None, split=None) -> dict:
    """Route keyword parameters to the source's configs: AmazonConfig fields, SplitConfig fields (amazon and
    recbole), and recbole's dataset names. None values mean "the default"; lists become tuples (papermill passes
    lists). A name that no source takes is an error; one that only another source takes is ignored."""
    from .amazon import AmazonConfig
    from .splits import SplitConfig

    params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items() if v is not None}
    amazon_fields = {f.name for f in dataclasses.fields(AmazonConfig)}
    split_fields = {f.name for f in dataclasses.fields(SplitConfig)}
    every = amazon_fields | split_fields | set(RECBOLE_PARAMS)
    unknown = sorted(set(params) - every)
    if unknown:  # a name no source takes is a typo; one that another source takes is ignored (notebooks pass all)
        raise TypeError(f"unknown dataset parameter(s) {unknown}; sources take {sorted(every)}")
    if "release" in params:  # `-p release 2014` arrives as an int from papermill and the pipeline
        params["release"] = str(params["release"])
    for name in ("review_files", "meta_files"):  # relative paths are taken from the project root, like data_dir
        if name in params:
            params[name] = tuple(str(resolve(p)) for p in params[name])
    options: dict = {}
    if source in ("amazon", "recbole"):
        options["split"] = dataclasses.replace(split or SplitConfig(),
                                               **{k: v for k, v in params.items() if k in split_fields})
    if source == "amazon":
        options["amazon"] = dataclasses.replace(amazon or AmazonConfig(),
                                                **{k: v for k, v in params.items() if k in amazon_fields})
    if source == "recbole":
        options.update({k: v for k, v in params.items() if k in RECBOLE_PARAMS})
    return options


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()[:12]


def dataset_folder(domain_pair: str, source: str, data_dir: str | Path | None = None,
                   synthetic: SyntheticConfig | None = None, **params) -> Path:
    source_options(source, params)  # a misspelt parameter fails here, whatever the source
    if source == "synthetic":
        key = (synthetic or SyntheticConfig()).key()
    elif source == "llmcdsr":
        folder = resolve(data_dir or SHARED_FOOD_KITCHEN)
        # the content alone (no path): where the release sits, and when it was copied there, do not matter;
        # a missing folder keys on its path and fails when built, naming it
        key_src = json.dumps(_folder_fingerprint(folder) if folder.is_dir() else str(folder))
        key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    elif source in ("amazon", "c2dsr", "recbole"):
        options = source_options(source, params)
        folder = _data_dir(source, data_dir)
        fingerprint = None
        if source == "amazon":
            cfg = options["amazon"]
            from ..pairs import get_pair

            categories = cfg.categories or get_pair(domain_pair).amazon_categories
            explicit = [resolve(p) for p in (cfg.review_files or ()) + (cfg.meta_files or ())]
            present = [p for p in explicit if p.is_file()]
            fingerprint = _content_fingerprint(present, [p.name for p in present])
            if folder.is_dir() and not explicit:
                fingerprint = _tree_fingerprint(folder, lambda n: any(c in n for c in categories)
                                                and not n.endswith((".part", ".part.validators")))
        elif folder.is_dir():
            fingerprint = _tree_fingerprint(folder)
        settings = {k: (dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v) for k, v in options.items()}
        key = _key(fingerprint if fingerprint else str(folder), settings)
    else:
        raise ValueError(f"unknown source {source!r}; choose one of {SOURCES}")
    return artifacts_dir() / "datasets" / f"{domain_pair}-{source}-{key}"


def _data_dir(source: str, data_dir: str | Path | None) -> Path:
    if data_dir is not None:
        return resolve(data_dir)
    if source == "amazon":
        return default_amazon_dir()
    raise ValueError(f"source {source!r} needs data_dir: the folder that holds its files")


def build_dataset(domain_pair: str = "food_kitchen", source: str = "synthetic", data_dir: str | Path | None = None,
                  synthetic: SyntheticConfig | None = None, *, rebuild: bool = False, fetch_images: bool = False,
                  progress: bool = True, **params) -> CrossDomainDataset:
    """Load the canonical dataset for (pair, source) from the cache, building it first if needed.

    source="synthetic": the embedded default world (`SyntheticConfig`); source="llmcdsr": an LLMCDSR release folder
    (`data_dir`, default ../shared/data/food-kitchen; relative paths are taken from the project root);
    source="amazon": raw Amazon files in `data_dir` (default artifacts/raw/amazon) with `AmazonConfig` and
    `SplitConfig` fields as keywords (categories, release, k_core, split_protocol, ...); source="c2dsr": a C2DSR
    release folder; source="recbole": RecBole atomic files (keywords dataset / x_dataset, y_dataset and the
    `SplitConfig` fields). fetch_images=True (amazon, recbole) downloads item images into the dataset folder
    (`images.fetch_item_images`): resumable, failures recorded in the card."""
    folder = dataset_folder(domain_pair, source, data_dir, synthetic, **params)
    if not (folder.is_dir() and not rebuild):
        tmp = folder.with_name(folder.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        if source == "synthetic":
            ds = generate_synthetic(domain_pair, synthetic or SyntheticConfig(), image_dir=tmp / "images")
        elif source == "llmcdsr":
            ds = import_llmcdsr(resolve(data_dir or SHARED_FOOD_KITCHEN), domain_pair)
        else:
            ds = _import_other(source, domain_pair, _data_dir(source, data_dir), source_options(source, params),
                               progress)
        ds.save(tmp)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    ds = CrossDomainDataset.load(folder)
    if fetch_images and ds.items["image"].map(lambda v: isinstance(v, str) and "://" in v).any():
        from .images import fetch_item_images, format_summary

        summary = fetch_item_images(ds, progress=progress)
        if progress:
            print(format_summary(summary))
    return ds


def _import_other(source: str, domain_pair: str, data_dir: Path, options: dict, progress: bool) -> CrossDomainDataset:
    if source == "amazon":
        from .amazon import import_amazon

        return import_amazon(data_dir, domain_pair, options["amazon"], options["split"], progress=progress)
    if source == "c2dsr":
        from .c2dsr import import_c2dsr

        return import_c2dsr(data_dir, domain_pair)
    from .recbole import import_recbole

    return import_recbole(data_dir, domain_pair, **options)


def save_card(ds: CrossDomainDataset) -> Path:
    """Write the dataset card to results/ as data: results/dataset_card_<pair>_<source>.json."""
    from ..paths import results_dir

    path = results_dir() / f"dataset_card_{ds.pair.name}_{ds.card['source']}.json"
    path.write_text(json.dumps(ds.card, indent=2) + "\n")
    return path
