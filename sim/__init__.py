"""Simulation: the cost model (one closed form, vectorised), the discrete-event engine
(:mod:`sim.des`), the PE-array model (:mod:`sim.pe`), reference kernels and the tiled
executor (:mod:`sim.kernels`), energy and the GPU latency model. Imports arch,
workloads and mapper."""
from .cost import CostModel, Costs
from .energy import energy_sources, energy_table
from .results import LayerResult, ModelResult, layers_frame, tensors_frame
from .run import make_mapper, simulate_model

__all__ = ["CostModel", "Costs", "LayerResult", "ModelResult", "energy_sources", "energy_table",
           "layers_frame", "tensors_frame", "make_mapper", "simulate_model"]
