"""Must-hold check: the GPU latency model against the published figures in
tests/data/gpu_published.csv (sources in gpu_published.md), one parameter set for all.

Usage:  python benchmarks/bench_gpu_published.py [--breakdown]
Prints modelled vs published per row, the error and the band, and exits 1 if any row is
outside its band. --breakdown adds where the time goes (MAC layers compute- or
memory-bound, vector kernels, per-kernel cost) for each row.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

from tilesim import arch
from tilesim import workloads
from tilesim.sim.gpu import GpuModelParams, simulate_gpu

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "gpu_published.csv"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--breakdown", action="store_true")
    args = ap.parse_args()
    p = GpuModelParams()
    print(f"model parameters: {p}")
    bad = 0
    for row in csv.DictReader(open(DATA)):
        g = arch.load(row["gpu"])
        r = simulate_gpu(workloads.load(row["model"], batch=int(row["batch"])), g,
                         row["precision"], p)
        if row["metric"] == "throughput":
            got, unit, fmt = r.throughput_samples_per_s, "samples/s", ",.0f"
        else:
            got, unit, fmt = r.latency_s * 1e3, "ms", ".3f"
        ref = float(row["value"]) * (1e3 if unit == "ms" else 1)
        err = 100 * (got / ref - 1)
        ok = abs(err) <= float(row["tolerance_pct"])
        bad += not ok
        print(f"{row['gpu']:5s} {row['model']} {row['precision']} batch {row['batch']:>3}: "
              f"model {got:{fmt}} {unit}, published {ref:{fmt}} {unit}, {err:+.1f} % "
              f"(band +-{row['tolerance_pct']} %) {'ok' if ok else 'OUTSIDE'}")
        if args.breakdown:
            c = Counter()
            for l in r.layers:
                c[("mac" if l.macs else "vector") + "/" + l.bound] += l.cycles / r.clock_hz
            print("      time by kind/bound (ms): " + ", ".join(
                f"{k} {v * 1e3:.3f}" for k, v in sorted(c.items())))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
