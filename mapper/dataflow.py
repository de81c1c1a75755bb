"""Dataflows as data: which GEMM dimension sits on the array's rows, which on its
columns, and which streams through in time.

A MAC layer (one group) is the GEMM  out[M, N] = in[M, K] @ w[K, N]  with
M = N*P*Q output pixels, N = K/groups filters and K = C/groups*R*S reduction
(see :attr:`workloads.MacLayer.gemm`). The three classic systolic dataflows are:

========  ==========  ==========  ===========  =====================================
dataflow  array rows  array cols  streams (T)  stationary in the PEs
========  ==========  ==========  ===========  =====================================
os        M (pixels)  N (filters) K (reduce)   outputs (partial sums)
ws        K (reduce)  N (filters) M (pixels)   weights
is        K (reduce)  M (pixels)  N (filters)  inputs
========  ==========  ==========  ===========  =====================================

This is SCALE-Sim's assignment (its Sr, Sc and T), so fold counts agree with it.
"""
from __future__ import annotations

from dataclasses import dataclass

# operand -> the GEMM dims that index it
OPERAND_DIMS = {"input": ("M", "K"), "weight": ("K", "N"), "output": ("M", "N")}


@dataclass(frozen=True)
class Dataflow:
    name: str
    rows: str    # GEMM dim spread over the array's rows
    cols: str    # GEMM dim spread over the array's columns
    stream: str  # GEMM dim that streams through in time
    stationary: str  # the operand that stays in the PEs during a fold

    def reads_per_element(self, operand: str, row_folds: int, col_folds: int) -> int:
        """How often the array reads each element of ``operand`` from its buffer.

        An operand indexed by both array dims is loaded once; one that lacks the rows
        (cols) dim is re-streamed for every row (col) fold. For the output operand this
        is the number of partial-sum writes per element.
        """
        dims = OPERAND_DIMS[operand]
        f = 1
        if self.rows not in dims:
            f *= row_folds
        if self.cols not in dims:
            f *= col_folds
        return f


DATAFLOWS = {
    "os": Dataflow("os", rows="M", cols="N", stream="K", stationary="output"),
    "ws": Dataflow("ws", rows="K", cols="N", stream="M", stationary="weight"),
    "is": Dataflow("is", rows="K", cols="M", stream="N", stationary="input"),
}
