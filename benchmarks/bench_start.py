"""Speed goal: the ``tilesim`` command starts fast (issue 12, "a fast start").

1. ``tilesim run --arch tpu_v1 --model resnet18 --quiet``, as a whole process, takes at
   most as long as ``python -c "import numpy, pandas"``: both are run ``--pairs`` times
   (default 5), interleaved (run, import, run, import, ...), each a fresh process, and
   their medians compared.
2. ``tilesim --help`` and ``tilesim list`` import neither pandas nor matplotlib (checked in
   a fresh process through ``sys.modules``), and ``run --quiet`` imports no pandas.

Prints both medians, their ratio and what each command loaded; exits 1 when a goal is
missed. Usage:  python benchmarks/bench_start.py [--pairs 5]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ["run", "--arch", "tpu_v1", "--model", "resnet18", "--quiet"]
HEAVY = ("pandas", "matplotlib", "numba", "simpy", "torch", "onnx", "dask")
#: command -> heavy modules it must not import
MUST_NOT = {("--help",): ("pandas", "matplotlib"), ("list",): ("pandas", "matplotlib"),
            tuple(RUN): ("pandas", "matplotlib")}
# Runs the command in this process (as the console script does), then prints which of
# HEAVY it imported; SystemExit from --help is caught so that the check still runs.
PROBE = """
import contextlib, io, json, sys
from tilesim.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(json.loads(sys.argv[1]))
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)))
"""


def tilesim_command() -> list[str]:
    """The installed console script next to this Python, else ``python -m tilesim.cli``."""
    exe = Path(sys.executable).with_name("tilesim")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("tilesim")
    return [found] if found else [sys.executable, "-m", "tilesim.cli"]


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - t0


def loaded(argv: list[str]) -> list[str]:
    import json
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5, help="interleaved pairs (default 5)")
    args = ap.parse_args(argv)
    run = tilesim_command() + RUN
    ref = [sys.executable, "-c", "import numpy, pandas"]
    wall(run), wall(ref)   # warm the file cache (and any numba cache) before timing
    t_run, t_ref = [], []
    for _ in range(args.pairs):
        t_run.append(wall(run))
        t_ref.append(wall(ref))
    m_run, m_ref = statistics.median(t_run), statistics.median(t_ref)
    ok = m_run <= m_ref
    print(f"tilesim {' '.join(RUN)}: median {m_run:.3f} s of {args.pairs} "
          f"({', '.join(f'{t:.3f}' for t in t_run)})")
    print(f"python -c 'import numpy, pandas': median {m_ref:.3f} s "
          f"({', '.join(f'{t:.3f}' for t in t_ref)})")
    print(f"ratio {m_run / m_ref:.2f} (goal <= 1.00): {'ok' if ok else 'MISSED'}"
          f" [{os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}]")
    for cmd, banned in MUST_NOT.items():
        got = loaded(list(cmd))
        bad = sorted(set(got) & set(banned))
        ok &= not bad
        print(f"tilesim {' '.join(cmd)}: imports {', '.join(got) or 'none'} of "
              f"{', '.join(HEAVY)}" + (f": MISSED, must not import {', '.join(bad)}"
                                        if bad else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
