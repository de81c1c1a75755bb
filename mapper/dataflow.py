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

Stationary preload (an array's ``preload``, :data:`PRELOADS`)
--------------------------------------------------------------
A weight- or input-stationary fold first shifts its stationary operand down the Ra rows.
``serial`` (SCALE-Sim's convention, the default) does that before each fold streams, so
folds run one after the other, each taking :meth:`Dataflow.fold_cycles`. ``overlapped``
is the TPU v1's double-buffered weights: each PE holds an *active* and a *shadow*
stationary register, and the next fold's operand shifts into the shadows while the
current fold streams through the active ones. The micro-architecture (what
:mod:`sim.pe` runs register by register):

1. **Shadow load.** Column j has a shift chain through the shadow registers of its Ra
   PEs. A load pushes one value a cycle into row 0's shadow, the value for row Ra - 1
   first, so after Ra cycles row i's shadow holds row i's value. A value moves down only
   with the load's front (a register takes the value above when that one is still in
   transit to a lower row), so a shadow that already holds its row's next value is never
   shifted away, and the active registers are never touched by a load: a weight on its
   way down to row i passes the rows above through their *shadow* registers while those
   rows still compute the previous fold with their *active* ones.
2. **Switch with the wave.** A PE copies its shadow into its active register at the
   clock edge where the first streamed element of a new fold reaches it, and that
   element already multiplies the new value (TPU v1: "the weights are preloaded, and take
   effect with the advancing wave alongside the first data of a new block"). The switch
   travels down and right with the data's skew: PE(i, j) switches to fold f at
   ``s_f + i + j``, where ``s_f`` is the cycle fold f's first element enters row 0.
3. **Load after the switch (the hazard).** Column j may start loading fold f + 1 in the
   cycle PE(0, j) switches to fold f (its shadow is then free: the switch reads the old
   value and the load writes the new one at the same edge). The load's front reaches
   row k at ``s_f + j + k``, the very cycle PE(k, j) empties its shadow, so it never
   overwrites a value not yet taken; one cycle earlier it would. Columns therefore load
   skewed, column j one cycle after column j - 1, like the data.
4. **Issue.** Fold f + 1's first element enters row 0 as soon as (a) fold f's last
   element has entered (``s_f + T``) and (b) column 0's shadow load of fold f + 1 is
   complete (started at ``s_f``, done after Ra cycles): ``s_{f+1} = s_f + max(T, Ra)``.
   The first fold loads from cycle 0, ``s_0 = Ra`` as with serial preload. Row i is fed
   i cycles after row 0 (the skew), so other columns and rows meet their shadows ready.
   As with serial preload, an edge (partial) fold loads and streams the whole Ra x Ca
   schedule (zeros), so every fold of a layer has the same T and interval.

So one array running F folds of T-element streams on Ra x Ca PEs takes (a count)

* ``serial`` (and every ``os`` array): ``F * fold_cycles`` = ``F (T + 2 Ra + Ca - 2)``
  for ws/is, ``F (T + Ra + Ca - 2)`` for os (outputs stay in the PEs: no preload);
* ``overlapped``, ws/is: ``Ra + (F - 1) * max(T, Ra) + (T + Ra + Ca - 2)``: the first
  preload, then one fold every ``max(T, Ra)`` cycles (the stream when T >= Ra; the shadow
  load when the stream is short, T < Ra, leaving Ra - T idle issue slots per fold),
  then the last fold's stream, skew and drain. F = 1 gives ``fold_cycles``; the saving is
  ``(F - 1) (fold_cycles - max(T, Ra))`` = ``(F - 1) (min(T, Ra) + Ra + Ca - 2)``.

A design that loaded every column at once (no column skew) would have to wait for the
switch to reach column Ca - 1 before loading: ``max(T, Ra + Ca - 1)`` per fold.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tilesim.arch.schema import PRELOADS  # ("serial", "overlapped"); see the module doc

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

    A layer's compute on one array is :meth:`compute_cycles`, the one formula the cost
    model, the mapper, the discrete-event engine and ``tilesim verify`` use: F folds
    issued :meth:`fold_interval` cycles apart, the last one taking ``fold_cycles``:

    * ``serial`` preload (and os in any mode): ``F * (T + 2 Ra + Ca - 2)`` (ws/is),
      ``F * (T + Ra + Ca - 2)`` (os);
    * ``overlapped`` preload, ws/is: ``(F - 1) * max(T, Ra) + T + 2 Ra + Ca - 2``, i.e.
      ``Ra`` (first preload) + ``(F - 1) * max(T, Ra)`` (fold issue interval: the stream,
      or the shadow load when T < Ra) + ``T + Ra + Ca - 2`` (the last fold's stream, skew
      and drain). Short streams, T < Ra: ``(F + 1) Ra + T + Ca - 2`` (the shadow load
      sets the pace); T == Ra: ``(F + 2) Ra + Ca - 2``; T > Ra: ``F T + 2 Ra + Ca - 2``
      (back-to-back streams). The micro-architecture behind it (shadow registers, the
      switch travelling with the data, the load hazard) is in the module doc.
    """
    name: str
    rows: str    # GEMM dim spread over the array's rows
    cols: str    # GEMM dim spread over the array's columns
    stream: str  # GEMM dim that streams through in time
    stationary: str  # the operand that stays in the PEs during a fold
    preload: bool    # the stationary operand is shifted in over the rows before streaming
    #                  (ws, is); *when* is the array's preload mode, serial | overlapped

    def fold_cycles(self, rows, cols, stream):
        """Cycles of one fold on a ``rows`` x ``cols`` array streaming ``stream``
        elements (numbers or numpy arrays)."""
        return stream + (2 if self.preload else 1) * rows + cols - 2

    def fold_interval(self, rows, cols, stream, preload: str = "serial"):
        """Cycles between the starts of consecutive folds on one array: ``fold_cycles``
        with ``serial`` preload (and for os), ``max(stream, rows)`` with ``overlapped``
        (numbers or numpy arrays)."""
        if preload not in PRELOADS:
            raise ValueError(f"preload {preload!r}: use one of {', '.join(PRELOADS)}")
        if preload == "overlapped" and self.preload:
            return np.maximum(stream, rows)
        return self.fold_cycles(rows, cols, stream)

    def compute_cycles(self, folds, rows, cols, stream, preload: str = "serial"):
        """Cycles (a count) of ``folds`` (>= 1) folds run back to back on one ``rows`` x
        ``cols`` array streaming ``stream`` elements each, under ``preload`` (see the class
        doc; numbers or numpy arrays)."""
        return chain_cycles(folds, self.fold_cycles(rows, cols, stream),
                            self.fold_interval(rows, cols, stream, preload))

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


def chain_cycles(folds, fold_cycles, interval):
    """Cycles (a count) of ``folds`` (>= 1) folds on one array, issued ``interval`` cycles
    apart, the last taking ``fold_cycles``: ``(folds - 1) * interval + fold_cycles``
    (:meth:`Dataflow.compute_cycles` with its terms given; numbers or numpy arrays)."""
    return (folds - 1) * interval + fold_cycles


DATAFLOWS = {
    "os": Dataflow("os", rows="M", cols="N", stream="K", stationary="output", preload=False),
    "ws": Dataflow("ws", rows="K", cols="N", stream="M", stationary="weight", preload=True),
    "is": Dataflow("is", rows="K", cols="M", stream="N", stationary="input", preload=True),
}
