"""The register-level systolic-array model computes the reference GEMM / conv outputs and
takes exactly the analytic model's compute cycles (multi-fold, multi-array, grouped)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import layer_result, make_arch, seed_mapping
from tilesim.sim.kernels import conv2d_layer, gemm_numpy
from tilesim.sim.pe import simulate_gemm, simulate_mapping
from tilesim.workloads.ir import conv, fc, gemm

FAST = settings(max_examples=30, deadline=None)


def ints(shape, seed, dtype=np.int8):
    return np.random.default_rng(seed).integers(-128, 128, shape).astype(dtype)


@pytest.mark.parametrize("df, rows, cols, m, k, n, expected, why", [
    ("os", 1, 1, 1, 5, 1, 4, "one PE gets a[0, k] and b[k, 0] at cycle k: last MAC at 4"),
    ("os", 2, 3, 2, 4, 3, 6, "PE(1, 2) gets k = 3 at cycle k + i + j = 3 + 1 + 2 = 6"),
    ("ws", 1, 1, 3, 1, 1, 3, "preload in cycle 0; a[m, 0] reaches PE(0, 0) at 1 + m: m = 2 at 3"),
    ("ws", 2, 2, 1, 2, 2, 4, "preload in cycles 0-1; a[0, i] enters row i at 2 + i, reaches "
                             "PE(i, j) at 2 + i + j; the sum leaves PE(1, 1) at 4"),
])
def test_tiny_timelines(df, rows, cols, m, k, n, expected, why):
    """Single-fold timelines derived by hand from the register moves (last-cycle index)."""
    a, b = ints((m, k), 1), ints((k, n), 2)
    r = simulate_gemm(a, b, df, rows, cols)
    assert np.array_equal(r.output[0], gemm_numpy(a, b))
    assert r.last_cycle == expected, why


ANALYTIC_CASES = [  # the hand-derived cases of test_analytic.py
    (gemm("g", 4, 4, 10), dict(rows=4, cols=4, dataflow="os"), 15),
    (gemm("g", 10, 6, 9), dict(rows=4, cols=4, dataflow="ws"), 119),
    (conv("c", 1, 2, 2, 2, 3, 1), dict(rows=8, cols=8, dataflow="is"), 24),
    (conv("c", 1, 1, 5, 5, 8, 3, stride=2, pad=1), dict(rows=4, cols=4, dataflow="os"), 89),
    (conv("c", 1, 4, 6, 6, 4, 3, pad=1, groups=4), dict(rows=4, cols=4, dataflow="ws"), 551),
    (conv("c", 1, 16, 4, 4, 8, 1), dict(rows=8, cols=8, dataflow="ws"), 75),
    (fc("f", 2, 6, 5), dict(rows=4, cols=4, dataflow="os"), 23),
    (gemm("g", 10, 6, 9), dict(rows=4, cols=4, dataflow="ws", count=2), 59),
    (gemm("g", 10, 6, 9), dict(rows=4, cols=4, dataflow="ws", count=4), 39),
]


@pytest.mark.parametrize("layer, arch_kw, expected", ANALYTIC_CASES)
def test_pe_reproduces_hand_derived_cycles(layer, arch_kw, expected):
    a = make_arch(**arch_kw)
    m = seed_mapping(layer, a)
    x = ints((layer.N, layer.C, layer.H, layer.W), 5)
    w = ints((layer.K, layer.C // layer.groups, layer.R, layer.S), 6)
    out, r = simulate_mapping(m, x, w)
    assert np.array_equal(out, conv2d_layer(layer, x, w))
    assert r.last_cycle == expected == layer_result(m, a).compute_cycles


@st.composite
def pe_layers(draw):
    if draw(st.booleans()):
        return gemm("g", draw(st.integers(1, 30)), draw(st.integers(1, 30)),
                    draw(st.integers(1, 30)))
    g = draw(st.sampled_from([1, 1, 2, 3]))
    r = draw(st.integers(1, 3))
    h = draw(st.integers(r, 7))
    return conv("c", draw(st.integers(1, 2)), g * draw(st.integers(1, 4)), h, h,
                g * draw(st.integers(1, 5)), r, stride=draw(st.integers(1, 2)),
                pad=draw(st.integers(0, 1)), groups=g)


@FAST
@given(pe_layers(), st.sampled_from(["os", "ws", "is"]), st.integers(1, 9), st.integers(1, 9),
       st.integers(1, 3), st.integers(0, 2 ** 31))
def test_pe_equals_reference_and_analytic(layer, df, rows, cols, count, seed):
    """Outputs bit-exact with the reference; last-output cycle == compute_cycles."""
    a = make_arch(rows=rows, cols=cols, dataflow=df, count=count)
    m = seed_mapping(layer, a)
    x = ints((layer.N, layer.C, layer.H, layer.W), seed)
    w = ints((layer.K, layer.C // layer.groups, layer.R, layer.S), seed + 1)
    out, r = simulate_mapping(m, x, w)
    assert np.array_equal(out, conv2d_layer(layer, x, w))
    assert r.folds == m.folds
    assert r.last_cycle == layer_result(m, a).compute_cycles


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_32x32_array_few_hundred_gemm(df):
    """A 32x32 array on a 200 x 100 x 70 GEMM: many partial folds, exact."""
    layer = gemm("g", 200, 70, 100)
    arch = make_arch(rows=32, cols=32, dataflow=df)
    m = seed_mapping(layer, arch)
    a, b = ints((200, 100), 7), ints((100, 70), 8)
    r = simulate_gemm(a, b, df, 32, 32)
    assert np.array_equal(r.output[0], gemm_numpy(a, b))
    assert r.last_cycle == layer_result(m, arch).compute_cycles and r.folds == m.folds > 6


@pytest.mark.parametrize("df", ["os", "ws", "is"])
@pytest.mark.slow  # fp32 register-level runs: seconds each
def test_fp32_outputs_to_rounding(df):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((20, 30)).astype(np.float32)
    b = rng.standard_normal((30, 10)).astype(np.float32)
    r = simulate_gemm(a, b, df, 4, 4)
    assert r.output.dtype == np.float32
    np.testing.assert_allclose(r.output[0], a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)


def test_partial_fold_costs_a_full_fold():
    """A 1x1 GEMM on a 4x4 array still takes the whole skew (SCALE-Sim's convention)."""
    r = simulate_gemm(np.ones((1, 1), np.int8), np.ones((1, 1), np.int8), "ws", 4, 4)
    assert r.output[0, 0, 0] == 1 and r.last_cycle == 1 + 2 * 4 + 4 - 2 - 1
