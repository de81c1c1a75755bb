"""Row stationary (Eyeriss): the logical-to-physical folding, per-pass cycles and buffer
and scratchpad accesses of mapper.dataflow.RowStationary, hand-derived on tiny layers
and proven by the register-level PE model; bit-exact in the PE model and the executor;
the DES equals the cost model at unlimited bandwidth."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from conftest import layer_result, make_arch, seed_mapping
from tilesim import arch
from tilesim.mapper import DATAFLOWS, MappingError, Mapspace
from tilesim.mapper.dataflow import layer_dims, rs_pq
from tilesim.sim import CostModel
from tilesim.sim.des import simulate_mac as des_mac
from tilesim.sim.kernels import conv2d_layer
from tilesim.sim.kernels.executor import execute
from tilesim.sim.pe import simulate_mapping
from tilesim.workloads.ir import conv, fc

FAST = settings(max_examples=40, deadline=None)
RS = DATAFLOWS["rs"]


def rs_arch(rows=3, cols=4, count=1, spads=None, size="64 MiB", bandwidth="unlimited",
            dataflow="rs"):
    """One shared buffer, and (``spads`` = (ifmap, filter, psum) bytes) Eyeriss's three
    per-PE scratchpads; int8 operands, int32 partial sums."""
    pe = [] if spads is None else [
        {"name": n, "kind": "regfile", "scope": "pe", "holds": [op], "size": f"{b} B",
         "read_energy": "1 pJ", "access_bits": 8}
        for n, op, b in zip(("ifmap_spad", "filter_spad", "psum_spad"),
                            ("input", "weight", "output"), spads)]
    return arch.from_dict({
        "version": 1, "name": "rs_test", "clock": "1 GHz", "technology": "28 nm",
        "precision": {"input": "int8", "weight": "int8", "accumulator": "int32"},
        "compute": {"arrays": [{"rows": rows, "cols": cols, "dataflow": dataflow,
                                "count": count}], "vector": {"lanes": 4}},
        "memory": [
            {"name": "dram", "kind": "dram", "holds": ["input", "weight", "output"],
             "bandwidth": bandwidth},
            {"name": "buf", "kind": "sram", "holds": ["input", "weight", "output"],
             "size": size, "double_buffered": True}] + pe})


def ints(shape, seed):
    return np.random.default_rng(seed).integers(-128, 128, shape).astype(np.int8)


def operands(layer, seed):
    return (ints((layer.N, layer.C, layer.H, layer.W), seed),
            ints((layer.K, layer.C // layer.groups, layer.R, layer.S), seed + 1))


@st.composite
def convs(draw):
    """Small convs: R, S in 1..3, stride 1..2, dilation 1..2, padding, groups, batch."""
    g = draw(st.sampled_from([1, 1, 1, 2, 3]))
    if g == 1 and draw(st.integers(0, 5)) == 0:
        return fc("fc", draw(st.integers(1, 2)), draw(st.integers(1, 8)),
                  draw(st.integers(1, 8)))
    r, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dil = draw(st.integers(1, 2))
    pad = draw(st.integers(0, 1))
    lo = max(1, (max(r, s) - 1) * dil + 1 - 2 * pad)
    h = draw(st.integers(lo, lo + 5))
    return conv("c", draw(st.integers(1, 2)), g * draw(st.integers(1, 4)), h,
                h + draw(st.integers(0, 2)), g * draw(st.integers(1, 4)), r, s,
                stride=draw(st.integers(1, 2)), pad=pad, dilation=dil, groups=g)


ARRAYS = st.sampled_from([(3, 4), (6, 5), (12, 14), (1, 1), (2, 7)])
SPADS = st.sampled_from([None, (12, 224, 96), (6, 20, 12), (3, 9, 8)])


# ---- the folding rule, by hand -------------------------------------------------------------
def test_pq_rule_eyeriss_alexnet():
    """Eyeriss's scratchpads (12 ifmap, 224 filter values; psums: 24 x 16 b = 12 int32):
    S = 11 (CONV1) fits one channel's window, p = min(224 // 11, 12) = 12; S = 5 (CONV2,
    48 channels a group) q = 2 (10 of 12), p = 12; S = 3 q = 4, p = 12 (144 of 224)."""
    e = {"input": 12, "weight": 224, "output": 12}
    assert rs_pq(11, 96, 3, e) == (12, 1)
    assert rs_pq(5, 128, 48, e) == (12, 2)
    assert rs_pq(3, 384, 256, e) == (12, 4)
    assert rs_pq(3, 2, 256, e) == (2, 4)                    # two filters only
    assert rs_pq(3, 8, 8, {"input": 12, "weight": 30, "output": 12}) == (5, 2)  # 10 of 30
    assert rs_pq(3, 8, 8, {"input": 12, "weight": 24, "output": 12}) == (2, 4)  # ties: q
    assert rs_pq(3, 8, 8, {}) == (1, 1) == rs_pq(13, 8, 8, e)   # no spads / row too long


def test_hand_derived_plan():
    """3 -> 4 channels, 3x3 over 6x6 (pad 1) on 3 x 4 PEs, no spads (p = q = 1): sets of
    3 filter rows x 4 output rows, 2 strips (4 + 2 rows), no room to replicate: 2 strips
    x 4 filters x 3 channels = 24 passes of S*(Q+1) + R - 1 = 3*7 + 2 = 23 cycles.
    Weights: read once per strip (2 x 108); psums: one write per output per channel
    (3 x 144). Inputs per pass: strip 0 needs padded rows 0..5 = real rows 0..4, strip 1
    rows 4..7 = real 3..5; windows of columns x-1..x+1 enter 6 real columns in all: per
    filter (4) and channel (3): (5 + 3) x 6 = 48 -> 576."""
    layer = conv("c", 1, 3, 6, 6, 4, 3, pad=1)
    p = RS.plan(layer_dims(layer), 3, 4)
    assert (p.row_folds, p.col_folds, p.folds, p.fold_cycles) == (1, 2, 24, 23)
    assert p.accesses == {"input": 4 * 3 * 48, "weight": 2 * 108, "output": 3 * 144}
    # pe writes: every PE of a real output row gets its filter row: 108 x 6 output rows;
    # inputs: each PE (i, j) whose input row j + i - 1 is real (18 - 2 pads) takes 6
    # values per filter and channel
    assert p.pe_writes == {"input": 4 * 3 * 6 * 16, "weight": 108 * 6}
    a = rs_arch(3, 4)
    m = seed_mapping(layer, a)
    assert m.dataflow.name == "rs"
    r = layer_result(m, a)
    assert r.compute_cycles == 24 * 23 - 1
    acc = CostModel(a).point(m).access
    assert acc[("buf", "weight")][0] == 216 and acc[("buf", "input")][0] == 576
    # psums: 432 writes of 4 B, of which the first per output (144) needs no read
    assert (acc[("buf", "output")][0] - m.traffic.write_output,
            acc[("buf", "output")][1] - m.traffic.read_psum) == (288 * 4, 432 * 4)


def test_hand_derived_replication_and_spads():
    """5 -> 6 channels, 3x3 stride 2 over 7x6 (pad 1): P = 4, Q = 3. On 6 x 5 PEs with
    spads of 6 inputs, 20 weights, 3 psums (int32: 12 B): q = 2 (6 = S*q), p = 3
    (S*p*q = 18 <= 20): 2 filter and 3 channel chunks; sets of 3 x 4, two stacked (chain
    of 6 rows), one wide. Passes: 2 images x 2 filter chunks x ceil(3/2) = 8 of
    S*p*q*(Q+1) + 6 - 1 = 18 * 4 + 5 = 77 cycles. Psums: 2 stacked channel groups."""
    layer = conv("c", 2, 5, 7, 6, 6, 3, stride=2, pad=1)
    a = rs_arch(6, 5, spads=(6, 20, 12))
    m = seed_mapping(layer, a)
    p = m.plan
    d = dict(p.detail)
    assert (d["p"], d["q"], d["set"], d["stacked"], d["side"], d["chain"]) == (3, 2, (3, 4), 2, 1, 6)
    assert (p.folds, p.fold_cycles) == (8, 77)
    assert p.reads["output"] == 2 and p.accesses["output"] == 2 * layer.output_elems
    assert layer_result(m, a).compute_cycles == 8 * 77 - 1


def test_pe_access_follows_rs_reuse():
    """Scratchpads under rs, by hand (the layer of test_hand_derived_plan, 1 B operands):
    every MAC reads one input and one weight and reads and writes a 4 B psum; the filter
    spads take 648 B, the ifmap spads 1152 B (not a write per MAC as a moving operand)."""
    layer = conv("c", 1, 3, 6, 6, 4, 3, pad=1)
    a = rs_arch(3, 4, spads=(3, 3, 4))      # one row, one psum: p = q = 1
    m = seed_mapping(layer, a)
    assert dict(m.plan.detail)["p"] == dict(m.plan.detail)["q"] == 1
    acc = CostModel(a).point(m).access
    macs = layer.macs
    assert [int(v[0]) for v in acc[("filter_spad", "weight")]] == [macs, 648]
    assert [int(v[0]) for v in acc[("ifmap_spad", "input")]] == [macs, 1152]
    assert [int(v[0]) for v in acc[("psum_spad", "output")]] == [4 * macs, 4 * macs]


# ---- every fidelity ------------------------------------------------------------------------
@FAST
@given(layer=convs(), shape=ARRAYS, spads=SPADS, count=st.integers(1, 2),
       seed=st.integers(0, 2 ** 31))
def test_pe_model_equals_reference_and_cost_model(layer, shape, spads, count, seed):
    """Register-level rs: outputs bit-exact with the reference kernel; last-output cycle
    == the cost model's compute cycles; the buffer reads, partial-sum writes and
    scratchpad writes it counts == the plan's (what the cost model charges)."""
    a = rs_arch(*shape, count=count, spads=spads)
    m = seed_mapping(layer, a)
    x, w = operands(layer, seed)
    out, r = simulate_mapping(m, x, w)
    assert np.array_equal(out, conv2d_layer(layer, x, w))
    p = m.plan
    assert r.folds == p.folds == m.folds
    assert r.last_cycle == layer_result(m, a).compute_cycles
    assert {op: r.counts[op] for op in p.accesses} == p.accesses
    assert (r.counts["input spad"], r.counts["weight spad"]) == \
        (p.pe_writes["input"], p.pe_writes["weight"])


