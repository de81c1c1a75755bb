"""The cycle-level systolic-array model (numba): outputs and exact cycles on small shapes."""
from .systolic import PEResult, array_work, lower, simulate_gemm, simulate_mapping, unlower, work

__all__ = ["PEResult", "array_work", "lower", "simulate_gemm", "simulate_mapping", "unlower",
           "work"]
