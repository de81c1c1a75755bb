"""`tilesim compare`: the long table's columns and sources, totals, MAPE and R^2 by hand,
and bad input."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

import tilesim
from tilesim.explore.compare import error_stats
from tilesim.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_error_stats_by_hand():
    """MAPE and R^2 over the layers both sides have; zero or missing layers left out."""
    model = {"a": 1.0, "b": 2.0, "c": 4.0, "z": 0.0}
    meas = {"a": 2.0, "b": 2.0, "c": 5.0, "z": 1.0, "only": 3.0}
    e = error_stats(model, meas)
    assert e["layers_compared"] == 3
    assert e["mape_pct"] == pytest.approx(100 * (0.5 + 0 + 0.2) / 3)
    mean = 3.0
    ss_tot = (2 - mean) ** 2 + (2 - mean) ** 2 + (5 - mean) ** 2
    assert e["r2"] == pytest.approx(1 - (1 + 0 + 1) / ss_tot)
    assert e["worst_layer"] == "a"
    assert error_stats({"a": 1.0}, {"a": 1.0})["r2"] is None  # one layer: no variance


def _measured_csv(path, model="resnet18", batch=1, scale=2.0):
    """A baseline-shaped CSV whose layer latencies are the GPU model's (eager) x scale."""
    from tilesim.sim.gpu import GpuModelParams
    r = tilesim.api.simulate_gpu("a100", model, batch=batch, precision="fp16",
                                 params=GpuModelParams(fuse_residual_add=False))
    rows = [{"scope": "layer", "layer": l.layer, "kind": l.kind, "macs": l.macs,
             "latency_ms": scale * l.cycles / r.clock_hz * 1e3, "precision_measured": "fp16",
             "device": "cuda", "batch": batch, "model": model, "device_name": "test GPU"}
            for l in r.layers]
    rows.append({**rows[0], "scope": "model", "layer": "(model)",
                 "latency_ms": scale * r.latency_s * 1e3})
    pd.DataFrame(rows).to_csv(path, index=False)
    return r


