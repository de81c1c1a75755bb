"""The functional executor: runs a :class:`mapper.Mapping` tile by tile and returns the
layer's output, so that comparing it with the reference kernel proves the mapping
covers the iteration space exactly once.

It walks the level-1 tiles :func:`mapper.tiling.iter_tiles` yields (the mapping's loop
order and tile sizes at the first on-chip level, edge tiles included) and, like the
accelerator, computes each tile from on-chip copies only:

* the input tile is the window of input rows, columns and channels the tile's outputs
  need (halo included, clipped to the tensor: padding is never fetched), copied out
  of the input tensor ("DRAM");
* the weight tile is the tile's output channels x input channels x R x S;
* the output tile is an accumulator buffer at accumulator precision (int32, or fp32 for
  float operands). When the loop nest moves to another output tile, the buffer is
  written back to the output tensor; when it comes back to an output tile whose
  reduction is unfinished, the partial sums are read back and accumulation goes on.

An input or weight tile is fetched when it serves another block than the previous
tile's (output block and channels for inputs, output and input channels for weights:
two output blocks whose windows clip to the same rows are two fetches; the static
schedule of :mod:`mapper.tiling` for one level: a tile stays while only loops it
does not depend on turn inside its innermost relevant one); otherwise the on-chip copy
is reused. Nothing else is shared between tiles, so a skipped tile leaves outputs
short, a repeated one counts some products twice and a wrong reduction split misses or
doubles input channels: each shows up as a mismatch against the reference.

**Formats** (``arch`` given and ``arch.memory[0].format_of(op)`` not dense): DRAM holds
every tile it serves in that format (:mod:`sim.kernels.formats`), tile by tile: each
fetched tile is encoded as stored, its bits counted, and decoded into the on-chip copy
the tile computes from; each output tile whose reduction is complete is encoded
(final values), counted and decoded into the output tensor; partial sums go out and
come back dense at accumulator precision. Layouts and rows of a tile: inputs (n, c, h,
w), a csr row the tile's columns ``[wlo, whi)``; weights (k, c, r, s), a csr row the
tile's ``c x R x S`` values of a filter; outputs (n, k, p, q), a csr row the tile's
columns. An nm weight tile is the whole N:M blocks its ``[c0 R S, c1 R S)`` values of
each filter touch (blocks from the filter's first value); the tile computes on its own
values of them. Operand widths: ``arch``'s precisions (:func:`mapper.tiling.operand_bytes`;
the final outputs at output precision: the values are carried exact, as the executor
does not requantize, and counted at the width the hardware writes); without ``arch``
the dtypes' (outputs at the input's width).

``dram_bits`` (operand -> (read, write) bits) then equals the cost model's DRAM
``access`` (x 8; :meth:`sim.cost.CostModel.access`, which truncates to whole bytes) where
the format's size is linear in the non-zero count and every value is moved the same
number of times at the layer's densities: dense, bitmask; csr when tiles cut no row
(inputs and outputs: ``cols = Q``; weights: ``c_tile = C/groups``); nm when weight tiles
start on block boundaries (``c_tile R S`` a multiple of M, or one channel tile); inputs
in a compressed format only when every fetched window holds the layer's density (every
input value in as many fetched windows as every other: 1 x 1 convolutions of stride 1,
or zeros spread evenly over the windows): the cost model charges every fetch of a
window of ``min(H, (rows - 1) stride + (R - 1) dilation + 1)`` rows, less the padding
an edge window reaches into (:func:`mapper.tiling._edge_excess`; neither fetches
padding, so dense bytes are equal for every layer), at the layer's density, the
executor the window's real values. Where the rule
does not hold the two differ: overlapping halos re-fetch some rows more than others,
csr tiles cutting rows pay a count per part row (and index bits of the part's length),
nm tiles straddling a block fetch it twice, and rle's extra entries depend on the
runs in each tile (the cost model uses their i.i.d. expectation). Given the same
operands (:mod:`mapper.actual`), the cost model counts those formats on the real tiles,
and ``level_bits`` equals its transfers for every layer and tiling.

**Every level** (``level_bits``, with ``arch``): a second walk runs the whole nest of
:mod:`mapper.tiling`'s static schedule, level 1's loops then each inner level's
(``mapping.tiling.levels``: :class:`mapper.mapping.LevelTile` sizes and orders; every
level the level-1 tile when the tiling has no inner levels), ``k`` split into groups and
channels within a group. A level holding an operand takes its tile from the next outer
holder (DRAM at the top) at every iteration of the innermost loop of levels 1..h the
operand depends on with more than one trip on a full parent block, and of every loop
outside it (once when there is none): the holder above reads the tile in its format, the
level writes it in its own (``arch.memory[i].format_of(op)``; nm only for N:M weights);
a level holding the very tile of the holder above (equal extents in every dim the
operand depends on) is filled by the same transfer, which reads nothing more there.
Outputs: a holder's tile drains when its schedule moves on, to the next outer holder
of another tile (DRAM at the top), read once from each holder of the same tile: final
values (the layer's finished outputs) in each level's format at output precision, or
partial sums dense at accumulator precision; a tile opened again reloads the partial
sums its elements hold the same way down. Every tile is encoded
(:mod:`sim.kernels.formats`) from the tensors' own values (every on-chip copy is
bit-exact, so they are the values each level holds) in the same layouts as DRAM's, and
decoded back and checked; a tile's bits in one format are encoded once (the compute
walk's DRAM tiles included) and counted at every transfer of it. The compute stays at
level 1 (the bytes depend on the tiles' extents and values only). ``level_bits``:
(level name, operand) -> (read, write) bits, DRAM and each ``scope: shared`` on-chip
level (the ``scope: pe`` registers are the array's accesses, :mod:`sim.kernels.nest`'s
PE model, not transfers). Without inner levels DRAM's entry is ``dram_bits``, tile by
tile; with them ``dram_bits`` is DRAM's entry (an operand first held at an inner level
comes from DRAM on that level's schedule). A grouped layer's hand-made tiling whose k
tiles cut groups (never a mapspace tile) gets no ``level_bits``. The layer runs on its
own (``mapping.residency`` is not applied).

``level_bits`` equals the cost model's transfers (:func:`mapper.tiling.score_points`'s
``transfers`` x 8; truncated to whole bytes there) under the DRAM rule above, applied at
every level: dense (any tiling, halos and padding included); formats linear in the
count with every value moved equally often at each level (1 x 1 stride-1 layers; csr
with ``cols = Q`` and, for weights, ``c_tile = C/groups`` at every level; nm tiles on
block boundaries at every level). The differences outside it are DRAM's, at any level.

``macs``: the MACs the array performs (every tap of every output, padding taps
included, as :attr:`workloads.MacLayer.macs`; with N:M skipping, ``mapping.skip``, the
kept weights' entries only: :func:`mapper.sparse.performed_macs`). ``nonzero_macs``:
the products with both operands non-zero (what ``zeros: gate`` charges energy for),
counted on the tiles' real values for a sparse layer or a DRAM that declares a format
(None otherwise: the count doubles the kernel work).
"""
from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from tilesim.mapper.actual import Tensors, tile_values

