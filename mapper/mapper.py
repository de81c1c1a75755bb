"""The default mapper: dataflow folding plus the least-traffic buffer tiling.

A full mapspace search (loop orders per level, uneven tiles, objectives) comes later;
this first version is sound: every tile fits its buffers (double buffering counted),
and the tiling covers the loop nest exactly once per reuse pass.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace

from tilesim.arch import Architecture
from tilesim.workloads import MacLayer

from .dataflow import DATAFLOWS
from .mapping import Mapping
from .tiling import best_tiling


def _shape_key(layer: MacLayer) -> MacLayer:
    return replace(layer, name="", activation=None, bias=False, batchnorm=False)


def map_layer(layer: MacLayer, arch: Architecture) -> Mapping:
    """Map one MAC layer onto ``arch`` (no caching; see :class:`Mapper`)."""
    a = arch.array
    df = DATAFLOWS[a.dataflow]
    g, M, N, K = layer.gemm
    dims = {"M": M, "N": N, "K": K}
    row_folds = -(-dims[df.rows] // a.rows)
    col_folds = -(-dims[df.cols] // a.cols)
    tiling, traffic = best_tiling(layer, arch)
    return Mapping(layer=layer, dataflow=df, array_rows=a.rows, array_cols=a.cols,
                   array_count=a.count, groups=g, M=M, N=N, K=K, row_folds=row_folds,
                   col_folds=col_folds, tiling=tiling, traffic=traffic)


class Mapper:
    """Maps layers onto one architecture, mapping each distinct layer shape once."""

    def __init__(self, arch: Architecture):
        self.arch = arch
        self._cache: dict[MacLayer, Mapping] = {}

    def map(self, layer: MacLayer) -> Mapping:
        key = _shape_key(layer)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = map_layer(layer, self.arch)
        return hit if hit.layer is layer else replace(hit, layer=layer)

    @property
    def mapped_shapes(self) -> int:
        """How many distinct layer shapes this mapper has mapped (each is mapped once)."""
        return len(self._cache)


def arch_hash(arch: Architecture) -> str:
    """A digest of everything in ``arch`` (its resolved YAML form)."""
    return hashlib.sha256(arch.model_dump_json().encode()).hexdigest()[:16]


class SearchMapper:
    """Maps layers by searching the mapspace (:mod:`mapper.search`) under ``objective``.

    ``cost(layer, points) -> (cycles, energy_pj)`` is the vectorised cost model handed in
    by ``sim`` (the mapper does not import it). The foundation's least-traffic mapping is
    scored first, so the result is never worse than :func:`map_layer` under that cost.
    Results are cached per instance by (layer shape, architecture hash, objective,
    strategy, budget): identical layers are searched once.
    """

    def __init__(self, arch: Architecture, cost, objective: str = "edp",
                 strategy: str = "heuristic", budget=None, balanced: int | None = None):
        from .search import OBJECTIVES, STRATEGIES, Budget
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
        self.arch, self.cost, self.objective, self.strategy = arch, cost, objective, strategy
        self.budget = budget or Budget()
        self.balanced = balanced
        self.arch_hash = arch_hash(arch)
        self._cache: dict = {}

    def key(self, layer: MacLayer) -> tuple:
        return (_shape_key(layer), self.arch_hash, self.objective, self.strategy, self.budget)

    def map(self, layer: MacLayer) -> Mapping:
        key = self.key(layer)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._search(layer)
        return hit if hit.layer is layer else replace(hit, layer=layer)

    @property
    def mapped_shapes(self) -> int:
        """How many distinct layer shapes this mapper has mapped (each is mapped once)."""
        return len(self._cache)

    def space(self, layer: MacLayer):
        from .space import BALANCED, Mapspace
        return Mapspace(layer, self.arch, BALANCED if self.balanced is None else self.balanced)

    def _search(self, layer: MacLayer) -> Mapping:
        from .search import run_search
        default = map_layer(layer, self.arch)   # raises MappingError naming level and operand
        space = self.space(layer)
        seed = space.index_of(self.arch.array.dataflow, default.tiling)
        res = run_search(space, lambda pts: self.cost(layer, pts), self.objective,
                         self.strategy, self.budget, seeds=(seed,))
        return replace(space.mapping(res.best.index), search=res)
