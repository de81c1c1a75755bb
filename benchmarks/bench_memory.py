"""Network-level memory (issue 15), measured: every schedule's latency, DRAM traffic,
throughput and energy, steady state, and the DES against the cost model.

Usage:  python benchmarks/bench_memory.py [--arch tpu_v1 edge_tpu_like]
        [--model resnet50 mobilenet_v2] [--batch 1 8] [--des]
Prints Markdown tables (docs/memory.md quotes them). ``--des`` adds, per arch x model x
batch x ``--des-fusion`` schedule (default: the architecture's own), the DES's network totals
against the cost model's and its worst layer (must hold: within 10 %). Exits 1 when a layer
is more than 10 % apart.
"""
from __future__ import annotations

import argparse
import sys
import time

import tilesim


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--arch", nargs="+", default=["tpu_v1", "edge_tpu_like"])
    p.add_argument("--model", nargs="+", default=["resnet50", "mobilenet_v2"])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    p.add_argument("--des", action="store_true")
    p.add_argument("--des-fusion", nargs="+", default=[None], help="schedules of the DES "
                   "check (default: each architecture's own)")
    a = p.parse_args()
    print("| arch | model | batch | schedule | latency | cold | DRAM | TOPS | energy |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    for arch in a.arch:
        for model in a.model:
            for b in a.batch:
                for f, steady in (("none", False), ("residency", False), ("residency", True),
                                  ("depth-first", False)):
                    s = tilesim.simulate(arch, model, batch=b, fusion=f,
                                         steady_state=steady).summary()
                    tops = 2 * s["macs"] / s["latency_s"] / 1e12
                    dram = (s["dram_read_bytes"] + s["dram_write_bytes"]) / 1e6
                    name = f + (" + steady state" if steady else "")
                    print(f"| {arch} | {model} | {b} | {name} | {s['latency_ms']:.3f} ms | "
                          f"{s['latency_cold_ms']:.3f} ms | {dram:.1f} MB | {tops:.2f} | "
                          f"{s['energy_uj']:,.0f} µJ |")
    if not a.des:
        return 0
    bad = 0
    print()
    print("| arch | model | batch | schedule | analytic cycles | DES cycles | total | worst layer "
          "| DES s |")
    print("|---|---|---:|---|---:|---:|---:|---|---:|")
    for arch, model, b, f in [(x, m, b, f) for x in a.arch for m in a.model for b in a.batch
                              for f in a.des_fusion]:
        if True:
            an = tilesim.simulate(arch, model, batch=b, fusion=f)
            t0 = time.perf_counter()
            de = tilesim.simulate(arch, model, batch=b, fusion=f, fidelity="des")
            dt = time.perf_counter() - t0
            rel = [((d.cycles - x.cycles) / x.cycles, x.layer) for x, d in zip(an.layers, de.layers)]
            worst = max(rel, key=lambda r: abs(r[0]))
            bad += sum(abs(r) > 0.10 for r, _ in rel)
            print(f"| {arch} | {model} | {b} | {an.fusion} | {an.total_cycles:,} | "
                  f"{de.total_cycles:,} | "
                  f"{de.total_cycles / an.total_cycles - 1:+.2%} | {worst[1]} {worst[0]:+.2%} | "
                  f"{dt:.1f} |")
    print(f"\nlayers more than 10 % apart: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
