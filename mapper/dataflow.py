"""Dataflows as data: which loop dimensions sit on the array's rows, which on its
columns, which stream through in time, and which operand stays in the PEs.

A MAC layer is G groups of the GEMM  out[M, N] = in[M, K] @ w[K, N]  with M = N*P*Q
output pixels, N = K/groups filters and K = C/groups*R*S reduction (see
:attr:`workloads.MacLayer.gemm`). The loop dims a dataflow places are the conv nest's:
G (groups), B (images), P, Q (output rows, columns), N (filters of a group), C (input
channels of a group), R, S (filter rows, columns); ``M = (B, P, Q)`` (the output
pixels, image outermost) and ``K = (C, R, S)`` (the reduction, channel outermost, as the
GEMM lowering orders it) are the GEMM's flattened dims. An array axis may carry several
dims (flattened, first dim outermost: ``cols = (G, N)`` enumerates channel g's N filters
after channel g-1's; ``rows = K`` is the whole reduction), one tuple of dims streams
through in time, and every dim on neither axis nor the stream is an outer loop of folds
(G for the GEMM dataflows: groups run one after another). A GEMM given only as
(G, M, N, K) (:func:`gemm_dims`) has B = P = R = 1, Q = M, S = the filter taps.

========  ==========  ============  ===========  ==========  =================  =====
dataflow  array rows  array cols    streams (T)  outer       stationary         links
========  ==========  ============  ===========  ==========  =================  =====
os        M (pixels)  N (filters)   K (reduce)   G           outputs (psums)    both
ws        K (reduce)  N (filters)   M (pixels)   G           weights            both
is        K (reduce)  M (pixels)    N (filters)  G           inputs             both
dw        K (reduce)  G x N (chan)  M (pixels)   -           weights            rows
kc        C (chan)    N (filters)   M (pixels)   G, R, S     weights            both
kcr       C (chan)    N (filters)   M x (R, S)   G           weights (R*S/PE)   both
kco       C (chan)    N (filters)   M/n x C/Ra   G           psums (column)     both
                                    x (R, S)
rs        R (f. rows) P (out rows)  Q x S        G, B, N, C  filter rows, psums rows
========  ==========  ============  ===========  ==========  =================  =====

(M = B x P x Q, K = C x R x S; kco: n = the array count, its pixel lanes, and C/Ra the
channel blocks beyond the rows, streamed.)

os, ws and is are SCALE-Sim's assignment (its Sr, Sc and T), so fold counts agree with
it. ``links`` names the axes along which a PE passes data to its neighbour within a
fold: in os the a operand moves right and b down; in ws/is the streamed operand moves
right and the partial sums down.

**dw (channel-parallel depthwise).** Rows hold a group's reduction (the R*S taps of a
depthwise filter), columns hold the groups (channels: G x N, N = 1), so one fold
computes up to ``cols`` channels at once instead of one. Weights are stationary, shifted in from the
top over Ra cycles as in ws. Columns need different channels, so inputs are *not*
forwarded across columns: column j has its own input feeder, which pushes its
channel's im2col element for pixel m into PE(i, j) at cycle ``Ra + m + i`` (the row
skew of ws, without ws's column skew); each PE adds its product to the partial sum
from the PE above and passes it down; column j's output for pixel m leaves the bottom
row at ``Ra + m + Ra - 1``, in every column at once. The innermost input buffer thus
delivers Ra x Ca elements a cycle (ws: Ra). A dataflow applies to a layer only when no
operand would have to reach several PEs of an unlinked axis (:meth:`Dataflow.applies`):
dw needs K/groups = 1, one filter per group (a depthwise layer of multiplier 1, or a
grouped layer with one filter per group), or columns would need shared inputs.

**kc (K x C unrolling, filter window in time).** Input channels on the rows, filters on
the columns (ZigZag's K x C spatial unrolling of its tpu_like and edge_tpu_like
arrays), pixels streamed, and the R*S filter taps an outer loop of folds: each PE
holds one weight, so fold (g, r, s, row fold, column fold) is a ws fold over the C x N
weights of tap (r, s), and its partial sums are added into the output buffer, which
therefore takes R*S x row folds partial-sum writes per output. Same per-fold formula as
ws; R*S times the folds of a C x N slice, so it never beats ws in cycles (ws packs the
R*S taps into the rows), but it is the mapping ZigZag costs.

**kcr (K x C unrolling, filter taps inside the fold).** kc's spatial unrolling with
ZigZag's temporal order: each PE holds the R*S weights of its (channel, filter) in its
weight register file, the pixels x taps stream through with the taps innermost, and the
partial sum of a column for one pixel accumulates over the taps in an output register
at the bottom of the column, leaving the array once per pixel per fold. So the folds
are ``G x ceil(C/Ra) x ceil(N/Ca)`` with no tap loop outside and the buffer takes one
partial-sum write per output per row fold (kc: R*S of them). Its own plan
(:class:`KCR`, where the micro-architecture and the register-file rule are).

**kco (K x C unrolling, weights streamed, partial sums in the array).** For PEs whose
weight register holds one value, where kcr would be kc (ZigZag's edge_tpu_like: rf_1B
holds one weight; its mapping runs C, FY, FX innermost with the partial sum in rf_2B and
re-reads the weights from sram_32KB every cycle). Nothing stationary but the partial
sum: each PE gets its weight from the innermost shared weight level at every use, and
each column's output register holds a pixel's sum over the whole reduction (the
channel blocks beyond the rows and the taps, all streamed), so an output leaves the
array once, complete (kc: R*S x ceil(C/Ra) partial sums; kcr: ceil(C/Ra)). The
``count`` arrays are its pixel lanes, run in lockstep on the same weights (ZigZag's
OX x OY unrolling, D3 x D4, which shares rf_1B): one weight read feeds them all, so a
weight is read ``ceil(M / count)`` times, and the array reads Ra x Ca weights a cycle.
A buffer tile that splits the channels makes each channel tile its own pass over the
folds, streaming only its channel blocks, with its own fill and drain, and sends each
sum to the buffer once per channel tile (:meth:`Dataflow.tile_psums`,
:meth:`Dataflow.tile_cycles`). Its own plan (:class:`KCO`).

**rs (row stationary, Eyeriss).** Its own plan (:class:`RowStationary`): logical PE
sets of filter rows x output rows folded onto the array as the Eyeriss papers do; see
its docstring for the folding, the per-PE reuse (p filters x q channels), the per-pass
cycles and the buffer reads.

Per-fold cycles (:meth:`Dataflow.fold_cycles`), with an Ra x Ca array streaming T
elements: ``T + (Ra if preload) + (Ra - 1 if rows linked) + (Ca - 1 if cols linked)``,

* os: ``T + Ra + Ca - 2``; ws, is, kc: ``T + 2 Ra + Ca - 2`` (os, ws, is cycle-exact
  with SCALE-Sim v3); dw: ``T + 2 Ra - 1``; kcr (``t`` taps per PE, ``T = M t``):
  ``t Ra + T + Ra + Ca - 2`` (:class:`KCR`); kco (no preload, ``T = ceil(M/count)
  ceil(C/Ra) R S``): ``T + Ra + Ca - 2`` on every array at once, per channel tile of
  the buffer (:class:`KCO`);

each proven register by register by :mod:`sim.pe`.

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
  for ws/is/kc, ``F (T + Ra + Ca - 2)`` for os (outputs stay in the PEs: no preload), ``F (T + 2 Ra - 1)`` for dw;
* ``overlapped``, ws/is (kc, kcr and dw keep serial preload: no shadow registers in
  :mod:`sim.pe` for them yet; kco preloads nothing): ``Ra + (F - 1) * max(T, Ra) + (T + Ra + Ca - 2)``: the first
  preload, then one fold every ``max(T, Ra)`` cycles (the stream when T >= Ra; the shadow
  load when the stream is short, T < Ra, leaving Ra - T idle issue slots per fold),
  then the last fold's stream, skew and drain. F = 1 gives ``fold_cycles``; the saving is
  ``(F - 1) (fold_cycles - max(T, Ra))`` = ``(F - 1) (min(T, Ra) + Ra + Ca - 2)``.

A design that loaded every column at once (no column skew) would have to wait for the
switch to reach column Ca - 1 before loading: ``max(T, Ra + Ca - 1)`` per fold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tilesim.arch.schema import PRELOADS  # ("serial", "overlapped"); see the module doc

DIMS = ("G", "B", "P", "Q", "N", "C", "R", "S")
M = ("B", "P", "Q")     # the GEMM's output pixels
K = ("C", "R", "S")     # the GEMM reduction
# operand -> the dims that index it (inputs as the im2col GEMM operand M x K)
OPERAND_DIMS = {"input": ("G",) + M + K, "weight": ("G",) + K + ("N",),
                "output": ("G",) + M + ("N",)}
AXES = ("rows", "cols")


def gemm_dims(groups: int, M: int, N: int, reduction: int, rs: int = 1) -> dict:
    """The dims of ``groups`` GEMMs M x K @ K x N whose reduction K (``reduction``) is
    K / rs channels x ``rs`` filter taps: B = P = R = 1, Q = M, S = ``rs``."""
    return {"G": groups, "B": 1, "P": 1, "Q": M, "N": N, "C": reduction // rs, "R": 1,
            "S": rs}


def layer_dims(layer) -> dict:
    """The dims of a :class:`workloads.MacLayer` (its :attr:`~workloads.MacLayer.gemm`
    view split into the conv nest's dims), plus its ``geometry``: (H, W, stride,
    padding, dilation), which a dataflow that reads the input tensor itself (rs) needs."""
    g, _, N, _ = layer.gemm
    return {"G": g, "B": layer.N, "P": layer.P, "Q": layer.Q, "N": N,
            "C": layer.C // layer.groups, "R": layer.R, "S": layer.S,
            "geometry": (layer.H, layer.W, tuple(layer.stride), tuple(layer.padding),
                         tuple(layer.dilation))}


def elements(dims: dict) -> dict:
    """Elements of each operand of the GEMM view (inputs as im2col: G*M*K) and the MACs."""
    p = lambda ds: math.prod(dims[d] for d in ds)  # noqa: E731
    return {"input": p(OPERAND_DIMS["input"]), "weight": p(OPERAND_DIMS["weight"]),
            "output": p(OPERAND_DIMS["output"]), "macs": p(DIMS)}


@dataclass(frozen=True)
class Fold:
    """How one layer folds onto an array under a dataflow: ``row_folds`` and
    ``col_folds`` (folds of the dims on each axis), ``folds`` (of the whole layer,
    outer dims included), ``stream`` (T), ``fold_cycles`` (one fold), ``reads``
    (operand -> how often the array reads each element from its innermost buffer;
    for outputs, partial-sum writes per element), ``accesses`` (operand -> element
    reads from the innermost shared buffer, all folds; for outputs its partial-sum
    writes: what the cost model charges) and ``pe_writes`` (input, weight -> elements
    written into ``scope: pe`` registers/scratchpads, all PEs: a moving operand once
    per MAC, a preloaded stationary one at every register it passes down its column,
    :func:`shift_writes`; what :mod:`sim.pe` counts) and ``hops`` (operand
    moves from one PE to its neighbour, whole layer: what the array's hop energy
    prices)."""
    row_folds: int
    col_folds: int
    folds: int
    stream: int
    fold_cycles: int
    reads: dict
    accesses: dict
    pe_writes: dict
    detail: tuple = ()   # (name, value) pairs a dataflow with its own plan reports (rs)
    hops: int = -1       # operand moves between neighbouring PEs, whole layer (see plan)


@dataclass(frozen=True)
class Dataflow:
    """One dataflow as data (see the module doc); its fold terms are methods, so no
    caller branches on its name.

    A layer's compute on one array is :meth:`compute_cycles`, the one formula the cost
    model, the mapper, the discrete-event engine and ``tilesim verify`` use: F folds
    issued :meth:`fold_interval` cycles apart, the last one taking ``fold_cycles``:

    * ``serial`` preload (and os, dw, kc, kcr, kco in any mode): ``F * fold_cycles``;
    * ``overlapped`` preload, ws/is: ``(F - 1) * max(T, Ra) + T + 2 Ra + Ca - 2``, i.e.
      ``Ra`` (first preload) + ``(F - 1) * max(T, Ra)`` (fold issue interval: the stream,
      or the shadow load when T < Ra) + ``T + Ra + Ca - 2`` (the last fold's stream, skew
      and drain). Short streams, T < Ra: ``(F + 1) Ra + T + Ca - 2`` (the shadow load
      sets the pace); T == Ra: ``(F + 2) Ra + Ca - 2``; T > Ra: ``F T + 2 Ra + Ca - 2``
      (back-to-back streams). The micro-architecture behind it (shadow registers, the
      switch travelling with the data, the load hazard) is in the module doc.
    """
    name: str
    rows: tuple      # dims spread over the array's rows (flattened, first outermost)
    cols: tuple      # dims spread over the array's columns
    stream: tuple    # dims that stream through in time
    stationary: str  # the operand that stays in the PEs during a fold
    preload: bool    # the stationary operand is shifted in over the rows before streaming
    links: tuple = AXES   # axes along which PEs pass data to their neighbours
    fill: tuple = AXES    # axes a buffer tile must span (mapper.tiling.fills_array)

    @property
    def outer(self) -> tuple:
        """Dims on neither axis nor the stream: loops of whole folds."""
        placed = set(self.rows) | set(self.cols) | set(self.stream)
        return tuple(d for d in DIMS if d not in placed)

    def axis(self, name: str) -> tuple:
        return self.rows if name == "rows" else self.cols

    def fold_cycles(self, rows, cols, stream):
        """Cycles of one fold on a ``rows`` x ``cols`` array streaming ``stream``
        elements (numbers or numpy arrays)."""
        return (stream + (rows if self.preload else 0) + (rows - 1) * ("rows" in self.links)
                + (cols - 1) * ("cols" in self.links))

    def fold_interval(self, rows, cols, stream, preload: str = "serial"):
        """Cycles between the starts of consecutive folds on one array: ``fold_cycles``
        with ``serial`` preload (and for os, dw, kc, kcr and kco), ``max(stream, rows)`` with ``overlapped``
        (numbers or numpy arrays)."""
        if preload not in PRELOADS:
            raise ValueError(f"preload {preload!r}: use one of {', '.join(PRELOADS)}")
        if preload == "overlapped" and self.overlaps:
            return np.maximum(stream, rows)
        return self.fold_cycles(rows, cols, stream)

    def compute_cycles(self, folds, rows, cols, stream, preload: str = "serial"):
        """Cycles (a count) of ``folds`` (>= 1) folds run back to back on one ``rows`` x
        ``cols`` array streaming ``stream`` elements each, under ``preload`` (see the class
        doc; numbers or numpy arrays)."""
        return chain_cycles(folds, self.fold_cycles(rows, cols, stream),
                            self.fold_interval(rows, cols, stream, preload))

    def interval(self, fold, rows, preload: str = "serial"):
        """:meth:`fold_interval` of a planned :class:`Fold` (every dataflow, rs included:
        its per-pass cycles come from :meth:`plan`)."""
        if preload not in PRELOADS:
            raise ValueError(f"preload {preload!r}: use one of {', '.join(PRELOADS)}")
        if preload == "overlapped" and self.overlaps:
            return max(fold.stream, rows)
        return fold.fold_cycles

    def chain(self, fold, folds, rows, preload: str = "serial"):
        """Cycles (a count) of ``folds`` (>= 1) folds of a planned :class:`Fold` run
        back to back on one array with ``rows`` rows (:meth:`compute_cycles` from a plan)."""
        return chain_cycles(folds, fold.fold_cycles, self.interval(fold, rows, preload))

    def tile_psums(self, dims: dict, *c_tiles):
        """Partial-sum writes per output when the on-chip levels' tiles hold ``c_tiles``
        input channels of a group (one numpy array per level, outermost first, one value
        per mapspace point), or None when the plan's count holds whatever the tiles
        (every dataflow but kco)."""
        return None

    def tile_cycles(self, dims: dict, rows: int, cols: int, count: int, *c_tiles):
        """Cycles of one fold of the plan when the on-chip levels' tiles hold ``c_tiles``
        input channels of a group (as :meth:`tile_psums`), or None when the plan's
        ``fold_cycles`` hold whatever the tiles (every dataflow but kco)."""
        return None

    @property
    def overlaps(self) -> bool:
        """Whether ``preload: overlapped`` applies: ws and is, whose shadow-register
        schedule :mod:`sim.pe` runs register by register. kc, kcr and dw keep serial
        preload (kc's per-tap partial sums, kcr's register-file chains and dw's unlinked
        columns have no overlapped PE model yet); kco and os preload nothing."""
        return self.name in ("ws", "is")

    def _copies(self, operand: str, axis: str, dims: dict) -> int:
        """PEs of one fold along ``axis`` that need the same element of ``operand`` but
        cannot pass it on (1 unless the axis is unlinked or only partly indexes it)."""
        ax = self.axis(axis)
        missing = [d for d in ax if d not in OPERAND_DIMS[operand]]
        if not missing or (axis in self.links and len(missing) == len(ax)):
            return 1
        return math.prod(dims[d] for d in missing)

    def applies(self, dims: dict) -> bool:
        """Whether the array can run a layer of ``dims`` (:func:`gemm_dims`) this way: no operand must be copied to several PEs along an axis that cannot
        forward it (e.g. dw on a layer whose columns would share inputs)."""
        return all(self._copies(op, ax, dims) == 1 for op in OPERAND_DIMS for ax in AXES)

    def plan(self, dims: dict, rows: int, cols: int, pe_entries: dict | None = None,
             count: int = 1) -> Fold:
        """The :class:`Fold` of a layer of ``dims`` (:func:`gemm_dims`) on a ``rows`` x
        ``cols`` array (``pe_entries``: values of each operand one PE's ``scope: pe``
        levels hold; the GEMM dataflows do not read it; ``count``: the arrays sharing the
        layer, which only kco's plan reads: its pixel lanes).

        Reads per element: an operand indexed by every dim of both axes is loaded once
        per outer iteration it does not depend on; one that lacks all dims of a linked
        axis is forwarded along it within a fold and re-streamed for every fold of that
        axis; one that lacks some dims of an axis that cannot forward it is read by each
        PE that needs it (the product of the missing dims; never in a layer the dataflow
        :meth:`applies` to).
        """
        ext = {a: math.prod(dims[d] for d in self.axis(a)) for a in AXES}
        rf, cf = -(-ext["rows"] // rows), -(-ext["cols"] // cols)
        outer = math.prod(dims[d] for d in self.outer)
        T = math.prod(dims[d] for d in self.stream)
        axis_folds = {"rows": rf, "cols": cf}
        reads, el = {}, elements(dims)
        for op, od in OPERAND_DIMS.items():
            f = math.prod(dims[d] for d in self.outer if d not in od)
            for a in AXES:
                ax = self.axis(a)
                missing = [d for d in ax if d not in od]
                if missing and a in self.links and len(missing) == len(ax):
                    f *= axis_folds[a]
                else:
                    f *= self._copies(op, a, dims)
            reads[op] = f
        acc = {op: el[op] * reads[op] for op in OPERAND_DIMS}
        # pe registers: a moving operand is latched by every PE that uses it, once per
        # MAC; the stationary one shifts down its column at every load, a value for row r
        # latched by the r + 1 registers it passes (each fold loads its real rows)
        pe = {op: el["macs"] for op in ("input", "weight")}
        if self.stationary in pe:
            pe[self.stationary] = outer * ext["cols"] * shift_writes(ext["rows"], rows)
        # every MAC passes one operand along each linked axis (os: a right, b down;
        # ws/is/kc: the stream right, the partial sum down; dw: the partial sum down)
        hops = elements(dims)["macs"] * len(self.links)
        return Fold(row_folds=rf, col_folds=cf, folds=outer * rf * cf, stream=T,
                    fold_cycles=self.fold_cycles(rows, cols, T), reads=reads,
                    accesses=acc, pe_writes=pe, hops=hops)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def shift_writes(n: int, rows: int, taps: int = 1, per_pe: int = 1) -> int:
    """Register writes of one array column as ``n`` rows' stationary values are loaded
    fold by fold (``rows`` rows a fold, the last fold the rest) through a shift chain
    entered at the top: each PE holds ``per_pe`` registers of the chain, ``taps`` of them
    real, and a value ending in chain register q (counting from the top, 0) is latched by
    the q + 1 registers it passes: per fold of ``r`` real rows, the values of PE i, tap u
    end in q = i * per_pe + u, so ``taps * per_pe * r (r - 1) / 2 + r * taps (taps + 1) / 2``
    (``r (r + 1) / 2`` with one register per PE). Padding values (rows or taps beyond
    the layer) are not counted."""
    total = 0
    for r in [rows] * (n // rows) + ([n % rows] if n % rows else []):
        total += taps * per_pe * r * (r - 1) // 2 + r * taps * (taps + 1) // 2
    return total


def rs_pq(S: int, N: int, C: int, pe_entries: dict | None) -> tuple[int, int]:
    """Filters ``p`` and channels ``q`` one rs PE interleaves (Eyeriss's p and q), from
    the values its scratchpads hold (``pe_entries``: input, weight, output): the
    filter spad holds S*p*q weights, the ifmap spad a window of S*q inputs, the psum
    spad p partial sums. The largest p*q (p <= N, q <= C) that fits, ties to the larger
    q (fewer partial sums leave the PE); p = q = 1 when a scratchpad is missing or
    cannot hold one filter row (the PE then holds one row in registers)."""
    e = pe_entries or {}
    ein, ew, eo = e.get("input", 0), e.get("weight", 0), e.get("output", 0)
    best = (1, 1)
    if ein < S or ew < S or eo < 1:
        return best
    for q in range(1, min(C, ein // S) + 1):
        p = min(N, eo, ew // (S * q))
        if p >= 1 and (p * q, q) > (best[0] * best[1], best[1]):
            best = (p, q)
    return best


def _real(idx, size: int) -> set:
    return {v for v in idx if 0 <= v < size}


@dataclass(frozen=True)
class RowStationary(Dataflow):
    r"""Row stationary (Eyeriss: Chen, Emer, Sze, ISCA 2016; Chen et al., JSSC 2017).

    **Logical PE set** (one image, one group, one filter, one channel): R x P PEs; PE(i, j)
    runs the 1-D convolution of filter row i with input row ``j*sh + i*dh`` (padded
    coordinates), producing the partial sums of output row j (Q outputs x S taps). A
    filter row is broadcast along its PE row (one buffer read feeds the row), an input
    row reaches every PE of its diagonal (the PEs with equal ``j*sh + i*dh``: one read),
    and the partial sums of a column accumulate vertically over the R rows.

    **Folding onto the Ra x Ca array** (its ``rows`` x ``cols``), per group:

    * filter rows: ``Rh = min(R, Ra)``; a taller set is split into ``fr = ceil(R/Ra)``
      row folds whose partial sums meet in the buffer (``row_folds``);
    * output rows: strips of ``e = min(P, Ca)`` rows, ``fp = ceil(P/e)`` strips
      (``col_folds``);
    * per PE: p filters x q channels interleaved (:func:`rs_pq`: the filter spad holds
      S*p*q weights, the ifmap spad S*q inputs, the psum spad p sums), so
      ``nk = ceil(N/p)`` filter chunks and ``nc = ceil(C/q)`` channel chunks;
    * replication: ``tv = min(Ra // Rh, nc)`` sets are stacked, each on its own channel
      chunk; their columns form one partial-sum chain of height ``Hc = tv*Rh``, so
      their sums for the same output add up on the way; ``th = min(Ca // e, nk)`` sets
      side by side take different filter chunks and share (multicast) the input rows;
    * passes (``folds``): ``G * B * fp * fr * ceil(nk/th) * ceil(nc/tv)``.

    **A pass, cycle by cycle** (:mod:`sim.pe.rowstationary` runs it register by
    register). Each PE does one MAC a cycle. Cycles 0..F-1, ``F = S*p*q``: the filter
    spads fill, one weight a cycle on each PE row's broadcast bus. Then PE row u of the
    chain (0 at the top, where sums leave) starts ``Hc - 1 - u`` cycles after F (the
    bottom row first) and runs, for output column x = 0..Q-1, filter f < p, channel
    c < q, tap s < S (s innermost), ``acc += w[f, c, s] * window[c, s]``: S*Q*p*q MACs.
    When column x starts, its window ``{x*sw + s*dw}`` is in the ifmap spad (values
    still in it are kept, the rest are written, delivered while the previous column
    computed: at most S*q <= S*p*q values, so delivery never stalls; the skew of a
    diagonal's PEs is absorbed by the network, which we do not model). Filter f's sum
    is complete at its last MAC, in the cycle in which the row below hands over its own
    sum for (x, f), which the PE adds and passes up; the top row's sum is the pass's
    output. So the last output leaves at cycle ``F + Hc - 1 + S*Q*p*q - 1``:

        fold_cycles = S*p*q*(Q + 1) + Hc - 1          (a pass; edge passes as full ones)

    **Buffer reads and writes** (the innermost shared level: ``accesses``), counting
    only real elements (padding is never read): weights once per image and strip
    (``G*N*C*R*S * B * fp``: a row broadcast to its strip); inputs once per filter-chunk
    pass: per pass, the real input rows of the strip's diagonals x the channels x
    ``cw`` = the values entering the column windows (``sum_x |W_x \ W_{x-1}|``, equal to
    the real columns read when windows overlap), multicast to every PE of a diagonal and
    to the side-by-side sets; partial sums written once per row fold and stacked channel
    group (``G*B*N*P*Q * fr * ceil(nc/tv)``), the first of them needing no read.
    ``scope: pe`` writes (``pe_writes``): every PE of a strip gets its filter row
    (``G*N*C*R*S * B * P``); every PE writes the values entering its window
    (``G*B*nk*C * cw * NR``, NR = the PEs (i, j) whose input row is real).

    What we simplify: edge passes (a partial strip, chunk or fold) cost a full pass; the
    plan is the whole layer's, whatever the buffer tiles (as for every dataflow): a tile
    may hold fewer output rows than a strip, or part of a row (``fill = ("rows",)``, so
    that layers whose input rows do not fit the buffer, such as ViT's patch conv or an
    attention MatMul on eyeriss_like, still map; the extra passes such tiles would take
    are not counted);
    stacked sets take channel chunks and side-by-side sets filter chunks only (no
    images or strips replicated side by side); spads are refilled every pass; the
    network delivering inputs and partial sums has no bandwidth limit; a partial sum
    leaving the array is added in the buffer (read-add-write).
    """

    def fold_cycles(self, rows, cols, stream):
        """Not a function of the array and the stream alone: a pass's cycles depend on
        the layer and the scratchpads (:meth:`plan` gives them)."""
        raise TypeError("rs: a pass's cycles come from RowStationary.plan(dims, rows, "
                        "cols, pe_entries), not from fold_cycles")

    def applies(self, dims: dict) -> bool:
        """Any conv-nest layer (it needs the layer's geometry: a bare GEMM has none)."""
        return "geometry" in dims

    def plan(self, dims: dict, rows: int, cols: int, pe_entries: dict | None = None,
             count: int = 1) -> Fold:
        G, B, P, Q, N, C, R, S = (dims[d] for d in DIMS)
        H, W, (sh, sw), (ph, pw), (dh, dw) = dims["geometry"]
        p, q = rs_pq(S, N, C, pe_entries)
        Rh, e = min(R, rows), min(P, cols)
        fr, fp = _cdiv(R, rows), _cdiv(P, e)
        nk, nc = _cdiv(N, p), _cdiv(C, q)
        tv, th = min(rows // Rh, nc), min(cols // e, nk)
        kpass, cpass = _cdiv(nk, th), _cdiv(nc, tv)
        passes = G * B * fp * fr * kpass * cpass
        hc = tv * Rh
        cyc = S * p * q * (Q + 1) + hc - 1
        # values entering the column windows of one PE row
        cw, prev = 0, set()
        for x in range(Q):
            win = {x * sw + s * dw - pw for s in range(S)}
            cw += len(_real(win, W) - prev)
            prev = win
        rows_read = sum(len(_real({j * sh + i * dh - ph for j in range(st * e, min(P, st * e + e))
                                   for i in range(f * Rh, min(R, f * Rh + Rh))}, H))
                        for st in range(fp) for f in range(fr))
        nr = sum(0 <= j * sh + i * dh - ph < H for i in range(R) for j in range(P))
        wel, oel = G * N * C * R * S, G * B * N * P * Q
        acc = {"input": G * B * kpass * C * cw * rows_read, "weight": wel * B * fp,
               "output": oel * fr * cpass}
        inel = G * B * C * H * W
        reads = {"input": round(acc["input"] / inel, 2) if inel else 0,
                 "weight": B * fp, "output": fr * cpass}
        pe = {"input": G * B * nk * C * cw * nr, "weight": wel * B * P}
        detail = (("p", p), ("q", q), ("set", (Rh, e)), ("stacked", tv), ("side", th),
                  ("chain", hc), ("row folds", fr), ("strips", fp), ("filter chunks", nk), ("channel chunks", nc))
        # filter rows and input rows reach the PEs on broadcast / multicast buses (buffer
        # reads, above); only partial sums move PE to PE: each pass, every column of the
        # th side-by-side sets passes its Q x p sums up the hc-high chain
        hops = passes * e * th * (hc - 1) * Q * p
        return Fold(row_folds=fr, col_folds=fp, folds=passes, stream=S * Q * p * q,
                    fold_cycles=cyc, reads=reads, accesses=acc, pe_writes=pe, detail=detail,
                    hops=hops)


def kcr_taps(taps: int, pe_entries: dict | None) -> tuple[int, int]:
    """(taps per fold ``t``, tap chunks) of kcr for a filter of ``taps`` = R*S taps, from
    the weights one PE's ``scope: pe`` levels hold (``pe_entries['weight']``, ``e``): all
    of them (one chunk) when ``e >= R*S``; otherwise ``ceil(R*S / e)`` chunks of
    ``t = ceil(R*S / chunks)`` taps (balanced; a last, shorter chunk is streamed as a
    full one, zero taps padding it); with no weight register file (``e = 0``) one tap a
    fold, which is exactly kc."""
    e = (pe_entries or {}).get("weight", 0)
    if e >= taps:
        return taps, 1
    chunks = taps if e < 1 else _cdiv(taps, e)
    return _cdiv(taps, chunks), chunks


@dataclass(frozen=True)
class KCR(Dataflow):
    r"""K x C unrolling with the filter taps streamed inside the fold (ZigZag's temporal
    order on its K x C arrays: tpu_like, edge_tpu_like).

    **Placement**, per group: input channels C on the Ra rows, filters N on the Ca
    columns; PE(i, j) holds the weights of (channel i, filter j) for ``t`` taps in its
    weight register file (:func:`kcr_taps`: all R*S taps when the ``scope: pe`` levels
    holding weights have room for R*S values, else the taps split into chunks, an outer
    loop of folds, and with no such level t = 1, which is kc). Stream: the M pixels x
    the t taps of the chunk, taps innermost, ``T = M t`` elements. Folds:
    ``G x chunks x ceil(C/Ra) x ceil(N/Ca)``.

    **A fold, cycle by cycle** (:mod:`sim.pe.systolic` runs it register by register).

    1. *Preload*, cycles ``0 .. t Ra - 1``: each column's weight registers form one shift
       chain of ``Ra t`` registers (row 0's t registers first, then row 1's, ...); the
       column's top feeder pushes one weight a cycle into the head of the chain, the value
       for (row Ra-1, tap t-1) first, and every register passes its value one place down.
       After ``t Ra`` cycles PE(i, j)'s register u holds w[c_i, n_j, tap u].
    2. *Stream*: element ``e = m t + u`` (pixel m, tap u) is the im2col input of
       (pixel m, channel i, tap u); the feeder of row i pushes it at cycle ``t Ra + e + i``
       (the row skew of ws) with its index as a tag; it moves one PE right a cycle.
       PE(i, j) multiplies it by its register u (the tap travels with the tag), adds the
       partial sum arriving from the PE above (same tag) and passes the sum down, as in ws.
    3. *Output register*: below row Ra-1 each column has one accumulator register. In
       the cycle the bottom PE produces the column's sum for element (m, u) the register
       takes it (u = 0) or adds it (u > 0); after tap t - 1 pixel m's partial sum leaves
       the array (one buffer write per pixel, column and fold) and the register is free
       for pixel m + 1 in the next cycle.

    The last element enters row 0 at ``t Ra + T - 1`` and reaches the bottom of column
    Ca - 1 ``Ra - 1 + Ca - 1`` cycles later, so

        fold_cycles = t Ra + T + Ra + Ca - 2 = t (Ra + M) + Ra + Ca - 2

    (t = 1: kc's and ws's ``T + 2 Ra + Ca - 2``). Preload stays serial (no shadow
    registers: :attr:`Dataflow.overlaps` is False); edge folds and the padded last tap
    chunk cost full folds.

    **Buffer reads and writes** (``accesses``): inputs once per column fold (forwarded
    along the row, re-streamed for each fold of the filters: ``G M C R S x ceil(N/Ca)``);
    weights once (``G N C R S``); partial sums written once per row fold and tap chunk
    (``G M N x ceil(C/Ra) x chunks``). ``scope: pe`` writes (``pe_writes``): every
    weight latched by each register of its column's chain that it passes (the value
    ending in chain register q by q + 1 of them: :func:`shift_writes`), a streamed input
    latched by every PE it meets, once per MAC.
    """

    def fold_cycles(self, rows, cols, stream):
        """Not a function of the array and the stream alone: a fold's preload depends on
        the taps each PE holds (:meth:`plan` gives its cycles)."""
        raise TypeError("kcr: a fold's cycles come from KCR.plan(dims, rows, cols, "
                        "pe_entries), not from fold_cycles")

    def plan(self, dims: dict, rows: int, cols: int, pe_entries: dict | None = None,
             count: int = 1) -> Fold:
        G, B, P, Q, N, C, R, S = (dims[d] for d in DIMS)
        Mx = B * P * Q
        t, chunks = kcr_taps(R * S, pe_entries)
        rf, cf = _cdiv(C, rows), _cdiv(N, cols)
        el = elements(dims)
        reads = {"input": cf, "weight": 1, "output": rf * chunks}
        acc = {op: el[op] * reads[op] for op in OPERAND_DIMS}
        # the weights shift down each column's chain of rows x t registers (a value
        # latched by every register it passes), chunk by chunk (the last chunk's padding
        # taps are not real values); a streamed input is latched once per MAC
        RS = R * S
        wr = sum(shift_writes(C, rows, min(t, RS - ch * t), t) for ch in range(chunks))
        pe = {"input": el["macs"], "weight": G * N * wr}
        return Fold(row_folds=rf, col_folds=cf, folds=G * chunks * rf * cf, stream=Mx * t,
                    fold_cycles=t * (rows + Mx) + rows + cols - 2, reads=reads,
                    accesses=acc, pe_writes=pe,
                    detail=(("taps per fold", t), ("tap chunks", chunks)),
                    hops=el["macs"] * len(self.links))


@dataclass(frozen=True)
class KCO(Dataflow):
    r"""K x C unrolling, weights streamed, the partial sum kept in the column's output
    register over the whole reduction (ZigZag's edge_tpu_like: its mapping unrolls K x C
    x OX x OY, runs C, FY and FX innermost in time, keeps each partial sum in rf_2B until
    its reduction completes and, since rf_1B holds one weight, re-reads the weights from
    sram_32KB every cycle, one read shared by the 4 x 4 OX x OY PEs of a (K, C) position).

    For PEs whose weight register holds one value (kcr would be kc, one tap a fold, its
    partial sums through the buffer R*S x ceil(C/Ra) times): nothing stays in the PE but
    the MAC's operands; the weights come from the innermost shared level holding them at
    every use, and the ``count`` arrays run in lockstep as *pixel lanes* sharing each
    weight read (the pixel unrolling, ZigZag's D3 x D4).

    **Placement**, per group: input channels C on the Ra rows, filters N on the Ca
    columns, as kc. Pixels are dealt to the ``count`` arrays (lanes): lane l takes pixels
    ``s count + l`` (s = 0 .. Mp - 1, ``Mp = ceil(M / count)``; a missing pixel of the last
    step streams zeros). Stream, per lane: pixel step s outermost, then the channel
    blocks ``cb < ceil(C/Ra)`` (``C`` beyond the rows is *streamed*, not folded), then the
    R*S taps innermost: ``E = ceil(C/Ra) R S`` reduction steps a pixel, ``T = Mp E``
    elements. Folds: one per array for each group and column fold, all ``count`` arrays
    at once: ``folds = G x ceil(N/Ca) x count``, dealt round-robin, so every array runs
    ``G x ceil(N/Ca)`` of them (the cost model's ``ceil(folds / count)``).

    **A fold, cycle by cycle** (:mod:`sim.pe.systolic` runs all lanes register by
    register). No preload. Element ``e = s E + u`` (pixel step s, reduction step u = cb
    R S + tap) is, for row i of lane l, the im2col input of (pixel s count + l, channel cb
    Ra + i, tap); the row's feeder pushes it at cycle ``e + i`` (the row skew) tagged e;
    it moves one PE right a cycle. PE(i, j)'s weight bus delivers w[cb Ra + i, tap, n_j]
    in the cycle the element reaches it (``e + i + j``): one buffer read, written into the
    weight register of PE(i, j) of every lane. The PE multiplies, adds the partial sum
    arriving from the PE above (same tag) and passes it down. Below row Ra-1 each column
    of each lane has an output register: it takes the column's sum of u = 0 and adds
    u = 1 .. E-1; after u = E - 1 the pixel's sum is complete and leaves the array (one
    buffer write per output, at accumulator precision; never read back).

    The last element enters row 0 at ``T - 1`` and reaches the bottom of column Ca - 1
    ``Ra - 1 + Ca - 1`` cycles later, so

        fold_cycles = T + Ra + Ca - 2 = Mp ceil(C/Ra) R S + Ra + Ca - 2

    (os's formula: :meth:`Dataflow.fold_cycles` with no preload). Edge folds (part of
    the columns, a padded channel block or pixel step) cost full folds.

    **Buffer reads and writes** (``accesses``): inputs once per column fold (forwarded
    along the row: ``G M C R S x ceil(N/Ca)``, each lane reading its own pixels');
    weights once per pixel step (``G N C R S x Mp``: one read feeds the ``count`` lanes);
    outputs written once, complete (``G M N``: no partial sum is read back). ``scope:
    pe`` writes (``pe_writes``): a streamed input latched by every PE it meets and a
    weight written into the register of every PE that uses it, once per MAC each.
    ``hops``: the input right and the partial sum down, one each per MAC.

    **Channel tiles.** The output register holds a sum over the channels the array is
    fed at once: the channel tiles of the innermost on-chip level (each level's c tile
    splitting the tile of the level above, the last piece the rest:
    :func:`channel_tiles`). Each channel tile is its own *pass* over the plan's folds:
    its stream is ``Mp ceil(ct/Ra) R S`` for a tile of ``ct`` channels, and the pass
    ends with its outputs leaving the column registers, so each output's partial sum
    goes to the buffer once per channel tile (``n`` tiles: ``n`` writes, all but the
    first read back: :meth:`tile_psums`). Passes run one after another, each with its
    own skew and drain, ``Mp ceil(ct/Ra) R S + Ra + Ca - 2`` cycles, as the folds of
    every serial dataflow do (os, kc, kcr; SCALE-Sim's convention): a pass is a fold
    over a different buffer tile, and the timing model overlaps no two folds but ws/is's
    shadow-register preload. So a column fold's passes take (:meth:`tile_cycles`)

        Mp R S sum over tiles ceil(ct/Ra) + n (Ra + Ca - 2)

    cycles, the plan's ``fold_cycles`` when one tile holds every channel (n = 1). The
    mapspace applies both per point (:func:`mapper.space.points_of`), so the search
    weighs a small weight buffer's channel split (more psum traffic, a padded channel
    block and a fill and drain per tile) against it; :mod:`sim.pe` runs the passes
    register by register. The plan's own counts are the whole layer's (one tile).
    """

    def tile_psums(self, dims: dict, *c_tiles):
        """Partial-sum writes per output under the levels' channel tiles ``c_tiles``:
        one per channel tile fed to the array (:func:`channel_tiles`; the plan's 1 when
        the tiles hold every channel); all but the first are read back."""
        return channel_tiles(dims["C"], c_tiles, 1)[0]

    def tile_cycles(self, dims: dict, rows: int, cols: int, count: int, *c_tiles):
        """Cycles of a column fold's passes over the channel tiles (class doc):
        ``Mp R S x (channel blocks of the tiles) + tiles x (Ra + Ca - 2)``."""
        n, blocks = channel_tiles(dims["C"], c_tiles, rows)
        Mp = _cdiv(dims["B"] * dims["P"] * dims["Q"], count)
        return Mp * dims["R"] * dims["S"] * blocks + n * (rows + cols - 2)

    def plan(self, dims: dict, rows: int, cols: int, pe_entries: dict | None = None,
             count: int = 1) -> Fold:
        G, B, P, Q, N, C, R, S = (dims[d] for d in DIMS)
        Mp, cb, cf = _cdiv(B * P * Q, count), _cdiv(C, rows), _cdiv(N, cols)
        T = Mp * cb * R * S
        el = elements(dims)
        reads = {"input": cf, "weight": Mp, "output": 1}
        acc = {op: el[op] * reads[op] for op in OPERAND_DIMS}
        return Fold(row_folds=1, col_folds=cf, folds=G * cf * count, stream=T,
                    fold_cycles=self.fold_cycles(rows, cols, T), reads=reads,
                    accesses=acc, pe_writes={"input": el["macs"], "weight": el["macs"]},
                    detail=(("pixel lanes", count), ("pixels per lane", Mp),
                            ("channel blocks", cb)),
                    hops=el["macs"] * len(self.links))


def channel_tiles(C: int, c_tiles, rows: int):
    """(tiles, blocks): the channel tiles the innermost of the on-chip levels feeds the
    array and the channel blocks of ``rows`` rows they stream, when the levels' tiles
    hold ``c_tiles`` (outermost first; numbers or numpy arrays, one value per point) of
    a group's ``C`` channels. Each level splits every tile of the level above (the
    layer's C at the top) into tiles of its own size, the last the rest; a tile of
    ``ct`` channels streams ``ceil(ct / rows)`` blocks. (C = 10 under tiles 6 then 4:
    level 1's 6 and 4 become 4, 2 and 4: 3 tiles; on 3 rows 2 + 1 + 2 = 5 blocks.)"""
    sizes, counts = [np.asarray(C)], [np.asarray(1)]
    for ct in c_tiles:
        ns, nc = [], []
        for s, n in zip(sizes, counts):
            t = np.maximum(np.minimum(np.asarray(ct), s), 1)
            full, rest = s // t, s % t
            ns += [t, rest]
            nc += [n * full, n * (rest > 0)]
        sizes, counts = ns, nc
    tiles = sum(n * (s > 0) for s, n in zip(sizes, counts))
    blocks = sum(n * -(-s // rows) for s, n in zip(sizes, counts))
    return tiles, blocks


def chain_cycles(folds, fold_cycles, interval):
    """Cycles (a count) of ``folds`` (>= 1) folds on one array, issued ``interval`` cycles
    apart, the last taking ``fold_cycles``: ``(folds - 1) * interval + fold_cycles``
    (:meth:`Dataflow.compute_cycles` with its terms given; numbers or numpy arrays)."""
    return (folds - 1) * interval + fold_cycles


DATAFLOWS = {
    "os": Dataflow("os", rows=M, cols=("N",), stream=K, stationary="output",
                   preload=False),
    "ws": Dataflow("ws", rows=K, cols=("N",), stream=M, stationary="weight",
                   preload=True),
    "is": Dataflow("is", rows=K, cols=M, stream=("N",), stationary="input",
                   preload=True),
    "dw": Dataflow("dw", rows=K, cols=("G", "N"), stream=M, stationary="weight",
                   preload=True, links=("rows",)),
    "kc": Dataflow("kc", rows=("C",), cols=("N",), stream=M, stationary="weight",
                   preload=True),
    "kcr": KCR("kcr", rows=("C",), cols=("N",), stream=M + ("R", "S"),
               stationary="weights (R*S per PE)", preload=True),
    "kco": KCO("kco", rows=("C",), cols=("N",), stream=M + ("C", "R", "S"),
               stationary="output", preload=False),
    "rs": RowStationary("rs", rows=("R",), cols=("P",), stream=("Q", "S"),
                        stationary="filter rows and psums", preload=True, links=AXES,
                        fill=("rows",)),
}
