"""The GPU latency model: published ResNet-50 figures with one parameter set, its
quantisation terms, and GPU presets wherever an architecture is accepted."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from tilesim import arch
import tilesim
from tilesim import workloads
from tilesim.sim.gpu import GpuModelParams, simulate_gpu
from tilesim.sim.gpu.model import fused_adds, mac_kernel
from tilesim.cli import main

DATA = Path(__file__).parent / "data"
PUBLISHED = list(csv.DictReader(open(DATA / "gpu_published.csv")))


@pytest.mark.parametrize("row", PUBLISHED, ids=lambda r: f"{r['gpu']}-b{r['batch']}-{r['metric']}")
def test_model_matches_published(row):
    """ResNet-50 int8: A100/H100/T4 offline throughput within 25 %, T4 batch-1 latency
    within 35 %, all with the default GpuModelParams (no per-GPU factor)."""
    r = simulate_gpu(workloads.load(row["model"], batch=int(row["batch"])),
                     arch.load(row["gpu"]), row["precision"], GpuModelParams())
    got = r.throughput_samples_per_s if row["metric"] == "throughput" else r.latency_s
    err = got / float(row["value"]) - 1
    assert abs(err) <= float(row["tolerance_pct"]) / 100, f"{100 * err:+.1f} %"


def test_every_gpu_preset_loads_round_trips_and_runs():
    """Each GPU preset loads as a GpuSpec, its YAML loads back equal, and every zoo model
    runs at each precision it has: latency positive, utilisation <= 1, cycles add up."""
    for name in arch.gpu_presets():
        g = arch.load(name)
        assert isinstance(g, arch.GpuSpec) and g.description
        assert arch.from_yaml(arch.dump_yaml(g)) == g
        for prec in g.precisions:
            r = simulate_gpu(workloads.load("mobilenet_v2", batch=4), g, prec)
            assert r.latency_s > 0 and 0 < r.utilization <= 1
            assert r.total_cycles == sum(l.total_cycles + 1 for l in r.layers)
            for l in r.layers:
                assert l.total_cycles == l.compute_cycles + l.stall_cycles


def test_published_peaks_in_presets():
    """The datasheet numbers the issue lists are the presets' numbers."""
    a, h, t = arch.load("a100"), arch.load("h100"), arch.load("t4")
    assert (a.sms, a.clock, a.peak.int8, a.peak.fp16, a.memory_bandwidth, a.l2_size) == \
        (108, 1410e6, 624e12, 312e12, 2039e9, 40 * 2**20)
    assert (h.sms, h.peak.int8, h.peak.bf16, h.memory_bandwidth, h.l2_size) == \
        (132, 1979e12, 989.5e12, 3350e9, 50 * 2**20)
    assert (t.sms, t.peak.fp32, t.peak.int8, t.memory_bandwidth, t.l2_size, t.tdp) == \
        (40, 8.1e12, 130e12, 320e9, 4 * 2**20, 70.0)
    assert arch.load("a100_40gb").memory_bandwidth == 1555e9


def test_wave_and_tile_quantisation_by_hand():
    """A GEMM of 108 full 128x128 tiles takes one wave on an A100; one more tile row takes a
    second wave (twice the compute time); K is padded to the 32-byte reduction step."""
    g = arch.load("a100")
    p = GpuModelParams(tiles=((128, 128, 1.0),), split_k=(1,), launch_s=0.0,
                       memory_efficiency=1e6)  # memory free: compute alone
    one = mac_kernel(workloads.gemm("g", 108 * 128, 128, 1024), g, "int8", p)
    rate = 624e12 * p.compute_efficiency / 108
    assert one["t_compute"] == pytest.approx(2 * 128 * 128 * 1024 / rate)
    two = mac_kernel(workloads.gemm("g", 108 * 128 + 1, 128, 1024), g, "int8", p)
    assert two["t_compute"] == pytest.approx(2 * one["t_compute"])
    padded = mac_kernel(workloads.gemm("g", 128, 128, 1025), g, "int8", p)
    assert padded["t_compute"] == pytest.approx(2 * 128 * 128 * 1056 / rate)  # 1025 -> 33 x 32
    fp16 = mac_kernel(workloads.gemm("g", 128, 128, 1025), g, "fp16", p)  # step 16 values
    assert fp16["t_compute"] == pytest.approx(2 * 128 * 128 * 1040 / (312e12 * 0.8 / 108))


