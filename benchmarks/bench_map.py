"""Speed goal of the mapping search: `tilesim run --arch tpu_v1 --model resnet50` (every
MAC layer's mapspace searched, then every layer timed and costed) as a whole process in
under 2 s with warm caches (bytecode and numba caches; mappings are searched afresh in
every process), for each objective; plus the in-process time of the search alone.

Usage:  python benchmarks/bench_map.py [--repeat 5] [--arch tpu_v1] [--model resnet50]
Exits 1 if the median wall time of the default run misses the goal.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

GOAL_S = 2.0


def wall(cmd, repeat):
    subprocess.run(cmd, check=True, capture_output=True)   # warm the caches
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--arch", default="tpu_v1")
    p.add_argument("--model", default="resnet50")
    a = p.parse_args()
    base = [sys.executable, "-m", "tilesim.cli", "run", "--arch", a.arch, "--model", a.model,
            "--quiet"]
    med = None
    for extra in ([], ["--objective", "energy"], ["--objective", "edp"],
                  ["--objective", "traffic"], ["--strategy", "exhaustive"]):
        m, ts = wall(base + extra, a.repeat)
        med = m if not extra else med
        print(f"{' '.join(base[2:] + extra)}: median {m:.3f} s "
              f"(runs {', '.join(f'{t:.2f}' for t in ts)})")

    from tilesim import arch
    from tilesim import workloads
    from tilesim.sim import make_mapper
    from tilesim.workloads import MacLayer
    A, M = arch.load(a.arch), workloads.load(a.model)
    for obj in ("latency", "energy", "edp"):
        mapper = make_mapper(A, obj)
        t0 = time.perf_counter()
        maps = [mapper.map(l) for l in M.layers if isinstance(l, MacLayer)]
        dt = time.perf_counter() - t0
        n = sum(m.search.evaluated for m in {id(m.search): m for m in maps}.values())
        print(f"in-process search, {obj}: {len(maps)} MAC layers ({mapper.mapped_shapes} distinct) "
              f"in {dt:.3f} s, {n:,} candidates scored ({n / dt / 1e6:.2f} M/s incl. search "
              "overhead)")
    print(f"default run median {med:.3f} s (goal < {GOAL_S} s)")
    return 0 if med < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
