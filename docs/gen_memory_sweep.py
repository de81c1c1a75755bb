"""Generate docs/img/sweep_buffer_front.svg and print the front's table (docs/memory.md
quotes it) from the buffer-size sweep example, examples/sweep_resnet18.yaml:

    python docs/gen_memory_sweep.py [--results out/sweep/results.csv] [--workers N]

Without ``--results`` the sweep is run first (about 7 minutes on 2 cores). The front is
the latency-energy-area one (all three minimised) over the feasible design points; the
picture plots latency against energy, every point coloured by its unified-buffer size,
the front's points ringed.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "sweep_resnet18.yaml"
OUT = ROOT / "docs" / "img" / "sweep_buffer_front.svg"
UB = "memory[1].size"
OBJECTIVES = ("latency_ms", "energy_uj", "area_sq_mm")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", type=Path, help="results.csv of a finished sweep of the example")
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args()
    import pandas as pd

    import tilesim
    from tilesim.reports import pareto
    from tilesim.reports.plots import pareto_scatter
    if a.results is None:
        tmp = Path(tempfile.mkdtemp(prefix="tilesim-sweep-"))
        tilesim.sweep(SPEC, out=tmp, workers=a.workers, progress=False)
        a.results = tmp / "results.csv"
    df = pd.read_csv(a.results)
    ok = df[df["status"] == "ok"]
    front = pareto(ok, OBJECTIVES)
    svg = pareto_scatter(ok, front, "latency_ms", "energy_uj", UB,
                         "ResNet-18, batch 4, around tpu_v1 (residency): 540 designs; ringed: "
                         "the latency-energy-area front", line=False)
    OUT.write_text(svg)
    sizes = sorted(front[UB].unique(), key=lambda s: pd.Series([s]).str.extract(
        r"([\d.]+)")[0].astype(float)[0] * (1024 if "MiB" in s else 1))
    print(f"wrote {OUT.relative_to(ROOT)}; {len(ok)} feasible designs, {len(front)} on the "
          f"front; unified-buffer sizes on the front: {', '.join(sizes)}")
    print("\n| unified buffer | designs on the front | best latency | best energy | least area |")
    print("|---|---:|---:|---:|---:|")
    for s in sizes:
        f = front[front[UB] == s]
        print(f"| {s} | {len(f)} | {f['latency_ms'].min():.3f} ms | {f['energy_uj'].min():,.0f} µJ | "
              f"{f['area_sq_mm'].min():.2f} mm² |")
    return 0 if len(sizes) >= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
