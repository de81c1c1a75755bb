"""Simulation: the analytic model (more fidelities to come). Imports arch, workloads, mapper."""
from .analytic import compute_cycles, fold_cycles, simulate_mac, simulate_op
from .results import LayerResult, ModelResult, layers_frame
from .energy import energy_table, mac_energy_terms, op_energy_terms, with_energy
from .run import make_mapper, simulate_model
from .vcost import VectorCost

__all__ = ["LayerResult", "ModelResult", "layers_frame", "compute_cycles", "fold_cycles", "simulate_mac",
           "simulate_model", "simulate_op", "energy_table", "mac_energy_terms", "op_energy_terms",
           "with_energy", "make_mapper", "VectorCost"]
