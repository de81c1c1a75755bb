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
    """One dataflow as data; its fold terms are methods, so no caller branches on its name.

    Per-fold compute (cycle-exact with SCALE-Sim v3, proven register by register by
    :mod:`sim.pe`): with an Ra x Ca array streaming T elements,

    * an output-stationary fold (``preload`` False) takes ``T + Ra + Ca - 2`` cycles:
      operands skew in over Ra - 1 cycles, stream T cycles, the last partial sums
      ripple through Ca - 1 columns; outputs stay in the PEs;
    * a weight- or input-stationary fold (``preload`` True) takes ``T + 2 Ra + Ca - 2``:
      the same plus Ra cycles to shift the stationary operand down the Ra rows.
    """
    name: str
    rows: str    # GEMM dim spread over the array's rows
    cols: str    # GEMM dim spread over the array's columns
    stream: str  # GEMM dim that streams through in time
    stationary: str  # the operand that stays in the PEs during a fold
    preload: bool    # the stationary operand is shifted in over the rows before streaming

    def fold_cycles(self, rows, cols, stream):
        """Cycles of one fold on a ``rows`` x ``cols`` array streaming ``stream``
        elements (numbers or numpy arrays)."""
        return stream + (2 if self.preload else 1) * rows + cols - 2

    def folds(self, dims: dict, rows: int, cols: int) -> tuple[int, int]:
        """(row folds, column folds) of one group's GEMM ``dims`` ({"M", "N", "K"}) on a
        ``rows`` x ``cols`` array."""
        return -(-dims[self.rows] // rows), -(-dims[self.cols] // cols)

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
    "os": Dataflow("os", rows="M", cols="N", stream="K", stationary="output", preload=False),
    "ws": Dataflow("ws", rows="K", cols="N", stream="M", stationary="weight", preload=True),
    "is": Dataflow("is", rows="K", cols="M", stream="N", stationary="input", preload=True),
}
