"""Buffer tiling of a MAC layer: candidate tiles, capacity check and the DRAM traffic
each implies, scored for many candidates at once with numpy.

The buffer-level loop nest has three loops over tiles: ``r`` (output-row blocks:
``images`` images x ``rows`` output rows x ``cols`` output columns), ``k`` (output-channel
blocks) and ``c``
(input-channel blocks of a group). An operand is re-fetched from DRAM once per
iteration of every loop it does not depend on that sits *outside* the innermost loop
it does depend on (counting only loops with more than one trip): the tile stays on
chip while only irrelevant loops inside it turn. Inputs depend on (r, c) (on (r, k) for
grouped layers, where an output-channel block selects its groups' inputs), weights on
(k, c), outputs on (r, k); an output re-visited by an outer ``c`` loop spills its partial
sums to DRAM at accumulator precision and reads them back.

Input tiles include their halo: ``rows`` output rows need
min(H, (rows - 1) * stride + (R - 1) * dilation + 1) input rows, likewise for columns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tilesim.arch import Architecture
from tilesim.workloads import MacLayer

from .dataflow import DATAFLOWS
from .errors import MappingError
from .mapping import LOOPS, ORDERS, Tiling, Traffic


def _pow2_upto(n: int) -> list[int]:
    out, v = [], 1
    while v < n:
        out.append(v)
        v *= 2
    return out + [n]


def _cdiv(a, b):
    return -(-a // b)


def _rows_in(pt, layer: MacLayer):
    return np.minimum(layer.H, (pt - 1) * layer.stride[0] + (layer.R - 1) * layer.dilation[0] + 1)


def _cols_in(qt, layer: MacLayer):
    return np.minimum(layer.W, (qt - 1) * layer.stride[1] + (layer.S - 1) * layer.dilation[1] + 1)


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
    cts = sorted(set(_pow2_upto(layer.C)) | bal(layer.C)) if g == 1 else [layer.C // g]
    if g > 1:  # output-channel tiles aligned to groups, so a tile's input channels are exact
        kg = layer.K // g
        kts = sorted({kt for kt in kts if kt % kg == 0 or kg % kt == 0} | {kg})
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
              "C": (ct if g == 1 else layer.C // g, layer.C // g),
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
        return Tiling(
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


def operand_bytes(layer: MacLayer, arch: Architecture) -> dict:
    """Bytes per element of the layer's operands: the architecture's precisions, except
    that a w operand which is an activation (attention's MatMul:
    ``layer.weights_are_activations``) is stored at the activation (input) precision."""
    pb = dict(arch.precision.bytes)
    if layer.weights_are_activations:
        pb["weight"] = pb["input"]
    return pb


def score_points(layer: MacLayer, arch: Architecture, nb, pt, qt, kt, ct, order) -> TileEval:
    """Tile sizes, trips, per-level usage, capacity fit and DRAM traffic of arbitrary
    tilings given as parallel arrays (``order`` indexes :data:`ORDERS`)."""
    pb = operand_bytes(layer, arch)
    ib, wb, accb, ob = pb["input"], pb["weight"], pb["accumulator"], pb["output"]
    g, Cg, Kg = layer.groups, layer.C // layer.groups, layer.K // layer.groups
    N, P, Q, K = layer.N, layer.P, layer.Q, layer.K
    RS = layer.R * layer.S

    Tr = _cdiv(N, nb) * _cdiv(P, pt) * _cdiv(Q, qt)
    Tk = _cdiv(K, kt)
    Tc = _cdiv(Cg, ct)
    rows_sum = _span_sum(P, pt, lambda e: _rows_in(e, layer))
    cols_sum = _span_sum(Q, qt, lambda e: _cols_in(e, layer))
    if g == 1:
        ci_tile = ct
        ch_total = np.full_like(kt, layer.C)
        in_rel = (0, 2)
    else:
        ci_tile = np.minimum(layer.C, _cdiv(kt, Kg) * Cg)
        kt_last = K - (Tk - 1) * kt
        ch_total = np.minimum(layer.C * Tk, ((Tk - 1) * _cdiv(kt, Kg) + _cdiv(kt_last, Kg)) * Cg)
        in_rel = (0, 1)
    in_pass = N * rows_sum * cols_sum * ch_total * ib         # bytes of one full pass over the input
    w_pass = layer.weight_elems * wb
    out_elems = layer.output_elems

    in_tile = nb * _rows_in(pt, layer) * _cols_in(qt, layer) * ci_tile * ib
    w_tile = kt * (ct if g == 1 else Cg) * RS * wb
    out_tile = nb * pt * qt * kt                        # elements

    # capacity of every on-chip level
    innermost_out = _innermost_out(arch)
    usage, fits = {}, np.ones(len(nb), dtype=bool)
    for i, lvl in _shared_levels(arch):
        u = np.zeros(len(nb), dtype=np.float64)
        if "input" in lvl.holds:
            u += in_tile
        if "weight" in lvl.holds:
            u += w_tile
        if "output" in lvl.holds:
            u += out_tile * (accb if i == innermost_out else ob)
        u *= 2 if lvl.double_buffered else 1
        usage[lvl.name] = u
        fits &= u <= lvl.size

    n = len(nb)
    trips = np.stack([Tr, Tk, Tc])                      # (3, n)
    loops = ORDER_TABLE[np.asarray(order)]              # (n, 3) outermost first
    cols = np.arange(n)
    # per loop position (outermost first): which loop sits there and its trip count
    at = [(loops[:, j], trips[loops[:, j], cols]) for j in range(3)]

    def refetch(rel):
        # product of the irrelevant trips outside the innermost relevant loop with > 1 trip
        f = np.ones(n, dtype=np.int64)
        acc = np.ones(n, dtype=np.int64)
        relevant = np.zeros(3, dtype=bool)
        relevant[list(rel)] = True
        for lp, tr in at:
            isrel = relevant[lp]
            f = np.where(isrel & (tr > 1), acc, f)
            acc = np.where(isrel, acc, acc * tr)
        return f
    f_in, f_w, f_out = refetch(in_rel), refetch((1, 2) if g == 1 else (1,)), refetch((0, 1))
    read_input = in_pass * f_in
    read_weight = w_pass * f_w
    spills = f_out - 1
    read_psum = out_elems * spills * accb
    write_output = out_elems * ob + out_elems * spills * accb
    return TileEval(
        images=nb, rows=pt, cols=qt, k_tile=kt, c_tile=ct, order=np.asarray(order),
        Tr=Tr, Tk=Tk, Tc=Tc, fits=fits, usage=usage,
        tile_bytes={"input": in_tile, "weight": w_tile, "output": out_tile * accb},
        read_input=read_input, read_weight=read_weight, read_psum=read_psum,
        write_output=write_output, first_load=in_tile + w_tile, last_store=out_tile * ob,
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
