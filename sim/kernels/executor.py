"""The functional executor: runs a :class:`mapper.Mapping` tile by tile and returns the
layer's output, so that comparing it with the reference kernel proves the mapping
covers the iteration space exactly once.

It walks the tiles :func:`mapper.tiling.iter_tiles` yields (the mapping's loop order
and tile sizes, edge tiles included) and, like the accelerator, computes each tile
from on-chip copies only:

* the input tile is the window of input rows, columns and channels the tile's outputs
  need (halo included, clipped to the tensor: padding is never fetched), copied out
  of the input tensor ("DRAM");
* the weight tile is the tile's output channels x input channels x R x S;
* the output tile is an accumulator buffer at accumulator precision (int32, or fp32 for
  float operands). When the loop nest moves to another output tile, the buffer is
  written back to the output tensor; when it comes back to an output tile whose
  reduction is unfinished, the partial sums are read back and accumulation goes on.

An input or weight tile is fetched when it differs from the previous tile's (the
static schedule of :mod:`mapper.tiling` for one level: a tile stays while only loops it
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
only when every input value lies in as many fetched windows as every other and no
window reaches into padding (1 x 1 convolutions of stride 1; stride = kernel without
padding, tiles covering the input): the cost model charges every fetch of a window of
``min(H, (rows - 1) stride + (R - 1) dilation + 1)`` rows (padding included: so even
dense bytes differ with padding) at the layer's density, the executor the clipped
window's real values. Where the rule
does not hold the two differ: overlapping halos re-fetch some rows more than others,
csr tiles cutting rows pay a count per part row (and index bits of the part's length),
nm tiles straddling a block fetch it twice, and rle's extra entries depend on the
runs in each tile (the cost model uses their i.i.d. expectation).

``macs``: the MACs the array performs (every tap of every output, padding taps
included, as :attr:`workloads.MacLayer.macs`; with N:M skipping, ``mapping.skip``, the
kept weights' entries only: :func:`mapper.sparse.performed_macs`). ``nonzero_macs``:
the products with both operands non-zero (what ``zeros: gate`` charges energy for),
counted on the tiles' real values for a sparse layer or a DRAM that declares a format
(None otherwise: the count doubles the kernel work).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from . import formats
from .reference import _operand, conv_nhwc


@dataclass(frozen=True)
class Execution:
    """What the executor produced: the output (N, K, P, Q) and counts of what it did."""
    output: np.ndarray
    tiles: int               # tiles computed
    output_visits: int       # times an output tile was (re)opened in the accumulator
    psum_reloads: int        # re-openings that read partial sums back (reduction split)
    max_tile_elems: dict     # operand -> elements of the largest tile fetched / held
    # operand -> (read bits, write bits) between DRAM and the chip, in DRAM's format
    # (metadata included; partial sums dense at accumulator precision)
    dram_bits: dict = field(default_factory=dict)
    formats: dict = field(default_factory=dict)   # operand -> DRAM format used
    macs: int = 0            # MACs performed (module doc)
    # of them, with both operands non-zero; None when not counted (a dense layer on an
    # architecture without formats: the count doubles the kernel work)
    nonzero_macs: int | None = None

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
    formats and the operands' widths (module doc). A mapping with tiles at inner levels,
    given its ``arch``, runs through every level (:func:`sim.kernels.nest.execute_nest`,
    which returns its own record, formats not applied; without the PE model, which
    ``tilesim verify`` runs on its own, shrunk layer).
    """
    if arch is not None and tiles is None and mapping.tiling.inner:
        from .nest import execute_nest
        return execute_nest(mapping, arch, x, w, pe_model=False)
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

    def move(self, op, a, row, write=False):
        """``a`` (canonical layout) through DRAM in ``op``'s format: its decoded copy."""
        f = self.fmt[op]
        if f == "dense":   # E b bits, nothing to encode
            self.moved[op][int(write)] += a.size * self.bits[op]
            return a
        e = formats.encode(f, a, row=row, nm=self.nm if f == "nm" else None,
                           bits=self.bits[op])
        self.moved[op][int(write)] += e.bits
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
            v = dram.move("output", acc.transpose(0, 3, 1, 2), q1 - q0, write=True)
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
        ik = (n0, n1, hlo, hhi, wlo, whi, tuple(chans))
        if ik != in_key:   # fetch the input tile(s)
            in_key = ik
            xin = [_operand(dram.move("input", x[n0:n1, a:b, hlo:hhi, wlo:whi],
                                      whi - wlo).transpose(0, 2, 3, 1)) for a, b in chans]
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
                dec = formats.decode(e)[:, off:off + (c1 - c0) * RS]
                wt_raw = np.ascontiguousarray(dec.reshape(k1 - k0, c1 - c0, layer.R, layer.S))
            else:
                wt_raw = dram.move("weight", w[k0:k1, c0:c1], (c1 - c0) * RS)
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
    return Execution(output=np.ascontiguousarray(out.transpose(0, 3, 1, 2)), tiles=n_tiles,
                     output_visits=visits, psum_reloads=reloads, max_tile_elems=biggest,
                     dram_bits={op: tuple(v) for op, v in dram.moved.items()},
                     formats=dict(fmt), macs=macs, nonzero_macs=nz_macs if count else None)
