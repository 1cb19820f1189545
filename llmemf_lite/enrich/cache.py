"""The enrichment cache: one SQLite file per dataset, one row per (item, source text, generator, prompt hash).

What this file is: `EnrichmentCache` (open, look up many keys, write one batch atomically) and `cache_key`.
What it is not: the decision of what to generate (`enrich.py`) or whether an output is usable (`guards.py`).

Why SQLite: every `put_many` is one transaction, and SQLite's write-ahead log makes a transaction all-or-nothing even
when the process is killed mid-write (SIGKILL, OOM, a closed laptop): earlier rows are never damaged and a half-written
batch simply is not there, so the next run resumes with exactly the items that are missing. The tests kill a real run.

The key hashes everything that decides the output: the item id, the source text (the whole rendered prompt, so the
title, the domain wording and any description), the generator (model + decoding settings, `enrich.generator_key`)
and the prompt template's hash. A changed title, model,
max_new_tokens or template therefore misses the cache and is generated again; old rows stay (they are cheap) until
the file is deleted. Batch size is deliberately not in the key: it changes speed, not what is asked.
Fallbacks are cached too (with their reason): a re-run does not retry a generation that is deterministic anyway.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..data.errors import DataFormatError

SCHEMA = """
CREATE TABLE IF NOT EXISTS enrichment (
    key          TEXT PRIMARY KEY,
    item_id      INTEGER NOT NULL,
    generator    TEXT NOT NULL,
    prompt_hash  TEXT NOT NULL,
    source_sha   TEXT NOT NULL,
    prompt       TEXT NOT NULL,   -- the rendered prompt, recorded with its output
    raw          TEXT NOT NULL,   -- what the model wrote
    generated    TEXT,            -- the model's text after the guards (trimmed, one line); NULL on a fallback
    text         TEXT NOT NULL,   -- what downstream reads: the enriched text, or the original title on a fallback
    status       TEXT NOT NULL,   -- 'ok' | 'fallback'
    reason       TEXT,            -- why it fell back (guards.py), or NULL
    trimmed      INTEGER NOT NULL,
    n_tokens     INTEGER NOT NULL,
    seconds      REAL NOT NULL,   -- this item's share of its batch's generation time
    created      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS by_run ON enrichment (generator, prompt_hash);
"""
COLUMNS = ("key", "item_id", "generator", "prompt_hash", "source_sha", "prompt", "raw", "generated", "text",
           "status", "reason",
           "trimmed", "n_tokens", "seconds", "created")


def source_sha(source_text: str) -> str:
    return hashlib.sha256(source_text.encode()).hexdigest()[:16]


def cache_key(item_id: int, source_text: str, generator: str, prompt_hash: str) -> str:
    return hashlib.sha256(json.dumps([int(item_id), source_text, generator, prompt_hash]).encode()).hexdigest()


@dataclass
class CachedEnrichment:
    key: str
    item_id: int
    generator: str
    prompt_hash: str
    source_sha: str
    prompt: str
    raw: str
    generated: str | None
    text: str
    status: str
    reason: str | None
    trimmed: bool
    n_tokens: int
    seconds: float
    created: float = 0.0


class EnrichmentCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.read_only = False
        with self._named():
            # isolation_level=None: we open transactions ourselves, so a batch is exactly one BEGIN ... COMMIT
            try:
                self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process loses nothing committed
                self._db.executescript(SCHEMA)
            except sqlite3.OperationalError:
                if not self.path.is_file():
                    raise
                # a complete cache that may not be written (a read-only copy, its folder read-only too, so that
                # SQLite cannot make its WAL files) is still read, as an immutable file; storing into it is an
                # error that names it (`put_many`)
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?immutable=1", uri=True,
                                           isolation_level=None)
                self._db.execute("SELECT count(*) FROM enrichment").fetchone()
                self.read_only = True

    @contextlib.contextmanager
    def _named(self):
        """A damaged cache file is an error that names it and says what to do, not a bare sqlite3 message."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            raise DataFormatError(self.path, f"is not a readable enrichment cache (sqlite3: {e})",
                                  expected="the SQLite file enrichment writes; delete it to enrich again "
                                           "(what it held is generated anew)") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "EnrichmentCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get_many(self, keys: list[str], generator: str, prompt_hash: str) -> dict[str, CachedEnrichment]:
        """The cached rows among `keys` (all of one generator and prompt hash: one indexed scan, not one query per
        key, so a fully cached 36k-item dataset is read in well under a second)."""
        wanted = set(keys)
        found = {}
        with self._named():
            rows = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM enrichment WHERE generator=? AND "
                                    "prompt_hash=?", (generator, prompt_hash))
            for row in rows:
                if row[0] in wanted:
                    entry = CachedEnrichment(*row)
                    entry.trimmed = bool(entry.trimmed)
                    found[entry.key] = entry
        return found

    def put_many(self, entries: list[CachedEnrichment]) -> None:
        """Write a batch in one transaction: all of it is stored, or (killed mid-way) none of it."""
        if self.read_only:
            raise DataFormatError(self.path, f"is read-only: {len(entries)} new enrichments cannot be stored",
                                  expected="a writable enrichment cache (make the file and its folder writable, or "
                                           "enrich only items it already holds)")
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                f"INSERT OR REPLACE INTO enrichment ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                [(e.key, int(e.item_id), e.generator, e.prompt_hash, e.source_sha, e.prompt, e.raw, e.generated, e.text, e.status,
                  e.reason, int(e.trimmed), int(e.n_tokens), float(e.seconds), e.created or now) for e in entries])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def generation_time(self, generator: str, prompt_hash: str) -> dict:
        """How the rows of one generator and prompt were made, as recorded when each batch was written: rows, new
        tokens, the batches' generation seconds summed (over processes side by side: more than the wall time), and
        the wall time from the first batch's write to the last (the first batch's own time not included; a run
        stopped and resumed later counts the pause too)."""
        with self._named():
            n, tokens, seconds, first, last = self._db.execute(
                "SELECT count(*), sum(n_tokens), sum(seconds), min(created), max(created) FROM enrichment WHERE "
                "generator=? AND prompt_hash=?", (generator, prompt_hash)).fetchone()
        return {"rows": int(n), "tokens": int(tokens or 0), "generation_seconds_summed": round(float(seconds or 0), 1),
                "first_to_last_write_seconds": round(float((last or 0) - (first or 0)), 1)}

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM enrichment").fetchone()[0]

    def integrity_ok(self) -> bool:
        return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
