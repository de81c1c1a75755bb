"""The numba reference kernels equal a plain numpy implementation bit for bit (integers),
a hand-computed case, and torch's conv2d when torch is installed."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tilesim.sim.kernels import conv2d, conv2d_layer, conv2d_numpy, fc, gemm, gemm_numpy
from tilesim.workloads.ir import MacLayer

FAST = settings(max_examples=30, deadline=None)


@st.composite
def conv_case(draw):
    g = draw(st.sampled_from([1, 1, 2, 3]))
    cg, kg = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    r, s = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, (r - 1) * dil[0] + 1 - 2 * pad[0]), 12))
    w = draw(st.integers(max(1, (s - 1) * dil[1] + 1 - 2 * pad[1]), 12))
    n = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2 ** 31))
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (n, g * cg, h, w), dtype=np.int8)
    wt = rng.integers(-128, 128, (g * kg, cg, r, s), dtype=np.int8)
    return x, wt, dict(stride=stride, padding=pad, dilation=dil, groups=g)


@FAST
@given(conv_case())
def test_conv_int8_matches_numpy_bit_exact(case):
    """int8 x int8 -> int32 conv (stride, padding, dilation, groups) equals numpy exactly."""
    x, w, kw = case
    got, ref = conv2d(x, w, **kw), conv2d_numpy(x, w, **kw)
    assert got.dtype == np.int32 and got.shape == ref.shape
    assert np.array_equal(got, ref)


@FAST
@given(conv_case())
def test_conv_fp32_matches_numpy(case):
    """fp32 conv equals numpy's fp64 result to fp32 rounding."""
    x, w, kw = case
    xf = x.astype(np.float32) / 37
    wf = w.astype(np.float32) / 11
    got = conv2d(xf, wf, **kw)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, conv2d_numpy(xf, wf, **kw), rtol=1e-5, atol=1e-4)


def test_conv_hand_case():
    """A 4x4 ramp, 2x2 ones filter, stride 2, padding 1: each output sums its window."""
    x = np.arange(16, dtype=np.int8).reshape(1, 1, 4, 4)
    w = np.ones((1, 1, 2, 2), dtype=np.int8)
    out = conv2d(x, w, stride=2, padding=1)[0, 0]
    # windows (rows -1..0, 1..2, 3..4) x (cols likewise), zero outside
    expected = np.array([[0, 1 + 2, 3],
                         [4 + 8, 5 + 6 + 9 + 10, 7 + 11],
                         [12, 13 + 14, 15]])
    assert np.array_equal(out, expected)


def test_depthwise_is_per_channel():
    """groups == C == K: each output channel sees only its own input channel."""
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (1, 3, 6, 6), dtype=np.int8)
    w = rng.integers(-128, 128, (3, 1, 3, 3), dtype=np.int8)
    out = conv2d(x, w, padding=1, groups=3)
    for c in range(3):
        assert np.array_equal(out[:, c:c + 1], conv2d(x[:, c:c + 1], w[c:c + 1], padding=1))


def test_int32_accumulator_wraps_like_hardware():
    """Products summed past 2^31 wrap in int32 (two's complement), identically in every kernel."""
    x = np.full((1, 40000, 1, 1), 32767, dtype=np.int16)
    w = np.full((1, 40000, 1, 1), 32767, dtype=np.int16)
    exact = 40000 * 32767 ** 2
    wrapped = (exact + 2 ** 31) % 2 ** 32 - 2 ** 31
    assert conv2d(x, w)[0, 0, 0, 0] == wrapped == conv2d_numpy(x, w)[0, 0, 0, 0]
    assert gemm(x.reshape(1, -1), w.reshape(-1, 1))[0, 0] == wrapped


def test_stored_output_size_reads_zero_beyond_input():
    """A layer storing a larger P (SCALE-Sim's ceil rule) reads zeros past the input edge."""
    layer = MacLayer(name="l", N=1, K=1, C=1, H=5, W=5, R=2, S=2, P=3, Q=3, stride=(2, 2))
    x = np.ones((1, 1, 5, 5), dtype=np.int8)
    w = np.ones((1, 1, 2, 2), dtype=np.int8)
    out = conv2d_layer(layer, x, w)[0, 0]
    assert np.array_equal(out, [[4, 4, 2], [4, 4, 2], [2, 2, 1]])
    assert np.array_equal(out, conv2d_numpy(x, w, stride=2, out_hw=(3, 3))[0, 0])


@FAST
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 40), st.integers(0, 2 ** 31))
def test_gemm_and_fc_match_numpy(m, k, n, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    assert np.array_equal(gemm(a, b), gemm_numpy(a, b))
    assert np.array_equal(fc(a, np.ascontiguousarray(b.T)), gemm_numpy(a, b))


@FAST
@given(st.integers(1, 40), st.integers(1, 70), st.integers(1, 40), st.integers(0, 2 ** 31))
def test_gemm_and_fc_fp32_and_int16_match_numpy(m, k, n, seed):
    """The float path (a 1 x 1 conv on the window-dot kernel, taller operand as pixels) and
    the wide-integer path (gemm_acc) of gemm / fc, both orientations: fp32 within the
    summation-order bound k * 2^-23 * sum|a*b|, int16 bit-exact."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    bound = k * 2.0 ** -23 * (np.abs(a).astype(np.float64) @ np.abs(b)) + 1e-30
    for got in (gemm(a, b), fc(a, np.ascontiguousarray(b.T))):
        assert got.dtype == np.float32 and got.shape == (m, n)
        assert np.all(np.abs(got - exact) <= bound)
    ai = rng.integers(-32768, 32768, (m, k), dtype=np.int16)
    bi = rng.integers(-32768, 32768, (k, n), dtype=np.int16)
    assert np.array_equal(gemm(ai, bi), gemm_numpy(ai, bi))
    assert np.array_equal(fc(ai, np.ascontiguousarray(bi.T)), gemm_numpy(ai, bi))


@settings(max_examples=15, deadline=None)
@given(conv_case())
def test_conv_matches_torch(case):
    """int8 conv equals torch's fp64 conv of the same integers exactly; fp32 to rounding."""
    torch = pytest.importorskip("torch")
    x, w, kw = case
    tkw = dict(stride=kw["stride"], padding=kw["padding"], dilation=kw["dilation"],
               groups=kw["groups"])
    ref = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64),
                                     torch.tensor(w, dtype=torch.float64), **tkw).numpy()
    assert np.array_equal(conv2d(x, w, **kw), ref.astype(np.int64))
    xf, wf = x.astype(np.float32) / 37, w.astype(np.float32) / 11
    tf = torch.nn.functional.conv2d(torch.tensor(xf), torch.tensor(wf), **tkw).numpy()
    np.testing.assert_allclose(conv2d(xf, wf, **kw), tf, rtol=1e-5, atol=1e-4)
