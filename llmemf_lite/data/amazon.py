"""Importer for the raw Amazon review files (2014 and 2018 releases): reviews + metadata -> the canonical dataset.

What this file is: streaming readers for the two releases' files and the C2DSR / LLM-EMF recipe that turns two
categories into a cross-domain dataset:
  1. stream both categories' review files line by line (a multi-GB `.json.gz` is never loaded whole); keep
     (user, item, time) as compact integer arrays;
  2. drop duplicate reviews (same user, same item, same domain: the earliest is kept), counted;
  3. filter to a fixpoint: users active in both domains, and the k-core (users and items with >= k interactions);
  4. order each user's interactions by timestamp (ties broken by domain, then item, so the order is reproducible);
  5. split with `splits.split_sequences` (leave-one-out or held-out users);
  6. stream the metadata files for titles, descriptions and image URLs of the items that survived.
What it is not: a downloader (`download.py`), an image fetcher (`images.py`) or a split definition (`splits.py`).

File formats
    2014  reviews_<Category>_5.json.gz   strict JSON per line: reviewerID, asin, unixReviewTime, ...
          meta_<Category>.json.gz        a Python literal per line (single quotes): asin, title, imUrl, description
                                         -- parsed with `ast.literal_eval`, never `eval`
    2018  <Category>_5.json.gz           JSON per line: reviewerID, asin, unixReviewTime, ...
          meta_<Category>.json.gz        JSON per line: asin, title, imageURLHighRes / imageURL (lists), description

Bad input: a malformed line or a line missing a required field raises `DataFormatError` naming the file and line
(`on_bad_line="skip"` counts and reports them instead); an unknown category or a missing file is an error naming
what was expected. Duplicate reviews, single-interaction users and everything the filters remove are counted in the
card (`skipped`, `filtering`).
"""
from __future__ import annotations

import ast
import json
import os
import re
from array import array
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ..pairs import get_pair
from ..paths import project_root
from .dataset import CrossDomainDataset, ItemSpace, dataset_card
from .download import RELEASES, amazon_file_names, check_category, file_provenance
from .errors import DataFormatError
from .lines import text_lines
from .splits import SplitConfig, split_sequences

REVIEW_FIELDS = ("reviewerID", "asin", "unixReviewTime")


@dataclass(frozen=True)
class AmazonConfig:
    categories: tuple[str, str] | None = None    # default: the pair's `amazon_categories` (X first)
    review_files: tuple[str, str] | None = None  # explicit paths instead of looking them up in data_dir
    meta_files: tuple[str, str] | None = None
    release: str = "auto"          # "2014" | "2018" | "auto" (from the file names found / the metadata's syntax)
    k_core: int = 5                # users and items keep >= k interactions (C2DSR and SASRec use 5 or 10)
    min_per_domain: int = 1        # a user keeps >= this many interactions in each domain ("both-domain users")
    max_sequence_length: int | None = None  # keep a user's most recent N interactions (None: all)
    on_bad_line: str = "error"     # "error": DataFormatError at the first bad line; "skip": count and go on
    max_filter_rounds: int = 100   # the k-core fixpoint loop is bounded; not converging is an error

    def __post_init__(self):
        if self.release not in RELEASES + ("auto",):
            raise ValueError(f"unknown Amazon release {self.release!r}; choose '2014', '2018' or 'auto'")
        if self.on_bad_line not in ("error", "skip"):
            raise ValueError(f"on_bad_line must be 'error' or 'skip', got {self.on_bad_line!r}")
        if self.k_core < 1 or self.min_per_domain < 1:
            raise ValueError("k_core and min_per_domain must be >= 1")

    def as_dict(self) -> dict:
        return asdict(self)


def numbered_lines(path: Path, *, progress: bool = False, desc: str | None = None):
    """(line number, text) of a plain or gzip-compressed file, read lazily (never whole). A truncated or non-gzip
    .gz file and bytes that are not UTF-8 are a DataFormatError naming the file and line (also under
    on_bad_line="skip": a file cut short is not a bad line to skip)."""
    from tqdm.auto import tqdm

    lines = text_lines(path, final_newline=False, what="an Amazon review or metadata file")
    return tqdm(lines, desc=desc or path.name, unit=" lines", mininterval=1.0) if progress else lines


