"""Processes that work side by side on a CPU (experiment runs, enrichment batches): how many, and where their
messages go. Not in here: what they compute, nor the pools themselves (`experiment.py`, `enrich/enrich.py`)."""
from __future__ import annotations

import os


def process_count(requested: int, jobs: int, cap: int | None = None) -> int:
    """`requested` processes, or (0) one per CPU core, at most `cap`; never more than `jobs`, never fewer than 1."""
    cores = os.cpu_count() or 1
    return max(1, min(jobs, requested or min(cores, cap or cores)))


def send_output_to(log: str) -> None:
    """Point this process's stdout and stderr (warnings, library messages) at `log`, appended to: lines from several
    processes would otherwise land in a notebook's outputs in a different order each run. Errors still reach the
    caller through the pool, with their tracebacks."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)   # 1 and 2 now hold the file
