"""N:M weights for the PE model: compress a GEMM's weights to their kept values and
offsets, and build the input blocks the array's rows carry (:mod:`mapper.sparse`).

The reduction (a filter's ``C/groups x R x S`` values, ``c`` outermost) is cut into
blocks of M consecutive rows from row 0; a last block of ``L < M`` rows keeps
``min(N, L)`` (:func:`workloads.sparsity.nm_kept`). Each block of each filter keeps its
non-zero values in order, padded with zeros to its kept count; each kept value carries
its offset within its block (a padded zero takes the lowest offset no non-zero holds).
A block with more than N non-zeros is not N:M and is refused.
"""
from __future__ import annotations

import numpy as np

from tilesim.workloads.sparsity import nm_kept


def block_rows(K: int, n: int, m: int):
    """Per kept row of a reduction of ``K`` values under ``n``:``m``: (first reduction
    row of its block (K',), its block's index (K',), each block's rows (blocks,))."""
    starts = np.arange(0, K, m, dtype=np.int64)
    sizes = np.minimum(m, K - starts)
    kept = np.minimum(n, sizes)
    bid = np.repeat(np.arange(len(starts), dtype=np.int64), kept)
    assert len(bid) == nm_kept(K, n, m)
    return starts[bid], bid, sizes


def compress(b: np.ndarray, n: int, m: int, name: str = "gemm", filters: int | None = None):
    """Weights ``b`` (G, K, Nf) of N:M structure -> (values (G, K', Nf), offsets (G, K',
    Nf) int64), K' = :func:`workloads.sparsity.nm_kept` (K, n, m) (module doc).
    ``name`` and ``filters`` (filters per group) name a block that breaks the structure:
    ValueError."""
    G, K, Nf = b.shape
    out_v, out_o = [], []
    for s in range(0, K, m):
        sub = b[:, s:s + m, :]                      # (G, L, Nf)
        L = sub.shape[1]
        nz = sub != 0
        bad = np.argwhere(nz.sum(axis=1) > n)
        if len(bad):
            g, f = (int(v) for v in bad[0])
            raise ValueError(
                f"layer {name}: filter {g * (Nf if filters is None else filters) + f}, "
                f"block {s // m} (reduction rows {s}..{s + L - 1}) has "
                f"{int(nz[g, :, f].sum())} non-zero weights, more than N = {n} of {n}:{m}; "
                f"prune the weights to {n}:{m} (at most {n} non-zeros in every {m})")
        k = min(n, L)
        # non-zeros first (in order), then zeros in order; keep k, sorted by offset
        key = (~nz) * L + np.arange(L)[None, :, None]
        pos = np.sort(np.argsort(key, axis=1, kind="stable")[:, :k, :], axis=1)
        out_v.append(np.take_along_axis(sub, pos, axis=1))
        out_o.append(pos.astype(np.int64))
    return (np.ascontiguousarray(np.concatenate(out_v, axis=1)),
            np.ascontiguousarray(np.concatenate(out_o, axis=1)))


def lanes(a: np.ndarray, n: int, m: int) -> np.ndarray:
    """Inputs ``a`` (G, Mpix, K) -> (G, Mpix, K', m): for each kept row, the m input
    values of its block (zeros past the reduction's end): what the array row of that kept
    row carries, among which each PE picks its weight's offset."""
    G, P, K = a.shape
    first, _, _ = block_rows(K, n, m)
    ap = np.zeros((G, P, K + m), dtype=a.dtype)
    ap[:, :, :K] = a
    idx = first[:, None] + np.arange(m)[None, :]    # (K', m)
    return np.ascontiguousarray(ap[:, :, idx])


def feeds(K: int, n: int, m: int, r0: int, r1: int) -> np.ndarray:
    """Input values a feeder reads from the buffer for kept rows ``r0:r1`` of one fold
    (or one os stream), per row and stream step: its block's rows for the first kept row
    of each block within the range (the block is read once and held, or broadcast to the
    block's other rows), 0 for the others."""
    _, bid, sizes = block_rows(K, n, m)
    out = np.zeros(r1 - r0, dtype=np.int64)
    for i in range(r0, r1):
        if i == r0 or bid[i] != bid[i - 1]:
            out[i - r0] = sizes[bid[i]]
    return out


def prune(w: np.ndarray, n: int, m: int) -> np.ndarray:
    """Weights (K, C/G, R, S) pruned to ``n``:``m`` along each filter's reduction (c, r,
    s order): in every block the n values of largest magnitude stay (the first on ties),
    the rest become zero."""
    Kf = w.shape[0]
    flat = w.reshape(Kf, -1).copy()
    red = flat.shape[1]
    for s in range(0, red, m):
        sub = flat[:, s:s + m]
        if sub.shape[1] <= n:
            continue
        order = np.argsort(-np.abs(sub.astype(np.float64)), axis=1, kind="stable")
        drop = order[:, n:]
        np.put_along_axis(sub, drop, 0, axis=1)
    return flat.reshape(w.shape)
