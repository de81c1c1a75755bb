"""The multi-level executor: runs a :class:`mapper.Mapping` through its loop nest tiled at
every on-chip level, moving real data between per-level buffers, and counts every fill,
read and write per (level, operand), so that the cost model's ``access`` (its tiling
transfers, :func:`mapper.tiling.score_points`) can be checked against an operational
replay and the output against the reference kernels, bit for bit.

The nest: level 1's loops (its order) walk level-1 tiles over the layer; inside each,
level 2's loops walk level-2 sub-tiles, and so on; the innermost level's tile is what
the array computes. Every ``k`` loop is two loops, groups then output channels within
a group (a tile either covers whole groups or lies inside one), so a grouped layer's
input tile is shared by the k blocks of one group.

The DMA program is the loop nest itself (a static schedule): a level ``h`` holding an
operand issues a fill at every iteration of the innermost loop of levels 1..h that the
operand depends on and that has more than one trip on a full parent block (and once at
the start when there is none); the tile is the one the loop indices then select.

Each fill copies the tile from the next outer level holding the operand (DRAM at the
top), which must contain it: a nesting error raises. A level whose tile of the operand
is the very tile of that outer level (same extents in every dim the operand depends
on) is filled by the same transfer as it passes (the outer level is not read for it).
Outputs: the innermost level holding outputs accumulates; when its tile changes it is
drained to the next outer output level holding a different tile (DRAM at the top),
passing through the levels in between (each read once by it), at output precision when
its elements' reduction is complete, else as partial sums at accumulator precision; a
tile re-opened after a drain reloads its partial sums the same way down.

Counted bytes: a fill of input charges the rows and columns of the input its window
covers, as the cost model does (padding is never fetched: :func:`mapper.tiling._edge_excess`).

The array and the ``scope: pe`` levels (per-PE registers): with ``pe_model`` (by default
whenever the architecture has pe levels) the executor also runs the mapping's
register-by-register PE model (:func:`sim.pe.simulate_mapping`: the systolic models or
row stationary, every dataflow) once over the whole layer, as the cost model's plan has
it (the array runs the layer fold by fold whatever the buffer tiles:
:class:`mapper.dataflow.RowStationary`'s docstring; kco alone runs each channel tile the
innermost level feeds it as a pass of its own, :class:`mapper.dataflow.KCO`), and adds
what that model counted:
the array's own accesses to the innermost shared level holding each operand (values its
feeders and preloads read; partial sums it stores, each read back unless it is the
output's first: :meth:`sim.cost.CostModel.array_access`), and each pe level's reads and
writes of the registers of the operands it holds (summed over the PEs:
:func:`sim.cost.pe_access`); elements x the operand's bytes, partial sums at accumulator
precision. ``access`` is then the whole table the cost model prices. Its output and
cycles come back too (``pe``, ``pe_output``), for the bit-exact and cycle checks.
Without it ``access`` has the transfers alone and no pe level rows.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .reference import _operand, conv_nhwc

R_, G_, W_, C_ = 0, 1, 2, 3
_REL = {"input": (R_, G_, C_), "weight": (G_, W_, C_), "output": (R_, G_, W_)}
_DIMS = {R_: ("n", "p", "q"), G_: ("g",), W_: ("w",), C_: ("c",)}
_OPDIMS = {"input": ("n", "p", "q", "g", "c"), "weight": ("g", "w", "c"),
           "output": ("n", "p", "q", "g", "w")}


@dataclass(frozen=True)
class NestExecution:
    """The output (N, K, P, Q), the innermost tiles computed and the bytes moved:
    (level, operand) -> (read, write), DRAM included; the array's accesses and the pe
    levels' only when the PE model ran (``pe``; module doc)."""
    output: np.ndarray
    tiles: int
    access: dict
    top_tile_bytes: dict = None   # operand -> bytes of its largest tile at its first holder
    pe: object = None             # the PE model's PEResult (cycles, register counts), if run
    pe_output: np.ndarray = None  # ... and its output (N, K, P, Q)


