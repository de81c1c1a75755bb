"""The GPU latency model: a roofline per kernel with the losses that make small GEMMs slow.

Every layer is one kernel. BatchNorm is folded into the conv's weights and a fused
activation runs in the conv's epilogue, as TensorRT and cuDNN do; a residual add right
after the MAC layer that made one of its inputs runs in that epilogue too (TensorRT's
conv + add + ReLU fusion; ``fuse_residual_add=False``, as in eager PyTorch, makes it a
kernel of its own). Pools and other vector ops are kernels of their own. A kernel takes

    t = max(t_compute, t_memory) + launch

* **MAC layers on tensor cores** (tf32, fp16, bf16, int8; fp32 on the CUDA cores, same
  formula at the fp32 peak). The layer is its GEMM (M = N·P·Q output pixels, N = K/groups
  filters, K = C/groups·R·S reduction, per group). A library kernel covers the output with
  CTA tiles ``tm x tn`` and steps through the reduction ``k_step`` elements at a time
  (``k_step`` = ``k_tile_bytes`` / element size: the tensor-core MMA shape), so it
  does the work of ``ceil(M/tm)·tm x ceil(N/tn)·tn x ceil(K/k_step)·k_step`` (tile
  quantisation). The tiles run on the SMs in waves of one tile per SM; a wave lasts as
  long as one tile on one SM at ``peak / SMs`` (wave quantisation), so

      t_compute = ceil(tiles / SMs) · 2·tm·tn·ceil(K/k_step)·k_step / (peak·eff·rel(tile) / SMs)

  where ``eff`` is the fraction of the dense peak a well-fed kernel sustains and
  ``rel(tile)`` the relative rate of a smaller tile (less operand reuse). As a library's
  heuristics do, the model picks, per layer, the tile shape and split-K factor (the
  reduction cut into ``s`` slices run as more tiles, their fp32 partial sums written and
  reduced by one more kernel) that give the least time.
* **Depthwise convolutions** (groups == C == K) cannot use tensor cores: they run on the
  CUDA cores at the fp32 peak x (4 / element bytes) (packed fp16 / DP4A int8) and are in
  practice memory-bound.
* **Memory**: every kernel reads its input and weights and writes its output once from
  DRAM at ``memory_efficiency`` x the datasheet bandwidth (the L2 catches the tile
  re-reads; nothing is assumed to stay in L2 between kernels).
* **Vector ops** (pool, add, activations, ...) are memory-bound kernels: bytes read and
  written at the element size, compute at the CUDA-core rate.

One :class:`GpuModelParams` serves every GPU: no per-GPU factor. The defaults were set
once against the published ResNet-50 figures in tests/data/gpu_published.csv (all GPUs
at once); the test there checks every GPU with these same numbers.

Energy is the GPU's TDP x modelled time: an upper bound (board power at its limit), not
a per-op model, and labelled so in every output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from tilesim.arch.gpu_schema import GPU_PRECISION_BYTES, GpuSpec
from tilesim.arch.errors import ArchError
from tilesim.workloads import MacLayer, Model

from ..results import LayerResult, ModelResult

ENERGY_SOURCE = "GPU TDP x modelled time (upper bound: board power at its limit; not a per-op model)"


@dataclass(frozen=True)
class GpuModelParams:
    """The model's parameters, one set for every GPU (see the module docstring)."""
    #: fixed cost per kernel: launch gap, first DRAM round trip, pipeline fill and drain
    launch_s: float = 8.0e-6
    compute_efficiency: float = 0.80  # fraction of dense peak a large-tile kernel sustains
    memory_efficiency: float = 0.80   # fraction of datasheet DRAM bandwidth a kernel streams at
    #: CTA tile shapes (tm, tn, relative rate); the model picks the fastest per layer
    tiles: tuple = ((256, 128, 1.0), (128, 128, 1.0), (128, 64, 0.9), (64, 64, 0.75))
    k_tile_bytes: int = 32            # reduction step: 32 B = 32 int8 / 16 fp16 / 8 tf32 values
    split_k: tuple = (1, 2, 4, 8)     # reduction slices tried (partial sums in fp32)
    #: a residual add right after the MAC layer that makes one of its inputs runs in that
    #: layer's epilogue (TensorRT's conv + add + ReLU fusion): the kernel reads the other
    #: input, the add costs nothing of its own. False: every add is its own kernel
    #: (PyTorch eager).
    fuse_residual_add: bool = True


