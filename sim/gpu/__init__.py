"""The GPU latency model: per-layer latency from GPU presets (:mod:`.model`). The PyTorch
measurement harness and the accelerator-vs-GPU comparison are orchestration
(:mod:`tilesim.explore.harness`, :mod:`tilesim.explore.compare`)."""
from .model import ENERGY_SOURCE, GpuModelParams, GpuModelResult, check_precision, simulate_gpu

__all__ = ["ENERGY_SOURCE", "GpuModelParams", "GpuModelResult", "check_precision",
           "simulate_gpu"]
