"""Actual data (``tilesim run --input-sample x.npy --actual-data``) on the test zoo's
PyTorch networks: what counting on the tensors costs in time, and how far the densities'
expectation is from the counted bytes.

For each network (``tests/zoo_torch.py``, seeded random weights, BatchNorm statistics from
one random batch, as in ``bench_measure.py``) on a seeded ReLU'd normal input of
``--size``, on ``edge_tpu_like`` with its activation buffer storing inputs and outputs in
``--format`` (default bitmask) and DRAM likewise, ``zeros: gate``, under ``--fusion``
(default none: every activation goes through DRAM), in ``--fidelity`` (default analytic):

* the time of loading with the densities only (``input_sample=``) and with the tensors
  kept (``actual_data=True``), and of the analytic run on each;
* the total DRAM bytes and energy of each run, and their difference (counted minus
  expected); the largest difference of a MAC layer's DRAM bytes.

Usage:  python benchmarks/bench_actual_data.py [--model resnet18 ...] [--size 224]
        [--format bitmask|rle|csr]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


MAC_KINDS = ("conv", "dwconv", "fc", "gemm")


def arch_with(fmt: str):
    from tilesim import arch as arch_mod
    raw = arch_mod.load("edge_tpu_like").to_yaml_dict()
    for m in raw["memory"]:
        if "input" in m["holds"] or "output" in m["holds"]:
            acts = {op: fmt for op in ("input", "output") if op in m["holds"]}
            m["format"] = acts
    raw["compute"]["arrays"][0]["zeros"] = "gate"
    raw["name"] = f"edge_tpu_like_{fmt}"
    return arch_mod.from_dict(raw)


def main() -> int:
    import torch
    import zoo_torch

    from tilesim import api

    p = argparse.ArgumentParser()
    p.add_argument("--model", nargs="+", default=["resnet18", "mobilenet_v2"])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--format", default="bitmask", choices=["bitmask", "rle", "csr"])
    p.add_argument("--fusion", default="none", choices=["none", "residency"])
    p.add_argument("--fidelity", default="analytic", choices=["analytic", "des"])
    a = p.parse_args()
    arch = arch_with(a.format)
    print(f"{'model':14} {'load dens.':>10} {'load data':>10} {'run dens.':>10} "
          f"{'run data':>10} {'DRAM MB dens.':>13} {'DRAM MB data':>12} {'diff':>8} "
          f"{'layer max':>9} {'energy diff':>11}")
    for name in a.model:
        net = zoo_torch.calibrated(name)
        x = torch.relu(torch.randn(1, 3, a.size, a.size,
                                   generator=torch.Generator().manual_seed(1))).numpy()
        shape = f"1x3x{a.size}x{a.size}"
        api.load_model(net, input_shape=shape)   # warm: the first trace pays torch's start
        t0 = time.perf_counter()
        md = api.load_model(net, input_shape=shape, input_sample=x)
        t1 = time.perf_counter()
        ma = api.load_model(net, input_shape=shape, input_sample=x, actual_data=True)
        t2 = time.perf_counter()
        sim = api.simulate if a.fidelity == "analytic" else (
            lambda *x, **k: api.simulate_des(*x, **k).result)
        rd = sim(arch, md, fusion=a.fusion)
        t3 = time.perf_counter()
        ra = sim(arch, ma, fusion=a.fusion)
        t4 = time.perf_counter()
        sd, sa = rd.summary(), ra.summary()
        bd = sum(r.dram_read_bytes + r.dram_write_bytes for r in rd.layers)
        ba = sum(r.dram_read_bytes + r.dram_write_bytes for r in ra.layers)
        worst = max((abs((x_.dram_read_bytes + x_.dram_write_bytes)
                         - (y.dram_read_bytes + y.dram_write_bytes))
                     / max(1, y.dram_read_bytes + y.dram_write_bytes)
                     for x_, y in zip(ra.layers, rd.layers) if x_.kind in MAC_KINDS),
                    default=0.0)
        ediff = (sa["energy_uj"] - sd["energy_uj"]) / sd["energy_uj"]
        print(f"{name:14} {t1 - t0:>8.2f} s {t2 - t1:>8.2f} s {t3 - t2:>8.2f} s "
              f"{t4 - t3:>8.2f} s {bd / 1e6:>13.3f} {ba / 1e6:>12.3f} "
              f"{100 * (ba - bd) / bd:>+7.2f}% {100 * worst:>8.2f}% {100 * ediff:>+10.3f}%",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
