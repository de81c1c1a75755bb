"""Where the executor's DRAM bytes in a compressed format differ from the cost model's
(sim/kernels/executor.py's module doc: equal where the format's size is linear in the
non-zero count and every value is moved equally often). Runs a few small layers with
sparse int8 operands (densities counted into the layer) through the executor and prints,
per case and operand, the executor's bytes (moved for real, metadata included), the
cost model's DRAM access bytes and their relative difference (executor - cost) / cost.

Usage:  python benchmarks/bench_format_bytes.py [--seed 0]
About 10 s on one core.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import seed_mapping  # noqa: E402
from test_executor import retile  # noqa: E402
from test_executor_formats import counted, dram_access, fmt_arch, operands  # noqa: E402

from tilesim.sim.kernels.executor import execute  # noqa: E402
from tilesim.workloads.ir import conv  # noqa: E402

TILE = dict(images=1, order=("r", "k", "c"))
# (what it shows, layer, (input, weight, output) formats, N:M, tiling, densities)
CASES = [
    ("1x1, bitmask (exact)", conv("p", 1, 32, 16, 16, 32, 1), ("bitmask",) * 3, None,
     dict(rows=4, cols=16, k_tile=16, c_tile=8), (0.3, 0.3)),
    ("3x3 pad 1, bitmask: halo re-fetch (padding not fetched)",
     conv("c", 1, 16, 16, 16, 16, 3, pad=1), ("bitmask",) * 3, None,
     dict(rows=4, cols=16, k_tile=16, c_tile=16), (0.3, 0.3)),
    ("3x3 pad 0, bitmask: halo rows fetched twice",
     conv("c", 1, 16, 18, 18, 16, 3), ("bitmask",) * 3, None,
     dict(rows=2, cols=16, k_tile=16, c_tile=16), (0.3, 0.3)),
    ("1x1, csr rows cut (cols 4 of 16, c_tile 8 of 32)", conv("p", 1, 32, 16, 16, 32, 1),
     ("csr",) * 3, None, dict(rows=4, cols=4, k_tile=16, c_tile=8), (0.3, 0.3)),
    ("1x1, csr rows whole", conv("p", 1, 32, 16, 16, 32, 1), ("csr",) * 3, None,
     dict(rows=4, cols=16, k_tile=16, c_tile=32), (0.3, 0.3)),
    ("3x3, nm 2:4, c_tile 2 (18 values: blocks straddle)",
     conv("c", 1, 16, 10, 10, 16, 3), ("dense", "nm", "dense"), (2, 4),
     dict(rows=8, cols=8, k_tile=16, c_tile=2), (1.0, 1.0)),
    ("3x3, nm 2:4, c_tile 4 (36 values: aligned)",
     conv("c", 1, 16, 10, 10, 16, 3), ("dense", "nm", "dense"), (2, 4),
     dict(rows=8, cols=8, k_tile=16, c_tile=4), (1.0, 1.0)),
    ("1x1, rle d 0.3", conv("p", 1, 32, 16, 16, 32, 1), ("rle",) * 3, None,
     dict(rows=4, cols=16, k_tile=16, c_tile=8), (0.3, 0.3)),
    ("1x1, rle d 0.05", conv("p", 1, 64, 16, 16, 32, 1), ("rle",) * 3, None,
     dict(rows=4, cols=16, k_tile=16, c_tile=16), (0.05, 0.05)),
    ("1x1, rle d 0.05, one tile", conv("p", 1, 64, 16, 16, 32, 1), ("rle",) * 3, None,
     dict(rows=16, cols=16, k_tile=32, c_tile=64), (0.05, 0.05)),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(f"{'case':52} {'operand':8} {'format':8} {'executor B':>12} {'cost B':>12} "
          f"{'diff %':>8}")
    for what, layer, fmts, nm, tile, (dx, dw) in CASES:
        x, w = operands(layer, args.seed, dx, dw, nm)
        sl = counted(layer, x, w, nm)
        a = fmt_arch(dict(zip(("input", "weight", "output"), fmts)))
        m = retile(seed_mapping(sl, a), **TILE, **tile)
        ex = execute(m, x, w, arch=a)
        cost = dram_access(m, a)
        for op, f in zip(("input", "weight", "output"), fmts):
            e = sum(ex.dram_bits[op]) / 8
            c = sum(cost[op])
            print(f"{what:52} {op:8} {f:8} {e:12.1f} {c:12d} {100 * (e - c) / c:+8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
