"""Must-hold check: the analytic model and the DES agree within 10 % on every layer's
total cycles (finite DRAM bandwidth, the presets as shipped); by default every preset x
every zoo model (``workloads.zoo_names()``: 7 x 17, 12,425 layers), about 10 minutes on
one core (eyeriss_like the longest preset, about 2 minutes; run one preset with --arch
to spread it out). Each (arch, model) line is printed (flushed) as it finishes.

Usage:  python benchmarks/bench_des_agreement.py [--arch A ...] [--model M ...] [--top 5]
        [--objective edp|latency|energy|traffic]
Prints, per (arch, model), the worst layer's relative difference (DES - analytic) /
analytic in cycles (total_cycles + 1), the model totals, and the --top worst layers with their
DES stall causes; then the distribution of the differences over every layer and the
worst layer of all; exits 1 if any layer differs by more than 10 %.
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

BOUND = 0.10
BINS = (0.0, 0.01, 0.05, 0.10)   # |difference| bins: 0, (0, 1 %], (1, 5 %], (5, 10 %], > 10 %


def causes(y) -> dict:
    """The DES's nonzero stall causes of layer result ``y`` (cycles)."""
    return {k[6:-7]: getattr(y, k) for k in y.__dataclass_fields__
            if k.startswith("stall_") and k != "stall_cycles" and getattr(y, k)}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--arch", nargs="+", default=arch.presets())
    p.add_argument("--model", nargs="+", default=workloads.zoo_names())
    p.add_argument("--top", type=int, default=3)
    p.add_argument("--objective", default="edp", choices=OBJECTIVES,
                   help="mapping search objective (default edp, as `tilesim run`; traffic = "
                        "the least DRAM traffic)")
    a = p.parse_args()
    ok = True
    t_all = time.perf_counter()
    every = []   # (difference, arch, model, analytic layer, des layer)
    for an in a.arch:
        A = arch.load(an)
        mapper = make_mapper(A, a.objective)
        for mn in a.model:
            M = workloads.load(mn)
            t0 = time.perf_counter()
            ana = simulate_model(M, A, mapper)
            des = simulate_des(M, A, mapper).result
            dt = time.perf_counter() - t0
            rows = []
            for x, y in zip(ana.layers, des.layers):
                rows.append(((y.cycles - x.cycles) / x.cycles, x, y))
            every += [(e, an, mn, x, y) for e, x, y in rows]
            rows.sort(key=lambda r: -abs(r[0]))
            worst = rows[0]
            ok &= abs(worst[0]) <= BOUND
            print(f"{an} {mn}: {len(rows)} layers, worst {100 * worst[0]:+.2f} % "
                  f"({worst[1].layer}: analytic {worst[1].cycles} cycles, des {worst[2].cycles} "
                  f"cycles); model total analytic {ana.total_cycles} cycles, des "
                  f"{des.total_cycles} cycles ({100 * (des.total_cycles / ana.total_cycles - 1):+.2f} %); "
                  f"{dt:.1f} s", flush=True)
            for e, x, y in rows[:a.top]:
                print(f"    {x.layer:28s} {100 * e:+7.2f} %  analytic {x.cycles} ({x.bound}), "
                      f"des {y.cycles} ({y.bound}) stalls {causes(y)}", flush=True)
    d = [abs(r[0]) for r in every]
    counts = [sum(v == 0 for v in d)] + [
        sum(lo < v <= hi for v in d) for lo, hi in zip(BINS, BINS[1:])] + [
        sum(v > BINS[-1] for v in d)]
    print(f"{len(d)} layers: |DES - analytic| = 0: {counts[0]}, (0, 1 %]: {counts[1]}, "
          f"(1, 5 %]: {counts[2]}, (5, 10 %]: {counts[3]}, > 10 %: {counts[4]}; DES slower on "
          f"{sum(r[0] > 0 for r in every)}, faster on {sum(r[0] < 0 for r in every)}")
    e, an, mn, x, y = max(every, key=lambda r: abs(r[0]))
    print(f"worst layer: {an} {mn} {x.layer} {100 * e:+.2f} % (analytic {x.cycles} cycles, "
          f"des {y.cycles} cycles; tiling {x.tiling}; des stalls {causes(y)} cycles)")
    print(f"all layers within {100 * BOUND:.0f} %: {ok} ({time.perf_counter() - t_all:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
