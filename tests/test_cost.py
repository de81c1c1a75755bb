"""The cost model (sim/cost.py) is one closed form: a batch of points scores exactly as
each point does alone (through its Mapping), its access counts conserve bytes (DRAM
fills are what the buffers are written, DRAM bytes are the tiling's traffic), and a
layer's cycles are its largest bound, its energy the sum of its terms."""
from __future__ import annotations

import numpy as np
import pytest

from tilesim import arch
from tilesim.mapper import Mapspace
from tilesim.sim import CostModel
from tilesim.workloads.ir import conv, fc, gemm
from conftest import make_arch

LAYERS = [
    conv("c3x3", 2, 6, 9, 7, 10, 3, pad=1, activation="relu"),
    conv("s2", 1, 5, 11, 11, 7, 3, stride=2),
    conv("dw", 2, 8, 6, 6, 8, 3, pad=1, groups=8),
    conv("grouped", 1, 12, 5, 5, 6, 3, pad=1, groups=3),
    fc("fc", 4, 40, 9),
    gemm("gemm", 13, 11, 7),
]


def _two_level(**kw):
    """DRAM + a single-buffered input/weight SRAM with finite bandwidth + an accumulator."""
    return arch.from_dict({
        "version": 1, "name": "two", "clock": "500 MHz", "technology": "45 nm",
        "precision": {"input": "int8", "weight": "int8", "accumulator": "int32"},
        "compute": {"arrays": [{"rows": 4, "cols": 3, "dataflow": "os",
                                "dataflows": ["os", "ws", "is"], "count": 2}],
                    "vector": {"lanes": 2}},
        "memory": [
            {"name": "dram", "kind": "dram", "holds": ["input", "weight", "output"],
             "bandwidth": "3 B/cycle"},
            {"name": "gbuf", "kind": "sram", "holds": ["input", "weight"], "size": "2 KiB",
             "double_buffered": False, "bandwidth": "5 B/cycle", "banks": 2},
            {"name": "acc", "kind": "sram", "holds": ["output"], "size": "1 KiB",
             "double_buffered": True, "leakage": "2 mW"},
        ]})


ARCHS = {
    "ws_unlimited": make_arch(rows=4, cols=4, dataflow="ws", size="4 KiB"),
    "os_slow_dram": make_arch(rows=3, cols=5, dataflow="os", bandwidth="2 B/cycle", size="2 KiB",
                              double_buffered=False),
    "is_buf_bw": make_arch(rows=4, cols=2, dataflow="is", bandwidth="7 B/cycle", size="8 KiB",
                           buf_bandwidth="3 B/cycle", precision=("int16", "int8", "int32")),
    "configurable": _two_level(),
    "memory_bound_db": make_arch(rows=4, cols=4, dataflow="ws", bandwidth="1 B/cycle",
                                 size="64 KiB"),
    "int4_half_bytes": make_arch(rows=4, cols=4, dataflow="ws", bandwidth="3 B/cycle",
                                 size="1 KiB", precision=("int4", "int4", "int16")),
}


@pytest.mark.parametrize("name", list(ARCHS))
@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: l.name)
def test_a_batch_scores_as_each_point_alone(name, layer):
    """Scoring the whole mapspace at once gives, for every sampled legal point, exactly the
    cycles, bounds and energy of that point's Mapping evaluated on its own."""
    a = ARCHS[name]
    space = Mapspace(layer, a)
    cost = CostModel(a)
    pts = space.points(np.arange(space.size))
    legal = np.flatnonzero(pts.legal)
    assert len(legal) > 0
    c = cost.evaluate(layer, pts)
    rng = np.random.default_rng(1)
    for i in rng.choice(legal, size=min(40, len(legal)), replace=False):
        m = space.mapping(int(pts.index[i]))
        r = cost.mac_result(m)
        assert r.cycles == c.cycles[i]
        assert r.bound == c.bound(i)
        assert r.energy_pj == c.energy_pj[i]
        assert r.buffer_bytes == c.level_bytes(a, i)
        d = a.dram.name
        assert (r.dram_read_bytes, r.dram_write_bytes) == (
            sum(c.access[(d, op)][0][i] for op in ("input", "weight", "output")),
            c.access[(d, "output")][1][i])


@pytest.mark.parametrize("name", list(ARCHS))
def test_access_counts_conserve_bytes(name):
    """DRAM reads and writes are the tiling's traffic; every on-chip level holding an
    operand is written exactly the DRAM bytes read of it; the level that feeds the array
    is read elements x reads-per-element x bytes; the cycles are the largest bound and
    the energy the sum of its terms."""
    a = ARCHS[name]
    cost = CostModel(a)
    pb = a.precision.bytes
    for layer in LAYERS:
        space = Mapspace(layer, a)
        pts = space.points(np.arange(space.size))
        c = cost.evaluate(layer, pts)
        t = pts.tiles
        d = a.dram.name
        whole = lambda v: np.trunc(v).astype(np.int64)  # noqa: E731  (int4: half bytes)
        assert (c.access[(d, "input")][0] == whole(t.read_input)).all()
        assert (c.access[(d, "weight")][0] == whole(t.read_weight)).all()
        assert (c.access[(d, "output")][0] == whole(t.read_psum)).all()
        assert (c.access[(d, "output")][1] == whole(t.write_output)).all()
        g, M, N, K = layer.gemm
        elems = {"input": g * M * K, "weight": g * N * K}
        for op, dram_read in (("input", t.read_input), ("weight", t.read_weight)):
            holders = [l for l in a.onchip if op in l.holds]
            inner = holders[-1].name
            for l in holders:
                assert (c.access[(l.name, op)][1] == whole(dram_read)).all()
            extra = np.trunc(elems[op] * pts.reads[op] * pb[op]).astype(np.int64)
            assert (c.access[(inner, op)][0] == extra).all()
        assert (c.cycles == np.maximum.reduce(list(c.bounds.values()))).all()
        assert np.allclose(c.energy_pj, sum(c.energy.values()), rtol=0, atol=0)
        assert (c.cycles >= c.compute + 1).all()
