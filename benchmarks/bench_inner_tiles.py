"""Tiles at every level, measured: a tpu_v1-like architecture with an extra intermediate
buffer between the unified buffer and the array (``staging``: inputs and outputs,
1 MiB, double-buffered), ResNet-50 at batch 1, the ``edp`` search `tilesim run` uses.

Before tiles at every level, every on-chip level held the one DRAM tile, so the small
staging level capped the tile the 24 MiB unified buffer could hold; with inner tiles the
unified buffer keeps a large tile and the staging level a sub-tile of it.

Usage:  python benchmarks/bench_inner_tiles.py [--model resnet50] [--staging "1 MiB"]
Prints total cycles, DRAM bytes and mapping wall time, and the plain tpu_v1's for
reference. Run it from another checkout (PYTHONPATH=<tree>) to compare revisions.
"""
from __future__ import annotations

import argparse
import time

from tilesim import arch, workloads
from tilesim.sim import make_mapper, simulate_model


def staged(size: str):
    d = arch.load("tpu_v1").model_dump(mode="json", exclude_none=True)
    d["name"] = "tpu_v1_staged"
    ub = next(i for i, m in enumerate(d["memory"]) if m["name"] == "unified_buffer")
    d["memory"].insert(ub + 1, {"name": "staging", "kind": "sram", "holds": ["input", "output"],
                                "size": size, "double_buffered": True})
    return arch.from_dict(d)


def run(a, model):
    t0 = time.perf_counter()
    r = simulate_model(model, a, make_mapper(a))
    return r, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--staging", default="1 MiB")
    args = ap.parse_args()
    model = workloads.load(args.model)
    for a in (arch.load("tpu_v1"), staged(args.staging)):
        r, s = run(a, model)
        dram = sum(l.dram_read_bytes + l.dram_write_bytes for l in r.layers)
        print(f"{a.name:>14}: {sum(l.cycles for l in r.layers):,} cycles, "
              f"{dram / 1e6:.2f} MB DRAM, {sum(l.energy_pj for l in r.layers) / 1e6:.1f} uJ, "
              f"mapped and costed in {s:.2f} s")


if __name__ == "__main__":
    main()