from . import formats
from .nest import _DIMS, _REL, C_, G_, R_, W_, loop_slots  # noqa: F401
from .reference import _operand, conv_nhwc


@dataclass(frozen=True)
class Execution:
    """What the executor produced: the output (N, K, P, Q) and counts of what it did."""
    output: np.ndarray
    tiles: int               # tiles computed
    output_visits: int       # times an output tile was (re)opened in the accumulator
    psum_reloads: int        # re-openings that read partial sums back (reduction split)
    max_tile_elems: dict     # operand -> elements of its largest tile at its first holder
    # operand -> (read bits, write bits) between DRAM and the chip, in DRAM's format
    # (metadata included; partial sums dense at accumulator precision); the compute
    # walk's, or with inner tiles DRAM's ``level_bits``
    dram_bits: dict = field(default_factory=dict)
    formats: dict = field(default_factory=dict)   # operand -> DRAM format used
    macs: int = 0            # MACs performed (module doc)
    # of them, with both operands non-zero; None when not counted (a dense layer on an
    # architecture without formats: the count doubles the kernel work)
    nonzero_macs: int | None = None
    # (level name, operand) -> (read bits, write bits) of every transfer into and out of
    # DRAM and each shared on-chip level, in that level's format (module doc, "Every
    # level"); empty without ``arch``, or for a hand-made tiling cutting groups
    level_bits: dict = field(default_factory=dict)
    nest_tiles: int = 0      # innermost tiles of that walk (0 when not walked)

    @property
    def level_bytes(self) -> dict:
        """(level, operand) -> (read, write) bytes (bits / 8)."""
        return {k: (r / 8, w / 8) for k, (r, w) in self.level_bits.items()}

    @property
    def dram_bytes(self) -> dict:
        """operand -> (read, write) bytes (bits / 8: fractional for sub-byte sizes)."""
        return {op: (r / 8, w / 8) for op, (r, w) in self.dram_bits.items()}


