"""Spatial mappings as data: os/ws/is keep their closed forms under the generalised
Dataflow; the channel-parallel depthwise dataflow (dw, depthwise layers only) and the
K x C unrolling with the filter window in time (kc) are exact in every fidelity (PE
model cycles and outputs, executor, DES)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from conftest import layer_result, make_arch, seed_mapping
from tilesim import arch
from tilesim.mapper import DATAFLOWS, MappingError, Mapspace
from tilesim.mapper.dataflow import gemm_dims, layer_dims
from tilesim.sim import make_mapper
from tilesim.sim.des import simulate_mac as des_mac
from tilesim.sim.kernels import conv2d_layer
from tilesim.sim.kernels.executor import execute
from tilesim.sim.pe import simulate_gemm, simulate_mapping
from tilesim.workloads.ir import conv, fc

FAST = settings(max_examples=30, deadline=None)


def ints(shape, seed):
    return np.random.default_rng(seed).integers(-128, 128, shape).astype(np.int8)


def operands(layer, seed):
    return (ints((layer.N, layer.C, layer.H, layer.W), seed),
            ints((layer.K, layer.C // layer.groups, layer.R, layer.S), seed + 1))


@st.composite
def depthwise(draw):
    c = draw(st.integers(1, 12))
    r = draw(st.integers(1, 3))
    dil, pad = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    h = draw(st.integers(max(1, (r - 1) * dil + 1 - 2 * pad), 7))
    return conv("dw", draw(st.integers(1, 2)), c, h, h + draw(st.integers(0, 2)), c, r,
                stride=draw(st.integers(1, 2)), pad=pad, dilation=dil, groups=c)


@st.composite
def convs(draw):
    """Small dense, grouped and depthwise convs and FC layers (kc applies to all)."""
    g = draw(st.sampled_from([1, 1, 2, 3]))
    if g == 1 and draw(st.booleans()):
        return fc("fc", draw(st.integers(1, 3)), draw(st.integers(1, 12)),
                  draw(st.integers(1, 12)))
    r = draw(st.integers(1, 3))
    h = draw(st.integers(r, 6))
    return conv("c", draw(st.integers(1, 2)), g * draw(st.integers(1, 5)), h, h,
                g * draw(st.integers(1, 5)), r, stride=draw(st.integers(1, 2)),
                pad=draw(st.integers(0, 1)), groups=g)


LAYERS = {"dw": depthwise(), "kc": convs()}


# ---- the table: os/ws/is unchanged ----------------------------------------------------------
@given(st.integers(1, 5), st.integers(1, 40), st.integers(1, 40), st.integers(1, 40),
       st.integers(1, 9), st.integers(1, 9))
def test_gemm_dataflows_keep_their_closed_forms(g, M, N, K, ra, ca):
    """os/ws/is: groups x row folds x col folds folds of T + Ra + Ca - 2 (os) or
    T + 2 Ra + Ca - 2 (ws, is); an operand lacking an axis's dim is re-read per fold of
    that axis (the pre-generalisation rule)."""
    dims = {"G": g, "M": M, "N": N, "K": K}
    rs = [d for d in (9, 3, 1) if K % d == 0][0]
    gd = gemm_dims(g, M, N, K, rs)
    cd = lambda a, b: -(-a // b)  # noqa: E731
    for name, (r, c, t) in {"os": ("M", "N", "K"), "ws": ("K", "N", "M"),
                            "is": ("K", "M", "N")}.items():
        p = DATAFLOWS[name].plan(gd, ra, ca)
        rf, cf = cd(dims[r], ra), cd(dims[c], ca)
        assert (p.row_folds, p.col_folds, p.folds) == (rf, cf, g * rf * cf)
        assert p.fold_cycles == dims[t] + (ra if name != "os" else 0) + ra + ca - 2
        have = {"input": "MK", "weight": "KN", "output": "MN"}
        assert p.reads == {op: (1 if r in d else rf) * (1 if c in d else cf)
                           for op, d in have.items()}
        assert DATAFLOWS[name].applies(gd)


def test_dw_applies_to_depthwise_only():
    """dw needs one input channel and one filter per group: columns cannot share inputs."""
    dwl = conv("dw", 1, 16, 6, 6, 16, 3, pad=1, groups=16)
    assert DATAFLOWS["dw"].applies(layer_dims(dwl))
    for other in (conv("dense", 1, 16, 6, 6, 8, 3, pad=1),
                  conv("grouped", 1, 16, 6, 6, 16, 3, pad=1, groups=4),
                  conv("multiplier2", 1, 8, 6, 6, 16, 3, pad=1, groups=8), fc("fc", 1, 8, 4)):
        a = make_arch(rows=4, cols=4, dataflows=["dw"])
        sp = Mapspace(other, a)
        # dw is left out of the layer's space; the array's own ws still maps it
        assert sp.dataflows == ("ws",)
        assert sp.points(np.arange(sp.size)).legal.any()
        with pytest.raises(ValueError, match="does not apply"):
            sp.seed("dw")
        a_, b_ = np.ones((other.groups, 4, 3), np.int8), np.ones((other.groups, 3, 2), np.int8)
        with pytest.raises(ValueError, match="does not apply"):
            simulate_gemm(a_, b_, "dw", 4, 4)


# ---- hand-derived cycles ---------------------------------------------------------------
def test_dw_hand_derived_cycles():
    """32 channels of 3x3 over 8x8 (pad 1) on 16x16: ws runs the 32 groups one after
    another, 32 x (64 + 32 + 16 - 2) cycles; dw puts the 9 taps on rows and 16 channels
    on the columns: 2 folds of 64 + 2 x 16 - 1 = 95 cycles; two arrays share them."""
    layer = conv("dw", 1, 32, 8, 8, 32, 3, pad=1, groups=32)
    a = make_arch(rows=16, cols=16, dataflows=["dw"])
    ws, dw = seed_mapping(layer, a), seed_mapping(layer, a, "dw")
    assert layer_result(ws, a).compute_cycles == 32 * (64 + 32 + 16 - 2) - 1
    r = layer_result(dw, a)
    assert (r.folds, r.row_folds, r.col_folds, r.dataflow) == (2, 1, 2, "dw")
    assert r.compute_cycles == r.total_cycles == 2 * 95 - 1
    a2 = make_arch(rows=16, cols=16, dataflows=["dw"], count=2)
    assert layer_result(seed_mapping(layer, a2, "dw"), a2).compute_cycles == 95 - 1


def test_kc_hand_derived_cycles_and_reads():
    """16 -> 8 channels, 3x3 over 6x6 (pad 1) on an 8x8 array: kc folds the 9 taps and
    the 2 channel blocks of 8 rows: 9 x 2 ws folds of 36 + 16 + 8 - 2 = 58 cycles; ws
    packs the reduction (144 rows: 18 folds of the same length). Outputs take a partial
    sum per fold of their column: 18 writes; each input and weight is read once."""
    layer = conv("c", 1, 16, 6, 6, 8, 3, pad=1)
    a = make_arch(rows=8, cols=8, dataflows=["kc"])
    kc = seed_mapping(layer, a, "kc")
    r = layer_result(kc, a)
    assert (r.folds, r.row_folds, r.col_folds) == (18, 2, 1)
    assert r.compute_cycles == 18 * 58 - 1
    assert kc.plan.reads == {"input": 1, "weight": 1, "output": 18}
    assert layer_result(seed_mapping(layer, a), a).compute_cycles == 18 * 58 - 1
    # a 3-channel first layer: kc uses 3 of 8 rows per tap, ws packs 27 reduction rows
    first = conv("c", 1, 3, 6, 6, 8, 3, pad=1)
    assert layer_result(seed_mapping(first, a, "kc"), a).compute_cycles == 9 * 58 - 1
    assert layer_result(seed_mapping(first, a), a).compute_cycles == 4 * 58 - 1


def test_dw_reads_each_operand_as_often_as_ws():
    """On a depthwise layer both dataflows read every im2col input and weight element
    once from the buffer and write each output once per row fold (9 taps on 4 rows:
    3 row folds), so the buffer's access counts are equal."""
    layer = conv("dw", 1, 8, 6, 6, 8, 3, pad=1, groups=8)
    a = make_arch(rows=4, cols=4, dataflows=["dw"])
    ws, dw = (layer_result(seed_mapping(layer, a, d), a) for d in ("ws", "dw"))
    assert ws.buffer_bytes == dw.buffer_bytes
    m = seed_mapping(layer, a, "dw")
    assert m.plan.reads == {"input": 1, "weight": 1, "output": 3}
    assert m.row_folds == 3 and m.col_folds == 2 and m.folds == 6


