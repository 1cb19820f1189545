"""The worker pool ends its processes with the work: at once on an error or an interrupt in the caller, and by
itself when the caller's process dies (a killed notebook kernel), instead of finishing an hour-long task unseen."""
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llmemf_lite.workers import process_pool


def _nothing():
    pass


def _report_pid_then_sleep(path: str, seconds: float) -> None:
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)


def _wait_for(path: Path, timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    while not (path.is_file() and path.read_text()):
        assert time.monotonic() < deadline, f"no worker wrote {path}"
        time.sleep(0.05)
    return int(path.read_text())


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (an exited process whose parent has not reaped it yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads process states from /proc")
def test_an_error_in_the_caller_ends_the_workers_at_once(tmp_path):
    pid_file = tmp_path / "pid"
    with pytest.raises(KeyboardInterrupt):
        with process_pool(1, _nothing) as pool:
            pool.submit(_report_pid_then_sleep, str(pid_file), 120)
            pid = _wait_for(pid_file)
            began = time.monotonic()
            raise KeyboardInterrupt   # what a notebook's stop button raises in the kernel
    assert time.monotonic() - began < 15   # a plain executor waits out the task: 120 s
    assert not _running(pid)


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads process states from /proc")
def test_a_worker_exits_by_itself_when_its_parent_is_killed(tmp_path):
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(f"""
        import os, signal, time
        from pathlib import Path
        from llmemf_lite.workers import process_pool
        from tests.test_workers import _nothing, _report_pid_then_sleep
        if __name__ == "__main__":
            with process_pool(1, _nothing) as pool:
                pool.submit(_report_pid_then_sleep, {str(pid_file)!r}, 120)
                while not Path({str(pid_file)!r}).is_file():
                    time.sleep(0.05)
                os.kill(os.getpid(), signal.SIGKILL)
    """)
    parent = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert parent.returncode == -9
    pid = _wait_for(pid_file)
    deadline = time.monotonic() + 15
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(pid), "the orphaned worker went on with its task"


def test_a_pool_that_finishes_returns_every_result():
    with process_pool(2, _nothing) as pool:
        assert [f.result() for f in [pool.submit(pow, 2, k) for k in range(5)]] == [1, 2, 4, 8, 16]
