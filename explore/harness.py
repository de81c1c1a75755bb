"""Measure real per-layer latency with PyTorch (the ``torch`` extra, imported lazily).

Each layer of a tilesim Model is built as a small PyTorch computation with the layer's
exact shapes (our layer IR, not torchvision): a MAC layer as ``nn.Conv2d`` (or
``nn.Linear`` for fc / gemm) plus its fused activation, a pool, add, concat or
activation as the matching ``torch.nn.functional`` call. Timing:

* ``warmup`` untimed runs, then ``repeats`` timed runs; the median is reported (with the
  minimum). On CUDA each run is timed with a pair of CUDA events around the layer alone;
  on the CPU with ``time.perf_counter`` around a call that returns when the work is done.
* Inputs are rotated over ``k`` copies (enough that together they pass 64 MiB, at least
  2, at most 8) so that a run does not find its input in the cache the previous run left.
* The whole model is timed too: every layer back to back in one timed region (each on
  its own rotated inputs: the IR has no tensor edges), so inter-layer gaps count.

On CUDA, 4-D tensors and convolutions are channels-last (NHWC), the layout cuDNN's
tensor-core kernels use. Precision: fp32, fp16 and bf16 run at that dtype; tf32 on CUDA enables TF32 math
(on the CPU it is fp32). int8 uses PyTorch's quantized CPU kernels (``torch.ao``:
quantized conv / linear, quantized pooling and add) on the CPU; eager PyTorch has no
int8 convolution on CUDA, so there (and for any layer the quantized kernels cannot
run) the layer falls back to fp16 on CUDA / fp32 on the CPU. The precision actually
measured is in every row (``precision_measured``), never silently assumed.
"""
from __future__ import annotations

import math
import platform
import statistics
import subprocess
import time
import warnings
from dataclasses import dataclass, field

from tilesim.workloads import MacLayer, Model

ROTATE_BYTES = 64 * 2**20
PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8")


class BaselineError(ValueError):
    """Bad input to the measurement harness or comparison: names the source and a fix."""

    def __init__(self, message: str, *, source: str | None = None, fix: str | None = None):
        self.source, self.fix, self.bare = source, fix, message
        text = f"{source}: {message}" if source else message
        super().__init__(f"{text}. Fix: {fix}" if fix else text)


@dataclass(frozen=True)
class Measurement:
    """Per-layer (and whole-model) median latencies with the run's environment."""
    model: str
    batch: int
    device: str            # "cpu" or "cuda"
    precision: str         # requested
    env: dict              # device_name, driver/cuda/torch/cudnn versions, threads, timer
    rows: tuple = field(default_factory=tuple)  # dicts, one per layer, then the model row

    def frame(self):
        """The CSV's table: one row per layer plus a ``scope == "model"`` row."""
        import pandas as pd
        meta = {"model": self.model, "batch": self.batch, "device": self.device,
                "precision_requested": self.precision, **self.env}
        return pd.DataFrame([{**r, **meta} for r in self.rows])


def _torch():
    try:
        import torch
    except ImportError:
        raise BaselineError("measuring needs PyTorch, which is not installed",
                            fix="pip install 'tilesim[torch]'") from None
    return torch


def _env(torch, device: str) -> dict:
    threads = torch.get_num_threads()
    if device == "cuda":
        return {"device_name": torch.cuda.get_device_name(0), "driver_version": _driver(),
                "cuda_version": torch.version.cuda or "", "torch_version": torch.__version__,
                "cudnn_version": str(torch.backends.cudnn.version() or ""),
                "cpu_threads": threads, "timer": "cuda_events"}
    name = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"device_name": f"CPU: {name} (no GPU measured)", "driver_version": "n/a (cpu)",
            "cuda_version": "n/a (cpu)", "torch_version": torch.__version__,
            "cudnn_version": "n/a (cpu)", "cpu_threads": threads, "timer": "perf_counter"}


def _driver() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


