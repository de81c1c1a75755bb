"""GPU baselines: a latency model per layer from GPU presets (:mod:`sim.gpu.model`), a
PyTorch measurement harness (:mod:`sim.gpu.harness`, the ``torch`` extra, imported
lazily) and the accelerator-vs-GPU comparison (:mod:`sim.gpu.compare`)."""
from .model import ENERGY_SOURCE, GpuModelParams, GpuModelResult, check_precision, simulate_gpu

__all__ = ["ENERGY_SOURCE", "GpuModelParams", "GpuModelResult", "check_precision",
           "simulate_gpu"]
