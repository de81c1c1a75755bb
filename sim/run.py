"""Simulate a whole model: map each MAC layer, time every layer, collect the results."""
from __future__ import annotations

from arch import Architecture
from mapper import Mapper
from workloads import MacLayer, Model

from .analytic import simulate_mac, simulate_op
from .results import ModelResult


def simulate_model(model: Model, arch: Architecture, mapper: Mapper | None = None,
                   progress=None) -> ModelResult:
    """Analytic simulation of ``model`` on ``arch``; ``progress(i, n, name)`` if given."""
    mapper = mapper or Mapper(arch)
    out = []
    n = len(model.layers)
    for i, layer in enumerate(model.layers):
        if progress:
            progress(i, n, layer.name)
        if isinstance(layer, MacLayer):
            out.append(simulate_mac(mapper.map(layer), arch))
        else:
            out.append(simulate_op(layer, arch))
    return ModelResult(arch=arch.name, model=model.name, batch=model.batch, clock_hz=arch.clock,
                       peak_macs_per_cycle=arch.peak_macs_per_cycle, layers=tuple(out))