@FAST
@given(layer=convs(), shape=ARRAYS, size=st.sampled_from(["256 B", "512 B", "64 KiB"]),
       seed=st.integers(0, 2 ** 31))
def test_executor_runs_rs_mappings_bit_exact(layer, shape, size, seed):
    a = rs_arch(*shape, spads=(12, 224, 48), size=size)
    try:
        m = seed_mapping(layer, a)
    except MappingError:
        assume(False)
    x, w = operands(layer, seed)
    ex = execute(m, x, w)
    assert ex.tiles == m.tiling.n_tiles
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))


@pytest.mark.parametrize("layer", [conv("c3x3", 2, 6, 9, 7, 10, 3, pad=1),
                                   conv("grouped", 1, 12, 5, 5, 6, 3, pad=1, groups=3),
                                   conv("s2", 1, 8, 11, 11, 16, 5, stride=2, pad=2),
                                   fc("fc", 2, 40, 24)])
@pytest.mark.parametrize("count", [1, 2])
def test_des_equals_cost_model(layer, count):
    """Unlimited bandwidth: DES cycles == cost model's; finite: the same DRAM bytes."""
    a = rs_arch(6, 5, count=count, spads=(12, 224, 48), size="2 KiB")
    m = seed_mapping(layer, a)
    assert des_mac(m, a).total_cycles == layer_result(m, a).total_cycles
    b = rs_arch(6, 5, count=count, spads=(12, 224, 48), size="2 KiB", bandwidth="3 GB/s")
    r, t = des_mac(m, b), m.traffic
    assert (r.dram_read_input_bytes, r.dram_read_weight_bytes, r.dram_write_bytes) == \
        (t.read_input, t.read_weight, t.write_output)


