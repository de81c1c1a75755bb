"""The results store: SQLite in WAL mode, one row per (design point, model).

Each row is keyed by a content hash of the resolved architecture, the workload and the
settings (:mod:`tilesim.explore.sweep.spec`), and holds its columns as canonical JSON. A design's
rows are written in one transaction, so a killed sweep (Ctrl-C, SIGKILL, a worker crash)
leaves whole designs or nothing; resuming skips every key already stored.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from .errors import SweepError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY, design INTEGER NOT NULL, model TEXT NOT NULL,
    batch INTEGER NOT NULL, status TEXT NOT NULL, row TEXT NOT NULL);
"""


class Store:
    """One sweep's store. The parent process is its only writer."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise SweepError(f"cannot open the results store: {e}", source=str(self.path),
                             fix="delete the file or choose another --out folder") from None

    def close(self) -> None:
        self.db.close()

    def meta(self) -> dict:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    def begin(self, fingerprint: str, spec_json: str, resume: bool) -> None:
        """Claim the store for a sweep; a store of another sweep, or a started one
        without ``resume``, is an error."""
        m = self.meta()
        n = self.count()
        if m.get("fingerprint") not in (None, fingerprint):
            raise SweepError("the store holds a different sweep (other design points, models "
                             "or settings)", source=str(self.path),
                             fix="use another --out folder, or delete the old store")
        if n and not resume:
            raise SweepError(f"the store already holds {n} rows of this sweep",
                             source=str(self.path),
                             fix="add --resume to finish it, or use another --out folder")
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('spec', ?)", (spec_json,))

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def keys(self) -> set[str]:
        return {k for (k,) in self.db.execute("SELECT key FROM results")}

    def put(self, rows) -> None:
        """Write one design's rows (key, design, model, batch, status, row) atomically."""
        data = [(k, d, m, b, s, json.dumps(r, sort_keys=True, allow_nan=True))
                for k, d, m, b, s, r in rows]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)", data)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def dump(self) -> list[tuple]:
        """Every row, ordered by key (what two runs of one sweep must agree on)."""
        return list(self.db.execute(
            "SELECT key, design, model, batch, status, row FROM results ORDER BY key"))

    def rows(self, keys=None) -> list[dict]:
        """Row dicts ordered by design then the spec's model order (``keys``) ."""
        got = {k: json.loads(r) for k, r in self.db.execute("SELECT key, row FROM results")}
        if keys is None:
            return [got[k] for k in sorted(got, key=lambda k: (got[k]["design"], k))]
        return [got[k] for k in keys if k in got]
