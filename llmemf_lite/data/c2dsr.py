"""Import and export of the C2DSR release format (Cao et al., CIKM 2022; cjx96/C2DSR's `dataset/<Pair>/`).

Files of a release folder (domain A = X, domain B = Y of the pair):
    Alist.txt, Blist.txt    one line per item: `orig_id<TAB>ASIN<TAB>new_id`; the line count is the domain's item
                            count; new ids are 0..n-1 within the domain (B's may also be given already offset by n_A)
    userlist.txt            one line per user (optional; only counted)
    traindata_new.txt       `user<TAB>n<TAB>item|unix_ts|date<TAB>item|unix_ts|date...`: a training sequence;
    validdata_new.txt       item ids are global (B ids offset by n_A); C2DSR sorts each line by the timestamp and
    testdata_new.txt        so do we (stable: equal times keep the file's order). In valid/test lines the last item
                            after sorting is the target: held-out users, as in the LLMCDSR release.

What this file is: `import_c2dsr` (validated as it reads: a bad line, a user or an ASIN listed twice, or a file cut
mid-line is a DataFormatError naming file and line; sequences too short to use are skipped and counted) and
`export_c2dsr` (any canonical dataset -> these files, so C2DSR's own code can train on it). What it is not: a split builder (the release carries its split).
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..pairs import get_pair
from ..paths import project_root
from .dataset import ITEM_COLUMNS, SEQUENCE_COLUMNS, CrossDomainDataset, ItemSpace, dataset_card
from .download import file_provenance
from .errors import DataFormatError
from .lines import UniqueUsers, text_lines
from .splits import kind_of

SEQUENCE_FILES = {"traindata_new.txt": "train", "validdata_new.txt": "valid", "testdata_new.txt": "test"}


def read_item_list(path: Path, *, offset_allowed: int = 0) -> list[str]:
    """ASINs of a domain in new-id order, from `orig_id<TAB>ASIN<TAB>new_id` lines."""
    entries, asin_line = [], {}
    for n, line in text_lines(path, what="the item list `orig_id<TAB>ASIN<TAB>new_id`"):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise DataFormatError(path, f"found {len(parts)} tab-separated fields", line=n,
                                  expected="`orig_id<TAB>ASIN<TAB>new_id`")
        if not parts[2].strip().isdigit():
            raise DataFormatError(path, f"new id {parts[2]!r} is not an integer", line=n,
                                  expected="a non-negative integer new_id")
        asin = parts[1].strip()
        if asin in asin_line:
            raise DataFormatError(path, f"ASIN {asin!r} is listed again (first at line {asin_line[asin]})", line=n,
                                  expected="one line per item (two ids for one product would split its interactions)")
        asin_line[asin] = n
        entries.append((int(parts[2]), asin, n))
    if not entries:
        raise DataFormatError(path, "no items", expected="one line per item")
    n_items = len(entries)
    ids = sorted(e[0] for e in entries)
    shift = 0
    if offset_allowed and ids[0] == offset_allowed:  # B ids written already offset by n_A
        shift = offset_allowed
    asins: list[str | None] = [None] * n_items
    for new_id, asin, n in entries:
        local = new_id - shift
        if not 0 <= local < n_items:
            raise DataFormatError(path, f"new id {new_id} is outside the domain's range", line=n,
                                  expected=f"ids {shift}..{shift + n_items - 1} (one per line)")
        if asins[local] is not None:
            raise DataFormatError(path, f"new id {new_id} is used twice", line=n, expected="one line per new id")
        asins[local] = asin
    return asins  # type: ignore[return-value]


def read_c2dsr_sequences(path: Path, n_items: int) -> tuple[list[tuple], list[int], int]:
    """(user, items, timestamps) per line, sorted by time; the line numbers of one-item lines (skipped); and how
    many lines carry an `n` field that differs from their item count (informational)."""
    rows, short, n_mismatch, users = [], [], 0, UniqueUsers(path)
    expected = "`user<TAB>n<TAB>item|unix_ts|date<TAB>...` with integer item ids and timestamps"
    for n, line in text_lines(path, what="a C2DSR sequence file"):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 3:
            raise DataFormatError(path, f"found {len(parts)} tab-separated fields", line=n, expected=expected)
        user, count = parts[0].strip(), parts[1].strip()
        users.add(user, n)
        if not count.lstrip("-").isdigit():
            raise DataFormatError(path, f"the second field {count!r} is not an integer", line=n, expected=expected)
        events = []
        for token in parts[2:]:
            fields = token.strip().split("|")
            if len(fields) < 2:
                raise DataFormatError(path, f"interaction {token!r} is not `item|unix_ts|date`", line=n,
                                      expected=expected)
            for value, what in ((fields[0], "item id"), (fields[1], "timestamp")):
                if not value.strip().lstrip("-").isdigit():
                    raise DataFormatError(path, f"{what} {value!r} of interaction {token!r} is not an integer",
                                          line=n, expected=expected)
            item, when = int(fields[0]), int(fields[1])
            if not 0 <= item < n_items:
                raise DataFormatError(path, f"item id {item} is outside [0, {n_items})", line=n,
                                      expected="global ids (B ids offset by the Alist count)")
            events.append((item, when))
        events.sort(key=lambda e: e[1])  # stable, as C2DSR's own loader does
        n_mismatch += int(int(count) != len(events))
        if len(events) < 2:
            short.append(n)
            continue
        rows.append((user, np.array([e[0] for e in events], dtype=np.int64),
                     np.array([e[1] for e in events], dtype=np.int64)))
    return rows, short, n_mismatch


def import_c2dsr(data_dir: str | Path, domain_pair: str = "food_kitchen") -> CrossDomainDataset:
    """Read a C2DSR release folder into the canonical dataset (nothing is copied)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataFormatError(data_dir, "folder not found",
                              expected="a C2DSR release folder (Alist.txt, Blist.txt, *data_new.txt)")
    pair = get_pair(domain_pair)
    asins_x = read_item_list(data_dir / "Alist.txt")
    asins_y = read_item_list(data_dir / "Blist.txt", offset_allowed=len(asins_x))
    space = ItemSpace(len(asins_x), len(asins_y))
    items = pd.DataFrame([(i, pair.x, a, None, None, None) for i, a in enumerate(asins_x)]
                         + [(space.n_x + j, pair.y, a, None, None, None) for j, a in enumerate(asins_y)],
                         columns=list(ITEM_COLUMNS))
    seq_rows, skipped, mismatches = [], {}, {}
    for fname, split in SEQUENCE_FILES.items():
        rows, short, n_mismatch = read_c2dsr_sequences(data_dir / fname, space.n_items)
        if split != "train" and not rows:
            raise DataFormatError(data_dir / fname, f"holds no {split} user with a history and a target",
                                  expected="at least one line of two or more interactions")
        if short:
            skipped[fname] = {"reason": "fewer than 2 interactions (no next-item pair / no history)",
                              "unit": "lines", "count": len(short), "lines": short[:20]}
        if n_mismatch:
            mismatches[fname] = n_mismatch
        seq_rows += [(user, split, kind_of(ids, space), ids, ts) for user, ids, ts in rows]
    sequences = pd.DataFrame(seq_rows, columns=list(SEQUENCE_COLUMNS))
    ds = CrossDomainDataset(pair, items, sequences)
    userlist = data_dir / "userlist.txt"
    provenance = {"format": "c2dsr", "folder": os.path.relpath(data_dir.resolve(), project_root()),
                  "files": {p.name: file_provenance(p) for p in sorted(data_dir.iterdir()) if p.is_file()},
                  "userlist_lines": sum(1 for ln in open(userlist, encoding="utf-8") if ln.strip())
                  if userlist.is_file() else None,
                  "lines_whose_n_field_differs_from_their_item_count": mismatches,
                  "split_protocol": "held-out users (the release's own split): each valid/test line's last item, "
                                    "after sorting by time, is the target"}
    ds.card = dataset_card(ds, source="c2dsr", synthetic=False, provenance=provenance, skipped=skipped)
    return ds


