"""Tile programs: what the discrete-event engine replays for one layer.

A program is the layer's buffer tiles in loop order (``mapper.tiling.iter_tiles``), and
for each step ``j``: the bytes of the input and weight tiles that must be loaded before
it (0 when the tile already on chip is reused), whether it opens a new output tile (and
the partial sums to read back when that output tile was visited before), its compute
cycles, whether it is the last use of its input / weight tile (the buffer slot is freed
after it), and the bytes written back after it (0 while the output tile is still being
accumulated; a partial-sum spill at accumulator precision when it will be revisited;
the final output at output precision otherwise). This is exactly the replay that
``tests/test_mapper.py`` checks the mapper's closed-form traffic against, so the engine
moves the mapping's bytes.

Tiles at inner levels (``Mapping.tiling.inner``): an operand whose outermost on-chip
holder is level 1 moves as above (its DRAM fills are the level-1 loop nest's); one held
first at a deeper level is filled (or, for outputs, drained and reloaded) once per tile
of that level, many times within a level-1 tile. Then each level-1 step is split into
sub-steps, one per tile of the deepest level first holding such an operand inside the
level-1 tile (at most ``MAX_SUBSTEPS // steps`` per step, and none shorter than
``MIN_SUBSTEP_CYCLES`` of compute: the engine moves whole cycles, and each of a short
sub-step's transfers would round up a large share of it), with the step's compute dealt
evenly over them. Such an operand's DRAM bytes, the cost
model's exact total, are dealt to the steps in proportion to their MACs and then evenly
to their sub-steps: each sub-step's share of an input or weight is a tile of its own,
loaded before it into a slot freed after it; with outputs each sub-step is an output
tile of its own (its share of partial sums reloaded before it, of write-back stored
after it), so an inner output tile drains while the next one computes, as the
double-buffered inner level lets it. The level-1 operands load before a step's first
sub-step and free after its last. Totals are exact; the order within a level-1 tile is
the even interleaving of transfers and compute (the inner loop nest's tiles taken as
equal), not the nest's exact sequence. (Before, each step's share moved before or after
the whole step: a 16-row nvdla_large tile stored its 77 KB of outputs only after its
compute, +39 % on efficientnet_b3's first conv.)

Compute: the analytic model's layer compute time, ``compute_cycles + 1`` cycles
(:meth:`mapper.Dataflow.compute_cycles` of the folds per array: folds x per-fold cycles
with serial preload, fewer with overlapped), is dealt to the steps in proportion to their MACs
(``floor(total * cumulative_macs / macs)`` differences). Folds need not align with
buffer tiles, so this keeps the array's total busy time identical to the fold formula.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from tilesim.arch import Architecture
from tilesim.mapper import Mapping, sparse
from tilesim.mapper.tiling import iter_tiles, operand_bytes
from tilesim.workloads import OpLayer

from ..cost import (MAX_OP_CHUNKS, MAX_SUBSTEPS, MIN_SUBSTEP_CYCLES, dealt_operands,  # noqa: F401
                    mapping_compute_cycles, op_chunks)



@dataclass(frozen=True)
class Program:
    """One layer as a sequence of steps (parallel tuples, one entry per step)."""
    in_bytes: tuple       # bytes of the input tile loaded for the step (0: resident)
    w_bytes: tuple        # bytes of the weight tile loaded for the step (0: resident)
    new_out: tuple        # bool: the step opens an output tile (takes an output slot)
    psum_bytes: tuple     # partial sums read back when the step opens a revisited tile
    compute: tuple        # cycles of the step on the most loaded array
    free_in: tuple        # bool: last use of the step's input tile
    free_w: tuple         # bool: last use of the step's weight tile
    store_bytes: tuple    # bytes written back after the step (0: none)
    ways: dict            # operand -> buffer slots (2 when double-buffered, else 1)
    prefetched: int = 0   # bytes of the first weight tile loaded during the layer before
    # cross-layer prefetch: bytes of the next layer's first weight tile this layer loads,
    # issued as step ``tail_at`` starts (a MAC layer's last level-1 step, its first
    # sub-step; a vector op's first step),
    # behind every transfer of its own (served last)
    tail_read: int = 0
    tail_at: int = 0
    last_step: int = -1   # index of the first (sub-)step of the last level-1 step

    @property
    def steps(self) -> int:
        return len(self.compute)

    @property
    def read_bytes(self) -> float:
        return sum(self.in_bytes) + sum(self.w_bytes) + sum(self.psum_bytes)

    @property
    def write_bytes(self) -> float:
        return sum(self.store_bytes)


def operand_ways(arch: Architecture) -> dict:
    """Buffer slots per operand: 2 when its traffic can be hidden
    (``Architecture.hidden``: every on-chip level holding it is double-buffered), else 1."""
    return {op: 2 if hidden else 1 for op, hidden in arch.hidden.items()}


def _deal(total: int, work: list) -> tuple:
    """Split ``total`` cycles over steps in proportion to ``work``; sums to ``total``."""
    w = sum(work)
    if w == 0:
        return tuple([total] + [0] * (len(work) - 1))
    out, cum, prev = [], 0, 0
    for x in work:
        cum += x
        cur = total * cum // w
        out.append(cur - prev)
        prev = cur
    return tuple(out)


def mac_program(m: Mapping, arch: Architecture, stage: int = 0, data=None) -> Program:
    """The tile program of ``m``; ``stage``: bytes of the network input staged on chip
    before the first step (one more load the first step waits for); ``data``
    (:class:`mapper.actual.Tensors`): each tile in a data-dependent DRAM format moves
    its bytes counted on the operands' values (:mod:`mapper.actual`), not the densities'."""
    layer, tl, res = m.layer, m.tiling, m.residency
    pb = operand_bytes(layer, arch)
    ib, wb, accb, ob = pb["input"], pb["weight"], pb["accumulator"], pb["output"]
    rat = sparse.ratios(layer, arch, pb)
    counted = {}   # operand -> bytes of one tile (by its key) counted on the data
    if rat is not None:   # tiles move in DRAM's formats (mapper/sparse.py); psums dense
        d = arch.dram.name
        if data is not None:
            counted = _counted_tiles(layer, arch, data, pb)
        ib, wb, ob = ib * rat.t(d, "input"), wb * rat.t(d, "weight"), ob * rat.t(d, "output")
    g, kg = layer.groups, layer.K // layer.groups
    RS = layer.R * layer.S

    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation

    def in_rows(p0, p1):   # the rows of the input the window covers (padding not fetched)
        return (min(layer.H, (p1 - 1) * sh - ph + (layer.R - 1) * dh + 1)
                - max(0, p0 * sh - ph))

    def in_cols(q0, q1):
        return (min(layer.W, (q1 - 1) * sw - pw + (layer.S - 1) * dw + 1)
                - max(0, q0 * sw - pw))

    tiles = list(iter_tiles(layer, tl))
    ikeys, wkeys, okeys, work, ich = [], [], [], [], []
    for t in tiles:
        if g == 1:
            ikeys.append((t.n, t.p, t.q, t.c))
            ich.append(t.c[1] - t.c[0])
        else:   # the tile's c channels (within a group) of each group its k tile spans
            grp = (t.k[0] // kg, (t.k[1] - 1) // kg + 1)
            ikeys.append((t.n, t.p, t.q, grp, t.c))
            ich.append((grp[1] - grp[0]) * (t.c[1] - t.c[0]))
        wkeys.append((t.k, t.c))
        okeys.append((t.n, t.p, t.q, t.k))
        work.append((t.n[1] - t.n[0]) * (t.p[1] - t.p[0]) * (t.q[1] - t.q[0])
                    * (t.k[1] - t.k[0]) * (t.c[1] - t.c[0]) * RS)
    n = len(tiles)
    # visits of each output tile: a run of consecutive steps with the same output key
    runs: dict = {}
    for j in range(n):
        if j == 0 or okeys[j] != okeys[j - 1]:
            runs[okeys[j]] = runs.get(okeys[j], 0) + 1
    seen: dict = {}
    in_b, w_b, new_out, psum, free_in, free_w, store = [], [], [], [], [], [], []
    for j, t in enumerate(tiles):
        first, last = j == 0, j == n - 1
        ni, npq = t.n[1] - t.n[0], (t.p[1] - t.p[0]) * (t.q[1] - t.q[0])
        fetch_in = (first or ikeys[j] != ikeys[j - 1]) and not res.input
        fetch_w = (first or wkeys[j] != wkeys[j - 1]) and not res.weight
        if fetch_in and "input" in counted:
            in_b.append(counted["input"](t))
        else:
            in_b.append(ni * in_rows(*t.p) * in_cols(*t.q) * ich[j] * ib if fetch_in else 0)
        if fetch_w and "weight" in counted:
            w_b.append(counted["weight"](t))
        else:
            w_b.append((t.k[1] - t.k[0]) * (t.c[1] - t.c[0]) * RS * wb if fetch_w else 0)
        elems = ni * npq * (t.k[1] - t.k[0])
        opens = first or okeys[j] != okeys[j - 1]
        new_out.append(opens)
        if opens:
            v = seen.get(okeys[j], 0)
            seen[okeys[j]] = v + 1
            psum.append(elems * accb if v > 0 else 0)
        else:
            psum.append(0)
        free_in.append(last or ikeys[j] != ikeys[j + 1])
        free_w.append(last or wkeys[j] != wkeys[j + 1])
        if last or okeys[j] != okeys[j + 1]:
            final = seen[okeys[j]] == runs[okeys[j]]
            if final and not res.output and "output" in counted:
                store.append(counted["output"](t))
            else:
                store.append(elems * ((0 if res.output else ob) if final else accb))
        else:
            store.append(0)
    compute = _deal(mapping_compute_cycles(m, arch) + 1, work)
    last_step = n - 1
    dealt = []
    if tl.inner:   # operands held first below level 1 with smaller tiles: exact totals,
        from tilesim.mapper import points_of   # dealt by work
        ev = points_of(m, arch, data).tiles
        dealt = [op for op, d in dealt_operands(arch, layer, ev).items() if d[0]]
    if dealt:
        first = {op: min(i for i, lv in enumerate(arch.onchip, 1) if op in lv.holds)
                 for op in dealt}
        total = {"input": ev.read_input[0], "weight": ev.read_weight[0] + ev.early[0],
                 "psum": ev.read_psum[0], "store": ev.write_output[0]}
        share = {k: _deal(int(v), work) for k, v in total.items()}
        # the sub-steps of each step: the tiles of the deepest level first holding a
        # dealt operand inside its level-1 tile (at most MAX_SUBSTEPS in all)
        lt = tl.inner[max(first[op] for op in dealt) - 2]
        cap = max(1, MAX_SUBSTEPS // n)
        subs = [max(1, min(cap, compute[j] // MIN_SUBSTEP_CYCLES, math.prod(
            -(-(b - a) // d) for (a, b), d in zip((t.n, t.p, t.q, t.k, t.c), lt.sizes))))
            for j, t in enumerate(tiles)]
        cols = {k: [] for k in ("in", "w", "new", "psum", "comp", "fin", "fw", "store")}
        for j in range(n):
            s, ones = subs[j], [1] * subs[j]
            head = [True] + [False] * (s - 1)   # the step's first sub-step
            tail = [False] * (s - 1) + [True]   # and its last

            def at(flags, v, off=0):
                return [v if f else off for f in flags]
            cols["comp"] += _deal(compute[j], ones)
            if "input" in dealt:   # each sub-step loads its share into a slot of its own
                cols["in"] += _deal(share["input"][j], ones)
                cols["fin"] += [True] * s
            else:
                cols["in"] += at(head, in_b[j], 0)
                cols["fin"] += at(tail, free_in[j], False)
            if "weight" in dealt:
                cols["w"] += _deal(share["weight"][j], ones)
                cols["fw"] += [True] * s
            else:
                cols["w"] += at(head, w_b[j], 0)
                cols["fw"] += at(tail, free_w[j], False)
            if "output" in dealt:   # each sub-step an output tile: reload, compute, store
                cols["new"] += [True] * s
                cols["psum"] += _deal(share["psum"][j], ones)
                cols["store"] += _deal(share["store"][j], ones)
            else:
                cols["new"] += at(head, new_out[j], False)
                cols["psum"] += at(head, psum[j], 0)
                cols["store"] += at(tail, store[j], 0)
        last_step = len(cols["comp"]) - subs[n - 1]
        in_b, w_b, new_out, psum = cols["in"], cols["w"], cols["new"], cols["psum"]
        compute, free_in, free_w, store = cols["comp"], cols["fin"], cols["fw"], cols["store"]
    if stage:   # the network input, staged whole before the first step
        in_b = [in_b[0] + stage] + list(in_b[1:])
    early = 0
    if res.prefetched and w_b:   # cross-layer prefetch: the first weight tile's bytes, off
        w_b = list(w_b)          # the first loads (a dealt tile spans several sub-steps)
        for j in range(len(w_b)):
            take = min(res.prefetched - early, w_b[j])
            w_b[j] -= take
            early += take
            if early == res.prefetched:
                break
    return Program(in_bytes=tuple(in_b), w_bytes=tuple(w_b), new_out=tuple(new_out),
                   psum_bytes=tuple(psum), compute=tuple(compute),
                   free_in=tuple(free_in), free_w=tuple(free_w), store_bytes=tuple(store),
                   ways=operand_ways(arch), prefetched=early, last_step=last_step)


def _counted_tiles(layer, arch: Architecture, data, pb: dict) -> dict:
    """Operand -> function of a :class:`mapper.tiling.Tile` giving the bytes of its tile
    in DRAM's format counted on ``data``, for the operands DRAM stores in a
    data-dependent format (:data:`mapper.actual.DATA_DEPENDENT`); each tile counted
    once. Keys and layouts are :func:`mapper.actual.tile_values`'s."""
    from tilesim.mapper.actual import (DATA_DEPENDENT, Tensors, counted_bits, tile_key,
                                       tile_values)
    if not isinstance(data, Tensors):
        raise TypeError(f"data must be a mapper.actual.Tensors, not {type(data).__name__}")
    data.check(layer)
    out = {}
    for op in ("input", "weight", "output"):
        f = arch.dram.format_of(op)
        if f not in DATA_DEPENDENT:
            continue
        memo: dict = {}

        def nbytes(t, op=op, f=f, memo=memo):
            k = tile_key(layer, op, t.n, t.p, t.q, t.k, t.c)
            if k not in memo:
                parts, row = tile_values(layer, data, op, k)
                memo[k] = sum(counted_bits(f, a, pb[op] * 8, row) for a in parts) / 8
            return memo[k]
        out[op] = nbytes
    return out


