"""Reference kernels: conv2d (stride, padding, dilation, groups), fully connected and
GEMM, in numba (fast, ``cache=True``) and in plain numpy (obviously right, slow).

Semantics (the loop nest of :class:`workloads.MacLayer`)::

    out[n, k, p, q] = sum_{c < C/G, r < R, s < S}
        x[n, g*C/G + c, p*sh - ph + r*dh, q*sw - pw + s*dw] * w[k, c, r, s],  g = k // (K/G)

with ``x`` read as zero outside ``[0, H) x [0, W)`` (padding, and the extra bottom/right
rows an output-size rule such as SCALE-Sim's may add). Layouts are PyTorch's: ``x``
is (N, C, H, W), ``w`` is (K, C/G, R, S), ``out`` is (N, K, P, Q).

Precisions: integer inputs (int4/int8/uint8/int16 values) multiply and accumulate in
int32 with two's-complement wrap-around (the hardware's int32 accumulator), so every
kernel here is bit-exact with every other whatever the summation order. Float inputs
(fp32, or fp16/bf16 values already rounded) accumulate in fp32; their results agree
to within rounding only.

Three numba conv kernels, all channels-last; the public functions take and return
PyTorch layout and convert:

* :func:`intdot.dot_rows_i16 <sim.kernels.intdot.dot_rows_i16>` (8-bit integer operands,
  dense layers with column dilation 1; also 8-bit GEMM / FC): each output is an int16
  dot product over its contiguous R x S x C window with int32 (wrapping) accumulators,
  4 x 4 (pixel, filter) register blocks, compiled to ``vpdpwssd`` / ``vpmaddwd``.
* :func:`conv_window_dot` (floats, dense layers with column dilation 1; also float GEMM /
  FC): the same window dot products in fp32 multiply-add.
* :func:`conv_nhwc` (everything else, wider integers, and the executor's tiles): direct
  loops, innermost over contiguous output channels, int32 or fp32 accumulation.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .intdot import conv2d_int8, gemm_nt_int8


def acc_dtype(dtype) -> np.dtype:
    """The accumulator dtype for operands of ``dtype``: int32 for integers, fp32 otherwise."""
    integer = np.issubdtype(np.dtype(dtype), np.integer)
    return np.dtype(np.int32) if integer else np.dtype(np.float32)


def _int_bound(dtype) -> int:
    """Largest |value| of an 8-bit integer dtype (products of two stay below 2^15); 0 for
    anything else (wider integers and floats take the plain path)."""
    dtype = np.dtype(dtype)
    return {np.dtype(np.int8): 128, np.dtype(np.uint8): 255}.get(dtype, 0)


def _operand(a: np.ndarray) -> np.ndarray:
    """Integers widen to int32 (exact), floats to fp32; the kernels see one dtype."""
    return np.ascontiguousarray(a, dtype=acc_dtype(a.dtype))


QB = 8  # output pixels per register block of the conv kernel


@njit(cache=True, parallel=True)
def conv_nhwc(x, w, out, sh, sw, oh, ow, dh, dw, groups, cchunk):
    """out[n, p, q, k] += sum x[n, p*sh + oh + r*dh, q*sw + ow + s*dw, g*Cg + c] * w[r, s, c, k].

    ``x`` (N, H, W, C), ``w`` (R, S, Cg, K) of one dtype (int32 or fp32), ``out``
    (N, P, Q, K); ``oh``/``ow`` are the input coordinates of output (0, 0) (minus the
    padding for a whole layer, shifted for a tile); reads outside ``x`` are zero.
    Work is split over (image, output row, block of QB output columns); each block
    accumulates in a small (QB, K) buffer of x's dtype that stays in L1, the innermost
    loop running over contiguous output channels (vectorised). The buffer is added into
    ``out`` after every ``cchunk`` input channels (all R x S taps of them).
    """
    N, H, W, C = x.shape
    R, S, Cg, K = w.shape
    P, Q = out.shape[1], out.shape[2]
    Kg = K // groups
    nqb = (Q + QB - 1) // QB
    for t in prange(N * P * nqb):
        n = t // (P * nqb)
        rem = t - n * P * nqb
        p = rem // nqb
        q0 = (rem - p * nqb) * QB
        qn = min(QB, Q - q0)
        acc = np.zeros((QB, K), dtype=x.dtype)
        for c0 in range(0, Cg, cchunk):
            c1 = min(Cg, c0 + cchunk)
            if c0 > 0:
                acc[:] = 0
            for r in range(R):
                h = p * sh + oh + r * dh
                if h < 0 or h >= H:
                    continue
                for s in range(S):
                    if groups == 1:  # dense: one contiguous run over all K
                        for c in range(c0, c1):
                            wr = w[r, s, c]
                            for qq in range(qn):
                                wi = (q0 + qq) * sw + ow + s * dw
                                if wi < 0 or wi >= W:
                                    continue
                                xv = x[n, h, wi, c]
                                a = acc[qq]
                                for k in range(K):
                                    a[k] += xv * wr[k]
                        continue
                    for g in range(groups):
                        k0 = g * Kg
                        for c in range(c0, c1):
                            wr = w[r, s, c, k0:k0 + Kg]
                            for qq in range(qn):
                                wi = (q0 + qq) * sw + ow + s * dw
                                if wi < 0 or wi >= W:
                                    continue
                                xv = x[n, h, wi, g * Cg + c]
                                a = acc[qq, k0:k0 + Kg]
                                for k in range(Kg):
                                    a[k] += xv * wr[k]
            for qq in range(qn):
                o = out[n, p, q0 + qq]
                a = acc[qq]
                for k in range(K):
                    o[k] += a[k]


@njit(cache=True, parallel=True, fastmath=True)
def conv_window_dot(xp, wk, out, sh, sw, dh):
    """out[n, p, q, k] += sum_{r, s, c} xp[n, p*sh + r*dh, q*sw + s, c] * w[k, r, s, c], fp32.

    ``xp`` (N, Hp, Wp, C) is the padded input (channels last), ``wk`` (K, R, S*C) the
    weights, ``out`` (N, P, Q, K) float64. Column dilation 1 makes the S x C input window
    of an output one contiguous run, so each output is R dot products of length S*C
    (vectorised, reassociated: fastmath). A 4 x 4 block of (output pixel, filter)
    accumulators shares every load. Each filter row's sums (S*C products, in fp32) are
    added up in fp64 and then into ``out``.
    """
    N, Hp, Wp, C = xp.shape
    K, R, L = wk.shape
    P, Q = out.shape[1], out.shape[2]
    nq = (Q + 3) // 4
    nk = (K + 3) // 4
    for t in prange(N * P * nq):
        n = t // (P * nq)
        rem = t - n * P * nq
        p = rem // nq
        q0 = (rem - p * nq) * 4
        # edge blocks repeat the last pixel / filter; the repeats are not stored
        c0, c1 = min(q0, Q - 1) * sw * C, min(q0 + 1, Q - 1) * sw * C
        c2, c3 = min(q0 + 2, Q - 1) * sw * C, min(q0 + 3, Q - 1) * sw * C
        for kb in range(nk):
            k0 = kb * 4
            k1, k2, k3 = min(k0 + 1, K - 1), min(k0 + 2, K - 1), min(k0 + 3, K - 1)
            t00 = t01 = t02 = t03 = t10 = t11 = t12 = t13 = 0.0
            t20 = t21 = t22 = t23 = t30 = t31 = t32 = t33 = 0.0
            for r in range(R):
                s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = np.float32(0)
                s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = np.float32(0)
                row = xp[n, p * sh + r * dh].ravel()
                x0, x1, x2, x3 = row[c0:c0 + L], row[c1:c1 + L], row[c2:c2 + L], row[c3:c3 + L]
                w0, w1, w2, w3 = wk[k0, r], wk[k1, r], wk[k2, r], wk[k3, r]
                for e in range(L):
                    a0, a1, a2, a3 = x0[e], x1[e], x2[e], x3[e]
                    b0, b1, b2, b3 = w0[e], w1[e], w2[e], w3[e]
                    s00 += a0 * b0; s01 += a0 * b1; s02 += a0 * b2; s03 += a0 * b3
                    s10 += a1 * b0; s11 += a1 * b1; s12 += a1 * b2; s13 += a1 * b3
                    s20 += a2 * b0; s21 += a2 * b1; s22 += a2 * b2; s23 += a2 * b3
                    s30 += a3 * b0; s31 += a3 * b1; s32 += a3 * b2; s33 += a3 * b3
                t00 += s00; t01 += s01; t02 += s02; t03 += s03
                t10 += s10; t11 += s11; t12 += s12; t13 += s13
                t20 += s20; t21 += s21; t22 += s22; t23 += s23
                t30 += s30; t31 += s31; t32 += s32; t33 += s33
            o = out[n, p]
            kn = min(K - k0, 4)
            if q0 < Q:
                o[q0, k0] += t00
                if kn > 1:
                    o[q0, k0 + 1] += t01
                if kn > 2:
                    o[q0, k0 + 2] += t02
                if kn > 3:
                    o[q0, k0 + 3] += t03
            if q0 + 1 < Q:
                o[q0 + 1, k0] += t10
                if kn > 1:
                    o[q0 + 1, k0 + 1] += t11
                if kn > 2:
                    o[q0 + 1, k0 + 2] += t12
                if kn > 3:
                    o[q0 + 1, k0 + 3] += t13
            if q0 + 2 < Q:
                o[q0 + 2, k0] += t20
                if kn > 1:
                    o[q0 + 2, k0 + 1] += t21
                if kn > 2:
                    o[q0 + 2, k0 + 2] += t22
                if kn > 3:
                    o[q0 + 2, k0 + 3] += t23
            if q0 + 3 < Q:
                o[q0 + 3, k0] += t30
                if kn > 1:
                    o[q0 + 3, k0 + 1] += t31
                if kn > 2:
                    o[q0 + 3, k0 + 2] += t32
                if kn > 3:
                    o[q0 + 3, k0 + 3] += t33


@njit(cache=True, parallel=True)
def gemm_acc(a, b, out):
    """out[m, n] += sum_k a[m, k] * b[k, n] (one dtype, int32 or fp32)."""
    M, K = a.shape
    N = b.shape[1]
    for m in prange(M):
        for k in range(K):
            av = a[m, k]
            br = b[k]
            o = out[m]
            for n in range(N):
                o[n] += av * br[n]


def _pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def conv_out_size(h, r, stride, pad, dilation) -> int:
    return (h + 2 * pad - dilation * (r - 1) - 1) // stride + 1


def conv2d(x, w, stride=1, padding=0, dilation=1, groups=1, out_hw=None) -> np.ndarray:
    """Numba conv2d in PyTorch layout; int32 output for integer operands, fp32 otherwise.

    ``out_hw`` (P, Q) overrides the standard output size (for layers that store theirs).
    """
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    if C != Cg * groups or K % groups:
        raise ValueError(f"conv2d: x has {C} channels, w {Cg} per group x {groups} groups, "
                         f"K = {K}; need C = Cg x groups and groups | K")
    P, Q = out_hw if out_hw is not None else (conv_out_size(H, R, sh, ph, dh),
                                              conv_out_size(W, S, sw, pw, dw))
    bound = _int_bound(x.dtype) * _int_bound(w.dtype)
    integer = np.issubdtype(x.dtype, np.integer) or np.issubdtype(w.dtype, np.integer)
    if groups == 1 and dw == 1 and bound:  # 8-bit integers: int16 dots, int32 accumulators
        return conv2d_int8(x, w, sh, sw, ph, pw, dh, P, Q)
    if groups == 1 and dw == 1 and not integer:
        return _conv_window(x, w, sh, sw, ph, pw, dh, P, Q)
    xl = _operand(x.transpose(0, 2, 3, 1))
    wl = _operand(w.transpose(2, 3, 1, 0))
    out = np.zeros((N, P, Q, K), dtype=xl.dtype)
    conv_nhwc(xl, wl, out, sh, sw, -ph, -pw, dh, dw, groups, Cg)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _conv_window(x, w, sh, sw, ph, pw, dh, P, Q) -> np.ndarray:
    """Dense float conv with column dilation 1 on :func:`conv_window_dot`.

    The padded input is first gathered into rows (N, P, Wp, R*C): row p holds, for every
    input column, the R input rows output row p reads (an R-fold copy, small next to
    im2col's R*S-fold), so an output's whole R x S x C window is one contiguous run and
    the kernel runs with R = 1."""
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    Hp = max(H + 2 * ph, (P - 1) * sh + (R - 1) * dh + 1)
    Wp = max(W + 2 * pw, (Q - 1) * sw + S)
    out = np.zeros((N, P, Q, K), dtype=np.float64)
    rows = (np.arange(P) * sh)[:, None] + np.arange(R) * dh       # (P, R) input rows
    xp = np.zeros((N, Hp, Wp, C), dtype=np.float32)
    xp[:, ph:ph + H, pw:pw + W] = x.transpose(0, 2, 3, 1)
    xr = np.ascontiguousarray(xp[:, rows].transpose(0, 1, 3, 2, 4))  # N, P, Wp, R, C
    xr = xr.reshape(N, P, Wp, R * C)
    wk = np.ascontiguousarray(w.transpose(0, 3, 2, 1), dtype=np.float32)
    conv_window_dot(xr, wk.reshape(K, 1, S * R * C), out, 1, sw, 1)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2), dtype=np.float32)


def _gemm_nt(a, bt) -> np.ndarray:
    """Float (M x K) @ (N x K)^T on :func:`conv_window_dot`, as a 1 x 1 convolution whose
    pixels are the rows of the taller operand; fp64 result array."""
    if a.shape[0] < bt.shape[0]:  # the longer side as the pixels (blocks, threads)
        return _gemm_nt(bt, a).T
    M, K = a.shape
    N = bt.shape[0]
    out = np.zeros((1, 1, M, N), dtype=np.float64)
    xr = np.ascontiguousarray(a, dtype=np.float32).reshape(1, 1, M, K)
    wk = np.ascontiguousarray(bt, dtype=np.float32).reshape(N, 1, K)
    conv_window_dot(xr, wk, out, 1, 1, 1)
    return out[0, 0]


def _gemm(a, bt) -> np.ndarray:
    """a (M, K) @ bt (N, K)^T with the kernels' precision rules."""
    integer = np.issubdtype(a.dtype, np.integer) or np.issubdtype(bt.dtype, np.integer)
    bound = _int_bound(a.dtype) * _int_bound(bt.dtype)
    if bound:
        return gemm_nt_int8(a, bt)
    if not integer:
        return np.ascontiguousarray(_gemm_nt(a, bt), dtype=np.float32)
    a, b = _operand(a), _operand(bt.T)
    out = np.zeros((a.shape[0], b.shape[1]), dtype=a.dtype)
    gemm_acc(a, b, out)
    return out


def gemm(a, b) -> np.ndarray:
    """Numba (M x K) @ (K x N); int32 for integer operands (wrapping), fp32 otherwise.

    Float operands run as a 1 x 1 convolution on :func:`conv_window_dot`, 8-bit integers
    on :func:`intdot.gemm_nt_int8 <sim.kernels.intdot.gemm_nt_int8>` (int16 dots, int32
    accumulators); wider integers on :func:`gemm_acc`."""
    return _gemm(a, np.ascontiguousarray(b.T))


def fc(x, w) -> np.ndarray:
    """Fully connected: x (N, in) and w (out, in) -> (N, out) (PyTorch's Linear without bias)."""
    return _gemm(x, w)


def conv2d_layer(layer, x, w) -> np.ndarray:
    """The reference output of a :class:`workloads.MacLayer` (its stored P, Q kept)."""
    if layer.H == layer.W == layer.R == layer.S == layer.P == layer.Q == 1 and layer.groups == 1:
        return fc(x.reshape(layer.N, layer.C), w.reshape(layer.K, layer.C)).reshape(
            layer.N, layer.K, 1, 1)
    return conv2d(x, w, layer.stride, layer.padding, layer.dilation, layer.groups,
                  out_hw=(layer.P, layer.Q))


# ---- plain numpy: the independent check of the numba kernels ------------------------
def conv2d_numpy(x, w, stride=1, padding=0, dilation=1, groups=1, out_hw=None) -> np.ndarray:
    """conv2d by explicit padding, strided window slices and einsum (int64 / fp64 inside,
    cast to int32 with wrap-around / fp32 at the end)."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    P, Q = out_hw if out_hw is not None else (conv_out_size(H, R, sh, ph, dh),
                                              conv_out_size(W, S, sw, pw, dw))
    integer = np.issubdtype(x.dtype, np.integer)
    wide = np.int64 if integer else np.float64
    # pad enough on every side for the stored output size too
    Hp = max(H + 2 * ph, (P - 1) * sh + (R - 1) * dh + 1)
    Wp = max(W + 2 * pw, (Q - 1) * sw + (S - 1) * dw + 1)
    xp = np.zeros((N, C, Hp, Wp), dtype=wide)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    ww = w.astype(wide)
    Kg = K // groups
    out = np.zeros((N, K, P, Q), dtype=wide)
    for g in range(groups):
        xs = xp[:, g * Cg:(g + 1) * Cg]
        wg = ww[g * Kg:(g + 1) * Kg]
        for r in range(R):
            for s in range(S):
                win = xs[:, :, r * dh:r * dh + (P - 1) * sh + 1:sh,
                         s * dw:s * dw + (Q - 1) * sw + 1:sw]
                out[:, g * Kg:(g + 1) * Kg] += np.einsum("nchw,kc->nkhw", win, wg[:, :, r, s])
    return out.astype(np.int32) if integer else out.astype(np.float32)


def gemm_numpy(a, b) -> np.ndarray:
    integer = np.issubdtype(a.dtype, np.integer)
    wide = np.int64 if integer else np.float64
    out = a.astype(wide) @ b.astype(wide)
    return out.astype(np.int32) if integer else out.astype(np.float32)


def im2col_conv2d_numpy(x, w, stride=1, padding=0, dilation=1) -> np.ndarray:
    """The usual numpy lowering (groups = 1): im2col then one matmul, in x's dtype.
    A speed baseline for the benchmark, not a reference."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    P, Q = conv_out_size(H, R, sh, ph, dh), conv_out_size(W, S, sw, pw, dw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((N, C, R, S, P, Q), dtype=x.dtype)
    for r in range(R):
        for s in range(S):
            cols[:, :, r, s] = xp[:, :, r * dh:r * dh + (P - 1) * sh + 1:sh,
                                  s * dw:s * dw + (Q - 1) * sw + 1:sw]
    cols = cols.reshape(N, C * R * S, P * Q)
    return (w.reshape(K, -1) @ cols).reshape(N, K, P, Q)
