"""The one error type for bad input files: it always names the file, the line (where there is one) and what was
expected, so that a user can open the file and fix it."""
from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    def __init__(self, path: str | Path, problem: str, *, line: int | None = None, expected: str | None = None):
        self.path, self.line, self.problem, self.expected = str(path), line, problem, expected
        where = f"{path}, line {line}" if line is not None else f"{path}"
        msg = f"{where}: {problem}"
        if expected:
            msg += f" (expected {expected})"
        super().__init__(msg)
