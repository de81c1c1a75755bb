"""Speed goal: importing a 100-layer ONNX model takes under 1 s.

The model is written here with onnx.helper: 50 residual blocks (Conv 3x3 64->64 +
BatchNormalization + Relu, Conv + BatchNormalization, Add + Relu) on a 1x64x56x56 input,
i.e. 100 convolutions and 50 adds (150 layers after fusion, 350 ONNX nodes) with real
float32 weights embedded (3.7 M parameters, about 15 MB of file).

Two numbers are printed: the in-process time of ``workloads.load(path)`` (the goal;
median of ``--repeat`` runs, onnx already imported), and the wall time of a fresh
``python -c 'import workloads; workloads.load(path)'`` process, interpreter start and
``import onnx`` included.

Usage:  python benchmarks/bench_import.py [--repeat 5] [--blocks 50]
Exits 1 if the in-process median misses the goal.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 1.0
ROOT = Path(__file__).resolve().parents[1]


def build(blocks: int, c: int = 64, hw: int = 56):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def t(name, shape):
        inits.append(numpy_helper.from_array(np.zeros(shape, np.float32), name))
        return name

    def conv_bn(x, name):
        y = f"{name}/conv"
        nodes.append(helper.make_node("Conv", [x, t(f"{name}.w", (c, c, 3, 3))], [y], name=name,
                                      pads=[1, 1, 1, 1], kernel_shape=[3, 3]))
        bn = [y] + [t(f"{name}.bn.{p}", (c,)) for p in ("g", "b", "m", "v")]
        nodes.append(helper.make_node("BatchNormalization", bn, [f"{name}/bn"], name=f"{name}.bn"))
        return f"{name}/bn"

    x = "input"
    for b in range(blocks):
        h = conv_bn(x, f"block{b}.conv1")
        nodes.append(helper.make_node("Relu", [h], [f"block{b}/r1"]))
        h = conv_bn(f"block{b}/r1", f"block{b}.conv2")
        nodes.append(helper.make_node("Add", [h, x], [f"block{b}/add"], name=f"block{b}.add"))
        nodes.append(helper.make_node("Relu", [f"block{b}/add"], [f"block{b}/out"]))
        x = f"block{b}/out"
    g = helper.make_graph(nodes, "chain",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c, hw, hw])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", c, hw, hw])],
                          initializer=inits)
    return onnx.helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), len(nodes)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--blocks", type=int, default=50)
    a = p.parse_args()
    sys.path.insert(0, str(ROOT))
    import onnx

    from tilesim import workloads
    model, n_nodes = build(a.blocks)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "chain.onnx"
        onnx.save(model, path)
        m = workloads.load(path)  # warm-up (bytecode, onnx's lazy imports)
        n_mac = len(m.mac_layers)
        times = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            workloads.load(path)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import workloads; workloads.load({str(path)!r})"],
                       check=True, env=env)
        cold = time.perf_counter() - t0
        size = path.stat().st_size
    print(f"model: {n_nodes} ONNX nodes -> {len(m.layers)} layers ({n_mac} MAC layers), "
          f"{m.params / 1e6:.2f} M params, file {size / 1e6:.1f} MB")
    print(f"in-process load: median {med * 1e3:.1f} ms, max {max(times) * 1e3:.1f} ms over "
          f"{a.repeat} runs (goal < {GOAL_S * 1e3:.0f} ms)")
    print(f"fresh process (python start + import onnx + load): {cold * 1e3:.0f} ms")
    return 0 if med < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
