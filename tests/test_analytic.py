"""Hand-derived cycle counts of the analytic model (fold formula, DESIGN §3).

Per fold on an Ra x Ca array streaming T: os T + Ra + Ca - 2; ws/is T + 2 Ra + Ca - 2;
compute_cycles = folds * per_fold - 1 (last-cycle index, SCALE-Sim's convention).
"""
from __future__ import annotations

import math

import pytest

from tilesim.workloads.ir import conv, fc, gemm
from conftest import layer_result, make_arch, seed_mapping


def cycles(layer, arch):
    return layer_result(seed_mapping(layer, arch), arch)


@pytest.mark.parametrize("layer, arch_kw, expected, why", [
    (gemm("g", 4, 4, 10), dict(rows=4, cols=4, dataflow="os"), 15,
     "1 fold: T=10 + 4 + 4 - 2 = 16 cycles -> index 15"),
    (gemm("g", 10, 6, 9), dict(rows=4, cols=4, dataflow="ws"), 119,
     "rows K=9 -> 3 folds, cols N=6 -> 2 folds; 6 x (10 + 8 + 4 - 2) - 1"),
    (conv("c", 1, 2, 2, 2, 3, 1), dict(rows=8, cols=8, dataflow="is"), 24,
     "smaller than the array: K=2 rows, M=4 cols, T=N=3; 3 + 16 + 8 - 2 - 1"),
    (conv("c", 1, 1, 5, 5, 8, 3, stride=2, pad=1), dict(rows=4, cols=4, dataflow="os"), 89,
     "stride 2 pad 1: P=Q=3, M=9 -> 3 folds, N=8 -> 2 folds, T=9; 6 x 15 - 1"),
    (conv("c", 1, 4, 6, 6, 4, 3, pad=1, groups=4), dict(rows=4, cols=4, dataflow="ws"), 551,
     "depthwise: 4 groups x (K=9 -> 3 row folds) x 1 col fold, T=36; 12 x 46 - 1"),
    (conv("c", 1, 16, 4, 4, 8, 1), dict(rows=8, cols=8, dataflow="ws"), 75,
     "1x1: K=16 -> 2 folds, N=8 -> 1 fold, T=16; 2 x (16 + 16 + 8 - 2) - 1"),
    (fc("f", 2, 6, 5), dict(rows=4, cols=4, dataflow="os"), 23,
     "FC: M=2 -> 1 fold, N=5 -> 2 folds, T=6; 2 x 12 - 1"),
    (gemm("g", 10, 6, 9), dict(rows=4, cols=4, dataflow="ws", count=2), 59,
     "two arrays share 6 folds: 3 each x 20 - 1"),
    (gemm("g", 10, 6, 9), dict(rows=4, cols=4, dataflow="ws", count=4), 39,
     "four arrays, 6 folds: ceil(6/4) = 2 each x 20 - 1"),
])
def test_hand_derived_compute_cycles(layer, arch_kw, expected, why):
    """compute_cycles matches the hand derivation; with unlimited bandwidth, no stalls."""
    r = cycles(layer, make_arch(**arch_kw))
    assert r.compute_cycles == expected, why
    assert r.total_cycles == expected and r.stall_cycles == 0


def test_depthwise_is_not_one_filter():
    """A depthwise layer costs one GEMM per group, not one dense GEMM of all channels."""
    dw = conv("dw", 1, 32, 8, 8, 32, 3, pad=1, groups=32)
    dense_one_filter = conv("d", 1, 32, 8, 8, 1, 3, pad=1)
    a = make_arch(rows=16, cols=16, dataflow="ws")
    assert dw.kind == "depthwise" and dw.macs == dense_one_filter.macs == 32 * 64 * 9
    # depthwise: 32 groups x (K = 9 rows -> 1 fold) x (N = 1 col -> 1 fold), T = 64
    assert cycles(dw, a).folds == 32
    assert cycles(dw, a).compute_cycles == 32 * (64 + 32 + 16 - 2) - 1
    # one dense filter over 288 reduction rows: 18 row folds
    assert cycles(dense_one_filter, a).compute_cycles == 18 * (64 + 32 + 16 - 2) - 1


