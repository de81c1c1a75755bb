"""Searching a :class:`~mapper.space.Mapspace`: ask/tell strategies under a hard budget.

The search never computes a cost itself (the mapper does not import ``sim``): a
strategy *asks* for a batch of point indices, the driver scores them with the cost
function it was handed (``cost(points) -> (cycles, energy_pj)``, numpy arrays; the
analytic model's vectorised form, wired in by ``sim``), and *tells* the strategy the
objective values. Illegal points score +inf.

Strategies:

* ``exhaustive``: every point, in index order, in batches. Exact, and the reference
  the heuristic is tested against; fine for spaces up to a few million points.
* ``heuristic``: random-restart coordinate descent. It scores a random sample of the
  space plus the foundation's least-traffic mapping (so it is never worse than the
  default mapper; the same tiling under every dataflow the array allows), then descends
  from the default mapping and, per dataflow, from the best sampled point: each step scores, around the current point,
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
stops the search (the best point so far is returned). The seeds (the default mapping)
are scored first, in a batch of their own, whatever the budget, so even a budget of one
candidate or a tiny seconds cap returns a mapping no worse than the default. Only the
seconds cap can make a result depend on the machine; the default budget is in candidates.

Ties break deterministically: objective, then the secondary metric (energy for the
latency objective, cycles otherwise), then the lower index.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .errors import MappingError
from .space import Mapspace

OBJECTIVES = ("latency", "energy", "edp")
STRATEGIES = ("heuristic", "exhaustive")


@dataclass(frozen=True)
class Budget:
    """Hard limits of one layer's search."""
    candidates: int = 100_000
    seconds: float = 10.0

    def __post_init__(self):
        if self.candidates < 1 or not self.seconds > 0:
            raise ValueError(f"search budget must be positive: {self}")


@dataclass(frozen=True)
class Scored:
    """One scored mapping: its point index, cycles (count), energy (pJ)."""
    index: int
    cycles: int
    energy_pj: float


@dataclass(frozen=True)
class SearchResult:
    best: Scored
    runner_ups: tuple[Scored, ...]   # the next best distinct costs, best first
    objective: str
    strategy: str
    evaluated: int                   # candidates scored
    space_size: int
    complete: bool                   # False when the budget stopped the search early
    seconds: float


def objective_keys(objective: str, cycles, energy):
    """(primary, secondary) arrays to minimise for ``objective``."""
    cycles = np.asarray(cycles, dtype=np.float64)
    energy = np.asarray(energy, dtype=np.float64)
    if objective == "latency":
        return cycles, energy
    if objective == "energy":
        return energy, cycles
    if objective == "edp":
        return cycles * energy, cycles
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
        sp = self.space
        coord = [int(x) for x in sp.decode(cur)]
        orders = np.arange(sp.shape[4])
        out = []
        for ax in (1, 2, 3):
            grid = [np.array([v]) for v in coord[:4]] + [orders]
            grid[ax] = np.arange(sp.shape[ax])
            out.append(np.ravel_multi_index(np.meshgrid(*grid, indexing="ij"), sp.shape).ravel())
        for a1, a2 in ((1, 2), (1, 3), (2, 3)):   # whole planes of tile-axis pairs
            grid = [np.array([v]) for v in coord[:4]] + [orders]
            grid[a1], grid[a2] = np.arange(sp.shape[a1]), np.arange(sp.shape[a2])
            out.append(np.ravel_multi_index(np.meshgrid(*grid, indexing="ij"), sp.shape).ravel())
        return np.concatenate(out)   # may repeat a point; the driver scores it once

    def _run(self, told: "Told"):
        sp = self.space
        nd = sp.shape[0]
        per_df = sp.size // nd
        n = min(self.samples, per_df)
        seeds = np.unique(np.array(self.seeds, dtype=np.int64))
        if len(seeds):   # scored on their own first, so any budget keeps them
            yield seeds
        first = [seeds]
        for d in range(nd):   # the same tiling under every dataflow, plus a random sample
            first += [d * per_df + np.asarray(self.seeds, dtype=np.int64) % per_df,
                      d * per_df + (self.rng.choice(per_df, size=n, replace=False)
                                    if per_df > n else np.arange(n))]
        first = np.unique(np.concatenate(first))
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
                    yield np.unique(new)
                nb = nb[told.known(nb)]
                if not len(nb):     # the budget cut this neighbourhood off
                    return
                best = int(nb[told.rank(nb)[0]])
                if told.key(best) < told.key(cur):
                    cur = best


