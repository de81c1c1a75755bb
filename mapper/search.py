"""Searching a :class:`~mapper.space.Mapspace`: ask/tell strategies under a hard budget.

The search never computes a cost itself (the mapper does not import ``sim``): a
strategy *asks* for a batch of point indices, the driver scores them with the cost
function it was handed (``cost(points) -> (cycles, energy_pj)``, numpy arrays; the
cost model of ``sim``, wired in by ``sim``), and *tells* the strategy the
objective values. Illegal points score +inf.

Objectives (:data:`OBJECTIVES`, shared by the CLI, the API and sweep specs):
``latency`` (cycles, then energy), ``energy`` (energy, then cycles), ``edp`` (cycles x
energy, then cycles) and ``traffic`` (DRAM bytes, then the unhidden first load + last
store, then the number of tiles: the least-traffic tiling). ``default`` is a deprecated
alias of ``traffic`` (:func:`resolve_objective`).

Strategies:

* ``exhaustive``: every point, in batches: first every level-1 tiling with the same
  tile at every level (in index order), then the points with inner tiles. Exact, and
  the reference the heuristic is tested against. Each point is asked once (the seeds are
  left out of later batches), so the driver keeps no table of what it was told and the
  time is linear in the points scored (ResNet-50 layer2.0.conv1 on nvdla_small, all
  15,785,280 points: 8.4 s, 1.6 GB, as all scores are kept for the final ranking).
* ``heuristic``: random-restart coordinate descent. It scores a random sample of the
  space plus the seeds (the least-traffic tiling, :meth:`Mapspace.seed`, so it is never
  worse than that tiling; the same tiling under every dataflow the array allows), then
  descends from the seed and, per dataflow, from the best sampled point: each step scores, around the current point,
  every value of each single tile axis (output block, k tile, c tile) combined with
  every loop order, plus the whole plane of every pair of tile axes with
  every loop order (capacity-bound trades, e.g. a larger k tile for a smaller
  output block), and moves to the best; it stops when no neighbour improves. Justification:
  the cost is a sum of terms each monotone in one tile axis (traffic falls, tile bytes
  and exposed first/last transfers grow as a tile grows), so the landscape along each
  axis is close to unimodal and the joint effects come from shared capacity, which the
  pair planes cover; ``benchmarks/bench_search.py`` measures the gap to
  exhaustive.

Budget: a hard cap on scored candidates and on wall seconds; whichever comes first
stops the search (the best point so far is returned). The seeds (the least-traffic tiling)
are scored first, in a batch of their own, whatever the budget, so even a budget of one
candidate or a tiny seconds cap returns a mapping no worse than the seed. Only the
seconds cap can make a result depend on the machine; the default budget is in candidates.

Ties break deterministically: the objective's keys in turn, then a point with the same
tile at every level (the single tiling), then the lower index.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from .errors import MappingError
from .mapping import Scored, SearchResult
from .space import Mapspace, Points

OBJECTIVES = ("edp", "latency", "energy", "traffic")
STRATEGIES = ("heuristic", "exhaustive")
#: deprecated objective names -> what they mean now
DEPRECATED_OBJECTIVES = {"default": "traffic"}


def _unique(a: np.ndarray) -> np.ndarray:
    """The sorted distinct values of a 1-D integer array (``np.unique`` without its
    masked-array check, which imports numpy.ma: 17 ms of every run's start)."""
    a = np.sort(a)
    return a[np.r_[True, a[1:] != a[:-1]]] if a.size else a


def resolve_objective(name: str) -> str:
    """``name`` if it is an objective; a deprecated alias (``default``) gives its new
    name with a one-line FutureWarning (shown to users by default); anything else is a ValueError."""
    if name in DEPRECATED_OBJECTIVES:
        new = DEPRECATED_OBJECTIVES[name]
        warnings.warn(f"objective {name!r} is deprecated; it means {new!r} (the least DRAM "
                      f"traffic tiling): use {new!r}", FutureWarning, stacklevel=2)
        return new
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; use one of {', '.join(OBJECTIVES)}")
    return name


@dataclass(frozen=True)
class Budget:
    """Hard limits of one layer's search."""
    candidates: int = 100_000
    seconds: float = 10.0

    def __post_init__(self):
        if self.candidates < 1 or not self.seconds > 0:
            raise ValueError(f"search budget must be positive: {self}")


def objective_keys(objective: str, cycles, energy, pts: Points) -> tuple:
    """The arrays to minimise for ``objective``, most significant first."""
    cycles = np.asarray(cycles, dtype=np.float64)
    energy = np.asarray(energy, dtype=np.float64)
    if objective == "latency":
        return cycles, energy
    if objective == "energy":
        return energy, cycles
    if objective == "edp":
        return cycles * energy, cycles
    if objective == "traffic":
        t = pts.tiles
        return (t.traffic.astype(np.float64), (t.first_load + t.last_store).astype(np.float64),
                t.n_tiles.astype(np.float64))
    raise ValueError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")


class Exhaustive:
    """Every point of the space in index order (after the seeds), each asked once: the
    seeds are left out of the batches that reach them, so the driver needs no record of
    what it was told (:class:`Counted`) and the search stays linear in the space size."""

    chunk = 1 << 15

    def __init__(self, space: Mapspace, seeds=(), rng_seed: int = 0):
        self.space, self.seeds = space, list(dict.fromkeys(int(s) for s in seeds))
        self._seed_arr = np.array(sorted(self.seeds), dtype=np.int64)
        self._next = 0
        self._seeded = False

    def ask(self, told) -> np.ndarray | None:
        while True:
            batch = self._ask()
            if batch is None or batch is self._seed_batch or not len(self._seed_arr):
                return batch
            batch = batch[~np.isin(batch, self._seed_arr)]
            if len(batch):
                return batch

    _seed_batch = None

    def _ask(self) -> np.ndarray | None:
        if not self._seeded:
            self._seeded = True
            if self.seeds:
                self._seed_batch = np.array(self.seeds, dtype=np.int64)
                return self._seed_batch
        isz = self.space.inner_size
        outer = self.space.size // isz
        while True:
            # first every level-1 tiling with every level holding it (the space of
            # before, in its order), then the points with inner tiles
            phase2 = self._next >= outer
            end = self.space.size if phase2 else outer
            if phase2 and isz == 1 or self._next >= outer + self.space.size:
                return None
            lo = self._next - (outer if phase2 else 0)
            hi = min(end, lo + self.chunk)
            self._next = hi + (outer if phase2 else 0)
            if not phase2:
                return np.arange(lo, hi, dtype=np.int64) * isz
            batch = np.arange(lo, hi, dtype=np.int64)
            batch = batch[batch % isz != 0]
            if len(batch):
                return batch


class Heuristic:
    """Random-restart coordinate descent (see the module docstring)."""

    samples = 256
    restarts = 1
    inner_candidates = 6_000    # phase 2's own cap (within the budget)

    def __init__(self, space: Mapspace, seeds=(), rng_seed: int = 0):
        self.space, self.seeds = space, [int(s) for s in seeds]
        self.rng = np.random.default_rng(rng_seed)
        self._gen = None
        self._stop = np.inf   # phase 2's candidate cap, once it starts

    def ask(self, told: Told) -> np.ndarray | None:
        if self._gen is None:
            self._gen = self._run(told)
        try:
            return next(self._gen)
        except StopIteration:
            return None

    def _neighbours(self, cur: int) -> np.ndarray:
        """Outer indices around outer point ``cur``: every value of each level-1 tile axis,
        and every pair of them, each with every loop order (its dataflow kept)."""
        shape = self.space.outer_shape
        coord = [int(x) for x in np.unravel_index(cur, shape)]
        stride = [int(np.prod(shape[i + 1:])) for i in range(5)]   # C order; stride[4] == 1
        base = sum(c * st for c, st in zip(coord[:4], stride[:4]))  # at loop order 0
        orders = np.arange(shape[4])

        def axis(ax, dims):   # values of axis ``ax`` along a new leading dimension
            return (np.arange(shape[ax]) * stride[ax]).reshape((-1,) + (1,) * dims)
        out = []
        for ax in (1, 2, 3):
            out.append((base - coord[ax] * stride[ax] + axis(ax, 1) + orders).ravel())
        for a1, a2 in ((1, 2), (1, 3), (2, 3)):   # whole planes of tile-axis pairs
            b = base - coord[a1] * stride[a1] - coord[a2] * stride[a2]
            out.append((b + axis(a1, 2) + axis(a2, 1) + orders).ravel())
        return np.concatenate(out)   # may repeat a point; the driver scores it once

    def _inner_neighbours(self, cur: int) -> np.ndarray:
        """Full indices around ``cur`` for the inner-tile descent: each tile axis of any
        level with every order of that level; every pair of tile axes of one level; and every pair of tile axes of two levels (e.g. a
        larger parent tile for an unchanged child: what a small inner level needs)."""
        sp = self.space
        shape = sp.shape
        coord = np.array([int(x) for x in sp.decode(cur)], dtype=np.int64)
        stride = np.array([int(np.prod(shape[i + 1:], dtype=object)) for i in range(len(shape))],
                          dtype=np.int64)
        base = int((coord * stride).sum())
        nlev = 1 + (len(shape) - 5) // 4
        tile_ax = [(1, 2, 3)] + [tuple(5 + 4 * i + j for j in range(3)) for i in range(nlev - 1)]
        tile_ax = [tuple(a for a in ta if shape[a] > 1) for ta in tile_ax]
        order_ax = [4] + [8 + 4 * i for i in range(nlev - 1)]

        def vals(ax):
            return (np.arange(shape[ax]) - coord[ax]) * stride[ax]
        out = []
        for lv in range(nlev):
            o = np.zeros(1, dtype=np.int64)   # pairs keep the orders (singles vary them)
            for a in tile_ax[lv]:
                out.append((base + vals(a)[:, None] + vals(order_ax[lv])[None, :]).ravel())
            for i, a1 in enumerate(tile_ax[lv]):
                for a2 in tile_ax[lv][i + 1:]:
                    out.append((base + vals(a1)[:, None, None] + vals(a2)[None, :, None]
                                + o[None, None, :]).ravel())
        for l1 in range(nlev):   # pairs of axes of two levels
            for l2 in range(l1 + 1, nlev):
                for a1 in tile_ax[l1]:
                    for a2 in tile_ax[l2]:
                        out.append((base + vals(a1)[:, None] + vals(a2)[None, :]).ravel())
        return np.concatenate(out)

    def _descend(self, told: "Told", starts, neighbours, full):
        done = set()
        for cur in dict.fromkeys(starts):
            while cur not in done:
                if told.count >= self._stop:
                    return
                done.add(cur)
                nb = full(neighbours(cur))
                new = nb[~told.known(nb)]
                if len(new):
                    yield _unique(new)
                nb = nb[told.known(nb)]
                if not len(nb):     # the budget cut this neighbourhood off
                    self._cut = True
                    return
                best = int(nb[told.rank(nb)[0]])
                if told.key(best) < told.key(full(cur)):
                    cur = best // self._unit
        return

    def _run(self, told: "Told"):
        sp = self.space
        isz = sp.inner_size
        full = lambda a: np.asarray(a, dtype=np.int64) * isz  # noqa: E731  (inner tiles: level 1's)
        outer = int(np.prod(sp.outer_shape))
        nd = sp.shape[0]
        per_df = outer // nd
        n = min(self.samples, per_df)
        seeds = _unique(np.array(self.seeds, dtype=np.int64))
        if len(seeds):   # scored on their own first, so any budget keeps them
            yield seeds
        # phase 1: the level-1 tiling with every level holding it (the search of before)
        oseeds = np.asarray(self.seeds, dtype=np.int64) // isz
        first = [seeds]
        for d in range(nd):   # the same tiling under every dataflow, plus a random sample
            first += [full(d * per_df + oseeds % per_df),
                      full(d * per_df + (self.rng.choice(per_df, size=n, replace=False)
                                         if per_df > n else np.arange(n)))]
        first = _unique(np.concatenate(first))
        yield first
        starts = list(oseeds.tolist())
        for d in range(nd):   # each dataflow descends from its own best sampled point
            mine = first[first // isz // per_df == d]
            starts += (mine[told.rank(mine)][:self.restarts] // isz).tolist()
        self._cut, self._unit = False, isz
        yield from self._descend(told, starts, self._neighbours, full)
        if self._cut or isz == 1:
            return
        # phase 2: inner tiles, from the best point so far (never worse than phase 1) and
        # from the best of a random sample of the whole space per dataflow
        self._unit = 1
        self._stop = told.count + self.inner_candidates
        starts = [told.best()]
        per = sp.size // nd
        m = min(self.samples, per)
        for d in range(nd):
            sample = d * per + _unique(self.rng.integers(0, per, size=m, dtype=np.int64))
            new = sample[~told.known(sample)]
            if len(new):
                yield new
            if not told.known(sample).all():
                return
            starts.append(int(sample[told.rank(sample)[0]]))
        yield from self._descend(told, starts, self._inner_neighbours, lambda a: a)


class Counted:
    """What :class:`Exhaustive` needs the driver to record of what it was told: the number
    of points scored (it asks each point once, so no table of keys is kept)."""

    def __init__(self):
        self.count = 0

    def tell(self, idx, keys) -> None:
        self.count += len(idx)


class Told:
    """What the strategies have been told: the objective's keys per point index (a dense
    table for spaces up to :attr:`DENSE` points, sorted arrays beyond)."""

    DENSE = 1 << 21   # 16 MiB per objective key

    def __init__(self, size: int):
        self.size = size
        self.dense = size <= self.DENSE
        self.k = np.full((1, size if self.dense else 0), np.nan)   # widened by the first tell
        self.idx = np.zeros(0, dtype=np.int64)                    # sparse: sorted indices
        self.count = 0

    def _pos(self, idx):
        """Sparse: positions of ``idx`` in the sorted table and whether they are there."""
        idx = np.asarray(idx, dtype=np.int64)
        pos = np.searchsorted(self.idx, idx)
        ok = pos < len(self.idx)
        ok[ok] = self.idx[pos[ok]] == idx[ok]
        return pos, ok

    def tell(self, idx, keys) -> None:
        idx = np.asarray(idx, dtype=np.int64)
        if self.dense:
            if self.k.shape[0] != len(keys):
                self.k = np.full((len(keys), self.size), np.nan)
            self.count += int(np.isnan(self.k[0, idx]).sum())
            for row, v in zip(self.k, keys):
                row[idx] = v
            return
        if self.k.shape[0] != len(keys):
            self.k = np.zeros((len(keys), 0))
        _, ok = self._pos(idx)
        idx, keys = idx[~ok], np.stack([np.broadcast_to(v, idx.shape)[~ok] for v in keys])
        idx, first = np.unique(idx, return_index=True)
        self.count += len(idx)
        allidx = np.concatenate([self.idx, idx])
        allk = np.concatenate([self.k, keys[:, first]], axis=1)
        o = np.argsort(allidx, kind="stable")
        self.idx, self.k = allidx[o], allk[:, o]

    def known(self, idx) -> np.ndarray:
        if self.dense:
            return ~np.isnan(self.k[0, idx])
        return self._pos(idx)[1]

    def _keys(self, idx) -> np.ndarray:
        if self.dense:
            return self.k[:, idx]
        return self.k[:, self._pos(idx)[0]]

    def key(self, i: int) -> tuple:
        return (*self._keys(np.array([i]))[:, 0], i)

    def rank(self, idx) -> np.ndarray:
        """Positions of ``idx`` (all told) sorted best first (ties: lower index)."""
        return np.lexsort((idx, *self._keys(idx)[::-1]))

    def best(self) -> int:
        """The best point told so far."""
        idx = np.flatnonzero(~np.isnan(self.k[0])) if self.dense else self.idx
        return int(idx[self.rank(idx)[0]])


def run_search(space: Mapspace, cost, objective: str = "latency", strategy: str = "heuristic",
               budget: Budget | None = None, seeds=(), keep: int = 5) -> SearchResult:
    """Search ``space`` for the best point under ``objective``; ``cost(points)`` returns
    (cycles, energy_pj) arrays. ``seeds`` are scored first (e.g. :meth:`Mapspace.seed`)."""
    budget = budget or Budget()
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown search strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    strat = (Exhaustive if strategy == "exhaustive" else Heuristic)(space, seeds)
    t0 = time.perf_counter()
    told = Told(space.size) if strategy == "heuristic" else Counted()
    idx_all, cyc_all, en_all, keys_all = [], [], [], []
    complete, truncated = True, False
    while True:
        left = budget.candidates - told.count
        if left <= 0 or (idx_all and time.perf_counter() - t0 > budget.seconds):
            complete = not truncated and strat.ask(told) is None
            break
        batch = strat.ask(told)
        if batch is None:
            break
        truncated = len(batch) > left
        batch = _unique(batch[~told.known(batch)])[:left] if strategy == "heuristic" else (
            batch[:left])
        pts = space.points(batch)
        cycles, energy = cost(pts)
        keys = tuple(np.where(pts.legal, k, np.inf)
                     for k in objective_keys(objective, cycles, energy, pts))
        told.tell(batch, keys)
        idx_all.append(batch)
        cyc_all.append(np.asarray(cycles))
        en_all.append(np.asarray(energy))
        keys_all.append(np.stack(keys))
    idx = np.concatenate(idx_all)
    keys = np.concatenate(keys_all, axis=1)
    cyc, en = np.concatenate(cyc_all), np.concatenate(en_all)
    # ties: the point with every level holding the level-1 tile, then the lower index
    order = np.lexsort((idx, idx % space.inner_size != 0, *keys[::-1]))
    order = order[np.isfinite(keys[0, order])]
    if not len(order):
        what = (f"the search budget ({budget.candidates} candidates, {budget.seconds:g} s) ran "
                f"out after {told.count} of {space.size} candidates" if not complete else
                f"none of the {space.size} candidates fits the buffers")
        raise MappingError(f"layer {space.layer.name!r}: no legal mapping found: {what}",
                           fix="raise the search budget (--search-budget; API: budget=) or the "
                               "buffer sizes")
    # runner-ups: the next best *distinct costs* (points tied on both keys, e.g. loop
    # orders that do not matter when a loop has one trip, are listed once)
    kk = keys[:, order]   # sorted: equal costs are adjacent
    order = order[np.flatnonzero(np.r_[True, (kk[:, 1:] != kk[:, :-1]).any(axis=0)])][:keep + 1]
    sc = [Scored(int(idx[i]), int(cyc[i]), float(en[i])) for i in order]
    return SearchResult(best=sc[0], runner_ups=tuple(sc[1:]), objective=objective,
                        strategy=strategy, evaluated=told.count, space_size=space.size,
                        complete=complete, seconds=time.perf_counter() - t0)
