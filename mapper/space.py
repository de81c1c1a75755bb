"""The mapspace of one MAC layer on one architecture: every legal mapping, indexed.

A point of the space is (dataflow, output block, output-channel tile, input-channel
tile, loop order):

* **dataflow**: the array's ``dataflow``, or any of ``dataflows`` when the array is
  configurable (the spatial mapping is then chosen per layer); a dataflow that does
  not apply to the layer (:meth:`mapper.Dataflow.applies`, e.g. dw on a dense layer)
  is left out of its space;
* **tile sizes** at the buffer level: the grid of :func:`mapper.tiling.grid_axes` with
  ``balanced`` trip counts, so it includes uneven (imperfect) tiles: for every trip
  count t <= ``balanced`` the smallest tile with t trips, plus powers of two, multiples
  of the array's columns and the full extents. The last tile of a dim may be partial;
  the traffic formulas and :func:`mapper.tiling.iter_tiles` handle it exactly;
* **loop order** of the three tile loops (all 6 permutations).

A point is *legal* when its tiles fit every on-chip level (double buffering counted:
two tiles) and span the array along both of its spatial dims. Points are scored in
batches (:meth:`Mapspace.points`), which is what a search asks the cost model about.
Every :class:`Mapping` is built here (:meth:`Mapspace.mapping`), and any Mapping can be
turned back into a one-point batch (:func:`points_of`) for the cost model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tilesim.arch import Architecture
from tilesim.workloads import MacLayer

from .dataflow import DATAFLOWS, OPERAND_DIMS, layer_dims
from .mapping import LOOPS, ORDERS, Mapping, Tiling
from .tiling import (TileEval, fills_array, grid_axes, least_traffic, operand_bytes,
                     raise_no_fit, score_points)

#: default number of balanced trip counts per dim added to the grid
BALANCED = 16


@dataclass(frozen=True)
class Points:
    """A batch of mapspace points: parallel numpy arrays, what the cost model scores.

    ``dataflow`` indexes ``dataflows`` (names); per point the array folding of its
    dataflow (:meth:`mapper.Dataflow.plan`): ``row_folds``, ``col_folds`` (folds of the
    dims on each axis), ``folds`` (of the whole layer, outer dims such as groups
    included), ``fold_cycles`` (one fold's cycles), ``fold_interval`` (cycles between fold
    starts on one array under the array's preload, :meth:`mapper.Dataflow.interval`;
    compute is :func:`mapper.dataflow.chain_cycles` of the two), ``reads`` (operand -> how often the
    array reads each element from its innermost buffer), ``accesses`` (operand -> the
    element reads of it from the innermost shared buffer; outputs: partial-sum writes),
    ``pe_writes`` (input, weight -> elements written into ``scope: pe`` levels);
    ``tiles`` the buffer tiling's
    sizes, capacity and DRAM traffic (:class:`mapper.tiling.TileEval`); ``legal`` (the
    tiles fit and fill the array)."""
    index: np.ndarray
    dataflow: np.ndarray
    row_folds: np.ndarray
    col_folds: np.ndarray
    folds: np.ndarray
    fold_cycles: np.ndarray
    fold_interval: np.ndarray
    reads: dict
    accesses: dict
    pe_writes: dict
    tiles: TileEval
    legal: np.ndarray
    dataflows: tuple = ()

    def __len__(self) -> int:
        return len(self.index)


class Mapspace:
    """All mappings of ``layer`` on ``arch``; a point is a flat integer index."""

    def __init__(self, layer: MacLayer, arch: Architecture, balanced: int = BALANCED):
        self.layer, self.arch = layer, arch
        a = arch.array
        dims = layer_dims(layer)
        # the array's own dataflow (os, ws or is) applies to every layer: it comes first
        self.dataflows = tuple(d for d in dict.fromkeys([a.dataflow] + list(a.dataflows or []))
                               if DATAFLOWS[d].applies(dims))
        rsel, kts, cts = grid_axes(layer, arch, balanced)
        self.rsel = np.array(rsel, dtype=np.int64)
        self.kts = np.array(kts, dtype=np.int64)
        self.cts = np.array(cts, dtype=np.int64)
        self.shape = (len(self.dataflows), len(self.rsel), len(self.kts), len(self.cts),
                      len(ORDERS))
        self.size = int(np.prod(self.shape))
        dfs = [DATAFLOWS[d] for d in self.dataflows]
        self.pe_entries = pe_entries(layer, arch)
        plans = [d.plan(dims, a.rows, a.cols, self.pe_entries) for d in dfs]
        i64 = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
        self._rf = i64([p.row_folds for p in plans])
        self._cf = i64([p.col_folds for p in plans])
        self._folds = i64([p.folds for p in plans])
        self._fc = i64([p.fold_cycles for p in plans])
        self._reads = {op: np.array([p.reads[op] for p in plans]) for op in OPERAND_DIMS}
        self._acc = {op: i64([p.accesses[op] for p in plans]) for op in OPERAND_DIMS}
        self._pew = {op: i64([p.pe_writes[op] for p in plans]) for op in ("input", "weight")}
        self._fi = i64([d.interval(p, a.rows, a.preload) for d, p in zip(dfs, plans)])

    # ---- indexing -------------------------------------------------------------------
    def decode(self, index) -> tuple[np.ndarray, ...]:
        """(dataflow, r, k, c, order) coordinates of flat indices."""
        return np.unravel_index(np.asarray(index, dtype=np.int64), self.shape)

    def encode(self, d, r, k, c, o) -> np.ndarray:
        return np.ravel_multi_index((d, r, k, c, o), self.shape)

    def points(self, index) -> Points:
        index = np.asarray(index, dtype=np.int64)
        d, r, k, c, o = self.decode(index)
        nb, pt, qt = self.rsel[r].T
        kt, ct = self.kts[k], self.cts[c]
        ev = score_points(self.layer, self.arch, nb, pt, qt, kt, ct, o)
        legal = ev.fits.copy()
        for i, name in enumerate(self.dataflows):
            sel = d == i
            if sel.any():
                legal[sel] &= fills_array(self.layer, self.arch, name, nb[sel], pt[sel], qt[sel],
                                          kt[sel], ct[sel])
        return Points(index=index, dataflow=d, row_folds=self._rf[d], col_folds=self._cf[d],
                      folds=self._folds[d], fold_cycles=self._fc[d],
                      fold_interval=self._fi[d],
                      reads={op: v[d] for op, v in self._reads.items()},
                      accesses={op: v[d] for op, v in self._acc.items()},
                      pe_writes={op: v[d] for op, v in self._pew.items()},
                      tiles=ev, legal=legal, dataflows=self.dataflows)

    def seed(self, dataflow: str | None = None) -> int:
        """The least-DRAM-traffic point on the coarse grid (powers of two, multiples of
        the array's columns, full extents: ``grid_axes`` without balanced tiles) under
        ``dataflow`` (default the array's own: os, ws or is, which applies to every
        layer), among tiles that fill the array; ties go to the smaller
        unhidden first load + last store, then to fewer tiles, then to the first in
        (loop order, output block, k tile, c tile) order. Every search scores it first,
        so a searched mapping is never worse than it under the search's objective.

        MappingError, naming the level, the operand and the size that would fit, when
        no tile fits the buffers."""
        rsel0, kts0, cts0 = grid_axes(self.layer, self.arch, 0)
        r = [int(np.flatnonzero((self.rsel == v).all(axis=1))[0]) for v in rsel0]
        k = np.searchsorted(self.kts, kts0)
        c = np.searchsorted(self.cts, cts0)
        o, r, k, c = (x.ravel() for x in np.meshgrid(np.arange(len(ORDERS)), r, k, c,
                                                     indexing="ij"))
        dataflow = dataflow or self.dataflows[0]
        if dataflow not in self.dataflows:
            raise ValueError(f"dataflow {dataflow!r} is not offered by the array or does "
                             f"not apply to layer {self.layer.name!r}")
        d = self.dataflows.index(dataflow)
        idx = self.encode(np.full_like(o, d), r, k, c, o)
        nb, pt, qt = self.rsel[r].T
        fill = fills_array(self.layer, self.arch, self.dataflows[d], nb, pt, qt, self.kts[k],
                           self.cts[c])
        ev = score_points(self.layer, self.arch, nb[fill], pt[fill], qt[fill], self.kts[k][fill],
                          self.cts[c][fill], o[fill])
        best = least_traffic(ev)
        if best < 0:
            raise_no_fit(self.layer, self.arch, ev)
        return int(idx[fill][best])

    def index_of(self, dataflow: str, tiling: Tiling) -> int:
        """Flat index of ``tiling`` under ``dataflow`` (it must be on the grid)."""
        d = self.dataflows.index(dataflow)
        r = np.flatnonzero((self.rsel == (tiling.images, tiling.rows, tiling.cols)).all(axis=1))
        k = np.flatnonzero(self.kts == tiling.k_tile)
        c = np.flatnonzero(self.cts == tiling.c_tile)
        o = ORDERS.index(tuple(LOOPS.index(x) for x in tiling.order))
        if not (len(r) and len(k) and len(c)):
            raise ValueError(f"tiling {tiling} is not on this mapspace's grid")
        return int(self.encode(d, r[0], k[0], c[0], o))

    # ---- building Mappings ------------------------------------------------------------
    def mapping(self, index: int) -> Mapping:
        """The :class:`Mapping` of point ``index`` (a legal one)."""
        p = self.points([index])
        g, M, N, K = self.layer.gemm
        a = self.arch.array
        return Mapping(layer=self.layer, dataflow=DATAFLOWS[self.dataflows[int(p.dataflow[0])]],
                       array_rows=a.rows, array_cols=a.cols, array_count=a.count, groups=g,
                       M=M, N=N, K=K, row_folds=int(p.row_folds[0]),
                       col_folds=int(p.col_folds[0]), tiling=p.tiles.tiling(0),
                       traffic=p.tiles.traffic_of(0), preload=a.preload,
                       pe_entries=tuple(sorted(self.pe_entries.items())))


def pe_entries(layer: MacLayer, arch: Architecture) -> dict:
    """Values of each operand that one PE's ``scope: pe`` levels hold: a level's size
    over the operand's precision (accumulator precision for outputs), split evenly
    among the operands it holds (halved when double-buffered), summed over the levels
    holding the operand; an operand no pe level holds is absent."""
    pb = operand_bytes(layer, arch)
    out: dict = {}
    for lvl in arch.pe_levels:
        for op in lvl.holds:
            b = pb["accumulator" if op == "output" else op]
            share = lvl.size / len(lvl.holds) / (2 if lvl.double_buffered else 1)
            out[op] = out.get(op, 0) + int(share // b)
    return out


def points_of(m: Mapping, arch: Architecture) -> Points:
    """``m`` as a one-point batch on ``arch`` (its tiles scored against ``arch``'s
    buffers: ``legal`` is False when they do not fit there)."""
    t = m.tiling
    one = [np.array([v], dtype=np.int64) for v in
           (t.images, t.rows, t.cols, t.k_tile, t.c_tile,
            ORDERS.index(tuple(LOOPS.index(x) for x in t.order)))]
    ev = score_points(m.layer, arch, *one)
    df = m.dataflow
    p = m.plan
    legal = ev.fits & fills_array(m.layer, arch, df.name, *one[:5]) & df.applies(m.dims)
    i64 = lambda v: np.array([v], dtype=np.int64)  # noqa: E731
    return Points(index=i64(0), dataflow=i64(0), row_folds=i64(p.row_folds),
                  col_folds=i64(p.col_folds), folds=i64(p.folds),
                  fold_cycles=i64(p.fold_cycles),
                  fold_interval=i64(df.interval(p, m.array_rows, m.preload)),
                  reads={op: np.array([v]) for op, v in p.reads.items()},
                  accesses={op: i64(v) for op, v in p.accesses.items()},
                  pe_writes={op: i64(v) for op, v in p.pe_writes.items()},
                  tiles=ev, legal=legal, dataflows=(df.name,))
