"""Scale goals of hostile inputs (issue 17), each a whole `tilesim` process:

1. a 100,000-row layer table (YAML, and SCALE-Sim CSV) loads and simulates
   (`tilesim run --arch tpu_v1 --model TABLE --quiet`) in under 10 s;
2. the report of a 20,000-node ONNX model (a chain of 10,000 small 3x3 convs, each followed
   by a ReLU, built with onnx.helper) - `tilesim report DIR -o r.html` of its
   `tilesim run --out DIR` - in under 30 s and under 1 GB peak RSS.

Usage:  python benchmarks/bench_hostile_scale.py [--rows 100000] [--nodes 20000]
Prints wall time and peak RSS (the child's ru_maxrss) of each command; exits 1 when a goal
is missed.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLE_GOAL_S = 10.0
REPORT_GOAL_S, REPORT_GOAL_MB = 30.0, 1024.0
DRIVER = "import sys; from tilesim.cli import main; sys.exit(main(sys.argv[1:]))"


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of ``tilesim argv`` run as a child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", DRIVER, *argv], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"tilesim {' '.join(argv)} failed ({p.returncode}): {p.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024   # kB on Linux


def layer_table(folder: Path, rows: int) -> tuple[Path, Path]:
    """A YAML layer table and a SCALE-Sim CSV of ``rows`` layers each (four shapes in turn,
    every name unique)."""
    y, c = folder / "big.yaml", folder / "big.csv"
    with open(y, "w") as f:
        f.write("name: big\nlayers:\n")
        for i in range(rows):
            f.write((f"  - {{name: c{i}, type: conv, C: 16, H: 14, W: 14, K: 16, R: 3, "
                     "padding: 1, activation: relu}\n",
                     f"  - {{name: p{i}, type: conv, C: 16, H: 14, W: 14, K: 32, R: 1}}\n",
                     f"  - {{name: f{i}, type: fc, C: 64, K: 16}}\n",
                     f"  - {{name: a{i}, type: add, C: 16, H: 14, W: 14}}\n")[i % 4])
    with open(c, "w") as f:
        f.write("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                "Num Filter, Strides,\n")
        for i in range(rows):
            f.write((f"c{i}, 16, 16, 3, 3, 16, 16, 1,\n",
                     f"p{i}, 14, 14, 1, 1, 16, 32, 1,\n")[i % 2])
    return y, c


def onnx_chain(path: Path, nodes: int) -> Path:
    """An ONNX model of ``nodes`` nodes: Conv(8->8, 3x3, pad 1) and Relu in turn on 8x8."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits, graph_nodes, x = [], [], "x"
    w = numpy_helper.from_array(np.zeros((8, 8, 3, 3), np.float32), "w")
    inits.append(w)
    for i in range(nodes // 2):
        graph_nodes.append(helper.make_node("Conv", [x, "w"], [f"c{i}"], name=f"conv{i}",
                                            kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        graph_nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"))
        x = f"r{i}"
    g = helper.make_graph(graph_nodes, "chain",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 8, 8, 8])],
                          inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--nodes", type=int, default=20_000)
    a = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="tilesim-scale-") as t:
        t = Path(t)
        y, c = layer_table(t, a.rows)
        for table in (y, c):
            wall, mb = timed(["run", "--arch", "tpu_v1", "--model", str(table), "--quiet"])
            good = wall < TABLE_GOAL_S
            ok &= good
            print(f"{a.rows:,}-row {table.suffix[1:].upper()} layer table, run: {wall:.2f} s, "
                  f"peak RSS {mb:.0f} MB (goal < {TABLE_GOAL_S:g} s) {'ok' if good else 'MISSED'}")
        model = onnx_chain(t / "chain.onnx", a.nodes)
        wall, mb = timed(["run", "--arch", "tpu_v1", "--model", str(model), "--quiet",
                          "--out", str(t / "run")])
        print(f"{a.nodes:,}-node ONNX chain, run --out: {wall:.2f} s, peak RSS {mb:.0f} MB")
        wall, mb = timed(["report", str(t / "run"), "-o", str(t / "r.html")])
        size = (t / "r.html").stat().st_size / 1e6
        good = wall < REPORT_GOAL_S and mb < REPORT_GOAL_MB
        ok &= good
        print(f"{a.nodes:,}-node ONNX chain, report: {wall:.2f} s, peak RSS {mb:.0f} MB, "
              f"{size:.1f} MB of HTML (goal < {REPORT_GOAL_S:g} s and {REPORT_GOAL_MB:g} MB) "
              f"{'ok' if good else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
