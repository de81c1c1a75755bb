"""Sweeps under hostile input: an unrepresentable design point is infeasible with its
reason (the sweep and its --resume go on); NaN/inf vary values are refused before any work;
a damaged store on --resume is exit 2 with the fix; one writer per store, so two sweeps
into one store never compute a design point twice."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from clean_outputs import assert_clean_outputs, one_error

from tilesim.cli import main
from tilesim.explore.sweep import Store

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "examples" / "tiny_net.yaml")


def spec(tmp_path, vary, name="hostile", **extra) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump({"version": 1, "name": name, "base": "eyeriss_like",
                                 "models": [TINY], "vary": vary,
                                 "search": {"candidates": 200}, **extra}, sort_keys=False))
    return p


def sweep(p, out, *flags):
    return main(["sweep", str(p), "--out", str(out), "--quiet", "--workers", "1", *flags])


@pytest.mark.parametrize("vary, key", [
    ({"compute.arrays[0].rows": [2 ** 63, 16]}, "vary.compute.arrays[0].rows[0]"),
    ({"compute.arrays[0].rows": [16, 2 ** 62]}, "vary.compute.arrays[0].rows[1]"),
    ({"compute.arrays[0].cols": [8, 2 ** 64]}, "vary.compute.arrays[0].cols[1]"),
])
def test_an_unrepresentable_vary_value_is_refused_before_any_work(tmp_path, capsys, vary,
                                                                     key):
    """A rows/cols value past int64, or past the largest array tilesim takes: the spec is
    refused with one line naming the vary key, before any design point is computed."""
    p, out = spec(tmp_path, vary), tmp_path / "out"
    one_error(["sweep", str(p), "--out", str(out), "--quiet", "--workers", "1"], capsys, key,
              "Fix:")
    assert not (out / "results.sqlite").exists()


@pytest.mark.parametrize("vary, index", [
    ({"memory[1].size": ["1 B", "1 MiB"]}, 0),
    ({"memory[1].size": ["1 MiB", "8 B"]}, 1),
])
def test_an_infeasible_design_point_is_recorded_not_fatal(tmp_path, capsys, vary, index):
    """A design no layer maps on: that point's row is infeasible with a reason, the other
    row is computed; a --resume then computes nothing, and the outputs are clean (no NaN,
    Infinity or negative count)."""
    p, out = spec(tmp_path, vary), tmp_path / "out"
    assert sweep(p, out) == 0
    df = pd.read_csv(out / "results.csv")
    assert list(df["status"]) == ["ok" if i != index else "infeasible" for i in range(2)]
    assert "fits" in df.loc[index, "reason"] or "size" in df.loc[index, "reason"]
    assert df.loc[1 - index, "latency_ms"] > 0
    capsys.readouterr()
    assert sweep(p, out, "--resume") == 0
    assert "computed 0, resumed 2" in capsys.readouterr().out
    assert_clean_outputs(out)
    assert main(["report", str(out), "-o", str(tmp_path / "r.html")]) == 0


@pytest.mark.parametrize("values", [[".nan"], [".inf", 16], ["-.inf"], [16, ".NaN"]])
def test_nan_and_inf_vary_values_are_refused_before_any_work(tmp_path, capsys, values):
    p = tmp_path / "s.yaml"
    p.write_text(f"version: 1\nname: n\nbase: eyeriss_like\nmodels: [{TINY}]\n"
                 f"vary:\n  compute.arrays[0].rows: [{', '.join(map(str, values))}]\n")
    one_error(["sweep", str(p), "--out", str(tmp_path / "o")], capsys, p,
              "compute.arrays[0].rows", "not a finite number", "Fix:")
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    t = tmp_path_factory.mktemp("store")
    p = spec(t, {"compute.arrays[0].rows": [8, 16]})
    assert sweep(p, t / "out") == 0
    return p, (t / "out" / "results.sqlite").read_bytes()


def _damage(db: Path, how: str, good: bytes) -> None:
    for extra in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        extra.unlink(missing_ok=True)
    if how == "truncated":
        db.write_bytes(good[:3000])
    elif how == "garbage":
        db.write_bytes(bytes(range(256)) * 64)
    elif how == "text":
        db.write_text("design,latency_ms\n0,1.5\n")
    elif how == "foreign":
        db.unlink()
        c = sqlite3.connect(db)
        c.execute("CREATE TABLE results (id INTEGER, value TEXT)")
        c.commit()
        c.close()
    elif how == "no meta":
        db.write_bytes(good)
        c = sqlite3.connect(db)
        c.execute("DROP TABLE meta")
        c.execute("CREATE TABLE meta (k TEXT)")
        c.commit()
        c.close()


@pytest.mark.parametrize("how", ["truncated", "garbage", "text", "foreign", "no meta"])
def test_a_damaged_store_on_resume_is_one_clear_line(stored, tmp_path, capsys, how):
    p, good = stored
    out = tmp_path / "out"
    out.mkdir()
    db = out / "results.sqlite"
    db.write_bytes(good)
    _damage(db, how, good)
    one_error(["sweep", str(p), "--out", str(out), "--quiet", "--workers", "1", "--resume"],
              capsys, db, "damaged or not a tilesim store", "Fix: delete the file")


def test_a_second_writer_is_refused_naming_the_holder(stored, tmp_path, capsys):
    """While a Store is open for writing, a sweep into it is refused at once naming this
    process's PID; once it is closed the sweep runs."""
    p, _ = stored
    out = tmp_path / "out"
    holder = Store(out / "results.sqlite", version="0.2.0")
    try:
        one_error(["sweep", str(p), "--out", str(out), "--quiet", "--workers", "1"], capsys,
                  out / "results.sqlite", f"another sweep (PID {os.getpid()})",
                  "Fix: wait for it")
        with pytest.raises(Exception, match=f"PID {os.getpid()}"):
            Store(out / "results.sqlite", version="0.2.0")
        Store(out / "results.sqlite").close()   # a reader needs no lock
    finally:
        holder.close()
    assert sweep(p, out) == 0


