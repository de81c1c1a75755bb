"""Speed goal: the example sweep (examples/sweep_resnet18.yaml: 540 design points x
resnet18, analytic, searched mappings) finishes in under 2 minutes on the 2-core machine.

Usage:  python benchmarks/bench_sweep.py [--spec examples/sweep_resnet18.yaml] [--workers N]
Runs `tilesim sweep` as a whole process into a fresh folder (numba's cache warm), prints
the wall time, design points per second and the machine's load average before and
after (the machine may be shared); exits 1 if the goal is missed.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 120.0
ROOT = Path(__file__).parents[1]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--spec", default=str(ROOT / "examples" / "sweep_resnet18.yaml"))
    p.add_argument("--workers", type=int, default=None)
    a = p.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "tilesim.cli", "run", "--arch", "tpu_v1", "--model",
                    "resnet18", "--quiet"], check=True, capture_output=True, env=env)  # warm
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "tilesim.cli", "sweep", a.spec, "--out", d, "--quiet"]
        if a.workers:
            cmd += ["--workers", str(a.workers)]
        load0 = os.getloadavg()
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        el = time.perf_counter() - t0
        load1 = os.getloadavg()
        if r.returncode:
            print(r.stdout, r.stderr)
            return 1
        import pandas as pd
        df = pd.read_csv(Path(d) / "results.csv")
    n = df["design"].nunique()
    ok = int((df["status"] == "ok").sum())
    print(r.stdout.strip())
    print(f"{n} design points ({len(df)} rows, {ok} feasible) in {el:.1f} s wall = "
          f"{n / el:.2f} design points/s on {os.cpu_count()} cores (goal < {GOAL_S:.0f} s); "
          f"load average before {load0[0]:.2f}, after {load1[0]:.2f}")
    return 0 if el < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