def test_rs_applies_to_layers_not_bare_gemms():
    from tilesim.mapper.dataflow import gemm_dims
    assert RS.applies(layer_dims(conv("c", 1, 3, 6, 6, 4, 3)))
    assert not RS.applies(gemm_dims(1, 16, 4, 27, 9))
    with pytest.raises(TypeError, match="plan"):    # no array-only per-fold formula
        RS.fold_cycles(3, 4, 10)


def test_search_picks_between_ws_and_rs():
    """Offered [ws, rs] (ws the array's own), the latency search takes the faster one per
    layer: rs for a depthwise 3x3 conv (3 filter rows x 14 output rows of a channel;
    ws: 9 of 168 PEs), ws for a dense 3x3 conv of 64 channels at 56 x 56 (ws fills its
    rows with 576 reduction rows; rs's 18-filter chunks leave 8 of 72 filters idle)."""
    from tilesim.sim import make_mapper
    a = rs_arch(12, 14, spads=(24, 448, 96), dataflow="ws")
    a = arch.from_dict(_with_dataflows(a, ["ws", "rs"]))
    for layer, best in ((conv("dw", 1, 32, 28, 28, 32, 3, pad=1, groups=32), "rs"),
                        (conv("c", 1, 64, 56, 56, 64, 3, pad=1), "ws")):
        assert Mapspace(layer, a).dataflows == ("ws", "rs")
        cyc = {d: layer_result(seed_mapping(layer, a, d), a).compute_cycles
               for d in ("ws", "rs")}
        m = make_mapper(a, "latency").map(layer)
        assert m.dataflow.name == min(cyc, key=cyc.get) == best


