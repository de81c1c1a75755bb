"""Speed goal: `tilesim run --arch tpu_v1 --model resnet50` end to end, as a whole
process, in under 2 s (issue 15: with tpu_v1's default schedule, residency; ``--fusion``
picks another) on the 2-core CI machine (numba's cache warm).

``--against REV`` also times the same command from a git commit (checked out as a
temporary worktree, its packages first on ``sys.path``), interleaved run by run with this
tree, and prints both medians and their ratio: a refactor must not be slower as a whole
process (exits 1 when this tree's median is more than 5 % above REV's).

Usage:  python benchmarks/bench_run.py [--repeat 5] [--arch tpu_v1] [--model resnet50]
        [--against 0ea4865]
Prints each wall time and the median; exits 1 if the median misses the goal.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_map import wall

GOAL_S = 2.0
ROOT = Path(__file__).resolve().parents[1]
# the tree under test first on sys.path ("" = the installed tilesim)
DRIVER = ("import sys; src = sys.argv[1]; src and sys.path.insert(0, src); "
          "from tilesim.cli import main; sys.exit(main(sys.argv[2:]))")


def against(rev: str, argv: list, repeat: int) -> int:
    wt = Path(tempfile.mkdtemp(prefix="tilesim-bench-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), rev],
                   check=True, capture_output=True)
    try:
        ts = {rev: [], "this tree": []}
        for src in (str(wt), ""):   # warm the caches (bytecode, numba) of both
            subprocess.run([sys.executable, "-c", DRIVER, src, *argv], check=True,
                           capture_output=True, cwd=tempfile.gettempdir())
        for _ in range(repeat):
            for name, src in ((rev, str(wt)), ("this tree", "")):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-c", DRIVER, src, *argv], check=True,
                               capture_output=True, cwd=tempfile.gettempdir())
                ts[name].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in ts.items()}
        for k, v in ts.items():
            print(f"{k:>12s}: median {med[k]:.3f} s of {', '.join(f'{t:.3f}' for t in v)}")
        ratio = med["this tree"] / med[rev]
        print(f"this tree / {rev}: {ratio:.3f} (interleaved, {repeat} pairs)")
        return 0 if ratio <= 1.05 else 1
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)],
                       capture_output=True)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--arch", default="tpu_v1")
    p.add_argument("--model", default="resnet50")
    p.add_argument("--against", metavar="REV", help="also time a git commit, interleaved")
    p.add_argument("--fusion", default=None, help="network schedule (default: the arch's)")
    a = p.parse_args()
    argv = ["run", "--arch", a.arch, "--model", a.model, "--quiet"]
    if a.fusion:
        argv += ["--fusion", a.fusion]
    if a.against:
        return against(a.against, argv, a.repeat)
    cmd = [sys.executable, "-m", "tilesim.cli", *argv]
    med, times = wall(cmd, a.repeat)   # warms caches (bytecode, numba) first
    for t in times:
        print(f"run: {t:.3f} s")
    print(f"median wall time: {med:.3f} s (goal < {GOAL_S} s) for {' '.join(cmd[2:])}")
    return 0 if med < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