def _cdiv(a, b):
    return -(-a // b)


def execute_nest(mapping, arch, x: np.ndarray, w: np.ndarray,
                 pe_model: bool | None = None) -> NestExecution:
    """Run ``mapping`` on ``arch`` with input ``x`` (N, C, H, W) and weights ``w``
    (K, C/G, R, S). The tiling's k tiles must be aligned to groups (a multiple of K/G or
    a divisor of it), as every mapspace tile is. ``pe_model`` (default: ``arch`` has
    ``scope: pe`` levels) also runs the PE model for the pe levels' counts (module doc);
    without it their rows stay (0, 0)."""
    import numba
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        ex = _run(mapping, arch, x, w)
        if pe_model is None:
            pe_model = bool(arch.pe_levels)
        if pe_model:
            return _with_pe(ex, mapping, arch, x, w)
        pe = {lvl.name for lvl in arch.pe_levels}
        return replace(ex, access={k: v for k, v in ex.access.items() if k[0] not in pe})
    finally:
        numba.set_num_threads(threads)


def _with_pe(ex: NestExecution, m, arch, x, w) -> NestExecution:
    """``ex`` with the PE model's run and its counts: the array's accesses added to the
    innermost shared level holding each operand, the registers' in the pe levels' rows."""
    from tilesim.mapper.tiling import operand_bytes

    from ..pe import simulate_mapping
    out, r = simulate_mapping(m, x, w)
    pb = operand_bytes(m.layer, arch)
    access = dict(ex.access)
    for op, (rd, wr) in r.buffer.items():
        b = pb["accumulator" if op == "output" else op]
        key = ([lvl.name for lvl in arch.onchip if op in lvl.holds][-1], op)
        r0, w0 = access[key]
        access[key] = (r0 + int(rd * b), w0 + int(wr * b))
    for lvl in arch.pe_levels:
        for op in lvl.holds:
            b = pb["accumulator" if op == "output" else op]
            rd, wr = r.registers[op]
            access[(lvl.name, op)] = (int(rd * b), int(wr * b))
    return replace(ex, access=access, pe=r, pe_output=out)


def loop_slots(layer, levels):
    """The static schedule's virtual loops of ``levels`` (one :class:`LevelTile` per
    on-chip level, outermost first; k tiles aligned to groups): the extents of the dims
    ``ext`` (n, p, q, g: groups, w: k within a group, c), each level's tile of every dim
    ``tile`` (dim -> one entry per level), and the loop slots, outermost first: (level,
    kind, trips over a full parent block), a ``k`` loop counting as two (groups, then
    channels within one)."""
    G, Cg, Kg = layer.groups, layer.C // layer.groups, layer.K // layer.groups
    ext = {"n": layer.N, "p": layer.P, "q": layer.Q, "g": G, "w": Kg, "c": Cg}
    tile = {d: [] for d in ext}
    for lt in levels:
        k = lt.k_tile
        for d, v in zip("npqgwc", (lt.images, lt.rows, lt.cols, k // Kg if k >= Kg else 1,
                                   Kg if k >= Kg else k, lt.c_tile)):
            tile[d].append(v)
    slots = []
    for l, lt in enumerate(levels, 1):
        for lp in lt.order:
            for kind in {"r": (R_,), "k": (G_, W_), "c": (C_,)}[lp]:
                trips = 1
                for d in _DIMS[kind]:
                    parent = ext[d] if l == 1 else tile[d][l - 2]
                    trips *= _cdiv(parent, tile[d][l - 1])
                slots.append((l, kind, trips))
    return ext, tile, slots


def _run(m, arch, x, w) -> NestExecution:
    layer = m.layer
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    G, Cg, Kg = layer.groups, layer.C // layer.groups, layer.K // layer.groups
    RS = layer.R * layer.S
    pb = arch.precision.bytes
    onchip = arch.onchip
    L = len(onchip)
    levels = m.tiling.levels(L)
    for lt in levels:
        k = lt.k_tile
        if G > 1 and not (k % Kg == 0 or Kg % k == 0):
            raise ValueError(f"k tile {k} is not aligned to the {Kg} channels of a group")
    ext, tile, slots = loop_slots(layer, levels)
    holders = {op: [i for i, lv in enumerate(onchip, 1) if op in lv.holds]
               for op in ("input", "weight", "output")}

    def pi(op, h):   # the slot issuing level h's fills of op (-1: once, at the start)
        p = -1
        for j, (l, kind, trips) in enumerate(slots):
            if l <= h and kind in _REL[op] and trips > 1:
                p = j
        return p
    issue = {(op, h): pi(op, h) for op in holders for h in holders[op]}

    def same_up(op, i):   # holder i of op holds the tile of the holder above it
        a, b = holders[op][i - 1], holders[op][i]
        return i > 0 and all(tile[d][a - 1] == tile[d][b - 1] for d in _OPDIMS[op])

    xl = _operand(x.transpose(0, 2, 3, 1)).reshape(layer.N, layer.H, layer.W, G, Cg)
    wl = _operand(w.transpose(2, 3, 1, 0))                  # R, S, Cg, K
    dram_out = np.zeros((layer.N, layer.P, layer.Q, layer.K), dtype=xl.dtype)
    done_c = np.zeros(dram_out.shape, dtype=np.int64)         # channels accumulated
    seen = {h: np.zeros(dram_out.shape, dtype=bool) for h in holders["output"]}
    moved = {(lv.name, op): [0, 0] for lv in arch.memory for op in lv.holds}
    dram = arch.dram.name
    name = {h: onchip[h - 1].name for h in range(1, L + 1)}

    def count(lvl, op, r=0, wr=0):
        a = moved[(lvl, op)]
        a[0] += r
        a[1] += wr

    def window(o0, o1, stride, pad, k, dil, size):
        lo = o0 * stride - pad
        hi = (o1 - 1) * stride - pad + (k - 1) * dil + 1
        clo, chi = max(lo, 0), min(hi, size)
        return clo, max(chi, clo)

    def krange(b):
        (g0, g1), (w0, w1) = b["g"], b["w"]
        return (g0 * Kg + w0, g0 * Kg + w1) if (w0, w1) != (0, Kg) else (g0 * Kg, g1 * Kg)

    buf = {}       # (op, h) -> (origin tuple, array)
    biggest = {"input": 0, "weight": 0, "output": 0}

    def take(op, h, i, sl):   # the block ``sl`` (absolute) of the buffer above, or DRAM
        if i == 0:
            src, org = {"input": xl, "weight": wl}[op], (0,) * 5
        else:
            org, src = buf[(op, holders[op][i - 1])]
        idx = []
        for (a, b), o, n in zip(sl, org, src.shape):
            if not (o <= a and b - o <= n):
                raise AssertionError(f"{op} tile at level {h} is not inside the level above")
            idx.append(slice(a - o, b - o))
        return src[tuple(idx)].copy()

    def fill(op, h, i, b):
        if op == "input":
            hlo, hhi = window(*b["p"], sh, ph, layer.R, dh, layer.H)
            wlo, whi = window(*b["q"], sw, pw, layer.S, dw, layer.W)
            sl = (b["n"], (hlo, hhi), (wlo, whi), b["g"], b["c"])
            e = lambda d: b[d][1] - b[d][0]  # noqa: E731
            nbytes = (e("n") * (hhi - hlo) * (whi - wlo) * e("g") * e("c") * pb["input"])
        else:
            k0, k1 = krange(b)
            sl = ((0, layer.R), (0, layer.S), b["c"], (k0, k1))
            nbytes = (k1 - k0) * (b["c"][1] - b["c"][0]) * RS * pb["weight"]
        buf[(op, h)] = (tuple(a for a, _ in sl), take(op, h, i, sl))
        if i == 0:
            biggest[op] = max(biggest[op], nbytes)
        count(name[h], op, 0, nbytes)
        if i == 0:
            count(dram, op, nbytes, 0)
        elif not same_up(op, i):
            count(name[holders[op][i - 1]], op, nbytes, 0)

    out_open = {}  # h -> (block key (n, p, q, k ranges), array)
    Ho = holders["output"]

    def group_top(i):   # the outermost holder index of holder i's pass-through group
        while i > 0 and same_up("output", i):
            i -= 1
        return i

    def drain(i):
        h = Ho[i]
        if h not in out_open:
            return
        key, acc = out_open.pop(h)
        reg = tuple(slice(a, b) for a, b in key)
        top = group_top(i)
        if i > top:   # a pass-through member: the group's top holds the very same array
            return
        complete = done_c[reg] == Cg
        nbytes = int(complete.sum()) * pb["output"] + int((~complete).sum()) * pb["accumulator"]
        for j in range(top, _group_end(i) + 1):
            count(name[Ho[j]], "output", nbytes, 0)
        if top == 0:
            dram_out[reg] = acc
            count(dram, "output", 0, nbytes)
        else:
            pkey, parr = out_open[Ho[top - 1]]
            psl = tuple(slice(a - pa, b - pa) for (a, b), (pa, _) in zip(key, pkey))
            parr[psl] = acc
            count(name[Ho[top - 1]], "output", 0, nbytes)

    def _group_end(i):
        j = i
        while j + 1 < len(Ho) and same_up("output", j + 1):
            j += 1
        return j

    def open_(i, b):
        h = Ho[i]
        key = (b["n"], b["p"], b["q"], krange(b))
        reg = tuple(slice(a, c) for a, c in key)
        top = group_top(i)
        if i > top:   # pass-through: the same tile as the parent just opened
            out_open[h] = (key, out_open[Ho[i - 1]][1])
            return
        if top == 0:
            acc = dram_out[reg].copy()
        else:
            pkey, parr = out_open[Ho[top - 1]]
            acc = parr[tuple(slice(a - pa, c - pa) for (a, c), (pa, _) in zip(key, pkey))].copy()
        if top == 0:
            biggest["output"] = max(biggest["output"], acc.size * pb["accumulator"])
        again = int(seen[h][reg].sum())
        seen[h][reg] = True
        nbytes = again * pb["accumulator"]
        for j in range(top, _group_end(i) + 1):
            count(name[Ho[j]], "output", 0, nbytes)
        count(dram if top == 0 else name[Ho[top - 1]], "output", nbytes, 0)
        out_open[h] = (key, acc)

    last = {}
    n_tiles = 0
    cur = {d: (0, ext[d]) for d in ext}

    def body(path):
        nonlocal n_tiles
        n_tiles += 1
        b = {d: cur[d] for d in cur}
        keys = {k: path[:p + 1] for k, p in issue.items()}
        changed = {k for k in keys if last.get(k) != keys[k]}
        # outputs: drain the changed levels innermost first, then open outermost first
        ch = [i for i, h in enumerate(Ho) if ("output", h) in changed]
        for i in sorted(ch, reverse=True):
            drain(i)
        for i in ch:
            open_(i, blocks_at(Ho[i]))
        for op in ("input", "weight"):
            for i, h in enumerate(holders[op]):
                if (op, h) in changed:
                    fill(op, h, i, blocks_at(h))
        last.update(keys)
        compute(b)

    block_stack = []   # per level, the blocks of each dim after that level's loops

    def blocks_at(h):
        return block_stack[h - 1]

    def compute(b):
        hi, hw, ho = holders["input"][-1], holders["weight"][-1], Ho[-1]
        (xo, xb), (wo, wb) = buf[("input", hi)], buf[("weight", hw)]
        okey, acc = out_open[ho]
        hlo, hhi = window(*b["p"], sh, ph, layer.R, dh, layer.H)
        wlo, whi = window(*b["q"], sw, pw, layer.S, dw, layer.W)
        oh = b["p"][0] * sh - ph - hlo
        ow = b["q"][0] * sw - pw - wlo
        k0, k1 = krange(b)
        c0, c1 = b["c"]
        for g in range(*b["g"]):
            a0, a1 = max(k0, g * Kg), min(k1, (g + 1) * Kg)
            xt = np.ascontiguousarray(xb[b["n"][0] - xo[0]:b["n"][1] - xo[0], hlo - xo[1]:hhi - xo[1],
                                         wlo - xo[2]:whi - xo[2], g - xo[3], c0 - xo[4]:c1 - xo[4]])
            wt = np.ascontiguousarray(wb[:, :, c0 - wo[2]:c1 - wo[2], a0 - wo[3]:a1 - wo[3]])
            part = np.zeros((b["n"][1] - b["n"][0], b["p"][1] - b["p"][0],
                             b["q"][1] - b["q"][0], a1 - a0), dtype=acc.dtype)
            conv_nhwc(xt, wt, part, sh, sw, oh, ow, dh, dw, 1, max(1, c1 - c0))
            o = [okey[0][0], okey[1][0], okey[2][0], okey[3][0]]
            acc[b["n"][0] - o[0]:b["n"][1] - o[0], b["p"][0] - o[1]:b["p"][1] - o[1],
                b["q"][0] - o[2]:b["q"][1] - o[2], a0 - o[3]:a1 - o[3]] += part
        done_c[b["n"][0]:b["n"][1], b["p"][0]:b["p"][1], b["q"][0]:b["q"][1], k0:k1] += c1 - c0

    def walk(si, path):
        if si == len(slots):
            body(path)
            return
        l, kind, _ = slots[si]
        if si % 4 == 0:   # a new level starts: remember the blocks of the level above
            del block_stack[l - 1:]
        dims = _DIMS[kind]
        saved = {d: cur[d] for d in dims}
        ranges = []
        for d in dims:
            a, b = cur[d]
            t = tile[d][l - 1]
            ranges.append([(s, min(s + t, b)) for s in range(a, b, t)])
        for j, combo in enumerate(_product(ranges)):
            for d, rg in zip(dims, combo):
                cur[d] = rg
            if si % 4 == 3:
                block_stack[l - 1:] = [dict(cur)]
            walk(si + 1, path + (j,))
        for d in dims:
            cur[d] = saved[d]

    walk(0, ())
    for i in sorted(range(len(Ho)), reverse=True):
        drain(i)
    out = np.ascontiguousarray(dram_out.transpose(0, 3, 1, 2))
    return NestExecution(output=out, tiles=n_tiles,
                         access={k: (v[0], v[1]) for k, v in moved.items()},
                         top_tile_bytes=biggest)


def _product(lists):
    if not lists:
        yield ()
        return
    for a in lists[0]:
        for rest in _product(lists[1:]):
            yield (a,) + rest
