"""Tiling of a MAC layer at every on-chip level: candidate tiles, capacity per level, and
every transfer between levels each tiling implies, scored for many candidates at once
with numpy.

**The loop nest.** Each on-chip level ``l`` (``arch.memory`` order, outermost first) has
a tile (images x rows x cols output block, ``k`` output channels, ``c`` input channels
of a group), nested in the tile of level ``l - 1`` (level 0: the whole layer), and an
order of its three loops over those sub-tiles inside the parent tile: ``r`` (output
blocks), ``k`` (output-channel blocks), ``c`` (input-channel blocks). The concatenated
nest is level 1's loops, then level 2's, ...; the innermost tile is what the array
computes. A ``k`` loop counts as two, groups then channels within a group (``k`` tiles
are aligned: a multiple of K/groups or a divisor of it), so a grouped layer's input
tile, which depends on the groups but not on the channels within one, is shared by the
k blocks of one group. Inputs depend on (r, groups, c), weights on (groups, k within a
group, c) = (k, c), outputs on (r, k).

**Fills (static schedule).** An operand held at level ``h`` is filled from the next
outer level holding it (DRAM at the top). Over the loops of levels 1..h, it is
re-filled once per iteration of every loop it does not depend on that sits outside the
innermost loop it does depend on with more than one trip; the tile stays while only
loops inside that one turn. The DMA program is the loop nest itself, so "more than one
trip" is judged on the loop's trip count over a *full* parent block
(ceil(parent tile / tile)); in the parent's last, partial block the same loop may turn
once, and the fill is still issued (a static schedule does not look at the data).

**Fill bytes factorise per dim.** The iterations of the loops at or outside that
innermost relevant loop enumerate, per dim, a set of block paths, and the nest over
the dims is a product (a loop's trips depend only on the outer loops of its own dim).
So ``bytes = element bytes x prod over dims of (sum over the counted blocks of that dim
of the tile's footprint in it)``. For a dim the operand depends on, every level-h block
is counted once (its loops with more than one trip are all at or outside the innermost
one), and the footprint sums are the extent (N, C, K...) except for the input halo: rows
``sum over level-h row blocks of min(H, (rows - 1) * stride + (R - 1) * dilation + 1)``,
likewise columns, less the rows (columns) of padding the windows of the blocks at the
input's edges reach into (:func:`_edge_excess`): padding is never fetched, it is
inserted on chip (since 0.8.0; before, edge tiles' padded rows were charged as fetched,
as SCALE-Sim does with its pre-padded input maps). For the dim it does not depend on
(k within a group for inputs, the output blocks for weights, c for outputs), the factor
is the number of blocks of that dim at the deepest level whose loop over it sits at or
outside the innermost relevant loop (1 when none). Hence
``input = N C rows_sum cols_sum x blocks(k in group)``, ``weight = weights x blocks(r)``,
``output visits = outputs x blocks(c)``; with one level this is the single-tiling
refetch rule of before.

**Between levels.** The DRAM reads of an operand are its outermost holder's fills;
every holder is written by its own fills, and read by the fills of the next inner
holder, except when that one holds the very same tile (equal extents in every dim the
operand depends on: the same transfer fills both as it passes, the one-tiling
convention, so a tiling with the same tile everywhere costs exactly what it did). The
innermost holder feeds the array (``sim.cost.CostModel.array_access``).

**Outputs.** Partial sums stay in the innermost level holding outputs until their
reduction completes. Each visit of a level's output tile ends in a drain to the next
outer output level holding a different tile (DRAM at the top; the levels in between
hold the same tile and are read by it): ``outputs x output bytes`` once (the final
values) plus ``(visits - outputs) x accumulator bytes`` of partial sums, which are read
back by as many reloads. A level that receives partial sums holds its tile at
accumulator precision; the innermost output level always does, any other at output
precision.

**Capacity** is checked per level with that level's own tiles of the operands it holds
(two of each when double-buffered).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tilesim.arch import Architecture
from tilesim.workloads import MacLayer

from . import sparse
from .actual import DATA_DEPENDENT
from .dataflow import DATAFLOWS
from .errors import MappingError
from .mapping import LOOPS, NO_RESIDENCY, ORDERS, LevelTile, Residency, Tiling, Traffic


def _pow2_upto(n: int) -> list[int]:
    out, v = [], 1
    while v < n:
        out.append(v)
        v *= 2
    return out + [n]


def _cdiv(a, b):
    return -(-a // b)


def _trunc(a):
    a = np.asarray(a)
    return a if a.dtype.kind in "iu" else np.trunc(a).astype(np.int64)


def _rows_in(pt, layer: MacLayer):
    return np.minimum(layer.H, (pt - 1) * layer.stride[0] + (layer.R - 1) * layer.dilation[0] + 1)


def _cols_in(qt, layer: MacLayer):
    return np.minimum(layer.W, (qt - 1) * layer.stride[1] + (layer.S - 1) * layer.dilation[1] + 1)


def _edge_excess(P: int, tiles: list, size: int, stride: int, pad: int, k: int, dil: int):
    """Per level (one array per entry of ``tiles``, the nested tiles of an output dim of
    ``P``), the rows of padding the blocks' windows reach into: over the level's blocks
    ``[p0, p1)``, the sum of ``min(size, (p1 - p0 - 1) stride + (k - 1) dil + 1)`` (the
    span charged per block) less the rows of the input ``[0, size)`` the window really
    covers. Only blocks holding a row whose window starts in the top padding
    (``p < ceil(pad / stride)``) or ends past the input can have any; each is found
    from its first such row."""
    top = min(P, -(-pad // stride)) if pad > 0 else 0
    bot = max(top, min(P, (size + pad - (k - 1) * dil - 1) // stride + 1))
    rows = list(range(top)) + list(range(bot, P))
    out = []
    starts = {p: (np.zeros_like(tiles[0]), np.full_like(tiles[0], P)) for p in rows}
    for t in tiles:
        excess = np.zeros_like(t)
        for p in rows:
            s0, e0 = starts[p]
            s = s0 + (p - s0) // t * t
            e = np.minimum(s + t, e0)
            starts[p] = (s, e)
            first = (s == p) if p < top else ((np.maximum(s, bot) == p) & (s >= top))
            span = np.minimum(size, (e - s - 1) * stride + (k - 1) * dil + 1)
            real = (np.minimum(size, (e - 1) * stride - pad + (k - 1) * dil + 1)
                    - np.maximum(0, s * stride - pad))
            excess = excess + np.where(first, span - real, 0)
        out.append(excess)
    return out


def _span_sum(total, tile, span):
    """Sum of ``span(extent)`` over the blocks of ``total`` cut into ``tile``-sized blocks."""
    full, rem = total // tile, total % tile
    return full * span(tile) + np.where(rem > 0, span(np.maximum(rem, 1)), 0)


def grid_axes(layer: MacLayer, arch: Architecture, balanced: int = 0):
    """The tile-size axes of the candidate grid: output blocks ``(images, rows, cols)``,
    output-channel tiles and input-channel tiles. Powers of two, multiples of the
    array's columns and the full extents; ``balanced`` > 0 adds, for every trip count
    t <= ``balanced``, the smallest tile that needs t trips (ceil(extent / t)): for a
    given trip count it uses the least buffer, so it is the principled uneven tile."""
    P, Q, N = layer.P, layer.Q, layer.N
    a = arch.array

    def bal(n):
        return {-(-n // t) for t in range(1, min(balanced, n) + 1)}
    qts = sorted(set(_pow2_upto(Q)) | bal(Q))
    pts = sorted(set(_pow2_upto(P)) | bal(P))
    nbs = sorted(set(_pow2_upto(N)) | bal(N))
    rsel = ([(1, 1, qt) for qt in qts if qt < Q] +
            [(1, pt, Q) for pt in pts if pt < P] + [(nb, P, Q) for nb in nbs])
    kts = sorted(set(_pow2_upto(layer.K)) | {a.cols * 2 ** i for i in range(16)
                                            if a.cols * 2 ** i < layer.K} | bal(layer.K))
    g = layer.groups
    cg = layer.C // g   # a grouped layer's reduction splits too (channels of each group)
    cts = sorted(set(_pow2_upto(cg)) | bal(cg))
    if g > 1:  # output-channel tiles aligned to groups, so a tile's input channels are exact
        kg = layer.K // g
        kts = sorted({kt for kt in kts if kt % kg == 0 or kg % kt == 0} | {kg})
    rsel, cts = sparse.aligned_tiles(layer, arch, rsel, cts)
    return rsel, kts, cts


def fills_array(layer: MacLayer, arch: Architecture, dataflow: str, nb, pt, qt, kt, ct):
    """Mask of tiles that fill the array along both of its spatial dims (or cover the
    whole dim), so that buffer tiles never starve a fold (only along the axes in the
    dataflow's ``fill``: rs does not ask it of its output rows)."""
    a = arch.array
    g, M, Ng, Kr = layer.gemm
    # (tile extent, full extent) of each GEMM dim; output-channel tiles are aligned to
    # groups, so a tile of kt channels spans max(1, kt // Ng) groups
    extent = {"G": (np.maximum(1, kt // Ng), g), "B": (nb, layer.N), "P": (pt, layer.P),
              "Q": (qt, layer.Q), "N": (np.minimum(kt, Ng), Ng),
              "C": (ct, layer.C // g),
              "R": (layer.R, layer.R), "S": (layer.S, layer.S)}
    df = DATAFLOWS[dataflow]
    keep = np.ones(len(nb), dtype=bool)
    for ax, side in (("rows", a.rows), ("cols", a.cols)):
        if ax not in df.fill:
            continue
        dims = df.axis(ax)
        e, full = 1, 1
        for d in dims:
            e, full = e * extent[d][0], full * extent[d][1]
        keep &= e >= min(side, full)
    return keep


def _shared_levels(arch: Architecture):
    """(memory index, level) of the shared on-chip levels: the ones that hold tiles
    (``scope: pe`` levels hold one value per PE, below the array's unrolling)."""
    return [(i, m) for i, m in enumerate(arch.memory) if i and m.scope == "shared"]


def _innermost_out(arch: Architecture) -> int:
    """Memory index of the innermost shared level holding outputs (it keeps partial
    sums at accumulator precision)."""
    return max(i for i, m in _shared_levels(arch) if "output" in m.holds)


ORDER_TABLE = np.array(ORDERS, dtype=np.int64)  # (6, 3): loop indices, outermost first


@dataclass(frozen=True)
class TileEval:
    """Tilings scored by :func:`score_points`: parallel numpy arrays, one entry per tiling.

    Tile sizes (``images``, ``rows``, ``cols``, ``k_tile``, ``c_tile``), ``order`` (an index
    into :data:`ORDERS`), trip counts ``Tr``, ``Tk``, ``Tc``; ``usage`` (on-chip level name
    -> bytes occupied, x2 when double-buffered) and ``fits`` (every level holds its
    tiles); ``tile_bytes`` (operand -> bytes of one tile, output at accumulator
    precision); DRAM traffic in bytes: ``read_input``, ``read_weight``, ``read_psum``,
    ``write_output``, and the unhidable ``first_load`` (first input + weight tile) and
    ``last_store`` (last output tile)."""
    images: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    k_tile: np.ndarray
    c_tile: np.ndarray
    order: np.ndarray
    Tr: np.ndarray
    Tk: np.ndarray
    Tc: np.ndarray
    fits: np.ndarray
    usage: dict
    tile_bytes: dict
    read_input: np.ndarray
    read_weight: np.ndarray
    read_psum: np.ndarray
    write_output: np.ndarray
    first_load: np.ndarray
    last_store: np.ndarray
    inner: tuple = ()      # per deeper on-chip level (nb, pt, qt, kt, ct, order) arrays
    transfers: dict = None  # (level, operand) -> (read, write) bytes between levels
    # bytes of the first weight tile loaded during the previous layer (cross-layer
    # prefetch): out of read_weight and of the first step's loads, not of tile_bytes
    early: np.ndarray = 0
    tail: int = 0   # bytes of the next layer's first weight tile loaded in the last step

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_tiles(self) -> np.ndarray:
        return self.Tr * self.Tk * self.Tc

    @property
    def read(self) -> np.ndarray:
        """Every DRAM read, bytes."""
        return self.read_input + self.read_weight + self.read_psum

    @property
    def traffic(self) -> np.ndarray:
        """Every DRAM read and write, bytes."""
        return self.read + self.write_output

    def tiling(self, i: int) -> Tiling:
        """The :class:`Tiling` of entry ``i``."""
        inner = tuple(LevelTile(*(int(v[i]) for v in lv[:5]),
                                order=tuple(LOOPS[j] for j in ORDERS[int(lv[5][i])]))
                      for lv in self.inner)
        sizes = (int(self.images[i]), int(self.rows[i]), int(self.cols[i]),
                 int(self.k_tile[i]), int(self.c_tile[i]))
        if all(t.sizes == sizes for t in inner):
            inner = ()
        return Tiling(inner=inner,
            images=int(self.images[i]), rows=int(self.rows[i]), cols=int(self.cols[i]),
            k_tile=int(self.k_tile[i]), c_tile=int(self.c_tile[i]),
            order=tuple(LOOPS[j] for j in ORDERS[self.order[i]]),
            trips=(int(self.Tr[i]), int(self.Tk[i]), int(self.Tc[i])),
            tile_bytes={k: int(v[i]) for k, v in self.tile_bytes.items()},
            level_bytes={k: int(v[i]) for k, v in self.usage.items()})

    def traffic_of(self, i: int) -> Traffic:
        """The :class:`Traffic` of entry ``i``."""
        return Traffic(read_input=int(self.read_input[i]), read_weight=int(self.read_weight[i]),
                       read_psum=int(self.read_psum[i]),
                       write_output=int(self.write_output[i]),
                       first_load=int(self.first_load[i]), last_store=int(self.last_store[i]))


R_, G_, W_, C_ = 0, 1, 2, 3   # virtual loop kinds: output block, group, k within a group, c
#: operand -> (kinds it depends on, the one kind it does not)
_REL = {"input": ((R_, G_, C_), W_), "weight": ((G_, W_, C_), R_), "output": ((R_, G_, W_), C_)}


def _level_tables():
    """Per operand, indexed by order * 16 + mask (bit i: loop kind i has more than one
    trip at the level): whether one of the level's loops the operand depends on has more
    than one trip, and whether the level's loop over its irrelevant dim sits outside the
    innermost such loop."""
    hit = {op: np.zeros(96, dtype=bool) for op in _REL}
    before = {op: np.zeros(96, dtype=bool) for op in _REL}
    for o, perm in enumerate(ORDERS):
        seq = [k for lp in perm for k in {0: (R_,), 1: (G_, W_), 2: (C_,)}[lp]]
        for mask in range(16):
            for op, (rel, irr) in _REL.items():
                hits = [j for j, k in enumerate(seq) if k in rel and mask >> k & 1]
                if hits:
                    hit[op][o * 16 + mask] = True
                    before[op][o * 16 + mask] = seq.index(irr) < hits[-1]
    return hit, before


_HIT, _BEFORE = _level_tables()


def _levels(arch: Architecture, nb, pt, qt, kt, ct, order, inner):
    """Per on-chip level (outermost first) the tuple (nb, pt, qt, kt, ct, order)."""
    n = len(arch.onchip)
    top = tuple(np.asarray(v) for v in (nb, pt, qt, kt, ct, order))
    if not inner:
        return [top] * n
    if len(inner) != n - 1:
        raise ValueError(f"{len(inner) + 1} tiling levels for {n} on-chip levels")
    return [top] + [tuple(np.asarray(v) for v in lv) for lv in inner]


def _partition(extent: int, tiles: list):
    """Hierarchical blocks of a dim of ``extent`` cut by nested ``tiles`` (one array per
    level): per level, (extent, count) pairs of the blocks (the full blocks merged into
    one pair, plus each parent pair's remainder), and the number of blocks."""
    parts = [[(np.full_like(tiles[0], extent), np.ones_like(tiles[0]))]]
    for t in tiles:
        dm = [(np.divmod(e, t), c) for e, c in parts[-1]]   # one division per pair
        full = sum(c * q for (q, _), c in dm)
        parts.append([(t, full)] + [(r, c * (r > 0)) for (_, r), c in dm])
    counts = [sum(c for _, c in lv) for lv in parts]
    return parts, counts


def _dedup(cols: list):
    """(a representative entry of each distinct row, each entry's row number) of the
    rows of the non-negative integer ``cols``, or None when their values span too wide
    a domain to table (the caller then works on every entry)."""
    n = len(cols[0])
    key, dom = np.zeros(n, dtype=np.int64), 1
    for x in cols:
        if x.dtype.kind not in "iu" or not n or x.min() < 0 or x.max() >= 1 << 22:
            return None
        present = np.zeros(int(x.max()) + 1, dtype=bool)
        present[x] = True
        rank = np.cumsum(present) - 1
        k = int(rank[-1]) + 1
        dom *= k
        if dom > 1 << 22:
            return None
        key = key * k + rank[x]
    present = np.zeros(dom, dtype=bool)
    present[key] = True
    row = (np.cumsum(present) - 1)[key]
    first = np.empty(int(row.max()) + 1, dtype=np.int64)
    first[row] = np.arange(n)
    return first, row


def _dim_tables(extent: int, tiles: list, spans=()):
    """Per level of a dim cut by nested ``tiles`` (one array per level): the number of
    blocks (level 0: the whole extent), and per function in ``spans`` the sum of
    ``span(block extent)`` over the blocks of each level 1... (:func:`_partition`).
    Computed once per distinct combination of tiles (a batch repeats few) and gathered
    back: the same integers as on every entry."""
    tiles = [np.asarray(t) for t in tiles]
    d = _dedup(tiles) if len(tiles[0]) > 64 else None
    if d is not None:
        tiles = [t[d[0]] for t in tiles]
    parts, counts = _partition(extent, tiles)
    sums = [[sum(c * np.where(c > 0, span(np.maximum(e, 1)), 0) for e, c in parts[lvl])
             for lvl in range(1, len(tiles) + 1)] for span in spans]
    if d is not None:
        row = d[1]
        counts = [c[row] for c in counts]
        sums = [[v[row] for v in s] for s in sums]
    return counts, sums


def operand_bytes(layer: MacLayer, arch: Architecture) -> dict:
    """Bytes per element of the layer's operands: the architecture's precisions, except
    that a w operand which is an activation (attention's MatMul:
    ``layer.weights_are_activations``) is stored at the activation (input) precision."""
    pb = dict(arch.precision.bytes)
    if layer.weights_are_activations:
        pb["weight"] = pb["input"]
    return pb


def score_points(layer: MacLayer, arch: Architecture, nb, pt, qt, kt, ct, order,
                 inner=(), res: Residency = NO_RESIDENCY, data=None) -> TileEval:
    """Tile sizes, trips, per-level usage, capacity fit, DRAM traffic and every
    inter-level transfer of arbitrary tilings given as parallel arrays (``order`` indexes
    :data:`ORDERS`); ``inner``: per deeper on-chip level a tuple (nb, pt, qt, kt, ct,
    order) of arrays nested in the level before (empty: every level holds level 1's).
    ``res``: where the layer's activations live (:class:`mapper.mapping.Residency`): a
    resident input has no DRAM fills (its outermost holder's tiles are views of the
    resident tensor: no fill writes, no room, no DRAM tile to wait for); a resident
    output drains its final values into the resident tensor, not DRAM (partial-sum
    spills still go out and come back); resident weights likewise have no DRAM fills;
    ``res.prefetched`` bytes of the first weight tile arrived during the previous layer
    (``early``: left out of ``read_weight``, and of the first step's loads in the cost
    model's bounds, which time the layer; the transfers, which count bytes and energy,
    keep them); reserved bytes are not the tiles' to use
    (:meth:`mapper.mapping.Residency.free`). ``data``: the operands' values
    (:class:`mapper.actual.Tensors`; one tiling only): transfers in a data-dependent
    format are counted on them, tile by tile, instead of at the layer's densities."""
    pb = operand_bytes(layer, arch)
    ib, wb, accb, ob = pb["input"], pb["weight"], pb["accumulator"], pb["output"]
    # compressed formats (mapper/sparse.py): None keeps every count dense, untouched
    rat = sparse.ratios(layer, arch, pb)
    pricer = None
    if data is not None and rat is not None:
        if len(np.atleast_1d(nb)) != 1:
            raise ValueError("data prices one tiling at a time")
        from .actual import Pricer
        pricer = Pricer(layer, data, {op: pb[op] * 8 for op in ("input", "weight", "output")})
    g, Cg, Kg = layer.groups, layer.C // layer.groups, layer.K // layer.groups
    N, P, Q, K = layer.N, layer.P, layer.Q, layer.K
    RS = layer.R * layer.S
    onchip = arch.onchip
    L = len(onchip)
    lv = _levels(arch, nb, pt, qt, kt, ct, order, inner)
    same_all = not inner
    n = len(lv[0][0])

    # sub-dims: images n, rows p, cols q, groups g, k within a group w, channels c
    def gw(k):
        big = k >= Kg
        return np.where(big, k // Kg, 1), np.where(big, Kg, k)
    gws = [gw(x[3]) for x in (lv[:1] if same_all else lv)]
    gws = gws * L if same_all else gws
    tile = {"n": [x[0] for x in lv], "p": [x[1] for x in lv], "q": [x[2] for x in lv],
            "g": [x[0] for x in gws], "w": [x[1] for x in gws], "c": [x[4] for x in lv]}
    extent = {"n": N, "p": P, "q": Q, "g": g, "w": Kg, "c": Cg}
    nl = 1 if same_all else L   # distinct levels to compute
    spans = {"p": lambda e: _rows_in(e, layer), "q": lambda e: _cols_in(e, layer)}
    cnt, sums = {}, {}
    for d in tile:   # blocks per level (0 = whole), and the halo sums of rows and cols
        cnt[d], sums[d] = _dim_tables(extent[d], tile[d][:nl], (spans[d],) if d in spans else ())
        if same_all:   # one level's partition serves every level
            cnt[d] = [cnt[d][0]] + [cnt[d][1]] * L
    # the padding the windows of edge blocks reach into is not fetched
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    rows_sum = [None] + [a - b for a, b in zip(sums["p"][0], _edge_excess(
        P, tile["p"][:nl], layer.H, sh, ph, layer.R, dh))]
    cols_sum = [None] + [a - b for a, b in zip(sums["q"][0], _edge_excess(
        Q, tile["q"][:nl], layer.W, sw, pw, layer.S, dw))]
    rows_sum += rows_sum[1:] * (L - nl)
    cols_sum += cols_sum[1:] * (L - nl)

    # virtual loop slots of the concatenated nest (two per loop: k is group, then within)
    def more(d, l):   # the level's loop over d has more than one trip: ceil(prev/t) > 1
        prev = extent[d] if l == 1 else tile[d][l - 2]
        return prev > tile[d][l - 1]
    L_loops = 1 if same_all else L   # same tile everywhere: inner loops all have one trip
    cnt_kind = {R_: [a * b * c for a, b, c in zip(cnt["n"], cnt["p"], cnt["q"])],
                G_: cnt["g"], W_: cnt["w"], C_: cnt["c"]}
    # per operand, the level of the deepest loop over its irrelevant dim sitting at or
    # outside the innermost relevant loop with more than one (full-block) trip, for the
    # loops of levels 1..h (every level has a loop over every dim, so a level with such a
    # relevant loop sets it to that level, or to the level above when the level's own
    # irrelevant loop sits inside that relevant loop)
    deepest = {}
    m = {op: np.zeros(n, dtype=np.int64) for op in _REL}
    for l in range(1, L_loops + 1):
        key = (lv[l - 1][5] * 16 + (more("n", l) | more("p", l) | more("q", l))
               + 2 * more("g", l) + 4 * more("w", l) + 8 * more("c", l))
        for op in _REL:
            hit, before = _HIT[op][key], _BEFORE[op][key]
            m[op] = np.where(hit, np.where(before, l, l - 1), m[op])
            deepest[(op, l)] = m[op]
    for op in _REL:
        for l in range(L_loops + 1, L + 1):
            deepest[(op, l)] = m[op]

    def irrelevant_blocks(op, h):
        """Blocks of the operand's irrelevant dim counted by the loops at or outside the
        innermost relevant loop with more than one (full-block) trip, levels 1..h."""
        irr = _REL[op][1]
        if L_loops == 1:
            return np.where(deepest[(op, h)] == 1, cnt_kind[irr][1], 1)
        return np.choose(deepest[(op, h)], cnt_kind[irr][:L + 1])

    tiles_b = []   # per level: (input bytes, weight bytes, output elements) of one tile
    for l in range(1, nl + 1):
        il, pl, ql, kl, cl = (x for x in lv[l - 1][:5])
        gl = tile["g"][l - 1]
        tiles_b.append((il * _rows_in(pl, layer) * _cols_in(ql, layer) * gl * cl * ib,
                        kl * cl * RS * wb, il * pl * ql * kl))
    tiles_b *= L if same_all else 1
    relevant_dims = {"input": ("n", "p", "q", "g", "c"), "weight": ("g", "w", "c"),
                     "output": ("n", "p", "q", "g", "w")}
    holders = {op: [i for i, m in enumerate(onchip, 1) if op in m.holds]
               for op in ("input", "weight", "output")}
    dram = arch.dram.name
    zero = np.zeros(n, dtype=np.int64)
    moved = {(m.name, op): [zero, zero] for m in arch.memory for op in m.holds}
    level_of = {m.name: m for m in arch.memory}

    def add(name, op, r, w):   # each term truncated to whole bytes (sub-byte precisions)
        a = moved[(name, op)]
        a[0] = a[0] + _trunc(r)
        a[1] = a[1] + _trunc(w)

    def sizes(h):   # nested tile sizes of levels 1..h (mapper.actual.level_tiles)
        return {"n": tile["n"][:h], "p": tile["p"][:h], "q": tile["q"][:h],
                "k": [x[3] for x in lv[:h]], "c": tile["c"][:h]}

    def fmt(name, op, h, x, eps=1e-9):
        """Dense bytes ``x`` of ``op``'s level-h tiles, in level ``name``'s format: at the
        layer's densities, or counted on ``data`` (``eps``: a whole number of bytes that
        a float product puts a hair below stays whole)."""
        if rat is None:
            return x
        if pricer is not None and (name, op) in rat.traffic:
            f = level_of[name].format_of(op)
            if f in DATA_DEPENDENT:
                return pricer.price(f, op, sizes(h), x) + eps
        return x * rat.t(name, op) + eps

    def fin(name, h, x):   # final output values in the level's format (partial sums dense)
        return fmt(name, "output", h, x)

    def same_tile(op, a, b):
        if same_all:
            return np.ones(n, dtype=bool)
        s = np.ones(n, dtype=bool)
        for d in relevant_dims[op]:
            s &= tile[d][a - 1] == tile[d][b - 1]
        return s

    fill = {}
    for op in ("input", "weight"):
        H = holders[op]
        for i, h in enumerate(H):
            if op == "input":
                f = N * layer.C * rows_sum[h] * cols_sum[h] * irrelevant_blocks(op, h) * ib
            else:
                f = layer.weight_elems * irrelevant_blocks(op, h) * wb
            if i == 0 and (res.input if op == "input" else res.weight):   # a resident view
                fill[(op, h)] = f * 0
                continue
            fill[(op, h)] = f
            add(onchip[h - 1].name, op, 0, fmt(onchip[h - 1].name, op, h, f))
            if i == 0:
                add(dram, op, fmt(dram, op, h, f), 0)
            else:   # filled from the holder above, unless it holds the very same tile
                up = onchip[H[i - 1] - 1].name
                add(up, op, np.where(same_tile(op, H[i - 1], h), 0, fmt(up, op, h, f)), 0)
    E = layer.output_elems
    Ho = holders["output"]
    out_prec = {h: np.full(n, ob, dtype=np.float64) for h in Ho}
    out_prec[Ho[-1]][:] = accb
    drains = {}
    for i, h in enumerate(Ho):
        visits = E * irrelevant_blocks("output", h)         # element-visits of level h
        spill = (visits - E) * accb
        final = 0 if i == 0 and res.output else E * ob   # resident: stays in the tensor
        drain, reload = final + spill, spill
        drains[h] = (drain if rat is None else fin(dram, h, final) + spill, reload)
        hname = onchip[h - 1].name
        add(hname, "output", drain if rat is None else fin(hname, h, final) + spill, reload)
        if i == 0:
            add(dram, "output", reload, drains[h][0])
        else:   # drained into the holder above, unless that one holds the same tile
            up = onchip[Ho[i - 1] - 1].name
            same = same_tile("output", Ho[i - 1], h)
            add(up, "output", np.where(same, 0, reload),
                np.where(same, 0, drain if rat is None else fin(up, h, final) + spill))
            out_prec[Ho[i - 1]] = np.where(~same & (visits > E), accb, out_prec[Ho[i - 1]])

    usage, fits = {}, np.ones(n, dtype=bool)
    for l, lvl in enumerate(onchip, 1):
        it, wt, oe = tiles_b[l - 1]
        u = np.zeros(n, dtype=np.float64)
        cr = (lambda op: 1.0) if rat is None else (lambda op: rat.c(lvl.name, op))
        if "input" in lvl.holds and not (res.input and l == holders["input"][0]):
            u += it if rat is None else it * cr("input")
        if "weight" in lvl.holds and not (res.weight and l == holders["weight"][0]):
            u += wt if rat is None else wt * cr("weight")
        if "output" in lvl.holds:
            if res.output and l == holders["output"][0]:   # partial sums only
                u += np.where(out_prec[l] > ob, oe * out_prec[l], 0)
            elif rat is None:
                u += oe * out_prec[l]
            else:   # final values in the level's format, partial sums dense
                u += oe * np.where(out_prec[l] > ob, out_prec[l], ob * cr("output"))
        u *= 2 if lvl.double_buffered else 1
        usage[lvl.name] = u
        fits &= u <= res.free(arch, lvl)

    top = {op: holders[op][0] for op in holders}
    in_tile, w_tile = tiles_b[top["input"] - 1][0], tiles_b[top["weight"] - 1][1]
    if rat is not None:   # the first tiles as DRAM holds them
        in_tile, w_tile = in_tile * rat.t(dram, "input"), w_tile * rat.t(dram, "weight")
    if res.input:   # no input tile comes from DRAM
        in_tile = in_tile * 0
    read_w = fmt(dram, "weight", top["weight"], fill[("weight", top["weight"])], 0)
    if res.weight:
        w_tile = w_tile * 0
    early = np.zeros(n, dtype=np.int64)
    if res.prefetched and not res.weight:   # loaded during the previous layer
        early = np.minimum(w_tile, res.prefetched).astype(np.int64)
        read_w = read_w - early
    out_tile = tiles_b[top["output"] - 1][2]
    nb0, pt0, qt0, kt0, ct0, o0 = lv[0]
    Tr = _cdiv(N, nb0) * _cdiv(P, pt0) * _cdiv(Q, qt0)
    return TileEval(
        images=nb0, rows=pt0, cols=qt0, k_tile=kt0, c_tile=ct0, order=o0,
        Tr=Tr, Tk=_cdiv(K, kt0), Tc=_cdiv(Cg, ct0), fits=fits, usage=usage,
        tile_bytes={"input": in_tile, "weight": w_tile, "output": out_tile * accb},
        read_input=fmt(dram, "input", top["input"], fill[("input", top["input"])], 0),
        read_weight=read_w,
        read_psum=drains[top["output"]][1], write_output=drains[top["output"]][0],
        first_load=in_tile + w_tile,
        last_store=out_tile * (0 if res.output else ob) * (1 if rat is None else rat.t(dram, "output")),
        inner=tuple(lv[1:]) if not same_all else (),
        transfers={k: tuple(v) for k, v in moved.items()}, early=early, tail=res.tail,
    )


def least_traffic(ev: TileEval) -> int:
    """The entry of ``ev`` that fits with the least DRAM traffic; ties go to the smaller
    unhidden first load + last store, then to fewer tiles, then to the first entry
    (deterministic). -1 when none fits."""
    ok = np.flatnonzero(ev.fits)
    if ok.size == 0:
        return -1
    exposed = (ev.first_load + ev.last_store)[ok]
    return int(ok[np.lexsort((ok, ev.n_tiles[ok], exposed, ev.traffic[ok]))[0]])


def raise_no_fit(layer: MacLayer, arch: Architecture, ev: TileEval) -> None:
    """Name the layer, the level, the operand whose tile needs the most of it, and the
    smallest size of that level with which some candidate tiling fits every level."""
    pb = operand_bytes(layer, arch)
    innermost_out = _innermost_out(arch)
    for idx, lvl in enumerate(arch.memory):
        if lvl.name not in ev.usage or (ev.usage[lvl.name] <= lvl.size).any():
            continue
        others = np.ones(len(ev), dtype=bool)
        for j, other in _shared_levels(arch):
            if j != idx:
                others &= ev.usage[other.name] <= other.size
        pool = np.flatnonzero(others) if others.any() else np.arange(len(others))
        best = pool[np.argmin(ev.usage[lvl.name][pool])]
        need = int(ev.usage[lvl.name][best])
        k = 2 if lvl.double_buffered else 1
        acc = pb["accumulator"] if idx == innermost_out else pb["output"]
        tb = ev.tile_bytes
        parts = {"input": tb["input"][best], "weight": tb["weight"][best],
                 "output": tb["output"][best] / pb["accumulator"] * acc}
        parts = {op: int(v) * k for op, v in parts.items() if op in lvl.holds}
        op = max(parts, key=parts.get)
        split = ", ".join(f"{o} {v} B" for o, v in parts.items())
        db = ", double-buffered: two tiles each" if lvl.double_buffered else ""
        raise MappingError(
            f"layer {layer.name!r}: no tile fits buffer {lvl.name!r} (memory[{idx}], "
            f"size {lvl.size} B): the smallest tiling needs {need} B ({split}{db}); "
            f"the {op} tile needs the most",
            source=arch.name,
            fix=f"raise memory[{idx}].size to at least {need} B, or let another "
                f"level hold the {op} operand")
    # each level fits on its own minimum, but no single candidate fits all of them
    raise MappingError(f"layer {layer.name!r}: no tiling fits all on-chip buffers at once",
                       source=arch.name, fix="enlarge the smallest on-chip buffer")


@dataclass(frozen=True)
class Tile:
    """One buffer tile: half-open ranges of images, output rows, output columns, output
    channels and input channels (within a group for grouped layers), plus its loop indices."""
    n: tuple[int, int]
    p: tuple[int, int]
    q: tuple[int, int]
    k: tuple[int, int]
    c: tuple[int, int]
    index: tuple[int, int, int]  # (r, k, c) block indices


def iter_tiles(layer: MacLayer, tiling: Tiling):
    """Yield every tile of ``tiling`` in its loop order (outermost first)."""
    nb, pt, qt = tiling.images, tiling.rows, tiling.cols
    rblocks = [((n, min(n + nb, layer.N)), (p, min(p + pt, layer.P)), (q, min(q + qt, layer.Q)))
               for n in range(0, layer.N, nb) for p in range(0, layer.P, pt)
               for q in range(0, layer.Q, qt)]
    kblocks = [(k, min(k + tiling.k_tile, layer.K)) for k in range(0, layer.K, tiling.k_tile)]
    cg = layer.C // layer.groups
    cblocks = [(c, min(c + tiling.c_tile, cg)) for c in range(0, cg, tiling.c_tile)]
    blocks = {"r": rblocks, "k": kblocks, "c": cblocks}
    o = tiling.order
    for i0 in range(len(blocks[o[0]])):
        for i1 in range(len(blocks[o[1]])):
            for i2 in range(len(blocks[o[2]])):
                idx = dict(zip(o, (i0, i1, i2)))
                (n, p, q), k, c = rblocks[idx["r"]], kblocks[idx["k"]], cblocks[idx["c"]]
                yield Tile(n=n, p=p, q=q, k=k, c=c, index=(idx["r"], idx["k"], idx["c"]))
