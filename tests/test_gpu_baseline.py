"""The measurement harness on the CPU (tiny models): rows, precision actually measured,
environment columns, atomic CSV, clear errors. No GPU needed."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from tilesim import workloads
from tilesim.workloads import ir
from tilesim.cli import main

torch = pytest.importorskip("torch")
from tilesim.explore.harness import BaselineError, measure  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "examples" / "tiny_net.yaml"


def _net(batch=2):
    return workloads.Model("mini", (
        ir.conv("c1", batch, 3, 12, 12, 8, 3, pad=1, activation="relu"),
        ir.pool("p", "maxpool", batch, 8, 12, 12, 2),
        ir.conv("dw", batch, 8, 6, 6, 8, 3, pad=1, groups=8),
        ir.eltwise("a", "add", batch, 8, 6, 6, activation="relu"),
        ir.eltwise("s", "swish", batch, 8, 6, 6, inputs=1),
        ir.concat("cat", batch, [8, 4, 4], 6, 6),
        ir.gap("g", batch, 16, 6, 6),
        ir.fc("fc", batch, 16, 10)), batch=batch)


def test_cpu_measurement_rows_and_environment():
    """One row per layer plus a model row, all timed (> 0), median >= min, and the CPU says
    so in device_name, driver and cuDNN columns."""
    m = measure(_net(), "cpu", "fp32", repeats=3, warmup=1)
    df = m.frame()
    assert list(df["layer"]) == [l.name for l in _net().layers] + ["(model)"]
    assert list(df["scope"]) == ["layer"] * 8 + ["model"]
    assert (df["latency_ms"] > 0).all() and (df["latency_ms"] >= df["latency_ms_min"]).all()
    assert set(df["precision_measured"]) == {"fp32"} and set(df["device"]) == {"cpu"}
    assert df["device_name"].iloc[0].startswith("CPU:") and "no GPU" in df["device_name"].iloc[0]
    assert set(df["driver_version"]) == {"n/a (cpu)"} and set(df["timer"]) == {"perf_counter"}
    assert set(df["torch_version"]) == {torch.__version__}
    assert (df["rotated_inputs"] >= 2).all() and set(df["repeats"]) == {3}
    assert df["macs"].iloc[-1] == _net().macs


def test_int8_on_cpu_says_what_ran():
    """int8: convs, pools, adds and the fc run quantized; layers without a quantized kernel
    (swish, concat) fall back to fp32 and say so; the model row lists both."""
    df = measure(_net(), "cpu", "int8", repeats=2, warmup=1).frame()
    prec = dict(zip(df["layer"], df["precision_measured"]))
    assert {prec[k] for k in ("c1", "p", "dw", "a", "g", "fc")} == {"int8"}
    assert prec["s"] == prec["cat"] == "fp32"
    note = dict(zip(df["layer"], df["note"].fillna("")))
    assert "measured at fp32" in note["s"] and note["c1"] == ""
    assert prec["(model)"] == "fp32+int8" and set(df["precision_requested"]) == {"int8"}


def test_tf32_on_cpu_is_fp32_and_says_so():
    """tf32 is a CUDA math mode: on the CPU every layer runs fp32 and the note says so."""
    df = measure(_net(1), "cpu", "tf32", repeats=1, warmup=0).frame()
    assert set(df[df.scope == "layer"]["precision_measured"]) == {"fp32"}
    assert all("tf32 is a CUDA mode" in n for n in df[df.scope == "layer"]["note"])


def test_layer_shapes_match_the_ir():
    """Each built layer produces the IR's output shape (a conv's N K P Q, a pool's)."""
    from tilesim.explore.harness import _float_layer
    for l in _net(3).layers:
        fn, shapes = _float_layer(torch, l, torch.float32, torch.device("cpu"))
        y = fn(*[torch.zeros(s) for s in shapes])
        k = l.K
        want = (l.N, k) if getattr(l, "origin", "") == "fc" else (l.N, k, l.P, l.Q)
        assert tuple(y.shape) == want, l.name


def test_baseline_cli_writes_csv(tmp_path, capsys):
    """`tilesim baseline --device cpu` writes the CSV and says it measured the CPU."""
    out = tmp_path / "b.csv"
    assert main(["baseline", "--model", str(TINY), "--device", "cpu", "--batch", "2",
                 "--repeats", "3", "--warmup", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "CPU measurement, not a GPU" in text
    import pandas as pd
    df = pd.read_csv(out)
    assert len(df) == len(workloads.load(TINY).layers) + 1 and set(df["batch"]) == {2}
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary


def test_every_baseline_column_is_documented(tmp_path):
    """Each column of the baseline CSV appears in docs/outputs.md."""
    doc = (ROOT / "docs" / "outputs.md").read_text()
    documented = set(re.findall(r"`([a-z_<>]+)`", doc))
    cols = measure(_net(1), "cpu", "fp32", repeats=1, warmup=0).frame().columns
    assert [c for c in cols if c not in documented] == []


@pytest.mark.parametrize("kw, needle", [
    ({"device": "tpu"}, "unknown device"),
    ({"precision": "fp8"}, "unknown precision"),
    ({"repeats": 0}, "repeats"),
])
def test_bad_harness_input(kw, needle):
    """Unknown device or precision, no repeats: a BaselineError naming the fix."""
    with pytest.raises(BaselineError, match=needle):
        measure(_net(1), **{"device": "cpu", **kw})


def test_cuda_without_a_gpu_is_one_clear_line(tmp_path, capsys):
    """--device cuda without a GPU: exit 2, one line, no CSV written."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["baseline", "--model", str(TINY), "--device", "cuda",
                 "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "--device cpu" in err
    assert not (tmp_path / "x.csv").exists()


def test_a_layer_torch_cannot_build_is_a_row_that_says_so():
    """A fused activation PyTorch has no equivalent for: the row is kept, untimed, with a
    note; the model row counts it."""
    c = ir.conv("c", 1, 3, 8, 8, 4, 3, pad=1, activation="relu")
    object.__setattr__(c, "activation", "weird")   # the IR refuses it; the harness must cope
    m = workloads.Model("odd", (c, ir.gap("g", 1, 4, 8, 8)), batch=1)
    df = measure(m, "cpu", "fp32", repeats=1, warmup=0).frame()
    row = df[df.layer == "c"].iloc[0]
    assert math.isnan(row["latency_ms"]) and "not built" in row["note"]
    assert "1 layers not built" in df[df.scope == "model"]["note"].iloc[0]
