"""Candidates scored per second on one core (issue 14: at least 1 M/s): large batches of
random mapspace points, ``Mapspace.points`` (tiling, capacity, transfers per level) then
``CostModel.evaluate`` (cycles, accesses, energy), on representative layers, with the
same tile at every level (``inner`` no: the level-1 space) and with inner tiles.

Usage:  python benchmarks/bench_scoring.py [--batch 200000] [--repeat 3]
Pin it to one core for the goal's meaning (``taskset -c 0``; numpy here is
single-threaded for these element-wise kernels anyway). Prints, per case, the seconds of
each stage and the candidates per second of the whole (the best of ``--repeat`` runs).

Measured (2026-11-30, one core, --repeat 7, 200,000 points a batch): slowest case
(tpu_v1 with inner tiles) 1.22 M/s, the others 1.5-2.7 M/s; before the per-dim tables
(5a460d4) 0.66 M/s and 1.07-2.7 M/s. 0.4.0 (the last-block and slot-chain bounds;
the slot chain computed once per point on the points it applies to): slowest 1.09 M/s,
the others 1.23-1.64 M/s (the slot chain as first written: 0.97 M/s).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from tilesim import arch, workloads
from tilesim.mapper import Mapspace
from tilesim.sim import CostModel

GOAL = 1_000_000
CASES = (("nvdla_small", "resnet50", "layer1.0.conv2"),
         ("edge_tpu_like", "mobilenet_v2", "features.2.conv.1.0"),
         ("tpu_v1", "resnet50", "layer3.0.conv2"),
         ("eyeriss_like", "resnet50", "layer2.0.conv1"))


def bench(A, l, inner: bool, batch: int, repeat: int, rng) -> tuple[float, float]:
    sp = Mapspace(l, A)
    cm = CostModel(A)
    best_p = best_e = np.inf
    for _ in range(repeat):
        if inner:
            idx = rng.integers(0, sp.size, batch, dtype=np.int64)
        else:
            idx = rng.integers(0, sp.size // sp.inner_size, batch, dtype=np.int64) * sp.inner_size
        t0 = time.perf_counter()
        pts = sp.points(idx)
        t1 = time.perf_counter()
        cm.evaluate(l, pts)
        t2 = time.perf_counter()
        if t2 - t0 < best_p + best_e:
            best_p, best_e = t1 - t0, t2 - t1
    return best_p, best_e


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'arch':14} {'layer':30} {'inner':>5} {'points (s)':>10} {'evaluate (s)':>12} "
          f"{'candidates/s':>13}")
    rates = []
    for an, model, name in CASES:
        A = arch.load(an)
        l = next(x for x in workloads.load(model).layers if x.name == name)
        for inner in (False, True):
            if inner and Mapspace(l, A).inner_size == 1:
                continue
            tp, te = bench(A, l, inner, a.batch, a.repeat, rng)
            rate = a.batch / (tp + te)
            rates.append(rate)
            print(f"{an:14} {model + ':' + name:30} {'yes' if inner else 'no':>5} {tp:>10.3f} "
                  f"{te:>12.3f} {rate:>13,.0f}", flush=True)
    print(f"slowest: {min(rates):,.0f} candidates/s (goal {GOAL:,}/s on one core)")


if __name__ == "__main__":
    main()