def _with_dataflows(a, dfs):
    d = a.model_dump(mode="json")
    d["compute"]["arrays"][0]["dataflows"] = dfs
    return d


def test_map_prints_the_rs_folding(capsys):
    """`tilesim map` on eyeriss_like (rs) shows the set, p x q, replication and passes:
    AlexNet CONV2 (64 -> 192, 5x5, 27 x 27): q = 2 (10 of 12 ifmap values), p = 12 (12
    int32 psums), sets of 5 x 14, 2 stacked; 2 strips x 16 filter x 16 channel passes of
    5*12*2*28 + 10 - 1 = 3,369 cycles."""
    from tilesim.cli import main
    assert main(["map", "--arch", "eyeriss_like", "--model", "alexnet", "--layer",
                 "features.3"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "dataflow rs" in out and "p=12 filters x q=2 channels" in out
    assert "2 stacked" in out and "for pass in range(512):" in out
    assert "3,369 cycles = S*p*q*(Q+1) + chain - 1" in out


@pytest.mark.parametrize("layer, shape, spads, want", [
    # 8 filters, 3 output rows on 3 x 14: 4 sets side by side (th = 4), p = q = 1
    (conv("side", 1, 2, 5, 6, 8, 3), (3, 14), None, {"side": 4, "stacked": 1, "strips": 1}),
    # R = 3 on 2 rows: two filter-row folds whose psums meet in the buffer
    (conv("fold", 2, 3, 6, 5, 2, 3, pad=1), (2, 7), (3, 9, 8), {"stacked": 1, "row folds": 2}),
    # 1x1 on 12 x 14: 12 stacked channel sets chained, side sets on filter chunks
    (conv("pw", 1, 40, 4, 4, 30, 1), (12, 14), (3, 9, 8), {"stacked": 12, "side": 3})])
def test_pe_model_replication_cases(layer, shape, spads, want):
    """The replication and folding cases, one each, by name: PE model == reference and
    cost model (cycles, counts)."""
    a = rs_arch(*shape, spads=spads)
    m = seed_mapping(layer, a)
    d = dict(m.plan.detail)
    assert {k: d[k] for k in want} == want
    x, w = operands(layer, 7)
    out, r = simulate_mapping(m, x, w)
    assert np.array_equal(out, conv2d_layer(layer, x, w))
    assert r.last_cycle == layer_result(m, a).compute_cycles
    assert {op: r.counts[op] for op in m.plan.accesses} == m.plan.accesses
