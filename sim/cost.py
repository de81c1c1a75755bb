"""The cost model: one closed form, vectorised over a batch of candidate mappings.

The mapper's search scores batches of mapspace points with it (:meth:`CostModel.__call__`);
a single layer is one evaluated point (:meth:`CostModel.mac_result`), and the
discrete-event engine reads its access counts, floors and energy terms from here, so
each quantity is written once.

Compute is the dataflow's own formula (:meth:`mapper.Dataflow.compute_cycles`; per fold
:meth:`mapper.Dataflow.fold_cycles`, cycle-exact with SCALE-Sim v3:
``tests/test_scalesim_golden.py``; proven register by register by :mod:`sim.pe`).
Partial folds cost as much as full ones, and ``compute_cycles = (folds_per_array - 1) *
fold_interval + fold_cycles - 1`` (the index of the last cycle, counting from 0:
SCALE-Sim's convention), ``folds_per_array`` = ceil(folds / count) when ``count`` arrays share the layer; the
layer's folds (:meth:`mapper.Dataflow.plan`: ``groups * row_folds * col_folds`` for
os/ws/is) come with the points. With ``serial`` preload folds do not
overlap (``fold_interval = fold_cycles``: ``folds_per_array * fold_cycles - 1``); with
``overlapped`` preload a ws/is fold starts every ``max(T, rows)`` cycles (the next
fold's stationary operand loads into shadow registers while the current one streams).

Memory: DRAM moves the mapping's traffic at the DRAM bandwidth, ``memory_cycles =
ceil(bytes / bytes_per_cycle)``. The first input + weight tile must arrive before
compute starts and the last output tile leaves after it ends. Traffic of an operand
whose on-chip levels are all double-buffered (``Architecture.hidden``) overlaps
compute, except that first tile (inputs, weights) or last tile (outputs); any other
operand's whole traffic is serialised with compute (``exposed``). So the layer occupies
the largest of these bounds (cycles, a count):

* ``compute``: first_tiles + (compute_cycles + 1) + exposed + last_tile;
* ``memory``: max(memory_cycles, reads + tile_compute + last_tile,
  first_reads + max(tile_compute, next_reads) + rest,
  first_reads + first_visit + writes + late_reads,
  earlier_blocks + last_block_compute + last_tile, slot_chain);
* ``vector``: the vector unit's cycles for a fused activation;
* ``<level> bandwidth``: each on-chip level's bytes read and written / its bandwidth;

where ``reads`` is every DRAM read in cycles and ``tile_compute`` is
``(compute_cycles + 1) // tiles``. When DRAM is the bottleneck the reads stream back to
back, but the last tile's compute cannot start before its operands (the last reads)
have landed, and the last output tile cannot leave before that compute ends, so neither
is hidden (the drain). Symmetrically at the start (the head): ``first_reads`` (the first
input + weight tile) must land before anything computes, and while the first tile
computes DRAM can only prefetch ``next_reads`` = min(first_reads, the other reads),
since no output exists yet to write back; ``rest`` is the remaining traffic. The last
term: no output can leave before the first output tile is complete, after the compute
of its first visit (``first_visit``: the first tile's compute over every c block when
the c loop turns inside every r and k loop that turns, else the first step's; the
steps' compute dealt by MACs as the engine deals it, :meth:`CostModel.first_visit`);
every write, and every read the double-buffered prefetchers cannot have issued by then
(``late_reads`` = reads - the first visit's tiles - one more tile), follow it. It binds
on layers with large outputs and few, uneven tiles (scalesim_google's first MobileNetV2
conv: two 64-row tiles over c blocks of 2 and 1 channels). The fifth generalises the
drain to the last block of the outermost level-1 loop that turns (:meth:`CostModel.last_block`):
it starts only once the reads of the blocks before it, its own new tiles (a k block's
weights...) and every write but the output tiles still in their slots have moved; then
it computes its share. With three blocks or more the second block is taken too: it
starts after the first step's tiles, its own and the first block's writes, then every
later block computes. It binds where a large tile changes at the outer loop and the
blocks in between are too short to prefetch it (tpu_v1's MobileNetV3 1x1 convs). The
sixth, with two slots per operand: the tile two steps on loads only after a step frees
its slot and shares DRAM with that step's store, so the steps at even positions of the
innermost loop chain (:meth:`CostModel.slot_chain`); it binds where full and partial
blocks alternate (an even number of blocks, the partial one last); it starts after the
first tile of the operand the loop does not change. With an odd number of blocks (3 to
:data:`ODD_CHAIN_MAX`) the chain runs as a recurrence over two passes of that loop
(:meth:`CostModel.odd_chain`): a short partial block followed by a full one whose tile
it cannot hide. The discrete-event engine
(:mod:`sim.des`) shows them all; they matter on layers of few tiles. (Where an operand
is held first below level 1 with a smaller tile than level 1's, :func:`dealt_operands`,
the engine deals its transfers over every step: the first-visit term is left out and
the last block's first tiles exclude it.)
``stall_cycles`` is what the largest bound adds to the compute cycles; with unlimited
bandwidth the layer takes exactly its compute cycles.

Access counts, per memory level and operand (bytes read and written): the tiling's
transfers between levels (:func:`mapper.tiling.score_points`: each holder written by
its fills and read by the fills of the next inner holder with a different tile, DRAM
by the outermost holder's; outputs drained up and reloaded down), plus the array's own
accesses (:meth:`CostModel.array_access`): the innermost on-chip level holding an
operand is read once per array access (stationary operands once, streamed ones once per
fold across them; the dataflow's plan counts them: ``Points.accesses``, which under rs
counts the input tensor's own elements as its rows are multicast, not im2col copies); the innermost output level takes every partial sum at accumulator
precision. With the same tile at every level this is the single-tiling count: every
level holding an operand written by its DRAM fills and read by the write-back of
outputs. Energy (:mod:`sim.energy`) is these counts times the
technology tables' figures, plus MACs, array hops, vector ops and leakage x time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from tilesim.arch import Architecture
from tilesim.mapper import DATAFLOWS, Mapping, Points, points_of
from tilesim.mapper.mapping import ORDERS
from tilesim.mapper.tiling import operand_bytes
from tilesim.mapper.dataflow import chain_cycles
from tilesim.mapper import sparse
from tilesim.mapper.actual import actual_nonzero_products, sparsity_label
from tilesim.workloads import MacLayer, OpLayer

from .energy import OPERANDS, energy_terms, energy_table, with_energy
from .results import LayerResult


_LOOP_POS = np.argsort(np.array(ORDERS), axis=1)   # order index -> position of r, k, c


def _int(a):
    """int() of every element (truncation): byte counts at sub-byte precisions."""
    a = np.asarray(a)
    return a if a.dtype.kind in "iu" else np.trunc(a).astype(np.int64)


def transfer_cycles(nbytes, bpc: float):
    """Cycles to move ``nbytes`` (a number or an array) at ``bpc`` bytes per cycle:
    ceil(nbytes / bpc), 0 when the bandwidth is unlimited (``inf``)."""
    if math.isinf(bpc):
        return np.zeros(np.shape(nbytes), dtype=np.int64)
    return np.ceil(np.asarray(nbytes) / bpc).astype(np.int64)


def compute_cycles(pts: Points, count: int) -> np.ndarray:
    """Last-cycle index of the arrays for each point (SCALE-Sim's Total Cycles): the
    most loaded array's folds, :func:`mapper.dataflow.chain_cycles`."""
    return chain_cycles(-(-pts.folds // count), pts.fold_cycles, pts.fold_interval) - 1


def mapping_compute_cycles(m: Mapping, arch: Architecture) -> int:
    """:func:`compute_cycles` of one Mapping on ``arch`` (its own array count)."""
    return int(compute_cycles(points_of(m, arch), m.array_count)[0])


def dram_reads(layer: MacLayer, read_input, read_weight) -> tuple:
    """(activation bytes, weight bytes) a MAC layer reads from DRAM. The one place the
    operand kinds matter here: when the w operand is an activation (attention's MatMul,
    ``layer.weights_are_activations``) it is read as an activation, so the layer reads no
    weights (its precision is the activation's: :func:`mapper.tiling.operand_bytes`). On
    chip it takes the array's w-operand path (the levels holding weights)."""
    if layer.weights_are_activations:
        return read_input + read_weight, read_weight * 0
    return read_input, read_weight


@dataclass(frozen=True)
class Costs:
    """The cost model's answer for a batch of points: parallel numpy arrays.

    ``compute`` (last-cycle index of the arrays), ``memory`` (DRAM cycles of the
    traffic), ``bounds`` (name -> cycles, a count, that resource needs; see the module
    doc), ``cycles`` (the layer's cycles, a count: the largest bound), ``access``
    ((level, operand) -> (read bytes, write bytes), DRAM included), ``energy`` (energy
    column -> pJ, :mod:`sim.energy`; a term that is the same for every point, such as the
    MACs', is one number) and ``energy_pj`` (their sum)."""
    compute: np.ndarray
    memory: np.ndarray
    bounds: dict
    cycles: np.ndarray
    access: dict
    energy: dict
    energy_pj: np.ndarray

    def bound(self, i: int) -> str:
        """What sets point ``i``'s cycles: compute | memory | vector | <level> bandwidth
        (a compute bound that memory stretched beyond the compute cycles is memory)."""
        b = {k: int(v[i]) for k, v in self.bounds.items()}
        name = max(b, key=lambda k: (b[k], k == "compute"))
        if b[name] == b["compute"]:
            name = "compute" if b["compute"] == int(self.compute[i]) + 1 else "memory"
        return name

    def energy_of(self, i: int) -> dict:
        """Energy column -> pJ of point ``i``."""
        return {k: float(v if np.ndim(v) == 0 else v[i]) for k, v in self.energy.items()}

    def level_bytes(self, arch: Architecture, i: int) -> dict:
        """On-chip level -> {"read": B, "write": B} of point ``i`` (all operands; a
        ``scope: pe`` level's summed over the PEs)."""
        out = {}
        for lvl in arch.memory[1:]:
            rw = [self.access[(lvl.name, op)] for op in lvl.holds]
            out[lvl.name] = {"read": int(sum(r[i] for r, _ in rw)),
                             "write": int(sum(w[i] for _, w in rw))}
        return out


def per_point(fn, layer: MacLayer, arch: Architecture, pts: Points):
    """``fn(layer, arch, nm)`` (:func:`mapper.sparse.performed_macs` or
    :func:`~mapper.sparse.energy_macs`) for each point, ``nm`` its dataflow's N:M skip:
    ``layer.macs`` (a number) for a dense layer, else an array over the points."""
    if layer.sparsity is None or not pts.dataflows:
        return layer.macs
    per = np.array([fn(layer, arch, sparse.skip_nm(layer, arch, d)) for d in pts.dataflows],
                   dtype=np.float64)
    return per[pts.dataflow]


def pe_access(arch: Architecture, layer: MacLayer, pts: Points) -> dict:
    """(level, operand) -> (read, write) bytes of the ``scope: pe`` levels, summed over
    the PEs, per point: what the register-by-register PE models (:mod:`sim.pe`) do and
    count. The executor (:func:`sim.kernels.nest.execute_nest`) reports their counts and
    ``tests/test_pe_counts.py`` holds them equal to these for every dataflow. Only the
    real PEs of a fold are accessed: an edge fold's padding rows and columns (and kcr's
    padding taps) are fed zeros and idle.

    * Every MAC reads its input and weight from the PE's registers: an operand held at a
      pe level is read ``MACs`` times.
    * Partial sums (outputs), at accumulator precision: every MAC writes one. It reads
      the partial sum it adds to, except the first MAC of an output's run through the
      PE or down the column (it writes its product: nothing to read), and the run's
      finished sum is read once as it leaves (to the next PE, the column's edge or the
      buffer): reads = (MACs - runs) + runs = ``MACs``, and writes = ``MACs``. kcr's
      column output register (one per column, below the array) is no PE's register and
      is not charged; rs's upward register is the link between PEs (its hops).
    * Writes of an input or weight value are the dataflow's
      (:attr:`mapper.dataflow.Fold.pe_writes`): a moving operand is latched by every PE
      that uses it, once per MAC; the stationary operand of a preloaded fold (ws, is, dw,
      kc, kcr) shifts down its column's register chain from the top at every load, so a
      value is latched by every register it passes on the way to its own: r + 1 for row
      r (kcr: q + 1 for chain register q, a PE holding its taps' registers in a row;
      :func:`mapper.dataflow.shift_writes`); overlapped preload the same, into the shadow
      registers (the switch to the shadow is a bank select, no access). Under rs every PE
      of a filter row's set gets its copy of the row, and an input value is written into
      a PE's sliding window once per window it enters.

    (In 0.3.0 and before, the stationary operand was charged one write per value and load, as
    though a bus wrote each register directly: the transit latches through the rows
    above, which the PE model performs, were charged nowhere; the hop count
    (:attr:`mapper.dataflow.Fold.hops`) holds only the MACs' moves and still does.)"""
    pe = arch.pe_levels
    if not pe:
        return {}
    pb = operand_bytes(layer, arch)
    # MACs performed: the kept weights' where the array skips N:M zeros (mapper/sparse.py)
    macs = per_point(sparse.performed_macs, layer, arch, pts) + np.zeros(len(pts))
    out = {}
    for l in pe:
        for op in l.holds:
            b = pb["accumulator" if op == "output" else op]
            use = _int(macs * b)
            if op == "output":
                out[(l.name, op)] = (use, use)
            else:
                out[(l.name, op)] = (use, _int(pts.pe_writes[op] * b))
    return out


def op_access(arch: Architecture, rd: int, wr: int) -> dict:
    """(level, operand) -> (read, write) bytes of a vector-unit op that reads ``rd`` and
    writes ``wr`` bytes of DRAM: on chip, its input passes through every level holding
    inputs (written by the fill, read by the vector unit), its output through every level
    holding outputs (written by the vector unit, read by the write-back)."""
    out = {(l.name, op): (0, 0) for l in arch.memory for op in l.holds}
    out[(arch.dram.name, "input")] = (rd, 0)
    out[(arch.dram.name, "output")] = (0, wr)
    for l in arch.onchip:
        if "input" in l.holds:
            out[(l.name, "input")] = (rd, rd)
        if "output" in l.holds:
            out[(l.name, "output")] = (wr, wr)
    return out


def op_level_bytes(arch: Architecture, rd: int, wr: int) -> dict:
    """:func:`op_access` summed per on-chip level: {level: {"read": B, "write": B}}."""
    out = {l.name: {"read": rd * ("input" in l.holds) + wr * ("output" in l.holds),
                    "write": rd * ("input" in l.holds) + wr * ("output" in l.holds)}
           for l in arch.onchip}
    out.update({l.name: {"read": 0, "write": 0} for l in arch.pe_levels})  # no MACs
    return out


_OP_DIMS = {"input": (0, 1, 2, 4), "weight": (3, 4), "output": (0, 1, 2, 3)}   # of (n p q k c)
# the discrete-event engine's sub-steps of a level-1 step (:mod:`sim.des.program`): at
# most MAX_SUBSTEPS // steps per step, each at least MIN_SUBSTEP_CYCLES of compute (the
# engine moves whole cycles: each transfer of a shorter one would round up a large share)
MAX_SUBSTEPS = 1024
MIN_SUBSTEP_CYCLES = 32


def op_bytes(layer: OpLayer, arch: Architecture) -> tuple:
    """(read, write) bytes of a vector-unit op's tensors, at output precision: what it
    moves from and to DRAM when none of them stays on chip."""
    pb = arch.precision.bytes["output"]
    return int(layer.in_elems * pb), int(layer.out_elems * pb)


#: most blocks of the innermost turning loop the odd two-slot chain follows (CostModel.odd_chain)
ODD_CHAIN_MAX = 9

#: most chunks a vector-unit op streams in (the discrete-event engine's op program)
MAX_OP_CHUNKS = 1024


def op_chunks(layer: OpLayer, arch: Architecture) -> int:
    """Chunks a vector-unit op streams in: one per input or output row of each image,
    whichever has more, per ``lanes`` output channels and per ``lanes`` columns of the
    wider row, at most :data:`MAX_OP_CHUNKS` (:func:`sim.des.program.op_program`)."""
    lanes = arch.compute.vector.lanes
    return max(1, min(MAX_OP_CHUNKS, layer.N * max(layer.P, layer.H) * -(-layer.K // lanes)
                      * -(-max(layer.Q, layer.W) // lanes)))


def dealt_operands(arch: Architecture, layer: MacLayer, t) -> dict:
    """Operand -> bool array per point of tilings ``t`` (:class:`mapper.tiling.TileEval`):
    the operand is held first below level 1 with a tile smaller than level 1's in a dim
    it depends on (a grouped layer's inputs depend on k's groups too), so its DRAM fills
    come many times within a level-1 tile and the discrete-event engine deals its bytes
    over the steps (:mod:`sim.des.program`). With the very tile of level 1 its fills are
    level 1's and it moves as a level-1 operand does."""
    ext = (layer.N, layer.P, layer.Q, layer.K, layer.C // layer.groups)
    top = (t.images, t.rows, t.cols, t.k_tile, t.c_tile)
    out = {}
    for op, dims in _OP_DIMS.items():
        h = min(i for i, lv in enumerate(arch.onchip, 1) if op in lv.holds)
        d = np.zeros(len(t.images), dtype=bool)
        if h > 1 and t.inner:
            for i in dims + ((3,) if op == "input" and layer.groups > 1 else ()):
                d |= np.minimum(t.inner[h - 2][i], ext[i]) != np.minimum(top[i], ext[i])
        out[op] = d
    return out


class CostModel:
    """The closed form for one architecture: ``cost(layer, points) -> (cycles,
    energy_pj)`` for the mapper's search, and LayerResults for single layers."""

    def __init__(self, arch: Architecture):
        self.arch = arch
        self.tab = energy_table(arch)
        self._results: dict = {}   # mac_result of each (layer shape, mapping) met so far

    def __call__(self, layer: MacLayer, pts: Points):
        c = self.evaluate(layer, pts)
        return c.cycles, c.energy_pj

    # ---- MAC layers -------------------------------------------------------------------
    def access(self, layer: MacLayer, pts: Points) -> dict:
        """(level, operand) -> (read bytes, write bytes) per point, DRAM included: the
        tiling's transfers between levels (:func:`mapper.tiling.score_points`; DRAM reads
        split by operand kind, :func:`dram_reads`) plus what the array reads from and
        writes to the innermost shared level holding each operand (:meth:`array_access`)
        and the ``scope: pe`` levels' per-MAC accesses (:func:`pe_access`)."""
        out = {k: (_int(r), _int(w)) for k, (r, w) in pts.tiles.transfers.items()}
        d = self.arch.dram.name
        (ri, wi), (rw, ww) = out[(d, "input")], out[(d, "weight")]
        act, wgt = dram_reads(layer, ri, rw)
        out[(d, "input")], out[(d, "weight")] = (act, wi), (wgt, ww)
        for k, (r, w) in self.array_access(layer, pts).items():
            r0, w0 = out[k]
            out[k] = (r0 + r, w0 + w)
        out.update(pe_access(self.arch, layer, pts))
        return out

    def array_access(self, layer: MacLayer, pts: Points) -> dict:
        """(innermost shared level holding operand, operand) -> (read, write) bytes per
        point of the array's own accesses: ``pts.accesses[op]`` element reads of each
        operand (the dataflow's plan: stationary operands once, streamed ones once per
        fold across them; under rs the input tensor's own elements as its rows are
        multicast); every partial sum is written at accumulator precision, and read back
        for each write after an output's first."""
        pb = operand_bytes(layer, self.arch)
        g, M, N, K = layer.gemm
        out_elems = g * M * N
        zero = np.zeros(len(pts), dtype=np.int64)
        out = {}
        for op in OPERANDS:
            name = [l for l in self.arch.onchip if op in l.holds][-1].name
            n = pts.accesses[op]
            if op == "output":
                out[(name, op)] = (_int((n - out_elems) * pb["accumulator"]) + zero,
                                   _int(n * pb["accumulator"]) + zero)
            else:
                out[(name, op)] = (_int(n * pb[op]) + zero, zero)
        return out

    def evaluate(self, layer: MacLayer, pts: Points, data=None) -> Costs:
        """Cycles, bounds, access counts and energy of every point of ``pts``; ``data``
        (:class:`mapper.actual.Tensors`, the values ``pts`` was priced on): gated MACs
        are the products with a zero operand counted on them, not expected."""
        arch = self.arch
        t = pts.tiles
        bpc = arch.dram_bpc
        hidden = arch.hidden
        comp = compute_cycles(pts, arch.array.count)
        ri, rw, rp, wo = (_int(v) for v in (t.read_input, t.read_weight, t.read_psum,
                                            t.write_output))
        reads = ri + rw + rp
        mem = transfer_cycles(reads + wo + t.tail, bpc)   # + the next layer's prefetch
        by_op = {"input": ri, "weight": rw, "output": rp + wo}
        zero = np.zeros(len(pts), np.int64)
        exposed = sum(b for op, b in by_op.items() if not hidden[op]) + zero
        tb = {op: _int(v) for op, v in t.tile_bytes.items()}
        early = _int(t.early) + zero   # first weight tile bytes prefetched by the layer before
        first = sum(tb[op] for op in ("input", "weight") if hidden[op]) - early + zero
        last_store = _int(t.last_store)
        last = last_store if hidden["output"] else zero
        overlap = transfer_cycles(first, bpc) + comp + 1 + transfer_cycles(exposed, bpc) + transfer_cycles(last, bpc)
        # memory-bound: the last tile computes only after every read has landed, and its
        # output leaves only after that compute (a tile: a sub-step of a level-1 step
        # where an operand's transfers are dealt over the inner tiles of its first holder)
        dealt = dealt_operands(arch, layer, t)
        tile_comp = (comp + 1) // (t.n_tiles * self.substeps(layer, t, comp, dealt))
        drain = transfer_cycles(reads, bpc) + tile_comp + transfer_cycles(last_store, bpc)
        # ... and at the start, while the first tile computes, DRAM can only prefetch the
        # next tile's operands (at most one tile's worth): no output exists yet to write back
        f0 = tb["input"] + tb["weight"] - early
        nxt = np.maximum(0, np.minimum(f0 + early, reads - f0))
        head = (transfer_cycles(f0, bpc) + np.maximum(tile_comp, transfer_cycles(nxt, bpc))
                + transfer_cycles(np.maximum(0, reads + wo - f0 - nxt), bpc))
        # ... and no output leaves before the first output tile is complete: every write,
        # and every read the prefetchers cannot have issued by then (those after the
        # first visit's tiles and the next one), waits for the first tiles and the
        # compute of that output tile's first visit
        fv, vis = self.first_visit(layer, t, comp)
        late = np.maximum(0, reads - (vis - early) - f0 - early)
        wait = transfer_cycles(f0, bpc) + fv + transfer_cycles(wo + late, bpc)
        # transfers dealt over every step: no first visit
        wait = np.where(dealt["input"] | dealt["weight"] | dealt["output"], 0, wait)
        # ... and the last block of the outermost loop that turns starts only after every
        # earlier block's reads, its own new tiles and the writes that free its output
        # slot have moved; then it computes and its last output tile leaves
        tail = self.last_block(layer, t, comp, (ri + rw, rp, wo), dealt,
                               2 if hidden["output"] else 1, bpc, early)
        # ... and with two slots the tile two steps on loads only after a step frees its
        # slot: every other step of the innermost loop, its load and the store before it
        chain = self.slot_chain(layer, t, comp, (ri, rw, wo), dealt, hidden, bpc)
        act_ops = layer.output_elems if layer.activation else 0
        bounds = {"compute": overlap,
                  "memory": np.maximum.reduce([mem, drain, head, wait, tail, chain]),
                  "vector": zero + math.ceil(act_ops / arch.compute.vector.lanes)}
        access = self.access(layer, pts)
        for i, lvl in enumerate(arch.memory[1:], 1):
            moved = sum(r + w for (name, _), (r, w) in access.items() if name == lvl.name)
            if lvl.scope == "pe":   # the bandwidth is each instance's: bytes per PE
                moved = -(-moved // arch.pes)
            bounds[f"{lvl.name} bandwidth"] = transfer_cycles(moved, arch.level_bpc[i])
        cycles = np.maximum.reduce(list(bounds.values()))
        emacs = per_point(sparse.energy_macs, layer, arch, pts)
        if data is not None and (arch.array.zeros or "none") != "none":
            emacs = actual_nonzero_products(layer, data) + zero
        energy = energy_terms(arch, self.tab, emacs, act_ops, cycles, access,
                              hops=pts.hops)
        return Costs(compute=comp, memory=mem, bounds=bounds, cycles=cycles, access=access,
                     energy=energy, energy_pj=sum(energy.values()))

    @staticmethod
    def first_visit(layer: MacLayer, t, comp) -> tuple:
        """(compute cycles, input + weight bytes) of the level-1 steps up to the first
        output tile's first write-back: the first (full) tile, over every c block when the
        c loop turns inside every r and k loop that turns (the tile accumulates over all of
        its channels before it is stored), else the first step alone. The cycles are the
        discrete-event engine's share of ``comp + 1`` by MACs (:mod:`sim.des.program`); the
        bytes an upper bound on what those steps load (a resident tile loads nothing)."""
        pos = _LOOP_POS[t.order]          # (points, 3): position of r, k, c in the order
        cg = layer.C // layer.groups
        c_in = (((pos[:, 2] > pos[:, 0]) | (t.Tr == 1))
                & ((pos[:, 2] > pos[:, 1]) | (t.Tk == 1)))
        ct = np.minimum(t.c_tile, cg)
        work = (np.minimum(t.images, layer.N) * np.minimum(t.rows, layer.P)
                * np.minimum(t.cols, layer.Q) * np.minimum(t.k_tile, layer.K)).astype(np.float64) \
            * np.where(c_in, cg, ct)
        total = float(layer.N * layer.P * layer.Q * layer.K * cg)
        cycles = np.floor((comp + 1) * (work / total)).astype(np.int64)
        f0 = t.tile_bytes["input"] + t.tile_bytes["weight"]
        return cycles, np.ceil(np.where(c_in, f0 * (cg / ct), f0)).astype(np.int64)

    def substeps(self, layer: MacLayer, t, comp, dealt: dict) -> np.ndarray:
        """Sub-steps per level-1 step of each point, as the discrete-event engine splits
        a step where an operand is dealt (``dealt``, :func:`dealt_operands`): the tiles of
        the deepest level first holding a dealt operand inside a full level-1 tile, at
        most ``MAX_SUBSTEPS // steps``, none shorter than ``MIN_SUBSTEP_CYCLES`` of the
        step's compute; 1 where no operand is dealt."""
        out = np.ones(len(t.images), dtype=np.int64)
        if not t.inner:
            return out
        ext = (layer.N, layer.P, layer.Q, layer.K, layer.C // layer.groups)
        top = (t.images, t.rows, t.cols, t.k_tile, t.c_tile)
        first = {op: min(i for i, lv in enumerate(self.arch.onchip, 1) if op in lv.holds)
                 for op in dealt}
        deepest = np.zeros(len(t.images), dtype=np.int64)
        for op, d in dealt.items():
            deepest = np.where(d, np.maximum(deepest, first[op]), deepest)
        steps = t.n_tiles
        for h in sorted(set(first.values()) - {1}):
            count = np.ones(len(t.images), dtype=np.int64)
            for i in range(5):
                a, b = np.minimum(top[i], ext[i]), np.minimum(t.inner[h - 2][i], ext[i])
                count *= -(-a // b)
            subs = np.maximum(1, np.minimum.reduce([
                count, np.maximum(1, MAX_SUBSTEPS // steps),
                (comp + 1) // steps // MIN_SUBSTEP_CYCLES]))
            out = np.where(deepest == h, subs, out)
        return out

    @staticmethod
    def slot_chain(layer: MacLayer, t, comp, traffic, dealt: dict, hidden: dict, bpc) -> np.ndarray:
        """Cycles (a count) of the slot-chain bound. With two slots per operand the tile
        of step ``j + 2`` loads only after step ``j`` frees its slot, and (outputs
        changing every step) step ``j``'s store must leave before step ``j + 2`` takes
        its output slot: both cross DRAM between the end of step ``j`` and the start of
        step ``j + 2``. So the steps at even positions of the innermost level-1 loop that
        turns (its innermost dim with blocks, for ``r``) chain: the layer takes at least
        their compute plus those loads and stores. With an even number ``B`` of blocks
        they are the full blocks at even positions (``B / 2`` of them, their shares of
        MACs, reads by footprint and writes), the partial last block on the other chain;
        it binds where full and partial blocks alternate (edge_tpu_like's 36-column
        layers in 32 + 4 columns: DES +31 % over the other bounds). Odd ``B``: the
        chains mix and the bound is not taken (0). Operands not double-buffered or
        dealt over sub-steps are left out (the compute bound serialises the former).
        The chain starts after the first tile of the operand the loop does not change
        (weights for ``r``, inputs for ``k``) has landed: the first step needs it
        (nvdla_large's MobileNetV3 1x1 convs in 4 + 4 + 4 + 2 columns behind a 14 KiB
        weight tile: DES +10 % over the chain without it)."""
        ri, rw, wo = traffic
        pos = _LOOP_POS[t.order]
        trips = (t.Tr, t.Tk, t.Tc)
        cg = layer.C // layer.groups
        n = len(t.order)
        (sh, sw), (dh, dw) = layer.stride, layer.dilation

        def span(e, stride, k, dil, size):
            return np.minimum(size, (e - 1) * stride + (k - 1) * dil + 1)

        # the innermost dim with more than one block inside the r loop: q, else p, else n
        dims = ((layer.Q, t.cols, lambda e: span(e, sw, layer.S, dw, layer.W)),
                (layer.P, t.rows, lambda e: span(e, sh, layer.R, dh, layer.H)),
                (layer.N, t.images, lambda e: e))
        r_ext, r_tile, r_fp = (np.zeros(n, np.int64) for _ in range(3))
        r_foot = np.zeros(n, np.float64)
        set_ = np.zeros(n, dtype=bool)
        for ext, tile, fp in dims:
            tile = np.minimum(tile, ext)
            sel = ~set_ & (-(-ext // tile) > 1)
            last = ext - (-(-ext // tile) - 1) * tile
            B = -(-ext // tile)
            foot = np.where(B > 1, (B // 2) * fp(tile) / ((B - 1) * fp(tile) + fp(last)), 1.0)
            r_ext, r_tile = np.where(sel, ext, r_ext), np.where(sel, tile, r_tile)
            r_foot = np.where(sel, foot, r_foot)
            set_ |= sel
        # each point's innermost level-1 loop that turns (largest position with more
        # than one trip; -1: none), then the bound on the points where it has an even
        # number of blocks (the rest: 0), computed once per point
        key = np.where(np.stack(np.broadcast_arrays(*trips), axis=1) > 1, pos, -1)
        turn = key.argmax(axis=1)
        ok = np.take_along_axis(key, turn[:, None], axis=1)[:, 0] >= 0
        ext = np.choose(turn, (r_ext, layer.K, cg))
        tile = np.choose(turn, (r_tile, np.minimum(t.k_tile, layer.K), np.minimum(t.c_tile, cg)))
        B = -(-ext // np.maximum(tile, 1))
        out = np.zeros(n, dtype=np.int64)
        odd = np.flatnonzero(ok & (B % 2 == 1) & (B >= 3) & (B <= ODD_CHAIN_MAX))
        if len(odd):
            out[odd] = CostModel.odd_chain(t, comp, traffic, dealt, hidden, bpc, odd,
                                           turn[odd], ext[odd], tile[odd], B[odd])
        sel = np.flatnonzero(ok & (B % 2 == 0))
        if not len(sel):
            return out
        turn, ext, tile, B = turn[sel], ext[sel], tile[sel], B[sel]
        share = (B // 2) * tile / np.maximum(ext, 1)     # of the MACs, of k, of c

        def at(x):   # x (a number or a per-point array) on the selected points
            return x[sel] if np.ndim(x) else x
        no_in = dealt["input"] | (not hidden["input"])
        no_w = dealt["weight"] | (not hidden["weight"])
        rin = at(np.where(no_in, 0, ri))
        rwt = at(np.where(no_w, 0, rw))
        tin0 = at(np.where(no_in, 0, _int(t.tile_bytes["input"])))
        tw0 = at(np.where(no_w, 0, _int(t.tile_bytes["weight"]) - _int(t.early)))
        wos = at(wo) * share if hidden["output"] else 0
        # r: new inputs (by footprint) and outputs every step; k: new weights and outputs
        # every step; (r, k: plus the first tile of the operand the loop does not change,
        # which lands before the first step); c: new inputs and weights, the output stays
        moved = np.choose(turn, (rin * at(r_foot) + wos + tw0, rwt * share + wos + tin0,
                                 (rin + rwt) * share))
        out[sel] = (transfer_cycles(np.floor(moved), bpc)
                    + np.floor((at(comp) + 1) * share).astype(np.int64))
        return out

    @staticmethod
    def odd_chain(t, comp, traffic, dealt: dict, hidden: dict, bpc, sel, turn, ext, tile,
                  B) -> np.ndarray:
        """Cycles (a count) of the two-slot chain where the innermost level-1 loop that
        turns has an odd number ``B`` of blocks (3 to :data:`ODD_CHAIN_MAX`; points
        ``sel``), its last one partial: step ``j + 2``'s tile loads only after step ``j``
        frees its slot (and, outputs changing every step, after step ``j``'s store), so
        ``end(j + 2) >= max(end(j + 1), end(j) + store(j) + load(j + 2)) + compute(j + 2)``.
        Loads, stores and compute are each step's share of the layer's by the block's
        extent (passes of the loop: ``tiles / B``), the weights' with the first tile's
        bytes the layer before prefetched (every pass loads a whole set), which then come
        off the first step's load: spread over every step, the first included, the
        reads without them charged the first step a load it does not wait for (tpu_v1's
        efficientnet_b2 SE fc2 convs, k blocks of 256 filters, first tile prefetched:
        2,008 cycles against the engine's 1,791, -10.8 %; now equal). The recurrence runs
        over two passes from empty slots and the bound is the first pass plus every
        later pass at the second's cost. It binds where a short partial block is
        followed by a full one whose tile it cannot hide (edge_tpu_like's
        MobileNetV3-small SE convs, weights only, c blocks of 64, 64 and 16 channels: DES
        +13.7 % over the other bounds).
        The chain starts after the first tile of the operand the loop does not change."""
        ri, rw, wo = traffic

        def at(x):
            return x[sel] if np.ndim(x) else x
        no_in = dealt["input"] | (not hidden["input"])
        no_w = dealt["weight"] | (not hidden["weight"])
        rin = at(np.where(no_in, 0, ri)).astype(np.float64)
        rwt = at(np.where(no_w, 0, rw)).astype(np.float64)
        tin0 = at(np.where(no_in, 0, _int(t.tile_bytes["input"])))
        tw0 = at(np.where(no_w, 0, _int(t.tile_bytes["weight"]) - _int(t.early)))
        ew = at(np.where(no_w, 0, _int(t.early))).astype(np.float64)
        wos = at(wo).astype(np.float64) if hidden["output"] else np.zeros(len(sel))
        passes = np.maximum(1, at(t.n_tiles) // B).astype(np.float64)
        # per pass: the loop's changing operands (r: inputs, k: weights, c: both; the
        # weights with the bytes the layer before prefetched, every pass loading a whole
        # set) and the stores (r, k: the output changes every step), in cycles at the
        # DRAM bandwidth; the prefetched bytes come off the first step's load (k, c)
        zero = np.zeros(len(sel))
        load = np.choose(turn, (rin, rwt + ew, rin + rwt + ew)) / passes
        store = np.choose(turn, (wos, wos, zero)) / passes
        pre = np.choose(turn, (zero, ew, ew))
        if not math.isinf(bpc):
            load, store, pre = load / bpc, store / bpc, pre / bpc
        else:
            load, store, pre = zero, zero, zero
        work = (at(comp) + 1) / passes
        last = (ext - (B - 1) * tile) / np.maximum(ext, 1)
        full = tile / np.maximum(ext, 1)
        e2 = e1 = s2 = s1 = zero
        first_pass = zero
        for j in range(2 * int(B.max())):
            live = j < 2 * B
            f = np.where(j % B == B - 1, last, full)
            ld = np.maximum(0, load * f - pre) if j == 0 else load * f
            e = np.maximum(e1, e2 + s2 + ld) + work * f
            e = np.where(live, e, e1)
            first_pass = np.where(j == B - 1, e, first_pass)
            e2, e1 = np.where(live, e1, e2), e
            s2, s1 = np.where(live, s1, s2), np.where(live, store * f, s1)
        bound = first_pass + (passes - 1) * (e1 - first_pass)
        head = np.choose(turn, (transfer_cycles(tw0, bpc), transfer_cycles(tin0, bpc),
                                np.zeros(len(sel), dtype=np.int64)))
        return np.floor(bound).astype(np.int64) + head

    @staticmethod
    def last_block(layer: MacLayer, t, comp, traffic, dealt: dict, out_ways: int, bpc,
                   early=0) -> np.ndarray:
        """Cycles (a count) of the last-block bound: the last iteration of the outermost
        level-1 loop that turns (``T`` trips; none: 0) cannot start before its first
        tiles have landed, which DRAM brings after every read of the blocks before it
        (all reads but a ``1/T`` share, ``1/(T - 1)`` of the partial sums when that loop
        is ``c``: they are reloaded from the second block on) and after every write but
        the output tiles still in their slots (``out_ways - 1`` tiles, at accumulator
        precision when output tiles are revisited, else at output precision); then the block
        computes (its share of ``comp + 1`` by MACs) and its last output tile leaves.
        Its first tiles are those of the operands depending on the loop (inputs for
        ``r``, weights for ``k``, both for ``c``), scaled to the last block's extent; an
        operand whose transfers the engine deals over the steps (``dealt``) brings none.
        It binds where one operand's tile is large and changes at the outer loop while
        the blocks in between are too short to prefetch it (tpu_v1's 1x1 convs of
        MobileNetV3, k blocks of 288 filters: DES +14 % over the other bounds).

        With three blocks or more the second block is a candidate too (the larger of the
        two is taken): it starts only after the first step's tiles, its own first tiles
        and the first (full) block's share of the reads (when more than those) and of the
        writes but the output tiles in their slots have moved; then every block but the
        first computes. It binds where the second block's tile is large, the first block
        too short to prefetch it, and the last block short (nvdla_large with overlapped
        preload, efficientnet_b1's features.8.0 in k blocks of 512, 512 and 256 filters:
        DES +12 % over the other bounds, the second block's figure within one cycle of
        the engine's)."""
        reads_iw, rp, wo = traffic
        pos = _LOOP_POS[t.order]                       # position of r, k, c
        trips = (t.Tr, t.Tk, t.Tc)

        def last(extent, tile):   # the last block's extent along a dim
            tile = np.minimum(tile, extent)
            return extent - (-(-extent // tile) - 1) * tile

        cg = layer.C // layer.groups
        pix = (last(layer.N, t.images) * last(layer.P, t.rows) * last(layer.Q, t.cols)).astype(np.float64)
        full_pix = (np.minimum(t.images, layer.N) * np.minimum(t.rows, layer.P)
                    * np.minimum(t.cols, layer.Q)).astype(np.float64)
        lk, lc = last(layer.K, t.k_tile), last(cg, t.c_tile)
        share = (pix / (layer.N * layer.P * layer.Q), lk / layer.K, lc / cg)   # of the MACs
        tin = np.where(dealt["input"], 0, t.tile_bytes["input"])
        tw = np.where(dealt["weight"], 0, t.tile_bytes["weight"])
        kt, ct = np.minimum(t.k_tile, layer.K), np.minimum(t.c_tile, cg)
        firsts = (tin * pix / full_pix, tw * lk / kt, (tin + tw) * lc / ct)
        # an output tile still in its slot: its final bytes, or its partial sums' (larger)
        # when output tiles are revisited
        held = np.where(rp > 0, t.tile_bytes["output"], t.last_store)
        # the first tiles of the second block and of the first step (both load before
        # the second block starts); full-block shares of the MACs
        firsts1 = (tin, tw, tin + tw)
        f0 = tin + tw - np.where(dealt["weight"], 0, early)
        full = (full_pix / (layer.N * layer.P * layer.Q), kt / layer.K, ct / cg)
        # the outermost loop that turns (none: 0)
        turns = np.stack(trips) > 1
        i_ = np.argmin(np.where(turns.T, pos, 3), axis=1)
        is_c = i_ == 2
        T = np.choose(i_, trips).astype(np.float64)
        full_i = np.choose(i_, full)
        psum_last = np.where(is_c, rp / np.maximum(T - 1, 1), rp / T)
        # the blocks before the last read their share of every read but the prefetched
        # bytes, which are the first block's (``early``: no longer this layer's to wait for)
        before = (np.maximum(0, np.maximum(0, (reads_iw + early) * (T - 1) / T - early)
                             + rp - psum_last) + np.choose(i_, firsts)
                  + np.maximum(0, wo * (T - 1) / T - (out_ways - 1) * held))
        store = transfer_cycles(t.last_store, bpc)
        cyc = (transfer_cycles(np.floor(before), bpc)
               + np.floor((comp + 1) * np.choose(i_, share)).astype(np.int64) + store)
        # ... and the second block (three blocks or more): it starts after the first
        # step's tiles, its own first tiles and the first (full) block's reads and writes
        # but the output tiles in their slots; then every later block computes (all but
        # the first block's share of the MACs)
        psum1 = np.where(is_c, 0, rp * full_i)
        before1 = (np.maximum(np.maximum(0, (reads_iw + early) * full_i - early), f0)
                   + psum1 + np.choose(i_, firsts1)
                   + np.maximum(0, wo * full_i - (out_ways - 1) * held))
        cyc1 = (transfer_cycles(np.floor(before1), bpc)
                + np.floor((comp + 1) * (1 - full_i)).astype(np.int64) + store)
        out = np.where(turns.any(axis=0), np.where(T >= 3, np.maximum(cyc, cyc1), cyc), 0)
        return out

    def point(self, m: Mapping, data=None) -> Costs:
        """The costs of one Mapping (a one-point batch); ``data``: the operands' values
        (:class:`mapper.actual.Tensors`), on which transfers in data-dependent formats
        and gated MACs are counted (:mod:`mapper.actual`)."""
        return self.evaluate(m.layer, points_of(m, self.arch, data), data)

    def mac_result(self, m: Mapping, data=None) -> LayerResult:
        """The LayerResult of a mapped MAC layer: timing, traffic and energy. Layers that
        differ only in name share one evaluation. ``data``: priced on the operands'
        values (:meth:`point`; not shared)."""
        if data is not None:
            return self._mac_result(m, data)
        t = m.tiling
        key = (replace(m.layer, name=""), m.dataflow.name, m.array_rows, m.array_cols,
               m.array_count, m.preload, t.images, t.rows, t.cols, t.k_tile, t.c_tile, t.order,
               t.inner, m.residency)
        hit = self._results.get(key)
        if hit is None:
            hit = self._results[key] = self._mac_result(m)
        return hit if hit.layer == m.layer.name else replace(hit, layer=m.layer.name)

    def _mac_result(self, m: Mapping, data=None) -> LayerResult:
        layer, arch, t = m.layer, self.arch, m.traffic
        if data is None:
            c = self.point(m)
        else:
            pts = points_of(m, arch, data)
            c, t = self.evaluate(layer, pts, data), pts.tiles.traffic_of(0)
        comp, total = int(c.compute[0]), int(c.cycles[0]) - 1
        act, wgt = dram_reads(layer, t.read_input, t.read_weight)
        done = sparse.performed_macs(layer, arch, m.skip or None)
        r = LayerResult(
            layer=layer.name, kind=layer.kind, macs=layer.macs,
            vector_ops=layer.output_elems if layer.activation else 0,
            compute_cycles=comp, stall_cycles=total - comp, total_cycles=total,
            memory_cycles=int(c.memory[0]),
            utilization=done / (arch.peak_macs_per_cycle * (total + 1)),
            performed_macs=done, sparsity=sparsity_label(layer, data),
            dram_read_bytes=t.read, dram_write_bytes=t.write_output,
            dram_read_input_bytes=act, dram_read_weight_bytes=wgt,
            dram_read_psum_bytes=t.read_psum, bound=c.bound(0), folds=m.folds,
            row_folds=m.row_folds, col_folds=m.col_folds, tiling=m.tiling.label(layer),
            buffer_bytes=c.level_bytes(arch, 0), dataflow=m.dataflow.name)
        return with_energy(r, c.energy_of(0))

    def staged(self, r: LayerResult, nbytes: int, level: str, timed: bool = True) -> LayerResult:
        """``r`` (the first layer, any fidelity) after the network input (``nbytes``) is
        staged into the on-chip level ``level`` before it starts: one DRAM read of every
        byte at the DRAM bandwidth, serialised before the layer (its stall, bound
        unchanged), and the read and the level's write priced with the layer's energy
        (leakage over the added cycles included). ``timed=False``: ``r`` already holds
        the read and its time (the discrete-event engine moved it); only the level's
        write and the energy of both are added."""
        add = int(transfer_cycles(nbytes, self.arch.dram_bpc)) if timed else 0
        zero = {(l.name, op): (0, 0) for l in self.arch.memory for op in l.holds}
        zero[(self.arch.dram.name, "input")] = (nbytes, 0)
        zero[(level, "input")] = (0, nbytes)
        extra = energy_terms(self.arch, self.tab, 0, 0, add, zero)
        terms = {k: r.energy_breakdown.get(k, 0.0) + extra.get(k, 0.0)
                 for k in dict.fromkeys([*r.energy_breakdown, *extra])}
        bb = {k: dict(v) for k, v in r.buffer_bytes.items()}
        if level in bb:
            bb[level]["write"] += nbytes
        if not timed:
            return with_energy(replace(r, buffer_bytes=bb), terms)
        total = r.total_cycles + add
        out = replace(r, stall_cycles=r.stall_cycles + add, total_cycles=total,
                      memory_cycles=r.memory_cycles + add,
                      utilization=r.macs / (self.arch.peak_macs_per_cycle * (total + 1)),
                      dram_read_bytes=r.dram_read_bytes + nbytes,
                      dram_read_input_bytes=r.dram_read_input_bytes + nbytes,
                      buffer_bytes=bb)
        return with_energy(out, terms)

    # ---- vector-unit ops --------------------------------------------------------------
    def op_result(self, layer: OpLayer, rd: int | None = None, wr: int | None = None,
                  tail: int = 0) -> LayerResult:
        """A non-MAC op on the vector unit: its input read from and output written to
        DRAM (see :func:`op_access` for the on-chip counts); ``rd`` / ``wr`` the DRAM
        bytes when the network planner keeps some of its tensors on chip (None: every
        byte of :func:`op_bytes`); ``tail`` the next layer's first weight bytes it
        prefetches (DRAM time, not its bytes)."""
        arch = self.arch
        rd0, wr0 = op_bytes(layer, arch)
        rd = rd0 if rd is None else rd
        wr = wr0 if wr is None else wr
        vec = math.ceil(layer.ops / arch.compute.vector.lanes)
        mem = int(transfer_cycles(rd + wr + tail, arch.dram_bpc))
        busy = max(vec, mem, 1)
        if rd and not wr:   # output kept on chip: the last chunk computes after every read
            v = max(vec, 1)
            n = op_chunks(layer, arch)
            busy = max(busy, int(transfer_cycles(rd, arch.dram_bpc)) + v - v * (n - 1) // n)
        if wr and not rd:   # input on chip: the stores start after the first chunk computes,
            v = max(vec, 1)  # and the last chunk's store follows every computation
            n = op_chunks(layer, arch)
            busy = max(busy, v - v * (n - 1) // n + int(transfer_cycles(wr, arch.dram_bpc)),
                       v + int(transfer_cycles(wr - wr * (n - 1) // n, arch.dram_bpc)))
        r = LayerResult(
            layer=layer.name, kind=layer.kind, macs=0, vector_ops=layer.ops,
            compute_cycles=max(vec, 1) - 1, stall_cycles=busy - max(vec, 1),
            total_cycles=busy - 1, memory_cycles=mem, utilization=0.0, dram_read_bytes=rd,
            dram_write_bytes=wr, dram_read_input_bytes=rd,
            bound="vector" if vec >= mem and busy <= max(vec, 1) else "memory",
            buffer_bytes=op_level_bytes(arch, rd, wr))
        return self.op_energy(r)

    def op_energy(self, r: LayerResult) -> LayerResult:
        """``r`` (a vector-unit op of any fidelity) with its energy."""
        return with_energy(r, energy_terms(self.arch, self.tab, 0, r.vector_ops, r.cycles,
                                           op_access(self.arch, r.dram_read_bytes,
                                                     r.dram_write_bytes)))