def _window(o0: int, o1: int, stride: int, pad: int, k: int, dil: int, size: int):
    """Input rows [lo, hi) that outputs [o0, o1) read, clipped to [0, size); and the
    tile-buffer coordinate of output o0's first tap."""
    lo = o0 * stride - pad
    hi = (o1 - 1) * stride - pad + (k - 1) * dil + 1
    clo, chi = max(lo, 0), min(hi, size)
    return clo, max(chi, clo), lo - clo


def execute(mapping, x: np.ndarray, w: np.ndarray, tiles=None, arch=None) -> Execution:
    """Run ``mapping`` on input ``x`` (N, C, H, W) and weights ``w`` (K, C/G, R, S).

    ``tiles`` defaults to the mapping's own tile sequence; tests pass a doctored one to
    show that a broken mapping is caught. Integer operands give an int32 output
    (bit-exact with :func:`sim.kernels.conv2d_layer`), float ones fp32. ``arch``: DRAM's
    formats, the operands' widths and the levels walked for ``level_bits`` (module doc,
    "Every level"; tiles at inner levels included). ``max_tile_elems``: each operand's
    largest tile at its first on-chip holder (with ``arch``; else the level-1 tiles).
    ``level_bits`` follow the mapping's own nest, whatever ``tiles`` says.
    """
    import numba

    from tilesim.mapper.tiling import iter_tiles

    # tiles are small: waking a thread pool per tile costs more than it gains
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return _execute(mapping, x, w, tiles, iter_tiles, arch)
    finally:
        numba.set_num_threads(threads)


def _store(layer, arch, x, w):
    """(operand -> DRAM format, operand -> bits of a value, accumulator bits, N:M)."""
    s = layer.sparsity
    nm = s.nm if s is not None else None
    if arch is None:
        fmt = {op: "dense" for op in ("input", "weight", "output")}
        acc = np.dtype(_operand(x[:0]).dtype).itemsize * 8
        return fmt, {"input": x.dtype.itemsize * 8, "weight": w.dtype.itemsize * 8,
                     "output": x.dtype.itemsize * 8}, acc, nm
    from tilesim.mapper.tiling import operand_bytes
    pb = operand_bytes(layer, arch)
    fmt = {}
    for op in ("input", "weight", "output"):
        f = arch.memory[0].format_of(op)
        if f == "nm" and (op != "weight" or nm is None):   # not N:M: stored dense
            f = "dense"                                   # (mapper.sparse.ratios)
        fmt[op] = f
    bits = {op: round(pb[op] * 8) for op in ("input", "weight", "output")}
    return fmt, bits, round(pb["accumulator"] * 8), nm


class _Dram:
    """DRAM's side of the tiles: encode, count, decode (module doc)."""

    def __init__(self, fmt, bits, nm):
        self.fmt, self.bits, self.nm = fmt, bits, nm
        self.moved = {op: [0, 0] for op in fmt}
        # (operand, format, tile) -> bits of the tiles encoded (the level walk's cache)
        self.encoded = {}

    def move(self, op, a, row, write=False, key=None):
        """``a`` (canonical layout) through DRAM in ``op``'s format: its decoded copy.
        ``key``: the tile's, under which its bits are remembered (added up over the
        parts of a tile moved in several)."""
        f = self.fmt[op]
        if f == "dense":   # E b bits, nothing to encode
            self.moved[op][int(write)] += a.size * self.bits[op]
            return a
        e = formats.encode(f, a, row=row, nm=self.nm if f == "nm" else None,
                           bits=self.bits[op])
        self.moved[op][int(write)] += e.bits
        if key is not None:
            self.encoded[(op, f, key)] = self.encoded.get((op, f, key), 0) + e.bits
        return formats.decode(e)


