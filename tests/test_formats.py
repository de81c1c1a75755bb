"""Storage formats for real (sim/kernels/formats.py): decode(encode(x)) is x bit for bit
in every format, and the payload's exact size is the cost model's formula
(mapper.sparse.format_bits) at the counted density: exactly for dense, bitmask, csr and
nm, and for rle with the extra entries counted from the data (their i.i.d. expectation
within a few % on large tensors)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tilesim.mapper.sparse import format_bits, rle_extra
from tilesim.sim.kernels import formats
from tilesim.sim.kernels.formats import FormatError, decode, encode
from tilesim.workloads.sparsity import nm_kept

FAST = settings(max_examples=60, deadline=None)


def sparse_ints(rng, shape, density, dtype=np.int8):
    """Random non-zero values of ``dtype`` at ``density`` (zeros exactly where drawn)."""
    info = np.iinfo(dtype)
    v = rng.integers(1, int(info.max) + 1, shape) * rng.choice([-1, 1], shape)
    return (v * (rng.random(shape) < density)).astype(dtype)


def nm_weights(rng, rows, L, n, m, fill=1.0, dtype=np.int8):
    """``rows`` filters of ``L`` values, N:M along each from its first value: every block
    keeps at most N non-zeros (``fill``: share of its N slots that are non-zero)."""
    w = sparse_ints(rng, (rows, L), 1.0, dtype)
    keep = np.zeros((rows, L), dtype=bool)
    for j in range(0, L, m):
        blen = min(m, L - j)
        pick = np.argsort(rng.random((rows, blen)), axis=1)[:, :min(n, blen)]
        keep[np.arange(rows)[:, None], j + pick] = True
    return np.where(keep & (rng.random((rows, L)) < fill), w, 0).astype(dtype)


@st.composite
def tensors(draw):
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=1, max_size=4)))
    d = draw(st.sampled_from([0.0, 0.01, 0.1, 0.5, 0.9, 1.0]))
    dtype = draw(st.sampled_from([np.int8, np.int16, np.int32]))
    return sparse_ints(np.random.default_rng(draw(st.integers(0, 2 ** 32))), shape, d, dtype)


def counted(x):
    return int(np.count_nonzero(x)) / x.size


@FAST
@given(tensors(), st.sampled_from(["dense", "bitmask", "rle", "csr"]))
def test_round_trip_is_bit_exact(x, fmt):
    e = encode(fmt, x)
    y = decode(e)
    assert y.dtype == x.dtype and y.shape == x.shape and np.array_equal(y, x)


@FAST
@given(tensors(), st.sampled_from(["dense", "bitmask", "csr"]))
def test_bits_are_the_formula_at_the_counted_density(x, fmt):
    """Linear in the non-zero count: the formula at Z / E is the payload exactly (the
    formula is a float; it is an integer here, compared after rounding to whole bits)."""
    b = x.dtype.itemsize * 8
    L = x.shape[-1]
    e = encode(fmt, x, row=L)
    assert e.bits == round(format_bits(fmt, x.size, b, counted(x), row=L))
    # and by hand: values, then each metadata field at its width
    z, E = int(np.count_nonzero(x)), x.size
    want = {"dense": E * b, "bitmask": z * b + E,
            "csr": z * (b + formats.clog2(L)) + (E // L) * formats.clog2(L + 1)}[fmt]
    assert e.bits == want


@FAST
@given(tensors())
def test_rle_bits_count_the_runs_of_32_zeros(x):
    e = encode("rle", x)
    flat = x.reshape(-1)
    idx = np.flatnonzero(flat)
    gaps = np.diff(np.concatenate([[-1], idx])) - 1      # zeros before each non-zero
    X = int(sum(g // 32 for g in gaps))
    assert X == formats.rle_extra(x)
    assert e.bits == (len(idx) + X) * (x.dtype.itemsize * 8 + 5)
    assert e.meta["runs"].max(initial=0) <= 31


def test_rle_by_hand():
    """70 zeros then 5, then 3 zeros then -1, then zeros: (0,31), (0,31), (5,6), (-1,3)."""
    x = np.zeros(100, dtype=np.int8)
    x[70], x[74] = 5, -1
    e = encode("rle", x)
    assert e.values.tolist() == [0, 0, 5, -1] and e.meta["runs"].tolist() == [31, 31, 6, 3]
    assert e.bits == 4 * 13
    assert np.array_equal(decode(e), x)


@pytest.mark.parametrize("d", [0.02, 0.05, 0.1, 0.3, 0.6, 0.9])
def test_rle_expectation_is_close_on_iid_tensors(d):
    """The cost model's expected extra entries (i.i.d. zeros, geometric runs) against
    the counted ones on a 2^20-value tensor: total rle bits within 1 %."""
    x = sparse_ints(np.random.default_rng(int(d * 1000)), (1 << 20,), d)
    z = np.count_nonzero(x)
    e = encode("rle", x)
    want = format_bits("rle", x.size, 8, z / x.size)
    assert abs(e.bits - want) <= 0.01 * want
    X = formats.rle_extra(x)
    if d <= 0.1:   # runs of 32 zeros are common: the extra entries themselves agree
        assert abs(X - rle_extra(z, z / x.size)) <= 0.03 * X


@st.composite
def nm_cases(draw):
    m = draw(st.integers(1, 9))
    n = draw(st.integers(1, m))
    L = draw(st.integers(1, 30))
    rows = draw(st.integers(1, 5))
    fill = draw(st.sampled_from([0.0, 0.5, 1.0]))
    dtype = draw(st.sampled_from([np.int8, np.int32]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32)))
    return nm_weights(rng, rows, L, n, m, fill, dtype), n, m


@FAST
@given(nm_cases())
def test_nm_round_trip_and_bits(case):
    w, n, m = case
    rows, L = w.shape
    e = encode("nm", w, row=L, nm=(n, m))
    assert np.array_equal(decode(e), w)
    b = w.dtype.itemsize * 8
    kept = rows * nm_kept(L, n, m)
    assert e.values.size == kept          # every block keeps min(N, its length)
    assert e.bits == kept * (b + formats.clog2(m))
    assert e.bits == round(format_bits("nm", w.size, b, counted(w), kept=kept, m=m))
    assert (e.meta["offsets"] < m).all()


def test_nm_by_hand():
    """2:4 over rows of 6: blocks [0, 4) and [4, 6); a block with one non-zero keeps a
    zero at its lowest free offset."""
    w = np.array([[0, 7, 0, -3, 0, 9],
                  [0, 0, 5, 0, 0, 0]], dtype=np.int8)
    e = encode("nm", w, nm=(2, 4))
    assert e.values.tolist() == [7, -3, 0, 9, 0, 5, 0, 0]
    assert e.meta["offsets"].tolist() == [1, 3, 0, 1, 0, 2, 0, 1]
    assert e.bits == 8 * (8 + 2)
    assert np.array_equal(decode(e), w)


def test_nm_refuses_a_block_with_more_than_n():
    w = np.array([[1, 2, 3, 0]], dtype=np.int8)
    with pytest.raises(FormatError, match="block 0 of row 0 has 3 non-zeros"):
        encode("nm", w, nm=(2, 4))
    encode("nm", w, nm=(3, 4))


def test_rows_must_divide_the_tensor():
    with pytest.raises(FormatError, match="rows of 4"):
        encode("csr", np.ones(6, dtype=np.int8), row=4)
    with pytest.raises(FormatError, match="unknown format"):
        encode("coo", np.ones(6, dtype=np.int8))


@pytest.mark.parametrize("fmt", ["bitmask", "rle", "csr"])
def test_all_zero_and_all_dense(fmt):
    for x in (np.zeros((3, 8), np.int8), np.full((3, 8), -2, np.int8)):
        e = encode(fmt, x)
        assert np.array_equal(decode(e), x)
        z = np.count_nonzero(x)
        assert e.bits == round(format_bits(fmt, 24, 8, z / 24, row=8))
    assert encode("rle", np.zeros(100, np.int8)).bits == 0   # trailing zeros are implicit
