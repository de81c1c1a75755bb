"""The cycle-level array models (numba): outputs and exact cycles on small shapes. The
GEMM dataflows run on :mod:`.systolic`, row stationary on :mod:`.rowstationary`."""
from . import systolic
from .rowstationary import simulate_rs, simulate_rs_mapping
from .systolic import PEResult, array_work, lower, simulate_gemm, unlower, work


def simulate_mapping(mapping, x, w):
    """Run a mapped MAC layer on its dataflow's PE model: (output (N, K, P, Q), PEResult)."""
    if mapping.dataflow.name == "rs":
        return simulate_rs_mapping(mapping, x, w)
    return systolic.simulate_mapping(mapping, x, w)


__all__ = ["PEResult", "array_work", "lower", "simulate_gemm", "simulate_mapping", "simulate_rs", "unlower",
           "work"]
