"""Must-hold check: with unlimited DRAM bandwidth the DES's cycles equal the analytic
model's exactly, for every layer of every zoo model on every preset (batch 1).

Usage:  python benchmarks/bench_des_unlimited.py [--arch A ...] [--model M ...] [--objective O]
Prints one line per (preset, model) and exits 1 on any mismatch. (tests/test_des.py
checks a representative subset; this runs them all.)
"""
from __future__ import annotations

import argparse
import sys
import time

from tilesim import arch
from tilesim import workloads
from tilesim.mapper import OBJECTIVES
from tilesim.sim import make_mapper, simulate_model
from tilesim.sim.des import simulate_model as simulate_des


def unlimited(name: str) -> arch.Architecture:
    d = arch.load(name).to_yaml_dict()
    d["memory"][0]["bandwidth"] = "unlimited"
    return arch.from_dict(d)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--arch", nargs="+", default=arch.presets())
    p.add_argument("--model", nargs="+", default=workloads.zoo_names())
    p.add_argument("--objective", default="edp", choices=OBJECTIVES,
                   help="mapping search objective (default edp, as `tilesim run`; traffic = "
                        "the least DRAM traffic)")
    a = p.parse_args()
    bad = layers = 0
    t_all = time.perf_counter()
    for an in a.arch:
        A = unlimited(an)
        mapper = make_mapper(A, a.objective)
        for mn in a.model:
            M = workloads.load(mn)
            t0 = time.perf_counter()
            ana = simulate_model(M, A, mapper)
            run = simulate_des(M, A, mapper)
            dt = time.perf_counter() - t0
            miss = [x.layer for x, y in zip(ana.layers, run.result.layers)
                    if (x.total_cycles, x.compute_cycles) != (y.total_cycles, y.compute_cycles)]
            bad += len(miss)
            layers += len(ana.layers)
            print(f"{an:16s} {mn:14s} {len(ana.layers):4d} layers, {len(miss)} mismatched; "
                  f"total {ana.total_cycles} cycles (analytic) vs {run.result.total_cycles} "
                  f"cycles (des); {run.events} events, {dt:.1f} s" + (f"  MISMATCH {miss[:5]}" if miss else ""))
    print(f"{layers} layers, {bad} mismatched, {time.perf_counter() - t_all:.0f} s in all")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
