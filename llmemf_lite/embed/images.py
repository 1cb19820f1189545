"""Item pictures as model-ready batches: decoding and resizing run in DataLoader worker processes, so the main process
only runs the model.

What this file is: sorting item image locations into "a local file to read" and "missing" (no image, URL only), a
Dataset that decodes one file, and the DataLoader around it. A file that cannot be decoded (a truncated PNG, a text
file named .jpg, a missing file) comes back as a failure with its reason, never as an exception: the caller records
and counts it, and the item is treated as having no image. What it is not: fetching URLs (the download module does
that) or any model code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ImageInputs:
    """Which items have a local picture to embed, and why the others have none."""
    item_ids: np.ndarray                               # items with a local file to read
    paths: list[str]
    no_image: list[int] = field(default_factory=list)  # the dataset names no image
    url_only: list[int] = field(default_factory=list)  # only a URL: not fetched here, treated as missing

    def counts(self) -> dict:
        return {"local_file": len(self.paths), "no_image": len(self.no_image), "url_only": len(self.url_only)}


def image_inputs(ds) -> ImageInputs:
    ids, paths, none, urls = [], [], [], []
    for item in range(ds.space.n_items):
        loc = ds.image_location(item)
        if loc is None:
            none.append(item)
        elif "://" in loc:
            urls.append(item)
        else:
            ids.append(item)
            paths.append(loc)
    return ImageInputs(np.asarray(ids, dtype=np.int64), paths, none, urls)


def sample_image_sides(paths: list[str], n: int = 64) -> list[int]:
    """Longest side of up to `n` evenly spaced pictures (header only, no decoding); unreadable ones are skipped."""
    from PIL import Image

    picks = [paths[i] for i in np.unique(np.linspace(0, len(paths) - 1, num=min(n, len(paths))).astype(int))] \
        if paths else []
    sides = []
    for p in picks:
        try:
            with Image.open(p) as im:
                sides.append(max(im.size))
        except Exception:  # noqa: BLE001 - a bad file is found and recorded later, by the loader
            continue
    return sides


def fingerprint_files(paths: list[str]) -> list:
    """(size, mtime) per file, so an edited picture invalidates the cache; a missing file is (None, None)."""
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((st.st_size, int(st.st_mtime)))
        except OSError:
            out.append((None, None))
    return out


class ItemImageDataset:
    """Item i -> (item_id, pixels [3, H, W] or None, error text or "")."""

    def __init__(self, item_ids, paths: list[str], transform):
        self.item_ids, self.paths, self.transform = np.asarray(item_ids), list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        try:
            with Image.open(self.paths[i]) as im:
                im.load()  # decode the whole file now: a truncated PNG fails here, not somewhere later
                rgb = im.convert("RGB")
            return int(self.item_ids[i]), self.transform(rgb), ""
        except Exception as e:  # noqa: BLE001 - any undecodable file is a recorded, counted skip, never fatal
            return int(self.item_ids[i]), None, f"{type(e).__name__}: {e}"


def collate_images(batch):
    """-> (ids of decoded items, stacked pixels or None, [(item_id, error), ...] for the failures)."""
    import torch

    good = [(i, x) for i, x, err in batch if not err]
    failures = [(i, err) for i, _, err in batch if err]
    pixels = torch.stack([x for _, x in good]) if good else None
    return np.asarray([i for i, _ in good], dtype=np.int64), pixels, failures


def default_num_workers() -> int:
    # Leave at least one core to the model: on this 2-core machine that is one worker, whose decoding of a batch
    # costs a few per cent of the batch's forward pass.
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def image_loader(item_ids, paths: list[str], transform, batch_size: int, num_workers: int | None = None,
                 pin_memory: bool = False):
    """A DataLoader over item pictures, in the given order, decoding in `num_workers` processes (None: one per spare
    core; 0 decodes in this process)."""
    from torch.utils.data import DataLoader

    workers = default_num_workers() if num_workers is None else num_workers
    return DataLoader(ItemImageDataset(item_ids, paths, transform), batch_size=batch_size, shuffle=False,
                      num_workers=workers, collate_fn=collate_images, pin_memory=pin_memory,
                      prefetch_factor=2 if workers else None, persistent_workers=False)

