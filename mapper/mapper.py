"""The default mapper: dataflow folding plus the least-traffic buffer tiling.

A full mapspace search (loop orders per level, uneven tiles, objectives) comes later;
this first version is sound: every tile fits its buffers (double buffering counted),
and the tiling covers the loop nest exactly once per reuse pass.
"""
from __future__ import annotations

from dataclasses import replace

from arch import Architecture
from workloads import MacLayer

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
