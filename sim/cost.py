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
* ``memory``: max(memory_cycles, drain, first_reads + max(tile_compute, next_reads) +
  rest, first_reads + first_visit + writes + late_reads) (the drain includes the
  output-slot chain: with two output slots every other output tile's compute and store
  follow one another, :meth:`CostModel._slot_chain`);
* ``vector``: the vector unit's cycles for a fused activation;
* ``<level> bandwidth``: each on-chip level's bytes read and written / its bandwidth;

where ``reads`` is every DRAM read in cycles and ``tile_compute`` is
``(compute_cycles + 1) // tiles``. When DRAM is the bottleneck the reads stream back to
back, but a step cannot start before the loads of every step up to it have landed, and
the steps after it and the last output's store follow it, so none of that is hidden
(the drain, :meth:`CostModel.drain`): over the steps ``j(p)`` that open the last
iteration of the level-1 loop at position ``p`` (outermost first; ``p = 2`` is the last
step) and the second-to-last step, the largest of ``transfer(reads needed by steps <= j
+ stores that must have left by then) + ceil((compute_cycles + 1) x tail work / work) +
last_store``, where the tail is the steps from ``j`` on (for ``j(p)``: the loops at
positions <= p at their last block, its work the product of those dims' last-block
shares), the reads needed by then are each operand's reads less what it can load after
``j`` (its tiles opened in the tail beyond the first, each at most a full tile; after
the second-to-last step, the last step's own), and the stores are those of all but
``ways`` (the output slots) of the output tiles opened up to ``j``, each at least the
smallest one. In a tiling whose late steps reuse one large tile (k outer, one weight
tile per k block: the second gates every step of the last k block) ``p = 0`` binds;
after a full block and a small last one, the second-to-last step. It is a true lower
bound of the discrete-event engine's time: ``tests/test_drain.py``.
Symmetrically at the start (the head): ``first_reads`` (the first
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
conv: two 64-row tiles over c blocks of 2 and 1 channels). The discrete-event engine
(:mod:`sim.des`) shows all three; they matter on layers of few tiles. (Where an operand
is held first below level 1 and the mapping has inner tiles, the engine deals its
transfers over every step and the last term is left out.)
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
from tilesim.mapper.tiling import _cols_in, _rows_in, operand_bytes
from tilesim.mapper.dataflow import chain_cycles
from tilesim.workloads import MacLayer, OpLayer

from .energy import OPERANDS, energy_terms, energy_table, with_energy
from .results import LayerResult


_LOOP_POS = np.argsort(np.array(ORDERS), axis=1)   # order index -> position of r, k, c
_POS = tuple(_LOOP_POS[:, d].astype(np.int8) for d in range(3))  # per loop r, k, c


def _int(a):
    """int() of every element (truncation): byte counts at sub-byte precisions."""
    a = np.asarray(a)
    return a if a.dtype.kind in "iu" else np.trunc(a).astype(np.int64)


def _deeper(t) -> np.ndarray:
    """Per point of TileEval ``t``: some level below level 1 has a tile of other sizes
    (an operand held first there is dealt over the level-1 steps, :mod:`sim.des.program`)."""
    deeper = np.zeros(len(t), dtype=bool)
    top = (t.images, t.rows, t.cols, t.k_tile, t.c_tile)
    for lv in t.inner:
        for a, b in zip(lv[:5], top):
            deeper |= np.asarray(a) != b
    return deeper


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


def pe_access(arch: Architecture, layer: MacLayer, pts: Points) -> dict:
    """(level, operand) -> (read, write) bytes of the ``scope: pe`` levels, summed over
    the PEs, per point.

    Every MAC reads its two operands from the PE's registers and reads and writes one
    partial sum (at accumulator precision): an operand held at a pe level is read
    ``MACs`` times, outputs are also written ``MACs`` times. Writes of an input or weight
    value are the point's dataflow's (:attr:`mapper.dataflow.Fold.pe_writes`): under
    the GEMM dataflows the stationary operand is written once per load into the array
    (what the array reads of it from the innermost shared level holding it; the shift
    through the rows above its PE is the array's hop energy, not a register write) and
    a moving operand is latched by every PE that uses it, once per MAC; under rs every
    PE of a filter row's set gets its copy of the row, and an input value is written
    into a PE's sliding window once per window it enters."""
    pe = arch.pe_levels
    if not pe:
        return {}
    pb = operand_bytes(layer, arch)
    macs = layer.macs
    out = {}
    for l in pe:
        for op in l.holds:
            b = pb["accumulator" if op == "output" else op]
            use = _int(np.full(len(pts), macs * b, dtype=np.float64))
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

    def evaluate(self, layer: MacLayer, pts: Points) -> Costs:
        """Cycles, bounds, access counts and energy of every point of ``pts``."""
        arch = self.arch
        t = pts.tiles
        bpc = arch.dram_bpc
        hidden = arch.hidden
        comp = compute_cycles(pts, arch.array.count)
        ri, rw, rp, wo = (_int(v) for v in (t.read_input, t.read_weight, t.read_psum,
                                            t.write_output))
        reads = ri + rw + rp
        mem = transfer_cycles(reads + wo, bpc)
        by_op = {"input": ri, "weight": rw, "output": rp + wo}
        zero = np.zeros(len(pts), np.int64)
        exposed = sum(b for op, b in by_op.items() if not hidden[op]) + zero
        tb = {op: _int(v) for op, v in t.tile_bytes.items()}
        first = sum(tb[op] for op in ("input", "weight") if hidden[op]) + zero
        last_store = _int(t.last_store)
        last = last_store if hidden["output"] else zero
        overlap = transfer_cycles(first, bpc) + comp + 1 + transfer_cycles(exposed, bpc) + transfer_cycles(last, bpc)
        deeper = _deeper(t) if t.inner and self._dealt else None
        # memory-bound: the steps from a late one to the last compute only after every
        # read of the steps up to it has landed, and the last output leaves after them
        drain = self.drain(layer, t, comp, deeper)
        tile_comp = (comp + 1) // t.n_tiles
        # ... and at the start, while the first tile computes, DRAM can only prefetch the
        # next tile's operands (at most one tile's worth): no output exists yet to write back
        f0 = tb["input"] + tb["weight"]
        nxt = np.maximum(0, np.minimum(f0, reads - f0))
        head = (transfer_cycles(f0, bpc) + np.maximum(tile_comp, transfer_cycles(nxt, bpc))
                + transfer_cycles(np.maximum(0, reads + wo - f0 - nxt), bpc))
        # ... and no output leaves before the first output tile is complete: every write,
        # and every read the prefetchers cannot have issued by then (those after the
        # first visit's tiles and the next one), waits for the first tiles and the
        # compute of that output tile's first visit
        fv, vis = self.first_visit(layer, t, comp)
        late = np.maximum(0, reads - vis - f0)
        wait = transfer_cycles(f0, bpc) + fv + transfer_cycles(wo + late, bpc)
        if deeper is not None:   # transfers dealt over every step: no first visit
            wait = np.where(deeper, 0, wait)
        act_ops = layer.output_elems if layer.activation else 0
        bounds = {"compute": overlap,
                  "memory": np.maximum.reduce([mem, drain, head, wait]),
                  "vector": zero + math.ceil(act_ops / arch.compute.vector.lanes)}
        access = self.access(layer, pts)
        for i, lvl in enumerate(arch.memory[1:], 1):
            moved = sum(r + w for (name, _), (r, w) in access.items() if name == lvl.name)
            if lvl.scope == "pe":   # the bandwidth is each instance's: bytes per PE
                moved = -(-moved // arch.pes)
            bounds[f"{lvl.name} bandwidth"] = transfer_cycles(moved, arch.level_bpc[i])
        cycles = np.maximum.reduce(list(bounds.values()))
        energy = energy_terms(arch, self.tab, layer.macs, act_ops, cycles, access,
                              hops=pts.hops)
        return Costs(compute=comp, memory=mem, bounds=bounds, cycles=cycles, access=access,
                     energy=energy, energy_pj=sum(energy.values()))

    @property
    def _dealt(self) -> bool:
        """Some operand is held first below level 1: with tiles at inner levels its
        transfers are dealt over the level-1 steps (:mod:`sim.des.program`)."""
        return any(op not in self.arch.onchip[0].holds for op in OPERANDS)

    def drain(self, layer: MacLayer, t, comp, deeper=None) -> np.ndarray:
        """The drain bound (cycles, a count) of every point: the largest, over four
        steps ``j``, of ``transfer(reads needed by steps <= j + stores that must have left
        before j) + compute of steps j.. + transfer(last store)``. The steps: those that
        open the last iteration of the level-1 loop at position ``p`` = 0, 1, 2
        (outermost first; ``p = 2``: the last step), and the second-to-last step (where
        the innermost loop with more than one trip turns for the last time: a full block
        before a last one that may be small).

        Step ``j`` cannot start before every load of the steps up to it has landed (the
        engine loads a tile before the step using it), nor before the stores of all but
        ``ways`` output tiles opened up to it have left (an output slot is freed when its
        tile's store has left); the steps from ``j`` on compute one after the other on
        array 0 (``ceil((compute_cycles + 1) x tail work / work)`` cycles: the engine's
        share of them, dealt by MACs, :mod:`sim.des.program`), and the last output tile
        leaves after the last step. Each term is a lower bound:

        * the tail from ``j(p)`` is the steps whose loops at positions <= p are at their
          last block; its work share is the product of those dims' last-block shares
          (``last block / extent``; r: images x rows x cols); the second-to-last step
          adds the last step's share x (full block / last block) of its dim;
        * an operand (input: r, c, and k in a grouped layer; weight: k, c; partial sums
          and stores: r, k) changes tile at a step when a loop over one of its dims with
          more than one trip turns there; within the tail of ``p`` it opens ``runs`` =
          the trips of the loops inside ``p``, less those of the loop over its other dim
          when no such loop turns inside that one (the refetch rule of
          :mod:`mapper.tiling`), so the steps after ``j`` load at most ``runs - 1`` of
          its tiles (a full tile is the largest); after the second-to-last step, the
          last step's own tiles when its dim is one they depend on;
        * output tiles opened up to ``j``: all of the layer's less those opened after
          ``j``; all but ``ways`` of them (2 when outputs are double-buffered) have been
          stored, each at least the smallest (last) output tile at min(output,
          accumulator) bytes;
        * an operand first held below level 1 with inner tiles (``deeper``) is dealt to
          the steps by MACs (:mod:`sim.des.program`): after ``j`` it moves at most its
          total x the share of the steps after ``j`` + 1 byte, and its stores count as
          none, its last store as the last step's share. One more step binds there:
          ``j = 0``, whose share of such an operand (its total x the first step's share,
          less 1 byte) loads before anything computes (the compute bound counts a tile
          of the level holding it first, less than that share).

        In a tiling whose late steps reuse a large tile loaded once (k outer: the second
        weight tile gates the 49 one-pixel steps after it) ``p = 0`` binds; where the
        last block is small, the second-to-last step. With two output slots the bound is
        also at least the output-slot chain (:meth:`_slot_chain`)."""
        arch = self.arch
        bpc = arch.dram_bpc
        N, P, Q, K = layer.N, layer.P, layer.Q, layer.K
        cg = layer.C // layer.groups
        pb = operand_bytes(layer, arch)
        Tr, Tk, Tc = t.Tr, t.Tk, t.Tc
        n = Tr * Tk * Tc
        # (plain arithmetic on masks, not np.where: this runs on every candidate the
        # search scores, benchmarks/bench_scoring.py)
        pr, pk = np.take(_POS[0], t.order), np.take(_POS[1], t.order)
        pc = 3 - pr - pk                          # positions of the r, k, c loops (int8)
        r1, k1, r2, k2 = pr == 1, pk == 1, pr == 2, pk == 2
        dTr, dTk = Tr - Tc, Tk - Tc
        T1 = Tc + r1 * dTr + k1 * dTk             # trips of the loop at position 1
        T2 = Tc + r2 * dTr + k2 * dTk             # ... and 2
        T12 = T1 * T2
        # last-block extents (the tail of p has the loops at positions <= p at theirs)
        lp = P - (np.ceil(P / t.rows) - 1) * t.rows
        lq = Q - (np.ceil(Q / t.cols) - 1) * t.cols
        ln = N - (np.ceil(N / t.images) - 1) * t.images if N > 1 else 1
        lr = ln * lp * lq
        lk = K - (Tk - 1) * t.k_tile
        lc = cg - (Tc - 1) * t.c_tile
        sr, sk, sc = lr * (1 / (N * P * Q)), lk * (1 / K), lc * (1 / cg)
        dsr, dsk = sr - sc, sk - sc
        s0 = sc + (pr == 0) * dsr + (pk == 0) * dsk
        last = sr * sk * sc                       # the last step's share of the work
        # j = n - 2: the innermost loop with more than one trip turns for the last time;
        # that step is a full block of its dim (dr, dk, dc: which), the others at last
        two = T2 > 1
        q = 2 * two + (~two & (T1 > 1))
        dr, dk, dc = pr == q, pk == q, pc == q
        full = (dr * (np.minimum(t.images, N) * np.minimum(t.rows, P) * np.minimum(t.cols, Q)
                      / lr) + dk * (np.minimum(t.k_tile, K) / lk)
                + dc * (np.minimum(t.c_tile, cg) / lc))
        full *= n > 1
        full += 1
        frac = (s0, s0 * (sc + r1 * dsr + k1 * dsk), last, last * full)
        # tiles of an operand opened in the tail of p = 0, 1 (p = 2: one), less one:
        # ``px``, the position of the loop over its irrelevant dim, drops its trips when
        # no loop with more than one trip turns inside it (the tile stays over it)
        T12m, T2m = T12 - 1, T2 - 1
        one2 = T2 == 1

        def runs(px):
            inner, mid = px == 2, (px == 1) & one2
            return T12m - inner * (T12 - T1) - mid * T12m, T2m - inner * T2m

        r_in = (T12m, T2m) if layer.groups > 1 else runs(pk)   # grouped: inputs follow k
        r_w, r_out = runs(pr), runs(pc)
        tb = t.tile_bytes
        lo = lr * lk   # elements of the last (the smallest) output tile
        # the last step's tiles (all dims at their last block), loaded there when its
        # dim q is one they depend on
        RS = layer.R * layer.S
        if layer.groups > 1:   # its input tile spans the groups of a k block: at most full
            in_last = tb["input"] * (dr | dc | dk)
        else:
            in_last = (ln * _rows_in(lp, layer) * _cols_in(lq, layer) * lc * pb["input"]) \
                * (dr | dc)

        def less(tot, x):   # tot - x, at least 0 (in place)
            x = tot - x
            return np.maximum(x, 0, out=x)

        # per operand and candidate: its bytes the steps up to j need (all at p = 2)
        ri, rw, rp = t.read_input, t.read_weight, t.read_psum
        need = {"input": [less(ri, r_in[0] * tb["input"]), less(ri, r_in[1] * tb["input"]),
                          ri, less(ri, in_last)],
                "weight": [less(rw, r_w[0] * tb["weight"]), less(rw, r_w[1] * tb["weight"]),
                           rw, less(rw, lk * lc * (RS * pb["weight"]) * (dk | dc))]}
        if np.any(rp):
            need["output"] = [less(rp, r_out[0] * tb["output"]),
                              less(rp, r_out[1] * tb["output"]), rp,
                              less(rp, lo * pb["accumulator"] * (dr | dk))]
        # output tiles opened in the whole layer (the same rule, over every loop), less
        # the slots: all those before j must have been stored
        alone = ((pr < pc) | (Tr == 1)) & ((pk < pc) | (Tk == 1))
        ways = 2 if arch.hidden["output"] else 1
        n_out = n - alone * (n - n // Tc) - ways
        small = lo * min(pb["output"], pb["accumulator"])
        stores = [np.maximum(n_out - r, 0) * small for r in (*r_out, 0, dr | dk)]
        last_store = lo * pb["output"]
        head = out_dealt = None
        if t.inner and self._dealt:   # operands held first below level 1: dealt by MACs
            deeper = _deeper(t) if deeper is None else deeper
            held = arch.onchip[0].holds
            # the steps after j: the tail less step j (the first block of the loops
            # inside p, at most a full tile each)
            fr, fk, fc = (np.minimum(t.images, N) * np.minimum(t.rows, P)
                          * np.minimum(t.cols, Q) / (N * P * Q),
                          np.minimum(t.k_tile, K) / K, np.minimum(t.c_tile, cg) / cg)
            f1 = fc + r1 * (fr - fc) + k1 * (fk - fc)
            f2 = fc + r2 * (fr - fc) + k2 * (fk - fc)
            later = (frac[0] * (1 - f1 * f2), frac[1] * (1 - f2), 0, last)
            for op, tot in (("input", ri), ("weight", rw), ("output", rp)):
                if op in need and op not in held:   # after j: at most tot x share + 1 B
                    need[op] = [np.where(deeper, np.maximum(0, tot - np.ceil(tot * f) - 1), x)
                                for x, f in zip(need[op], later)]
            if "output" not in held:
                out_dealt = deeper
                stores = [np.where(deeper, 0, x) for x in stores]
                last_store = np.where(deeper, np.floor(t.write_output * last * (1 - 1e-12)),
                                      last_store)
            # j = 0: the first step loads its share of a dealt operand (at least tot x
            # its share - 1 B), its first tile of another, before any compute
            first = fr * fk * fc
            head = sum(np.maximum(0, np.floor(tot * first) - 1) if op not in held
                       else tb[op] for op, tot in (("input", ri), ("weight", rw)))
            head = np.where(deeper, head, 0)
        c1 = (comp + 1) * (1 - 1e-12)
        whole = all(float(v).is_integer() for v in pb.values())
        best = None
        for i in range(4):
            x = c1 * frac[i]
            np.ceil(x, out=x)
            if not math.isinf(bpc):
                y = stores[i] + sum(v[i] for v in need.values())
                if not whole:
                    np.trunc(y, out=y)
                y /= bpc
                x += np.ceil(y, out=y)
            best = x if best is None else np.maximum(best, x, out=best)
        if head is not None and not math.isinf(bpc):
            np.maximum(best, np.ceil(c1) + np.ceil(np.trunc(head) / bpc), out=best)
        if not math.isinf(bpc):
            best += np.ceil(np.trunc(last_store) / bpc)
            if ways == 2:
                np.maximum(best, self._slot_chain(layer, t, c1, pr, pk, pc, n_out + ways,
                                                  sr, sc, out_dealt), out=best)
        return best.astype(np.int64)

    def _slot_chain(self, layer, t, c1, pr, pk, pc, n_out, sr, sc, dealt) -> np.ndarray:
        """The output-slot chain (cycles): with two output slots, the output tile opened
        ``i + 2``-th waits for the store of the ``i``-th, so every other tile's compute and
        store follow one another: the layer takes at least the compute plus the store
        transfer of tiles 0, 2, 4, .... Counted where the innermost r or k loop with more
        than one trip (the loop the tiles turn fastest; for r, its innermost dim with more
        than one block: columns, rows, images) has an even number of trips ``To``: those
        tiles are then its full blocks (the last, maybe small, block has an odd index),
        ``To / 2`` of each ``To``: their work share ``To / 2 x block / extent`` of the
        compute (less 1 cycle a tile for the engine's rounding) and as
        much of the tiles' element visits stored, at least min(output, accumulator)
        bytes each (dealt outputs: the share of each tile's closing step, less 1 byte).
        Elsewhere (odd ``To``, one tile) it is 0."""
        N, P, Q, K = layer.N, layer.P, layer.Q, layer.K
        pb = operand_bytes(layer, self.arch)
        Tr, Tk = t.Tr, t.Tk
        rk, r1, k1 = pr > pk, Tr > 1, Tk > 1
        o_r = r1 & (rk | ~k1)            # the r loop is the innermost output loop turning
        o_k = k1 & (~rk | ~r1)           # ... the k loop
        # r blocks turn columns fastest, then rows, then images: the innermost of those
        # with more than one trip sets the parity of an r block's index
        Tq, Tp = np.ceil(Q / t.cols), np.ceil(P / t.rows)
        q1, p1 = Tq > 1, Tp > 1
        Ts = Tr + p1 * (Tp - Tr)
        Ts += q1 * (Tq - Ts)
        fn, fp = np.minimum(t.images, N) * (1 / N), np.minimum(t.rows, P) * (1 / P)
        fs = fn + p1 * (fp - fn)
        fs += q1 * (np.minimum(t.cols, Q) * (1 / Q) - fs)
        half = (o_r * Ts + o_k * Tk) * 0.5
        share = o_r * fs + o_k * (np.minimum(t.k_tile, K) * (1 / K))
        share *= half
        share *= np.floor(half) == half                   # 0 where odd (none: To = 0)
        tiles = n_out * 0.5                               # the chain's tiles, at most
        comp = c1 * share
        np.floor(comp, out=comp)
        comp -= tiles
        np.maximum(comp, 0, out=comp)
        # visits of each output element: n_out / (Tr Tk)
        st = share * n_out * (layer.output_elems * min(pb["output"], pb["accumulator"]))
        st /= Tr * Tk
        if dealt is not None:   # the closing step's share: the last c block when c turns inside
            po = o_r * pr + o_k * pk
            close = 1 - (pc > po) * (1 - sc)
            st = np.where(dealt, np.maximum(0, t.write_output * share * close - tiles), st)
        return comp + np.ceil(np.trunc(st) / self.arch.dram_bpc)

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

    def point(self, m: Mapping) -> Costs:
        """The costs of one Mapping (a one-point batch)."""
        return self.evaluate(m.layer, points_of(m, self.arch))

    def mac_result(self, m: Mapping) -> LayerResult:
        """The LayerResult of a mapped MAC layer: timing, traffic and energy. Layers that
        differ only in name share one evaluation."""
        t = m.tiling
        key = (replace(m.layer, name=""), m.dataflow.name, m.array_rows, m.array_cols,
               m.array_count, m.preload, t.images, t.rows, t.cols, t.k_tile, t.c_tile, t.order,
               t.inner)
        hit = self._results.get(key)
        if hit is None:
            hit = self._results[key] = self._mac_result(m)
        return hit if hit.layer == m.layer.name else replace(hit, layer=m.layer.name)

    def _mac_result(self, m: Mapping) -> LayerResult:
        layer, arch, t = m.layer, self.arch, m.traffic
        c = self.point(m)
        comp, total = int(c.compute[0]), int(c.cycles[0]) - 1
        act, wgt = dram_reads(layer, t.read_input, t.read_weight)
        r = LayerResult(
            layer=layer.name, kind=layer.kind, macs=layer.macs,
            vector_ops=layer.output_elems if layer.activation else 0,
            compute_cycles=comp, stall_cycles=total - comp, total_cycles=total,
            memory_cycles=int(c.memory[0]),
            utilization=layer.macs / (arch.peak_macs_per_cycle * (total + 1)),
            dram_read_bytes=t.read, dram_write_bytes=t.write_output,
            dram_read_input_bytes=act, dram_read_weight_bytes=wgt,
            dram_read_psum_bytes=t.read_psum, bound=c.bound(0), folds=m.folds,
            row_folds=m.row_folds, col_folds=m.col_folds, tiling=m.tiling.label(layer),
            buffer_bytes=c.level_bytes(arch, 0), dataflow=m.dataflow.name)
        return with_energy(r, c.energy_of(0))

    # ---- vector-unit ops --------------------------------------------------------------
    def op_result(self, layer: OpLayer) -> LayerResult:
        """A non-MAC op on the vector unit: its input read from and output written to
        DRAM (see :func:`op_access` for the on-chip counts)."""
        arch = self.arch
        pb = arch.precision.bytes
        rd = int(layer.in_elems * pb["output"])
        wr = int(layer.out_elems * pb["output"])
        vec = math.ceil(layer.ops / arch.compute.vector.lanes)
        mem = int(transfer_cycles(rd + wr, arch.dram_bpc))
        busy = max(vec, mem, 1)
        r = LayerResult(
            layer=layer.name, kind=layer.kind, macs=0, vector_ops=layer.ops,
            compute_cycles=max(vec, 1) - 1, stall_cycles=busy - max(vec, 1),
            total_cycles=busy - 1, memory_cycles=mem, utilization=0.0, dram_read_bytes=rd,
            dram_write_bytes=wr, dram_read_input_bytes=rd,
            bound="vector" if vec >= mem else "memory",
            buffer_bytes=op_level_bytes(arch, rd, wr))
        return self.op_energy(r)

    def op_energy(self, r: LayerResult) -> LayerResult:
        """``r`` (a vector-unit op of any fidelity) with its energy."""
        return with_energy(r, energy_terms(self.arch, self.tab, 0, r.vector_ops, r.cycles,
                                           op_access(self.arch, r.dram_read_bytes,
                                                     r.dram_write_bytes)))
