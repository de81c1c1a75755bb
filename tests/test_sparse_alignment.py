"""The mapper only proposes tiles that hold whole units of the formats a level declares
(mapper.sparse.aligned_tiles): whole N:M blocks of nm weights, whole filters of csr
weights, whole rows of csr activations. On every such tile a format's bytes are its
definition, so the functional executor, which encodes every DRAM tile for real, moves
exactly the cost model's DRAM bytes for nm weights at any point of the mapspace, and
for csr weights and outputs at their counted densities (each value moved equally
often)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import seed_mapping
from test_executor import retile, tilings
from test_executor_formats import counted, dram_access, fmt_arch, operands
from tilesim.mapper import Mapspace
from tilesim.mapper.sparse import aligned_tiles
from tilesim.mapper.tiling import grid_axes
from tilesim.sim.kernels import conv2d_layer
from tilesim.sim.kernels.executor import execute
from tilesim.workloads.ir import conv
from tilesim.workloads.sparsity import Sparsity


def _points(space, n, seed):
    """``n`` distinct random indices of ``space`` (every inner level at its parent's
    tile: the executor walks the DRAM tiles)."""
    rng = np.random.default_rng(seed)
    outer = int(np.prod(space.outer_shape))
    idx = np.unique(rng.integers(0, outer, size=n))
    d, r, k, c, o = np.unravel_index(idx, space.outer_shape)
    return space.encode(d, r, k, c, o)


# (layer, N:M): 3x3 filters of 6 channels cut into 4-blocks straddle channel tiles of 1,
# 2, 3 or 5 channels; 1x1 filters of 12 channels cut into 8-blocks straddle tiles of 4
NM_CASES = [(conv("c3", 1, 6, 5, 5, 4, 3, 3, pad=1), (2, 4)),
            (conv("c1", 1, 12, 4, 4, 3, 1, 1), (1, 8)),
            (conv("dw", 1, 8, 6, 6, 8, 3, 3, groups=2), (1, 4))]


@pytest.mark.parametrize("layer,nm", NM_CASES, ids=[l.name for l, _ in NM_CASES])
def test_nm_channel_tiles_hold_whole_blocks(layer, nm):
    from dataclasses import replace
    sl = replace(layer, sparsity=Sparsity(nm=nm))
    rs, cg = layer.R * layer.S, layer.C // layer.groups
    _, _, dense_cts = grid_axes(layer, fmt_arch({"weight": "nm"}), 0)
    _, _, cts = grid_axes(sl, fmt_arch({"weight": "nm"}), 8)
    assert cts and all(c >= cg or c * rs % nm[1] == 0 for c in cts)
    assert cg in cts
    # the filter removes something here (the case is one that can straddle) ...
    _, _, all_cts = grid_axes(sl, fmt_arch(), 8)
    assert set(cts) < set(all_cts)
    # ... and nothing without N:M weights or without an nm level
    assert dense_cts == grid_axes(layer, fmt_arch(), 0)[2]


def test_csr_keeps_whole_filters_and_rows():
    layer = conv("c", 1, 8, 6, 6, 4, 3, 3, pad=1)
    rsel, cts = aligned_tiles(layer, fmt_arch({"weight": "csr"}), [(1, 1, 2), (1, 2, 6)],
                              [1, 2, 8])
    assert (rsel, cts) == ([(1, 1, 2), (1, 2, 6)], [8])
    rsel, cts = aligned_tiles(layer, fmt_arch({"output": "csr"}), [(1, 1, 2), (1, 2, 6)],
                              [1, 2, 8])
    assert (rsel, cts) == ([(1, 2, 6)], [1, 2, 8])
    # a dense architecture keeps every candidate
    assert aligned_tiles(layer, fmt_arch(), [(1, 1, 2)], [1, 2]) == ([(1, 1, 2)], [1, 2])


@pytest.mark.parametrize("layer,nm", NM_CASES, ids=[l.name for l, _ in NM_CASES])
def test_nm_weight_bytes_equal_the_cost_model_at_every_mapspace_point(layer, nm):
    """nm's size depends on the structure only: at any point the mapper may choose, the
    executor's DRAM weight bits / 8 are the cost model's DRAM weight bytes."""
    a = fmt_arch({"weight": "nm"})
    x, w = operands(layer, 3, 0.7, 1.0, nm)
    sl = counted(layer, x, w, nm)
    space = Mapspace(sl, a)
    ref = conv2d_layer(layer, x, w)
    for i in _points(space, 12, 5):
        m = space.mapping(int(i))
        ex = execute(m, x, w, arch=a)
        assert np.array_equal(ex.output, ref)
        assert dram_access(m, a)["weight"][0] == ex.dram_bits["weight"][0] // 8, m.tiling


@pytest.mark.parametrize("op", ["weight", "output"])
def test_csr_bytes_equal_the_cost_model_at_every_mapspace_point(op):
    """csr weights (whole filters) and outputs (whole rows) at counted densities: each
    value is moved as often as any other, so the executor's bits are the cost model's
    bytes (x 8, truncated: sim.cost keeps whole bytes)."""
    layer = conv("c", 1, 6, 6, 6, 8, 3, 3, pad=1)
    a = fmt_arch({op: "csr"})
    x, w = operands(layer, 11, 0.6, 0.4)
    sl = counted(layer, x, w)
    space = Mapspace(sl, a)
    for i in _points(space, 12, 7):
        m = space.mapping(int(i))
        ex = execute(m, x, w, arch=a)
        r, wr = ex.dram_bits[op]
        got = dram_access(m, a)[op]
        assert got[0] in (r // 8, (r - 1) // 8 if r else 0), (m.tiling, got, r / 8)
        assert got[1] in (wr // 8, (wr - 1) // 8 if wr else 0), (m.tiling, got, wr / 8)


@settings(max_examples=25, deadline=None)
@given(st.data(), st.integers(1, 3), st.integers(1, 2), st.integers(1, 4),
       st.sampled_from(["bitmask", "csr"]), st.integers(0, 2 ** 31))
def test_halo_bytes_are_exact_when_every_tile_has_the_density(data, r, stride, half, fmt,
                                                               seed):
    """Overlapping halos re-fetch some input rows more often than others, so random zeros
    make the executor's bytes differ from the density model's (docs/sparsity.md). When
    every fetched window has exactly the layer's density, they are equal: every other
    input channel all zeros, the others none, channel tiles of an even count (any
    rows, columns, kernel, stride, padding and loop order: padding is fetched by
    neither)."""
    C = 2 * half
    h = data.draw(st.integers(r, 9))
    pad = data.draw(st.integers(0, r // 2))
    layer = conv("c", 1, C, h, h + data.draw(st.integers(0, 2)), 3, r, stride=stride,
                 pad=pad)
    rng = np.random.default_rng(seed)
    x = (rng.integers(1, 128, (1, C, layer.H, layer.W))
         * (np.arange(C) % 2 == 0)[None, :, None, None]).astype(np.int8)
    w = rng.integers(-128, 128, (layer.K, C, r, r)).astype(np.int8)
    sl = counted(layer, x, w)
    assert sl.sparsity.input == 0.5
    t = data.draw(tilings(layer))
    t["c_tile"] = 2 * data.draw(st.integers(1, half))
    a = fmt_arch({"input": fmt})
    if fmt == "csr":
        t["cols"] = layer.Q   # whole rows (aligned tiles)
    m = retile(seed_mapping(sl, a), **t)
    ex = execute(m, x, w, arch=a)
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))
    r_bits = ex.dram_bits["input"][0]
    got = dram_access(m, a)["input"][0]
    assert got in (r_bits // 8, (r_bits - 1) // 8), (m.tiling, got, r_bits / 8)
