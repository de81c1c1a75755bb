"""Speed goal: `tilesim run --arch tpu_v1 --model resnet50` end to end, as a whole
process, in under 3 s on the 2-core CI machine (numba's cache warm).

Usage:  python benchmarks/bench_run.py [--repeat 5] [--arch tpu_v1] [--model resnet50]
Prints each wall time and the median; exits 1 if the median misses the goal.
"""
from __future__ import annotations

import argparse
import sys

from bench_map import wall

GOAL_S = 3.0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--arch", default="tpu_v1")
    p.add_argument("--model", default="resnet50")
    a = p.parse_args()
    cmd = [sys.executable, "-m", "tilesim.cli", "run", "--arch", a.arch, "--model", a.model,
           "--quiet"]
    med, times = wall(cmd, a.repeat)   # warms caches (bytecode, numba) first
    for t in times:
        print(f"run: {t:.3f} s")
    print(f"median wall time: {med:.3f} s (goal < {GOAL_S} s) for {' '.join(cmd[2:])}")
    return 0 if med < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
