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
* **loop order** of the three tile loops (all 6 permutations);
* **inner tiles**: for every on-chip level after the first (``arch.memory`` order), a
  tile nested in the level above and the order of its loops inside that tile: per dim
  an index into the coarse grid (powers of two, multiples of the array's columns, full
  extents; index 0 = the parent's size, larger values are clipped to it), and an order.
  A dim that no operand held at that level or deeper depends on stays whole there
  (splitting it only adds refetches), and the order axis lists only the distinct orders
  of the dims that can split. Inner axes come last in the flat index, so a point whose
  inner coordinates are all 0 (every level holds the level-1 tile: the single tiling of
  before) has index ``outer * inner_size``, and an architecture with one on-chip level
  has the same space and indices as before.

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

from . import sparse
from .dataflow import DATAFLOWS, OPERAND_DIMS, layer_dims
from .mapping import LOOPS, NO_RESIDENCY, ORDERS, Mapping, Residency, Tiling
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
    included), ``fold_cycles`` (one fold's cycles; kco: a column fold's passes over the
    point's channel tiles, :meth:`mapper.Dataflow.tile_cycles`), ``fold_interval`` (cycles between fold
    starts on one array under the array's preload, :meth:`mapper.Dataflow.interval`;
    compute is :func:`mapper.dataflow.chain_cycles` of the two), ``reads`` (operand -> how often the
    array reads each element from its innermost buffer), ``accesses`` (operand -> the
    element reads of it from the innermost shared buffer; outputs: partial-sum writes,
    under kco per the point's channel tile, :meth:`mapper.Dataflow.tile_psums`),
    ``pe_writes`` (input, weight -> elements written into ``scope: pe`` levels),
    ``hops`` (operand moves between neighbouring PEs, :attr:`mapper.dataflow.Fold.hops`);
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
    hops: np.ndarray
    tiles: TileEval
    legal: np.ndarray
    dataflows: tuple = ()

    def __len__(self) -> int:
        return len(self.index)


class Mapspace:
    """All mappings of ``layer`` on ``arch``; a point is a flat integer index."""

    def __init__(self, layer: MacLayer, arch: Architecture, balanced: int = BALANCED,
                 inner: bool = True, res: Residency = NO_RESIDENCY):
        self.layer, self.arch, self.res = layer, arch, res
        a = arch.array
        dims = self._dims = layer_dims(layer)
        # the array's own dataflow (os, ws or is) applies to every layer: it comes first
        self.dataflows = tuple(d for d in dict.fromkeys([a.dataflow] + list(a.dataflows or []))
                               if DATAFLOWS[d].applies(dims))
        rsel, kts, cts = grid_axes(layer, arch, balanced)
        self.rsel = np.array(rsel, dtype=np.int64)
        self.kts = np.array(kts, dtype=np.int64)
        self.cts = np.array(cts, dtype=np.int64)
        self.outer_shape = (len(self.dataflows), len(self.rsel), len(self.kts), len(self.cts),
                            len(ORDERS))
        self._inner_axes(layer, arch, inner)
        self.shape = self.outer_shape + tuple(x for ax in self.inner_axes for x in
                                              (len(ax[0]), len(ax[1]), len(ax[2]), len(ax[3])))
        self.size = int(np.prod(self.shape, dtype=object))
        self.inner_size = int(np.prod(self.shape[5:], dtype=object))
        dfs = [DATAFLOWS[d] for d in self.dataflows]
        self.pe_entries = pe_entries(layer, arch)
        # N:M weights on an array that skips them: the compressed GEMM (mapper/sparse.py)
        self.skips = [sparse.skip_nm(layer, arch, d.name) for d in dfs]
        plans = [sparse.plan(d, layer, dims, a.rows, a.cols, self.pe_entries, a.count, nm)
                 for d, nm in zip(dfs, self.skips)]
        i64 = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
        self._rf = i64([p.row_folds for p in plans])
        self._cf = i64([p.col_folds for p in plans])
        self._folds = i64([p.folds for p in plans])
        self._fc = i64([p.fold_cycles for p in plans])
        self._reads = {op: np.array([p.reads[op] for p in plans]) for op in OPERAND_DIMS}
        self._acc = {op: i64([p.accesses[op] for p in plans]) for op in OPERAND_DIMS}
        self._pew = {op: i64([p.pe_writes[op] for p in plans]) for op in ("input", "weight")}
        self._fi = i64([d.interval(p, a.rows, a.preload) for d, p in zip(dfs, plans)])
        self._hops = i64([p.hops for p in plans])

    def _inner_axes(self, layer: MacLayer, arch: Architecture, inner: bool) -> None:
        """Per inner on-chip level: (output blocks, k tiles, c tiles, orders) it may take;
        row 0 of each tile axis (-1) means the parent's size. ``inner`` False: only that
        (every level holds the level-1 tile, the single tiling)."""
        rsel0, kts0, cts0 = grid_axes(layer, arch, 0)
        onchip = arch.onchip
        self.inner_axes = []
        deps = {"input": {"r", "c"} | ({"k"} if layer.groups > 1 else set()),
                "weight": {"k", "c"}, "output": {"r", "k"}}
        for l in range(1, len(onchip)):
            free = set().union(*(deps[op] for m in onchip[l:] for op in m.holds)) if inner \
                else set()
            r = np.array([(-1, -1, -1)] + (rsel0 if "r" in free else []), dtype=np.int64)
            k = np.array([-1] + (kts0 if "k" in free else []), dtype=np.int64)
            c = np.array([-1] + (cts0 if "c" in free else []), dtype=np.int64)
            r, k, c = (x if len(x) > 1 else x[:1] for x in (r, k, c))
            split = [i for i, n in enumerate(LOOPS) if n in free]
            seen, orders = set(), []
            for j, o in enumerate(ORDERS):   # one order per distinct order of the free loops
                key = tuple(x for x in o if x in split)
                if key not in seen:
                    seen.add(key)
                    orders.append(j)
            self.inner_axes.append((r, k, c, np.array(orders, dtype=np.int64)))
        top = np.iinfo(np.int64).max   # row 0 (-1: the parent's size) for tiles()' min
        self._inner_take = [(tuple(np.ascontiguousarray(np.where(r == -1, top, r)[:, j])
                                   for j in range(3)),
                             np.where(k == -1, top, k), np.where(c == -1, top, c), o)
                            for r, k, c, o in self.inner_axes]

    # ---- indexing -------------------------------------------------------------------
    def decode(self, index) -> tuple[np.ndarray, ...]:
        """(dataflow, r, k, c, order, then r, k, c, order of each inner level)
        coordinates of flat indices."""
        return np.unravel_index(np.asarray(index, dtype=np.int64), self.shape)

    def encode(self, d, r, k, c, o, *inner) -> np.ndarray:
        if not inner:
            inner = (0,) * (len(self.shape) - 5)
        co = np.broadcast_arrays(d, r, k, c, o, *inner)
        return np.ravel_multi_index(co, self.shape)

    def tiles(self, coords, with_inner: bool = True):
        """Level-1 arrays (nb, pt, qt, kt, ct, order) and the inner levels' tuples of the
        decoded ``coords`` (``with_inner`` False: level 1's alone, and an empty list)."""
        d, r, k, c, o = coords[:5]
        top = (self.rsel[:, 0][r], self.rsel[:, 1][r], self.rsel[:, 2][r], self.kts[k],
               self.cts[c], o)
        inner, parent = [], top
        if not with_inner:
            return top, inner
        for i, (ra, ka, ca, oa) in enumerate(self._inner_take):
            ri, ki, ci, oi = coords[5 + 4 * i: 9 + 4 * i]
            # row 0 (the parent's size) is the largest int64: min() keeps the parent's
            parent = (np.minimum(ra[0][ri], parent[0]), np.minimum(ra[1][ri], parent[1]),
                      np.minimum(ra[2][ri], parent[2]), np.minimum(ka[ki], parent[3]),
                      np.minimum(ca[ci], parent[4]), oa[oi])
            inner.append(parent)
        return top, inner

    def points(self, index) -> Points:
        index = np.asarray(index, dtype=np.int64)
        coords = self.decode(index)
        d = coords[0]
        same = all(not np.any(x) for x in coords[5:])   # every level holds level 1's tile
        (nb, pt, qt, kt, ct, o), inner = self.tiles(coords, not same)
        ev = score_points(self.layer, self.arch, nb, pt, qt, kt, ct, o, inner, self.res)
        legal = ev.fits.copy()
        low = inner[-1] if inner else (nb, pt, qt, kt, ct)   # the tile feeding the array
        for i, name in enumerate(self.dataflows):
            sel = d == i
            if sel.any():
                legal[sel] &= fills_array(self.layer, self.arch, name,
                                          *(x[sel] for x in low[:5]))
        reads = {op: v[d] for op, v in self._reads.items()}
        acc = {op: v[d] for op, v in self._acc.items()}
        fc, fi = self._fc[d], self._fi[d]
        cts = [ct] + [lt[4] for lt in inner]   # each level's channel tile
        for i, name in enumerate(self.dataflows):
            sel = d == i
            if sel.any():
                a = self.arch.array
                _channel_tiles(DATAFLOWS[name], self._dims, (a.rows, a.cols, a.count),
                               [c[sel] for c in cts], sel, reads, acc, fc, fi)
        return Points(index=index, dataflow=d, row_folds=self._rf[d], col_folds=self._cf[d],
                      folds=self._folds[d], fold_cycles=fc,
                      fold_interval=fi,
                      reads=reads,
                      accesses=acc,
                      pe_writes={op: v[d] for op, v in self._pew.items()},
                      hops=self._hops[d],
                      tiles=ev, legal=legal, dataflows=self.dataflows)

    def seed(self, dataflow: str | None = None) -> int:
        """The least-DRAM-traffic point on the coarse grid (powers of two, multiples of
        the array's columns, full extents: ``grid_axes`` without balanced tiles) under
        ``dataflow`` (default the array's own: os, ws or is, which applies to every
        layer), among tiles that fill the array; ties go to the smaller
        unhidden first load + last store, then to fewer tiles, then to the first in
        (loop order, output block, k tile, c tile) order. Every search scores it first,
        so a searched mapping is never worse than it under the search's objective.

        When no such point fits (an inner level too small for any whole level-1 tile),
        the seed shrinks the inner tiles instead (:meth:`_seed_inner`). MappingError,
        naming the level, the operand and the size that would fit, when no tile fits
        the buffers."""
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
        idx = self.encode(np.full_like(o, d), r, k, c, o)   # inner levels: the level-1 tile
        nb, pt, qt = self.rsel[r].T
        fill = fills_array(self.layer, self.arch, self.dataflows[d], nb, pt, qt, self.kts[k],
                           self.cts[c])
        ev = score_points(self.layer, self.arch, nb[fill], pt[fill], qt[fill], self.kts[k][fill],
                          self.cts[c][fill], o[fill], res=self.res)
        best = least_traffic(ev)
        if best < 0:
            if self.inner_size > 1:
                found = self._seed_inner(idx)
                if found is not None:
                    return found
            raise_no_fit(self.layer, self.arch, ev)
        return int(idx[fill][best])

    def _seed_inner(self, idx, keep: int = 8):
        """A seed with inner tiles, for when no whole level-1 tile fits every level: the
        ``keep`` least-traffic coarse level-1 tiles that fit level 1, each completed level
        by level (outermost first) with the inner tile and order of least total transfer
        bytes that fits that level (deeper levels holding it too), the innermost one
        also filling the array; the least-traffic result. None when none completes."""
        first = self.arch.onchip[0].name
        ev = self.points(idx).tiles
        ok = np.flatnonzero(ev.usage[first] <= self.arch.onchip[0].size)
        if not ok.size:
            return None
        order = np.lexsort((ok, ev.n_tiles[ok], (ev.first_load + ev.last_store)[ok],
                            ev.traffic[ok]))
        done = []
        for start in idx[ok[order[:keep]]]:
            cur = int(start)
            coord = [int(x) for x in self.decode(cur)]
            for i, ax in enumerate(self.inner_axes):
                sizes = [len(a) for a in ax]
                grid = np.stack([x.ravel() for x in np.meshgrid(*[np.arange(n) for n in sizes],
                                                                indexing="ij")], 1)
                co = np.array(coord, dtype=np.int64)[None, :].repeat(len(grid), 0)
                co[:, 5 + 4 * i: 9 + 4 * i] = grid
                cand = np.ravel_multi_index(tuple(co.T), self.shape)
                pts = self.points(cand)
                fit = np.ones(len(cand), dtype=bool)
                for lvl in self.arch.onchip[: i + 2]:
                    fit &= pts.tiles.usage[lvl.name] <= lvl.size
                if i == len(self.inner_axes) - 1:
                    fit &= pts.legal
                if not fit.any():
                    cur = None
                    break
                moved = sum(r + w for r, w in pts.tiles.transfers.values())
                f = np.flatnonzero(fit)
                cur = int(cand[f[np.lexsort((f, moved[f]))[0]]])
                coord = [int(x) for x in self.decode(cur)]
            if cur is not None:
                done.append(cur)
        if not done:
            return None
        pts = self.points(np.array(done, dtype=np.int64))
        best = least_traffic(pts.tiles)
        return int(done[best]) if best >= 0 and pts.legal[best] else None

    def index_of(self, dataflow: str, tiling: Tiling) -> int:
        """Flat index of ``tiling`` under ``dataflow`` (it must be on the grid)."""
        d = self.dataflows.index(dataflow)
        r = np.flatnonzero((self.rsel == (tiling.images, tiling.rows, tiling.cols)).all(axis=1))
        k = np.flatnonzero(self.kts == tiling.k_tile)
        c = np.flatnonzero(self.cts == tiling.c_tile)
        o = ORDERS.index(tuple(LOOPS.index(x) for x in tiling.order))
        if not (len(r) and len(k) and len(c)):
            raise ValueError(f"tiling {tiling} is not on this mapspace's grid")
        inner = []
        levels = tiling.levels(len(self.arch.onchip)) if getattr(tiling, "inner", ()) else ()
        for (ra, ka, ca, oa), par, t in zip(self.inner_axes, levels, levels[1:]):
            ri = 0 if (t.images, t.rows, t.cols) == (par.images, par.rows, par.cols) else \
                np.flatnonzero((np.minimum(ra, (par.images, par.rows, par.cols)) ==
                                (t.images, t.rows, t.cols)).all(axis=1)[1:]) + 1
            ki = 0 if t.k_tile == par.k_tile else \
                np.flatnonzero(np.minimum(ka[1:], par.k_tile) == t.k_tile) + 1
            ci = 0 if t.c_tile == par.c_tile else \
                np.flatnonzero(np.minimum(ca[1:], par.c_tile) == t.c_tile) + 1
            oi = ORDERS.index(tuple(LOOPS.index(x) for x in t.order))
            oi = [j for j, v in enumerate(oa) if v == oi] or [0]
            co = [np.atleast_1d(x) for x in (ri, ki, ci)]
            if not all(len(x) for x in co):
                raise ValueError(f"tiling {tiling} is not on this mapspace's grid")
            inner += [int(co[0][0]), int(co[1][0]), int(co[2][0]), int(oi[0])]
        return int(self.encode(d, r[0], k[0], c[0], o, *inner))

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
                       pe_entries=tuple(sorted(self.pe_entries.items())), residency=self.res,
                       skip=self.skips[int(p.dataflow[0])] or ())


