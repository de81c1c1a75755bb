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

* ``exhaustive``: every point, in index order, in batches. Exact, and the reference
  the heuristic is tested against; fine for spaces up to a few million points.
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

Ties break deterministically: the objective's keys in turn, then the lower index.
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
    """Every point of the space in index order (after the seeds)."""

    chunk = 1 << 15

    def __init__(self, space: Mapspace, seeds=(), rng_seed: int = 0):
        self.space, self.seeds = space, [int(s) for s in seeds]
        self._next = 0
        self._seeded = False

    def ask(self, told: Told) -> np.ndarray | None:
        if not self._seeded:
            self._seeded = True
            if self.seeds:
                return np.array(self.seeds, dtype=np.int64)
        if self._next >= self.space.size:
            return None
        lo, self._next = self._next, min(self.space.size, self._next + self.chunk)
        return np.arange(lo, self._next, dtype=np.int64)


class Heuristic:
    """Random-restart coordinate descent (see the module docstring)."""

    samples = 256
    restarts = 1

    def __init__(self, space: Mapspace, seeds=(), rng_seed: int = 0):
        self.space, self.seeds = space, [int(s) for s in seeds]
        self.rng = np.random.default_rng(rng_seed)
        self._gen = None

    def ask(self, told: Told) -> np.ndarray | None:
        if self._gen is None:
            self._gen = self._run(told)
        try:
            return next(self._gen)
        except StopIteration:
            return None

    def _neighbours(self, cur: int) -> np.ndarray:
        """Flat indices around ``cur``: every value of each tile axis, and every pair of
        tile axes, each with every loop order (its dataflow kept)."""
        sp = self.space
        shape = sp.shape
        coord = [int(x) for x in sp.decode(cur)]
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

    def _run(self, told: "Told"):
        sp = self.space
        nd = sp.shape[0]
        per_df = sp.size // nd
        n = min(self.samples, per_df)
        seeds = _unique(np.array(self.seeds, dtype=np.int64))
        if len(seeds):   # scored on their own first, so any budget keeps them
            yield seeds
        first = [seeds]
        for d in range(nd):   # the same tiling under every dataflow, plus a random sample
            first += [d * per_df + np.asarray(self.seeds, dtype=np.int64) % per_df,
                      d * per_df + (self.rng.choice(per_df, size=n, replace=False)
                                    if per_df > n else np.arange(n))]
        first = _unique(np.concatenate(first))
        yield first
        starts = list(self.seeds)
        for d in range(nd):   # each dataflow descends from its own best sampled point
            mine = first[first // per_df == d]
            starts += mine[told.rank(mine)][:self.restarts].tolist()
        done = set()
        for cur in dict.fromkeys(starts):
            while cur not in done:
                done.add(cur)
                nb = self._neighbours(cur)
                new = nb[~told.known(nb)]
                if len(new):
                    yield _unique(new)
                nb = nb[told.known(nb)]
                if not len(nb):     # the budget cut this neighbourhood off
                    return
                best = int(nb[told.rank(nb)[0]])
                if told.key(best) < told.key(cur):
                    cur = best


class Told:
    """What the strategies have been told: the objective's keys per point index."""

    def __init__(self, size: int):
        self.size = size
        self.k = np.full((1, size), np.nan)   # (keys, size); widened by the first tell
        self.count = 0

    def tell(self, idx, keys) -> None:
        if self.k.shape[0] != len(keys):
            self.k = np.full((len(keys), self.size), np.nan)
        self.count += int(np.isnan(self.k[0, idx]).sum())
        for row, v in zip(self.k, keys):
            row[idx] = v

    def known(self, idx) -> np.ndarray:
        return ~np.isnan(self.k[0, idx])

    def key(self, i: int) -> tuple:
        return (*self.k[:, i], i)

    def rank(self, idx) -> np.ndarray:
        """Positions of ``idx`` (all told) sorted best first (ties: lower index)."""
        return np.lexsort((idx, *self.k[::-1, idx]))


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
    told = Told(space.size)
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
    order = np.lexsort((idx, *keys[::-1]))
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
