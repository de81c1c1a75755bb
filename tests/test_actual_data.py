"""The cost model counted on actual data (mapper/actual.py): given the operands' values,
every transfer in a data-dependent format (bitmask, rle, csr) is priced on the real tiles
of the cost model's own schedule, so its bytes equal the executor's at every level, for
every operand, metadata included, for any layer (halos, padding, strides, dilation,
groups), any nested tiling (csr rows cut, rle runs split) and any draw of zeros; the MAC
energy of ``zeros: gate`` counts the real non-zero products. At the densities (no data)
nothing changes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from conftest import seed_mapping
from test_executor import layers
from test_executor_formats import counted, fmt_arch, nonzero_pairs, operands
from test_executor_levels import ALL, HOLDS, level_arch, nested, run, transfers, with_levels
from tilesim import arch as arch_mod
from tilesim.mapper import LevelTile, MappingError, points_of
from tilesim.mapper.actual import Tensors, actual_nonzero_products
from tilesim.sim.cost import CostModel
from tilesim.sim.kernels import conv2d_layer
from tilesim.workloads.ir import conv
from tilesim.workloads.sparsity import Sparsity

FORMATS = ["dense", "bitmask", "rle", "csr"]


def data_of(layer, x, w):
    return Tensors(x, w, conv2d_layer(layer, x, w))


def on_data(m, a, data) -> dict:
    """The cost model's (level, operand) -> (read, write) bytes counted on ``data``."""
    t = points_of(m, a, data).tiles.transfers
    pe = {lv.name for lv in a.pe_levels}
    return {k: (int(r[0]), int(w[0])) for k, (r, w) in t.items() if k[0] not in pe}


@st.composite
def cases(draw):
    """Any layer, a 1- to 3-level architecture storing each operand in any format at
    every level (N:M weights stored nm somewhere, on block-aligned channel tiles: nm
    is data-independent), any nested tiling, any densities."""
    layer = draw(layers())
    holds = HOLDS[draw(st.sampled_from(sorted(HOLDS)))]
    n = len(holds) + 1
    fw_choices = FORMATS + (["nm"] if draw(st.booleans()) else [])
    fmts = [{"input": draw(st.sampled_from(FORMATS)), "weight": draw(st.sampled_from(fw_choices)),
             "output": draw(st.sampled_from(FORMATS))} for _ in range(n)]
    nm = None
    c_ok = lambda c: True  # noqa: E731
    if any(f["weight"] == "nm" for f in fmts):
        nm = (draw(st.integers(1, 2)), draw(st.sampled_from([2, 4])))
        rs, cg = layer.R * layer.S, layer.C // layer.groups
        c_ok = lambda c: c == cg or (c * rs) % nm[1] == 0  # noqa: E731
    lts = draw(nested(layer, len(holds), c_ok=c_ok))
    dx, dw = draw(st.sampled_from([0.05, 0.3, 0.7, 1.0])), draw(st.sampled_from([0.1, 0.5, 1.0]))
    return layer, level_arch(holds, fmts[1:], fmts[0]), nm, lts, dx, dw


