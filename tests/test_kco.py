"""kco (K x C unrolling, weights read from the buffer at every use and shared by the
``count`` arrays as pixel lanes, each partial sum kept in the column's output register
over the whole reduction): hand-derived plans and timelines, the channel-tile rule, and
every fidelity exact (PE model cycles, outputs and buffer counts, executor, DES)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from conftest import layer_result, make_arch, seed_mapping
from tilesim.mapper import DATAFLOWS, MappingError, Mapspace, points_of
from tilesim.mapper.dataflow import gemm_dims, layer_dims
from tilesim.sim.des import simulate_mac as des_mac
from tilesim.sim.kernels import conv2d_layer
from tilesim.sim.kernels.executor import execute
from tilesim.sim.pe import simulate_gemm, simulate_mapping
from tilesim.workloads.ir import conv

from test_spatial_mappings import convs, ints, operands

FAST = settings(max_examples=30, deadline=None)
KCO, KC = DATAFLOWS["kco"], DATAFLOWS["kc"]
TINY = conv("tiny", 1, 3, 3, 3, 2, 2)   # C=3 -> N=2 filters, 2x2 window, 2x2 output


def test_hand_derived_plan():
    """TINY on 2 x 2 PEs, 3 arrays (pixel lanes). M = 4 pixels: lane 0 takes pixels 0
    and 3, lane 1 pixel 1, lane 2 pixel 2, so Mp = ceil(4/3) = 2 pixel steps (lanes 1, 2
    stream zeros in the second). C = 3 on 2 rows: ceil(3/2) = 2 channel blocks, streamed;
    R S = 4 taps: E = 2 x 4 = 8 reduction steps a pixel, T = 2 x 8 = 16. N = 2 on 2 columns:
    one column fold, run on all 3 arrays: 3 (array) folds of T + Ra + Ca - 2 = 18 cycles.
    Buffer: inputs once per column fold, 4 pixels x 3 channels x 4 taps = 48; weights
    once per pixel step, 2 x 3 x 4 = 24 weights x 2 = 48 (one read for the 3 lanes);
    outputs written once, 4 x 2 = 8. MACs 4 x 2 x 12 = 96: every MAC latches its input
    and its weight in the PE; the input hops right and the partial sum down: 192."""
    d = layer_dims(TINY)
    p = KCO.plan(d, 2, 2, None, 3)
    assert (p.row_folds, p.col_folds, p.folds, p.stream, p.fold_cycles) == (1, 1, 3, 16, 18)
    assert p.reads == {"input": 1, "weight": 2, "output": 1}
    assert p.accesses == {"input": 48, "weight": 48, "output": 8}
    assert p.pe_writes == {"input": 96, "weight": 96} and p.hops == 192
    assert dict(p.detail) == {"pixel lanes": 3, "pixels per lane": 2, "channel blocks": 2}
    # kc on the same array: a fold per tap and channel block, each writing every output
    kc = KC.plan(d, 2, 2)
    assert kc.accesses["output"] == 4 * 2 * p.accesses["output"]
    assert (kc.accesses["input"], kc.accesses["weight"]) == (48, 24)
    # one array: the 4 pixels stream through it, each weight read 4 times
    one = KCO.plan(d, 2, 2)
    assert (one.folds, one.stream, one.accesses["weight"]) == (1, 32, 96)


def test_hand_derived_pe_run():
    """TINY's GEMM on the PE model, 2 x 2 PEs x 3 arrays: the outputs, the last output at
    cycle 17 (18 cycles, the plan's), every array busy 18 cycles, and the buffer reads the
    model counted (the feeders' real inputs, the weight buses' real reads, the outputs
    leaving) are the plan's."""
    x, w = operands(TINY, 5)
    from tilesim.sim.pe import lower
    a, b = lower(TINY, x, w)
    r = simulate_gemm(a, b, "kco", 2, 2, count=3, rs=4)
    assert np.array_equal(r.output, a.astype(np.int32) @ b.astype(np.int32))
    assert (r.last_cycle, r.folds, r.array_cycles) == (17, 3, (18, 18, 18))
    assert r.counts == {"input": 48, "weight": 48, "output": 8}


@pytest.mark.parametrize("rows, cols, count, M, C, taps, last", [
    (1, 1, 1, 1, 1, 1, 0),      # one element, one PE: T + Ra + Ca - 2 = 1 cycle
    (2, 2, 2, 3, 4, 1, 5),      # Mp 2 x 2 channel blocks = 4; 4 + 2 + 2 - 2 = 6
    (3, 1, 1, 2, 3, 2, 5),      # 2 pixels x 1 block x 2 taps = 4; 4 + 3 + 1 - 2 = 6
    (1, 3, 4, 5, 2, 3, 2 * 6 + 2 - 1)])   # Mp 2 x 2 blocks x 3 taps = 12; + 1 + 3 - 2
def test_tiny_timelines(rows, cols, count, M, C, taps, last):
    a, b = ints((1, M, C * taps), 1), ints((1, C * taps, cols), 2)
    r = simulate_gemm(a, b, "kco", rows, cols, count=count, rs=taps)
    assert np.array_equal(r.output, a.astype(np.int32) @ b.astype(np.int32))
    assert r.last_cycle == last


@FAST
@given(layer=convs(), rows=st.integers(1, 6), cols=st.integers(1, 6),
       count=st.integers(1, 4), seed=st.integers(0, 2 ** 31))
def test_pe_counts_are_the_plan(layer, rows, cols, count, seed):
    """The buffer reads and writes the PE model counts register by register are the
    plan's accesses (any layer, array and lane count)."""
    from tilesim.sim.pe import lower
    x, w = operands(layer, seed)
    a, b = lower(layer, x, w)
    r = simulate_gemm(a, b, "kco", rows, cols, count=count, rs=layer.R * layer.S)
    p = KCO.plan(layer_dims(layer), rows, cols, None, count)
    assert r.counts == p.accesses and r.folds == p.folds


@FAST
@given(data=st.data(), rows=st.integers(1, 9), cols=st.integers(1, 9),
       count=st.integers(1, 4), rf=st.sampled_from([None, "1 B", "9 B"]),
       seed=st.integers(0, 2 ** 31))
def test_pe_equals_reference_and_cost_model(data, rows, cols, count, rf, seed):
    """PE model under kco: outputs bit-exact with the reference kernel, last-output cycle
    == the cost model's compute cycles (multi-fold, several lanes, any register file)."""
    layer = data.draw(convs())
    a = make_arch(rows=rows, cols=cols, count=count, dataflows=["kco"], weight_rf=rf)
    m = seed_mapping(layer, a, "kco")
    x, w = operands(layer, seed)
    out, r = simulate_mapping(m, x, w)
    assert np.array_equal(out, conv2d_layer(layer, x, w))
    assert r.folds == m.folds
    assert r.last_cycle == layer_result(m, a).compute_cycles


@FAST
@given(data=st.data(), rows=st.integers(1, 8), cols=st.integers(1, 8),
       size=st.sampled_from(["256 B", "512 B", "64 KiB"]), seed=st.integers(0, 2 ** 31))
def test_executor_runs_mappings_bit_exact(data, rows, cols, size, seed):
    """kco mappings (small buffers force many tiles) execute bit-exactly."""
    layer = data.draw(convs())
    try:
        m = seed_mapping(layer, make_arch(rows=rows, cols=cols, size=size, count=2,
                                          dataflows=["kco"]), "kco")
    except MappingError:
        assume(False)
    x, w = operands(layer, seed)
    ex = execute(m, x, w)
    assert ex.tiles == m.tiling.n_tiles
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))