def _nm_weights(w, k0, k1, c0, c1, nm):
    """The N:M blocks of filters [k0, k1) that channels [c0, c1) touch: (values (k, L),
    offset of channel c0 in them)."""
    K, Cg, R, S = w.shape
    rs, red, m_ = R * S, Cg * R * S, nm[1]
    lo = (c0 * rs) // m_ * m_
    hi = min(red, -(-(c1 * rs) // m_) * m_)
    return w.reshape(K, red)[k0:k1, lo:hi], c0 * rs - lo


def _kept_in(e, a, b) -> int:
    """Entries of nm-encoded ``e`` whose position in their row lies in [a, b)."""
    n_, m_ = e.nm
    nb = -(-e.row // m_)
    lens = np.minimum(m_, e.row - np.arange(nb) * m_)
    block0 = np.repeat(np.arange(nb, dtype=np.int64) * m_, np.minimum(n_, lens))
    pos = np.tile(block0, e.size // e.row) + e.meta["offsets"]
    return int(((pos >= a) & (pos < b)).sum())


def _execute(mapping, x, w, tiles, iter_tiles, arch) -> Execution:
    layer = mapping.layer
    tiles = list(iter_tiles(layer, mapping.tiling) if tiles is None else tiles)
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    G, Cg, Kg = layer.groups, layer.C // layer.groups, layer.K // layer.groups
    RS = layer.R * layer.S
    fmt, bits, acc_bits, nm = _store(layer, arch, x, w)
    # non-zero pairs are counted for a sparse layer or where DRAM declares a format
    count = layer.sparsity is not None or any(f != "dense" for f in fmt.values())
    dram = _Dram(fmt, bits, nm)
    skip = tuple(getattr(mapping, "skip", ()) or ())
    out = np.zeros((layer.N, layer.P, layer.Q, layer.K), dtype=_operand(x[:0]).dtype)
    visited = np.zeros((layer.N, layer.P, layer.Q, layer.K), dtype=bool)
    left = Counter((tuple(t.n), tuple(t.p), tuple(t.q), tuple(t.k)) for t in tiles)
    cur, acc = None, None
    n_tiles = visits = reloads = macs = nz_macs = 0
    biggest = {"input": 0, "weight": 0, "output": 0}
    in_key = w_key = None
    xin = wt_full = None

    def flush():
        if cur is None:
            return
        (n0, n1), (p0, p1), (q0, q1), (k0, k1) = cur
        if left[cur]:   # reduction unfinished: partial sums out, dense
            dram.moved["output"][1] += acc.size * acc_bits
            out[n0:n1, p0:p1, q0:q1, k0:k1] = acc
        else:           # final values, in DRAM's format
            v = dram.move("output", acc.transpose(0, 3, 1, 2), q1 - q0, write=True,
                          key=(n0, n1, p0, p1, q0, q1, k0, k1))
            out[n0:n1, p0:p1, q0:q1, k0:k1] = v.transpose(0, 2, 3, 1)

    for t in tiles:
        key = (tuple(t.n), tuple(t.p), tuple(t.q), tuple(t.k))
        (n0, n1), (p0, p1), (q0, q1), (k0, k1) = key
        c0, c1 = t.c
        if key != cur:
            flush()
            cur = key
            region = (slice(n0, n1), slice(p0, p1), slice(q0, q1), slice(k0, k1))
            seen = visited[region]
            if seen.any():   # partial sums back, dense
                reloads += 1
                dram.moved["output"][0] += seen.size * acc_bits
            acc = out[region].copy()                    # (zeros at first)
            visited[region] = True
            visits += 1
            biggest["output"] = max(biggest["output"], acc.size)
        left[key] -= 1
        n_tiles += 1
        hlo, hhi, oh = _window(p0, p1, sh, ph, layer.R, dh, layer.H)
        wlo, whi, ow = _window(q0, q1, sw, pw, layer.S, dw, layer.W)
        g0, g1 = k0 // Kg, (k1 - 1) // Kg + 1
        whole = G == 1 or (k0 % Kg == 0 and k1 % Kg == 0 and c0 == 0 and c1 == Cg)
        # the input channel ranges the tile reads: one range, or one per group
        chans = ([(c0, c1)] if G == 1 else [(g0 * Cg, g1 * Cg)] if whole
                 else [(g * Cg + c0, g * Cg + c1) for g in range(g0, g1)])
        # the tile's own output block, not its window: two blocks whose windows clip to
        # the same rows (padding) are two fills in the static schedule
        ik = (n0, n1, p0, p1, q0, q1, tuple(chans))
        if ik != in_key:   # fetch the input tile(s)
            in_key = ik
            tk = (n0, n1, hlo, hhi, wlo, whi, g0, g1, c0, c1)   # the level walk's key
            dram.encoded.pop(("input", fmt["input"], tk), None)
            xin = [_operand(dram.move("input", x[n0:n1, a:b, hlo:hhi, wlo:whi],
                                      whi - wlo, key=tk).transpose(0, 2, 3, 1))
                   for a, b in chans]
        wk = (k0, k1, c0, c1)
        if wk != w_key:   # fetch the weight tile
            w_key = wk
            kept = None
            if fmt["weight"] == "nm" or skip:
                seg, off = _nm_weights(w, k0, k1, c0, c1, nm or skip)
                e = formats.encode("nm", seg, row=seg.shape[1], nm=nm or skip,
                                   bits=bits["weight"])
                if skip:   # the kept entries among this tile's own values
                    kept = _kept_in(e, off, off + (c1 - c0) * RS)
            if fmt["weight"] == "nm":
                dram.moved["weight"][0] += e.bits
                dram.encoded[("weight", "nm", wk)] = e.bits
                dec = formats.decode(e)[:, off:off + (c1 - c0) * RS]
                wt_raw = np.ascontiguousarray(dec.reshape(k1 - k0, c1 - c0, layer.R, layer.S))
            else:
                dram.encoded.pop(("weight", fmt["weight"], wk), None)
                wt_raw = dram.move("weight", w[k0:k1, c0:c1], (c1 - c0) * RS, key=wk)
            wt_full = _operand(wt_raw.transpose(2, 3, 1, 0))   # R, S, c, k
            w_kept = kept
        fetched_in = sum(a.size for a in xin)
        fetched_w = wt_full.size
        pix = (n1 - n0) * (p1 - p0) * (q1 - q0)
        macs += pix * (w_kept if skip else wt_full.size)
        if count:
            nzx = [(a != 0).astype(np.int32) for a in xin]
            nzw = (wt_full != 0).astype(np.int32)
            nzc = np.zeros(acc.shape, dtype=np.int32)
        if whole:
            # whole groups (or a dense layer): one call covers the tile
            ng = 1 if G == 1 else g1 - g0
            cc = max(1, c1 - c0)
            conv_nhwc(xin[0], wt_full, acc, sh, sw, oh, ow, dh, dw, ng, cc)
            if count:
                conv_nhwc(nzx[0], nzw, nzc, sh, sw, oh, ow, dh, dw, ng, cc)
        else:  # a tile cutting through groups: one call per group it touches
            for i, g in enumerate(range(g0, g1)):
                a0, a1 = max(k0, g * Kg), min(k1, (g + 1) * Kg)
                wt = np.ascontiguousarray(wt_full[..., a0 - k0:a1 - k0])
                part = np.zeros(acc.shape[:3] + (a1 - a0,), dtype=acc.dtype)
                conv_nhwc(xin[i], wt, part, sh, sw, oh, ow, dh, dw, 1, max(1, c1 - c0))
                acc[..., a0 - k0:a1 - k0] += part
                if count:
                    pz = np.zeros(acc.shape[:3] + (a1 - a0,), dtype=np.int32)
                    conv_nhwc(nzx[i], np.ascontiguousarray(nzw[..., a0 - k0:a1 - k0]), pz,
                              sh, sw, oh, ow, dh, dw, 1, max(1, c1 - c0))
                    nzc[..., a0 - k0:a1 - k0] += pz
        if count:
            nz_macs += int(nzc.sum(dtype=np.int64))
        biggest["input"] = max(biggest["input"], fetched_in)
        biggest["weight"] = max(biggest["weight"], fetched_w)
    flush()
    dram_bits = {op: tuple(v) for op, v in dram.moved.items()}
    level_bits, nest_tiles = {}, 0
    if arch is not None:   # every level, on the mapping's own nest
        lv = _Levels(mapping, arch, x, w, out, bits, acc_bits, nm, dram.encoded)
        if lv.run(mapping.tiling):
            level_bits = {k: tuple(v) for k, v in lv.moved.items()}
            nest_tiles = lv.bodies
            # each operand's largest tile where it first lands on chip
            biggest.update({op: lv.biggest.get((lv.name[hs[0]], op), 0)
                            for op, hs in lv.holders.items() if hs})
            if mapping.tiling.inner:   # DRAM serves the outermost holders' schedules
                dram_bits = {op: level_bits[(arch.dram.name, op)] for op in dram_bits}
    return Execution(output=np.ascontiguousarray(out.transpose(0, 3, 1, 2)), tiles=n_tiles,
                     output_visits=visits, psum_reloads=reloads, max_tile_elems=biggest,
                     dram_bits=dram_bits, level_bits=level_bits, nest_tiles=nest_tiles,
                     formats=dict(fmt), macs=macs, nonzero_macs=nz_macs if count else None)


# ---- every level: the loop nest's transfers, in each level's format -------------------
_OPDIMS = {"input": ("n", "p", "q", "g", "c"), "weight": ("g", "w", "c"),
           "output": ("n", "p", "q", "g", "w")}


def _level_formats(arch, nm):
    """(level name, operand) -> the format the level stores the operand in (nm only for
    N:M weights, else dense: :func:`mapper.sparse.ratios`)."""
    out = {}
    for lvl in arch.memory:
        for op in lvl.holds:
            f = lvl.format_of(op)
            out[(lvl.name, op)] = "dense" if f == "nm" and (op != "weight" or nm is None) else f
    return out


class _Levels:
    """The static schedule of the whole nest (module doc, "Every level"): walks every
    level's tiles in its loop order and counts, per (level, operand), the bits of each
    transfer in the level's format, from the tensors' own values. ``out``: the layer's
    final outputs (N, P, Q, K), which final drains carry."""

    def __init__(self, m, arch, x, w, out, bits, acc_bits, nm, encoded):
        self.layer = layer = m.layer
        self.x, self.w, self.out, self.bits, self.acc, self.nm = x, w, out, bits, acc_bits, nm
        self.tensors = Tensors(x, w, out.transpose(0, 3, 1, 2))
        self.G, self.Cg, self.Kg = layer.groups, layer.C // layer.groups, layer.K // layer.groups
        self.fmt = _level_formats(arch, nm)
        self.dram = arch.dram.name
        self.onchip = arch.onchip
        self.name = {h: lv.name for h, lv in enumerate(self.onchip, 1)}
        self.holders = {op: [h for h, lv in enumerate(self.onchip, 1) if op in lv.holds]
                        for op in ("input", "weight", "output")}
        self.moved = {(lv.name, op): [0, 0] for lv in [arch.dram, *self.onchip]
                      for op in lv.holds}
        self.biggest = {}   # (level, operand) -> elements of its largest tile
        # (operand, format, tile) -> bits (a tile encodes the same each time), starting
        # with the tiles the compute walk moved through DRAM
        self.cache = encoded

    # -- bits of one tile in one format ---------------------------------------------------
    def _tile(self, op, key):
        """The values of ``op``'s tile ``key`` in the executor's layouts (module doc, one
        array per encoded part) and the row length of each: the layouts the cost model
        prices on data (:func:`mapper.actual.tile_values`)."""
        return tile_values(self.layer, self.tensors, op, key)

    def tile_bits(self, level, op, key, elems):
        f = self.fmt[(level, op)]
        if f == "dense":
            return elems * self.bits[op]
        ck = (op, f, key)
        b = self.cache.get(ck)
        if b is None:
            if f == "nm":   # the whole N:M blocks the tile's values touch
                k0, k1, c0, c1 = key
                parts, row = [_nm_weights(self.w, k0, k1, c0, c1, self.nm)[0]], None
            else:
                parts, row = self._tile(op, key)
            b = 0
            for a in parts:
                e = formats.encode(f, a, row=a.shape[-1] if row is None else row,
                                   nm=self.nm if f == "nm" else None, bits=self.bits[op])
                if not np.array_equal(formats.decode(e), a):
                    raise AssertionError(f"{f} does not round-trip {op} tile {key}")
                b += e.bits
            self.cache[ck] = b
        return b

    def count(self, level, op, r=0, wr=0):
        a = self.moved[(level, op)]
        a[0] += r
        a[1] += wr

    # -- the walk -------------------------------------------------------------------------
    def run(self, tiling):
        """Walk ``tiling`` (:class:`mapper.mapping.Tiling`); False, counting nothing, when
        a grouped layer's k tiles cut groups (the static schedule's loops split k into
        groups and channels within one: every mapspace tile is aligned)."""
        layer, G, Cg, Kg = self.layer, self.G, self.Cg, self.Kg
        L = len(self.onchip)
        levels = tiling.levels(L)
        if G > 1 and any(not (lt.k_tile % Kg == 0 or Kg % lt.k_tile == 0) for lt in levels):
            return False
        ext, tile, slots = loop_slots(layer, levels)
        self.tile = tile
        issue = {}   # (op, h) -> the slot issuing level h's fills (-1: once, at the start)
        for op, hs in self.holders.items():
            for h in hs:
                issue[(op, h)] = max([j for j, (l, kind, t) in enumerate(slots)
                                      if l <= h and kind in _REL[op] and t > 1], default=-1)
        self.done = np.zeros((layer.N, layer.P, layer.Q, layer.K), dtype=np.int64)
        Ho = self.holders["output"]
        self.seen = {h: np.zeros(self.done.shape, dtype=bool) for h in Ho}
        self.open = {}
        self.held = {}    # (operand, level) -> the tile it holds
        self.bodies = 0   # innermost tiles walked
        # a fill is issued at every body where a loop at or outside its slot turned: the
        # outermost slot that turned since the last body is ``turned[0]`` (-1: the first)
        order = sorted(issue, key=issue.get, reverse=True)
        stack = [None] * L   # per level, the blocks of each dim inside its loops
        cur = {d: (0, ext[d]) for d in ext}
        turned = [-1]
        fills = [(op, i, h) for op in ("input", "weight") for i, h in enumerate(self.holders[op])]

        def body():
            first = turned[0]
            changed = set()
            for k in order:
                if issue[k] < first:
                    break
                changed.add(k)
            if changed:
                outs = [i for i, h in enumerate(Ho) if ("output", h) in changed]
                for i in reversed(outs):
                    self.drain(i)
                for i in outs:
                    self.open_(i, stack[Ho[i] - 1])
                for op, i, h in fills:
                    if (op, h) in changed:
                        self.fill(op, h, i, stack[h - 1])
            turned[0] = len(slots)
            self.bodies += 1
            (n0, n1), (p0, p1), (q0, q1) = cur["n"], cur["p"], cur["q"]
            k0, k1 = self.krange(cur)
            self.done[n0:n1, p0:p1, q0:q1, k0:k1] += cur["c"][1] - cur["c"][0]

        # only loops with more than one trip turn (a loop of one trip on a full parent
        # block has one on every block); a level's blocks are the ones set by the last
        # turning loop of it or a level above
        active = [si for si, (l, kind, t) in enumerate(slots) if t > 1]
        snap = {si: [] for si in active}
        for l in range(1, L + 1):
            up = [si for si in active if slots[si][0] <= l]
            if up:
                snap[up[-1]].append(l - 1)
            else:
                stack[l - 1] = dict(cur)

        def walk(ai):
            if ai == len(active):
                body()
                return
            si = active[ai]
            l, kind, _ = slots[si]
            dims = _DIMS[kind]
            saved = [cur[d] for d in dims]
            per = []
            for d in dims:
                a, b = cur[d]
                t = tile[d][l - 1]
                per.append([(s, min(s + t, b)) for s in range(a, b, t)])
            for j, combo in enumerate(itertools.product(*per)):
                if j:
                    turned[0] = min(turned[0], si)
                for d, rg in zip(dims, combo):
                    cur[d] = rg
                for lv in snap[si]:
                    stack[lv] = dict(cur)
                walk(ai + 1)
            for d, v in zip(dims, saved):
                cur[d] = v

        walk(0)
        for i in reversed(range(len(Ho))):
            self.drain(i)
        return True

    def krange(self, b):
        (g0, g1), (w0, w1) = b["g"], b["w"]
        Kg = self.Kg
        return (g0 * Kg + w0, g0 * Kg + w1) if (w0, w1) != (0, Kg) else (g0 * Kg, g1 * Kg)

    def same_up(self, op, i):
        """Holder ``i`` of ``op`` holds the very tile of the holder above it."""
        if i == 0:
            return False
        a, b = self.holders[op][i - 1], self.holders[op][i]
        return all(self.tile[d][a - 1] == self.tile[d][b - 1] for d in _OPDIMS[op])

    def fill(self, op, h, i, b):
        """Level ``h`` (holder ``i`` of ``op``) takes its tile of blocks ``b`` from the
        holder above (DRAM at the top): read there in its format, written in h's."""
        layer = self.layer
        if op == "input":
            (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
            h0, h1, _ = _window(*b["p"], sh, ph, layer.R, dh, layer.H)
            w0, w1, _ = _window(*b["q"], sw, pw, layer.S, dw, layer.W)
            key = (*b["n"], h0, h1, w0, w1, *b["g"], *b["c"])
            elems = ((b["n"][1] - b["n"][0]) * (h1 - h0) * (w1 - w0)
                     * (b["g"][1] - b["g"][0]) * (b["c"][1] - b["c"][0]))
        else:
            k0, k1 = self.krange(b)
            key = (k0, k1, *b["c"])
            elems = (k1 - k0) * (b["c"][1] - b["c"][0]) * layer.R * layer.S
        lvl = self.name[h]
        self.held[(op, h)] = key
        if i > 0:   # the tile lies inside the one the level above holds
            outer = self.held[(op, self.holders[op][i - 1])]
            if not all(outer[j] <= key[j] and key[j + 1] <= outer[j + 1]
                       for j in range(0, len(key), 2)):
                raise AssertionError(f"{op} tile {key} at {lvl!r} is not inside {outer}")
        self.biggest[(lvl, op)] = max(self.biggest.get((lvl, op), 0), elems)
        self.count(lvl, op, 0, self.tile_bits(lvl, op, key, elems))
        if i == 0:
            self.count(self.dram, op, self.tile_bits(self.dram, op, key, elems), 0)
        elif not self.same_up(op, i):
            up = self.name[self.holders[op][i - 1]]
            self.count(up, op, self.tile_bits(up, op, key, elems), 0)

    def _group(self, i):
        """(top, end): the output holders around ``i`` holding its very tile."""
        top = end = i
        while top > 0 and self.same_up("output", top):
            top -= 1
        while end + 1 < len(self.holders["output"]) and self.same_up("output", end + 1):
            end += 1
        return top, end

    def drain(self, i):
        """Output holder ``i``'s tile goes up to the next holder with another tile (DRAM
        at the top), read once from each holder of the same tile: final values in each
        level's format, partial sums dense at accumulator precision."""
        Ho = self.holders["output"]
        key = self.open.pop(Ho[i], None)
        top, end = self._group(i)
        if key is None or i > top:   # nothing open, or the group's top drains it
            return
        (n0, n1), (p0, p1), (q0, q1), (k0, k1) = key
        done = self.done[n0:n1, p0:p1, q0:q1, k0:k1]
        final = done.min() == self.Cg
        if final != (done.max() == self.Cg):
            raise AssertionError(f"output tile {key} drains part final, part partial")
        flat = (n0, n1, p0, p1, q0, q1, k0, k1)

        def size(lvl):
            return self.tile_bits(lvl, "output", flat, done.size) if final else done.size * self.acc
        for j in range(top, end + 1):
            self.count(self.name[Ho[j]], "output", size(self.name[Ho[j]]), 0)
        to = self.dram if top == 0 else self.name[Ho[top - 1]]
        self.count(to, "output", 0, size(to))

    def open_(self, i, b):
        """Output holder ``i`` opens its tile of blocks ``b``: partial sums of elements
        it held before come back down (dense, accumulator precision)."""
        Ho = self.holders["output"]
        key = (b["n"], b["p"], b["q"], self.krange(b))
        self.open[Ho[i]] = key
        top, end = self._group(i)
        lvl = self.name[Ho[i]]
        elems = 1
        for a, c in key:
            elems *= c - a
        self.biggest[(lvl, "output")] = max(self.biggest.get((lvl, "output"), 0), elems)
        if i > top:   # the group's top opened the very same tile
            return
        reg = tuple(slice(a, c) for a, c in key)
        seen = self.seen[Ho[i]]
        again = int(seen[reg].sum()) * self.acc
        seen[reg] = True
        for j in range(top, end + 1):
            self.count(self.name[Ho[j]], "output", 0, again)
        self.count(self.dram if top == 0 else self.name[Ho[top - 1]], "output", again, 0)