@settings(max_examples=80, deadline=None)
@given(cases(), st.integers(0, 2 ** 31))
def test_bytes_counted_on_the_data_equal_the_executors_at_every_level(case, seed):
    layer, a, nm, lts, dx, dw = case
    x, w = operands(layer, seed, dx, dw, nm)
    sl = counted(layer, x, w, nm)
    assume(sl is not None)
    m = with_levels(seed_mapping(sl, a), lts)
    ex = run(m, a, x, w)
    assume(ex.level_bits)   # a hand-made tiling cutting groups walks no levels
    got = on_data(m, a, data_of(sl, x, w))
    assert set(got) == set(ex.level_bits)
    for k, (r, wr) in ex.level_bits.items():
        assert got[k] == (r // 8, wr // 8), (k, got[k], r / 8, wr / 8, m.tiling)


def test_hand_derived_halo_on_the_data():
    """One row [5, 7, 0, 0, 0, 9] (int8), a 1x3 filter, two output blocks of two columns:
    the windows are columns [0, 4) and [2, 6). Bitmask (8 bits a non-zero + 1 bit a
    value): [5, 7, 0, 0] is 2 x 8 + 4 = 20 bits, [0, 0, 0, 9] is 8 + 4 = 12: 32 bits,
    4 B. At the density (3 of 6 non-zero) each window holds 2 of its 4 values: 40 bits,
    5 B."""
    layer = conv("row", 1, 1, 1, 6, 1, 1, 3)
    a = level_arch(HOLDS["all_all"], dram={"input": "bitmask"})
    x = np.array([5, 7, 0, 0, 0, 9], dtype=np.int8).reshape(1, 1, 1, 6)
    w = np.ones((1, 1, 1, 3), dtype=np.int8)
    sl = counted(layer, x, w)
    m = with_levels(seed_mapping(sl, a), [LevelTile(1, 1, 2, 1, 1, ("r", "k", "c"))])
    ex = run(m, a, x, w)
    assert ex.level_bits[("dram", "input")] == (32, 0)
    assert on_data(m, a, data_of(sl, x, w))[("dram", "input")] == (4, 0)
    assert transfers(m, a)[("dram", "input")] == (5, 0)


@settings(max_examples=40, deadline=None)
@given(layers(), st.sampled_from(["gate", "skip"]), st.sampled_from([0.1, 0.5, 1.0]),
       st.integers(0, 2 ** 31))
def test_gated_macs_are_the_real_non_zero_products(layer, zeros, d, seed):
    """``zeros: gate`` charges MAC energy for the products with both operands non-zero:
    counted on the data, they are the executor's ``nonzero_macs`` and numpy's count,
    and the MAC energy is that count times the energy of one MAC."""
    a = fmt_arch({"input": "bitmask"}, zeros=zeros)
    x, w = operands(layer, seed, d, d)
    sl = counted(layer, x, w)
    assume(sl is not None)
    m = seed_mapping(sl, a)
    ex = run(m, a, x, w)
    data = data_of(sl, x, w)
    n = actual_nonzero_products(sl, data)
    assert n == ex.nonzero_macs == nonzero_pairs(sl, x, w)
    cm = CostModel(a)
    e_data = cm.point(m, data).energy["mac_energy_pj"][0]
    e_dense = cm.point(m).energy["mac_energy_pj"][0]
    per_mac = e_dense / (sl.macs * sl.sparsity.input * sl.sparsity.weight)
    assert e_data == pytest.approx(n * per_mac, rel=1e-12)


def test_data_changes_nothing_without_formats():
    """On a preset that declares no format, the data has nothing to price: every transfer
    is the densities' (dense) one."""
    a = arch_mod.load("tpu_v1")
    layer = conv("c", 1, 8, 9, 9, 16, 3, pad=1)
    x, w = operands(layer, 5, 0.3, 0.5)
    sl = counted(layer, x, w)
    m = seed_mapping(sl, a)
    assert on_data(m, a, data_of(sl, x, w)) == transfers(m, a)


def test_result_on_the_data_reports_the_counted_dram_bytes():
    """``CostModel.mac_result(m, data)``: the DRAM bytes of the LayerResult are the
    transfers counted on the data (they differ from the densities' here), and the
    result is not cached for the layer's shape (the data is not part of it)."""
    a = level_arch(HOLDS["all_all"], dram={"input": "rle", "output": "bitmask"})
    layer = conv("c", 1, 4, 8, 8, 4, 3, pad=1)
    x, w = operands(layer, 11, 0.2, 1.0)
    sl = counted(layer, x, w)
    m = with_levels(seed_mapping(sl, a), [LevelTile(1, 2, 8, 4, 4, ("r", "k", "c"))])
    data = data_of(sl, x, w)
    cm = CostModel(a)
    r, r0 = cm.mac_result(m, data), cm.mac_result(m)
    t = on_data(m, a, data)
    assert r.dram_read_input_bytes == t[("dram", "input")][0]
    assert r.dram_write_bytes == t[("dram", "output")][1]
    assert r.dram_read_input_bytes != r0.dram_read_input_bytes
    assert cm.mac_result(m) == r0


def test_data_of_the_wrong_shape_is_refused():
    a = level_arch(HOLDS["all_all"], dram={"input": "bitmask"})
    layer = conv("c", 1, 4, 8, 8, 4, 3, pad=1)
    x, w = operands(layer, 1, 0.5, 1.0)
    sl = replace_sparsity(layer)
    m = seed_mapping(sl, a)
    with pytest.raises(MappingError, match=r"input data has shape \(1, 4, 8, 7\)"):
        points_of(m, a, Tensors(x[..., :7], w, conv2d_layer(sl, x, w)))


def replace_sparsity(layer):
    from dataclasses import replace
    return replace(layer, sparsity=Sparsity(input=0.5, output=0.5))


def test_density_model_is_unchanged_by_the_data_path():
    """Without data the transfers are the densities' as before: the same numbers as a
    hand count at the density (the format's expectation, mapper.sparse.format_bits)."""
    from tilesim.mapper.sparse import format_bits
    a = level_arch(HOLDS["all_all"], dram={"input": "bitmask"})
    layer = conv("c", 1, 2, 4, 4, 2, 1)   # 1x1: every input value fetched once a k block
    x, w = operands(layer, 2, 0.5, 1.0)
    sl = counted(layer, x, w)
    m = with_levels(seed_mapping(sl, a), [LevelTile(1, 4, 4, 2, 2, ("r", "k", "c"))])
    want = int(format_bits("bitmask", 32, 8, sl.sparsity.input) / 8 + 1e-9)
    assert transfers(m, a)[("dram", "input")] == (want, 0)


@settings(max_examples=40, deadline=None)
@given(st.data(), layers(), st.sampled_from(FORMATS), st.sampled_from(FORMATS),
       st.sampled_from(FORMATS), st.integers(0, 2 ** 31))
def test_the_engines_tiles_on_the_data_sum_to_the_cost_models_bytes(data, layer, fi, fw, fo,
                                                                     seed):
    """The discrete-event engine's program (sim/des/program.py) moves each DRAM tile's
    bytes counted on the data: over the program they add up to the cost model's DRAM
    transfers counted on the same data (which truncates each total to whole bytes)."""
    from tilesim.sim.des.program import mac_program
    a = level_arch(HOLDS["all_all"], dram={"input": fi, "weight": fw, "output": fo})
    x, w = operands(layer, seed, 0.3, 0.5)
    sl = counted(layer, x, w)
    assume(sl is not None)
    (top,) = data.draw(nested(sl, 1))
    m = with_levels(seed_mapping(sl, a), [top])
    d = data_of(sl, x, w)
    prog = mac_program(m, a, data=d)
    t = on_data(m, a, d)
    assert 0 <= sum(prog.in_bytes) - t[("dram", "input")][0] < 1
    assert 0 <= sum(prog.w_bytes) - t[("dram", "weight")][0] < 1
    assert 0 <= sum(prog.store_bytes) - t[("dram", "output")][1] < 1


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FORMATS), st.lists(st.tuples(st.integers(0, 80), st.integers(1, 9)),
                                          max_size=12),
       st.sampled_from([0.0, 0.02, 0.3, 1.0]), st.sampled_from([4.0, 8.0]),
       st.integers(0, 2 ** 31))
def test_parts_laid_end_to_end_count_as_each_alone(fmt, shapes, d, bits, seed):
    """The pricer counts a level's tiles in one pass over their values laid end to end
    (mapper.actual._total_bits): the same bits as counting each part on its own
    (counted_bits), empty parts and long zero runs across part boundaries included (an
    rle run ends where its part does)."""
    from tilesim.mapper.actual import _total_bits, counted_bits
    rng = np.random.default_rng(seed)
    parts, rows = [], []
    for n, row in shapes:
        n -= n % row   # whole csr rows
        parts.append(((rng.random(n) < d) * rng.integers(1, 9, n)).astype(np.int8))
        rows.append(row)
    lens = np.array([a.size for a in parts], dtype=np.int64)
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int8)
    want = sum(counted_bits(fmt, a, bits, r) for a, r in zip(parts, rows))
    assert _total_bits(fmt, flat, lens, rows, bits) == want
