"""Integer conv / GEMM kernel for 8-bit operands: int16 dot products with int32 accumulation.

Every output is a dot product over one contiguous run: an output pixel's whole R x S x C
window (input gathered into rows as in :func:`reference._conv_window`) against one filter,
or a row of A against a row of B^T. :func:`dot4x4` computes a 4 x 4 block of (pixel,
filter) such dots at once, 32 int16 lanes per step, written in generic LLVM vector IR::

    acc[16 x i32] += even(sext(x[32 x i16]) * sext(w[32 x i16]))
                   + odd (sext(x[32 x i16]) * sext(w[32 x i16]))

which is the multiply-add-adjacent-pairs pattern: x86 compiles it to ``vpmaddwd`` (AVX2 /
AVX-512BW) or, with AVX-512 VNNI, to ``vpdpwssd`` (32 multiply-accumulates per 512-bit
instruction, twice fp32 FMA's 16); other targets get ordinary vector code. Sixteen
accumulators share the eight loads of a step. It is plain numba (``@intrinsic``, LLVM IR
through llvmlite), no new dependency.

Exactness: 8-bit values widen to int16 exactly, every product fits int32, and the adds
are LLVM's wrapping (no ``nsw``) int32 adds, so each output is the sum of its products
modulo 2^32 in whatever order, which is the int32 two's-complement accumulator of the
hardware and of every other kernel here, bit for bit, for any C (no chunking needed).
Runs are zero-padded to a multiple of 32 lanes (zero weights; the input rows carry 32
lanes of slack), so the padding adds exact zeros.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

VL = 32  # int16 lanes per step (one 512-bit vector)


def padded(n: int) -> int:
    """``n`` rounded up to a whole number of steps."""
    return -(-n // VL) * VL


@intrinsic
def dot4x4(typingctx, xa, xo0, xo1, xo2, xo3, wa, wo0, wo1, wo2, wo3, n):
    """The 16 int32 dots ``sum_{e < n} xa[xo_i + e] * wa[wo_j + e]`` (i, j < 4), as a
    tuple in row-major (i, j) order; ``xa``, ``wa`` 1-D int16, ``n`` a multiple of VL,
    every run in bounds (the caller guarantees it; nothing is checked)."""
    sig = types.UniTuple(types.int32, 16)(xa, xo0, xo1, xo2, xo3, wa, wo0, wo1, wo2, wo3, n)

    def codegen(context, builder, signature, args):
        i16, i32, i64 = ir.IntType(16), ir.IntType(32), ir.IntType(64)
        vin, vprod = ir.VectorType(i16, VL), ir.VectorType(i32, VL)
        vacc = ir.VectorType(i32, VL // 2)
        at = signature.args
        xd = context.make_array(at[0])(context, builder, args[0]).data
        wd = context.make_array(at[5])(context, builder, args[5]).data
        xo = [context.cast(builder, args[1 + i], at[1 + i], types.int64) for i in range(4)]
        wo = [context.cast(builder, args[6 + i], at[6 + i], types.int64) for i in range(4)]
        nn = context.cast(builder, args[10], at[10], types.int64)
        accs = [cgutils.alloca_once_value(builder, ir.Constant(vacc, [0] * (VL // 2)))
                for _ in range(16)]
        even = ir.Constant(ir.VectorType(i32, VL // 2), list(range(0, VL, 2)))
        odd = ir.Constant(ir.VectorType(i32, VL // 2), list(range(1, VL, 2)))
        with cgutils.for_range_slice(builder, ir.Constant(i64, 0), nn, ir.Constant(i64, VL),
                                     inc=True) as (idx, _):
            def load(base, off):
                p = builder.gep(base, [builder.add(off, idx)], inbounds=True, source_etype=i16)
                return builder.sext(builder.load(builder.bitcast(p, vin.as_pointer()), align=2,
                                                 typ=vin), vprod)
            xs = [load(xd, o) for o in xo]
            ws = [load(wd, o) for o in wo]
            for i in range(4):
                for j in range(4):
                    pr = builder.mul(xs[i], ws[j])  # no nsw: wraps (never does for int16 inputs)
                    s = builder.add(builder.shuffle_vector(pr, pr, even),
                                    builder.shuffle_vector(pr, pr, odd))
                    a = accs[4 * i + j]
                    builder.store(builder.add(builder.load(a), s), a)
        red = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i32, [vacc]),
                                             f"llvm.vector.reduce.add.v{VL // 2}i32")
        vals = [builder.call(red, [builder.load(a)]) for a in accs]
        return context.make_tuple(builder, signature.return_type, vals)

    return sig, codegen


@njit(cache=True, parallel=True)
def dot_rows_i16(xr, wk, out, step):
    """out[n, k, p, q] = sum_{e < Lp} xr[n, p, q*step + e] * wk[k, e], int32 (wrapping).

    ``xr`` (N, P, row) int16 with ``(Q-1)*step + Lp <= row``, ``wk`` (K, Lp) int16 with
    ``Lp`` a multiple of VL, ``out`` (N, K, P, Q) int32 (PyTorch's layout), every element
    written. Work is split over (image, output row, block of 4 pixels); edge blocks
    repeat the last pixel / filter and do not store the repeats.
    """
    N, P = xr.shape[0], xr.shape[1]
    K, Lp = wk.shape
    Q = out.shape[3]
    wf = wk.ravel()
    nq = (Q + 3) // 4
    nk = (K + 3) // 4
    for t in prange(N * P * nq):
        n = t // (P * nq)
        rem = t - n * P * nq
        p = rem // nq
        q0 = (rem - p * nq) * 4
        row = xr[n, p]
        c0, c1 = min(q0, Q - 1) * step, min(q0 + 1, Q - 1) * step
        c2, c3 = min(q0 + 2, Q - 1) * step, min(q0 + 3, Q - 1) * step
        o = out[n]
        for kb in range(nk):
            k0 = kb * 4
            k1, k2, k3 = min(k0 + 1, K - 1), min(k0 + 2, K - 1), min(k0 + 3, K - 1)
            s = dot4x4(row, c0, c1, c2, c3, wf, k0 * Lp, k1 * Lp, k2 * Lp, k3 * Lp, Lp)
            for i in range(4):
                if q0 + i < Q:
                    for j in range(4):
                        if k0 + j < K:
                            o[k0 + j, p, q0 + i] = s[4 * i + j]


def conv2d_int8(x, w, sh, sw, ph, pw, dh, P, Q) -> np.ndarray:
    """Dense conv with column dilation 1 of 8-bit integer operands (PyTorch layout in,
    int32 (N, K, P, Q) out) on :func:`dot_rows_i16`.

    The zero-padded input (channels last, int16) is gathered into rows (N, P, Wp*R*C):
    row p holds, for every input column, the R input rows output row p reads, so an
    output's R x S x C window is the contiguous run from ``q*sw*R*C``; weights are
    reordered to (K, S, R, C) to match."""
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    Hp = max(H + 2 * ph, (P - 1) * sh + (R - 1) * dh + 1)
    Wp = max(W + 2 * pw, (Q - 1) * sw + S)
    if 3 * N * P * Q < K:  # few pixels, many filters: copying windows beats reordering weights
        return _conv2d_int8_cols(x, w, sh, sw, ph, pw, dh, P, Q, Hp, Wp)
    xp = np.zeros((N, Hp, Wp, C), dtype=np.int16)
    xp[:, ph:ph + H, pw:pw + W] = x.transpose(0, 2, 3, 1)
    rc = R * C
    xr = np.empty((N, P, Wp * rc + VL), dtype=np.int16)
    xr[:, :, Wp * rc:] = 0
    rows = xr[:, :, :Wp * rc].reshape(N, P, Wp, R, C)
    for r in range(R):
        rows[:, :, :, r] = xp[:, r * dh:r * dh + (P - 1) * sh + 1:sh]
    L = S * rc
    wk = np.zeros((K, padded(L)), dtype=np.int16)
    wk[:, :L] = w.transpose(0, 3, 2, 1).reshape(K, L)
    out = np.empty((N, K, P, Q), dtype=np.int32)
    dot_rows_i16(xr, wk, out, sw * rc)
    return out


@njit(cache=True, parallel=True)
def im2col_i16(xp, sh, sw, dh, R, S, Q, Lp, out):
    """out[n, p, q*Lp + (c*R + r)*S + s] = xp[n, c, p*sh + r*dh, q*sw + s], the rest of
    every Lp-run and the tail of each row zero; ``xp`` (N, C, Hp, Wp) padded int16."""
    N, C = xp.shape[0], xp.shape[1]
    P = out.shape[1]
    L = C * R * S
    for t in prange(N * P):
        n = t // P
        p = t - n * P
        for q in range(Q):
            b = q * Lp
            for c in range(C):
                for r in range(R):
                    h = p * sh + r * dh
                    e = b + (c * R + r) * S
                    for s in range(S):
                        out[n, p, e + s] = xp[n, c, h, q * sw + s]
            for e in range(b + L, b + Lp):
                out[n, p, e] = 0
        for e in range(Q * Lp, out.shape[2]):
            out[n, p, e] = 0


def _conv2d_int8_cols(x, w, sh, sw, ph, pw, dh, P, Q, Hp, Wp) -> np.ndarray:
    """:func:`conv2d_int8` for layers with few output pixels and many filters (deep
    layers), where reordering the weights (K x R*S*C elements) costs more than copying
    every pixel's window (N*P*Q x R*S*C, about 3x dearer per element, measured): im2col
    rows (N, P, Q*Lp) whose pixel q holds its window in the weights' own (C, R, S) order,
    so the weights only widen (a contiguous cast, no transpose). Same sums, so the same
    int32 results; only the speed differs."""
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    L = C * R * S
    Lp = padded(L)
    xp = np.zeros((N, C, Hp, Wp), dtype=np.int16)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    xr = np.empty((N, P, Q * Lp + VL), dtype=np.int16)
    im2col_i16(xp, sh, sw, dh, R, S, Q, Lp, xr)
    wk = np.zeros((K, Lp), dtype=np.int16)
    wk[:, :L] = w.reshape(K, L)
    out = np.empty((N, K, P, Q), dtype=np.int32)
    dot_rows_i16(xr, wk, out, Lp)
    return out


def gemm_nt_int8(a, bt) -> np.ndarray:
    """(M x K) @ (N x K)^T of 8-bit integer operands -> int32 (M, N), on
    :func:`dot_rows_i16` with the taller operand as the pixels (blocks, threads) and the
    other as the filters; the kernel writes (filters, pixels)."""
    M, K = a.shape
    N = bt.shape[0]
    pix, fil = (a, bt) if M > N else (bt, a)
    Kp = padded(K)
    xr = np.zeros((1, 1, pix.shape[0] * Kp + VL), dtype=np.int16)
    xr[0, 0, :pix.shape[0] * Kp].reshape(-1, Kp)[:, :K] = pix
    wk = np.zeros((fil.shape[0], Kp), dtype=np.int16)
    wk[:, :K] = fil
    out = np.empty((1, fil.shape[0], 1, pix.shape[0]), dtype=np.int32)
    dot_rows_i16(xr, wk, out, Kp)
    return np.ascontiguousarray(out[0, :, 0].T) if M > N else out[0, :, 0]
