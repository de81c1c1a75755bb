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
========  ==========  ============  ===========  ==========  =================  =====

(M = B x P x Q, K = C x R x S.)

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

Per-fold cycles (:meth:`Dataflow.fold_cycles`), with an Ra x Ca array streaming T
elements: ``T + (Ra if preload) + (Ra - 1 if rows linked) + (Ca - 1 if cols linked)``,

* os: ``T + Ra + Ca - 2``; ws, is, kc: ``T + 2 Ra + Ca - 2`` (os, ws, is cycle-exact
  with SCALE-Sim v3); dw: ``T + 2 Ra - 1``;

each proven register by register by :mod:`sim.pe`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

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
    written into ``scope: pe`` registers/scratchpads, all PEs)."""
    row_folds: int
    col_folds: int
    folds: int
    stream: int
    fold_cycles: int
    reads: dict
    accesses: dict
    pe_writes: dict


@dataclass(frozen=True)
class Dataflow:
    """One dataflow as data (see the module doc); its fold terms are methods, so no
    caller branches on its name."""
    name: str
    rows: tuple      # dims spread over the array's rows (flattened, first outermost)
    cols: tuple      # dims spread over the array's columns
    stream: tuple    # dims that stream through in time
    stationary: str  # the operand that stays in the PEs during a fold
    preload: bool    # the stationary operand is shifted in over the rows before streaming
    links: tuple = AXES   # axes along which PEs pass data to their neighbours

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

    def plan(self, dims: dict, rows: int, cols: int, pe_entries: dict | None = None) -> Fold:
        """The :class:`Fold` of a layer of ``dims`` (:func:`gemm_dims`) on a ``rows`` x
        ``cols`` array (``pe_entries``: values of each operand one PE's ``scope: pe``
        levels hold; the GEMM dataflows do not read it).

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
        # pe registers: the stationary operand is written once per load into the array,
        # a moving one latched by every PE that uses it, once per MAC
        pe = {op: acc[op] if op == self.stationary else el["macs"] for op in ("input", "weight")}
        return Fold(row_folds=rf, col_folds=cf, folds=outer * rf * cf, stream=T,
                    fold_cycles=self.fold_cycles(rows, cols, T), reads=reads,
                    accesses=acc, pe_writes=pe)


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
}
