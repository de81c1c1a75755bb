"""The tile-by-tile executor reproduces the reference kernel bit-exactly for every
mapping the mapper makes and for any tiling and loop order; a broken tile sequence
(skipped tile, repeated tile, wrong reduction split) is caught."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from conftest import make_arch, seed_mapping
from tilesim.mapper import MappingError
from tilesim.mapper.tiling import ORDERS, iter_tiles
from tilesim.mapper.mapping import LOOPS
from tilesim.sim.kernels import conv2d_layer
from tilesim.sim.kernels.executor import execute
from tilesim.sim.verify import _compare
from tilesim.workloads.ir import conv, fc

FAST = settings(max_examples=25, deadline=None)


@st.composite
def layers(draw):
    g = draw(st.sampled_from([1, 1, 2, 4]))
    cg, kg = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    if draw(st.booleans()) and g == 1:
        return fc("f", draw(st.integers(1, 3)), cg * 4, kg * 3)
    r = draw(st.integers(1, 3))
    stride, pad, dil = draw(st.integers(1, 2)), draw(st.integers(0, 1)), draw(st.integers(1, 2))
    h = draw(st.integers(max(1, (r - 1) * dil + 1 - 2 * pad), 9))
    return conv("c", draw(st.integers(1, 2)), g * cg, h, h + draw(st.integers(0, 2)), g * kg, r,
                stride=stride, pad=pad, dilation=dil, groups=g)


def retile(m, **kw):
    """``m`` with its tiling's sizes / order replaced (trip counts recomputed)."""
    tl = replace(m.tiling, **kw)
    L = m.layer
    cd = lambda a, b: -(-a // b)  # noqa: E731
    trips = (cd(L.N, tl.images) * cd(L.P, tl.rows) * cd(L.Q, tl.cols), cd(L.K, tl.k_tile),
             cd(L.C // L.groups, tl.c_tile))
    return replace(m, tiling=replace(tl, trips=trips))


def operands(layer, seed, dtype=np.int8):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (layer.N, layer.C, layer.H, layer.W)).astype(dtype)
    w = rng.integers(-128, 128, (layer.K, layer.C // layer.groups, layer.R, layer.S)).astype(dtype)
    return x, w


@FAST
@given(layers(), st.sampled_from(["os", "ws", "is"]), st.integers(1, 8), st.integers(1, 8),
       st.sampled_from(["256 B", "512 B", "1 KiB", "64 KiB"]), st.integers(0, 2 ** 31))
def test_mapper_mapping_executes_bit_exact(layer, df, rows, cols, size, seed):
    """The mapper's own tiling (small buffers force many tiles) equals the reference."""
    try:
        m = seed_mapping(layer, make_arch(rows=rows, cols=cols, dataflow=df, size=size))
    except MappingError:
        assume(False)
    x, w = operands(layer, seed)
    ex = execute(m, x, w)
    assert ex.tiles == m.tiling.n_tiles
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))


@st.composite
def tilings(draw, layer):
    nb = draw(st.integers(1, layer.N))
    pt = draw(st.integers(1, layer.P))
    qt = draw(st.integers(1, layer.Q))
    kt = draw(st.integers(1, layer.K))
    ct = draw(st.integers(1, layer.C // layer.groups))
    order = tuple(LOOPS[i] for i in draw(st.sampled_from(ORDERS)))
    return dict(images=nb, rows=pt, cols=qt, k_tile=kt, c_tile=ct, order=order)


@FAST
@given(st.data(), layers(), st.integers(0, 2 ** 31))
def test_any_tiling_and_order_executes_bit_exact(data, layer, seed):
    """Any tile sizes (edge tiles, tiles cutting through groups) in any loop order, partial
    sums carried across reduction tiles, give the reference output exactly."""
    m = retile(seed_mapping(layer, make_arch()), **data.draw(tilings(layer)))
    tl = m.tiling
    x, w = operands(layer, seed)
    ex = execute(m, x, w)
    assert ex.tiles == tl.n_tiles
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))
    trips = dict(zip(("r", "k", "c"), tl.trips))
    inside_c = [lp for lp in tl.order[tl.order.index("c") + 1:] if trips[lp] > 1]
    # partial sums are read back exactly when an r or k loop with more than one trip
    # turns inside the split reduction loop
    assert (ex.psum_reloads > 0) == (trips["c"] > 1 and bool(inside_c))


@settings(max_examples=10, deadline=None)
@given(layers(), st.integers(0, 2 ** 31))
@pytest.mark.slow  # fp32 tile execution of several layers
def test_fp32_within_rounding_bound(layer, seed):
    m = retile(seed_mapping(layer, make_arch()), c_tile=1, order=("c", "r", "k"))
    x, w = operands(layer, seed, np.float32)
    x, w = x / 7, w / 13
    ex = execute(m, x, w)
    assert ex.output.dtype == np.float32
    err, ok = _compare(ex.output, conv2d_layer(layer, x, w), layer, x, w)
    assert ok, err


# ---- the check can fail: broken tile sequences are caught ---------------------------
LAYER = conv("c", 1, 8, 7, 7, 6, 3, pad=1)
BROKEN_ARCH = make_arch(rows=2, cols=2, dataflow="ws")


def _tiled_mapping():
    return retile(seed_mapping(LAYER, BROKEN_ARCH), images=1, rows=3, cols=7, k_tile=4, c_tile=3,
                  order=("k", "c", "r"))


def _skip(tiles):
    return tiles[:5] + tiles[6:]


def _repeat(tiles):
    return tiles[:5] + [tiles[5]] + tiles[5:]


def _wrong_split(tiles):
    # the reduction cut at 3 for one block and at 4 for the next: channel 3 counted twice
    return [replace(t, c=(t.c[0], t.c[1] + 1)) if t.c == (0, 3) else t for t in tiles]


def _gap_split(tiles):
    # blocks [0, 2) and [3, 6): channel 2 never reduced
    return [replace(t, c=(0, 2)) if t.c == (0, 3) else t for t in tiles]


@pytest.mark.parametrize("breaker", [_skip, _repeat, _wrong_split, _gap_split])
@pytest.mark.parametrize("dtype", [np.int8, np.float32])
def test_broken_tile_sequence_is_caught(breaker, dtype):
    m = _tiled_mapping()
    x, w = operands(LAYER, 3, dtype)
    ref = conv2d_layer(LAYER, x, w)
    good = list(iter_tiles(LAYER, m.tiling))
    assert len(good) == m.tiling.n_tiles > 6
    assert _compare(execute(m, x, w, tiles=good).output, ref, LAYER, x, w)[1]
    err, ok = _compare(execute(m, x, w, tiles=breaker(good)).output, ref, LAYER, x, w)
    assert not ok and err > 0


@settings(max_examples=30, deadline=None)
@given(layers(), st.sampled_from(["latency", "energy", "edp"]), st.integers(2, 8),
       st.integers(2, 8), st.sampled_from(["512 B", "2 KiB", "64 KiB"]), st.integers(0, 2 ** 31))
def test_searched_mappings_execute_bit_exact(layer, objective, rows, cols, size, seed):
    """Mappings found by the mapspace search (any dataflow of a configurable array, uneven
    tiles, any loop order) cover the iteration space exactly once."""
    from tilesim.sim import make_mapper
    a = make_arch(rows=rows, cols=cols, size=size)
    a = a.model_copy(update={"compute": a.compute.model_copy(update={"arrays": [
        a.array.model_copy(update={"dataflows": ["os", "ws", "is"]})]})})
    try:
        m = make_mapper(a, objective).map(layer)
    except MappingError:
        assume(False)
    x, w = operands(layer, seed)
    ex = execute(m, x, w)
    assert ex.tiles == m.tiling.n_tiles
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))
