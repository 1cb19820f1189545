"""Import and export of RecBole atomic files (`.inter`, `.item`), as RecBole and RecBole-CDR read them.

Atomic files are tab-separated with a typed header, e.g. `user_id:token<TAB>item_id:token<TAB>timestamp:float`.
`export_recbole(ds, out_dir)` writes, for a dataset named N (default `<pair>`):
    N/N.inter                all interactions: each user's full chronological sequence, once
    N/N.item                 item_id:token, domain:token, asin:token, title:token_seq, description:token_seq, image:token
    N/N.{train,valid,test}.inter   the canonical split as RecBole benchmark files (`benchmark_filename:
                             [train, valid, test]`): each file holds the interactions a row adds to the user's
                             earlier rows, with a `kind:token` column (RecBole loads only the columns it is told to)
    N_<x>/N_<x>.inter/.item, N_<y>/N_<y>.inter/.item   one dataset per domain, for RecBole-CDR's
                             `source_domain` / `target_domain` (users are matched by their user_id token)
`import_recbole` reads either the combined dataset (the domain of an item comes from `domain:token` in `.item`;
with benchmark files the split is taken from them, else built by `splits.split_sequences`) or two per-domain
datasets (`x_dataset`, `y_dataset`; split built by `split_sequences`). Export then import gives back the same
dataset: the round trip is tested.

What this file is not: RecBole itself (not a dependency) or any model.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..pairs import get_pair
from ..paths import project_root
from .dataset import ITEM_COLUMNS, KINDS, SEQUENCE_COLUMNS, SPLITS, CrossDomainDataset, ItemSpace, dataset_card
from .download import file_provenance
from .errors import DataFormatError
from .lines import text_lines
from .splits import SplitConfig, kind_of, split_sequences


def _clean(value) -> str:
    """A field value safe for a tab-separated atomic file (tabs and newlines become spaces; None is empty)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return " ".join(str(value).split())


def write_atomic(path: Path, header: list[str], rows) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(_clean(v) for v in row) + "\n")


