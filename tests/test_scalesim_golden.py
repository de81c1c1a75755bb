"""compute_cycles equals SCALE-Sim v3's "Total Cycles" on its own inputs (golden data).

tests/data/scalesim_v3_golden.csv holds SCALE-Sim 3.0.0 COMPUTE_REPORT.csv values for 45
stall-free and 3 stalling (layer, array, dataflow) cases; provenance in
tests/data/scalesim_v3_golden.md. Each case is fed through tilesim the way a user would:
a SCALE-Sim .cfg and a SCALE-Sim topology CSV.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

import tilesim

GOLDEN = Path(__file__).parent / "data" / "scalesim_v3_golden.csv"
ROWS = list(csv.DictReader(GOLDEN.open()))
CFG = """[general]
run_name = {name}

[architecture_presets]
ArrayHeight:    {rows}
ArrayWidth:     {cols}
IfmapSramSzkB:    65536
FilterSramSzkB:   65536
OfmapSramSzkB:    65536
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Dataflow : {df}
Bandwidth : 1024
"""
TOPO = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
        "Num Filter, Strides,\n{name},{ifmap_h},{ifmap_w},{filter_h},{filter_w},{channels},"
        "{num_filters},{stride},\n")


def _run(row, tmp_path):
    cfg = tmp_path / f"{row['case']}.cfg"
    cfg.write_text(CFG.format(name=row["case"], rows=row["array_rows"], cols=row["array_cols"],
                              df=row["dataflow"]))
    topo = tmp_path / f"{row['case']}.csv"
    topo.write_text(TOPO.format(name=row["case"], **{k: row[k] for k in row if k != "case"}))
    result = tilesim.simulate(str(cfg), str(topo))
    assert len(result.layers) == 1
    return result.layers[0]


@pytest.mark.parametrize("row", [r for r in ROWS if r["stall_cycles"] == "0"],
                         ids=lambda r: r["case"])
def test_compute_cycles_match_scalesim(row, tmp_path):
    """compute_cycles == SCALE-Sim Total Cycles for every stall-free golden case."""
    assert _run(row, tmp_path).compute_cycles == int(row["total_cycles"])


@pytest.mark.parametrize("row", [r for r in ROWS if r["stall_cycles"] != "0"],
                         ids=lambda r: r["case"])
def test_stalling_cases_split_into_compute_plus_stall(row, tmp_path):
    """Where SCALE-Sim stalls, its total minus its stalls is our compute_cycles."""
    res = _run(row, tmp_path)
    assert res.compute_cycles == int(row["total_cycles"]) - int(row["stall_cycles"])


def test_golden_covers_every_dataflow_and_nonsquare_arrays():
    """The golden set exercises os, ws and is, and arrays that are not square."""
    assert {r["dataflow"] for r in ROWS} == {"os", "ws", "is"}
    assert any(r["array_rows"] != r["array_cols"] for r in ROWS)
    assert sum(r["stall_cycles"] == "0" for r in ROWS) >= 30


def test_google_cfg_equals_preset(tmp_path):
    """A SCALE-Sim config with google.cfg's values reads as the scalesim_google preset's hardware.

    Values of SCALE-Sim's configs/google.cfg: 256x256, os, ifmap/filter SRAM 6144 kB,
    ofmap 2048 kB, Bandwidth 10. The shared reference copy is read too when present.
    """
    from tilesim import arch
    cfg = tmp_path / "google.cfg"
    cfg.write_text("[general]\nrun_name = google\n\n[architecture_presets]\nArrayHeight: 256\n"
                   "ArrayWidth: 256\nIfmapSramSzkB: 6144\nFilterSramSzkB: 6144\n"
                   "OfmapSramSzkB: 2048\nDataflow : os\nBandwidth : 10\n")
    ref = Path(__file__).parents[2] / "shared" / "reference" / "scalesim" / "configs" / "google.cfg"
    b = arch.load("scalesim_google")
    for path in [cfg] + ([ref] if ref.exists() else []):
        a = arch.load(path)
        assert a.compute == b.compute and a.precision == b.precision
        assert [(m.holds, m.size, m.double_buffered) for m in a.memory] == \
            [(m.holds, m.size, m.double_buffered) for m in b.memory]
        assert a.bytes_per_cycle(a.dram) == b.bytes_per_cycle(b.dram) == 10
