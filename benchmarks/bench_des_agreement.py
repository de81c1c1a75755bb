"""Must-hold check: the analytic model and the DES agree within 10 % on every layer's
total cycles, for resnet50 and mobilenet_v2 on tpu_v1 and nvdla_small (finite DRAM
bandwidth, the presets as shipped).

Usage:  python benchmarks/bench_des_agreement.py [--arch A ...] [--model M ...] [--top 5]
        [--objective edp|latency|energy|traffic]
Prints, per (arch, model), the worst layer's relative difference (DES - analytic) /
analytic on (total_cycles + 1), the model totals, and the --top worst layers with their
DES stall causes; exits 1 if any layer differs by more than 10 %.
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


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--arch", nargs="+", default=["tpu_v1", "nvdla_small"])
    p.add_argument("--model", nargs="+", default=["resnet50", "mobilenet_v2"])
    p.add_argument("--top", type=int, default=3)
    p.add_argument("--objective", default="edp", choices=OBJECTIVES,
                   help="mapping search objective (default edp, as `tilesim run`; traffic = "
                        "the least DRAM traffic)")
    a = p.parse_args()
    ok = True
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
            rows.sort(key=lambda r: -abs(r[0]))
            worst = rows[0]
            ok &= abs(worst[0]) <= BOUND
            print(f"{an} {mn}: {len(rows)} layers, worst {100 * worst[0]:+.2f} % "
                  f"({worst[1].layer}: analytic {worst[1].cycles} cycles, des {worst[2].cycles} "
                  f"cycles); model total analytic {ana.total_cycles} cycles, des "
                  f"{des.total_cycles} cycles ({100 * (des.total_cycles / ana.total_cycles - 1):+.2f} %); "
                  f"{dt:.1f} s")
            for e, x, y in rows[:a.top]:
                causes = {k[6:-7]: getattr(y, k) for k in y.__dataclass_fields__
                          if k.startswith("stall_") and k != "stall_cycles" and getattr(y, k)}
                print(f"    {x.layer:28s} {100 * e:+7.2f} %  analytic {x.cycles} ({x.bound}), "
                      f"des {y.cycles} ({y.bound}) stalls {causes}")
    print(f"all layers within {100 * BOUND:.0f} %: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