def test_memory_bound_kernel_and_launch():
    """A residual add is bytes / (bandwidth x efficiency) + one launch; its bound says so."""
    g = arch.load("t4")
    m = workloads.Model("m", (workloads.ir.eltwise("add", "add", 8, 256, 56, 56),), batch=8)
    p = GpuModelParams()
    r = simulate_gpu(m, g, "fp16", p)
    nbytes = 3 * 8 * 256 * 56 * 56 * 2
    t = nbytes / (320e9 * p.memory_efficiency) + p.launch_s
    assert r.layers[0].cycles == math.ceil(t * g.clock)
    assert r.layers[0].bound == "memory"
    assert r.layers[0].energy_pj == pytest.approx(70.0 * r.layers[0].cycles / g.clock * 1e12)


def test_resnet_adds_fuse_into_the_conv_before_them():
    """All 16 residual adds of ResNet-50 fuse into the conv before them (TensorRT-style);
    without fusion each is a kernel and the model is slower."""
    m = workloads.load("resnet50", batch=8)
    f = fused_adds(m)
    assert len(f) == 16 and all(v.endswith(".add") for v in f.values())
    g = arch.load("a100")
    fused = simulate_gpu(m, g, "int8")
    eager = simulate_gpu(m, g, "int8", GpuModelParams(fuse_residual_add=False))
    assert eager.latency_s > fused.latency_s
    assert {l.bound for l in fused.layers if l.kind == "add"} == {"fused"}


def test_more_bandwidth_and_peak_never_slower():
    """Monotone: the 80 GB A100 (more bandwidth) is never slower per layer than the 40 GB."""
    m = workloads.load("resnet50", batch=32)
    a80 = simulate_gpu(m, arch.load("a100"), "int8")
    a40 = simulate_gpu(m, arch.load("a100_40gb"), "int8")
    assert all(x.cycles <= y.cycles for x, y in zip(a80.layers, a40.layers))
    assert a80.latency_s < a40.latency_s


def test_run_cli_on_a_gpu_writes_outputs(tmp_path, capsys):
    """`tilesim run --arch a100 --precision int8 --out DIR`: per-layer latency, latency_s,
    throughput and TDP energy in summary.json, and arch.yaml reproduces the run."""
    out = tmp_path / "o"
    assert main(["run", "--arch", "a100", "--model", "resnet18", "--batch", "8",
                 "--precision", "int8", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "samples/s" in text and "TDP" in text
    s = json.loads((out / "summary.json").read_text())
    r = tilesim.simulate("a100", "resnet18", batch=8, precision="int8")
    assert s["latency_s"] == r.latency_s and s["throughput_samples_per_s"] == 8 / r.latency_s
    assert s["gpu_precision"] == "int8" and s["fidelity"] == "gpu-model"
    assert "TDP" in s["energy_source"]
    out2 = tmp_path / "o2"
    assert main(["run", "--arch", str(out / "arch.yaml"), "--model", "resnet18", "--batch",
                 "8", "--precision", "int8", "--out", str(out2), "--quiet"]) == 0
    assert (out / "layers.csv").read_bytes() == (out2 / "layers.csv").read_bytes()


@pytest.mark.parametrize("argv, needle", [
    (["run", "--arch", "t4", "--model", "alexnet", "--precision", "tf32"], "no tf32 peak"),
    (["run", "--arch", "v100", "--model", "alexnet", "--precision", "int8"], "no int8 peak"),
    (["run", "--arch", "a1000", "--model", "alexnet"], "did you mean 'a100'"),
    (["run", "--arch", "tpu_v1", "--model", "alexnet", "--precision", "int8"],
     "only chosen for a GPU preset"),
    (["run", "--arch", "t4", "--model", "alexnet", "--fidelity", "des"], "needs an accelerator"),
    (["map", "--arch", "t4", "--model", "alexnet", "--layer", "features.0"],
     "needs an accelerator"),
    (["verify", "--arch", "t4", "--model", "alexnet"], "needs an accelerator"),
])
def test_bad_gpu_input_is_one_clear_line(argv, needle, capsys):
    """Unknown GPU, a precision the GPU lacks, GPU-only / accelerator-only options: exit 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Fix:" in err and "Traceback" not in err


def test_bad_gpu_yaml_names_key_and_fix(tmp_path):
    """A GPU YAML with a typo'd precision or a unitless peak: file:line, key path, fix."""
    y = tmp_path / "g.yaml"
    y.write_text("version: 1\nkind: gpu\nname: g\nsms: 4\nclock: 1 GHz\n"
                 "peak: {fp32: 1 TFLOPS, in8: 4 TOPS}\nmemory_bandwidth: 100 GB/s\n"
                 "l2_size: 1 MiB\ntdp: 10 W\n")
    with pytest.raises(arch.ArchError, match=r"g.yaml:6: peak.in8: unknown key.*'int8'"):
        arch.load(y)
    y.write_text(y.read_text().replace("in8: 4 TOPS", "int8: 4"))
    with pytest.raises(arch.ArchError, match=r"peak.int8: peak 4 needs a unit"):
        arch.load(y)
