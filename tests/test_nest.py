"""Tiles at every on-chip level: the multi-level executor (sim/kernels/nest.py) equals
the reference kernels bit for bit and its operational per-(level, operand) byte counts
equal the cost model's access counts exactly, on hypothesis-generated small layers with
two and three on-chip levels holding various operand sets; a tiling whose every level
holds the same tile costs exactly what the single tiling costs."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import seed_mapping
from tilesim import arch
from tilesim.mapper import LevelTile, Mapspace, points_of
from tilesim.mapper.mapping import LOOPS, ORDERS
from tilesim.sim import CostModel
from tilesim.sim.kernels import conv2d_layer
from tilesim.sim.kernels.nest import execute_nest
from test_executor import layers, operands

ALL = ["input", "weight", "output"]


def _arch(name, *holds, db=(False,)):
    mem = [{"name": "dram", "kind": "dram", "holds": ALL, "bandwidth": "4 B/cycle"}]
    for i, h in enumerate(holds):
        mem.append({"name": f"l{i + 1}", "kind": "sram", "holds": list(h), "size": "16 MiB",
                    "double_buffered": db[i % len(db)]})
    return arch.from_dict({
        "version": 1, "name": name, "clock": "1 GHz", "technology": "28 nm",
        "precision": {"input": "int8", "weight": "int8", "accumulator": "int32"},
        "compute": {"arrays": [{"rows": 4, "cols": 4, "dataflow": "ws"}],
                    "vector": {"lanes": 4}},
        "memory": mem})


ARCHS = {
    "all_all": _arch("all_all", ALL, ALL),
    "iw_o": _arch("iw_o", ["input", "weight"], ["output"]),
    "tpu_like": _arch("tpu_like", ["input", "output"], ["weight"], ["output"]),
    "all_iw_o": _arch("all_iw_o", ALL, ["input", "weight"], ["output"]),
    "all_all_all": _arch("all_all_all", ALL, ALL, ALL, db=(True, False)),
}


def _aligned(draw, hi, kg):
    """A k tile <= hi that covers whole groups or lies inside one."""
    ok = [k for k in range(1, hi + 1) if k % kg == 0 or kg % k == 0]
    return draw(st.sampled_from(ok))


@st.composite
def nested(draw, layer, nlev):
    """Level tiles, each nested in the one before, with any loop orders."""
    kg = layer.K // layer.groups
    par = (layer.N, layer.P, layer.Q, layer.K, layer.C // layer.groups)
    out = []
    for _ in range(nlev):
        same = out and draw(st.integers(0, 3)) == 0
        t = par if same else (draw(st.integers(1, par[0])), draw(st.integers(1, par[1])),
                              draw(st.integers(1, par[2])), _aligned(draw, par[3], kg),
                              draw(st.integers(1, par[4])))
        order = tuple(LOOPS[i] for i in draw(st.sampled_from(ORDERS)))
        out.append(LevelTile(*t, order=order))
        par = t
    return out


def _with_levels(m, lts, a=None):
    """``m`` with level tiles ``lts``; given its arch ``a``, its tiling (trips, bytes) and
    traffic rebuilt as the mapspace builds them."""
    top = lts[0]
    tl = replace(m.tiling, images=top.images, rows=top.rows, cols=top.cols,
                 k_tile=top.k_tile, c_tile=top.c_tile, order=top.order, inner=tuple(lts[1:]))
    m = replace(m, tiling=tl)
    if a is None:
        return m
    ev = points_of(m, a).tiles
    return replace(m, tiling=ev.tiling(0), traffic=ev.traffic_of(0))


@settings(max_examples=40, deadline=None)
@given(st.data(), layers(), st.sampled_from(sorted(ARCHS)), st.integers(0, 2 ** 31))
def test_executor_counts_equal_cost_model_access(data, layer, name, seed):
    a = ARCHS[name]
    m = _with_levels(seed_mapping(layer, a), data.draw(nested(layer, len(a.onchip))))
    x, w = operands(layer, seed)
    ex = execute_nest(m, a, x, w)
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))
    cm = CostModel(a)
    pts = points_of(m, a)
    model = {k: (int(r[0]), int(v[0])) for k, (r, v) in cm.access(layer, pts).items()}
    arr = {k: (int(r[0]), int(v[0])) for k, (r, v) in cm.array_access(layer, pts).items()}
    counted = {k: (r + arr.get(k, (0, 0))[0], v + arr.get(k, (0, 0))[1])
               for k, (r, v) in ex.access.items()}
    assert counted == model, m.tiling


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_same_tile_at_every_level_costs_the_single_tiling(name):
    """Every point of the level-1 space, given explicitly the same tile (any orders) at
    every inner level, scores exactly as the single tiling: access, cycles, energy."""
    from tilesim.workloads.ir import conv
    a = ARCHS[name]
    cm = CostModel(a)
    rng = np.random.default_rng(1)
    for layer in (conv("c", 2, 6, 7, 7, 8, 3, pad=1), conv("g", 1, 8, 6, 6, 8, 3, groups=2)):
        sp = Mapspace(layer, a)
        outer = int(np.prod(sp.outer_shape))
        idx = rng.choice(outer, size=min(200, outer), replace=False) * sp.inner_size
        p0 = sp.points(idx)
        c0 = cm.evaluate(layer, p0)
        for j in rng.choice(len(idx), size=20, replace=False):
            m = sp.mapping(int(idx[j]))
            lt = m.tiling.top
            inner = tuple(replace(lt, order=tuple(LOOPS[i] for i in ORDERS[rng.integers(6)]))
                          for _ in a.onchip[1:])
            m2 = replace(m, tiling=replace(m.tiling, inner=inner))
            c1 = cm.point(m2)
            assert {k: (int(r[0]), int(w[0])) for k, (r, w) in c1.access.items()} == \
                {k: (int(r[j]), int(w[j])) for k, (r, w) in c0.access.items()}
            assert int(c1.cycles[0]) == int(c0.cycles[j])
            assert float(c1.energy_pj[0]) == float(c0.energy_pj[j])


@pytest.mark.parametrize("name", ["iw_o", "tpu_like", "all_iw_o"])
def test_des_follows_inner_tiles(name):
    """The DES of a mapping with inner tiles: unlimited bandwidth, the cost model's cycles;
    finite bandwidth, the cost model's DRAM bytes per operand."""
    from tilesim.sim.des import simulate_mac
    from tilesim.workloads.ir import conv
    a = ARCHS[name]
    layer = conv("c", 2, 6, 7, 7, 8, 3, pad=1)
    m = seed_mapping(layer, a)
    lts = [LevelTile(2, 7, 7, 8, 6, ("r", "k", "c"))]
    for i in range(1, len(a.onchip)):
        lts.append(LevelTile(1, 4, 7 - i, 4, 3, ("k", "c", "r")))
    m = _with_levels(m, lts, a)
    cm = CostModel(a)
    r = simulate_mac(m, a, cost=cm)
    ana = cm.mac_result(m)
    assert "| L2" in ana.tiling
    assert (r.dram_read_input_bytes, r.dram_read_weight_bytes, r.dram_read_psum_bytes,
            r.dram_write_bytes) == (ana.dram_read_input_bytes, ana.dram_read_weight_bytes,
                                    ana.dram_read_psum_bytes, ana.dram_write_bytes)
    d = a.model_dump()
    d["memory"][0]["bandwidth"] = "unlimited"
    u = arch.from_dict(d)
    cu = CostModel(u)
    assert simulate_mac(m, u, cost=cu).total_cycles == cu.mac_result(m).total_cycles