@pytest.mark.slow
def test_two_concurrent_sweeps_never_compute_a_point_twice(tmp_path):
    """Two `tilesim sweep` processes into one store, started together: one computes every
    row, the other is refused (exit 2 naming the holder) or finds it finished (and
    is refused without --resume, or resumes computing nothing); the store holds each row
    once."""
    p = spec(tmp_path, {"compute.arrays[0].rows": [4, 6, 8, 10, 12, 16]}, name="pair")
    out = tmp_path / "out"
    for resume in ([], ["--resume"]):
        if out.exists():
            import shutil
            shutil.rmtree(out)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [subprocess.Popen([sys.executable, "-m", "tilesim.cli", "sweep", str(p),
                                   "--out", str(out), "--workers", "1", "--quiet", *resume],
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        got = [(q.wait(timeout=300), *q.communicate()) for q in procs]
        computed = 0
        for code, so, se in got:
            assert "Traceback" not in se, se
            if code == 0:
                computed += int(so.split("computed ")[1].split(",")[0])
            else:
                assert code == 2 and len(se.strip().splitlines()[-1:]) == 1, se
                assert "another sweep (PID" in se or "already holds 6 rows" in se, se
        assert any(c == 0 for c, _, _ in got)
        assert computed == 6, got             # no design point computed twice
        s = Store(out / "results.sqlite")
        assert s.count() == 6
        s.close()


def test_closing_the_store_releases_the_lock_while_a_copy_of_its_file_is_open(tmp_path):
    """A worker forked a moment ago shares the lock file's open description until its
    at-fork hook drops it; closing the store releases the lock whatever copies remain (a
    duplicate descriptor stands in for the child that has not yet run its hook)."""
    holder = Store(tmp_path / "results.sqlite", version="0.2.0")
    copy = os.dup(holder._lock.fileno())
    try:
        holder.close()
        Store(tmp_path / "results.sqlite", version="0.2.0").close()
    finally:
        os.close(copy)


def test_the_lock_is_not_held_by_forked_workers(tmp_path):
    """A process forked while a store is open (a worker) does not hold the lock: once the
    store is closed, a new writer gets it while the child still runs."""
    import signal
    holder = Store(tmp_path / "results.sqlite", version="0.2.0")
    pid = os.fork()
    if pid == 0:   # the child: outlives the parent's store
        time.sleep(30)
        os._exit(0)
    try:
        holder.close()
        Store(tmp_path / "results.sqlite", version="0.2.0").close()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
