"""The tilesim command: the README's main job, outputs on disk, and their documentation."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tilesim import arch
import tilesim
from tilesim.cli import main

ROOT = Path(__file__).parents[1]
REQUIRED_COLUMNS = ["layer", "kind", "macs", "compute_cycles", "stall_cycles", "total_cycles",
                    "utilization", "dram_read_bytes", "dram_write_bytes"]
REQUIRED_SUMMARY = ["total_cycles", "latency_s", "macs", "throughput_samples_per_s", "utilization"]


def test_run_writes_outputs(tmp_path, capsys):
    """`run --out` writes layers.csv, summary.json, arch.yaml and model.csv that agree."""
    out = tmp_path / "r18"
    assert main(["run", "--arch", "tpu_v1", "--model", "resnet18", "--batch", "2",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "TOTAL" in text and re.search(r"\d (ms|µs) ", text) and "cycles" in text
    df = pd.read_csv(out / "layers.csv")
    assert set(REQUIRED_COLUMNS) <= set(df.columns)
    s = json.loads((out / "summary.json").read_text())
    assert set(REQUIRED_SUMMARY) <= set(s)
    assert s["macs"] == df["macs"].sum() == 2 * 1_814_073_344
    assert s["total_cycles"] == (df["total_cycles"] + 1).sum()
    assert s["latency_s"] == pytest.approx(s["total_cycles"] / 700e6)
    assert s["throughput_samples_per_s"] == pytest.approx(2 / s["latency_s"])
    assert s["tilesim_version"] == tilesim.__version__ and "resnet18" in s["command"]
    assert arch.load(out / "arch.yaml") == arch.load("tpu_v1")
    assert len(pd.read_csv(out / "model.csv")) == len(df)
    # non-MAC ops report their work separately, not as MACs
    ops = df[df["kind"].isin(["maxpool", "add", "gap"])]
    assert (ops["macs"] == 0).all() and (ops["vector_ops"] > 0).all()


def test_rerun_from_resolved_arch_is_identical(tmp_path):
    """Re-running with the written arch.yaml reproduces layers.csv byte for byte."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["run", "--arch", "nvdla_small", "--model", "mobilenet_v2", "--out", str(a),
                 "--quiet"]) == 0
    assert main(["run", "--arch", str(a / "arch.yaml"), "--model", "mobilenet_v2",
                 "--out", str(b), "--quiet"]) == 0
    assert (a / "layers.csv").read_bytes() == (b / "layers.csv").read_bytes()


def test_every_output_field_is_documented(tmp_path):
    """Each layers.csv column, summary.json key and tensors.csv column appears in
    docs/outputs.md."""
    out = tmp_path / "o"
    assert main(["run", "--arch", "tpu_v1", "--model", "alexnet", "--out", str(out), "--quiet"]) == 0
    doc = (ROOT / "docs" / "outputs.md").read_text()
    documented = set(re.findall(r"`([a-z_<>]+)`", doc))
    cols = pd.read_csv(out / "layers.csv").columns
    levels = [m.name for m in arch.load("tpu_v1").onchip]
    for c in cols:
        generic = next((c.replace(l, "<level>", 1) for l in levels if c.startswith(l + "_")), c)
        assert generic in documented, c
    for k in json.loads((out / "summary.json").read_text()):
        assert k in documented, k
    # tensors.csv: its section's table names every column, in the file's order
    section = doc[doc.index("## `tensors.csv`"):]
    section = section[:section.index("\n## ")]
    rows = re.findall(r"^\| `([a-z_]+)` \|", section, re.M)
    assert rows == list(pd.read_csv(out / "tensors.csv").columns)


def test_list_names_presets_and_models(capsys):
    """`tilesim list` shows every preset and zoo model."""
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in arch.presets() + ["resnet50", "mobilenet_v2", "yolo_tiny"]:
        assert name in out


