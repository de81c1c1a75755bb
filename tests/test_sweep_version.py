"""The sweep store records the tilesim version of every row; a resume into rows of another
version (or of a pre-0.2.0 store, which recorded none) refuses with one line naming the
store, the versions and the fix, and ``recompute_stale`` / ``--recompute-stale``
recomputes exactly those rows."""
from __future__ import annotations

import sqlite3

import pytest
import yaml

import tilesim
import tilesim._version
from tilesim.cli import main
from tilesim.explore.sweep import SweepError

from test_sweep import spec

RUNNING = tilesim.__version__
OTHER = "0.1.9"


def _versions(d) -> dict:
    c = sqlite3.connect(d / "results.sqlite")
    got = dict(c.execute("SELECT version, COUNT(*) FROM results GROUP BY version"))
    c.close()
    return got


@pytest.fixture
def done(tmp_path):
    """A finished 6-row sweep in tmp_path/out, and its table."""
    out = tmp_path / "out"
    df = tilesim.sweep(spec(), out=out, workers=1)
    return out, df


def test_every_row_records_the_version(done):
    out, df = done
    assert len(df) == 6 and _versions(out) == {RUNNING: 6}
    assert "version" not in df.columns   # the results table is unchanged


def test_resume_under_another_version_refuses(done, monkeypatch, tmp_path, capsys):
    out, _ = done
    monkeypatch.setattr(tilesim._version, "__version__", OTHER)
    with pytest.raises(SweepError) as e:
        tilesim.sweep(spec(), out=out, workers=1, resume=True)
    msg = str(e.value)
    assert "\n" not in msg
    for needle in (str(out / "results.sqlite"), f"6 by tilesim {RUNNING}", f"running {OTHER}",
                   "recompute_stale=True"):   # a Python caller gets the keyword, not the flag
        assert needle in msg, needle
    assert "--recompute-stale" not in msg
    assert _versions(out) == {RUNNING: 6}          # nothing was touched
    f = tmp_path / "spec.yaml"
    f.write_text(yaml.safe_dump(spec(), sort_keys=False))
    assert main(["sweep", str(f), "--out", str(out), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"tilesim {RUNNING}" in err and "--recompute-stale" in err


def test_recompute_stale_recomputes_only_stale_rows(done, monkeypatch):
    out, df = done
    c = sqlite3.connect(out / "results.sqlite")
    c.execute("UPDATE results SET version = ? WHERE design < 2", (OTHER,))   # 2 designs
    c.commit()
    c.close()
    with pytest.raises(SweepError, match=rf"2 of its 6 rows .*\(2 by tilesim {OTHER}\)"):
        tilesim.sweep(spec(), out=out, workers=1, resume=True)
    again = tilesim.sweep(spec(), out=out, workers=1, resume=True, recompute_stale=True)
    m = again.attrs["sweep"]
    assert (m["computed"], m["resumed"]) == (2, 4)
    assert _versions(out) == {RUNNING: 6}
    assert again.equals(df)                           # same code, same numbers


def test_recompute_stale_from_the_cli(done, monkeypatch, tmp_path):
    out, df = done
    monkeypatch.setattr(tilesim._version, "__version__", OTHER)
    f = tmp_path / "spec.yaml"
    f.write_text(yaml.safe_dump(spec(), sort_keys=False))
    assert main(["sweep", str(f), "--out", str(out), "--resume", "--recompute-stale",
                 "--quiet"]) == 0
    assert _versions(out) == {OTHER: 6}


def test_store_without_version_column_is_unknown(done, tmp_path):
    """A store written before 0.2.0 (no version column) counts as an unknown version."""
    out, df = done
    old = tmp_path / "old"
    old.mkdir()
    new = sqlite3.connect(out / "results.sqlite")
    c = sqlite3.connect(old / "results.sqlite")
    c.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE results (key TEXT PRIMARY KEY, design INTEGER NOT NULL,
            model TEXT NOT NULL, batch INTEGER NOT NULL, status TEXT NOT NULL,
            row TEXT NOT NULL);""")
    c.executemany("INSERT INTO meta VALUES (?, ?)", new.execute("SELECT * FROM meta"))
    c.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?)", new.execute(
        "SELECT key, design, model, batch, status, row FROM results"))
    c.commit()
    c.close()
    new.close()
    with pytest.raises(SweepError, match="6 by an unknown version"):
        tilesim.sweep(spec(), out=old, workers=1, resume=True)
    again = tilesim.sweep(spec(), out=old, workers=1, resume=True, recompute_stale=True)
    assert again.attrs["sweep"]["computed"] == 6 and _versions(old) == {RUNNING: 6}
    assert again.equals(df)


def test_a_different_sweep_is_still_refused_as_such(done, monkeypatch):
    """Stale rows of another spec are not this sweep's: --recompute-stale does not wipe them."""
    out, _ = done
    monkeypatch.setattr(tilesim._version, "__version__", OTHER)
    with pytest.raises(SweepError, match="different sweep"):
        tilesim.sweep(spec(batch=[2]), out=out, workers=1, resume=True, recompute_stale=True)
    assert _versions(out) == {RUNNING: 6}
