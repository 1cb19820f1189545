"""A resumable, verified file downloader (standard library only), and where the raw Amazon files live.

What this file is: `download(url, dest)` fetches into `dest.part`, resumes an interrupted transfer with an HTTP Range
request, checks the size the server announced (and an expected size / SHA-256 when given), and renames the finished
file into place atomically, so a file at `dest` is always complete. `amazon_urls` / `download_amazon` name the
public Amazon review files of the 2014 and 2018 releases. What it is not: a parser of what it downloads
(`amazon.py`) or an image fetcher (`images.py`, many small files, failures tolerated).

    python -m llmemf_lite.data.download --pair movie_book --release 2014   # -> artifacts/raw/amazon

Failures are errors that say what happened and what to do: a 404 names the URL; a transfer that ends early keeps
its `.part` file (run again to resume, with If-Range, so that a file changed on the server starts over instead of
being stitched from two versions); a size or checksum mismatch, a .gz file that is not a complete gzip stream, and
an HTML page where the file was expected are errors, and the bad file is deleted.

This module also holds the Amazon release catalogue (categories, file names, URLs, the default folder), and imports
nothing of the package above `paths` and `errors`: the importers and `build` use it, never the other way round.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..paths import artifacts_dir
from .errors import DataFormatError

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download that cannot complete: names the URL (and the local file) and what to do next. `retryable` says
    whether trying again can help (an interrupted transfer) or not (HTTP 404, a checksum mismatch)."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class DownloadConfig:
    timeout_s: float = 60.0     # per socket operation, not for the whole file
    attempts: int = 3           # transfers that end early are resumed up to this many times in one call
    retry_wait_s: float = 2.0   # pause between attempts (doubles each time)
    chunk_bytes: int = CHUNK


def sha256_of(path: str | Path, chunk: int = CHUNK) -> str:
    """SHA-256 of a file, read in chunks (multi-GB files never sit in memory whole)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_provenance(path: str | Path) -> dict:
    path = Path(path)
    return {"bytes": path.stat().st_size, "sha256": sha256_of(path)}


def _total_from_headers(response, offset: int) -> int | None:
    """The full file size the server announces: from Content-Range on a 206, from Content-Length on a 200."""
    content_range = response.headers.get("Content-Range")
    if content_range:
        m = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", content_range)
        if m and m.group(3) != "*":
            return int(m.group(3))
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit():
        return int(length) + (offset if response.status == 206 else 0)
    return None


def _validators(headers) -> dict:
    """What identifies the version of a file a server sends: its ETag and Last-Modified headers."""
    return {k: headers.get(h) for k, h in (("etag", "ETag"), ("last_modified", "Last-Modified")) if headers.get(h)}


def _if_range(known: dict) -> str | None:
    """The If-Range value for a resume: a strong ETag, else the Last-Modified date (a weak ETag is not allowed)."""
    etag = known.get("etag")
    return etag if etag and not etag.startswith("W/") else known.get("last_modified")


def _record_of(part: Path) -> Path:
    return part.with_name(part.name + ".validators")


def _restart(part: Path) -> None:
    part.unlink(missing_ok=True)
    _record_of(part).unlink(missing_ok=True)


def _attempt(url: str, part: Path, config: DownloadConfig, progress: bool) -> int | None:
    """One request: resume from the .part file's size; return the announced total size (None if unknown).
    Raises DownloadError on HTTP errors, and on a transfer that ends before the announced size.

    A resume asks with If-Range for the version the .part file holds (its ETag or Last-Modified, recorded beside it
    in `<part>.validators` by the first response); a server whose file has changed answers with all of the new one
    (200), and the transfer starts over. A .part file without a record, or a 206 for another version (a server
    that ignores If-Range), is never continued: it starts over too, so a file is never stitched from two versions."""
    record = _record_of(part)
    offset = part.stat().st_size if part.exists() else 0
    known = {}
    if offset:
        try:
            known = json.loads(record.read_text())
        except (OSError, ValueError):
            known = {}
        if known.get("url") != url or not _if_range(known):  # nothing proves the .part is of this file
            _restart(part)
            offset, known = 0, {}
    headers = {"Range": f"bytes={offset}-", "If-Range": _if_range(known)} if offset else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=config.timeout_s)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing left to send: the .part file already holds the whole file
            total = None
            m = re.match(r"bytes\s+\*/(\d+)", e.headers.get("Content-Range", "") or "")
            if m:
                total = int(m.group(1))
            return total if total is not None else offset
        hint = " (the file is not at this address: check the URL or the mirror)" if e.code == 404 else ""
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}{hint}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise DownloadError(f"{url}: cannot connect ({e}); run again to resume {part}", retryable=True) from None
    with response:
        content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type == "text/html" and not part.name.removesuffix(".part").endswith((".html", ".htm")):
            raise DownloadError(f"{url}: the server sent an HTML page (Content-Type {content_type}), not the file; "
                                f"where a site asks for a form first, download the file in a browser into "
                                f"{part.parent}")
        current = _validators(response.headers)
        if offset and response.status == 206:
            m = re.match(r"bytes\s+(\d+)-", response.headers.get("Content-Range") or "")
            same = all(current.get(k) == v for k, v in known.items() if k in current and k != "url")
            if not m or int(m.group(1)) != offset or not same:
                _restart(part)
                raise DownloadError(f"{url}: the server sent part of another version of the file than the one "
                                    f"{part} was begun with; it was deleted: run again to start over", retryable=True)
        if offset and response.status == 200:  # the file changed (If-Range) or Range is not supported: start over
            offset = 0
            part.unlink(missing_ok=True)
        if not offset:
            record.write_text(json.dumps({"url": url, **current}))
        total = _total_from_headers(response, offset)
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=Path(url).name, disable=not progress,
                   leave=False)
        written = offset
        try:
            with open(part, "ab") as f:
                while True:
                    try:
                        block = response.read(config.chunk_bytes)
                    except (OSError, ValueError, http.client.HTTPException) as e:  # connection reset / incomplete read mid-transfer
                        raise DownloadError(f"{url}: transfer interrupted after {written} bytes ({e}); "
                                            f"the partial file {part} is kept: run again to resume", retryable=True) from None
                    if not block:
                        break
                    f.write(block)
                    written += len(block)
                    bar.update(len(block))
        finally:
            bar.close()
    if total is not None and written < total:
        raise DownloadError(f"{url}: truncated transfer, got {written} of {total} bytes; "
                            f"the partial file {part} is kept: run again to resume", retryable=True)
    return total