def test_dw_tiny_timeline():
    """Two channels, two taps, one pixel on a 2x2 array: weights shift in over cycles
    0-1; pixel 0 enters row i of both columns at 2 + i; its sum leaves row 1 at 3."""
    a = ints((2, 1, 2), 1)     # (G, M, K)
    b = ints((2, 2, 1), 2)     # (G, K, N)
    r = simulate_gemm(a, b, "dw", 2, 2)
    assert np.array_equal(r.output, (a.astype(np.int32) @ b.astype(np.int32)))
    assert r.last_cycle == 3 and r.folds == 1


# ---- every fidelity --------------------------------------------------------------------
@pytest.mark.parametrize("df", ["dw", "kc"])
@FAST
@given(data=st.data(), rows=st.integers(1, 9), cols=st.integers(1, 9),
       count=st.integers(1, 3), seed=st.integers(0, 2 ** 31))
def test_pe_equals_reference_and_cost_model(df, data, rows, cols, count, seed):
    """PE model under dw / kc: outputs bit-exact with the reference kernel, last-output
    cycle == the cost model's compute cycles (multi-fold, multi-array)."""
    layer = data.draw(LAYERS[df])
    a = make_arch(rows=rows, cols=cols, count=count, dataflows=[df])
    m = seed_mapping(layer, a, df)
    x, w = operands(layer, seed)
    out, r = simulate_mapping(m, x, w)
    assert np.array_equal(out, conv2d_layer(layer, x, w))
    assert r.folds == m.folds
    assert r.last_cycle == layer_result(m, a).compute_cycles


