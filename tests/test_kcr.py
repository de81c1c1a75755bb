"""kcr (K x C unrolling, the filter taps streamed inside the fold from each PE's weight
register file, partial sums accumulated in the column's output register): the
register-file rule, hand-derived plans and timelines, and every fidelity exact (PE
model cycles and outputs, executor, DES)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from conftest import layer_result, make_arch, seed_mapping
from tilesim.mapper import DATAFLOWS, MappingError, Mapspace
from tilesim.mapper.dataflow import gemm_dims, kcr_taps, layer_dims
from tilesim.sim.des import simulate_mac as des_mac
from tilesim.sim.kernels import conv2d_layer
from tilesim.sim.kernels.executor import execute
from tilesim.sim.pe import simulate_gemm, simulate_mapping
from tilesim.workloads.ir import conv

from test_spatial_mappings import convs, ints, operands

FAST = settings(max_examples=30, deadline=None)
KCR, KC = DATAFLOWS["kcr"], DATAFLOWS["kc"]
RFS = st.sampled_from([None, "1 B", "2 B", "4 B", "9 B", "64 B"])


@pytest.mark.parametrize("taps, entries, expected, why", [
    (9, None, (1, 9), "no weight register file: one tap a fold (kc)"),
    (9, {"input": 50}, (1, 9), "only a weight level counts"),
    (9, {"weight": 9}, (9, 1), "room for all taps: one chunk"),
    (49, {"weight": 128}, (49, 1), "tpu_like's rf_128B holds a 7x7 filter"),
    (9, {"weight": 4}, (3, 3), "ceil(9/4) = 3 chunks of ceil(9/3) = 3 taps"),
    (9, {"weight": 2}, (2, 5), "5 chunks of 2 taps, the last padded"),
    (49, {"weight": 16}, (13, 4), "4 chunks of 13 taps (52 streamed, 3 padded)"),
    (1, {"weight": 0}, (1, 1), "a 1x1 filter")])
def test_register_file_rule(taps, entries, expected, why):
    assert kcr_taps(taps, entries) == expected, why


def test_hand_derived_plan():
    """conv C=6 -> N=10, 7x9 output, 3x3, on 4x3 PEs holding 9 weights: 2 row folds x 4
    column folds, no tap loop; T = 63 pixels x 9 taps; fold = 9*4 + 567 + 4 + 3 - 2."""
    d = layer_dims(conv("c", 1, 6, 9, 7, 10, 3, pad=1))
    p = KCR.plan(d, 4, 3, {"weight": 9})
    assert (p.row_folds, p.col_folds, p.folds, p.stream) == (2, 4, 8, 567)
    assert p.fold_cycles == 36 + 567 + 5 == 608
    M, el_in, el_w = 63, 63 * 54, 540
    assert p.accesses == {"input": el_in * 4, "weight": el_w, "output": M * 10 * 2}
    # weights shift down each column's chain of 4 x 9 registers: the value ending in
    # register q (from the top) is latched by q + 1 of them; a 4-row fold's chain holds
    # q = 0..35 (666 latches), the 2-row fold's q = 0..17 (171); 10 columns of filters
    assert sum(range(1, 37)) == 666 and sum(range(1, 19)) == 171
    assert p.pe_writes == {"input": M * 540, "weight": (666 + 171) * 10}
    kc = KC.plan(d, 4, 3)
    assert kc.accesses["output"] == 9 * p.accesses["output"]   # kc: R*S psum writes more
    assert kc.accesses["input"] == p.accesses["input"]
    with pytest.raises(TypeError, match="KCR.plan"):
        KCR.fold_cycles(4, 3, 567)


@FAST
@given(layer=convs(), rows=st.integers(1, 9), cols=st.integers(1, 9))
def test_one_tap_a_fold_is_kc(layer, rows, cols):
    """Without a weight register file kcr's plan is kc's, term for term."""
    d = layer_dims(layer)
    a, b = KCR.plan(d, rows, cols), KC.plan(d, rows, cols)
    assert (a.folds, a.fold_cycles, a.accesses, a.pe_writes) == \
        (b.folds, b.fold_cycles, b.accesses, b.pe_writes)


@pytest.mark.parametrize("rows, cols, M, taps, entries, last", [
    (1, 1, 2, 2, {"weight": 2}, 5),     # preload 0-1; elements 0..3 enter at 2..5
    (2, 2, 2, 3, {"weight": 3}, 13),    # preload 0-5; last enters row 0 at 11, + 1 + 1
    (2, 2, 2, 3, {"weight": 2}, 2 * 10 - 1),   # 2 chunks of 2 taps: 2 folds of 4+4+2
    (3, 1, 1, 1, None, 5)])             # ws's T + 2 Ra + Ca - 2 = 1 + 6 - 1
def test_tiny_timelines(rows, cols, M, taps, entries, last):
    a, b = ints((1, M, rows * taps), 1), ints((1, rows * taps, cols), 2)
    r = simulate_gemm(a, b, "kcr", rows, cols, rs=taps, pe_entries=entries)
    assert np.array_equal(r.output, a.astype(np.int32) @ b.astype(np.int32))
    assert r.last_cycle == last


@FAST
@given(data=st.data(), rows=st.integers(1, 9), cols=st.integers(1, 9),
       count=st.integers(1, 3), rf=RFS, seed=st.integers(0, 2 ** 31))
def test_pe_equals_reference_and_cost_model(data, rows, cols, count, rf, seed):
    """PE model under kcr: outputs bit-exact with the reference kernel, last-output cycle
    == the cost model's compute cycles (multi-fold, multi-array, any register file)."""
    layer = data.draw(convs())
    a = make_arch(rows=rows, cols=cols, count=count, dataflows=["kcr"], weight_rf=rf)
    m = seed_mapping(layer, a, "kcr")
    x, w = operands(layer, seed)
    out, r = simulate_mapping(m, x, w)
    assert np.array_equal(out, conv2d_layer(layer, x, w))
    assert r.folds == m.folds
    assert r.last_cycle == layer_result(m, a).compute_cycles


