"""Actual data: the cost model's bytes of compressed operands counted on real tensors.

At the layer's densities (:mod:`mapper.sparse`) a transfer of ``E`` values costs the
format's *expected* bits: exact for the layer as a whole, but a density cannot say how
the zeros fall into tiles. Where a halo fetches some input rows more often than others,
or rle's extra entries depend on the runs inside each tile, the bytes of one real
tensor differ from the expectation (by -0.16 % on a 3x3 layer at density 0.5, up to
+-2.4 % for rle at density 0.05: docs/sparsity.md). Given the operands' values
(:class:`Tensors`), the cost model instead prices every transfer of a data-dependent
format (bitmask, rle, csr) tile by tile, as the "actual data" density model that
Sparseloop describes does (Wu et al., MICRO 2022): the bits of a level-``h`` fill are

    refetches x sum over the distinct level-h tiles T of bits(format, values of T)

where the tiles are the cost model's own (:mod:`mapper.tiling`: the nested blocks of
levels 1..h of every dim the operand depends on, input windows clipped to the tensor)
and ``refetches`` is its static schedule's count of fills of each tile (the same for
every tile: the fill bytes factorise per dim). The dense bytes of the same fill are
``refetches x sum of E_T x b``; the two are computed from the same tiles, and their
quotient is checked to be a whole number (the tiles cover the cost model's sums).
nm is data-independent (every block keeps N), dense too: both keep their formula.

Layouts of a tile (the executor's, :mod:`sim.kernels.executor`): inputs ``(n, c, h,
w)``, a csr row the tile's columns; a tile of a grouped layer that holds some channels of
several groups is one part per group, each encoded on its own; weights ``(k, c, r, s)``,
a csr row the tile's ``c x R x S`` values of a filter; outputs ``(n, k, p, q)``, a csr row
the tile's columns, the final values at output precision.

Bits of ``E`` values (``Z`` non-zero) of ``b`` bits, counted (:mod:`mapper.sparse`'s
table, with the real counts): bitmask ``Z b + E``; rle ``(Z + X)(b + 5)``, ``X`` the sum
over non-zeros of ``z // 32`` (``z``: zeros before it in the tile, since the previous
non-zero); csr ``Z (b + ceil(log2 L)) + (E / L) ceil(log2(L + 1))``.

What stays at the densities: the search (every candidate would need its own tiles; the
mapping is chosen on the expectation and then priced on the data), the capacity check
(the worst case of :mod:`mapper.sparse`) and the unhidden first and last tiles of the
analytic timing bounds. The discrete-event engine moves every DRAM tile at its counted
bytes (:func:`sim.des.program.mac_program`, :func:`tile_key`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tilesim.workloads import MacLayer

from .errors import MappingError
from .sparse import RLE_RUN_BITS

#: formats whose size depends on where the zeros are (priced on the data)
DATA_DEPENDENT = ("bitmask", "rle", "csr")


def _clog2(n: int) -> int:
    return (int(n) - 1).bit_length()


def _one(v) -> int:
    """A tile size given as a number or a one-entry array, as an int."""
    return int(np.asarray(v).reshape(-1)[0])


@dataclass(frozen=True, eq=False)
class Tensors:
    """The values of a MAC layer's operands: ``input`` (N, C, H, W), ``weight`` (K,
    C/groups, R, S) and ``output`` (N, K, P, Q), the layer's final outputs (any integer
    or float dtype; only which values are zero matters here)."""
    input: np.ndarray
    weight: np.ndarray
    output: np.ndarray

    def check(self, layer: MacLayer) -> "Tensors":
        """``self``, after checking the shapes against ``layer`` (a clear error)."""
        want = {"input": (layer.N, layer.C, layer.H, layer.W),
                "weight": (layer.K, layer.C // layer.groups, layer.R, layer.S),
                "output": (layer.N, layer.K, layer.P, layer.Q)}
        for op, shape in want.items():
            got = tuple(np.shape(getattr(self, op)))
            if got != shape:
                raise MappingError(
                    f"layer {layer.name!r}: the {op} data has shape {got}, the layer's "
                    f"{op} is {shape}", fix=f"give the {op} tensor in the layer's shape")
        return self


def tile_values(layer: MacLayer, t: Tensors, op: str, key: tuple):
    """The values of ``op``'s tile ``key`` in the executor's layouts (module doc): a list
    of arrays (one per encoded part) and the csr row length of each. Keys: inputs
    ``(n0, n1, h0, h1, w0, w1, g0, g1, c0, c1)`` (input rows and columns, groups,
    channels within a group), weights ``(k0, k1, c0, c1)``, outputs ``(n0, n1, p0, p1,
    q0, q1, k0, k1)``."""
    if op == "input":
        n0, n1, h0, h1, w0, w1, g0, g1, c0, c1 = key
        x, Cg = t.input, layer.C // layer.groups
        if layer.groups == 1 or (c0 == 0 and c1 == Cg):   # one range of channels
            return [x[n0:n1, g0 * Cg + c0:(g1 - 1) * Cg + c1, h0:h1, w0:w1]], w1 - w0
        return [x[n0:n1, g * Cg + c0:g * Cg + c1, h0:h1, w0:w1] for g in range(g0, g1)], w1 - w0
    if op == "weight":
        k0, k1, c0, c1 = key
        return [t.weight[k0:k1, c0:c1]], (c1 - c0) * layer.R * layer.S
    n0, n1, p0, p1, q0, q1, k0, k1 = key
    return [t.output[n0:n1, k0:k1, p0:p1, q0:q1]], q1 - q0


def counted_bits(fmt: str, a: np.ndarray, bits: float, row: int) -> float:
    """Bits of the values ``a`` (flattened in C order) in ``fmt``, counted on them
    (module doc); ``row``: csr's row length."""
    E = a.size
    if fmt == "dense" or not E:
        return E * bits
    flat = a.reshape(-1)
    Z = int(np.count_nonzero(flat))
    if fmt == "bitmask":
        return Z * bits + E
    if fmt == "rle":
        idx = np.flatnonzero(flat)
        X = int(((np.diff(idx, prepend=-1) - 1) >> RLE_RUN_BITS).sum())
        return (Z + X) * (bits + RLE_RUN_BITS)
    if fmt == "csr":
        return Z * (bits + _clog2(row)) + (E // row) * _clog2(row + 1)
    raise ValueError(f"format {fmt!r} is not priced on data")


def _total_bits(fmt: str, flat: np.ndarray, lens: np.ndarray, rows: list, bits: float):
    """:func:`counted_bits` summed over the parts laid end to end in ``flat`` (part ``i``
    has ``lens[i]`` values and csr row length ``rows[i]``), in one pass: an rle run ends
    where its part does."""
    E = int(lens.sum())
    if fmt == "dense" or not E:
        return E * bits
    nz = flat != 0
    Z = int(np.count_nonzero(nz))
    if fmt == "bitmask":
        return Z * bits + E
    if fmt == "rle":
        starts = np.cumsum(lens) - lens
        idx = np.flatnonzero(nz)
        part = np.searchsorted(starts, idx, side="right") - 1   # the part of each non-zero
        prev = np.empty_like(idx)   # the position before each non-zero's run of zeros
        prev[1:] = idx[:-1]
        new = np.ones(idx.size, dtype=bool)
        new[1:] = part[1:] != part[:-1]
        prev[new] = starts[part[new]] - 1   # a part's first non-zero: from its start
        X = int(((idx - prev - 1) >> RLE_RUN_BITS).sum())
        return (Z + X) * (bits + RLE_RUN_BITS)
    if fmt == "csr":
        cs = np.concatenate(([0], np.cumsum(nz, dtype=np.int64)))
        ends = np.cumsum(lens)
        zs = cs[ends] - cs[ends - lens]   # non-zeros of each part
        r = np.maximum(np.asarray(rows, dtype=np.int64), 1)   # an empty part: no rows
        u, inv = np.unique(r, return_inverse=True)   # a part's csr widths by its row
        col = np.array([_clog2(v) for v in u], dtype=np.int64)[inv]
        cnt = np.array([_clog2(v + 1) for v in u], dtype=np.int64)[inv]
        return float((zs * (bits + col)).sum() + (lens // r * cnt).sum())
    raise ValueError(f"format {fmt!r} is not priced on data")


def _blocks(extent: int, tiles) -> list:
    """The blocks ``[a, b)`` of ``[0, extent)`` cut by the nested ``tiles`` (outermost
    first): each level's tile cuts every block of the level before."""
    out = [(0, extent)]
    for t in tiles:
        t = max(1, _one(t))
        out = [(s, min(s + t, b)) for a, b in out for s in range(a, b, t)]
    return out


def input_window(o0: int, o1: int, stride: int, pad: int, k: int, dil: int, size: int):
    """Input rows ``[lo, hi)`` that output rows ``[o0, o1)`` read, clipped to the tensor
    (padding is never fetched)."""
    lo = max(0, o0 * stride - pad)
    hi = min(size, (o1 - 1) * stride - pad + (k - 1) * dil + 1)
    return lo, max(lo, hi)


def tile_key(layer: MacLayer, op: str, n: tuple, p: tuple, q: tuple, k: tuple, c: tuple):
    """The key (:func:`tile_values`) of ``op``'s tile of a block of images ``n``, output
    rows ``p`` and columns ``q``, output channels ``k`` and input channels ``c`` (within a
    group): an input tile is the window the block reads, of the groups ``k`` spans."""
    if op == "weight":
        return (*k, *c)
    if op == "output":
        return (*n, *p, *q, *k)
    kg = layer.K // layer.groups
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    return (*n, *input_window(*p, sh, ph, layer.R, dh, layer.H),
            *input_window(*q, sw, pw, layer.S, dw, layer.W),
            k[0] // kg, (k[1] - 1) // kg + 1, *c)


def level_tiles(layer: MacLayer, op: str, sizes: dict) -> list:
    """The distinct tiles (keys of :func:`tile_values`) of ``op`` at a level whose
    nested tile sizes (levels 1..h, outermost first) are ``sizes``: dim -> list, dims
    ``n``, ``p``, ``q`` (output blocks), ``k`` (output channels), ``c`` (input channels of a
    group)."""
    G, Kg, Cg = layer.groups, layer.K // layer.groups, layer.C // layer.groups
    cs = _blocks(Cg, sizes["c"])
    if op == "weight":
        return [(k0, k1, c0, c1) for k0, k1 in _blocks(layer.K, sizes["k"]) for c0, c1 in cs]
    ns = _blocks(layer.N, sizes["n"])
    ps, qs = _blocks(layer.P, sizes["p"]), _blocks(layer.Q, sizes["q"])
    if op == "output":
        ks = _blocks(layer.K, sizes["k"])
        return [(n0, n1, p0, p1, q0, q1, k0, k1) for n0, n1 in ns for p0, p1 in ps
                for q0, q1 in qs for k0, k1 in ks]
    # inputs depend on the groups a k tile spans, not on the channels within one
    gs = _blocks(G, [max(1, _one(k) // Kg) for k in sizes["k"]])
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    hs = [input_window(a, b, sh, ph, layer.R, dh, layer.H) for a, b in ps]
    ws = [input_window(a, b, sw, pw, layer.S, dw, layer.W) for a, b in qs]
    return [(n0, n1, h0, h1, w0, w1, g0, g1, c0, c1) for n0, n1 in ns for h0, h1 in hs
            for w0, w1 in ws for g0, g1 in gs for c0, c1 in cs]


class Pricer:
    """Sums, per (format, operand, tile sizes), the counted bits of a level's distinct
    tiles and their dense bits (:meth:`sums`), each computed once."""

    def __init__(self, layer: MacLayer, data: Tensors, bits: dict):
        if not isinstance(data, Tensors):
            raise TypeError(f"data must be a mapper.actual.Tensors (input, weight, output "
                            f"arrays), not {type(data).__name__}")
        self.layer, self.data, self.bits = layer, data.check(layer), bits
        self._memo: dict = {}

    def sums(self, fmt: str, op: str, sizes: dict) -> tuple[float, float]:
        """(bits in ``fmt``, dense bits) summed over the distinct tiles of ``op`` of
        nested tile sizes ``sizes`` (:func:`level_tiles`)."""
        key = (fmt, op, tuple((d, tuple(_one(v) for v in sizes[d])) for d in sorted(sizes)))
        hit = self._memo.get(key)
        if hit is None:
            parts, rows = [], []
            for k in level_tiles(self.layer, op, sizes):
                ps, row = tile_values(self.layer, self.data, op, k)
                parts += [a.ravel() for a in ps]
                rows += [row] * len(ps)
            b = self.bits[op]
            lens = np.array([a.size for a in parts], dtype=np.int64)
            flat = np.concatenate(parts) if parts else np.zeros(0)
            hit = self._memo[key] = (_total_bits(fmt, flat, lens, rows, b),
                                     int(lens.sum()) * b)
        return hit

    def price(self, fmt: str, op: str, sizes: dict, dense_bytes) -> np.ndarray:
        """Bytes of a transfer whose dense bytes are ``dense_bytes`` (a one-entry array:
        refetches x the tiles' dense bytes) when moved in ``fmt`` on the data."""
        got, dense = self.sums(fmt, op, sizes)
        f = np.asarray(dense_bytes, dtype=np.float64)
        if not dense:
            return f * 0
        n = np.rint(f * 8 / dense)
        if not np.all(np.abs(n * dense - f * 8) < 0.5):
            raise AssertionError(f"{op}: {f.tolist()} B is not a whole number of passes "
                                 f"over tiles of {dense} bits ({sizes})")
        return n * got / 8


def sparsity_label(layer: MacLayer, data) -> str:
    """A layer result's ``sparsity`` text: the layer's densities (``Sparsity.text``), and
    ``on data`` when it was priced on its operands' values."""
    parts = (layer.sparsity.text() if layer.sparsity else "",
             "on data" if data is not None else "")
    return ", ".join(x for x in parts if x)


def actual_nonzero_products(layer: MacLayer, data: Tensors) -> int:
    """Products of the layer with both operands non-zero (what ``zeros: gate`` and
    ``skip`` charge MAC energy for), counted on the data: per group and tap ``(r, s)``,
    the non-zero inputs each channel offers to the outputs times the non-zero weights
    on that channel."""
    x, w = data.input != 0, data.weight != 0
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    G, Cg, Kg = layer.groups, layer.C // layer.groups, layer.K // layer.groups
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))).astype(np.int64)
    total = 0
    for r in range(layer.R):
        for s in range(layer.S):
            xs = xp[:, :, r * dh:r * dh + (layer.P - 1) * sh + 1:sh,
                    s * dw:s * dw + (layer.Q - 1) * sw + 1:sw].sum(axis=(0, 2, 3))
            ws = w[:, :, r, s].astype(np.int64)
            for g in range(G):
                total += int(xs[g * Cg:(g + 1) * Cg] @ ws[g * Kg:(g + 1) * Kg].sum(axis=0))
    return total
