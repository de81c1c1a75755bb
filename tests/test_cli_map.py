"""`tilesim map` and the search options of `tilesim run`: objectives trade as they should,
outputs carry energy, and a layer that fits no buffer is a one-line error."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import tilesim
from tilesim.cli import main

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "examples" / "tiny_net.yaml")


def test_energy_objective_spends_less_energy_latency_objective_fewer_cycles():
    """Exhaustive searches: per layer, the energy optimum costs no more energy than the
    latency optimum, and the latency optimum takes no more cycles."""
    kw = dict(strategy="exhaustive", budget=10 ** 7)
    lat = tilesim.simulate("eyeriss_like", TINY, batch=2, objective="latency", **kw)
    en = tilesim.simulate("eyeriss_like", TINY, batch=2, objective="energy", **kw)
    dflt = tilesim.simulate("eyeriss_like", TINY, batch=2, objective="traffic")
    for a, b, d in zip(lat.layers, en.layers, dflt.layers):
        assert b.energy_pj <= a.energy_pj * (1 + 1e-12)
        assert a.cycles <= b.cycles and a.cycles <= d.cycles
        assert b.energy_pj <= d.energy_pj * (1 + 1e-12)
    assert (lat.summary()["mapping_objective"], en.summary()["mapping_objective"]) == (
        "latency", "energy")


def test_run_with_objective_and_budget_writes_energy(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "--arch", "tpu_v1", "--model", TINY, "--objective", "edp",
                 "--search-budget", "3000", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"energy: [\d.]+ [nµm]?J", text) and "TOPS/W" in text and "mm²" in text
    s = json.loads((out / "summary.json").read_text())
    df = pd.read_csv(out / "layers.csv")
    assert s["energy_uj"] == pytest.approx(df["energy_pj"].sum() * 1e-6)
    parts = [c for c in df.columns if c.endswith("_energy_pj")]
    assert "dram_input_energy_pj" in parts and "mac_energy_pj" in parts
    assert (df[parts].sum(axis=1) - df["energy_pj"]).abs().max() < 1e-6 * df["energy_pj"].max()
    assert s["mapping_objective"] == "edp" and s["area_sq_mm"] > 0


def test_map_prints_loops_tiles_and_runner_ups(capsys):
    assert main(["map", "--arch", "tpu_v1", "--model", "resnet18", "--layer", "layer2.0.conv1",
                 "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "for r in range(" in out and "for k in range(" in out and "for c in range(" in out
    assert "unified_buffer [input, output]:" in out and "weight_fifo [weight]:" in out
    assert "for fold in range(" in out and "runner-ups" in out
    rows = [l for l in out.splitlines() if l.strip()[:1].isdigit() and "%" in l]
    assert len(rows) == 3 and all("+" in r.split()[-1] for r in rows)


def test_map_unknown_or_vector_layer_is_a_clear_error(capsys):
    assert main(["map", "--arch", "tpu_v1", "--model", "resnet18", "--layer", "nope"]) == 2
    assert "no layer 'nope'" in capsys.readouterr().err
    assert main(["map", "--arch", "tpu_v1", "--model", "resnet18", "--layer", "maxpool"]) == 2
    assert "not a MAC layer" in capsys.readouterr().err


def test_layer_that_fits_no_buffer_names_layer_operand_and_size(tmp_path, capsys):
    y = tmp_path / "tiny.yaml"
    y.write_text("""version: 1
name: tiny
clock: 1 GHz
technology: 28 nm
precision: {input: int8, weight: int8, accumulator: int32}
compute:
  arrays: [{rows: 8, cols: 8, dataflow: ws}]
  vector: {lanes: 8}
memory:
  - {name: dram, kind: dram, holds: [input, weight, output], bandwidth: 10 GB/s}
  - {name: act, kind: sram, holds: [input, output], size: 64 KiB, double_buffered: true}
  - {name: wbuf, kind: sram, holds: [weight], size: 512 B, double_buffered: true}
""")
    assert main(["run", "--arch", str(y), "--model", "resnet18", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    # conv1 (7x7x3) on an 8x8 ws array: the smallest weight tile that fills the array is
    # 8 output channels x 1 input channel x 49 = 392 B, double-buffered 784 B
    assert "layer 'conv1'" in err and "'wbuf'" in err and "weight tile needs the most" in err
    assert "at least 784 B" in err and str(y) in err


def test_readme_map_command_runs(capsys):
    import re
    import shlex
    cmd = re.search(r"(tilesim map [^\n`]+)", (ROOT / "README.md").read_text()).group(1)
    assert main(shlex.split(cmd)[1:]) == 0
    assert "for fold in range(" in capsys.readouterr().out


def test_map_top_must_not_be_negative(capsys):
    """--top -1 is refused (argparse, exit 2) instead of slicing the runner-up list."""
    with pytest.raises(SystemExit) as e:
        main(["map", "--arch", "tpu_v1", "--model", TINY, "--layer", "conv1", "--top", "-1"])
    assert e.value.code == 2 and "--top: -1 must be >= 0" in capsys.readouterr().err


def test_run_prints_the_energy_source_tables(tmp_path, capsys, monkeypatch):
    """The energy line is followed by the source tables of its figures; an explicit
    per-level override in the YAML shows up as one."""
    from tilesim import arch
    monkeypatch.setenv("COLUMNS", "1000")   # the line unwrapped
    assert main(["run", "--arch", "tpu_v1", "--model", TINY]) == 0
    line = [l for l in capsys.readouterr().out.splitlines()
            if l.startswith("energy source tables: ")]
    assert len(line) == 1 and "Horowitz, ISSCC 2014, 45 nm" in line[0]
    assert "Stillmaker & Baas 2017" in line[0] and "override" not in line[0]
    d = arch.load("tpu_v1").to_yaml_dict()
    d["memory"][2]["read_energy"] = "5 pJ"
    y = tmp_path / "a.yaml"
    y.write_text(arch.dump_yaml(arch.from_dict(d)))
    assert main(["run", "--arch", str(y), "--model", TINY]) == 0
    assert "explicit override in the architecture YAML" in capsys.readouterr().out


def test_output_piped_into_head_stops_quietly():
    """`tilesim map ... | head -1`: the closed pipe ends the command without an error line
    (was: 'tilesim: error: : Broken pipe')."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "tilesim.cli", "map", "--arch", "tpu_v1",
                          "--model", "resnet18", "--layer", "conv1"], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    p.stdout.close()   # the reader is gone before anything is written
    err = p.stderr.read().decode()
    p.wait(timeout=60)
    assert p.returncode == 141 and err == "", err   # 128 + SIGPIPE, as a shell reports it