def read_atomic(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """An atomic file as strings, columns named without their type (`user_id:token` -> `user_id`); a timestamp
    column as int64 seconds (a value that is not a whole number of seconds within +-2**53 is an error naming its
    line: 1e30 would wrap round in int64, 12.5 would be cut)."""
    lines = text_lines(path, final_newline=False, what="a RecBole atomic file")
    header_line = next(lines, None)
    if header_line is None:
        raise DataFormatError(path, "the file is empty", line=1, expected="a header line of typed fields")
    names = []
    for field in header_line[1].split("\t"):
        name, _, ftype = field.partition(":")
        if ftype not in ("token", "token_seq", "float", "float_seq"):
            raise DataFormatError(path, f"header field {field!r} has no known type", line=1,
                                  expected="`name:token|token_seq|float|float_seq` fields")
        names.append(name)
    missing = [r for r in required if r not in names]
    if missing:
        raise DataFormatError(path, f"header lacks {missing}", line=1,
                              expected=f"fields {[f'{r}:token' for r in required]}")
    rows, line_of = [], []
    for n, line in lines:
        if not line:
            continue
        values = line.split("\t")
        if len(values) != len(names):
            raise DataFormatError(path, f"found {len(values)} fields", line=n,
                                  expected=f"{len(names)} tab-separated fields as the header says")
        rows.append(values)
        line_of.append(n)
    frame = pd.DataFrame(rows, columns=names, dtype=object)
    if "timestamp" in frame:
        frame["timestamp"] = _whole_seconds(frame["timestamp"], path, line_of)
    if "kind" in frame:
        bad = ~frame["kind"].isin(KINDS)
        if bad.any():
            n = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataFormatError(path, f"kind {frame['kind'].iat[n]!r} is not a row kind", line=line_of[n],
                                  expected=f"one of {list(KINDS)} (lower case)")
    return frame


MAX_SECONDS = 2 ** 53  # beyond this a float64 timestamp is no longer exact (and no real time is that far out)


def _whole_seconds(column: pd.Series, path: Path, line_of: list[int]) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce").astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = values.isna() | ~np.isfinite(values) | (values.abs() > MAX_SECONDS) | (values != np.floor(values))
    if bad.any():
        n = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFormatError(path, f"timestamp {column.iat[n]!r} is not a time in whole seconds", line=line_of[n],
                              expected="an integer number of seconds within +-2**53 (e.g. a unix time)")
    return values.astype(np.int64)


# --- export ----------------------------------------------------------------------------------------------------------
def _item_tokens(ds: CrossDomainDataset) -> list[str]:
    """ASINs as item tokens (RecBole-CDR matches items across datasets by token); prefixed by the domain when an
    ASIN occurs in both domains, so that tokens stay unique."""
    ids = ds.items["source_id"].astype(str)
    if ids.is_unique:
        return ids.tolist()
    return (ds.items["domain"].astype(str) + "_" + ids).tolist()


def _parts(ds: CrossDomainDataset) -> dict:
    """user -> {split: (items, timestamps, kind)} where each split's part is what its row adds to the user's earlier
    rows (leave-one-out: train s[:-2], valid [s[-2]], test [s[-1]]; held-out users: the whole row)."""
    parts: dict = {}
    for row in ds.sequences.itertuples():
        user_parts = parts.setdefault(row.user, {})
        if row.split in user_parts:
            raise ValueError(f"user {row.user!r} has two {row.split} rows; RecBole benchmark files hold one per user")
        user_parts[row.split] = row
    out = {}
    for user, rows in parts.items():
        done, prefix = {}, np.zeros(0, dtype=np.int64)
        for split in SPLITS:
            if split not in rows:
                continue
            r = rows[split]
            items = np.asarray(r.items)
            ts = r.timestamps if r.timestamps is not None else None
            if len(prefix) and len(items) > len(prefix) and np.array_equal(items[:len(prefix)], prefix):
                start = len(prefix)
            elif len(prefix):
                raise ValueError(f"user {user!r}: the {split} row does not extend the earlier row; RecBole benchmark "
                                 "files cannot express it (give each such sequence its own user)")
            else:
                start = 0
            done[split] = (items[start:], None if ts is None else np.asarray(ts)[start:], r.kind)
            prefix = items
        out[user] = done
    return out


def export_recbole(ds: CrossDomainDataset, out_dir: str | Path, name: str | None = None) -> Path:
    """Write `ds` as RecBole atomic files under out_dir (see the module doc); return the combined dataset's folder."""
    name = name or ds.pair.name
    out_dir = Path(out_dir)
    tokens = _item_tokens(ds)
    has_time = ds.sequences["timestamps"].map(lambda t: t is not None).all() and len(ds.sequences) > 0
    parts = _parts(ds)
    inter_header = ["user_id:token", "item_id:token"] + (["timestamp:float"] if has_time else [])

    def inter_rows(split_filter=None, domain=None, with_kind=False):
        for user in sorted(parts):
            for split in SPLITS:
                if split not in parts[user] or (split_filter and split != split_filter):
                    continue
                items, ts, kind = parts[user][split]
                for k, item in enumerate(items):
                    if domain is not None and ds.space.domain_of(item) != domain:
                        continue
                    row = [user, tokens[int(item)]] + ([int(ts[k])] if has_time else [])
                    yield row + ([kind] if with_kind else [])

    combined = out_dir / name
    combined.mkdir(parents=True, exist_ok=True)
    write_atomic(combined / f"{name}.inter", inter_header, inter_rows())
    for split in SPLITS:
        write_atomic(combined / f"{name}.{split}.inter", inter_header + ["kind:token"],
                     inter_rows(split, with_kind=True))
    item_header = ["item_id:token", "domain:token", "asin:token", "title:token_seq", "description:token_seq",
                   "image:token"]
    images = [ds.image_location(i) for i in range(len(ds.items))]
    item_rows = [(tokens[i], r.domain, r.source_id, r.title, r.description, images[i])
                 for i, r in enumerate(ds.items.itertuples())]
    write_atomic(combined / f"{name}.item", item_header, item_rows)
    for d, domain in enumerate(ds.pair.domains):  # RecBole-CDR: one dataset per domain
        folder = out_dir / f"{name}_{domain}"
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / f"{name}_{domain}.inter", inter_header, inter_rows(domain=d))
        write_atomic(folder / f"{name}_{domain}.item", item_header,
                     [r for i, r in enumerate(item_rows) if ds.space.domain_of(i) == d])
    return combined