class Told:
    """What the strategies have been told: (primary, secondary) per point index."""

    def __init__(self, size: int):
        self.k1 = np.full(size, np.nan)
        self.k2 = np.full(size, np.nan)
        self.count = 0

    def tell(self, idx, k1, k2) -> None:
        self.count += int(np.isnan(self.k1[idx]).sum())
        self.k1[idx], self.k2[idx] = k1, k2

    def known(self, idx) -> np.ndarray:
        return ~np.isnan(self.k1[idx])

    def __contains__(self, i) -> bool:
        return not np.isnan(self.k1[i])

    def key(self, i: int) -> tuple:
        return (self.k1[i], self.k2[i], i)

    def rank(self, idx) -> np.ndarray:
        """Positions of ``idx`` (all told) sorted best first (ties: lower index)."""
        return np.lexsort((idx, self.k2[idx], self.k1[idx]))


def run_search(space: Mapspace, cost, objective: str = "latency", strategy: str = "heuristic",
               budget: Budget | None = None, seeds=(), keep: int = 5) -> SearchResult:
    """Search ``space`` for the best point under ``objective``; ``cost(points)`` returns
    (cycles, energy_pj) arrays. ``seeds`` are scored first (e.g. the default mapping)."""
    budget = budget or Budget()
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown search strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    objective_keys(objective, [0], [0])  # validates the name
    strat = (Exhaustive if strategy == "exhaustive" else Heuristic)(space, seeds)
    t0 = time.perf_counter()
    told = Told(space.size)
    idx_all, cyc_all, en_all, k1_all, k2_all = [], [], [], [], []
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
        batch = np.unique(batch[~told.known(batch)])[:left] if strategy == "heuristic" else (
            batch[:left])
        pts = space.points(batch)
        cycles, energy = cost(pts)
        k1, k2 = objective_keys(objective, cycles, energy)
        k1 = np.where(pts.legal, k1, np.inf)
        k2 = np.where(pts.legal, k2, np.inf)
        told.tell(batch, k1, k2)
        idx_all.append(batch)
        cyc_all.append(np.asarray(cycles))
        en_all.append(np.asarray(energy))
        k1_all.append(k1)
        k2_all.append(k2)
    idx = np.concatenate(idx_all)
    k1, k2 = np.concatenate(k1_all), np.concatenate(k2_all)
    cyc, en = np.concatenate(cyc_all), np.concatenate(en_all)
    order = np.lexsort((idx, k2, k1))
    order = order[np.isfinite(k1[order])]
    if not len(order):
        what = (f"the search budget ({budget.candidates} candidates, {budget.seconds:g} s) ran "
                f"out after {told.count} of {space.size} candidates" if not complete else
                f"none of the {space.size} candidates fits the buffers")
        raise MappingError(f"layer {space.layer.name!r}: no legal mapping found: {what}",
                           fix="raise the search budget (--search-budget) or the buffer sizes")
    # runner-ups: the next best *distinct costs* (points tied on both keys, e.g. loop
    # orders that do not matter when a loop has one trip, are listed once)
    _, first = np.unique(np.stack([k1[order], k2[order]]), axis=1, return_index=True)
    order = order[np.sort(first)][:keep + 1]
    sc = [Scored(int(idx[i]), int(cyc[i]), float(en[i])) for i in order]
    return SearchResult(best=sc[0], runner_ups=tuple(sc[1:]), objective=objective,
                        strategy=strategy, evaluated=told.count, space_size=space.size,
                        complete=complete, seconds=time.perf_counter() - t0)