def op_program(layer: OpLayer, arch: Architecture, rd: int | None = None,
               wr: int | None = None) -> Program:
    """A vector-unit op streamed in chunks: one per input or output row of each image,
    whichever has more, per ``lanes`` output channels and per ``lanes`` columns of the
    wider row (at most MAX_OP_CHUNKS), so a reduction over rows (a global average pool:
    one output row) streams its input as the other ops do, and so does a one-row
    one-channel tensor (a transposed vector: convnext's 1 x 768 classifier permute was one
    chunk, loaded, processed and stored in turn, +20 to +50 % over the analytic bound). Input and output bytes (at output precision, as the analytic model
    counts them) and vector cycles are dealt to the chunks in proportion. Chunk j's input
    is loaded and processed, double-buffered like the operands of a MAC layer; a chunk
    with output bytes writes them back and the next chunk opens a new output, one
    without keeps accumulating into the open one. ``rd`` and ``wr``: the DRAM bytes when
    the network planner keeps some of its tensors on chip (:meth:`sim.cost.CostModel.op_dram`;
    None: all of them); with ``wr`` 0 the output stays on chip and nothing is stored."""
    lanes = arch.compute.vector.lanes
    from ..cost import op_bytes
    rd0, wr0 = op_bytes(layer, arch)
    rd = rd0 if rd is None else rd
    wr = wr0 if wr is None else wr
    n = op_chunks(layer, arch)
    ones = [1] * n
    store = _deal(wr, ones)   # the last chunk stores at least one byte (wr >= 1)
    # a chunk that stores nothing keeps accumulating into the open output (a reduction
    # such as a global pool writes fewer bytes than it has chunks); a store frees it
    opens = tuple(j == 0 or store[j - 1] > 0 for j in range(n))
    vec = max(math.ceil(layer.ops / lanes), 1)
    ways = operand_ways(arch)
    return Program(in_bytes=_deal(rd, ones), w_bytes=(0,) * n, new_out=opens,
                   psum_bytes=(0,) * n, compute=_deal(vec, ones), free_in=(True,) * n,
                   free_w=(False,) * n, store_bytes=store, ways=ways, last_step=n - 1)
