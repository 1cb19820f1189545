#!/usr/bin/env python3
"""Create, once, and then reuse the project's Python environment. Standard library only; run with any Python 3.11.

Two layers, so that a fresh clone does not reinstall a 5.5 GB torch:
- a heavy *base* environment with every pinned dependency, shared by all clones on the machine, at
  $LLMEMF_ENV_HOME/base-<key> (default ~/.cache/llmemf-lite). <key> hashes the Python version, the machine and the
  dependency lists of pyproject.toml, so a changed pin builds a new base and an unchanged one is reused as it is;
- a thin per-clone `.venv` (made in well under a second) that sees the base's packages through a .pth file, puts
  this clone on sys.path, and carries the base's console scripts (pytest, papermill, jupyter, ...) re-pointed at its
  own interpreter, so kernels and tools started from it import this clone's `llmemf_lite`.
A base is marked complete only after every install succeeded; an interrupted build is redone from scratch.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETUP_VERSION = "1"  # bump when this script changes what it builds


def requirements() -> tuple[list[str], list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return project["project"]["dependencies"], project["tool"]["llmemf-lite"]["no-deps"]


def base_key(deps: list[str], no_deps: list[str]) -> str:
    ident = {"python": platform.python_version(), "machine": platform.machine(), "deps": sorted(deps),
             "no_deps": sorted(no_deps), "setup": SETUP_VERSION}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def ensure_base(deps: list[str], no_deps: list[str]) -> Path:
    home = Path(os.environ.get("LLMEMF_ENV_HOME", Path.home() / ".cache" / "llmemf-lite"))
    base = home / f"base-{base_key(deps, no_deps)}"
    marker = base / "llmemf-complete.json"
    if marker.is_file():
        return base
    print(f"building the base environment at {base} (once per machine and dependency set; torch is large)")
    shutil.rmtree(base, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "venv", str(base)])
    pip = [str(base / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    run(pip + deps)
    run(pip + ["--no-deps"] + no_deps)
    marker.write_text(json.dumps({"deps": deps, "no_deps": no_deps}, indent=1))
    return base


def site_packages(env: Path) -> Path:
    return env / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def ensure_thin_venv(base: Path) -> Path:
    venv = ROOT / ".venv"
    marker = venv / "llmemf-base.txt"
    if marker.is_file() and marker.read_text().strip() == str(base) and (venv / "bin" / "python").exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    run([str(base / "bin" / "python"), "-m", "venv", "--without-pip", str(venv)])
    sp = site_packages(venv)
    # addsitedir (not a bare path) so that the base's own .pth files are processed too.
    (sp / "_llmemf_base.pth").write_text(f"import site; site.addsitedir({str(site_packages(base))!r})\n")
    (sp / "_llmemf_repo.pth").write_text(f"{ROOT}\n")
    # Jupyter finds its data (lab assets, kernelspecs) and config under sys.prefix.
    for sub in ("share", "etc"):
        if (base / sub).exists() and not (venv / sub).exists():
            (venv / sub).symlink_to(base / sub)
    python = venv / "bin" / "python"
    for script in (base / "bin").iterdir():
        target = venv / "bin" / script.name
        if target.exists() or not script.is_file():
            continue
        with open(script, "rb") as f:
            first = f.readline()
        if first.startswith(b"#!") and b"python" in first and str(base).encode() in first:
            target.write_bytes(b"#!" + str(python).encode() + b"\n" + script.read_bytes().split(b"\n", 1)[1])
            target.chmod(0o755)
    marker.write_text(f"{base}\n")
    return venv


def main() -> int:
    if sys.version_info[:2] != (3, 11):
        print(f"llmemf-lite needs Python 3.11 (torch 2.14.1 wheels); this is {platform.python_version()}",
              file=sys.stderr)
        return 2
    deps, no_deps = requirements()
    base = ensure_base(deps, no_deps)
    venv = ensure_thin_venv(base)
    print(f"environment ready: {venv} -> {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