@dataclass
class BadLines:
    """Counted bad lines of one file (on_bad_line="skip"), reported in the card's `skipped`."""
    reason: str
    count: int = 0
    lines: list[int] = field(default_factory=list)

    def add(self, line: int) -> None:
        self.count += 1
        if len(self.lines) < 20:
            self.lines.append(line)

    def as_dict(self) -> dict:
        return {"reason": self.reason, "unit": "lines", "count": self.count, "lines": self.lines}


def iter_records(path: Path, syntax: str, *, on_bad_line: str = "error", bad: BadLines | None = None,
                 progress: bool = False, desc: str | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line number, record) of a JSON-lines ("json") or Python-literal-lines ("literal") file, one line at a
    time. A malformed line raises DataFormatError (file, line) or, with on_bad_line="skip", is counted in `bad`."""
    parse = json.loads if syntax == "json" else ast.literal_eval
    expected = "one JSON object per line" if syntax == "json" else "one Python dict literal per line"
    for n, line in numbered_lines(path, progress=progress, desc=desc):
        if not line.strip():
            continue
        try:
            record = parse(line)
            if not isinstance(record, dict):
                raise ValueError(f"a {type(record).__name__}, not an object")
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as e:
            if on_bad_line == "skip" and bad is not None:
                bad.add(n)
                continue
            raise DataFormatError(path, f"malformed line ({type(e).__name__}: {str(e)[:80]})", line=n,
                                  expected=expected) from None
        yield n, record


def detect_meta_syntax(path: Path) -> str:
    """"json" (2018) or "literal" (2014), from the first non-empty line."""
    for _n, line in numbered_lines(path):
        if line.strip():
            try:
                json.loads(line)
                return "json"
            except ValueError:
                return "literal"
    return "json"


class Interactions:
    """(user, domain, item, time) of every review read, as compact arrays: codes for users and items instead of
    strings, so tens of millions of reviews fit in memory where a list of dicts would not."""

    def __init__(self):
        self.user_code: dict[str, int] = {}
        self.item_code: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self.user, self.domain, self.item, self.time = array("i"), array("b"), array("i"), array("q")

    def add(self, user: str, domain: int, asin: str, time: int) -> None:
        codes = self.item_code[domain]
        self.user.append(self.user_code.setdefault(user, len(self.user_code)))
        self.domain.append(domain)
        self.item.append(codes.setdefault(asin, len(codes)))
        self.time.append(time)

    def __len__(self) -> int:
        return len(self.user)


def read_reviews(path: Path, domain: int, store: Interactions, *, on_bad_line: str = "error",
                 progress: bool = False) -> dict:
    """Stream one review file into `store`; return the counted skips of this file (empty when all lines are good)."""
    bad_syntax = BadLines("malformed line")
    bad_fields = BadLines(f"missing or invalid field among {list(REVIEW_FIELDS)}")
    for n, record in iter_records(path, "json", on_bad_line=on_bad_line, bad=bad_syntax, progress=progress):
        user, asin, when = record.get("reviewerID"), record.get("asin"), record.get("unixReviewTime")
        problem = None
        if not isinstance(user, str) or not user:
            problem = "reviewerID"
        elif not isinstance(asin, str) or not asin:
            problem = "asin"
        elif isinstance(when, bool) or not isinstance(when, (int, str)) or not str(when).isdigit():
            problem = "unixReviewTime"
        if problem:
            if on_bad_line == "skip":
                bad_fields.add(n)
                continue
            raise DataFormatError(path, f"field {problem!r} is missing or invalid ({record.get(problem)!r})", line=n,
                                  expected=f"a review with {', '.join(REVIEW_FIELDS)} (an integer time)")
        store.add(user, domain, asin, int(when))
    return {f"{path.name}: {b.reason}": b.as_dict() for b in (bad_syntax, bad_fields) if b.count}


def find_files(data_dir: Path, category: str, release: str) -> tuple[Path, Path, str]:
    """(reviews path, metadata path, release) of a category in data_dir; release "auto" tries 2014 then 2018."""
    tried = []
    for rel in (RELEASES if release == "auto" else (release,)):
        reviews_name, meta_name = amazon_file_names(category, rel)
        for reviews in (data_dir / reviews_name, data_dir / reviews_name.removesuffix(".gz")):
            tried.append(reviews.name)
            if reviews.is_file():
                meta = data_dir / meta_name
                if not meta.is_file() and (data_dir / meta_name.removesuffix(".gz")).is_file():
                    meta = data_dir / meta_name.removesuffix(".gz")
                if not meta.is_file():
                    raise DataFormatError(meta, "file not found",
                                          expected=f"the {rel} metadata of {category} beside {reviews.name}")
                return reviews, meta, rel
    raise DataFormatError(data_dir, f"no review file for category {category!r}",
                          expected=f"one of {tried} (download with `python -m llmemf_lite.data.download`)")


def k_core_filter(user: np.ndarray, domain: np.ndarray, item: np.ndarray, n_items: tuple[int, int], *, k: int,
                  min_per_domain: int, max_rounds: int) -> tuple[np.ndarray, dict]:
    """Mask of the interactions that survive: users with >= min_per_domain interactions in each domain and >= k in
    all, items with >= k, iterated until nothing changes (removing a user can push an item below k, and back)."""
    keep = np.ones(len(user), dtype=bool)
    gitem = item.astype(np.int64) + domain.astype(np.int64) * n_items[0]  # one index over both domains' items
    n_users = int(user.max()) + 1 if len(user) else 0
    for rounds in range(1, max_rounds + 1):
        u, d, g = user[keep], domain[keep], gitem[keep]
        per_user = np.bincount(u, minlength=n_users)
        per_user_x = np.bincount(u[d == 0], minlength=n_users)
        per_user_y = np.bincount(u[d == 1], minlength=n_users)
        per_item = np.bincount(g, minlength=n_items[0] + n_items[1])
        ok_user = (per_user >= k) & (per_user_x >= min_per_domain) & (per_user_y >= min_per_domain)
        drop = keep & ~(ok_user[user] & (per_item[gitem] >= k))
        if not drop.any():
            return keep, {"rounds": rounds}
        keep &= ~drop
    raise RuntimeError(f"the k-core filter did not converge in {max_rounds} rounds; raise max_filter_rounds")


def read_metadata(path: Path, wanted: dict[str, int], syntax: str, *, on_bad_line: str = "error",
                  progress: bool = False) -> tuple[dict[int, tuple], dict, dict]:
    """Titles, descriptions and image URLs of the `wanted` ASINs (ASIN -> item id) from one metadata file.

    Lines of items that were filtered out are recognised by their ASIN with a regular expression and not parsed:
    parsing is the slow part of a multi-GB metadata file. Returns (item id -> (title, description, image URL)),
    the counted skips, and counts of lines read / used."""
    asin_pattern = re.compile(r"""["']asin["']\s*:\s*["']([^"']+)["']""")
    found: dict[int, tuple] = {}
    bad_syntax, bad_asin, duplicate = BadLines("malformed line"), BadLines("no 'asin' field"), BadLines(
        "duplicate metadata line for an ASIN (the first is kept)")
    lines = unused = 0
    for n, line in numbered_lines(path, progress=progress):
        if not line.strip():
            continue
        lines += 1
        m = asin_pattern.search(line)
        if m and m.group(1) not in wanted:
            unused += 1
            continue
        records = list(_parse_one(line, n, path, syntax, on_bad_line, bad_syntax))
        if not records:
            continue
        record = records[0]
        asin = record.get("asin")
        if not isinstance(asin, str) or not asin:
            if on_bad_line == "skip":
                bad_asin.add(n)
                continue
            raise DataFormatError(path, "no 'asin' field", line=n, expected="a metadata record with an asin")
        if asin not in wanted:
            unused += 1
            continue
        item_id = wanted[asin]
        if item_id in found:
            duplicate.add(n)
            continue
        found[item_id] = (_text(record.get("title")), _text(record.get("description")), _image_url(record))
    skipped = {f"{path.name}: {b.reason}": b.as_dict() for b in (bad_syntax, bad_asin, duplicate) if b.count}
    return found, skipped, {"lines": lines, "lines_of_filtered_out_items": unused, "items_found": len(found)}


def _parse_one(line: str, n: int, path: Path, syntax: str, on_bad_line: str, bad: BadLines):
    parse = json.loads if syntax == "json" else ast.literal_eval
    try:
        record = parse(line)
        if not isinstance(record, dict):
            raise ValueError(f"a {type(record).__name__}, not an object")
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as e:
        if on_bad_line == "skip":
            bad.add(n)
            return
        raise DataFormatError(path, f"malformed line ({type(e).__name__}: {str(e)[:80]})", line=n,
                              expected="one JSON object per line" if syntax == "json"
                              else "one Python dict literal per line") from None
    yield record


def _text(value) -> str | None:
    if isinstance(value, list):  # 2018 descriptions are lists of paragraphs
        value = " ".join(v for v in value if isinstance(v, str))
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value or None


def _image_url(record: dict) -> str | None:
    for key in ("imUrl", "imageURLHighRes", "imageURL"):  # 2014: one URL; 2018: lists, high resolution first
        value = record.get(key)
        if isinstance(value, list):
            value = next((v for v in value if isinstance(v, str) and v.strip()), None)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def import_amazon(data_dir: str | Path | None, domain_pair: str = "movie_book", config: AmazonConfig = AmazonConfig(),
                  split: SplitConfig = SplitConfig(), *, progress: bool = True) -> CrossDomainDataset:
    """Build the canonical dataset of `domain_pair` from raw Amazon review + metadata files (see the module doc)."""
    pair = get_pair(domain_pair)
    categories = tuple(config.categories or pair.amazon_categories)
    if len(categories) != 2:
        raise ValueError(f"a domain pair needs two categories, got {categories!r}")
    files = []
    for d, category in enumerate(categories):
        if config.review_files and config.meta_files:
            reviews, meta = Path(config.review_files[d]), Path(config.meta_files[d])
            for p in (reviews, meta):
                if not p.is_file():
                    raise DataFormatError(p, "file not found", expected=f"an Amazon file of category {category!r}")
            release = config.release
        else:
            check_category(category, config.release)
            if data_dir is None or not Path(data_dir).is_dir():
                raise DataFormatError(data_dir or "data_dir", "folder not found",
                                      expected="a folder with the raw Amazon files (reviews_*.json.gz, meta_*.json.gz)")
            reviews, meta, release = find_files(Path(data_dir), category, config.release)
        syntax = {"2014": "literal", "2018": "json"}.get(release) or detect_meta_syntax(meta)
        files.append((category, reviews, meta, release, syntax))

    store, skipped = Interactions(), {}
    for d, (category, reviews, *_rest) in enumerate(files):
        before = len(store)
        file_skipped = read_reviews(reviews, d, store, on_bad_line=config.on_bad_line, progress=progress)
        skipped.update(file_skipped)
        if len(store) == before:
            bad = sum(v["count"] for v in file_skipped.values())
            raise DataFormatError(reviews, f"no review of category {category!r} was read"
                                  + (f" ({bad} bad lines skipped)" if bad else " (the file is empty)"),
                                  expected="review lines with reviewerID, asin and unixReviewTime")
    user, domain = np.frombuffer(store.user, dtype=np.int32), np.frombuffer(store.domain, dtype=np.int8)
    item, time = np.frombuffer(store.item, dtype=np.int32), np.frombuffer(store.time, dtype=np.int64)

    # Duplicate reviews: the same user reviewing the same item twice in one domain. Keep the earliest.
    order = np.lexsort((time, item, domain, user))
    key = np.stack([user[order], domain[order], item[order]])
    first = np.ones(len(order), dtype=bool)
    first[1:] = (key[:, 1:] != key[:, :-1]).any(axis=0)
    keep = np.zeros(len(order), dtype=bool)
    keep[order[first]] = True
    for d, (category, reviews, *_rest) in enumerate(files):
        dups = int(((~keep) & (domain == d)).sum())
        if dups:
            skipped[f"{reviews.name}: duplicate reviews"] = {
                "reason": "the same user reviewed the same item again (the earliest review is kept)",
                "unit": "reviews", "count": dups}
    n_users_read = len(store.user_code)
    per_user = np.bincount(user[keep], minlength=n_users_read)
    if (per_user == 1).any():
        skipped["users_with_one_interaction"] = {"reason": "a single interaction carries no next-item pair",
                                                 "unit": "users", "count": int((per_user == 1).sum())}
    users_both = int(((np.bincount(user[keep & (domain == 0)], minlength=n_users_read) > 0)
                      & (np.bincount(user[keep & (domain == 1)], minlength=n_users_read) > 0)).sum())

    n_items = (len(store.item_code[0]), len(store.item_code[1]))
    survive, info = k_core_filter(user[keep], domain[keep], item[keep], n_items, k=config.k_core,
                                  min_per_domain=config.min_per_domain, max_rounds=config.max_filter_rounds)
    idx = np.flatnonzero(keep)[survive]
    u, d, it, t = user[idx], domain[idx], item[idx], time[idx]
    if not len(idx):
        raise DataFormatError(files[0][1], f"no user is left after keeping both-domain users and the "
                              f"{config.k_core}-core", expected="overlapping users (lower k_core?)")

    # Global ids: X items first (0..n_x-1), then Y, each domain sorted by ASIN so ids do not depend on file order.
    asin_of = [np.array(list(store.item_code[x]), dtype=object) for x in (0, 1)]
    new_id, kept_asins = [], []
    offset = 0
    for x in (0, 1):
        local = np.unique(it[d == x])
        asins = asin_of[x][local]
        order_x = np.argsort(asins.astype(str), kind="stable")
        mapping = np.full(n_items[x], -1, dtype=np.int64)
        mapping[local[order_x]] = offset + np.arange(len(local))
        new_id.append(mapping)
        kept_asins.append(list(asins[order_x]))
        offset += len(local)
    space = ItemSpace(len(kept_asins[0]), len(kept_asins[1]))
    gid = np.empty(len(it), dtype=np.int64)
    for x in (0, 1):
        gid[d == x] = new_id[x][it[d == x]]

    # Chronological per-user sequences; ties (Amazon times are whole days) broken by domain, then item id.
    user_names = np.array(list(store.user_code), dtype=object)
    order = np.lexsort((gid, d, t, u))
    u, gid, t = u[order], gid[order], t[order]
    bounds = np.flatnonzero(np.diff(u)) + 1
    sequences, truncated = [], 0
    for s_items, s_time, s_user in zip(np.split(gid, bounds), np.split(t, bounds), u[np.r_[0, bounds]]):
        if config.max_sequence_length and len(s_items) > config.max_sequence_length:
            s_items, s_time = s_items[-config.max_sequence_length:], s_time[-config.max_sequence_length:]
            truncated += 1
        sequences.append((str(user_names[s_user]), s_items, s_time))
    seqs, split_skipped = split_sequences(sequences, space, split)
    skipped.update(split_skipped)

    # Metadata of the surviving items only.
    rows, meta_counts = [], {}
    for x, (category, _reviews, meta, _release, syntax) in enumerate(files):
        base = 0 if x == 0 else space.n_x
        wanted = {a: base + i for i, a in enumerate(kept_asins[x])}
        found, meta_skipped, meta_counts[meta.name] = read_metadata(meta, wanted, syntax,
                                                                    on_bad_line=config.on_bad_line,
                                                                    progress=progress)
        skipped.update(meta_skipped)
        for asin, item_id in wanted.items():
            title, description, image = found.get(item_id, (None, None, None))
            rows.append((item_id, pair.domains[x], asin, title, description, image))
        missing = len(wanted) - len(found)
        if missing:
            skipped[f"{meta.name}: items without metadata"] = {
                "reason": "reviewed items that have no metadata line (no title, no image)", "unit": "items",
                "count": missing}
    items = pd.DataFrame(rows, columns=["item_id", "domain", "source_id", "title", "description", "image"])

    ds = CrossDomainDataset(pair, items, seqs)
    provenance = {
        "format": "amazon",
        "files": {str(_shown(p)): {"category": c, "release": r, **file_provenance(p)}
                  for c, reviews, meta, r, _s in files for p in (reviews, meta)},
        "config": config.as_dict(), "split": split.as_dict(),
        "split_protocol": split.describe(),
    }
    ds.card = dataset_card(ds, source="amazon", synthetic=False, provenance=provenance, skipped=skipped)
    ds.card["filtering"] = {
        "reviews_read": len(store), "users_read": n_users_read,
        "items_read": {pair.x: n_items[0], pair.y: n_items[1]},
        "users_in_both_domains": users_both, "k_core": config.k_core, "k_core_rounds": info["rounds"],
        "interactions_kept": int(len(idx)), "users_kept": len(sequences),
        "users_truncated_to_max_length": truncated, "metadata": meta_counts,
    }
    return ds


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), project_root())
    except ValueError:
        return str(path)