def _channel_tiles(df, dims: dict, array: tuple, c_tiles, sel, reads: dict, acc: dict,
                   fold_cycles, fold_interval) -> None:
    """Where ``df`` runs the channel tiles fed to the array as passes of their own (kco:
    :meth:`mapper.Dataflow.tile_psums`, :meth:`mapper.Dataflow.tile_cycles`), set the
    points ``sel`` (their levels' channel tiles ``c_tiles``, outermost first; ``array``
    the array's rows, cols and count): the
    output's reads and accesses in ``reads`` and ``acc``, and their fold cycles and
    interval (serial: the same) in the arrays ``fold_cycles`` and ``fold_interval``."""
    per = df.tile_psums(dims, *c_tiles)
    if per is None:
        return
    out = dims["G"] * dims["B"] * dims["P"] * dims["Q"] * dims["N"]
    for d, v in ((reads, per), (acc, per * out)):
        d["output"] = d["output"].astype(np.result_type(d["output"], v), copy=True)
        d["output"][sel] = v
    cyc = df.tile_cycles(dims, *array, *c_tiles)
    fold_cycles[sel] = cyc
    fold_interval[sel] = cyc


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


def points_of(m: Mapping, arch: Architecture, data=None) -> Points:
    """``m`` as a one-point batch on ``arch`` (its tiles scored against ``arch``'s
    buffers: ``legal`` is False when they do not fit there); ``data``
    (:class:`mapper.actual.Tensors`): transfers in data-dependent formats counted on
    the operands' values (:mod:`mapper.actual`)."""
    t = m.tiling

    def arrays(lt):
        return [np.array([v], dtype=np.int64) for v in
                (*lt.sizes, ORDERS.index(tuple(LOOPS.index(x) for x in lt.order)))]
    one = arrays(t.top)
    inner = [arrays(lt) for lt in t.levels(len(arch.onchip))[1:]] if t.inner else []
    ev = score_points(m.layer, arch, *one, inner=inner, res=m.residency, data=data)
    df = m.dataflow
    p = m.plan
    low = inner[-1] if inner else one
    legal = ev.fits & fills_array(m.layer, arch, df.name, *low[:5]) & df.applies(m.dims)
    i64 = lambda v: np.array([v], dtype=np.int64)  # noqa: E731
    reads = {op: np.array([v]) for op, v in p.reads.items()}
    acc = {op: i64(v) for op, v in p.accesses.items()}
    fc, fi = i64(p.fold_cycles), i64(df.interval(p, m.array_rows, m.preload))
    _channel_tiles(df, m.dims, (m.array_rows, m.array_cols, m.array_count), [one[4]] + [lt[4] for lt in inner],
                   np.ones(1, dtype=bool), reads, acc, fc, fi)
    return Points(index=i64(0), dataflow=i64(0), row_folds=i64(p.row_folds),
                  col_folds=i64(p.col_folds), folds=i64(p.folds),
                  fold_cycles=fc, fold_interval=fi,
                  reads=reads,
                  accesses=acc,
                  pe_writes={op: i64(v) for op, v in p.pe_writes.items()},
                  hops=i64(p.hops),
                  tiles=ev, legal=legal, dataflows=(df.name,))
