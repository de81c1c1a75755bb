"""The mapspace of one MAC layer on one architecture: every legal mapping, indexed.

A point of the space is (dataflow, output block, output-channel tile, input-channel
tile, loop order):

* **dataflow**: the array's ``dataflow``, or any of ``dataflows`` when the array is
  configurable (which GEMM dim is stationary is then chosen per layer);
* **tile sizes** at the buffer level: the grid of :func:`mapper.tiling.grid_axes` with
  ``balanced`` trip counts, so it includes uneven (imperfect) tiles: for every trip
  count t <= ``balanced`` the smallest tile with t trips, plus powers of two, multiples
  of the array's columns and the full extents. The last tile of a dim may be partial;
  the traffic formulas and :func:`mapper.tiling.iter_tiles` handle it exactly;
* **loop order** of the three tile loops (all 6 permutations).

A point is *legal* when its tiles fit every on-chip level (double buffering counted:
two tiles) and span the array along both of its spatial dims. Points are scored in
batches (:meth:`Mapspace.points`), which is what a search asks the cost model about.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tilesim.arch import Architecture
from tilesim.workloads import MacLayer

from .dataflow import DATAFLOWS, OPERAND_DIMS
from .mapping import LOOPS, Mapping, Tiling
from .tiling import ORDERS, fills_array, grid_axes, score_points, tiling_at, traffic_at

#: default number of balanced trip counts per dim added to the grid
BALANCED = 16


@dataclass(frozen=True)
class Points:
    """A batch of mapspace points, parallel arrays (what a cost model scores).

    ``dataflow`` indexes ``space.dataflows``; per point it also carries the array folding
    of its dataflow (``row_folds``, ``col_folds``, ``stream_len`` and how often the array
    reads each element of each operand, ``reads``), the DRAM traffic and tile bytes of
    its tiling (``ev``, as :func:`mapper.tiling.score_points` returns) and ``legal``."""
    index: np.ndarray
    dataflow: np.ndarray
    row_folds: np.ndarray
    col_folds: np.ndarray
    stream_len: np.ndarray
    reads: dict
    ev: dict
    legal: np.ndarray
    dataflows: tuple = ()   # names that ``dataflow`` indexes

    def __len__(self) -> int:
        return len(self.index)


class Mapspace:
    """All mappings of ``layer`` on ``arch``; a point is a flat integer index."""

    def __init__(self, layer: MacLayer, arch: Architecture, balanced: int = BALANCED):
        self.layer, self.arch = layer, arch
        a = arch.array
        self.dataflows = tuple(dict.fromkeys([a.dataflow] + list(a.dataflows or [])))
        rsel, kts, cts = grid_axes(layer, arch, balanced)
        self.rsel = np.array(rsel, dtype=np.int64)
        self.kts = np.array(kts, dtype=np.int64)
        self.cts = np.array(cts, dtype=np.int64)
        self.shape = (len(self.dataflows), len(self.rsel), len(self.kts), len(self.cts),
                      len(ORDERS))
        self.size = int(np.prod(self.shape))
        g, M, N, K = layer.gemm
        dims = {"M": M, "N": N, "K": K}
        dfs = [DATAFLOWS[d] for d in self.dataflows]
        self._rf = np.array([-(-dims[d.rows] // a.rows) for d in dfs], dtype=np.int64)
        self._cf = np.array([-(-dims[d.cols] // a.cols) for d in dfs], dtype=np.int64)
        self._st = np.array([dims[d.stream] for d in dfs], dtype=np.int64)
        self._reads = {op: np.array([d.reads_per_element(op, rf, cf) for d, rf, cf in
                                     zip(dfs, self._rf, self._cf)], dtype=np.int64)
                       for op in OPERAND_DIMS}

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
        legal = ev["fits"].copy()
        for i, name in enumerate(self.dataflows):
            sel = d == i
            if sel.any():
                legal[sel] &= fills_array(self.layer, self.arch, name, nb[sel], pt[sel], qt[sel],
                                          kt[sel], ct[sel])
        return Points(index=index, dataflow=d, row_folds=self._rf[d], col_folds=self._cf[d],
                      stream_len=self._st[d], reads={op: v[d] for op, v in self._reads.items()},
                      ev=ev, legal=legal, dataflows=self.dataflows)

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
    def mapping(self, index: int, notes: tuple[str, ...] = ()) -> Mapping:
        """The :class:`Mapping` of point ``index`` (a legal one)."""
        p = self.points([index])
        ev = p.ev
        df = DATAFLOWS[self.dataflows[int(p.dataflow[0])]]
        g, M, N, K = self.layer.gemm
        a = self.arch.array
        tiling = tiling_at(ev, 0)
        traffic = traffic_at(ev, 0)
        return Mapping(layer=self.layer, dataflow=df, array_rows=a.rows, array_cols=a.cols,
                       array_count=a.count, groups=g, M=M, N=N, K=K,
                       row_folds=int(p.row_folds[0]), col_folds=int(p.col_folds[0]),
                       tiling=tiling, traffic=traffic, notes=notes)