@FAST
@given(data=st.data(), rows=st.integers(1, 8), cols=st.integers(1, 8), rf=RFS,
       size=st.sampled_from(["256 B", "512 B", "64 KiB"]), seed=st.integers(0, 2 ** 31))
def test_executor_runs_mappings_bit_exact(data, rows, cols, rf, size, seed):
    """kcr mappings (small buffers force many tiles) execute bit-exactly."""
    layer = data.draw(convs())
    try:
        m = seed_mapping(layer, make_arch(rows=rows, cols=cols, size=size, dataflows=["kcr"],
                                          weight_rf=rf), "kcr")
    except MappingError:
        assume(False)
    x, w = operands(layer, seed)
    ex = execute(m, x, w)
    assert ex.tiles == m.tiling.n_tiles
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))


@pytest.mark.parametrize("layer", [conv("c3x3", 2, 6, 9, 7, 10, 3, pad=1),
                                   conv("grouped", 1, 12, 5, 5, 6, 3, pad=1, groups=3)])
@pytest.mark.parametrize("rf", [None, "4 B", "9 B"])
@pytest.mark.parametrize("count", [1, 2])
def test_des_equals_cost_model(layer, rf, count):
    """Unlimited bandwidth: DES cycles == cost model's; finite bandwidth: the engine moves
    exactly the mapping's bytes."""
    a = make_arch(rows=4, cols=3, count=count, size="2 KiB", dataflows=["kcr"], weight_rf=rf)
    m = seed_mapping(layer, a, "kcr")
    assert m.dataflow.name == "kcr"
    assert des_mac(m, a).total_cycles == layer_result(m, a).total_cycles
    b = make_arch(rows=4, cols=3, count=count, size="2 KiB", bandwidth="3 B/cycle",
                  dataflows=["kcr"], weight_rf=rf)
    r, t = des_mac(m, b), m.traffic
    assert (r.dram_read_input_bytes, r.dram_read_weight_bytes, r.dram_write_bytes) == \
        (t.read_input, t.read_weight, t.write_output)


def test_array_may_run_kcr_alone():
    """kcr applies to every layer (both axes forward, as kc), so it may be the array's
    own dataflow; a 9-weight register file removes kc's tap folds from the compute."""
    a = make_arch(rows=8, cols=8, dataflow="kcr", weight_rf="9 B")
    layer = conv("c", 1, 8, 6, 6, 8, 3, pad=1)
    assert Mapspace(layer, a).dataflows == ("kcr",)
    m = seed_mapping(layer, a)
    # one fold: 9 * 8 preload + 36 * 9 stream + 8 + 8 - 2
    assert layer_result(m, a).compute_cycles == 72 + 324 + 14 - 1
    assert KCR.applies(gemm_dims(1, 4, 3, 18, 9))


def test_loop_nest_describes_the_taps():
    """``tilesim map``'s loop nest: a 4-weight register file holds 3 taps (3 B of 4 B),
    3 tap chunks x 2 row folds x 4 column folds, 63 pixels x 3 taps streamed, and the fold's
    t Ra + T + Ra + Ca - 2 = 12 + 189 + 5 cycles."""
    from tilesim.mapper.describe import loop_nest
    a = make_arch(rows=4, cols=3, dataflows=["kcr"], weight_rf="4 B")
    text = "\n".join(loop_nest(seed_mapping(conv("c", 1, 6, 9, 7, 10, 3, pad=1), a, "kcr"), a))
    assert "w_rf [weight] in every PE: 3 B of 4 B" in text
    assert "for fold in range(24):" in text and "tap chunks 3 x row folds 2 x col folds 4" in text
    assert "= 63 x 3 taps = 189 cycles" in text and "a fold takes 206 cycles" in text


def test_overlapped_preload_leaves_kcr_serial():
    """kcr has no shadow registers (``overlaps`` False): ``preload: overlapped`` changes
    nothing; 24 folds of 206 cycles dealt to 2 arrays: 12 x 206 - 1, in the PE model too."""
    layer = conv("c", 1, 6, 9, 7, 10, 3, pad=1)
    for pre in ("serial", "overlapped"):
        a = make_arch(rows=4, cols=3, count=2, dataflow="kcr", weight_rf="4 B", preload=pre)
        m = seed_mapping(layer, a)
        assert layer_result(m, a).compute_cycles == 12 * 206 - 1
        x, w = operands(layer, 3)
        out, r = simulate_mapping(m, x, w)
        assert r.last_cycle == 12 * 206 - 1 and np.array_equal(out, conv2d_layer(layer, x, w))
