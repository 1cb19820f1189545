"""The embedding cache: one folder per (dataset, modality, encoder, model, weights, inputs) key, resumable.

Layout of a folder (under `artifacts/embeddings/<dataset>/`, git-ignored):
    vectors.npy     float32 [n_items, dim], L2-normalised rows, zero rows where the item lacks the modality
    mask.npy        bool [n_items]
    manifest.json   the key, the key's fields in words, coverage, skips and their reasons; written last, so a folder
                    without it is unfinished
    parts/          while computing: part-NNNNN.npz files (item ids, vectors, ok flags) written atomically every
                    chunk; a re-run loads them and computes only the rest; removed once the folder is complete.

What this file is: the key, the folder, reading and writing. What it is not: deciding what to compute (embed.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from ..data.errors import DataFormatError
from ..paths import artifacts_dir

FORMAT_VERSION = 1


def cache_key(fields: dict) -> str:
    """A stable hash of the fields that decide the vectors (sorted JSON, so dict order does not matter)."""
    text = json.dumps({"format": FORMAT_VERSION, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sha256_of(values) -> str:
    return hashlib.sha256(json.dumps(values, default=str).encode()).hexdigest()


def cache_folder(dataset_name: str, modality: str, encoder: str, model: str, key: str) -> Path:
    safe = lambda s: "".join(c if c.isalnum() or c in "-_." else "-" for c in s)  # noqa: E731
    return artifacts_dir() / "embeddings" / safe(dataset_name) / f"{modality}-{safe(encoder)}-{safe(model)}-{key}"


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save given a name would append ".npy" to the temporary name
        np.save(f, array)


def _atomic_write(path: Path, write) -> None:
    # write to a temporary name, then rename: an interrupted run never leaves a half-written file under the real name
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def _load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataFormatError(path, f"not a readable array ({e}); delete the folder {path.parent} to compute the "
                              f"embeddings again", expected="a .npy file written by EmbeddingCache.save") from None


class EmbeddingCache:
    def __init__(self, folder: Path, key: str):
        self.folder, self.key = Path(folder), key
        self.parts = self.folder / "parts"

    # -- finished folders -------------------------------------------------------------------------------------------
    def load(self) -> tuple[np.ndarray, np.ndarray, dict] | None:
        """(vectors, mask, manifest) when the folder is complete and its manifest has this key; else None."""
        manifest_path = self.folder / "manifest.json"
        if not manifest_path.is_file():
            return None
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("key") != self.key:
            return None
        vectors, mask = _load_array(self.folder / "vectors.npy"), _load_array(self.folder / "mask.npy")
        n = manifest["coverage"]["items"]
        if vectors.shape != (n, manifest["dim"]) or mask.shape != (n,):
            raise ValueError(f"{self.folder}: vectors {vectors.shape} / mask {mask.shape} do not match the manifest "
                             f"({n} items, dim {manifest['dim']}); delete the folder to recompute")
        return vectors, mask, manifest

    def save(self, vectors: np.ndarray, mask: np.ndarray, manifest: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.folder / "vectors.npy", lambda p: _save_npy(p, vectors.astype(np.float32)))
        _atomic_write(self.folder / "mask.npy", lambda p: _save_npy(p, mask.astype(bool)))
        text = json.dumps({**manifest, "key": self.key}, indent=2, default=str) + "\n"
        _atomic_write(self.folder / "manifest.json", lambda p: p.write_text(text))
        shutil.rmtree(self.parts, ignore_errors=True)

    # -- parts of an unfinished run ---------------------------------------------------------------------------------
    def load_parts(self) -> dict:
        """What earlier, interrupted runs finished: {"ids", "vectors", "ok", "failures": [(id, error), ...]}."""
        ids, vecs, ok, failures = [], [], [], []
        key_file = self.parts / "key.txt"
        if key_file.is_file() and key_file.read_text().strip() == self.key:
            for f in sorted(self.parts.glob("part-*.npz")):
                try:
                    with np.load(f, allow_pickle=False) as z:
                        part = z["ids"], z["vectors"], z["ok"], z["failed_ids"], z["failed_errors"]
                except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
                    raise DataFormatError(f, f"not a readable part of an interrupted embedding run ({e}); delete "
                                          f"it and its items are embedded again", expected="an .npz file written "
                                          "by EmbeddingCache.write_part") from None
                ids.append(part[0]), vecs.append(part[1]), ok.append(part[2])
                failures += [(int(i), str(e)) for i, e in zip(part[3], part[4])]
        if not ids:
            return {"ids": np.zeros(0, np.int64), "vectors": None, "ok": np.zeros(0, bool), "failures": failures}
        return {"ids": np.concatenate(ids), "vectors": np.concatenate(vecs), "ok": np.concatenate(ok),
                "failures": failures}

    def write_part(self, ids: np.ndarray, vectors: np.ndarray, ok: np.ndarray,
                   failures: list[tuple[int, str]]) -> None:
        self.parts.mkdir(parents=True, exist_ok=True)
        key_file = self.parts / "key.txt"
        if not key_file.is_file() or key_file.read_text().strip() != self.key:
            for stale in self.parts.glob("part-*.npz"):
                stale.unlink()
            key_file.write_text(self.key + "\n")
        n = len(list(self.parts.glob("part-*.npz")))
        failed_ids = np.asarray([i for i, _ in failures], dtype=np.int64)
        failed_errors = np.asarray([e for _, e in failures], dtype=str) if failures else np.zeros(0, dtype="<U1")

        def write(p: Path):
            with open(p, "wb") as f:
                np.savez(f, ids=np.asarray(ids, np.int64), vectors=np.asarray(vectors, np.float32),
                         ok=np.asarray(ok, bool), failed_ids=failed_ids, failed_errors=failed_errors)
        _atomic_write(self.parts / f"part-{n:05d}.npz", write)
