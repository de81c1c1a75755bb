"""The executor's bytes at every memory level: it walks the whole loop nest (every on-chip
level's tiles in its loop order, sim/kernels/executor.py "Every level") and counts, per
(level, operand), the bits moved into and out of each level in that level's format,
metadata included; they equal the cost model's transfers (mapper.tiling.score_points)
exactly for dense layers without padding, and for sparse ones in linear formats where
every value is moved equally often (the DRAM rule, at every level), on small 2- and
3-level architectures built here and on the shipped presets; outputs stay bit-exact."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from conftest import seed_mapping
from test_executor import layers
from test_executor_formats import _layer_1x1, counted, operands, truncated
from tilesim import arch as arch_mod
from tilesim.mapper import LevelTile, points_of
from tilesim.mapper.mapping import LOOPS, ORDERS
from tilesim.sim.kernels import conv2d_layer
from tilesim.sim.kernels.executor import execute
from tilesim.workloads.ir import conv, gemm
from tilesim.workloads.sparsity import Sparsity

FAST = settings(max_examples=30, deadline=None)
ALL = ("input", "weight", "output")
#: on-chip levels (outermost first) by the operands each holds
HOLDS = {
    "all_all": (ALL, ALL),
    "iw_o": (("input", "weight"), ("output",)),
    "tpu_like": (("input", "output"), ("weight",), ("output",)),
    "all_iw_o": (ALL, ("input", "weight"), ("output",)),
    "all_all_all": (ALL, ALL, ALL),
}


def level_arch(holds, fmts=(), dram=None):
    """DRAM and on-chip levels holding ``holds``; ``fmts``: per on-chip level a map
    operand -> format (only the operands the level holds), ``dram`` DRAM's map."""
    mem = [{"name": "dram", "kind": "dram", "holds": list(ALL), "bandwidth": "unlimited",
            **({"format": dram} if dram else {})}]
    for i, h in enumerate(holds):
        f = {op: v for op, v in (fmts[i] if i < len(fmts) else {}).items()
             if op in h and v != "dense"}
        mem.append({"name": f"l{i + 1}", "kind": "sram", "holds": list(h), "size": "16 MiB",
                    "double_buffered": i % 2 == 0, **({"format": f} if f else {})})
    return arch_mod.from_dict({
        "version": 1, "name": "levels", "clock": "1 GHz", "technology": "28 nm",
        "precision": {"input": "int8", "weight": "int8", "accumulator": "int32"},
        "compute": {"arrays": [{"rows": 4, "cols": 4, "dataflow": "ws"}],
                    "vector": {"lanes": 4}},
        "memory": mem})


