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

The numba kernels work in channels-last layout (x as N,H,W,C; w as R,S,C/G,K) so the
innermost loop runs over contiguous output channels and vectorises; the public
functions take and return PyTorch layout and convert.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


def acc_dtype(dtype) -> np.dtype:
    """The accumulator dtype for operands of ``dtype``: int32 for integers, fp32 otherwise."""
    return np.dtype(np.int32) if np.issubdtype(np.dtype(dtype), np.integer) else np.dtype(np.float32)


def _int_bound(dtype) -> int:
    """Largest |value| of an 8-bit integer dtype (products of two stay below 2^15); 0 for
    anything else (wider integers and floats take the plain path)."""
    dtype = np.dtype(dtype)
    return {np.dtype(np.int8): 128, np.dtype(np.uint8): 255}.get(dtype, 0)


def _operand(a: np.ndarray) -> np.ndarray:
    """Integers widen to int32 (exact), floats to fp32; the kernels see one dtype."""
    return np.ascontiguousarray(a, dtype=acc_dtype(a.dtype))


QB = 8  # output pixels per register block of the conv kernel
EXACT_F32 = 2 ** 24  # fp32 adds integers exactly while every partial sum stays below this


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
    if 0 < bound * R * S <= EXACT_F32:
        # small integers (8-bit x 8-bit): multiply-add in fp32, which is exact while a
        # partial sum stays below 2^24, flushing to an int64 total every cchunk channels,
        # then wrap to int32 - bit-identical to int32 arithmetic, and about 2x faster
        xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=np.float32)
        wl = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype=np.float32)
        out = np.zeros((N, P, Q, K), dtype=np.int64)
        conv_nhwc(xl, wl, out, sh, sw, -ph, -pw, dh, dw, groups, EXACT_F32 // (bound * R * S))
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2)).astype(np.int32)
    xl = _operand(x.transpose(0, 2, 3, 1))
    wl = _operand(w.transpose(2, 3, 1, 0))
    out = np.zeros((N, P, Q, K), dtype=xl.dtype)
    conv_nhwc(xl, wl, out, sh, sw, -ph, -pw, dh, dw, groups, Cg)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def gemm(a, b) -> np.ndarray:
    """Numba (M x K) @ (K x N); int32 for integer operands (wrapping), fp32 otherwise."""
    a, b = _operand(a), _operand(b)
    out = np.zeros((a.shape[0], b.shape[1]), dtype=a.dtype)
    gemm_acc(a, b, out)
    return out


def fc(x, w) -> np.ndarray:
    """Fully connected: x (N, in) and w (out, in) -> (N, out) (PyTorch's Linear without bias)."""
    return gemm(x, np.ascontiguousarray(w.T))


def conv2d_layer(layer, x, w) -> np.ndarray:
    """The reference output of a :class:`workloads.MacLayer` (its stored P, Q kept)."""
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
                win = xs[:, :, r * dh:r * dh + (P - 1) * sh + 1:sh, s * dw:s * dw + (Q - 1) * sw + 1:sw]
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