# --- import ----------------------------------------------------------------------------------------------------------
def _items_table(frames: list[tuple[str, pd.DataFrame, Path]], pair) -> tuple[pd.DataFrame, dict]:
    """Canonical items (X first, then Y, each in file order) and item token -> global id."""
    rows, token_id = [], {}
    for domain, frame, path in frames:
        for r in frame.itertuples(index=False):
            token = r.item_id
            if token in token_id:
                raise DataFormatError(path, f"item token {token!r} appears twice", expected="unique item_id tokens")
            token_id[token] = len(rows)
            get = (lambda col: (getattr(r, col) or None) if col in frame.columns else None)
            rows.append((len(rows), domain, get("asin") or token, get("title"), get("description"), get("image")))
    return pd.DataFrame(rows, columns=list(ITEM_COLUMNS)), token_id


def _global_ids(inter: pd.DataFrame, token_id: dict, path: Path) -> np.ndarray:
    ids = inter["item_id"].map(token_id)
    if ids.isna().any():
        n = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise DataFormatError(path, f"item token {inter['item_id'].iat[n]!r} is not in the .item file", line=n + 2,
                              expected="interactions with items listed in the .item file")
    return ids.to_numpy(dtype=np.int64)


def _user_sequences(inter: pd.DataFrame, gids: np.ndarray) -> list[tuple]:
    """(user, items, timestamps) per user, in time order (stable: equal times keep the file order)."""
    frame = inter.assign(_gid=gids, _pos=np.arange(len(inter)))
    keys = ["user_id"] + (["timestamp", "_pos"] if "timestamp" in frame else ["_pos"])
    frame = frame.sort_values(keys, kind="stable")
    out = []
    for user, g in frame.groupby("user_id", sort=True):
        ts = g["timestamp"].to_numpy(dtype=np.int64) if "timestamp" in g else None
        out.append((str(user), g["_gid"].to_numpy(dtype=np.int64), ts))
    return out