@st.composite
def nested(draw, layer, nlev, cols_full=False, c_ok=lambda c: True):
    """Level tiles, each nested in the one before, any loop orders; k tiles aligned to
    groups; ``cols_full``: every level's tile covers whole output rows; ``c_ok``: the
    channel tiles allowed (the parent's always is)."""
    kg = layer.K // layer.groups
    par = (layer.N, layer.P, layer.Q, layer.K, layer.C // layer.groups)
    out = []
    for _ in range(nlev):
        if out and draw(st.integers(0, 3)) == 0:
            t = par
        else:
            t = (draw(st.integers(1, par[0])), draw(st.integers(1, par[1])),
                 par[2] if cols_full else draw(st.integers(1, par[2])),
                 draw(st.sampled_from([k for k in range(1, par[3] + 1)
                                       if k % kg == 0 or kg % k == 0])),
                 draw(st.sampled_from([c for c in range(1, par[4] + 1) if c_ok(c)])))
        out.append(LevelTile(*t, order=tuple(LOOPS[i] for i in draw(st.sampled_from(ORDERS)))))
        par = t
    return out


def with_levels(m, lts):
    """``m`` tiled by ``lts`` (level 1 first; trips recomputed, the rest as they are)."""
    top, L = lts[0], m.layer
    cd = lambda a, b: -(-a // b)  # noqa: E731
    trips = (cd(L.N, top.images) * cd(L.P, top.rows) * cd(L.Q, top.cols),
             cd(L.K, top.k_tile), cd(L.C // L.groups, top.c_tile))
    tl = replace(m.tiling, images=top.images, rows=top.rows, cols=top.cols,
                 k_tile=top.k_tile, c_tile=top.c_tile, order=top.order, trips=trips,
                 inner=tuple(lts[1:]))
    return replace(m, tiling=tl)


def transfers(m, a) -> dict:
    """The cost model's (level, operand) -> (read, write) bytes between levels; the
    ``scope: pe`` levels' rows (the array's registers: not transfers) must be zero."""
    t = points_of(m, a).tiles.transfers
    out = {k: (int(r[0]), int(w[0])) for k, (r, w) in t.items()}
    pe = {lv.name for lv in a.pe_levels}
    assert all(v == (0, 0) for k, v in out.items() if k[0] in pe)
    return {k: v for k, v in out.items() if k[0] not in pe}


def run(m, a, x, w):
    ex = execute(m, x, w, arch=a)
    assert np.array_equal(ex.output, conv2d_layer(m.layer, x, w))
    return ex


# ---- dense: every level's bytes are the cost model's ---------------------------------
def _dense_case(data, layer, a, seed):
    m = with_levels(seed_mapping(layer, a), data.draw(nested(layer, len(a.onchip))))
    x, w = operands(layer, seed, 0.7, 0.7)
    ex = run(m, a, x, w)
    assert ex.level_bits == {k: (8 * r, 8 * wr) for k, (r, wr) in transfers(m, a).items()}, \
        m.tiling
    assert ex.dram_bits == {op: ex.level_bits[(a.dram.name, op)] for op in ALL}


@FAST
@given(st.data(), layers(), st.sampled_from(sorted(HOLDS)), st.integers(0, 2 ** 31))
def test_dense_bytes_at_every_level_equal_the_cost_model(data, layer, name, seed):
    _dense_case(data, layer, level_arch(HOLDS[name]), seed)


@FAST
@given(st.data(), layers(), st.sampled_from(sorted(HOLDS)), st.integers(0, 2 ** 31))
def test_padded_layers_move_the_cost_models_bytes_at_every_level(data, layer, name, seed):
    """Padding is never fetched, by either: the cost model takes the rows and columns an
    edge block's window reaches into the padding off its halo span (mapper.tiling's
    _edge_excess) at every level, so padded layers equal too."""
    assume(layer.padding != (0, 0))
    _dense_case(data, layer, level_arch(HOLDS[name]), seed)


#: the shipped presets with more than one on-chip level (pe levels: no transfers)
PRESETS = ["tpu_v1", "scalesim_google", "edge_tpu_like", "nvdla_small", "eyeriss_like"]


@pytest.mark.parametrize("preset", PRESETS)
@settings(max_examples=12, deadline=None)
@given(data=st.data(), layer=layers(), seed=st.integers(0, 2 ** 31))
def test_dense_bytes_on_presets(preset, data, layer, seed):
    """The presets' own precisions (finals at int8 or int16, partial sums int32)."""
    _dense_case(data, layer, arch_mod.load(preset), seed)


def test_nm_weights_on_sta_dbb_like_equal_the_cost_model():
    """sta_dbb_like stores 2:4 weights nm in DRAM and its weight buffer: tiles on block
    boundaries at every level (channel tiles of 4 values of a 1x1 filter, or whole
    filters) move the cost model's bytes, metadata included."""
    a = arch_mod.load("sta_dbb_like")
    layer = conv("p", 2, 16, 4, 4, 8, 1)
    x, w = operands(layer, 7, 0.6, 1.0, nm=(2, 4))
    sl = counted(layer, x, w, nm=(2, 4))
    m = with_levels(seed_mapping(sl, a), [
        LevelTile(2, 4, 4, 8, 16, ("k", "r", "c")),
        LevelTile(1, 2, 4, 4, 8, ("c", "r", "k"))])
    ex = run(m, a, x, w)
    assert ex.formats["weight"] == "nm"
    cost = transfers(m, a)
    assert set(cost) == set(ex.level_bits)
    for k, (r, wr) in ex.level_bits.items():
        assert truncated(cost[k][0], r) and truncated(cost[k][1], wr), (k, cost[k], r, wr)
    # 2:4 int8: 64 of the 128 weights kept, 8 + 2 bits each. The weight buffer (level 2,
    # their first holder) loops c > r > k: the innermost weight loop is its k, the r loop
    # (2 images x 2 row blocks) outside it, so DRAM sends every weight 4 times
    kept_bits = 128 // 2 * 10
    assert ex.level_bits[("dram", "weight")] == (4 * kept_bits, 0)
    assert ex.level_bits[("weight_buffer", "weight")] == (0, 4 * kept_bits)


# ---- sparse formats: equal where the DRAM rule holds, at every level -----------------
LINEAR = ["dense", "bitmask", "csr"]


@st.composite
def sparse_cases(draw):
    """A 1x1 stride-1 layer (no halo), a 2- or 3-level architecture storing each operand
    in a linear format at every level, and tiles under which every value moves equally
    often in whole csr rows and whole nm blocks: cols = Q everywhere when inputs or
    outputs are csr somewhere; c tiles the whole filter when weights are csr somewhere,
    else whole blocks when nm."""
    layer = _layer_1x1(draw)
    holds = HOLDS[draw(st.sampled_from(sorted(HOLDS)))]
    n = len(holds) + 1
    fi = [draw(st.sampled_from(LINEAR)) for _ in range(n)]
    fw = [draw(st.sampled_from(LINEAR + ["nm"])) for _ in range(n)]
    fo = [draw(st.sampled_from(LINEAR)) for _ in range(n)]
    nm = (draw(st.integers(1, 2)), draw(st.sampled_from([2, 4]))) if "nm" in fw else None
    fmts = [{"input": i, "weight": w_, "output": o} for i, w_, o in zip(fi, fw, fo)]
    Cg = layer.C // layer.groups
    if "csr" in fw:
        c_ok = lambda c: c == Cg  # noqa: E731
    elif nm:
        c_ok = lambda c: c % nm[1] == 0 or c == Cg  # noqa: E731 (R = S = 1)
    else:
        c_ok = lambda c: True  # noqa: E731
    lts = draw(nested(layer, len(holds), cols_full="csr" in fi + fo, c_ok=c_ok))
    return layer, level_arch(holds, fmts[1:], fmts[0]), nm, lts


@settings(max_examples=60, deadline=None)
@given(sparse_cases(), st.sampled_from([0.1, 0.5, 1.0]), st.integers(0, 2 ** 31))
def test_sparse_bytes_at_every_level_equal_the_cost_model(case, d, seed):
    layer, a, nm, lts = case
    x, w = operands(layer, seed, d, d, nm)
    sl = counted(layer, x, w, nm)
    assume(sl is not None)
    m = with_levels(seed_mapping(sl, a), lts)
    ex = run(m, a, x, w)
    cost = transfers(m, a)
    assert set(cost) == set(ex.level_bits)
    for k, (r, wr) in ex.level_bits.items():
        assert truncated(cost[k][0], r) and truncated(cost[k][1], wr), \
            (k, cost[k], r / 8, wr / 8, m.tiling)


# ---- two walks agree: DRAM's bits without inner tiles --------------------------------
@FAST
@given(st.data(), layers(), st.sampled_from(sorted(HOLDS)),
       st.sampled_from(["dense", "bitmask", "rle", "csr"]), st.integers(0, 2 ** 31))
def test_the_level_walk_moves_dram_tiles_as_the_compute_walk(data, layer, name, f, seed):
    """One tiling at every level, any layer (halos, padding, groups), any format, rle
    included: the level walk's DRAM bits are the ones the compute walk encoded, tile by
    tile (dram_bits), and every holder's tile is the level-1 tile."""
    kg = layer.K // layer.groups
    (top,) = data.draw(nested(layer, 1))
    assume(top.k_tile % kg == 0 or kg % top.k_tile == 0)
    a = level_arch(HOLDS[name], [{"input": f, "output": f}] * 3, {op: f for op in ALL})
    x, w = operands(layer, seed, 0.3, 0.5)
    sl = counted(layer, x, w)
    assume(sl is not None)
    m = with_levels(seed_mapping(sl, a), [top])
    ex = run(m, a, x, w)
    assert {op: ex.level_bits[("dram", op)] for op in ALL} == ex.dram_bits
    # every holder holds the level-1 tile: each takes every input DRAM sends, in the
    # same format, and reads none out; each drains and reloads what DRAM takes and gives
    dr_in, (dr_out_r, dr_out_w) = ex.dram_bits["input"][0], ex.dram_bits["output"]
    for lv in a.onchip:
        if "input" in lv.holds:
            assert ex.level_bits[(lv.name, "input")] == (0, dr_in)
        if "output" in lv.holds:
            assert ex.level_bits[(lv.name, "output")] == (dr_out_w, dr_out_r)


def test_unaligned_hand_made_tiling_of_a_grouped_layer_counts_no_levels():
    """A k tile cutting groups (never a mapspace tile) runs bit-exact; the static
    schedule's loops need aligned k tiles, so no level is counted."""
    layer = conv("g", 1, 4, 5, 5, 6, 3, groups=2)   # 3 filters a group
    a = level_arch(HOLDS["all_all"])
    x, w = operands(layer, 1, 1.0, 1.0)
    m = with_levels(seed_mapping(layer, a), [LevelTile(1, 3, 3, 2, 2, ("r", "k", "c"))])
    ex = run(m, a, x, w)
    assert ex.level_bits == {} and ex.dram_bits["output"][1] > 0


# ---- by hand -------------------------------------------------------------------------
def test_hand_derived_three_level_bytes():
    """gemm of 4 images x 8 inputs -> 4 outputs (int8, int32 partial sums, int8 finals)
    on DRAM (dense) > l1 (all; inputs and outputs bitmask) > l2 (inputs dense, weights
    bitmask) > l3 (outputs, dense). Images 0 and 2 are non-zero (16 of 32 inputs),
    filters 0 and 1 (16 of 32 weights), so 4 of the 16 outputs.

    Tiles: l1 the whole layer (every loop one trip); l2 2 images x 4 filters x 4
    channels, order r > c > k; l3 2 images x 2 filters x 4 channels, order k > r > c.

    * inputs: DRAM -> l1 once (32 B dense read; l1 writes bitmask 16 x 8 + 32 bits =
      20 B); l2's innermost input loop with 2 trips is its c, with only 1-trip or
      relevant loops outside, so every input reaches l2 once: l1 reads 20 B (its
      format), l2 writes 32 B (dense).
    * weights: DRAM -> l1 once, 32 B both sides (dense); l2's innermost weight loop is
      its c, and its r loop (2 trips, irrelevant) sits outside: every weight reaches l2
      twice: l1 reads 64 B, l2 writes 2 x (16 x 8 + 32) bits = 40 B.
    * outputs at l3: the innermost output loop with 2 trips is l3's k; l2's c (2 trips,
      irrelevant) sits outside, so each output is visited twice: 16 partial sums out
      (64 B) and back in (64 B), then 16 finals (16 B dense): l3 reads 80 B, writes 64 B.
      l1 (another tile) takes them: it writes 64 B of partial sums + the finals in its
      bitmask (4 x 8 + 16 bits = 6 B) = 70 B and reads 64 B back down; its own visit
      drains 6 B to DRAM, which writes 16 B (dense). l1 reads 64 + 6 = 70 B."""
    a = level_arch(HOLDS["all_iw_o"], [{"input": "bitmask", "output": "bitmask"},
                                       {"weight": "bitmask"}])
    layer = gemm("g", 4, 4, 8)
    x = np.zeros((4, 8, 1, 1), dtype=np.int8)
    x[[0, 2]] = np.arange(1, 17, dtype=np.int8).reshape(2, 8, 1, 1)
    w = np.zeros((4, 8, 1, 1), dtype=np.int8)
    w[[0, 1]] = np.arange(1, 17, dtype=np.int8).reshape(2, 8, 1, 1)
    sl = replace(layer, sparsity=Sparsity(weight=0.5, input=0.5, output=0.25, counted=True))
    m = with_levels(seed_mapping(sl, a), [LevelTile(4, 1, 1, 4, 8, ("r", "k", "c")),
                                          LevelTile(2, 1, 1, 4, 4, ("r", "c", "k")),
                                          LevelTile(2, 1, 1, 2, 4, ("k", "r", "c"))])
    hand = {("dram", "input"): (32, 0), ("dram", "weight"): (32, 0),
            ("dram", "output"): (0, 16),
            ("l1", "input"): (20, 20), ("l1", "weight"): (64, 32), ("l1", "output"): (70, 70),
            ("l2", "input"): (0, 32), ("l2", "weight"): (0, 40),
            ("l3", "output"): (80, 64)}
    ex = run(m, a, x, w)
    assert {k: (r / 8, wr / 8) for k, (r, wr) in ex.level_bits.items()} == hand
    # computed as one level-1 tile; walked as 2 x 2 level-2 tiles of 2 level-3 tiles
    assert (ex.tiles, ex.nest_tiles) == (1, 8)
    assert transfers(m, a) == hand
