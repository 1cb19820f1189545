"""Reading the importers' text files line by line, so that a damaged copy is refused rather than read as less data.

What this file is: `text_lines` (the numbered lines of a plain or gzip-compressed UTF-8 file: bytes that are not
UTF-8, a gzip stream that ends early or a file that is not gzip at all, and optionally a last line without its
newline, are a `DataFormatError` naming the file and line) and `UniqueUsers` (a user listed twice in one file is an
error naming both lines). What it is not: a parser of any format (the importers).
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Iterator

from .errors import DataFormatError


def text_lines(path: Path, *, final_newline: bool = True, what: str = "a text file") -> Iterator[tuple[int, str]]:
    """(line number, text without the newline) of every line of `path` (.gz read as gzip), read lazily.
    final_newline=True: a last line without a newline is refused (a file cut mid-line): the release files all end
    with one."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found", expected=what)
    compressed = path.suffix == ".gz"
    n = 0
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            for n, raw in enumerate(f, 1):
                if final_newline and not raw.endswith(b"\n"):
                    raise DataFormatError(path, "the last line has no newline: the file looks cut short", line=n,
                                          expected="every line ending with a newline, as the published files do "
                                                   "(copy or download the file again)")
                try:
                    yield n, raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as e:
                    raise DataFormatError(path, f"byte {raw[e.start:e.start + 1]!r} at column {e.start + 1} is not "
                                          "UTF-8", line=n, expected=f"{what}, UTF-8 encoded") from None
    except EOFError:
        raise DataFormatError(path, f"the gzip stream ends early, after line {n}: the file is truncated", line=n + 1,
                              expected="a complete .gz file (download it again)") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        where = "" if n == 0 else f" after line {n}"
        raise DataFormatError(path, f"is not a readable gzip file{where} ({e})",
                              expected="a gzip-compressed file, as its .gz name says (an HTML page saved under the "
                                       "name? download it again)") from None


class UniqueUsers:
    """The users of one file, each at one line: `add(user, n)` refuses a user listed again."""

    def __init__(self, path: Path):
        self.path, self.first_line = path, {}

    def add(self, user: str, n: int) -> None:
        if user in self.first_line:
            raise DataFormatError(self.path, f"user {user!r} is listed again (first at line {self.first_line[user]})",
                                  line=n, expected="one line per user (a duplicated line would count the user twice)")
        self.first_line[user] = n
