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
class LevelTile:
    """The tile of one inner on-chip level (the second and deeper levels of
    ``arch.memory``): ``images`` x ``rows`` x ``cols`` output block, ``k_tile`` output
    channels, ``c_tile`` input channels of a group, each at most its parent level's; and
    ``order``, the loops over these sub-tiles inside the parent tile, outermost first."""
    images: int
    rows: int
    cols: int
    k_tile: int
    c_tile: int
    order: tuple[str, str, str]

    @property
    def sizes(self) -> tuple[int, int, int, int, int]:
        return (self.images, self.rows, self.cols, self.k_tile, self.c_tile)

    def label(self) -> str:
        return (f"r:{self.images}x{self.rows}x{self.cols} k:{self.k_tile} c:{self.c_tile} "
                f"order {'>'.join(self.order)}")


@dataclass(frozen=True)
class Residency:
    """Where one layer's activations live, as the network-level planner (``sim.planner``)
    decided: ``input`` -- its input tensor is held whole in the outermost on-chip level
    holding inputs, so the layer reads none of it from DRAM (that level's input tiles are
    views of the resident tensor and take no room of their own); ``output`` -- its final
    output values stay in the outermost on-chip level holding outputs (no DRAM write of
    them; partial sums that level spills still travel, at accumulator precision, and its
    output tile is still counted where it holds partial sums); ``reserved`` -- bytes of
    the level ``level`` (an index into ``arch.memory``) that resident tensors hold while
    the layer runs, which its tiles cannot use. ``weight`` -- its weights are held whole
    in the outermost on-chip level holding weights across inferences (steady state: no
    DRAM weight reads; that level's weight tiles are views), and ``w_reserved`` bytes of
    level ``w_level`` are held by resident weights. ``prefetched`` -- bytes of its first
    weight tile that the previous layer's last step loaded (cross-layer prefetch): they
    are still its DRAM reads (traffic and energy) but no longer wait at its start;
    ``tail`` -- bytes of the next layer's first weight tile this layer's last step loads
    (they take DRAM time in this layer, and count as the next layer's reads). The
    default is a layer on its own: every activation and weight to and from DRAM."""
    input: bool = False
    output: bool = False
    reserved: int = 0
    level: int = 0
    weight: bool = False
    w_reserved: int = 0
    w_level: int = 0
    prefetched: int = 0
    tail: int = 0   # bytes of the next layer's first weight tile this layer prefetches

    def free(self, arch, lvl) -> int:
        """Bytes of on-chip level ``lvl`` (one of ``arch.memory``) left to the tiles."""
        out = lvl.size
        if self.level and arch.memory[self.level] is lvl:
            out -= self.reserved
        if self.w_level and arch.memory[self.w_level] is lvl:
            out -= self.w_reserved
        return out


#: a layer on its own: every activation from and to DRAM, nothing reserved
NO_RESIDENCY = Residency()


@dataclass(frozen=True)
class Tiling:
    """The loop nest of a conv layer tiled at every on-chip level.

    Level 1 (the first on-chip level of ``arch.memory``, the DRAM -> on-chip boundary):
    ``r`` blocks cover ``images`` images x ``rows`` output rows x ``cols`` output columns
    (rows < P only when images == 1, cols < Q only when rows == 1), ``k`` blocks
    ``k_tile`` output channels, ``c`` blocks ``c_tile`` input channels of a group (grouped
    layers may split their reduction too). ``order`` lists the three loops outermost first.
    ``inner``: one :class:`LevelTile` per deeper on-chip level, in ``arch.memory`` order,
    each nested in the one before; empty when every level holds the level-1 tile (the
    single tiling of before, costed exactly as it was).
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
    inner: tuple = ()             # LevelTile per deeper on-chip level (empty: all as level 1)

    @property
    def top(self) -> LevelTile:
        """The level-1 tile as a :class:`LevelTile`."""
        return LevelTile(self.images, self.rows, self.cols, self.k_tile, self.c_tile, self.order)

    def levels(self, n: int) -> tuple:
        """The :class:`LevelTile` of each of ``n`` on-chip levels, outermost first."""
        if not self.inner:
            return (self.top,) * n
        if len(self.inner) != n - 1:
            raise ValueError(f"tiling has {len(self.inner) + 1} levels, the architecture {n}")
        return (self.top,) + tuple(self.inner)

    @property
    def n_tiles(self) -> int:
        r, k, c = self.trips
        return r * k * c

    def label(self, layer: MacLayer) -> str:
        """The ``tiling`` column of layers.csv, e.g. ``r:7row k:64 c:64 order r>k>c``."""
        r = (f"{self.images}img" if self.rows == layer.P else
             f"{self.rows}row" if self.cols == layer.Q else f"1row,{self.cols}col")
        out = f"r:{r} k:{self.k_tile} c:{self.c_tile} order {'>'.join(self.order)}"
        prev = self.top
        for i, t in enumerate(self.inner, 2):   # inner levels only where they differ
            if t.sizes != prev.sizes:
                out += f" | L{i} {t.label()}"
            prev = t
        return out


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
    residency: Residency = NO_RESIDENCY  # where its activations live (the network planner's)
    # (N, M) when the array skips the layer's N:M weight zeros (mapper/sparse.py): the
    # array computes the GEMM of the kept weights; () when it computes every MAC
    skip: tuple = ()

    @property
    def dims(self) -> dict:
        """The dims a dataflow places (:func:`mapper.dataflow.layer_dims`): G, B, P, Q,
        N, C, R, S (and the layer's geometry); ``dim("M")`` is B x P x Q, ``dim("K")``
        C x R x S. With N:M skipping (``skip``), the GEMM of the kept weights
        (:func:`mapper.sparse.compute_dims`)."""
        d = layer_dims(self.layer)
        if self.skip:
            from .sparse import compute_dims
            return compute_dims(self.layer, d, self.skip)
        return d

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
        if self.skip:
            from .sparse import plan
            return plan(self.dataflow, self.layer, layer_dims(self.layer), self.array_rows,
                        self.array_cols, dict(self.pe_entries), self.array_count, self.skip)
        return self.dataflow.plan(self.dims, self.array_rows, self.array_cols,
                                  dict(self.pe_entries), self.array_count)

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
