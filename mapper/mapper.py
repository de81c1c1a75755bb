"""The mapper: one mapspace, one search, one cache.

:class:`Mapper` maps a MAC layer by searching its :class:`~mapper.space.Mapspace`
(:mod:`mapper.search`) for ``objective`` with the cost function ``sim`` hands it. Every
search scores :meth:`Mapspace.seed` first (the least-traffic tiling on the coarse grid),
so a mapping is never worse than that seed under its objective; the ``traffic``
objective searches for the least DRAM traffic.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace

from tilesim.arch import Architecture
from tilesim.workloads import MacLayer

from .mapping import NO_RESIDENCY, Mapping, Residency
from .search import STRATEGIES, Budget, resolve_objective, run_search
from .space import BALANCED, Mapspace


def _shape_key(layer: MacLayer) -> MacLayer:
    return replace(layer, name="", activation=None, bias=False, batchnorm=False)


def arch_hash(arch: Architecture) -> str:
    """A digest of everything in ``arch`` (its resolved YAML form)."""
    return hashlib.sha256(arch.model_dump_json().encode()).hexdigest()[:16]


class Mapper:
    """Maps layers onto one architecture by searching the mapspace under ``objective``.

    ``cost(layer, points) -> (cycles, energy_pj)`` is the vectorised cost model handed in
    by ``sim`` (the mapper does not import it). ``objective`` is one of
    :data:`mapper.OBJECTIVES` (``default`` is accepted, with a FutureWarning, as
    ``traffic``); ``budget`` a :class:`Budget` or a number of candidates per layer.
    Results are cached per instance by (layer shape, architecture hash, objective,
    strategy, budget): identical layers are searched once.
    """

    def __init__(self, arch: Architecture, cost, objective: str = "edp",
                 strategy: str = "heuristic", budget: Budget | int | None = None,
                 balanced: int = BALANCED):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
        self.arch, self.cost, self.strategy = arch, cost, strategy
        self.objective = resolve_objective(objective)
        self.budget = Budget(candidates=budget) if isinstance(budget, int) else budget or Budget()
        self.balanced = balanced
        self.arch_hash = arch_hash(arch)
        self._cache: dict = {}

    @property
    def mapped_shapes(self) -> int:
        """Distinct layer shapes mapped (searched) so far by this mapper."""
        return len(self._cache)

    def key(self, layer: MacLayer, res: Residency = NO_RESIDENCY) -> tuple:
        return (_shape_key(layer), self.arch_hash, self.objective, self.strategy, self.budget,
                res)

    def map(self, layer: MacLayer, res: Residency = NO_RESIDENCY) -> Mapping:
        """The mapping of ``layer``'s shared-weight nest (:attr:`MacLayer.nest`: a MatMul
        of two activations is mapped with its batch folded into the groups), its
        activations where ``res`` (the network planner) puts them."""
        layer = layer.nest
        key = self.key(layer, res)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._search(layer, res)
        return hit if hit.layer is layer else replace(hit, layer=layer)

    def space(self, layer: MacLayer, res: Residency = NO_RESIDENCY) -> Mapspace:
        return Mapspace(layer, self.arch, self.balanced, res=res)

    def _search(self, layer: MacLayer, res: Residency = NO_RESIDENCY) -> Mapping:
        space = self.space(layer, res)
        seed = space.seed()   # raises MappingError naming level and operand
        res = run_search(space, lambda pts: self.cost(layer, pts), self.objective,
                         self.strategy, self.budget, seeds=(seed,))
        return replace(space.mapping(res.best.index), search=res)
