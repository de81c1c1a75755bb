"""The int16-dot kernel that 8-bit conv / GEMM / FC take (sim/kernels/intdot.py) equals
numpy bit for bit at the extremes: -128/127/255 operands, int8 x uint8 mixes, runs that
are not a whole number of 32-lane steps, edge blocks of pixels and filters, and int32
wrap-around past 2^31 (which needs a long reduction)."""
from __future__ import annotations

import numpy as np
import pytest

from tilesim.sim.kernels import conv2d, conv2d_numpy, fc, gemm, gemm_numpy


def _wrap(v: int) -> int:
    """A Python int as the int32 two's-complement accumulator holds it."""
    return (v + 2 ** 31) % 2 ** 32 - 2 ** 31


def _extreme(rng, shape, dtype):
    """Values drawn mostly from the ends of the dtype's range (and zero)."""
    info = np.iinfo(dtype)
    pool = np.array([info.min, info.min + 1, 0, 1, info.max - 1, info.max], dtype=dtype)
    out = rng.integers(info.min, int(info.max) + 1, shape, dtype=dtype)
    mask = rng.random(shape) < 0.7
    out[mask] = rng.choice(pool, int(mask.sum()))
    return out


@pytest.mark.parametrize("xd, wd", [(np.int8, np.int8), (np.uint8, np.int8),
                                    (np.int8, np.uint8), (np.uint8, np.uint8)])
@pytest.mark.parametrize("c, k, h, r, stride, pad, dil", [
    (1, 1, 1, 1, 1, 0, 1),     # a single product: run of 1, padded to 32 lanes
    (3, 5, 7, 3, 1, 1, 1),     # odd C, K and Q: edge blocks repeat the last pixel / filter
    (37, 6, 9, 3, 2, 1, 1),    # stride 2: window starts 2*R*C apart
    (33, 9, 8, 3, 1, 2, 2),    # row dilation 2, extra padding
    (64, 4, 6, 1, 1, 0, 1),    # 1 x 1: a run of exactly two steps
    (5, 40, 2, 3, 1, 1, 1),    # few pixels, many filters: the im2col layout
    (7, 50, 4, 3, 2, 1, 2),    # im2col layout with stride 2 and row dilation 2
])
def test_conv_8bit_extremes_bit_exact(xd, wd, c, k, h, r, stride, pad, dil):
    rng = np.random.default_rng(c * 131 + k)
    x = _extreme(rng, (2, c, h, h + 1), xd)
    w = _extreme(rng, (k, c, r, r), wd)
    kw = dict(stride=stride, padding=pad, dilation=(dil, 1))
    got, ref = conv2d(x, w, **kw), conv2d_numpy(x, w, **kw)
    assert got.dtype == np.int32 and got.shape == ref.shape
    assert np.array_equal(got, ref)


@pytest.mark.parametrize("k", [2, 4])  # 2: the row layout, 4: the im2col layout
def test_conv_int8_wraps_past_2_31(k):
    """9 x 15000 products of (-128)^2 = 2^14 sum to 2.21e9 > 2^31 - 1: the int32 result
    wraps exactly as numpy's int64 sum cast to int32 (and a hand value) does."""
    c = 15000
    x = np.full((1, c, 3, 3), -128, dtype=np.int8)
    w = np.full((k, c, 3, 3), -128, dtype=np.int8)
    w[1::2, ::2] = 127  # odd filters mix signs: -128*127 and -128*-128 alternate
    got = conv2d(x, w)
    exact0 = 9 * c * 128 * 128
    exact1 = 9 * (c - (c + 1) // 2) * 128 * 128 - 9 * ((c + 1) // 2) * 128 * 127
    assert exact0 > 2 ** 31
    assert got[0, :, 0, 0].tolist() == [_wrap(exact0), _wrap(exact1)] * (k // 2)
    assert np.array_equal(got, conv2d_numpy(x, w))


def test_gemm_fc_int8_extremes_and_wrap():
    rng = np.random.default_rng(7)
    a = _extreme(rng, (9, 70), np.int8)
    b = _extreme(rng, (70, 13), np.uint8)
    assert np.array_equal(gemm(a, b), gemm_numpy(a, b))          # M < N and M > N sides
    assert np.array_equal(gemm(b.T.copy(), a.T.copy()), gemm_numpy(b.T, a.T))
    k = 140000  # 140000 * 2^14 > 2^31: wraps
    x = np.full((1, k), -128, dtype=np.int8)
    wt = np.stack([np.full(k, -128, dtype=np.int8), np.full(k, 127, dtype=np.int8)])
    assert fc(x, wt)[0].tolist() == [_wrap(k * 128 * 128), _wrap(-k * 128 * 127)]
