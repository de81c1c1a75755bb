"""Heuristic vs exhaustive mapping search, per layer: the objective gap (goal: heuristic
within 2 % of exhaustive on every layer of resnet18 on tpu_v1 and eyeriss_like) and
the candidates each scored; plus the cost model's candidates scored per second.

Usage:  python benchmarks/bench_search.py [--archs tpu_v1 eyeriss_like] [--model resnet18]
        [--objectives latency energy edp]
Exits 1 if any layer's heuristic result is more than 2 % worse than exhaustive.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from tilesim import arch
from tilesim import workloads
from tilesim.mapper import Budget, Mapspace, run_search
from tilesim.sim import CostModel
from tilesim.workloads import MacLayer

GOAL = 0.02


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--archs", nargs="+", default=["tpu_v1", "eyeriss_like"])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--objectives", nargs="+", default=["latency", "energy", "edp"])
    a = p.parse_args()
    worst = 0.0
    big = Budget(candidates=10 ** 9, seconds=3600)
    for name in a.archs:
        A = arch.load(name)
        cost = CostModel(A)
        layers = {}
        for l in workloads.load(a.model).layers:
            if isinstance(l, MacLayer):
                layers.setdefault((l.N, l.C, l.H, l.W, l.K, l.R, l.S, l.stride, l.padding,
                                   l.groups, l.activation), l)
        for obj in a.objectives:
            ev_h = ev_e = 0
            t_h = t_e = 0.0
            gaps = []
            for l in layers.values():
                sp = Mapspace(l, A)
                seed = sp.seed()
                f = lambda pts, l=l: cost(l, pts)  # noqa: E731
                ex = run_search(sp, f, obj, "exhaustive", big, seeds=(seed,))
                he = run_search(sp, f, obj, "heuristic", big, seeds=(seed,))
                k = {"latency": lambda s: s.cycles, "energy": lambda s: s.energy_pj,
                     "edp": lambda s: s.cycles * s.energy_pj}[obj]
                gap = k(he.best) / k(ex.best) - 1
                gaps.append((gap, l.name))
                ev_h += he.evaluated
                ev_e += ex.evaluated
                t_h += he.seconds
                t_e += ex.seconds
            g, lname = max(gaps)
            worst = max(worst, g)
            exact = sum(1 for x, _ in gaps if x == 0)
            print(f"{name:13s} {a.model} {obj:8s}: {len(gaps)} distinct layers, heuristic == "
                  f"exhaustive on {exact}, worst gap {100 * g:.3f} % ({lname}), mean gap "
                  f"{100 * np.mean([x for x, _ in gaps]):.4f} %; candidates scored: heuristic "
                  f"{ev_h:,} in {t_h:.2f} s, exhaustive {ev_e:,} in {t_e:.2f} s")
    # candidates scored per second (mapspace scoring + cost model)
    A = arch.load("tpu_v1")
    cost = CostModel(A)
    ls = [l for l in workloads.load("resnet50").layers if isinstance(l, MacLayer)]
    n = 0
    t_space = t_cost = 0.0
    for l in ls:
        sp = Mapspace(l, A)
        idx = np.arange(sp.size)
        t0 = time.perf_counter()
        pts = sp.points(idx)
        t1 = time.perf_counter()
        cost(l, pts)
        t2 = time.perf_counter()
        n += sp.size
        t_space += t1 - t0
        t_cost += t2 - t1
    print(f"vectorised scoring, resnet50 on tpu_v1, every point of every layer's mapspace "
          f"({n:,} candidates, one process): cost model {n / t_cost / 1e6:.2f} M candidates/s; "
          f"mapspace tiling + traffic + cost {n / (t_space + t_cost) / 1e6:.2f} M candidates/s")
    print(f"worst heuristic gap {100 * worst:.3f} % (goal <= {100 * GOAL:g} %)")
    return 0 if worst <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