def _date(ts: int) -> str:
    return dt.datetime.fromtimestamp(int(ts), dt.timezone.utc).strftime("%Y-%m-%d")


def export_c2dsr(ds: CrossDomainDataset, folder: str | Path) -> Path:
    """Write `ds` as a C2DSR release folder. Rows without timestamps get their positions (0, 1, ...) as times, so
    C2DSR's sort by time keeps their order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    space = ds.space
    for name, rng in (("Alist.txt", space.domain_range(0)), ("Blist.txt", space.domain_range(1))):
        with open(folder / name, "w", encoding="utf-8") as f:
            for local, gid in enumerate(rng):
                f.write(f"{gid}\t{ds.items['source_id'].iat[gid]}\t{local}\n")
    users = sorted(set(ds.sequences["user"]))
    (folder / "userlist.txt").write_text("".join(f"{u}\t{i}\n" for i, u in enumerate(users)), encoding="utf-8")
    for fname, split in SEQUENCE_FILES.items():
        with open(folder / fname, "w", encoding="utf-8") as f:
            for row in ds.split(split).itertuples():
                ts = row.timestamps if row.timestamps is not None else np.arange(len(row.items))
                events = "\t".join(f"{int(i)}|{int(t)}|{_date(t)}" for i, t in zip(row.items, ts))
                f.write(f"{row.user}\t{len(row.items)}\t{events}\n")
    return folder