@dataclass(frozen=True)
class GpuModelResult(ModelResult):
    """A ModelResult from the GPU model: layer cycles are at the GPU's boost clock."""
    precision: str = ""
    tdp_w: float = 0.0

    def summary(self) -> dict:
        s = super().summary()
        for k in ("area_sq_mm", "mapping_objective"):  # accelerator-only keys
            s.pop(k, None)
        s.update({"device": "gpu", "gpu_precision": self.precision, "tdp_w": self.tdp_w,
                  "energy_source": ENERGY_SOURCE})
        return s


def check_precision(gpu: GpuSpec, precision: str) -> None:
    """An ArchError naming the GPU and the precisions it has when it lacks ``precision``."""
    if precision not in gpu.precisions:
        raise ArchError(f"GPU {gpu.name!r} has no {precision} peak (it cannot run {precision} "
                        "on its tensor or CUDA cores as modelled)",
                        source=gpu.name, fix="use one of: " + ", ".join(gpu.precisions))


def _is_depthwise(l: MacLayer) -> bool:
    return l.groups > 1 and l.groups == l.C == l.K


def mac_kernel(l: MacLayer, gpu: GpuSpec, precision: str, p: GpuModelParams) -> dict:
    """Time (s) and traffic of one MAC layer's kernel: t_compute, t_memory, bytes, tile."""
    eb = GPU_PRECISION_BYTES[precision]
    io_bytes = (l.input_elems + l.output_elems + l.weight_elems) * eb
    bw = gpu.memory_bandwidth * p.memory_efficiency
    if _is_depthwise(l):
        rate = gpu.peak.fp32 * (4 / eb) * p.compute_efficiency
        t_c = 2 * l.macs / rate
        return {"t_compute": t_c, "t_memory": io_bytes / bw, "bytes": io_bytes, "kernels": 1,
                "tiling": "depthwise on CUDA cores"}
    g, M, N, K = l.gemm
    peak = gpu.peak_ops(precision)
    k_step = max(1, p.k_tile_bytes // eb)
    best = None
    for tm, tn, rel in p.tiles:
        for s in p.split_k:
            kk = math.ceil(K / s)
            if s > 1 and kk < 4 * k_step:
                continue
            kq = math.ceil(kk / k_step) * k_step
            tiles = g * math.ceil(M / tm) * math.ceil(N / tn) * s
            waves = math.ceil(tiles / gpu.sms)
            t_c = waves * 2 * tm * tn * kq / (peak * p.compute_efficiency * rel / gpu.sms)
            extra = 0 if s == 1 else g * M * N * 4 * s * 2  # fp32 partials written, read back
            t_m = (io_bytes + extra) / bw
            t = max(t_c, t_m) + (p.launch_s if s > 1 else 0.0)
            if best is None or t < best[0]:
                best = (t, t_c, t_m, io_bytes + extra, s, tm, tn, tiles, waves)
    _, t_c, t_m, nbytes, s, tm, tn, tiles, waves = best
    return {"t_compute": t_c, "t_memory": t_m, "bytes": nbytes, "kernels": 1 + (s > 1),
            "tiling": f"tile {tm}x{tn}x{k_step} split-k {s}: {tiles} tiles in {waves} "
                      f"waves over {gpu.sms} SMs"}


def fused_adds(model: Model) -> dict[str, str]:
    """{MAC layer: the add fused into its epilogue}: an ``add`` of two inputs that comes
    right after a MAC layer whose output has the add's shape."""
    out = {}
    for prev, l in zip(model.layers, model.layers[1:]):
        if (getattr(l, "op", None) == "add" and l.inputs == 2 and isinstance(prev, MacLayer)
                and (prev.N, prev.K, prev.P, prev.Q) == (l.N, l.C, l.H, l.W)):
            out[prev.name] = l.name
    return out


def op_kernel(l, gpu: GpuSpec, precision: str, p: GpuModelParams) -> dict:
    """Time (s) and traffic of a vector op (pool, add, activation, ...): memory-bound."""
    eb = GPU_PRECISION_BYTES[precision]
    nbytes = (l.in_elems + l.out_elems) * eb
    rate = gpu.peak.fp32 / 2 * (4 / eb) * p.compute_efficiency  # one op per lane per clock
    return {"t_compute": l.ops / rate, "t_memory": nbytes / (gpu.memory_bandwidth
                                                             * p.memory_efficiency),
            "bytes": nbytes, "kernels": 1, "tiling": "vector kernel on CUDA cores"}


def simulate_gpu(model: Model, gpu: GpuSpec, precision: str = "fp16",
                 params: GpuModelParams | None = None) -> GpuModelResult:
    """Model every layer of ``model`` on ``gpu`` at ``precision``: one kernel per layer.

    Layer cycles are at ``gpu.clock``; ``energy_pj`` is TDP x time (see ENERGY_SOURCE)."""
    p = params or GpuModelParams()
    check_precision(gpu, precision)
    eb = GPU_PRECISION_BYTES[precision]
    clk = gpu.clock
    fused = fused_adds(model) if p.fuse_residual_add else {}
    out = []
    for i, l in enumerate(model.layers):
        mac = isinstance(l, MacLayer)
        if l.name in fused.values():  # ran in the previous MAC layer's epilogue
            out.append(LayerResult(
                layer=l.name, kind=l.kind, macs=0, vector_ops=l.ops, compute_cycles=0,
                stall_cycles=0, total_cycles=0, memory_cycles=0, utilization=0.0,
                dram_read_bytes=0, dram_write_bytes=0, bound="fused",
                tiling=f"fused into {model.layers[i - 1].name}", fidelity="gpu-model",
                energy_pj=gpu.tdp / clk * 1e12))
            continue
        k = mac_kernel(l, gpu, precision, p) if mac else op_kernel(l, gpu, precision, p)
        if l.name in fused:  # the epilogue reads the add's other input
            extra = l.output_elems * eb
            k = dict(k, bytes=k["bytes"] + extra,
                     t_memory=k["t_memory"] + extra / (gpu.memory_bandwidth * p.memory_efficiency),
                     tiling=k["tiling"] + f"; + {fused[l.name]} in the epilogue")
        t = max(k["t_compute"], k["t_memory"]) + p.launch_s
        cycles = max(1, math.ceil(t * clk))
        comp = min(cycles, max(1, math.ceil(k["t_compute"] * clk)))
        if k["t_compute"] >= k["t_memory"]:
            bound = "compute"
        else:
            bound = "memory"
        if p.launch_s > max(k["t_compute"], k["t_memory"]):
            bound = "launch"
        in_b = (l.input_elems if mac else l.in_elems) * eb
        w_b = (l.weight_elems if mac else 0) * eb
        out_b = (l.output_elems if mac else l.out_elems) * eb
        rd = in_b + w_b + (k["bytes"] - in_b - w_b - out_b) // 2
        wr = k["bytes"] - rd
        peak_mpc = gpu.peak_ops(precision) / 2 / clk
        out.append(LayerResult(
            layer=l.name, kind=l.kind, macs=l.macs, vector_ops=0 if mac else l.ops,
            compute_cycles=comp - 1, stall_cycles=cycles - comp, total_cycles=cycles - 1,
            memory_cycles=math.ceil(k["t_memory"] * clk),
            utilization=min(1.0, l.macs / (peak_mpc * cycles)) if mac else 0.0,
            dram_read_bytes=int(rd), dram_write_bytes=int(wr),
            dram_read_input_bytes=int(in_b), dram_read_weight_bytes=int(w_b),
            bound=bound, tiling=k["tiling"], fidelity="gpu-model",
            energy_pj=gpu.tdp * cycles / clk * 1e12))
    return GpuModelResult(arch=gpu.name, model=model.name, batch=model.batch, clock_hz=clk,
                          peak_macs_per_cycle=max(1, round(gpu.peak_ops(precision) / 2 / clk)),
                          layers=tuple(out), energy_sources={"energy_pj": ENERGY_SOURCE},
                          precision=precision, tdp_w=gpu.tdp)
