"""The PE model skips N:M weight zeros (``zeros: skip``, os/ws/is): it runs the GEMM of
each filter's kept values, each PE picking its input among its block's M by its weight's
offset; outputs are bit-exact with the dense reference conv of the same pruned weights,
and its cycles are the cost model's compute cycles of the mapper's compressed plan."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from conftest import seed_mapping
from tilesim import arch
from tilesim.mapper import MappingError, sparse
from tilesim.sim.cost import mapping_compute_cycles
from tilesim.sim.kernels.reference import conv2d_layer, gemm_numpy
from tilesim.sim.pe import simulate_gemm, simulate_mapping
from tilesim.sim.pe.nm import compress, prune
from tilesim.workloads.ir import conv, gemm
from tilesim.workloads.sparsity import Sparsity, nm_kept
from test_executor import layers

NMS = [(1, 2), (2, 4), (1, 4), (2, 8), (3, 4)]


def nm_weights(shape, n, m, rng, holes=0.0):
    """int8 weights (K, ...) that are N:M along each filter's flattened reduction: per
    filter and block, N random positions keep a random value (each zero with
    probability ``holes``: blocks with fewer non-zeros), the rest are zero."""
    w = rng.integers(-128, 128, shape).astype(np.int8).reshape(shape[0], -1)
    keep = np.zeros(w.shape, dtype=bool)
    for f in range(w.shape[0]):
        for s in range(0, w.shape[1], m):
            L = min(m, w.shape[1] - s)
            keep[f, s + rng.choice(L, min(n, L), replace=False)] = True
    keep &= rng.random(w.shape) >= holes
    return np.where(keep, w, 0).astype(np.int8).reshape(shape)


def skip_arch(df, rows, cols, count, preload):
    """One buffer holding everything, an array that skips N:M weight zeros."""
    return arch.from_dict({
        "version": 1, "name": "skip", "clock": "1 GHz", "technology": "28 nm",
        "precision": {"input": "int8", "weight": "int8", "accumulator": "int32"},
        "compute": {"arrays": [{"rows": rows, "cols": cols, "dataflow": df, "count": count,
                                "preload": preload, "zeros": "skip"}],
                    "vector": {"lanes": 4}},
        "memory": [
            {"name": "dram", "kind": "dram", "holds": ["input", "weight", "output"],
             "bandwidth": "unlimited"},
            {"name": "buf", "kind": "sram", "holds": ["input", "weight", "output"],
             "size": "64 MiB"}]})


def test_compress_by_hand():
    """2:4 over K = 10: blocks rows 0-3, 4-7 and a short 8-9 (keeps min(2, 2) = 2):
    non-zeros in order, a block short of N padded with zeros at the free offsets."""
    col = np.array([0, 5, 0, 7, 3, 0, 0, 0, 9, 0], dtype=np.int8)
    v, o = compress(col.reshape(1, 10, 1), 2, 4)
    assert v[0, :, 0].tolist() == [5, 7, 3, 0, 9, 0]
    assert o[0, :, 0].tolist() == [1, 3, 0, 1, 0, 1]
    assert v.shape[1] == nm_kept(10, 2, 4) == 6


def test_hand_derived_ws_2_4_gemm():
    """2:4 weights, K = 8, on one 4 x 4 ws array, serial preload, M = 5 pixels, 4
    filters. Kept rows K' = nm_kept(8, 2, 4) = 2 * 2 = 4: one row fold (dense K = 8: two).
    A ws fold takes T + 2 Ra + Ca - 2 = 5 + 8 + 4 - 2 = 15 cycles: last-cycle index
    1 * 15 - 1 = 14 (dense: 2 * 15 - 1 = 29). The feeders read every input value once
    (each block's 4 values once per pixel, shared by its 2 kept rows): 5 x 8 = 40; the
    preload reads the 4 x 4 kept weights: 16; 20 outputs stored once. MACs 5 x 4 x 4 =
    80: each reads its input and weight registers and writes its partial sum; the
    streamed input is latched once per MAC (80), the weights 1 + 2 + 3 + 4 = 10 times
    per column (40)."""
    rng = np.random.default_rng(7)
    a = rng.integers(-128, 128, (5, 8)).astype(np.int8)
    b = nm_weights((4, 8), 2, 4, rng).T.copy()
    r = simulate_gemm(a, b, "ws", 4, 4, skip=(2, 4))
    assert np.array_equal(r.output[0], gemm_numpy(a, b))
    assert r.last_cycle == 14 and r.folds == 1
    assert simulate_gemm(a, b, "ws", 4, 4).last_cycle == 29
    assert r.buffer == {"input": (40, 0), "weight": (16, 0), "output": (0, 20)}
    assert r.registers == {"input": (80, 80), "weight": (80, 40), "output": (80, 80)}


def test_more_than_n_nonzeros_in_a_block_is_refused():
    """Filter 2's block 1 (reduction rows 4..7) holds 3 non-zeros under 2:4."""
    layer = replace(gemm("fc7", 3, 4, 8), sparsity=Sparsity(nm=(2, 4)))
    m = seed_mapping(layer, skip_arch("ws", 4, 4, 1, "serial"))
    assert m.skip == (2, 4)
    rng = np.random.default_rng(0)
    w = nm_weights((4, 8, 1, 1), 2, 4, rng)
    w[2, 4:8, 0, 0] = [1, 2, 3, 0]
    x = rng.integers(-128, 128, (3, 8, 1, 1)).astype(np.int8)
    with pytest.raises(ValueError, match=r"layer fc7: filter 2, block 1 \(reduction rows "
                                         r"4\.\.7\) has 3 non-zero weights, more than N = 2"):
        simulate_mapping(m, x, w)


def test_prune_keeps_the_n_largest_of_every_block():
    w = np.array([[1, -9, 3, 4, 5, 0, -6, 2, 7]], dtype=np.int8).reshape(1, 9, 1, 1)
    assert prune(w, 2, 4).ravel().tolist() == [0, -9, 0, 4, 5, 0, -6, 0, 7]


@pytest.mark.parametrize("df", ["os", "ws", "is"])
@settings(max_examples=40, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2 ** 31))
def test_skip_mapping_is_bit_exact_and_takes_the_cost_models_cycles(df, data, seed):
    layer = data.draw(layers())
    n, mm = data.draw(st.sampled_from(NMS))
    layer = replace(layer, sparsity=Sparsity(nm=(n, mm)))
    rows, cols = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    a = skip_arch(df, rows, cols, data.draw(st.integers(1, 2)),
                  data.draw(st.sampled_from(["serial", "overlapped"])))
    try:
        m = seed_mapping(layer, a)
    except MappingError:
        assume(False)
    assert m.skip == (n, mm)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (layer.N, layer.C, layer.H, layer.W)).astype(np.int8)
    w = nm_weights((layer.K, layer.C // layer.groups, layer.R, layer.S), n, mm, rng,
                   holes=data.draw(st.sampled_from([0.0, 0.3])))
    out, r = simulate_mapping(m, x, w)
    assert np.array_equal(out, conv2d_layer(layer, x, w))
    assert r.last_cycle == mapping_compute_cycles(m, a)
    p = m.plan
    assert r.folds == p.folds
    # the buffer: compressed weights, the outputs' stores and every input value of a
    # block once per row fold that uses it, as planned (mapper.sparse.split_block_reads)
    assert r.buffer["weight"][0] == p.accesses["weight"]
    assert r.buffer["output"][1] == p.accesses["output"]
    red = (layer.C // layer.groups) * layer.R * layer.S
    kept = nm_kept(red, n, mm)
    assert r.buffer["input"][0] == p.accesses["input"]
    # the registers: the kept MACs' reads and writes, the compressed plan's latches
    macs = sparse.performed_macs(layer, a, m.skip)
    assert macs == layer.macs // red * kept
    assert r.registers == {"input": (macs, p.pe_writes["input"]),
                           "weight": (macs, p.pe_writes["weight"]),
                           "output": (macs, macs)}


@pytest.mark.parametrize("df", ["os", "ws", "is"])
@settings(max_examples=25, deadline=None)
@given(n_m=st.sampled_from(NMS), preload=st.sampled_from(["serial", "overlapped"]),
       rows=st.integers(1, 5), cols=st.integers(1, 5), count=st.integers(1, 3),
       m=st.integers(1, 9), k=st.integers(1, 19), nf=st.integers(1, 7),
       seed=st.integers(0, 2 ** 31))
def test_skip_gemm_equals_the_dense_array_of_the_kept_rows(df, n_m, preload, rows, cols,
                                                          count, m, k, nf, seed):
    """A GEMM with N:M weights takes the cycles the dense array takes on a GEMM whose
    reduction is the kept rows, and computes the dense product."""
    n, mm = n_m
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    b = nm_weights((nf, k), n, mm, rng, holes=0.2).T.copy()
    r = simulate_gemm(a, b, df, rows, cols, count, preload=preload, skip=(n, mm))
    assert np.array_equal(r.output[0], gemm_numpy(a, b))
    kept = nm_kept(k, n, mm)
    d = simulate_gemm(a[:, :kept], b[:kept], df, rows, cols, count, preload=preload)
    assert (r.last_cycle, r.folds, r.registers) == (d.last_cycle, d.folds, d.registers)


def test_a_dataflow_that_cannot_skip_is_refused():
    b = np.zeros((8, 2), dtype=np.int8)
    with pytest.raises(ValueError, match="cannot skip N:M zeros"):
        simulate_gemm(np.zeros((2, 8), dtype=np.int8), b, "kc", 2, 2, rs=1, skip=(2, 4))


def test_conv_by_hand_2_4_os():
    """A 3x3 conv, C = 2 (reduction 18 = four blocks of 4 and a short one of 2, kept
    2 + 2 + 2 + 2 + 2 = 10), K = 2 filters, 3 x 3 outputs (pad 1), on a 9 x 2 os array:
    one fold streaming K' = 10: T + Ra + Ca - 2 = 10 + 9 + 2 - 2 = 19 cycles, last index
    18 (dense: 18 + 9 = 27, index 26)."""
    layer = replace(conv("c", 1, 2, 3, 3, 2, 3, pad=1), sparsity=Sparsity(nm=(2, 4)))
    a = skip_arch("os", 9, 2, 1, "serial")
    m = seed_mapping(layer, a)
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (1, 2, 3, 3)).astype(np.int8)
    w = nm_weights((2, 2, 3, 3), 2, 4, rng)
    out, r = simulate_mapping(m, x, w)
    assert np.array_equal(out, conv2d_layer(layer, x, w))
    assert r.last_cycle == 18 == mapping_compute_cycles(m, a)


def test_verify_runs_a_skip_mapping_on_pruned_weights():
    """``tilesim verify`` of a 2:4 layer on an array that skips: the random weights are
    pruned to 2:4 (unpruned, the PE model would refuse them), outputs and cycles agree,
    and the array takes fewer cycles than the same array computing every MAC."""
    import tilesim
    from tilesim.sim import verify as V
    from tilesim.workloads.sparsity import apply
    model = apply(tilesim.load_model("resnet18"), weight_nm="2:4")
    base = arch.load("edge_tpu_like")
    skip = V.verify_model(model, base.replace({"compute.arrays[0].zeros": "skip"}), layers=1)
    gate = V.verify_model(model, base.replace({"compute.arrays[0].zeros": "gate"}), layers=1)
    assert skip.ok and gate.ok
    (s,), (g,) = skip.checks, gate.checks
    assert s.pe_max_err == 0 and s.pe_cycles == s.analytic_cycles
    assert s.pe_cycles < g.pe_cycles


def test_a_block_split_by_a_row_fold_is_read_in_both():
    """ws, 2:4, K = 11 (blocks of 4, 4, 3 rows; K' = 2 + 2 + 2 = 6), Ra = 3, 7 pixels,
    5 filters on 2 columns (3 column folds). Kept rows 0-2 (blocks 0, 0, 1) and 3-5
    (blocks 1, 2, 2): block 1 is fed in both row folds. Per pixel and column fold the
    feeders read 4 + 4 (fold 0) + 4 + 3 (fold 1) = 15 values: 7 x 3 x 15 = 315, where
    the plan charges each input once per column fold, 7 x 11 x 3 = 231. With Ra = 2 no
    block is split: 231."""
    rng = np.random.default_rng(11)
    a = rng.integers(-128, 128, (7, 11)).astype(np.int8)
    b = nm_weights((5, 11), 2, 4, rng).T.copy()
    for ra, reads in ((3, 315), (2, 231)):
        r = simulate_gemm(a, b, "ws", ra, 2, skip=(2, 4))
        assert np.array_equal(r.output[0], gemm_numpy(a, b))
        assert r.buffer["input"] == (reads, 0)
        # the cost model's count: block 1 (4 values) again where fold 1 starts at row 3
        assert sparse.split_block_reads(11, 2, 4, ra) == (4 if ra == 3 else 0)
        assert 7 * 3 * (11 + sparse.split_block_reads(11, 2, 4, ra)) == reads
