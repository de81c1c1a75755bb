"""The per-PE levels (``scope: pe``) are counted, not only priced: one executor call
(sim/kernels/nest.py, which runs the register-by-register PE model for the array and
its registers) gives every level's reads and writes (the shared levels' transfers, the
array's own accesses to the innermost ones, the pe levels' registers), and they equal
the cost model's access counts exactly, for every dataflow (os, ws, is, channel-parallel depthwise dw, kc,
kcr, kco, row stationary) and both preloads, on hypothesis-generated small layers with two
and three on-chip tiling levels and pe levels holding every operand or only some; the
executor's and the PE model's outputs equal the reference kernels bit for bit, and the PE
model's cycles the cost model's compute cycles."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, event, given, settings, strategies as st

from conftest import seed_mapping
from tilesim import arch
from tilesim.mapper import MappingError, points_of
from tilesim.sim import CostModel
from tilesim.sim.cost import mapping_compute_cycles, pe_access
from tilesim.sim.kernels import conv2d_layer
from tilesim.sim.kernels.nest import execute_nest
from tilesim.sim.pe.systolic import channel_ranges
from tilesim.workloads.ir import conv, gemm
from test_executor import layers, operands
from test_nest import ALL, _with_levels, nested

DATAFLOWS = ["os", "ws", "is", "dw", "kc", "kcr", "kco", "rs"]
SHARED = {2: [ALL, ALL], 3: [ALL, ["input", "weight"], ["output"]]}


def _arch(df, nlev, pe, rows, cols, count, preload):
    """DRAM, ``nlev`` shared levels (SHARED), then the pe levels ``pe``: (name, holds,
    size) triples. dw is offered beside ws (it cannot be an array's only dataflow)."""
    mem = [{"name": "dram", "kind": "dram", "holds": ALL, "bandwidth": "4 B/cycle"}]
    for i, h in enumerate(SHARED[nlev]):
        mem.append({"name": f"l{i + 1}", "kind": "sram", "holds": list(h),
                    "size": "16 MiB", "double_buffered": i == 0})
    for name, holds, size in pe:
        mem.append({"name": name, "kind": "regfile", "scope": "pe", "holds": list(holds),
                    "size": size})
    return arch.from_dict({
        "version": 1, "name": "pe", "clock": "1 GHz", "technology": "28 nm",
        "precision": {"input": "int8", "weight": "int8", "accumulator": "int32"},
        "compute": {"arrays": [{"rows": rows, "cols": cols, "dataflow": "ws" if df == "dw" else df,
                                "count": count, "preload": preload,
                                **({"dataflows": ["ws", "dw"]} if df == "dw" else {})}],
                    "vector": {"lanes": 4}},
        "memory": mem})


@st.composite
def pe_levels(draw):
    """Either a level per operand (registers of every operand, sizes drawn: kcr's taps
    per PE and rs's filters x channels per PE follow them), or one level holding weights
    and outputs (inputs have none), or one holding weights alone."""
    kind = draw(st.sampled_from(["all", "weight+output", "weight"]))
    wsize = draw(st.sampled_from(["1 B", "2 B", "4 B", "9 B", "24 B"]))
    if kind == "all":
        return (("in_reg", ["input"], draw(st.sampled_from(["1 B", "3 B", "8 B"]))),
                ("w_reg", ["weight"], wsize),
                ("acc_reg", ["output"], draw(st.sampled_from(["4 B", "8 B", "16 B"]))))
    if kind == "weight":
        return (("w_reg", ["weight"], wsize),)
    return (("wo_reg", ["weight", "output"], draw(st.sampled_from(["8 B", "16 B", "48 B"]))),)


@st.composite
def cases(draw, df):
    if df == "dw":   # one filter per group: depthwise (a gemm of one group: N = 1)
        if draw(st.booleans()):
            g, r = draw(st.integers(1, 6)), draw(st.integers(1, 3))
            h = draw(st.integers(r, 7))
            layer = conv("d", draw(st.integers(1, 2)), g, h, h, g, r,
                         stride=draw(st.integers(1, 2)), pad=draw(st.integers(0, 1)), groups=g)
        else:
            layer = gemm("g", draw(st.integers(1, 9)), 1, draw(st.integers(1, 9)))
    else:
        layer = draw(layers())
    nlev = draw(st.sampled_from([2, 3]))
    a = _arch(df, nlev, draw(pe_levels()), draw(st.integers(1, 4)), draw(st.integers(1, 4)),
              draw(st.integers(1, 2)), draw(st.sampled_from(["serial", "overlapped"])))
    return layer, a, nlev, df


def _ints(d):
    return {k: (int(r[0]), int(w[0])) for k, (r, w) in d.items()}


@pytest.mark.parametrize("df", DATAFLOWS)
@settings(max_examples=30, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2 ** 31))
def test_executor_counts_pe_levels_as_the_cost_model_prices_them(df, data, seed):
    layer, a, nlev, df = data.draw(cases(df))
    try:
        m = seed_mapping(layer, a, df)
    except MappingError:
        assume(False)
    m = _with_levels(m, data.draw(nested(layer, nlev)))
    event(f"{nlev} levels, pe levels: {'+'.join(l.name for l in a.pe_levels)}, "
          f"{a.array.preload} preload")
    if df == "kco":
        cts = [lt.c_tile for lt in m.tiling.levels(len(a.onchip))]
        event(f"kco: {len(channel_ranges(layer.C // layer.groups, cts))} channel tile(s)")
    x, w = operands(layer, seed)
    ex = execute_nest(m, a, x, w)
    ref = conv2d_layer(layer, x, w)
    assert np.array_equal(ex.output, ref)
    assert np.array_equal(ex.pe_output, ref)
    assert ex.pe.last_cycle == mapping_compute_cycles(m, a)
    cm = CostModel(a)
    pts = points_of(m, a)
    pe = {lvl.name for lvl in a.pe_levels}
    # the pe levels: counted by the PE model == pe_access, bytes read and written
    counted_pe = {k: v for k, v in ex.access.items() if k[0] in pe}
    assert counted_pe == _ints(pe_access(a, layer, pts)), (m.dataflow.name, m.tiling)
    # and the whole table, every level counted: the shared levels' transfers (the nest)
    # plus the array's accesses (the PE model's feeders, preloads and stores; kco: one
    # pass per channel tile the innermost level feeds the array)
    assert ex.access == _ints(cm.access(layer, pts)), (m.dataflow.name, m.tiling)