def test_memory_bound_layer_takes_bytes_over_bandwidth():
    """A weight-heavy GEMV at 1 B/cycle: its reads / (1 B/cycle), and the stores of the
    first 14 output tiles (the last tile takes an output slot: double-buffered, two
    slots, so all but two tiles must have left), then the last tile's compute, then its
    store; nothing hides those (16 tiles of 4 filters, 176 cycles each, 4 B of output
    each). The discrete-event engine takes as long (tests/test_des.py)."""
    layer = gemm("gemv", 1, 64, 64)  # 64 inputs + 4096 weights + 64 outputs, int8
    r = cycles(layer, make_arch(rows=4, cols=4, dataflow="ws", bandwidth="1 B/cycle"))
    assert r.dram_read_bytes + r.dram_write_bytes == 64 + 4096 + 64
    assert r.compute_cycles == 16 * 16 * (1 + 8 + 4 - 2) - 1
    assert r.total_cycles == (64 + 4096) + 14 * 4 + 2816 // 16 + 4 - 1 and r.bound == "memory"
    assert r.stall_cycles == r.total_cycles - r.compute_cycles


def test_hidden_loads_cost_only_first_and_last_tile():
    """Compute-bound and double-buffered: total = first tile load + compute + last store."""
    layer = gemm("g", 64, 8, 8)  # ws 4x4: 4 folds of T=64
    a = make_arch(rows=4, cols=4, dataflow="ws", bandwidth="4 B/cycle")
    r = cycles(layer, a)
    m = seed_mapping(layer, a)
    first = math.ceil((m.tiling.tile_bytes["input"] + m.tiling.tile_bytes["weight"]) / 4)
    last = math.ceil(m.traffic.last_store / 4)
    assert r.compute_cycles == 4 * (64 + 8 + 4 - 2) - 1
    assert r.total_cycles == first + r.compute_cycles + last
    assert r.memory_cycles < r.compute_cycles


def test_single_buffering_serialises_transfers():
    """Without double buffering every byte waits for compute: total = compute + memory."""
    layer = gemm("g", 64, 8, 8)
    single = cycles(layer, make_arch(rows=4, cols=4, dataflow="ws", bandwidth="4 B/cycle",
                                     double_buffered=False))
    double = cycles(layer, make_arch(rows=4, cols=4, dataflow="ws", bandwidth="4 B/cycle"))
    assert single.total_cycles == single.compute_cycles + single.memory_cycles
    assert single.total_cycles > double.total_cycles
    assert single.compute_cycles == double.compute_cycles


def test_utilization_bounded_and_exact_for_a_full_fold():
    """Utilisation is MACs / (PEs x cycles) and never exceeds 1, even on a 1x1 array."""
    r = cycles(gemm("g", 3, 1, 5), make_arch(rows=1, cols=1, dataflow="os"))
    assert r.compute_cycles == 3 * 5 - 1  # 3 folds of T=5 + 1 + 1 - 2
    assert r.utilization == pytest.approx(15 / 15)
    r = cycles(gemm("g", 4, 4, 100), make_arch(rows=4, cols=4, dataflow="os"))
    assert r.utilization == pytest.approx(1600 / (16 * 106))


def test_sram_bandwidth_can_bound_a_layer():
    """A slow on-chip buffer makes the layer bound by that level's bandwidth."""
    layer = gemm("g", 64, 8, 8)
    fast = cycles(layer, make_arch(rows=4, cols=4, dataflow="ws"))
    slow = cycles(layer, make_arch(rows=4, cols=4, dataflow="ws", buf_bandwidth="1 B/cycle"))
    assert fast.bound == "compute" and slow.bound == "buf bandwidth"
    moved = slow.buffer_bytes["buf"]["read"] + slow.buffer_bytes["buf"]["write"]
    assert slow.total_cycles == moved - 1