@pytest.mark.parametrize("layer", [conv("c3x3", 2, 6, 9, 7, 10, 3, pad=1),
                                   conv("grouped", 1, 12, 5, 5, 6, 3, pad=1, groups=3)])
@pytest.mark.parametrize("count", [1, 3])
def test_des_equals_cost_model(layer, count):
    """Unlimited bandwidth: DES cycles == cost model's; finite bandwidth: the engine moves
    exactly the mapping's bytes."""
    a = make_arch(rows=4, cols=3, count=count, size="2 KiB", dataflows=["kco"])
    m = seed_mapping(layer, a, "kco")
    assert m.dataflow.name == "kco"
    assert des_mac(m, a).total_cycles == layer_result(m, a).total_cycles
    b = make_arch(rows=4, cols=3, count=count, size="2 KiB", bandwidth="3 B/cycle",
                  dataflows=["kco"])
    r, t = des_mac(m, b), m.traffic
    assert (r.dram_read_input_bytes, r.dram_read_weight_bytes, r.dram_write_bytes) == \
        (t.read_input, t.read_weight, t.write_output)


def test_psums_leave_once_per_channel_tile():
    """The output register holds a sum over the channels the array is fed at once: on
    every point of a conv's mapspace (C = 6), the buffer takes ceil(6 / c tile) partial-sum
    writes per output and reads all but the first back (c tile 6: once, none read);
    the other dataflows' counts do not depend on the tile."""
    layer = conv("c", 1, 6, 5, 5, 4, 3, pad=1)
    a = make_arch(rows=2, cols=2, count=2, size="4 KiB", dataflows=["kco", "kc"])
    sp = Mapspace(layer, a)
    idx = np.arange(sp.size)
    pts = sp.points(idx)
    ct = sp.tiles(sp.decode(idx), False)[0][4]
    out = layer.output_elems
    kco = pts.dataflow == sp.dataflows.index("kco")
    assert set(np.unique(ct[kco])) >= {1, 2, 6}
    assert (pts.accesses["output"][kco] == out * -(-6 // np.minimum(ct[kco], 6))).all()
    assert (pts.accesses["output"][~kco] == KC.plan(layer_dims(layer), 2, 2).accesses["output"]).all()
    from tilesim.sim import CostModel
    cm = CostModel(a)
    acc = cm.array_access(layer, pts)[("buf", "output")]
    n = pts.accesses["output"][kco]
    assert (acc[1][kco] == n * 4).all() and (acc[0][kco] == (n - out) * 4).all()   # int32
    # a single Mapping scores the same as its point (points_of)
    m = seed_mapping(layer, a, "kco")
    one = points_of(m, a)
    assert one.accesses["output"][0] == out * -(-6 // min(m.tiling.c_tile, 6))


@given(layer=convs(), rows=st.integers(1, 9), cols=st.integers(1, 9), count=st.integers(2, 5))
@settings(max_examples=50, deadline=None)
def test_other_dataflows_ignore_count(layer, rows, cols, count):
    """Only kco reads the array count in its plan (its pixel lanes): every other
    dataflow's plan is the one of one array, and keeps its tile-independent counts."""
    d = layer_dims(layer)
    for name, df in DATAFLOWS.items():
        if name == "kco" or not df.applies(d):
            continue
        assert df.plan(d, rows, cols, {"weight": 4}, count) == df.plan(d, rows, cols, {"weight": 4})
        assert df.tile_psums(d, np.array([1])) is None


def test_array_may_run_kco_alone_and_lanes_share_weights():
    """kco applies to every layer (both axes forward, as kc), so it may be the array's own
    dataflow. 8 x 8 PEs x 16 arrays (edge_tpu_like's shape) on a 3x3 conv C=16 -> N=16 with
    a 6x6 output: M = 36 pixels in ceil(36/16) = 3 steps a lane; 2 channel blocks x 9 taps:
    T = 54; 2 column folds of 54 + 14 cycles on every array: 136 cycles, last index 135.
    Weights: 16 x 16 x 9 = 2,304, each read once per pixel step: 6,912 bytes (int8), where
    one array alone would read each once per pixel (36 x)."""
    a = make_arch(rows=8, cols=8, count=16, dataflow="kco", weight_rf="1 B")
    layer = conv("c", 1, 16, 6, 6, 16, 3, pad=1)
    assert Mapspace(layer, a).dataflows == ("kco",)
    m = seed_mapping(layer, a)
    assert (m.folds, m.folds_per_array) == (32, 2)
    r = layer_result(m, a)
    assert r.compute_cycles == 135
    assert KCO.plan(layer_dims(layer), 8, 8, None, 16).accesses["weight"] == 6912
    assert KCO.plan(layer_dims(layer), 8, 8).accesses["weight"] == 2304 * 36
    assert KCO.applies(gemm_dims(1, 4, 3, 18, 9))


def test_loop_nest_describes_the_lanes():
    """``tilesim map``'s loop nest: the lanes, the stream (pixels per lane x channel blocks
    x taps) and the fold's T + Ra + Ca - 2 cycles."""
    from tilesim.mapper.describe import loop_nest
    a = make_arch(rows=4, cols=3, count=2, dataflows=["kco"], weight_rf="1 B")
    text = "\n".join(loop_nest(seed_mapping(conv("c", 1, 6, 9, 7, 10, 3, pad=1), a, "kco"), a))
    assert "for fold in range(4):" in text and "each on all 2 array(s) at once (8 array folds)" in text
    assert "stream 32 pixels per lane x 2 channel block(s) x 9 taps = 576 cycles" in text
    assert "a fold takes 581 cycles" in text and "2,324 cycles on every array" in text


def test_overlapped_preload_changes_nothing():
    """kco preloads nothing: ``preload: overlapped`` leaves its cycles (cost model and PE
    model) as they are: 4 column folds of 32 x 2 x 9 + 4 + 3 - 2 = 581 cycles on each of
    2 arrays."""
    layer = conv("c", 1, 6, 9, 7, 10, 3, pad=1)
    for pre in ("serial", "overlapped"):
        a = make_arch(rows=4, cols=3, count=2, dataflow="kco", preload=pre)
        m = seed_mapping(layer, a)
        assert layer_result(m, a).compute_cycles == 4 * 581 - 1
        x, w = operands(layer, 3)
        out, r = simulate_mapping(m, x, w)
        assert r.last_cycle == 4 * 581 - 1 and np.array_equal(out, conv2d_layer(layer, x, w))


def test_hand_derived_channel_tiles():
    """conv C=4 -> N=2 filters, 2x2 window, 2x2 output (M = 4 pixels) on 4 x 2 PEs x 2
    arrays (lanes: Mp = 2 pixel steps), two shared levels, the inner one's tile holding
    2 of the 4 channels: the array is fed two channel tiles, each a pass of its own.
    Whole (one tile): ceil(4/4) = 1 channel block, E = 4 taps, T = 2 x 4 = 8, one column
    fold of T + Ra + Ca - 2 = 12 cycles on each array (last index 11). Two tiles of 2
    channels: each still one channel block of the 4 rows (2 rows padded), T = 8, 12
    cycles a pass, passes back to back: 24 cycles (last index 23; each array busy 24).
    Each pass's 8 outputs (4 pixels x 2 filters) leave the column registers: 16
    partial-sum writes, the second of each read back, 8 reads (int32: 64 B written, 32 B
    read by the array). The buffer reads of inputs (once per column fold: 4 x 4 x 4 = 64)
    and weights (once per pixel step: 2 x 16 = 32 x 2 = 64) do not change."""
    from dataclasses import replace

    from tilesim.mapper.mapping import LevelTile
    from tilesim.sim import CostModel
    from tilesim.sim.cost import mapping_compute_cycles
    from tilesim.sim.kernels.nest import execute_nest
    from test_pe_counts import _arch, _ints
    layer = conv("split", 1, 4, 3, 3, 2, 2)
    pe = (("in_reg", ["input"], "1 B"), ("w_reg", ["weight"], "1 B"),
          ("acc_reg", ["output"], "4 B"))
    a = _arch("kco", 2, pe, 4, 2, 2, "serial")
    m = seed_mapping(layer, a, "kco")
    assert m.tiling.c_tile == 4 and mapping_compute_cycles(m, a) == 11
    t = m.tiling
    m = replace(m, tiling=replace(t, inner=(LevelTile(1, 2, 2, 2, 2, t.order),)))
    p = points_of(m, a)
    assert (int(p.folds[0]), int(p.fold_cycles[0]), int(p.fold_interval[0])) == (2, 24, 24)
    assert mapping_compute_cycles(m, a) == 23
    assert (int(p.accesses["output"][0]), int(p.reads["output"][0])) == (16, 2)
    assert (int(p.accesses["input"][0]), int(p.accesses["weight"][0])) == (64, 64)
    x, w = operands(layer, 11)
    ex = execute_nest(m, a, x, w)
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))
    assert np.array_equal(ex.pe_output, ex.output)
    r = ex.pe
    assert (r.last_cycle, r.array_cycles) == (23, (24, 24))
    assert r.buffer == {"input": (64, 0), "weight": (64, 0), "output": (8, 16)}
    arr = CostModel(a).array_access(layer, p)
    assert _ints(arr)[("l2", "output")] == (32, 64)
    assert ex.access == _ints(CostModel(a).access(layer, p))
