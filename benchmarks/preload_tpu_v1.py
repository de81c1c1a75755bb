"""tpu_v1 with serial vs overlapped stationary preload: compute cycles and total latency
of every zoo model (batch 1, edp search), the numbers CHANGELOG.md 0.3.0 lists.

Usage:  python benchmarks/preload_tpu_v1.py [--fidelity analytic|des] [--model M ...]

``serial`` is tpu_v1 as it was before 0.3.0 (``preload: serial``, the SCALE-Sim
convention); ``overlapped`` is the preset now. Prints a Markdown table: compute cycles
(sum over layers of compute_cycles + 1), total cycles and latency, and the % change.
"""
from __future__ import annotations

import argparse

from tilesim import arch, simulate, workloads


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--fidelity", default="analytic", choices=("analytic", "des"))
    p.add_argument("--model", nargs="+", default=workloads.zoo_names())
    a = p.parse_args()
    new = arch.load("tpu_v1")
    old = new.replace("compute.arrays[0].preload", "serial")
    print(f"tpu_v1, {a.fidelity}, batch 1, edp search: serial -> overlapped preload\n")
    print("| model | compute cycles serial | overlapped | change | total cycles serial | "
          "overlapped | change | latency serial (ms) | overlapped (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in a.model:
        r = [simulate(x, m, fidelity=a.fidelity) for x in (old, new)]
        s = [x.summary() for x in r]
        cc = [x["compute_cycles"] for x in s]
        tc = [x["total_cycles"] for x in s]
        print(f"| {m} | {cc[0]:,} | {cc[1]:,} | {100 * (cc[1] / cc[0] - 1):+.1f} % | "
              f"{tc[0]:,} | {tc[1]:,} | {100 * (tc[1] / tc[0] - 1):+.1f} % | "
              f"{s[0]['latency_ms']:.3f} | {s[1]['latency_ms']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
