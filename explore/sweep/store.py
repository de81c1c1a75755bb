"""The results store: SQLite in WAL mode, one row per (design point, model).

Each row is keyed by a content hash of the resolved architecture, the workload and the
settings (:mod:`tilesim.explore.sweep.spec`), holds its columns as canonical JSON, and
records the tilesim version that computed it (``version``). A design's rows are written in
one transaction, so a killed sweep (Ctrl-C, SIGKILL, a worker crash) leaves whole designs
or nothing; resuming skips every key already stored. Rows of another tilesim version
(or of a store written before 0.2.0, which recorded none) are stale: a resume refuses
them, or deletes them to be recomputed when asked (``--recompute-stale``).
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
    batch INTEGER NOT NULL, status TEXT NOT NULL, row TEXT NOT NULL, version TEXT);
"""


#: columns a store's tables must have (a file with other tables or columns is not ours)
COLUMNS = {"meta": {"key", "value"},
           "results": {"key", "design", "model", "batch", "status", "row"}}


class Store:
    """One sweep's store. The parent process is its only writer; ``version`` (the running
    tilesim's) is recorded with every row it writes (None: a store opened to read).

    A writer holds an exclusive lock (``flock`` on ``results.sqlite.lock`` beside the
    store, which names its PID) from opening to :meth:`close`: a second sweep into the
    same store is refused at once, naming the holder, so no design point is computed
    twice. A file that is not a readable store of this schema (truncated, garbage, another
    program's database) is a SweepError with the fix, before any work."""

    def __init__(self, path: str | Path, version: str | None = None):
        self.path, self.version = Path(path), version
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = self._take_lock() if version is not None else None
        fix = "delete the file (its rows are lost) or choose another --out folder"
        py_fix = "delete the file (its rows are lost) or choose another out folder"
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        except sqlite3.DatabaseError as e:
            self._release()
            raise SweepError(f"cannot open the results store: {e}", source=str(self.path),
                             fix=fix, py_fix=py_fix) from None
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            bad = self.db.execute("PRAGMA quick_check").fetchone()[0]
            if bad != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {bad}")
            for table, need in COLUMNS.items():
                have = {c[1] for c in self.db.execute(f"PRAGMA table_info({table})")}
                if not need <= have:
                    raise sqlite3.DatabaseError(
                        f"its table {table!r} lacks the columns "
                        + ", ".join(sorted(need - have)) + ": not a tilesim sweep store")
            self.db.execute("SELECT COUNT(*) FROM results").fetchone()
            dict(self.db.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as e:
            self.close()
            raise SweepError(f"the results store is damaged or not a tilesim store ({e})",
                             source=str(self.path), fix=fix, py_fix=py_fix) from None

    def _take_lock(self):
        """The store's writer lock (an open file holding ``flock``), or a SweepError naming
        the process that holds it."""
        import fcntl
        import os
        lock = self.path.with_name(self.path.name + ".lock")
        f = open(lock, "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise SweepError(f"another sweep (PID {holder}) is writing this store",
                             source=str(self.path),
                             fix="wait for it to finish (then add --resume to use its rows), "
                                 "or use another --out folder",
                             py_fix="wait for it to finish (then pass resume=True), or use "
                                    "another out folder") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        # a forked worker process would share the lock (flock belongs to the open file) and
        # keep it held after this store is closed: the child closes its copy at once
        import weakref
        ref = weakref.ref(f)

        def drop_in_child() -> None:
            held = ref()
            if held is not None and not held.closed:
                held.close()
        os.register_at_fork(after_in_child=drop_in_child)
        return f

    def _release(self) -> None:
        if self._lock is not None:
            # unlock explicitly: the lock belongs to the open file, which a child forked a
            # moment ago may still share (it drops its copy, but maybe not yet)
            import fcntl
            try:
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            finally:
                self._lock.close()
                self._lock = None

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            self._release()

    def meta(self) -> dict:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    def _has_version_column(self) -> bool:
        return any(c[1] == "version" for c in self.db.execute("PRAGMA table_info(results)"))

    def stale(self) -> dict:
        """{version: rows} of the rows not computed by this store's ``version`` (None: a
        row of a store from before 0.2.0, whose version is unknown)."""
        if not self._has_version_column():
            return {None: self.count()} if self.count() else {}
        return dict(self.db.execute(
            "SELECT version, COUNT(*) FROM results WHERE version IS NOT ? GROUP BY version",
            (self.version,)))

    def begin(self, fingerprint: str, spec_json: str, resume: bool,
              recompute_stale: bool = False) -> int:
        """Claim the store for a sweep; a store of another sweep, or a started one
        without ``resume``, is an error; so are rows of another tilesim version unless
        ``recompute_stale``, which deletes them (to be computed again). Returns how many
        stale rows were deleted."""
        if self.version is None:
            raise ValueError("Store.begin needs the running tilesim version: Store(path, version)")
        m = self.meta()
        n = self.count()
        stale = self.stale()
        # under another version the keys can differ (a zoo model or preset changed): the
        # same spec with stale rows is the same sweep
        if m.get("fingerprint") not in (None, fingerprint) and not (
                stale and m.get("spec") == spec_json):
            raise SweepError("the store holds a different sweep (other design points, models "
                             "or settings)", source=str(self.path),
                             fix="use another --out folder, or delete the old store",
                             py_fix="use another out folder, or delete the old store")
        if n and not resume:
            raise SweepError(f"the store already holds {n} rows of this sweep",
                             source=str(self.path),
                             fix="add --resume to finish it, or use another --out folder",
                             py_fix="pass resume=True to finish it, or use another out folder")
        if stale and not recompute_stale:
            made = ", ".join(f"{c} by tilesim {v}" if v is not None else
                             f"{c} by an unknown version (before 0.2.0 stores recorded none)"
                             for v, c in sorted(stale.items(), key=lambda i: str(i[0])))
            raise SweepError(f"{sum(stale.values())} of its {n} rows were computed by another "
                             f"tilesim version ({made}), not by the running {self.version}; "
                             "their numbers may differ", source=str(self.path),
                             fix="add --recompute-stale to recompute those rows, or use "
                                 "another --out folder",
                             py_fix="pass recompute_stale=True to recompute those rows, or "
                                    "use another out folder")
        with self.db:
            self.db.execute("BEGIN")
            if not self._has_version_column():
                self.db.execute("DELETE FROM results")
                self.db.execute("ALTER TABLE results ADD COLUMN version TEXT")
            else:
                self.db.execute("DELETE FROM results WHERE version IS NOT ?", (self.version,))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('spec', ?)", (spec_json,))
        return sum(stale.values())

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def keys(self) -> set[str]:
        return {k for (k,) in self.db.execute("SELECT key FROM results")}

    def put(self, rows) -> None:
        """Write one design's rows (key, design, model, batch, status, row) atomically,
        each with this store's version."""
        data = [(k, d, m, b, s, json.dumps(r, sort_keys=True, allow_nan=True), self.version)
                for k, d, m, b, s, r in rows]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("INSERT OR REPLACE INTO results (key, design, model, batch, "
                                "status, row, version) VALUES (?, ?, ?, ?, ?, ?, ?)", data)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def row_map(self) -> dict:
        """{key: row dict} of every stored row (a co-design search reads its points back
        by key)."""
        return {k: json.loads(r) for k, r in self.db.execute("SELECT key, row FROM results")}

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