def _staged(size):
    """DRAM, a roomy buffer for everything, then a small staging level for inputs and
    outputs (below the level-1 tile's size)."""
    return arch.from_dict({
        "version": 1, "name": "staged", "clock": "1 GHz", "technology": "28 nm",
        "precision": {"input": "int8", "weight": "int8", "accumulator": "int32"},
        "compute": {"arrays": [{"rows": 4, "cols": 4, "dataflow": "ws"}],
                    "vector": {"lanes": 4}},
        "memory": [{"name": "dram", "kind": "dram", "holds": ALL, "bandwidth": "4 B/cycle"},
                   {"name": "big", "kind": "sram", "holds": ALL, "size": "1 MiB"},
                   {"name": "staging", "kind": "sram", "holds": ["input", "output"],
                    "size": size, "double_buffered": True}]})


def test_small_inner_level_shrinks_its_tile_and_names_the_size_that_fits():
    """An inner level too small for any whole level-1 tile no longer blocks the layer:
    its tile shrinks; below the smallest tile that fills the array, the error names
    the level, the operand and a size with which the layer maps."""
    import re
    from tilesim.mapper import MappingError
    from tilesim.sim import make_mapper
    from tilesim.workloads.ir import conv
    layer = conv("c", 1, 8, 12, 12, 8, 3, pad=1)
    m = make_mapper(_staged("256 B")).map(layer)
    assert m.tiling.inner and "| L2" in m.tiling.label(layer)
    assert m.tiling.inner[0].sizes != m.tiling.top.sizes
    with pytest.raises(MappingError) as e:
        make_mapper(_staged("8 B")).map(layer)
    msg = str(e.value)
    assert "'staging'" in msg and "memory[2]" in msg and "tile needs the most" in msg
    need = int(re.search(r"at least (\d+) B", msg).group(1))
    make_mapper(_staged(f"{need} B")).map(layer)


