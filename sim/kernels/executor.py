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

Nothing else is shared between tiles, so a skipped tile leaves outputs short, a
repeated one counts some products twice and a wrong reduction split misses or doubles
input channels: each shows up as a mismatch against the reference.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .reference import _operand, conv_nhwc


@dataclass(frozen=True)
class Execution:
    """What the executor produced: the output (N, K, P, Q) and counts of what it did."""
    output: np.ndarray
    tiles: int               # tiles computed
    output_visits: int       # times an output tile was (re)opened in the accumulator
    psum_reloads: int        # re-openings that read partial sums back (reduction split)
    max_tile_elems: dict     # operand -> elements of the largest tile fetched / held


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
    (bit-exact with :func:`sim.kernels.conv2d_layer`), float ones fp32. A mapping with
    tiles at inner levels, given its ``arch``, runs through every level
    (:func:`sim.kernels.nest.execute_nest`, which returns its own record; without the PE
    model, which ``tilesim verify`` runs on its own, shrunk layer).
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
        return _execute(mapping, x, w, tiles, iter_tiles)
    finally:
        numba.set_num_threads(threads)


def _execute(mapping, x, w, tiles, iter_tiles) -> Execution:
    layer = mapping.layer
    if tiles is None:
        tiles = iter_tiles(layer, mapping.tiling)
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    G, Cg, Kg = layer.groups, layer.C // layer.groups, layer.K // layer.groups
    xl = _operand(x.transpose(0, 2, 3, 1))           # N, H, W, C
    wl = _operand(w.transpose(2, 3, 1, 0))           # R, S, Cg, K
    out = np.zeros((layer.N, layer.P, layer.Q, layer.K), dtype=xl.dtype)
    visited = np.zeros((layer.N, layer.P, layer.Q, layer.K), dtype=bool)
    cur, acc = None, None
    n_tiles = visits = reloads = 0
    biggest = {"input": 0, "weight": 0, "output": 0}

    def flush():
        if cur is not None:
            (n0, n1), (p0, p1), (q0, q1), (k0, k1) = cur
            out[n0:n1, p0:p1, q0:q1, k0:k1] = acc

    for t in tiles:
        key = (tuple(t.n), tuple(t.p), tuple(t.q), tuple(t.k))
        (n0, n1), (p0, p1), (q0, q1), (k0, k1) = key
        c0, c1 = t.c
        if key != cur:
            flush()
            cur = key
            region = (slice(n0, n1), slice(p0, p1), slice(q0, q1), slice(k0, k1))
            seen = visited[region]
            reloads += bool(seen.any())
            acc = out[region].copy()                    # partial sums back (zeros at first)
            visited[region] = True
            visits += 1
            biggest["output"] = max(biggest["output"], acc.size)
        n_tiles += 1
        hlo, hhi, oh = _window(p0, p1, sh, ph, layer.R, dh, layer.H)
        wlo, whi, ow = _window(q0, q1, sw, pw, layer.S, dw, layer.W)
        g0, g1 = k0 // Kg, (k1 - 1) // Kg + 1
        fetched_in = fetched_w = 0
        if G == 1 or (k0 % Kg == 0 and k1 % Kg == 0 and c0 == 0 and c1 == Cg):
            # whole groups (or a dense layer): one call covers the tile
            ng = 1 if G == 1 else g1 - g0
            ch = (c0, c1) if G == 1 else (g0 * Cg, g1 * Cg)
            xt = np.ascontiguousarray(xl[n0:n1, hlo:hhi, wlo:whi, ch[0]:ch[1]])
            wt = np.ascontiguousarray(wl[:, :, c0:c1, k0:k1])
            conv_nhwc(xt, wt, acc, sh, sw, oh, ow, dh, dw, ng, max(1, c1 - c0))
            fetched_in, fetched_w = xt.size, wt.size
        else:  # a tile cutting through groups: one call per group it touches
            for g in range(g0, g1):
                a0, a1 = max(k0, g * Kg), min(k1, (g + 1) * Kg)
                xt = np.ascontiguousarray(xl[n0:n1, hlo:hhi, wlo:whi, g * Cg + c0:g * Cg + c1])
                wt = np.ascontiguousarray(wl[:, :, c0:c1, a0:a1])
                part = np.zeros(acc.shape[:3] + (a1 - a0,), dtype=acc.dtype)
                conv_nhwc(xt, wt, part, sh, sw, oh, ow, dh, dw, 1, max(1, c1 - c0))
                acc[..., a0 - k0:a1 - k0] += part
                fetched_in += xt.size
                fetched_w += wt.size
        biggest["input"] = max(biggest["input"], fetched_in)
        biggest["weight"] = max(biggest["weight"], fetched_w)
    flush()
    return Execution(output=np.ascontiguousarray(out.transpose(0, 3, 1, 2)), tiles=n_tiles,
                     output_visits=visits, psum_reloads=reloads, max_tile_elems=biggest)