@pytest.mark.parametrize("df", DATAFLOWS)
def test_hand_derived_register_counts(df):
    """gemm M=5 rows, N=1 filter, reduction K=6 (dw: 6 channels, 1 tap, 5 pixels) on a
    4 x 3 array, int8 operands, int32 partial sums, a register level per operand: 30
    MACs. Every MAC reads its input and weight and writes its partial sum; the partial
    sum is read by every MAC but an output run's first, and once more as it leaves, so
    reads = writes = 30 x 4 B. A moving operand is written once per MAC. The stationary
    one shifts down its column from the top, the value for row i latched by i + 1
    registers: K = 6 on 4 rows is a fold of 4 rows (1+2+3+4 = 10 latches a column) and
    one of 2 (1+2 = 3): ws, kc and kcr (1 B holds one tap: kcr is kc) 13 for the one
    filter column, is 13 for each of the 5 pixel columns; dw puts the 6 channels on the
    columns and the 1 tap on one row: 6. rs (p = q = 1: the weight register holds one
    value) refills the filter spads every pass, one per image: 6 weights x 5; each input
    value enters one window: 30. kco has no stationary operand: its weight bus writes a
    PE's one-weight register at every use (30), its inputs move right (30)."""
    layer = conv("d", 1, 6, 1, 5, 6, 1, groups=6) if df == "dw" else gemm("g", 5, 1, 6)
    pe = (("in_reg", ["input"], "8 B"), ("w_reg", ["weight"], "1 B"),
          ("acc_reg", ["output"], "4 B"))
    a = _arch(df, 2, pe, 4, 3, 1, "serial")
    m = seed_mapping(layer, a, df)
    ex = execute_nest(m, a, *operands(layer, 1))
    assert layer.macs == 30
    got = {op: ex.access[(n, op)] for n, (op,), _ in pe}
    assert got["output"] == (4 * 30, 4 * 30)
    assert got["input"][0] == got["weight"][0] == 30
    writes = {"os": (30, 30), "ws": (30, 13), "is": (13 * 5, 30), "dw": (30, 6),
              "kc": (30, 13), "kcr": (30, 13), "kco": (30, 30), "rs": (30, 6 * 5)}[df]
    assert (got["input"][1], got["weight"][1]) == writes


@pytest.mark.parametrize("spec", ["eyeriss_like", "examples/zigzag/eyeriss_like.yaml",
                                  "examples/zigzag/tpu_like.yaml",
                                  "examples/zigzag/edge_tpu_like.yaml"])
def test_shipped_architectures_with_pe_levels_count_as_priced(spec):
    """Every shipped architecture with per-PE levels (eyeriss_like's spads under rs; the
    ZigZag transcriptions' register files under kcr and kc): on a small conv, the
    executor's counted table == the cost model's, bit-exact output and exact cycles."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    a = arch.load(spec if spec == "eyeriss_like" else str(root / spec))
    assert a.pe_levels
    layer = conv("c", 1, 8, 6, 6, 12, 3, pad=1)
    m = seed_mapping(layer, a)
    x, w = operands(layer, 7)
    ex = execute_nest(m, a, x, w)
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))
    assert np.array_equal(ex.pe_output, ex.output)
    assert ex.pe.last_cycle == mapping_compute_cycles(m, a)
    assert ex.access == _ints(CostModel(a).access(layer, points_of(m, a)))
