"""The vectorised cost (sim/vcost.py) gives exactly the scalar model's cycles, traffic and
buffer bytes (sim.analytic.simulate_mac), and its energy equals sim/energy.py's terms,
for every sampled point of several mapspaces."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tilesim import arch
from tilesim.mapper import Mapspace
from tilesim.sim import VectorCost, simulate_mac
from tilesim.sim.analytic import buffer_bytes
from tilesim.sim.energy import energy_table, level_operand_bytes, mac_energy_terms
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
def test_vectorised_cost_equals_scalar_model(name, layer):
    a = ARCHS[name]
    space = Mapspace(layer, a)
    cost = VectorCost(a)
    pts = space.points(np.arange(space.size))
    legal = np.flatnonzero(pts.legal)
    assert len(legal) > 0
    cycles, energy = cost(layer, pts)
    _, bb = cost.evaluate(layer, pts)
    tab = energy_table(a)
    rng = np.random.default_rng(1)
    for i in rng.choice(legal, size=min(40, len(legal)), replace=False):
        m = space.mapping(int(pts.index[i]))
        r = simulate_mac(m, a)
        assert r.total_cycles + 1 == cycles[i]
        assert m.traffic.read_input == int(pts.ev["read_input"][i])
        assert m.traffic.write_output == int(pts.ev["write_output"][i])
        want_bb = buffer_bytes(m, a)
        for lvl in a.onchip:
            assert (want_bb[lvl.name]["read"], want_bb[lvl.name]["write"]) == (
                bb[lvl.name][0][i], bb[lvl.name][1][i])
        terms = mac_energy_terms(m, a, r, tab)
        assert math.isclose(sum(t.pj for t in terms), energy[i], rel_tol=1e-12)


@pytest.mark.parametrize("name", list(ARCHS))
def test_operand_split_sums_to_buffer_bytes(name):
    """sim.energy's per-operand access counts add up to the analytic model's per level."""
    a = ARCHS[name]
    for layer in LAYERS:
        space = Mapspace(layer, a)
        pts = space.points(np.arange(space.size))
        for i in np.flatnonzero(pts.legal)[:10]:
            m = space.mapping(int(i))
            lob = level_operand_bytes(m, a)
            bb = buffer_bytes(m, a)
            for lvl in a.onchip:
                got = [sum(lob[(lvl.name, op)][j] for op in lvl.holds) for j in (0, 1)]
                assert got == [bb[lvl.name]["read"], bb[lvl.name]["write"]]
            dram = a.dram.name
            assert sum(lob[(dram, op)][0] for op in a.dram.holds) == m.traffic.read
            assert lob[(dram, "output")][1] == m.traffic.write_output
