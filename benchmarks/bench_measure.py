"""Measured activation densities (``--input-sample``) on the test zoo's PyTorch networks:
how long a measuring run takes, and two must-hold checks.

For each network (``tests/zoo_torch.py``, seeded random weights, its BatchNorm statistics
taken from one random batch so that activations keep their scale: this measures the
interpreter, not a network's real densities) on a seeded ReLU'd normal input:

* the time of ``workloads.load(net, graph=True)`` (trace, shapes, weights kept) and of
  ``sim.kernels.graphrun.measure`` (the float run on the reference kernels and the
  counts);
* the interpreter's output against torch's forward: relative difference (max |a - b| /
  max |b|), must be under 1e-4;
* the network exported with ``torch.onnx.export`` (opset 17, BatchNorm folded into the
  convs by the exporter) and measured through the ONNX importer (``--onnx``, at the
  smaller ``--onnx-size``): every MAC layer's input and output densities against the
  PyTorch path's. Folding rounds differently, so a value within rounding of zero can
  fall on the other side of a ReLU: the largest difference must stay under DTOL
  (exact equality holds on exact arithmetic: tests/test_measure.py).

Usage:  python benchmarks/bench_measure.py [--model resnet18 ...] [--size 224]
        [--onnx] [--onnx-size 64]
Exits 1 if a check fails.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

TOL = 1e-4
DTOL = 1e-3


def _densities(model) -> list:
    return [(l.sparsity.input, l.sparsity.output) if l.sparsity else (1.0, 1.0)
            for l in model.mac_layers]


def main() -> int:
    import torch
    import zoo_torch

    from tilesim.sim.kernels.graphrun import measure, run
    from tilesim.workloads import load

    p = argparse.ArgumentParser()
    p.add_argument("--model", nargs="+", default=["resnet18", "resnet50", "mobilenet_v2",
                                                  "efficientnet_b0", "yolo_tiny"])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--onnx", action="store_true")
    p.add_argument("--onnx-size", type=int, default=64)
    a = p.parse_args()
    bad = 0
    print(f"{'model':16} {'size':>5} {'MAC layers':>10} {'import':>9} {'measure':>9} "
          f"{'rel. diff':>9}  onnx densities vs torch path")
    for name in a.model:
        net = zoo_torch.calibrated(name)
        for size, onnx in ((a.size, False), (a.onnx_size, True)) if a.onnx else \
                ((a.size, False),):
            x = torch.relu(torch.randn(1, 3, size, size, generator=torch.Generator()
                                       .manual_seed(1))).numpy()
            t0 = time.perf_counter()
            g = load(net, input_shape=f"1x3x{size}x{size}", graph=True)
            t1 = time.perf_counter()
            m = measure(g, x)
            t2 = time.perf_counter()
            out = run(g, x).values[g.outputs[0]]
            with torch.no_grad():
                ref = net(torch.as_tensor(x)).numpy()
            rel = float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))
            same = ""
            if onnx:
                import onnx as onnx_pkg
                buf = io.BytesIO()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(net, (torch.as_tensor(x),), buf, dynamo=False,
                                      opset_version=17)
                mo = measure(load(onnx_pkg.load_model_from_string(buf.getvalue()),
                                  graph=True), x)
                diff = max(abs(u - v) for a_, b_ in zip(_densities(mo), _densities(m), strict=True)
                           for u, v in zip(a_, b_))
                same = f"max |difference| {diff:.1e}" + ("" if diff < DTOL else " FAIL")
                bad += diff >= DTOL
            bad += rel >= TOL
            print(f"{name:16} {size:>5} {len(m.mac_layers):>10} {t1 - t0:>7.2f} s "
                  f"{t2 - t1:>7.2f} s {rel:>9.1e}  {same}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
