"""Sweeps and the network schedule: every row stores the schedule that ran (`fusion`) and
the DRAM traffic it saved (`dram_saved_bytes`), in the store and results.csv; `fusion` is
varied by key path like any architecture key, or set for every design point by the spec's
`fusion` (a run option, as `tilesim run --fusion`), never both."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import tilesim
from tilesim.explore.sweep import SweepError, plan
from tilesim.mapper import Budget

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "examples" / "tiny_net.yaml")


def spec(**kw):
    d = {"version": 1, "name": "f", "base": "tpu_v1", "models": [TINY],
         "vary": {"fusion": ["none", "residency"]}, "search": {"candidates": 2000}}
    d.update(kw)
    return d


def test_fusion_and_dram_saved_are_stored_columns(tmp_path):
    """Varying the key path `fusion`: each row's schedule and saved bytes equal a direct
    simulation's, in the returned frame, results.csv and the SQLite store."""
    df = tilesim.sweep(spec(), out=tmp_path, workers=1)
    assert list(df["fusion"]) == ["none", "residency"] and (df["status"] == "ok").all()
    for _, row in df.iterrows():
        r = tilesim.simulate("tpu_v1", TINY, fusion=row["fusion"],
                             budget=Budget(candidates=2000))
        s = r.summary()
        assert row["dram_saved_bytes"] == s["dram_saved_bytes"]
        assert row["dram_read_bytes"] == s["dram_read_bytes"]
    assert df["dram_saved_bytes"].tolist()[0] == 0 < df["dram_saved_bytes"].tolist()[1]
    csv = pd.read_csv(tmp_path / "results.csv")
    assert csv["fusion"].tolist() == ["none", "residency"]
    assert csv["dram_saved_bytes"].tolist() == df["dram_saved_bytes"].tolist()
    db = sqlite3.connect(tmp_path / "results.sqlite")
    rows = [r for (r,) in db.execute("SELECT row FROM results ORDER BY design")]
    db.close()
    assert all('"fusion": ' in r and '"dram_saved_bytes": ' in r for r in rows)


def test_the_spec_sets_one_schedule_for_every_design_point():
    """`fusion: none` in the spec overrides each design's own; it is part of each row's
    key (a different question), and a spec without it keeps its keys and settings."""
    vary = {"memory[1].size": ["1 MiB", "24 MiB"]}
    plain, none = plan(spec(vary=vary)), plan(spec(vary=vary, fusion="none"))
    assert "fusion" not in plain.settings and none.settings["fusion"] == "none"
    assert set(plain.keys).isdisjoint(none.keys)
    df = tilesim.sweep(spec(vary=vary, fusion="none"), workers=1)
    assert df["fusion"].tolist() == ["none", "none"] and (df["dram_saved_bytes"] == 0).all()
    df = tilesim.sweep(spec(vary=vary), workers=1)
    assert df["fusion"].tolist() == ["residency", "residency"]   # tpu_v1's own
    assert (df["dram_saved_bytes"] > 0).all()


def test_fusion_set_and_varied_is_refused():
    with pytest.raises(SweepError, match="fusion: the spec sets the schedule.*keep one"):
        plan(spec(fusion="none"))


def test_an_unknown_schedule_is_refused():
    with pytest.raises(SweepError, match=r"fusion.*'none', 'residency' or 'depth-first'"):
        plan(spec(vary={}, fusion="stack"))
    with pytest.raises(SweepError, match=r"vary\.fusion\[0\].*not valid"):
        plan(spec(vary={"fusion": ["stack"]}))