def test_markdown_format(capsys):
    """`--format markdown` prints a Markdown table with unit-bearing headers."""
    assert main(["run", "--arch", "eyeriss_like", "--model", "alexnet", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "| layer | kind | MACs | latency |" in out and re.search(r"\| [\d.]+ (ms|µs) \|", out)


def test_readme_commands_run(tmp_path):
    """The README's main command runs as a separate process and prints the total."""
    readme = (ROOT / "README.md").read_text()
    cmd = re.search(r"pip install \. && (tilesim run [^\n`]+)", readme).group(1)
    args = shlex.split(cmd)[1:]
    proc = subprocess.run([sys.executable, "-m", "tilesim.cli", *args], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "total:" in proc.stdout and re.search(r"cycles = [\d.]+ (ns|µs|ms|s) at", proc.stdout)
    assert re.search(r"pip install -e '\.\[dev\]' && pytest", readme)
    assert "pytest" in (ROOT / ".ci" / "run").read_text()


def test_python_api_matches_cli(tmp_path):
    """tilesim.simulate gives the same totals as the CLI's summary.json."""
    out = tmp_path / "o"
    assert main(["run", "--arch", "edge_tpu_like", "--model", "resnet34", "--out", str(out),
                 "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    r = tilesim.simulate("edge_tpu_like", "resnet34")
    assert r.total_cycles == s["total_cycles"] and r.macs == s["macs"]


def test_readme_python_example_runs():
    """The README's Python example runs, and its table and totals agree with the result."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"From Python:\n\n```python\n(.*?)```", readme, re.S).group(1)
    env = {}
    exec(block, env)
    r, df, s = env["result"], env["df"], env["s"]
    assert len(df) == len(r.layers) and int(df["total_cycles"].sum()) + len(df) == r.total_cycles
    assert s["latency_s"] == r.latency_s and s["macs"] == int(df["macs"].sum())


def test_readme_architecture_example_loads_and_runs(tmp_path, capsys):
    """The YAML architecture in the README loads and runs the example layer table."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", readme, re.S).group(1)
    path = tmp_path / "my_accel.yaml"
    path.write_text(block)
    a = arch.load(path)
    assert (a.array.rows, a.array.count, a.onchip[0].size) == (32, 2, 2**20)
    assert main(["run", "--arch", str(path), "--model", str(ROOT / "examples" / "tiny_net.yaml"),
                 "--format", "markdown"]) == 0
    assert "| dw2 | depthwise |" in capsys.readouterr().out


def test_gemm_form_topology_matches_its_conv_form(tmp_path):
    """A SCALE-Sim `Layer, M, N, K` row times like SCALE-Sim's conv form of it (golden)."""
    import csv
    rows = [r for r in csv.DictReader((ROOT / "tests/data/scalesim_v3_golden.csv").open())
            if r["case"].startswith("gemm")]
    assert rows
    for r in rows:
        cfg = tmp_path / "a.cfg"
        cfg.write_text(f"[architecture_presets]\nArrayHeight: {r['array_rows']}\nArrayWidth: "
                       f"{r['array_cols']}\nIfmapSramSzkB: 1024\nFilterSramSzkB: 1024\n"
                       f"OfmapSramSzkB: 1024\nDataflow: {r['dataflow']}\n")
        m, k, n = int(r["ifmap_h"]), int(r["ifmap_w"]), int(r["num_filters"])
        topo = tmp_path / "g.csv"
        topo.write_text(f"Layer, M, N, K,\ng0, {m}, {n}, {k},\n")
        res = tilesim.simulate(str(cfg), str(topo))
        assert res.layers[0].compute_cycles == int(r["total_cycles"]), r["case"]
        assert res.macs == m * n * k


def test_layer_table_has_whole_numbers_everywhere(tmp_path):
    """Counts in layers.csv are integers with no blanks, vector-op rows included."""
    out = tmp_path / "o"
    assert main(["run", "--arch", "tpu_v1", "--model", "resnet18", "--out", str(out), "--quiet"]) == 0
    df = pd.read_csv(out / "layers.csv")
    counts = [c for c in df.columns if c.endswith("_bytes") or c.endswith("cycles")
              or c in ("macs", "vector_ops", "folds")]
    assert not df[counts].isna().any().any()
    assert all(pd.api.types.is_integer_dtype(df[c]) for c in counts)
    pool = df[df["kind"] == "maxpool"].iloc[0]
    assert pool["unified_buffer_write_bytes"] == pool["dram_read_bytes"] + pool["dram_write_bytes"]


def test_deprecated_objective_default_warns_one_line_and_means_traffic(tmp_path, capsys):
    """`--objective default` (and `objective: default` in a sweep spec) warns once, in one
    line, and runs the `traffic` objective; the outputs say so."""
    out = tmp_path / "r"
    assert main(["run", "--arch", "tpu_v1", "--model", "alexnet", "--objective", "default",
                 "--quiet", "--out", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tilesim: warning: objective 'default' is deprecated; it means 'traffic' "
                   "(the least DRAM traffic tiling): use 'traffic'"]
    assert json.loads((out / "summary.json").read_text())["mapping_objective"] == "traffic"
    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nname: t\nbase: tpu_v1\nmodels: [alexnet]\n"
                    "vary:\n  memory[0].bandwidth: [8 GB/s, 34 GB/s]\nobjective: default\n")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "sw"), "--workers", "1",
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("tilesim: warning: objective 'default' is deprecated") == 1
    rows = (tmp_path / "sw" / "results.csv").read_text().splitlines()
    head = rows[0].split(",")
    assert {r.split(",")[head.index("objective")] for r in rows[1:]} == {"traffic"}
