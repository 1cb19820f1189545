"""Processes that work side by side on a CPU (experiment runs, enrichment batches): how many, and where their
messages go, and the pool that ends them with the work. Not in here: what they compute (`experiment.py`,
`enrich/enrich.py`)."""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager


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


@contextmanager
def process_pool(workers: int, initializer, initargs: tuple = ()):
    """A ProcessPoolExecutor (spawn) whose processes end with the work that asked for them. An error or an
    interrupt in the caller (a notebook's stop button) terminates them at once instead of waiting for their current
    task, which can be an hour-long training run; a process whose parent died (a killed kernel) exits within a
    second instead of finishing its task unseen. What an ended task leaves is what any stopped run leaves: its last
    checkpoint and the cache, from which the next run resumes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
                               initargs=(os.getpid(), initializer, initargs))
    try:
        yield pool
    except BaseException:   # GeneratorExit too: a caller that stops reading a generator holding the pool
        processes = list((getattr(pool, "_processes", None) or {}).values())   # the executor has no public list
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(10)
        raise
    pool.shutdown(wait=True)


def _start(parent: int, initializer, initargs: tuple) -> None:
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="exit-with-parent").start()
    initializer(*initargs)


def _exit_with_parent(parent: int, interval_s: float = 0.5) -> None:
    while os.getppid() == parent:
        time.sleep(interval_s)
    os._exit(1)
