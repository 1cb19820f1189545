"""Fetch item images into a dataset folder: concurrent (bounded), resumable, failures recorded and never fatal.

What this file is: `fetch_item_images(ds)` downloads the picture of every item whose `image` is a URL into
`<dataset folder>/images/<domain>/<source_id>.<ext>`, checks that what came back is an image (Pillow opens and
verifies it), and points the item's `image` column at the file (a path relative to the folder, so
`ds.image_location(item_id)` finds it). The on-disk cache is keyed by item (domain + source id, stable across
rebuilds): a second run fetches only what is missing. A missing (HTTP error), broken or non-image response is
recorded in the dataset card (`card["images"]`, and `card["skipped"]["images not fetched"]`) and the item keeps its URL,
so a later run tries it again. What it is not: a general downloader (`download.py`: one large file, resume by Range).
"""
from __future__ import annotations

import io
import os
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .dataset import CrossDomainDataset

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp"}


@dataclass(frozen=True)
class ImageFetchConfig:
    workers: int = 8               # concurrent requests at most (be polite to the image host)
    timeout_s: float = 20.0        # per request
    max_bytes: int = 10 * 2 ** 20  # a bigger response is refused (a product photo is well below this)
    subfolder: str = "images"
    user_agent: str = "llmemf-lite image fetcher"


def _is_url(value) -> bool:
    return isinstance(value, str) and "://" in value


def _cache_stem(domain: str, source_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{source_id}") or "item"


def _cached(folder: Path, stem: str) -> Path | None:
    for ext in EXTENSIONS.values():
        path = folder / f"{stem}.{ext}"
        if path.is_file() and path.stat().st_size > 0:
            return path
    return None


def _fetch_one(url: str, target_stem: Path, config: ImageFetchConfig) -> tuple[Path | None, str | None]:
    """Download and verify one image; return (written path, None) or (None, why it failed)."""
    from PIL import Image, UnidentifiedImageError

    request = urllib.request.Request(url, headers={"User-Agent": config.user_agent})
    try:
        with urllib.request.urlopen(request, timeout=config.timeout_s) as response:
            data = response.read(config.max_bytes + 1)
            content_type = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return None, f"HTTP {e.code} {e.reason}"
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as e:
        return None, f"request failed: {getattr(e, 'reason', e)}"
    if len(data) > config.max_bytes:
        return None, f"larger than {config.max_bytes} bytes"
    if not data:
        return None, "empty response"
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            img.verify()  # checks the file's structure without decoding every pixel
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        kind = f" ({content_type})" if content_type and not content_type.startswith("image/") else ""
        return None, f"not a readable image{kind}: {type(e).__name__}"
    ext = EXTENSIONS.get(fmt or "", "img")
    path = target_stem.with_name(f"{target_stem.name}.{ext}")
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # a cached file is always complete
    return path, None


def fetch_item_images(ds: CrossDomainDataset, config: ImageFetchConfig = ImageFetchConfig(), *,
                      progress: bool = True, save: bool = True) -> dict:
    """Fetch the images of `ds`'s items into its folder; update `ds.items["image"]` and `ds.card`; save the dataset
    (unless save=False). Returns the summary: fetched, cached, failed, without_url."""
    from tqdm.auto import tqdm

    if ds.folder is None:
        raise ValueError("the dataset has no folder; save it first (images land in <folder>/images)")
    root = Path(ds.folder)
    images = ds.items["image"].tolist()
    summary = {"fetched": 0, "cached": 0, "failed": 0, "without_url": 0}
    failures, jobs = [], []
    for item_id, (value, domain, source_id) in enumerate(zip(images, ds.items["domain"], ds.items["source_id"])):
        folder = root / config.subfolder / str(domain)
        stem = _cache_stem(str(domain), str(source_id))
        cached = _cached(folder, stem)
        if cached is not None:  # resumable: a file fetched by an earlier run (or this item's path already)
            images[item_id] = cached.relative_to(root).as_posix()
            summary["cached"] += 1
        elif _is_url(value):
            folder.mkdir(parents=True, exist_ok=True)
            jobs.append((item_id, value, folder / stem))
        elif value is None or (isinstance(value, float)) or value == "":
            summary["without_url"] += 1
        else:  # already a local path that is not in our cache folder
            summary["cached"] += 1
    with ThreadPoolExecutor(max_workers=max(1, config.workers)) as pool:
        futures = {pool.submit(_fetch_one, url, stem, config): (item_id, url) for item_id, url, stem in jobs}
        for future in tqdm(as_completed(futures), total=len(futures), desc="item images", unit=" images",
                           disable=not progress):
            item_id, url = futures[future]
            path, error = future.result()
            if path is None:
                summary["failed"] += 1
                failures.append({"item_id": item_id, "source_id": str(ds.items["source_id"].iat[item_id]),
                                 "url": url, "reason": error})
            else:
                images[item_id] = path.relative_to(root).as_posix()
                summary["fetched"] += 1
    ds.items["image"] = images
    failures.sort(key=lambda f: f["item_id"])
    ds.card["images"] = {**summary, "folder": config.subfolder, "failures": failures[:200]}
    skipped = ds.card.setdefault("skipped", {})
    skipped.pop("images not fetched", None)
    if failures:
        reasons: dict[str, int] = {}
        for f in failures:
            reasons[f["reason"]] = reasons.get(f["reason"], 0) + 1
        skipped["images not fetched"] = {"reason": "missing, broken or non-image responses (the item keeps its URL; "
                                                   "run again to retry)", "unit": "items", "count": len(failures),
                                         "by_reason": reasons, "items": [f["item_id"] for f in failures[:50]]}
    ds.card.setdefault("coverage", {}).update(
        {f"images_local_{d}": round(float(sum(1 for v, dom in zip(images, ds.items["domain"])
                                              if dom == d and isinstance(v, str) and not _is_url(v))
                                          / max(1, int((ds.items["domain"] == d).sum()))), 4)
         for d in ds.pair.domains})
    if save:
        ds.save(root)
    return summary


def format_summary(summary: dict) -> str:
    return (f"images: {summary['fetched']} fetched, {summary['cached']} already cached, {summary['failed']} failed, "
            f"{summary['without_url']} without URL")
