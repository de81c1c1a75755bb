"""The Mapping: how one MAC layer is placed on the array and tiled into the buffers, and
how a searched mapping was found (:class:`SearchResult`)."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from tilesim.workloads import MacLayer

from .dataflow import Dataflow, Fold, layer_dims

LOOPS = ("r", "k", "c")  # output-row blocks, output-channel blocks, input-channel blocks
ORDERS = tuple(itertools.permutations(range(3)))  # indices into LOOPS, outermost first


@dataclass(frozen=True)
class Tiling:
    """DRAM -> on-chip tiling of a conv layer (the outer, buffer-level loop nest).

    ``r`` blocks cover ``images`` images x ``rows`` output rows x ``cols`` output columns
    (rows < P only when images == 1, cols < Q only when rows == 1), ``k`` blocks ``k_tile`` output channels, ``c`` blocks ``c_tile``
    input channels of a group (for grouped layers the reduction is never split:
    c_tile = C/groups). ``order`` lists the three loops outermost first.
    """
    images: int
    rows: int
    cols: int
    k_tile: int
    c_tile: int
    order: tuple[str, str, str]
    trips: tuple[int, int, int]  # (r, k, c) trip counts
    tile_bytes: dict              # operand -> bytes of one tile (output at accumulator precision)
    level_bytes: dict             # on-chip level name -> bytes occupied (x2 if double-buffered)

    @property
    def n_tiles(self) -> int:
        r, k, c = self.trips
        return r * k * c

    def label(self, layer: MacLayer) -> str:
        """The ``tiling`` column of layers.csv, e.g. ``r:7row k:64 c:64 order r>k>c``."""
        r = (f"{self.images}img" if self.rows == layer.P else
             f"{self.rows}row" if self.cols == layer.Q else f"1row,{self.cols}col")
        return f"r:{r} k:{self.k_tile} c:{self.c_tile} order {'>'.join(self.order)}"


@dataclass(frozen=True)
class Traffic:
    """Bytes moved between DRAM and the chip for one layer under one tiling."""
    read_input: int
    read_weight: int
    read_psum: int     # partial sums read back when the reduction is split outside
    write_output: int  # final outputs plus partial-sum spills
    first_load: int    # bytes of the first input + weight tile (cannot be hidden)
    last_store: int    # bytes of the last output tile (cannot be hidden)

    @property
    def read(self) -> int:
        return self.read_input + self.read_weight + self.read_psum

    @property
    def total(self) -> int:
        return self.read + self.write_output


@dataclass(frozen=True)
class Mapping:
    """A MAC layer on the array: GEMM view, spatial folding and buffer tiling.

    The layer (one GEMM per group) is lowered to ``M x K @ K x N``; ``dataflow`` puts
    the dims G, M, N, K on the array's rows and columns, the stream and outer loops
    (:mod:`mapper.dataflow`); ``row_folds`` and ``col_folds`` fold each axis, and the
    layer's :attr:`folds` (outer loops included: ``groups * row_folds * col_folds`` for
    os/ws/is) are shared round-robin by the ``array_count`` arrays. ``preload`` is the array's
    stationary preload (``serial`` | ``overlapped``, :mod:`mapper.dataflow`).
    """
    layer: MacLayer
    dataflow: Dataflow
    array_rows: int
    array_cols: int
    array_count: int
    groups: int
    M: int
    N: int
    K: int
    row_folds: int
    col_folds: int
    tiling: Tiling
    traffic: Traffic
    preload: str = "serial"
    notes: tuple[str, ...] = field(default=())
    # (operand, values one PE's scope: pe levels hold) pairs: what a dataflow that
    # chooses its per-PE reuse from the scratchpads (rs) reads; () when none
    pe_entries: tuple = ()
    search: SearchResult | None = None  # how the mapping was found (None: built by hand)

    @property
    def dims(self) -> dict:
        """The dims a dataflow places (:func:`mapper.dataflow.layer_dims`): G, B, P, Q,
        N, C, R, S (and the layer's geometry); ``dim("M")`` is B x P x Q, ``dim("K")``
        C x R x S."""
        return layer_dims(self.layer)

    def dim(self, names) -> int:
        """Extent of a dim, or the product of a tuple of dims (an array axis)."""
        if names == "K":
            return self.K
        if names == "M":
            return self.M
        d = self.dims
        return d[names] if isinstance(names, str) else math.prod(d[n] for n in names)

    @property
    def plan(self) -> Fold:
        """The array folding of this mapping (:meth:`mapper.Dataflow.plan`)."""
        return self.dataflow.plan(self.dims, self.array_rows, self.array_cols,
                                  dict(self.pe_entries))

    @property
    def rows_dim(self) -> int:
        return self.dim(self.dataflow.rows)

    @property
    def cols_dim(self) -> int:
        return self.dim(self.dataflow.cols)

    @property
    def stream_len(self) -> int:
        return self.dim(self.dataflow.stream)

    @property
    def folds(self) -> int:
        """Folds of the whole layer (outer loops such as groups included)."""
        return self.plan.folds

    @property
    def folds_per_array(self) -> int:
        return -(-self.folds // self.array_count)

    @property
    def macs(self) -> int:
        """MACs the mapped GEMMs perform: groups x M x N x K (equals the layer's MACs)."""
        return self.groups * self.M * self.N * self.K


@dataclass(frozen=True)
class Scored:
    """One scored mapping: its point index, cycles (count), energy (pJ)."""
    index: int
    cycles: int
    energy_pj: float


@dataclass(frozen=True)
class SearchResult:
    """How a mapping was found: the best point, the runners-up, the search's effort."""
    best: Scored
    runner_ups: tuple[Scored, ...]   # the next best distinct costs, best first
    objective: str
    strategy: str
    evaluated: int                   # candidates scored
    space_size: int
    complete: bool                   # False when the budget stopped the search early
    seconds: float