def import_recbole(data_dir: str | Path, domain_pair: str = "food_kitchen", *, dataset: str | None = None,
                   x_dataset: str | None = None, y_dataset: str | None = None,
                   split: SplitConfig = SplitConfig()) -> CrossDomainDataset:
    """Read RecBole atomic files into the canonical dataset.

    Combined form: `data_dir/<dataset>/<dataset>.inter` + `.item` with a `domain:token` column (dataset defaults to
    the pair's name; `data_dir` may also be that folder itself). Per-domain form (RecBole-CDR): `x_dataset` and
    `y_dataset` name two datasets under data_dir."""
    data_dir = Path(data_dir)
    pair = get_pair(domain_pair)
    skipped: dict = {}
    if x_dataset or y_dataset:
        if not (x_dataset and y_dataset):
            raise ValueError("give both x_dataset and y_dataset (the two domains' RecBole datasets)")
        folders = [data_dir / x_dataset, data_dir / y_dataset]
        items_frames, inters = [], []
        for domain, folder, ds_name in zip(pair.domains, folders, (x_dataset, y_dataset)):
            items_frames.append((domain, read_atomic(folder / f"{ds_name}.item", ("item_id",)),
                                 folder / f"{ds_name}.item"))
            inters.append((read_atomic(folder / f"{ds_name}.inter", ("user_id", "item_id")),
                           folder / f"{ds_name}.inter"))
        items, token_id = _items_table(items_frames, pair)
        frames = []
        for inter, path in inters:
            frames.append(inter.assign(item_id=inter["item_id"], _g=_global_ids(inter, token_id, path)))
        if any("timestamp" not in f for f, _p in inters):
            raise DataFormatError(inters[0][1], "no timestamp field", line=1,
                                  expected="timestamp:float in both domains' .inter files, to merge them in time order")
        merged = pd.concat(frames, ignore_index=True)
        space = ItemSpace(int((items["domain"] == pair.x).sum()), int((items["domain"] == pair.y).sum()))
        sequences, split_skipped = split_sequences(_user_sequences(merged, merged["_g"].to_numpy()), space, split)
        skipped.update(split_skipped)
        files, protocol = [p for f in folders for p in sorted(f.iterdir()) if p.is_file()], split.describe()
    else:
        name = dataset or pair.name
        folder = data_dir / name if (data_dir / name).is_dir() else data_dir
        if not (folder / f"{name}.item").is_file() and not (folder / f"{name}.inter").is_file():
            raise DataFormatError(folder, f"no {name}.inter / {name}.item",
                                  expected="a RecBole dataset folder (give `dataset=` for another name)")
        item_frame = read_atomic(folder / f"{name}.item", ("item_id", "domain"))
        unknown = sorted(set(item_frame["domain"]) - set(pair.domains))
        if unknown:
            raise DataFormatError(folder / f"{name}.item", f"unknown domain values {unknown}",
                                  expected=f"domain:token values {list(pair.domains)} of pair {pair.name!r}")
        frames = [(d, item_frame[item_frame["domain"] == d], folder / f"{name}.item") for d in pair.domains]
        items, token_id = _items_table(frames, pair)
        space = ItemSpace(int((items["domain"] == pair.x).sum()), int((items["domain"] == pair.y).sum()))
        bench = {s: folder / f"{name}.{s}.inter" for s in SPLITS}
        if all(p.is_file() for p in bench.values()):
            sequences, skipped = _from_benchmark_files(bench, token_id, space)
            protocol = ("as in the RecBole benchmark files (.train/.valid/.test.inter): a user's valid row extends its "
                        "train part, its test row its valid part; the last item of each is the target")
        else:
            inter_path = folder / f"{name}.inter"
            inter = read_atomic(inter_path, ("user_id", "item_id"))
            sequences, skipped = split_sequences(_user_sequences(inter, _global_ids(inter, token_id, inter_path)),
                                                 space, split)
            protocol = split.describe()
        files = [p for p in sorted(folder.iterdir()) if p.is_file()]
    ds = CrossDomainDataset(pair, items, sequences)
    provenance = {"format": "recbole", "folder": os.path.relpath(data_dir.resolve(), project_root()),
                  "files": {p.name: file_provenance(p) for p in files}, "split_protocol": protocol}
    ds.card = dataset_card(ds, source="recbole", synthetic=False, provenance=provenance, skipped=skipped)
    return ds


def _from_benchmark_files(bench: dict, token_id: dict, space: ItemSpace) -> tuple[pd.DataFrame, dict]:
    """Rebuild rows from benchmark files: a user's valid row = its train part + valid part, its test row = train +
    valid + test parts (leave-one-out); a held-out user has only a valid or a test part, its whole sequence."""
    parts: dict = {}
    for split, path in bench.items():
        inter = read_atomic(path, ("user_id", "item_id"))
        gids = _global_ids(inter, token_id, path)
        kinds = dict(zip(inter["user_id"], inter["kind"])) if "kind" in inter else {}
        for user, items, ts in _user_sequences(inter, gids):
            parts.setdefault(user, {})[split] = (items, ts, kinds.get(user))
    rows, short = [], []
    for user in sorted(parts):
        items_so_far, ts_so_far = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        has_time = True
        for split in SPLITS:
            if split not in parts[user]:
                continue
            items, ts, kind = parts[user][split]
            items_so_far = np.concatenate([items_so_far, items])
            has_time = has_time and ts is not None
            ts_so_far = np.concatenate([ts_so_far, ts]) if has_time else ts_so_far
            if len(items_so_far) < 2:
                short.append(f"{user} ({split})")
                continue
            rows.append((user, split, kind or kind_of(items_so_far, space), items_so_far.copy(),
                         ts_so_far.copy() if has_time else None))
    order = {s: i for i, s in enumerate(SPLITS)}
    rows.sort(key=lambda r: (order[r[1]], r[0]))
    skipped = {}
    if short:
        skipped["rows_with_one_item"] = {"reason": "fewer than 2 items (no next-item pair / no history)",
                                         "unit": "rows", "count": len(short), "examples": short[:10]}
    return pd.DataFrame(rows, columns=list(SEQUENCE_COLUMNS)), skipped