@pytest.mark.parametrize("df", ["dw", "kc"])
@FAST
@given(data=st.data(), rows=st.integers(1, 8), cols=st.integers(1, 8),
       size=st.sampled_from(["256 B", "512 B", "64 KiB"]), seed=st.integers(0, 2 ** 31))
def test_executor_runs_mappings_bit_exact(df, data, rows, cols, size, seed):
    """dw / kc mappings (small buffers force many tiles) execute bit-exactly."""
    layer = data.draw(LAYERS[df])
    try:
        m = seed_mapping(layer, make_arch(rows=rows, cols=cols, size=size, dataflows=[df]),
                         df)
    except MappingError:
        assume(False)
    x, w = operands(layer, seed)
    ex = execute(m, x, w)
    assert ex.tiles == m.tiling.n_tiles
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))


@pytest.mark.parametrize("df, layer", [
    ("dw", conv("dw", 2, 8, 6, 6, 8, 3, pad=1, groups=8)),
    ("kc", conv("c3x3", 2, 6, 9, 7, 10, 3, pad=1)),
    ("kc", conv("grouped", 1, 12, 5, 5, 6, 3, pad=1, groups=3))])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_des_equals_cost_model(df, layer, count):
    """Unlimited bandwidth: DES cycles == cost model's; finite bandwidth: the engine
    moves exactly the mapping's bytes."""
    a = make_arch(rows=4, cols=3, count=count, size="2 KiB", dataflows=[df])
    m = seed_mapping(layer, a, df)
    assert m.dataflow.name == df
    assert des_mac(m, a).total_cycles == layer_result(m, a).total_cycles
    b = make_arch(rows=4, cols=3, count=count, size="2 KiB", bandwidth="3 B/cycle",
                  dataflows=[df])
    r, t = des_mac(m, b), m.traffic
    assert (r.dram_read_input_bytes, r.dram_read_weight_bytes, r.dram_write_bytes) == \
        (t.read_input, t.read_weight, t.write_output)


# ---- the search picks per layer -----------------------------------------------------------
def test_search_picks_dw_for_depthwise_and_ws_for_dense():
    a = make_arch(rows=16, cols=16, dataflows=["dw"])
    mp = make_mapper(a, "latency")
    assert mp.map(conv("dw", 1, 32, 8, 8, 32, 3, pad=1, groups=32)).dataflow.name == "dw"
    assert mp.map(conv("dense", 1, 32, 8, 8, 32, 3, pad=1)).dataflow.name == "ws"


def test_schema_lists_dw_but_not_as_the_arrays_own():
    """``dataflows`` may list dw; the array's own ``dataflow`` (the seed of every search,
    which must apply to every layer) stays os, ws or is."""
    assert make_arch(dataflows=["dw"]).array.dataflows == ["ws", "dw"]
    with pytest.raises(arch.ArchError):
        make_arch(dataflow="dw")


def test_kc_may_be_the_arrays_own_dataflow():
    """kc applies to every layer (both axes forward), so an array may run it alone
    (``dataflow: kc``, as ZigZag's K x C arrays do): the search maps dense, depthwise and
    fully connected layers with it, at the hand-derived cycles of
    test_kc_hand_derived_cycles_and_reads; a depthwise layer's one channel per group
    uses one row: 32 groups x 9 taps of one fold each (64 + 16 + 8 - 2 = 86 cycles)."""
    a = make_arch(rows=8, cols=8, dataflow="kc")
    assert a.array.dataflow == "kc"
    mp = make_mapper(a, "latency")
    dense = conv("c", 1, 16, 6, 6, 8, 3, pad=1)
    dwl = conv("dw", 1, 32, 8, 8, 32, 3, pad=1, groups=32)
    for layer in (dense, dwl, fc("fc", 1, 8, 4)):
        assert Mapspace(layer, a).dataflows == ("kc",)
        assert mp.map(layer).dataflow.name == "kc"
    assert layer_result(seed_mapping(dense, a), a).compute_cycles == 18 * 58 - 1
    assert layer_result(seed_mapping(dwl, a), a).compute_cycles == 32 * 9 * 86 - 1
