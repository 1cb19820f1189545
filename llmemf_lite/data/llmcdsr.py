"""Importer for the LLMCDSR release format (the real Amazon Food-Kitchen split in ../shared/data/food-kitchen).

Files of the release (domain A = X, domain B = Y of the pair):
    num.txt                      two lines: item count of A, item count of B
    item_set_A.pkl, item_set_B.pkl   ASIN -> local index (0..n-1 within the domain)
    text_A.pkl, text_B.pkl       ASIN -> title
    train_A.txt, train_B.txt     single-domain training sequences
    train_overlap.txt            mixed training sequences
    valid.txt, test.txt          held-out users: a mixed history whose last id is the target
    instance_num.txt             three numbers: the line counts of train_A, train_B and train_overlap (optional)
Each sequence line is `user<TAB>id,id,...` with global ids (B ids are offset by the A count).

Everything is validated as it is read: a bad line raises `DataFormatError` naming the file, line and expectation.
A copy cut short is refused, not read as a smaller dataset: every line must end with its newline (a file cut
mid-line does not), and the training files must hold as many lines as instance_num.txt says. A user listed twice in
one file (a duplicated line) is an error too: it would be trained on or evaluated twice.
Training sequences with a single item carry no next-item pair; they are skipped and counted in the card.

A partial release is read: any of the training files and title files (`OPTIONAL_FILES`) may be absent, as
`train_B.txt` and `text_B.pkl` are in the offline Movie-Book copy. Each absent file is named in the card
(`card["absent_files"]`, shown by `card_table`) with what follows from it: its users are not in the training split,
or its items have no title (their text channel is masked downstream). Absent means not there at all; a file that is
there is checked in full, instance_num.txt's count included. At least one training file must be present.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..pairs import DomainPair, get_pair
from ..paths import project_root
from .dataset import CrossDomainDataset, ItemSpace, dataset_card
from .download import file_provenance
from .errors import DataFormatError
from .lines import UniqueUsers, text_lines
from .safe_pickle import load_plain_pickle

# file -> (split, kind, which id range its ids must lie in)
SEQUENCE_FILES = {
    "train_A.txt": ("train", "single_x", "x"),
    "train_B.txt": ("train", "single_y", "y"),
    "train_overlap.txt": ("train", "mixed", "any"),
    "valid.txt": ("valid", "mixed", "any"),
    "test.txt": ("test", "mixed", "any"),
}


def read_item_counts(path: Path) -> tuple[int, int]:
    if not path.is_file():
        raise DataFormatError(path, "file not found", expected="num.txt with the item counts of domains A and B")
    values = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    if len(values) != 2:
        raise DataFormatError(path, f"found {len(values)} non-empty lines", expected="2 lines: n_A and n_B")
    counts = []
    for i, v in enumerate(values, 1):
        if not v.isdigit() or int(v) == 0:
            raise DataFormatError(path, f"{v!r} is not a positive integer", line=i, expected="a positive item count")
        counts.append(int(v))
    return counts[0], counts[1]


INSTANCE_FILES = ("train_A.txt", "train_B.txt", "train_overlap.txt")  # in the order of instance_num.txt
OPTIONAL_FILES = INSTANCE_FILES + ("text_A.pkl", "text_B.pkl")  # a partial release may lack these


def read_instance_counts(path: Path) -> dict[str, int] | None:
    """Lines per training file as instance_num.txt gives them; None when the release has no such file."""
    if not path.is_file():
        return None
    values = path.read_text(encoding="utf-8", errors="replace").split()
    if len(values) != len(INSTANCE_FILES) or not all(v.isdigit() for v in values):
        raise DataFormatError(path, f"holds {values[:5]!r}",
                              expected=f"{len(INSTANCE_FILES)} integers: the line counts of "
                                       f"{', '.join(INSTANCE_FILES)}")
    return dict(zip(INSTANCE_FILES, map(int, values)))


def read_sequences(path: Path, allowed: range, *, min_length: int) -> tuple[list[tuple[str, list[int]]], list[int]]:
    """Parse `user<TAB>id,id,...` lines; return the sequences and the line numbers of too-short ones (skipped)."""
    rows, short, users = [], [], UniqueUsers(path)
    for n, line in text_lines(path, what="a sequence file of the LLMCDSR release"):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataFormatError(path, f"found {len(parts)} tab-separated fields", line=n,
                                  expected="`user<TAB>comma-separated item ids`")
        user, ids_text = parts[0].strip(), parts[1].strip()
        users.add(user, n)
        if not ids_text:
            raise DataFormatError(path, f"user {user!r} has an empty sequence", line=n,
                                  expected="at least one item id")
        try:
            ids = [int(tok) for tok in ids_text.split(",")]
        except ValueError:
            bad = next(t for t in ids_text.split(",") if not t.strip().lstrip("-").isdigit())
            raise DataFormatError(path, f"item id {bad!r} is not an integer", line=n,
                                  expected="comma-separated integer ids") from None
        out = [i for i in ids if i not in allowed]
        if out:
            raise DataFormatError(path, f"item id {out[0]} is outside this file's id range", line=n,
                                  expected=f"ids in [{allowed.start}, {allowed.stop})")
        if len(ids) < min_length:
            short.append(n)
            continue
        rows.append((user, ids))
    return rows, short


def _index_to_asin(item_set: dict, n: int, path: Path) -> list[str]:
    if not isinstance(item_set, dict):
        raise DataFormatError(path, f"holds a {type(item_set).__name__}", expected="a dict ASIN -> local index")
    asins: list[str | None] = [None] * n
    for asin, idx in item_set.items():
        if not isinstance(idx, int) or not 0 <= idx < n:
            raise DataFormatError(path, f"ASIN {asin!r} maps to {idx!r}", expected=f"an index in [0, {n})")
        if asins[idx] is not None:
            raise DataFormatError(path, f"index {idx} is used by both {asins[idx]!r} and {asin!r}",
                                  expected="one ASIN per index")
        asins[idx] = str(asin)
    if None in asins:
        raise DataFormatError(path, f"{asins.count(None)} of {n} indices have no ASIN",
                              expected=f"{n} items as num.txt says")
    return asins  # type: ignore[return-value]


def _absent_consequence(fname: str, pair: DomainPair, item_counts: tuple[int, int],
                        instances: dict[str, int] | None) -> dict[str, str]:
    """What an absent optional file means for the dataset: a sentence for the card, and a short form (under
    pandas' 50-character column width) for `card_table`."""
    if fname.startswith("text_"):
        d = "AB".index(fname[5])
        n, domain = f"{item_counts[d]:,}", pair.domains[d]
        return {"consequence": f"the {n} {domain} items have no title: their text channel is masked (mask False), "
                               "only their ID channel exists",
                "short": f"{n} {domain} items untitled: text masked"}
    who = {"train_A.txt": f"{pair.x}-only", "train_B.txt": f"{pair.y}-only", "train_overlap.txt": "overlap"}[fname]
    if instances is None:
        return {"consequence": f"the {who} training users are not in the training split",
                "short": f"the {who} users: not in training"}
    n = f"{instances[fname]:,}"
    return {"consequence": f"the {n} {who} training users listed in instance_num.txt are not in the training split",
            "short": f"{n} {who} users: not in training"}


def import_llmcdsr(data_dir: str | Path, domain_pair: str = "food_kitchen") -> CrossDomainDataset:
    """Read an LLMCDSR-format release folder into the canonical dataset (nothing is copied)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataFormatError(data_dir, "folder not found", expected="an LLMCDSR release folder (num.txt, *.pkl, *.txt)")
    pair = get_pair(domain_pair)
    n_x, n_y = read_item_counts(data_dir / "num.txt")
    space = ItemSpace(n_x, n_y)

    instances = read_instance_counts(data_dir / "instance_num.txt")
    absent = {f: _absent_consequence(f, pair, (n_x, n_y), instances) for f in OPTIONAL_FILES
              if not (data_dir / f).exists()}
    if all(f in absent for f in INSTANCE_FILES):
        raise DataFormatError(data_dir, "holds none of the training files",
                              expected=f"at least one of {', '.join(INSTANCE_FILES)}")

    item_rows = []
    for letter, domain, n, offset in (("A", pair.x, n_x, 0), ("B", pair.y, n_y, n_x)):
        set_path, text_path = data_dir / f"item_set_{letter}.pkl", data_dir / f"text_{letter}.pkl"
        asins = _index_to_asin(load_plain_pickle(set_path), n, set_path)
        titles = {} if text_path.name in absent else load_plain_pickle(text_path)
        if not isinstance(titles, dict):
            raise DataFormatError(text_path, f"holds a {type(titles).__name__}", expected="a dict ASIN -> title")
        known = set(asins)
        unknown = [a for a in titles if a not in known]
        if unknown:
            raise DataFormatError(text_path, f"{len(unknown)} ASINs are not in {set_path.name}, e.g. {unknown[0]!r}",
                                  expected=f"titles only for the items of {set_path.name}")
        for idx, asin in enumerate(asins):
            title = titles.get(asin)
            title = title.strip() if isinstance(title, str) and title.strip() else None
            item_rows.append((offset + idx, domain, asin, title, None, None))
    items = pd.DataFrame(item_rows, columns=["item_id", "domain", "source_id", "title", "description", "image"])

    seq_rows, skipped = [], {}
    ranges = {"x": space.domain_range(0), "y": space.domain_range(1), "any": range(0, space.n_items)}
    for fname, (split, kind, rng) in SEQUENCE_FILES.items():
        if fname in absent:
            continue
        rows, short = read_sequences(data_dir / fname, ranges[rng], min_length=2)
        if instances is not None and fname in instances and len(rows) + len(short) != instances[fname]:
            raise DataFormatError(data_dir / fname, f"holds {len(rows) + len(short)} sequences",
                                  expected=f"{instances[fname]}, as instance_num.txt says (a copy cut short or "
                                           "mixed with another release? copy the release again)")
        if split != "train" and not rows:
            raise DataFormatError(data_dir / fname, f"holds no {split} user with a history and a target",
                                  expected=f"at least one line `user<TAB>id,id,...` of two or more ids")
        if short:
            skipped[fname] = {"reason": "fewer than 2 items (no next-item pair)", "count": len(short),
                              "lines": short[:20]}
        prefix = fname.removesuffix(".txt")
        seq_rows += [(f"{prefix}:{u}", split, kind, np.asarray(ids, dtype=np.int64), None) for u, ids in rows]
    sequences = pd.DataFrame(seq_rows, columns=["user", "split", "kind", "items", "timestamps"])

    ds = CrossDomainDataset(pair, items, sequences)
    provenance = {"format": "llmcdsr", "folder": os.path.relpath(data_dir.resolve(), project_root()),
                  "files": {p.name: file_provenance(p) for p in sorted(data_dir.iterdir()) if p.is_file()},
                  "split_protocol": "held-out users: each valid/test line is a user unseen in training; "
                                    "its last item is the target"}
    ds.card = dataset_card(ds, source="llmcdsr", synthetic=False, provenance=provenance, skipped=skipped,
                           absent=absent)
    return ds
