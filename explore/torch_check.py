"""Numerical check of the reference kernels against PyTorch on a device (``tilesim verify
--torch-device cpu|cuda``; the ``torch`` extra, imported lazily). Orchestration: it runs
:mod:`sim.kernels` next to PyTorch, so it lives in ``explore``, not ``sim``.

For each MAC layer (shrunk exactly as :mod:`sim.verify` shrinks it for the executor), the
same random operands at the architecture's precisions go through the numba reference
kernel (:func:`sim.kernels.conv2d_layer`) and through ``torch.nn.functional.conv2d`` on
the device:

* integer operands: torch computes in float64, which is exact while every partial sum
  stays below 2^53 (int8 / int16 operands with any realistic reduction length); the
  result is wrapped to the reference's int32 accumulator and must agree bit for bit;
* float operands: torch computes in fp32 with TF32 switched off and must agree within
  the same rounding bound as the executor (``n * 2^-23 * sum|x*w|`` per output).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tilesim.arch import Architecture
from tilesim.workloads import Model

from tilesim.sim.kernels import conv2d_layer
from tilesim.sim.verify import _compare, describe, random_operands, shrink

from .harness import BaselineError, _torch


@dataclass(frozen=True)
class TorchCheck:
    layer: str
    torch_device: str     # "cpu" or "cuda" (and the device name)
    torch_shape: str      # "full" or the shrunk copy "NxCxHxW->K"
    torch_dtype: str      # "float64 (exact for integers)" or "float32 (TF32 off)"
    torch_max_err: float  # max |torch - reference| (integers: LSBs, must be 0)
    torch_ok: bool


def torch_check(model: Model, arch: Architecture, device: str = "cpu",
                layers: int | None = None, seed: int = 0,
                max_macs: float = 3e8) -> tuple[TorchCheck, ...]:
    """Compare the reference kernel with torch on ``device`` for the first ``layers`` MAC
    layers of ``model`` (all if None)."""
    if device not in ("cpu", "cuda"):
        raise BaselineError(f"unknown torch device {device!r}", fix="use cpu or cuda")
    torch = _torch()
    if device == "cuda" and not torch.cuda.is_available():
        raise BaselineError("--torch-device cuda: no CUDA device is visible to PyTorch",
                            fix="use --torch-device cpu, or run on a machine with an NVIDIA "
                                "GPU and a CUDA build of torch")
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    rng = np.random.default_rng(seed)
    macs = model.mac_layers[:layers] if layers is not None else model.mac_layers
    keep = torch.backends.cudnn.allow_tf32
    out = []
    try:
        torch.backends.cudnn.allow_tf32 = False
        with torch.inference_mode():
            for layer in macs:
                l = shrink(layer, lambda x: x.macs, max_macs)
                x, w = random_operands(l, arch, rng)
                ref = conv2d_layer(l, x, w)
                is_int = np.issubdtype(ref.dtype, np.integer)
                dt = torch.float64 if is_int else torch.float32
                y = torch.nn.functional.conv2d(
                    torch.from_numpy(np.ascontiguousarray(x)).to(device, dt),
                    torch.from_numpy(np.ascontiguousarray(w)).to(device, dt),
                    stride=l.stride, padding=l.padding, dilation=l.dilation, groups=l.groups)
                y = y.cpu().numpy()
                shape = describe(l, layer)
                if y.shape[2] < l.P or y.shape[3] < l.Q:
                    out.append(TorchCheck(layer.name, name, f"{shape}: torch's output "
                                          f"{y.shape[2]}x{y.shape[3]} < {l.P}x{l.Q}, not "
                                          "compared", str(dt).removeprefix("torch."),
                                          float("nan"), True))
                    continue
                y = y[:, :, :l.P, :l.Q]
                if is_int:
                    bits = 8 * ref.dtype.itemsize
                    v = np.rint(y).astype(np.int64)
                    v = (v + 2 ** (bits - 1)) % 2 ** bits - 2 ** (bits - 1)
                    y = v.astype(ref.dtype)
                err, ok = _compare(y, ref, l, x, w)
                out.append(TorchCheck(layer.name, name, shape,
                                      "float64 (exact for integers)" if is_int
                                      else "float32 (TF32 off)", err, ok))
    finally:
        torch.backends.cudnn.allow_tf32 = keep
    return tuple(out)


def frame(checks):
    """The checks as a table (one row per layer)."""
    import pandas as pd
    return pd.DataFrame([c.__dict__ for c in checks])