def test_hand_derived_three_level_counts():
    """gemm M=8 pixels, 8 filters, reduction 8 (int8, int32 partial sums) on tpu_like
    (l1: inputs and outputs, l2: weights, l3: outputs). Level 1 holds the whole layer;
    levels 2 and 3 hold 4 filters x 4 channels, level 2 looping c outside k.

    * inputs: l1 is filled once from DRAM (64 B);
    * weights (at l2): the innermost weight loop with 2 trips is l2's k; the only loop
      over pixels outside it has one trip, so every weight comes once (64 B);
    * outputs at l3: the innermost loop they depend on with 2 trips is l2's k, and l2's
      c (2 trips) sits outside it: each output is visited twice, so l3 drains 64 final
      bytes + 64 x 4 B of partial sums (320 B) into l1 (its tile differs: 8 filters) and
      reloads 256 B; l1 visits each output once: 64 B to DRAM."""
    from tilesim.workloads.ir import gemm
    a = ARCHS["tpu_like"]
    layer = gemm("g", 8, 8, 8)
    m = _with_levels(seed_mapping(layer, a), [
        LevelTile(8, 1, 1, 8, 8, ("r", "k", "c")),
        LevelTile(8, 1, 1, 4, 4, ("c", "k", "r")),
        LevelTile(8, 1, 1, 4, 4, ("r", "k", "c"))], a)
    t = points_of(m, a).tiles.transfers
    got = {k: (int(r[0]), int(w[0])) for k, (r, w) in t.items()}
    assert got == {("dram", "input"): (64, 0), ("dram", "weight"): (64, 0),
                   ("dram", "output"): (0, 64), ("l1", "input"): (0, 64),
                   ("l1", "output"): (256 + 64, 320), ("l2", "weight"): (0, 64),
                   ("l3", "output"): (320, 256)}
    x, w = operands(layer, 3)
    ex = execute_nest(m, a, x, w)
    assert ex.access == got
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))


@pytest.mark.parametrize("name", ["tpu_like", "all_iw_o"])
def test_points_with_inner_tiles_round_trip(name):
    """A point with inner tiles -> Mapping -> index_of -> the same tiling; the Mapping
    alone (points_of) scores as its point; labels show the inner levels."""
    from tilesim.workloads.ir import conv
    a = ARCHS[name]
    cm = CostModel(a)
    layer = conv("c", 2, 6, 7, 7, 8, 3, pad=1)
    sp = Mapspace(layer, a)
    rng = np.random.default_rng(5)
    idx = rng.integers(0, sp.size, 300)
    idx = idx[idx % sp.inner_size != 0][:60]
    pts = sp.points(idx)
    c = cm.evaluate(layer, pts)
    for j, i in enumerate(idx):
        m = sp.mapping(int(i))
        back = sp.mapping(sp.index_of(m.dataflow.name, m.tiling))
        assert back.tiling.inner == m.tiling.inner and back.tiling.top.sizes == m.tiling.top.sizes
        assert back.tiling.label(layer) == m.tiling.label(layer)
        one = cm.point(m)
        assert int(one.cycles[0]) == int(c.cycles[j])
        assert {k: (int(r[0]), int(w[0])) for k, (r, w) in one.access.items()} == \
            {k: (int(r[j]), int(w[j])) for k, (r, w) in c.access.items()}
        if m.tiling.inner:
            assert "| L" in m.tiling.label(layer) or all(
                t.sizes == m.tiling.top.sizes for t in m.tiling.inner)


@pytest.mark.parametrize("db, cycles", [(True, 272 + 4 * 74 + 16), (False, 272 + 4 * (74 + 16))])
def test_inner_output_tiles_drain_while_the_next_computes(db, cycles):
    """Outputs held first at level 2 (inputs and weights at level 1), gemm 64 x 4 x 16 on
    a 4x4 ws array: one level-1 tile (1,024 B of input + 64 B of weights, 272 cycles at
    4 B/cycle), four level-2 output tiles of 16 rows (64 B out each, 16 cycles); the
    layer's 4 folds of 64 + 2*4 + 4 - 2 = 74 cycles are dealt evenly over the DES's four
    sub-steps of the level-1 step, one per level-2 tile. Double-buffered, each tile drains while the next
    computes and only the last store is exposed (584 cycles; it stored all 256 B after
    the step before, 632); single-buffered, every store waits (632, the cost model's
    too). Byte totals are the cost model's."""
    from tilesim.sim.des import mac_program, simulate_mac
    from tilesim.workloads.ir import gemm
    a = _arch("iw_o", ["input", "weight"], ["output"], db=(db,))
    layer = gemm("g", 64, 4, 16)
    m = _with_levels(seed_mapping(layer, a), [LevelTile(64, 1, 1, 4, 16, ("r", "k", "c")),
                                              LevelTile(16, 1, 1, 4, 16, ("r", "k", "c"))], a)
    p = mac_program(m, a)
    assert m.tiling.n_tiles == 1 and p.steps == 4
    assert p.compute == (74,) * 4 and p.store_bytes == (64,) * 4 and all(p.new_out)
    assert (p.in_bytes, p.w_bytes) == ((1024, 0, 0, 0), (64, 0, 0, 0))
    cm = CostModel(a)
    r = simulate_mac(m, a, cost=cm)
    ana = cm.mac_result(m)
    assert r.cycles == cycles and r.compute_cycles == ana.compute_cycles == 4 * 74 - 1
    assert (r.dram_read_bytes, r.dram_write_bytes) == (ana.dram_read_bytes, ana.dram_write_bytes)
    if not db:
        assert ana.cycles == cycles