_ACTS = {"relu": lambda F, x: F.relu(x), "relu6": lambda F, x: F.relu6(x),
         "leaky": lambda F, x: F.leaky_relu(x, 0.1), "sigmoid": lambda F, x: x.sigmoid(),
         "swish": lambda F, x: F.silu(x), "hardswish": lambda F, x: F.hardswish(x),
         "hardsigmoid": lambda F, x: F.hardsigmoid(x), "tanh": lambda F, x: x.tanh(),
         "gelu": lambda F, x: F.gelu(x), "elu": lambda F, x: F.elu(x),
         "selu": lambda F, x: F.selu(x), "softplus": lambda F, x: F.softplus(x),
         "mish": lambda F, x: F.mish(x), "softmax": lambda F, x: F.softmax(x, dim=1),
         "clip": lambda F, x: x.clamp(0, 6)}


def _act(F, name):
    if name is None:
        return lambda x: x
    if name not in _ACTS:
        raise NotImplementedError(f"activation {name!r}")
    f = _ACTS[name]
    return lambda x: f(F, x)


def _float_layer(torch, l, dtype, dev):
    """(fn, input shapes) of a layer in floating point."""
    F = torch.nn.functional
    if isinstance(l, MacLayer):
        act = _act(F, l.activation)
        if l.origin in ("fc", "gemm") and l.H == l.W == l.R == l.S == 1:
            m = torch.nn.Linear(l.C, l.K, bias=l.bias).to(dev, dtype).eval()
            return (lambda x: act(m(x))), [(l.N, l.C)]
        m = torch.nn.Conv2d(l.C, l.K, (l.R, l.S), stride=l.stride, padding=l.padding,
                            dilation=l.dilation, groups=l.groups, bias=l.bias)
        m = m.to(dev, dtype).eval()
        if dev.type == "cuda":  # NHWC: what cuDNN's tensor-core kernels want
            m = m.to(memory_format=torch.channels_last)
        return (lambda x: act(m(x))), [(l.N, l.C, l.H, l.W)]
    op, shp = l.op, (l.N, l.C, l.H, l.W)
    act = _act(F, l.activation)
    if op == "maxpool":
        return (lambda x: F.max_pool2d(x, (l.R, l.S), l.stride, l.padding)), [shp]
    if op == "avgpool":
        return (lambda x: F.avg_pool2d(x, (l.R, l.S), l.stride, l.padding)), [shp]
    if op == "gap":
        return (lambda x: F.adaptive_avg_pool2d(x, 1)), [shp]
    if op in ("add", "mul"):
        def fn(*xs):
            y = xs[0]
            for x in xs[1:]:
                y = y + x if op == "add" else y * x
            return act(y)
        return fn, [shp] * l.inputs
    if op == "concat":
        rest = l.K - l.C
        n = max(1, l.inputs - 1)
        chans = [l.C] + [rest // n + (1 if i < rest % n else 0) for i in range(n)]
        return (lambda *xs: torch.cat(xs, dim=1)), [(l.N, c, l.H, l.W) for c in chans if c]
    if op == "batchnorm":
        mean, var = torch.zeros(l.C, device=dev, dtype=dtype), torch.ones(l.C, device=dev,
                                                                          dtype=dtype)
        return (lambda x: F.batch_norm(x, mean, var)), [shp]
    if op == "transpose":
        return (lambda x: x.transpose(2, 3).contiguous()), [shp]
    if op == "resize":
        return (lambda x: F.interpolate(x, size=(l.P, l.Q))), [shp]
    if op == "pad":
        return (lambda x: F.pad(x, (0, l.Q - l.W, 0, l.P - l.H))), [shp]
    f = _act(F, op)  # a standalone activation
    return f, [shp]


def _int8_layer(torch, l):
    """(fn, input shapes, quantise) of a layer with PyTorch's quantized CPU kernels."""
    import torch.ao.nn.quantized as nnq
    F = torch.nn.functional
    if isinstance(l, MacLayer):
        if l.activation not in (None, "relu"):
            raise NotImplementedError(f"quantized {l.activation}")
        relu = l.activation == "relu"
        if l.origin in ("fc", "gemm") and l.H == l.W == l.R == l.S == 1:
            m = nnq.Linear(l.C, l.K, bias_=l.bias)
            shapes = [(l.N, l.C)]
        else:
            m = nnq.Conv2d(l.C, l.K, (l.R, l.S), stride=l.stride, padding=l.padding,
                           dilation=l.dilation, groups=l.groups, bias=l.bias)
            shapes = [(l.N, l.C, l.H, l.W)]
        return ((lambda x: torch.relu(m(x))) if relu else m), shapes
    shp = (l.N, l.C, l.H, l.W)
    if l.op == "maxpool":
        return (lambda x: F.max_pool2d(x, (l.R, l.S), l.stride, l.padding)), [shp]
    if l.op == "avgpool":
        return (lambda x: F.avg_pool2d(x, (l.R, l.S), l.stride, l.padding)), [shp]
    if l.op == "gap":
        return (lambda x: F.adaptive_avg_pool2d(x, 1)), [shp]
    if l.op == "add" and l.inputs == 2 and l.activation in (None, "relu"):
        add = torch.ops.quantized.add_relu if l.activation else torch.ops.quantized.add
        return (lambda a, b: add(a, b, 0.1, 0)), [shp, shp]
    raise NotImplementedError(f"quantized {l.op}")


def _time(torch, fn, inputs, device, repeats, warmup) -> list[float]:
    """Seconds of each of ``repeats`` timed runs of ``fn`` over rotated ``inputs``."""
    k = len(inputs)
    for i in range(warmup):
        fn(*inputs[i % k])
    out = []
    if device == "cuda":
        torch.cuda.synchronize()
        for i in range(repeats):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn(*inputs[i % k])
            b.record()
            b.synchronize()
            out.append(a.elapsed_time(b) / 1e3)
    else:
        for i in range(repeats):
            t0 = time.perf_counter()
            fn(*inputs[i % k])
            out.append(time.perf_counter() - t0)
    return out


def measure(model: Model, device: str = "cpu", precision: str = "fp32", repeats: int = 50,
            warmup: int = 5, whole_model: bool = True, progress=None) -> Measurement:
    """Time every layer of ``model`` (its own batch) on ``device`` at ``precision``;
    ``progress(i, n, name)`` as layer ``i`` of ``n`` starts (``n`` the whole model's run)."""
    if device not in ("cpu", "cuda"):
        raise BaselineError(f"unknown device {device!r}",   # the command's --device has choices
                            fix="use device='cuda' or device='cpu'")
    if precision not in PRECISIONS:
        raise BaselineError(f"unknown precision {precision!r}",
                            fix="use one of " + ", ".join(PRECISIONS))
    if repeats < 1 or warmup < 0:
        raise BaselineError(f"repeats {repeats} / warmup {warmup}",
                            fix="give at least 1 repeat and 0 or more warm-up runs")
    torch = _torch()
    if device == "cuda" and not torch.cuda.is_available():
        raise BaselineError("--device cuda: no CUDA device is visible to PyTorch",
                            fix="use --device cpu (API: device='cpu'), or run on a machine with an "
                                "NVIDIA GPU and "
                                "a CUDA build of torch")
    env = _env(torch, device)
    rows, runs = [], []
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    fallback = "fp16" if device == "cuda" else "fp32"
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices
        if device == "cuda":
            on = precision == "tf32"
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
        try:
            n_steps = len(model.layers) + (1 if whole_model else 0)
            for i, l in enumerate(model.layers):
                if progress:
                    progress(i, n_steps, l.name)
                row = {"scope": "layer", "layer": l.name, "kind": l.kind, "macs": l.macs}
                got = _build(torch, l, device, precision, fallback)
                if isinstance(got, str):
                    rows.append({**row, "latency_ms": float("nan"), "latency_ms_min":
                                 float("nan"), "precision_measured": "", "repeats": 0,
                                 "rotated_inputs": 0, "note": got})
                    continue
                fn, inputs, measured, note = got
                ts = _time(torch, fn, inputs, device, repeats, warmup)
                runs.append((fn, inputs))
                rows.append({**row, "latency_ms": statistics.median(ts) * 1e3,
                             "latency_ms_min": min(ts) * 1e3, "precision_measured": measured,
                             "repeats": repeats, "rotated_inputs": len(inputs), "note": note})
            if whole_model and runs:
                if progress:
                    progress(len(model.layers), n_steps, "(model)")
                n = max(len(i) for _, i in runs)

                def all_layers(j):
                    for fn, inputs in runs:
                        fn(*inputs[j % len(inputs)])
                ts = _time(torch, all_layers, [(j,) for j in range(n)], device,
                           repeats, min(warmup, 2))
                prec = sorted({r["precision_measured"] for r in rows if r["precision_measured"]})
                skipped = sum(1 for r in rows if not r["precision_measured"])
                rows.append({"scope": "model", "layer": "(model)", "kind": "model",
                             "macs": model.macs, "latency_ms": statistics.median(ts) * 1e3,
                             "latency_ms_min": min(ts) * 1e3,
                             "precision_measured": "+".join(prec), "repeats": repeats,
                             "rotated_inputs": n,
                             "note": "all layers back to back in one timed region"
                                     + (f"; {skipped} layers not built" if skipped else "")})
        finally:
            if device == "cuda":
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    return Measurement(model=model.name, batch=model.batch, device=device,
                       precision=precision, env=env, rows=tuple(rows))


def _build(torch, l, device, precision, fallback):
    """(fn, rotated inputs, precision measured, note), or a note saying why not built."""
    gen = torch.Generator().manual_seed(0)
    note = ""
    if precision == "int8" and device == "cpu":
        try:
            fn, shapes = _int8_layer(torch, l)
            qin = [[torch.quantize_per_tensor(torch.randn(s, generator=gen), 0.05, 64,
                                              torch.quint8) for s in shapes]
                   for _ in range(_copies(shapes, 1))]
            fn(*qin[0])
            return fn, qin, "int8", ""
        except (NotImplementedError, RuntimeError) as e:
            note = f"int8 not available for this layer ({str(e).splitlines()[0][:80]}); "
    want = {"fp32": "fp32", "tf32": "tf32" if device == "cuda" else "fp32", "fp16": "fp16",
            "bf16": "bf16", "int8": fallback}[precision]
    if precision == "int8" and not note:
        note = "eager PyTorch has no int8 convolution on CUDA; "
    if precision == "tf32" and device == "cpu":
        note = "tf32 is a CUDA mode; "
    dtype = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16,
             "bf16": torch.bfloat16}[want]
    try:
        fn, shapes = _float_layer(torch, l, dtype, torch.device(device))
    except NotImplementedError as e:
        return f"not built: {e} has no PyTorch equivalent here"
    eb = torch.finfo(dtype).bits // 8
    fmt = torch.channels_last if device == "cuda" else torch.contiguous_format
    inputs = [[torch.randn(s, generator=gen).to(device, dtype).contiguous(
        memory_format=fmt if len(s) == 4 else torch.contiguous_format) for s in shapes]
              for _ in range(_copies(shapes, eb))]
    try:
        fn(*inputs[0])
    except RuntimeError as e:
        if want == "fp32":
            raise
        note += f"{want} failed ({str(e).splitlines()[0][:80]}); "
        want, dtype = "fp32", torch.float32
        fn, shapes = _float_layer(torch, l, dtype, torch.device(device))
        inputs = [[x.float() for x in xs] for xs in inputs]
    if want != precision:
        note += f"measured at {want}"
    return fn, inputs, want, note.rstrip("; ")


def _copies(shapes, elem_bytes) -> int:
    nbytes = sum(math.prod(s) for s in shapes) * elem_bytes
    return max(2, min(8, math.ceil(ROTATE_BYTES / max(1, nbytes))))
