"""Where and from what code a measurement was made: the CPU (model, family, vector extension, cores) and the commit.
Read by the benchmarks and by the pipeline's timing record (`pipeline.py --record`)."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from .paths import project_root


def machine() -> str:
    """The CPU's model, family and vector extension, and the core count ("AMD EPYC (family 25, AVX-512), 2 cores")."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.is_file() else []

    def field(key: str, default: str = "") -> str:
        return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(key)), default)
    flags = field("flags").split()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{field('model name', platform.processor())} (family {field('cpu family', '?')}, {vector}), " \
        f"{os.cpu_count()} cores"


MEASUREMENT_OUTPUTS = ("results", "figures")   # what measurements write: a change there is not a change of code


def commit(root: Path | None = None) -> str:
    """The checkout's commit, with "-dirty" where a tracked file outside MEASUREMENT_OUTPUTS differs from it, so a
    measurement made after another one (which wrote its JSON into results/) still records a clean commit."""
    root = root or project_root()

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    try:
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                      *(f":(exclude){folder}" for folder in MEASUREMENT_OUTPUTS))
        return git("rev-parse", "--short", "HEAD") + ("-dirty" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
