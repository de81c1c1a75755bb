"""Speed goal: `tilesim run --arch tpu_v1 --model resnet50 --fidelity des` as a whole
process in under 10 s, and the engine's events per second.

Usage:  python benchmarks/bench_des_speed.py [--repeat 3] [--arch tpu_v1] [--model resnet50]
Prints each wall time, the median, and the events/s the CLI reports (the DES run,
mapping included, over the SimPy events it processed);
exits 1 if the median misses the goal.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time

GOAL_S = 10.0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--arch", default="tpu_v1")
    p.add_argument("--model", default="resnet50")
    a = p.parse_args()
    cmd = [sys.executable, "-m", "tilesim.cli", "run", "--arch", a.arch, "--model", a.model,
           "--fidelity", "des"]   # not --quiet: it drops the events line
    subprocess.run(cmd, check=True, capture_output=True)  # warm caches (bytecode, numba)
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        times.append(time.perf_counter() - t0)
        m = re.search(r"([\d,]+) events in ([\d.]+) s,\s+mapping\s+included\s+\(([\d,]+)\s+events/s\)",
                      out)   # the summary may wrap before the parenthesis
        print(f"run: {times[-1]:.3f} s wall (whole process); des: {m.group(1)} events in "
              f"{m.group(2)} s (mapping included) = {m.group(3)} events/s")
    med = statistics.median(times)
    print(f"median wall time: {med:.3f} s (goal < {GOAL_S} s) for {' '.join(cmd[2:])}")
    return 0 if med < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
