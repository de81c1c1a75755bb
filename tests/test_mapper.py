"""Tilings: the least-traffic seed's tiles fit and cover the loop nest exactly once, and
the DRAM traffic formula equals a brute-force replay of the tile loop."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tilesim.mapper import MappingError, Mapspace
from tilesim.mapper.tiling import iter_tiles
from tilesim.workloads.ir import conv, fc, gemm
from conftest import make_arch, seed_mapping

LAYERS = [
    conv("c3x3", 2, 6, 9, 7, 10, 3, pad=1),
    conv("s2", 1, 5, 11, 11, 7, 3, stride=2),
    conv("dw", 2, 8, 6, 6, 8, 3, pad=1, groups=8),
    conv("grouped", 1, 12, 5, 5, 6, 3, pad=1, groups=3),
    conv("dil", 1, 3, 9, 9, 4, 3, dilation=2, pad=2),
    conv("pw", 3, 16, 4, 4, 12, 1),
    fc("fc", 4, 40, 9),
    gemm("gemm", 13, 11, 7),
]


def brute_traffic(layer, tiling, pb):
    """Replay the tile loop with one resident tile per operand; count DRAM bytes."""
    g, cg, kg = layer.groups, layer.C // layer.groups, layer.K // layer.groups

    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation

    def in_rows(p0, p1):   # the input rows the window covers: padding is never fetched
        return min(layer.H, (p1 - 1) * sh - ph + (layer.R - 1) * dh + 1) - max(0, p0 * sh - ph)

    def in_cols(q0, q1):
        return min(layer.W, (q1 - 1) * sw - pw + (layer.S - 1) * dw + 1) - max(0, q0 * sw - pw)

    last = {"input": None, "weight": None, "output": None}
    visits = {}
    rd = {"input": 0, "weight": 0, "psum": 0}
    wr = 0
    tiles = list(iter_tiles(layer, tiling))
    for t in tiles:
        n, p, q, k, c = t.n, t.p, t.q, t.k, t.c
        if g == 1:
            ikey, ich = (n, p, q, c), c[1] - c[0]
        else:
            groups = (k[0] // kg, (k[1] - 1) // kg + 1)
            ikey, ich = (n, p, q, groups, c), (groups[1] - groups[0]) * (c[1] - c[0])
        if ikey != last["input"]:
            rd["input"] += (n[1] - n[0]) * in_rows(*p) * in_cols(*q) * ich * pb["input"]
            last["input"] = ikey
        wkey = (k, c)
        if wkey != last["weight"]:
            rd["weight"] += (k[1] - k[0]) * (c[1] - c[0]) * layer.R * layer.S * pb["weight"]
            last["weight"] = wkey
        okey = (n, p, q, k)
        if okey != last["output"]:
            elems = (n[1] - n[0]) * (p[1] - p[0]) * (q[1] - q[0]) * (k[1] - k[0])
            visits.setdefault(okey, (elems, 0))
            e, v = visits[okey]
            if v > 0:
                rd["psum"] += e * pb["accumulator"]
            visits[okey] = (e, v + 1)
            last["output"] = okey
    for okey, (e, v) in visits.items():  # every visit but the last spills a partial sum
        wr += e * pb["output"] + e * (v - 1) * pb["accumulator"]
    return rd, wr


@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: l.name)
def test_traffic_formula_equals_brute_force_for_every_candidate(layer):
    """For sampled mapspace tilings and loop orders, closed-form traffic == replayed traffic,
    grouped layers included (a k tile splitting a group shares its input tile with the
    group's next k block; a reduction split inside a group)."""
    a = make_arch(rows=4, cols=4, dataflow="ws")
    pb = a.precision.bytes
    space = Mapspace(layer, a)
    ev = space.points(np.arange(space.size)).tiles
    rng = np.random.default_rng(0)
    idx = rng.choice(len(ev), size=min(120, len(ev)), replace=False)
    for i in idx:
        t = ev.tiling(i)
        rd, wr = brute_traffic(layer, t, pb)
        assert (rd["input"], rd["weight"], rd["psum"], wr) == (
            ev.read_input[i], ev.read_weight[i], ev.read_psum[i], ev.write_output[i]), t


@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: l.name)
@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_tiles_cover_the_loop_nest_exactly_once(layer, df):
    """Every (n, k, p, c) point of the chosen tiling is in exactly one tile; MACs conserved."""
    a = make_arch(rows=4, cols=3, dataflow=df, size="4 KiB")
    m = seed_mapping(layer, a)
    assert m.macs == layer.macs
    cg = layer.C // layer.groups
    seen = np.zeros((layer.N, layer.K, layer.P, layer.Q, cg), dtype=np.int64)
    macs = 0
    for t in iter_tiles(layer, m.tiling):
        seen[t.n[0]:t.n[1], t.k[0]:t.k[1], t.p[0]:t.p[1], t.q[0]:t.q[1], t.c[0]:t.c[1]] += 1
        macs += ((t.n[1] - t.n[0]) * (t.k[1] - t.k[0]) * (t.p[1] - t.p[0]) * (t.q[1] - t.q[0])
                 * (t.c[1] - t.c[0]) * layer.R * layer.S)
    assert (seen == 1).all()
    assert macs == layer.macs
    assert len(list(iter_tiles(layer, m.tiling))) == m.tiling.n_tiles


