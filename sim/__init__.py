"""Simulation: the analytic model (more fidelities to come). Imports arch, workloads, mapper."""
from .analytic import compute_cycles, fold_cycles, simulate_mac, simulate_op
from .results import LayerResult, ModelResult, layers_frame
from .run import simulate_model

__all__ = ["LayerResult", "ModelResult", "layers_frame", "compute_cycles", "fold_cycles", "simulate_mac",
           "simulate_model", "simulate_op"]