def gzip_problem(path: str | Path) -> str | None:
    """What is wrong with a .gz file (None: a complete gzip stream, members one after another), read in chunks
    and decompressed without keeping the output: a file cut short has no end-of-stream marker, an HTML page saved
    under the name does not start as gzip does."""
    with open(path, "rb") as f:
        head = f.read(16)
        if not head.startswith(b"\x1f\x8b"):
            return f"it is not gzip (it starts with {head!r})"
        f.seek(0)
        inflate, ended = zlib.decompressobj(wbits=31), False
        while block := f.read(CHUNK):
            while block:
                if ended:  # another member follows the one that ended
                    inflate, ended = zlib.decompressobj(wbits=31), False
                try:
                    inflate.decompress(block, CHUNK)
                except zlib.error as e:
                    return f"the gzip data is damaged ({e})"
                block = inflate.unconsumed_tail
                if inflate.eof:
                    block, ended = inflate.unused_data, True
        return None if ended else "the gzip stream ends early (the file is truncated)"


def download(url: str, dest: str | Path, *, size: int | None = None, sha256: str | None = None,
             config: DownloadConfig = DownloadConfig(), progress: bool = True) -> Path:
    """Download `url` to `dest` (resuming `dest.part`), verify, rename atomically; return `dest`.

    An existing `dest` is trusted when it matches `size` / `sha256` (or when none is given) and, for a .gz name,
    starts as gzip does (an HTML page saved under the name is fetched again). A .gz file must be a complete gzip
    stream before it gets its name: a transfer cut short without a Content-Length is caught there.
    Bounded: at most `config.attempts` requests per call."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and (size is None or dest.stat().st_size == size) and (sha256 is None or sha256_of(dest) == sha256):
        with open(dest, "rb") as f:
            if dest.suffix != ".gz" or f.read(2) == b"\x1f\x8b":
                return dest
    part = dest.with_name(dest.name + ".part")
    wait, last_error, total = config.retry_wait_s, None, None
    for attempt in range(1, config.attempts + 1):
        try:
            total = _attempt(url, part, config, progress)
            problem = gzip_problem(part) if dest.suffix == ".gz" and part.exists() else None
            if problem:
                got = part.stat().st_size
                _restart(part)
                raise DownloadError(f"{url}: got {got} bytes, but {problem}; the bad file was deleted",
                                    retryable=total is None)  # no size announced: the transfer may have been cut
            last_error = None
            break
        except DownloadError as e:
            last_error = e
            if not e.retryable or attempt == config.attempts:
                break
            time.sleep(wait)
            wait *= 2
    if last_error is not None:
        raise last_error
    got = part.stat().st_size if part.exists() else 0
    for expected, what in ((total, "size announced by the server"), (size, "expected size")):
        if expected is not None and got != expected:
            _restart(part)
            raise DownloadError(f"{url}: got {got} bytes, the {what} is {expected}; the bad file was deleted")
    if sha256 is not None:
        actual = sha256_of(part)
        if actual != sha256.lower():
            _restart(part)
            raise DownloadError(f"{url}: checksum mismatch, SHA-256 {actual} but expected {sha256}; "
                                f"the bad file was deleted")
    os.replace(part, dest)  # atomic on one file system: `dest` is either absent or complete
    _record_of(part).unlink(missing_ok=True)
    return dest


# --- the raw Amazon review files -------------------------------------------------------------------------------------
# 2014 release (McAuley et al., SIGIR 2015): 5-core reviews and metadata per category.
AMAZON_2014_BASE = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"
# 2018 release (Ni et al., EMNLP 2019): 5-core reviews ("categoryFilesSmall") and metadata ("metaFiles2").
AMAZON_2018_BASE = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/"
RELEASES = ("2014", "2018")
# The categories each release publishes (5-core review files), so that a typo is caught before any file is opened.
KNOWN_CATEGORIES = {
    "2014": ("Amazon_Instant_Video", "Apps_for_Android", "Automotive", "Baby", "Beauty", "Books", "CDs_and_Vinyl",
             "Cell_Phones_and_Accessories", "Clothing_Shoes_and_Jewelry", "Digital_Music", "Electronics",
             "Grocery_and_Gourmet_Food", "Health_and_Personal_Care", "Home_and_Kitchen", "Kindle_Store",
             "Movies_and_TV", "Musical_Instruments", "Office_Products", "Patio_Lawn_and_Garden", "Pet_Supplies",
             "Sports_and_Outdoors", "Tools_and_Home_Improvement", "Toys_and_Games", "Video_Games"),
    "2018": ("AMAZON_FASHION", "All_Beauty", "Appliances", "Arts_Crafts_and_Sewing", "Automotive", "Books",
             "CDs_and_Vinyl", "Cell_Phones_and_Accessories", "Clothing_Shoes_and_Jewelry", "Digital_Music",
             "Electronics", "Gift_Cards", "Grocery_and_Gourmet_Food", "Home_and_Kitchen", "Industrial_and_Scientific",
             "Kindle_Store", "Luxury_Beauty", "Magazine_Subscriptions", "Movies_and_TV", "Musical_Instruments",
             "Office_Products", "Patio_Lawn_and_Garden", "Pet_Supplies", "Prime_Pantry", "Software",
             "Sports_and_Outdoors", "Tools_and_Home_Improvement", "Toys_and_Games", "Video_Games"),
}


def default_amazon_dir() -> Path:
    """Where `python -m llmemf_lite.data.download` puts raw Amazon files by default (git-ignored, re-downloadable)."""
    return artifacts_dir() / "raw" / "amazon"


def check_category(category: str, release: str = "auto") -> None:
    known = set(KNOWN_CATEGORIES["2014"]) | set(KNOWN_CATEGORIES["2018"]) if release == "auto" \
        else set(KNOWN_CATEGORIES[release])
    if category not in known:
        raise DataFormatError(f"Amazon {release} release", f"unknown category {category!r}",
                              expected=f"one of {sorted(known)} (or give review_files / meta_files explicitly)")


def amazon_file_names(category: str, release: str) -> tuple[str, str]:
    """(reviews file name, metadata file name) of a category in a release, as published."""
    if release == "2014":
        return f"reviews_{category}_5.json.gz", f"meta_{category}.json.gz"
    if release == "2018":
        return f"{category}_5.json.gz", f"meta_{category}.json.gz"
    raise ValueError(f"unknown Amazon release {release!r}; choose '2014' or '2018'")


def amazon_urls(category: str, release: str, base_url: str | None = None) -> tuple[str, str]:
    reviews, meta = amazon_file_names(category, release)
    if release == "2014":
        base = base_url or AMAZON_2014_BASE
        return base + reviews, base + meta
    base = base_url or AMAZON_2018_BASE
    if base_url:  # a mirror: both files side by side
        return base + reviews, base + meta
    return base + "categoryFilesSmall/" + reviews, base + "metaFiles2/" + meta


def download_amazon(categories, release: str, data_dir: str | Path, *, base_url: str | None = None,
                    progress: bool = True) -> list[Path]:
    """Download the reviews and metadata files of `categories` into `data_dir` (resumable); return their paths."""
    paths = []
    for category in categories:
        check_category(category, release)
        for url in amazon_urls(category, release, base_url):
            paths.append(download(url, Path(data_dir) / url.rsplit("/", 1)[1], progress=progress))
    return paths


def main(argv: list[str] | None = None) -> int:
    import argparse

    from ..pairs import get_pair
    from ..paths import resolve

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pair", help="a registered domain pair; downloads its two Amazon categories")
    ap.add_argument("--categories", nargs="*", default=[], help="Amazon category names (instead of --pair)")
    ap.add_argument("--release", choices=("2014", "2018"), default="2014")
    ap.add_argument("--dir", default=None, help="where the files go (default: artifacts/raw/amazon, where "
                    "build_dataset(source='amazon') looks; relative paths are taken from the project root)")
    ap.add_argument("--base-url", default=None, help="a mirror holding the files side by side")
    args = ap.parse_args(argv)
    categories = list(args.categories) or (list(get_pair(args.pair).amazon_categories) if args.pair else [])
    if not categories:
        ap.error("give --pair or --categories")
    folder = resolve(args.dir) if args.dir else default_amazon_dir()
    for path in download_amazon(categories, args.release, folder, base_url=args.base_url):
        print(f"{path}  {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