def test_compare_table_columns_and_files(tmp_path, capsys):
    """compare.csv: one row per layer x design with the documented columns and sources;
    compare_summary.json: totals per design; GPU model error exact for a x2 measurement."""
    meas = tmp_path / "m.csv"
    gpu = _measured_csv(meas, scale=2.0)
    out = tmp_path / "cmp"
    assert main(["compare", "--arch", "tpu_v1", "--arch", "nvdla_small", "--gpu", "a100",
                 "--gpu-measured", str(meas), "--model", "resnet18", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "MAPE 50.0 %" in printed
    df = pd.read_csv(out / "compare.csv")
    assert {"layer", "design", "source", "latency_ms", "energy_uj"} <= set(df.columns)
    n = len(gpu.layers)
    assert df.groupby("design").size().to_dict() == {"tpu_v1": n, "nvdla_small": n, "a100": n,
                                                     "a100 (measured)": n}
    assert set(df["source"]) == {"accelerator", "gpu-model", "gpu-measured"}
    assert df[df.source == "gpu-measured"]["energy_uj"].isna().all()
    assert (df[df.source != "gpu-measured"]["energy_uj"] > 0).all()
    s = json.loads((out / "compare_summary.json").read_text())
    e = s["gpu_model_error"]
    assert e["layers_compared"] == n and e["mape_pct"] == pytest.approx(50.0)
    assert e["model_latency_error_pct"] == pytest.approx(-50.0)
    d = {x["design"]: x for x in s["designs"]}
    assert d["a100"]["latency_s"] == pytest.approx(gpu.latency_s)
    assert d["a100"]["speedup_vs_gpu_model"] == 1.0
    tpu = tilesim.simulate("tpu_v1", "resnet18")
    assert d["tpu_v1"]["latency_s"] == pytest.approx(tpu.latency_s)
    assert d["tpu_v1"]["speedup_vs_gpu_model"] == pytest.approx(gpu.latency_s / tpu.latency_s)
    assert d["tpu_v1"]["throughput_samples_per_s"] == pytest.approx(1 / tpu.latency_s)
    total_ms = df[df.design == "tpu_v1"]["latency_ms"].sum()
    assert total_ms == pytest.approx(tpu.latency_s * 1e3)


def test_compare_outputs_are_documented(tmp_path):
    """Every compare.csv column and compare_summary.json key is in docs/outputs.md."""
    out = tmp_path / "cmp"
    meas = tmp_path / "m.csv"
    _measured_csv(meas)
    assert main(["compare", "--arch", "tpu_v1", "--gpu", "a100", "--gpu-measured", str(meas),
                 "--model", "resnet18", "--out", str(out), "--quiet"]) == 0
    doc = (ROOT / "docs" / "outputs.md").read_text()
    documented = set(re.findall(r"`([a-z_<>0-9]+)`", doc))
    s = json.loads((out / "compare_summary.json").read_text())
    keys = set(s) | set(s["designs"][0]) | set(s["gpu_model_error"])
    cols = set(pd.read_csv(out / "compare.csv").columns)
    assert sorted((keys | cols) - documented) == []


def test_gpu_run_outputs_are_documented(tmp_path):
    """A GPU run's layers.csv columns and summary.json keys are in docs/outputs.md."""
    out = tmp_path / "o"
    assert main(["run", "--arch", "t4", "--model", "alexnet", "--out", str(out), "--quiet"]) == 0
    doc = (ROOT / "docs" / "outputs.md").read_text()
    documented = set(re.findall(r"`([a-z_<>]+)`", doc))
    for k in list(json.loads((out / "summary.json").read_text())) + \
            list(pd.read_csv(out / "layers.csv").columns):
        assert k in documented, k


def test_without_measurement_no_error_block(tmp_path):
    """Without a measurement: no error block; batch and precision as given."""
    got = tilesim.api.compare(["tpu_v1"], "t4", "alexnet", batch=2, precision="int8")
    assert got["summary"]["gpu_model_error"] is None
    assert got["summary"]["gpu_precision"] == "int8" and got["summary"]["batch"] == 2
    assert not math.isnan(got["frame"]["latency_ms"].sum())
    both = tilesim.api.compare(["tpu_v1", "h100"], "t4", "alexnet", precision="int8")
    src = {d["design"]: d["source"] for d in both["summary"]["designs"]}
    assert src == {"tpu_v1": "accelerator", "h100": "gpu-model", "t4": "gpu-model"}
    d = {x["design"]: x for x in both["summary"]["designs"]}
    assert d["h100"]["speedup_vs_gpu_model"] > 1  # an H100 beats a T4


@pytest.mark.parametrize("argv, needle", [
    (["--gpu", "a1000"], "did you mean 'a100'"),
    (["--gpu", "tpu_v1"], "is an accelerator, not a GPU preset"),
    (["--gpu", "v100", "--precision", "int8"], "no int8 peak"),
    (["--gpu", "a100", "--gpu-measured", "missing.csv"], "no such file"),
])
def test_bad_compare_input(argv, needle, capsys):
    """Unknown GPU, an accelerator as --gpu, a precision the GPU lacks, a missing CSV: exit 2."""
    assert main(["compare", "--arch", "tpu_v1", "--model", "alexnet", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Fix:" in err


def test_measurement_of_another_model_or_batch(tmp_path, capsys):
    """A measurement of another model or batch, or not a baseline CSV: exit 2, named."""
    meas = tmp_path / "m.csv"
    _measured_csv(meas, model="resnet18", batch=1)
    assert main(["compare", "--arch", "tpu_v1", "--gpu", "a100", "--gpu-measured", str(meas),
                 "--model", "resnet34"]) == 2
    assert "not 'resnet34'" in capsys.readouterr().err
    assert main(["compare", "--arch", "tpu_v1", "--gpu", "a100", "--gpu-measured", str(meas),
                 "--model", "resnet18", "--batch", "8"]) == 2
    assert "batch 1, not 8" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("layer,latency_ms\nconv1,1.0\n")
    assert main(["compare", "--arch", "tpu_v1", "--gpu", "a100", "--gpu-measured", str(bad),
                 "--model", "resnet18"]) == 2
    assert "missing column(s) scope" in capsys.readouterr().err


def _edited(tmp_path, edit):
    """A valid measured CSV of resnet18, then ``edit(df)`` applied to its text cells."""
    good = tmp_path / "good.csv"
    _measured_csv(good)
    df = pd.read_csv(good, dtype=str, keep_default_na=False)
    edit(df)
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    return bad


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d.loc.__setitem__((1, "latency_ms"), "fast"), "line 3: latency_ms 'fast' is not a number"),
    (lambda d: d.loc.__setitem__((2, "latency_ms"), "-1"), "line 4: latency_ms -1.0 must be a positive"),
    (lambda d: d.loc.__setitem__((d.index[-1], "latency_ms"), "0"), "must be a positive"),
    (lambda d: d.loc.__setitem__((d.index[-1], "latency_ms"), ""), "must be a positive"),
    (lambda d: d.loc.__setitem__((0, "scope"), "layers"), "line 2: scope 'layers'"),
    (lambda d: d.loc.__setitem__((0, "batch"), "one"), "line 2: batch 'one'"),
    (lambda d: d.loc.__setitem__((3, "layer"), d.loc[2, "layer"]), "appears twice"),
    (lambda d: d.loc.__setitem__((3, "layer"), "conv99"), "line 5: layer 'conv99' is not a layer"),
])
def test_malformed_measurement_is_one_clear_line(tmp_path, capsys, edit, needle):
    """A baseline CSV with a non-numeric, zero or negative latency, an unknown scope, a bad
    batch, a repeated or foreign layer: exit 2, the file and CSV line named, no traceback."""
    bad = _edited(tmp_path, edit)
    assert main(["compare", "--arch", "tpu_v1", "--gpu", "a100", "--gpu-measured", str(bad),
                 "--model", "resnet18", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert needle in err and str(bad) in err and "Fix:" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unmeasured_layer_prints_a_dash(tmp_path, capsys):
    """An unmeasured layer (empty latency) prints '-' in the per-layer table, not nan;
    without a measurement no 'measurement' energy source is printed."""
    bad = _edited(tmp_path, lambda d: d.loc.__setitem__((0, "latency_ms"), ""))
    assert main(["compare", "--arch", "a100", "--gpu", "h100", "--gpu-measured", str(bad),
                 "--model", "resnet18"]) == 0
    out = capsys.readouterr().out
    first = next(l for l in out.splitlines() if l.startswith("conv1 "))
    assert first.split()[-1] == "-" and "nan" not in out
    assert "measurement: not measured" in out
    assert main(["compare", "--arch", "a100", "--gpu", "h100", "--model", "resnet18"]) == 0
    assert "measure" not in capsys.readouterr().out


def test_unmeasured_layer_is_left_out_and_cpu_is_labelled(tmp_path):
    """An empty latency (a layer the harness could not build) is left out of the error
    figures; a CPU measurement is labelled `cpu (measured)`, not as the GPU."""
    def edit(d):
        d.loc[0, "latency_ms"] = ""
        d["device"] = "cpu"
    got = tilesim.api.compare(["a100"], "a100", "resnet18", measured=_edited(tmp_path, edit))
    e = got["summary"]["gpu_model_error"]
    assert e["layers_compared"] == len(got["model"].layers) - 1
    assert e["mape_pct"] == pytest.approx(50.0)
    names = {d["design"]: d["source"] for d in got["summary"]["designs"]}
    assert names["cpu (measured)"] == "gpu-measured" and "a100 (measured)" not in names