@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: l.name)
def test_chosen_tiles_fit_every_buffer(layer):
    """The chosen tiling fits each on-chip level, double buffering counted."""
    a = make_arch(rows=4, cols=4, dataflow="os", size="2 KiB")
    m = seed_mapping(layer, a)
    for lvl in a.onchip:
        assert m.tiling.level_bytes[lvl.name] <= lvl.size


def test_roomy_buffer_reads_each_operand_once():
    """When everything fits, each operand crosses DRAM exactly once (compulsory traffic)."""
    layer = conv("c", 1, 16, 8, 8, 32, 3, pad=1)
    m = seed_mapping(layer, make_arch(rows=8, cols=8, size="64 MiB"))
    assert m.traffic.read_input == layer.input_elems
    assert m.traffic.read_weight == layer.weight_elems
    assert m.traffic.write_output == layer.output_elems and m.traffic.read_psum == 0


def test_smaller_buffer_never_reduces_traffic():
    """Shrinking the buffer can only add DRAM traffic."""
    layer = conv("c", 2, 64, 28, 28, 128, 3, pad=1)
    prev = 0
    for size in ["64 MiB", "1 MiB", "256 KiB", "64 KiB", "16 KiB"]:
        t = seed_mapping(layer, make_arch(rows=8, cols=8, size=size)).traffic.total
        assert t >= prev
        prev = t


def test_buffer_too_small_names_the_level():
    """A buffer too small for the smallest tile is a MappingError naming the level."""
    with pytest.raises(MappingError, match=r"buf.*memory\[1\].*at least"):
        seed_mapping(conv("c", 1, 64, 56, 56, 64, 3, pad=1), make_arch(size="64 B"))


def test_tiles_fill_the_array():
    """Buffer tiles span at least the array along both of its spatial dims."""
    layer = conv("c", 1, 64, 14, 14, 64, 3, pad=1)
    for df in ("os", "ws", "is"):
        m = seed_mapping(layer, make_arch(rows=16, cols=16, dataflow=df, size="64 KiB"))
        t = m.tiling
        ext = {"B": t.images, "P": t.rows, "Q": t.cols, "N": t.k_tile, "C": t.c_tile,
               "R": 3, "S": 3}
        span = {ax: math.prod(ext[d] for d in getattr(m.dataflow, ax)) for ax in ("rows", "cols")}
        assert span["rows"] >= 16 and span["cols"] >= 16


@pytest.mark.parametrize("objective", ["traffic", "edp"])
def test_mapped_shapes_counts_distinct_shapes(objective):
    """The mapper counts a layer shape once, however often and under whatever name it is
    mapped (the sweep's mapped_shapes column reads this)."""
    from tilesim.sim import make_mapper
    m = make_mapper(make_arch(), objective, budget=40)
    assert m.mapped_shapes == 0
    m.map(LAYERS[0])
    m.map(conv("again", 2, 6, 9, 7, 10, 3, pad=1))   # same shape as LAYERS[0], other name
    assert m.mapped_shapes == 1
    m.map(LAYERS[5])
    assert m.mapped_shapes == 2
