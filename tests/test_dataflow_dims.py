"""The conv nest's dims (G, B, P, Q, N, C, R, S) give every GEMM dataflow exactly the
folds, per-fold cycles and reads it had over the GEMM dims (G, M, N, C, RS)."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings, strategies as st

from conftest import make_arch
from tilesim.mapper import DATAFLOWS, Mapspace
from tilesim.mapper.dataflow import elements, layer_dims
from tilesim.workloads.ir import conv, fc

# ---- the plan as it was over G, M, N, C, RS (copied from mapper/dataflow.py before the
# dims were split; frozen here as the reference) -----------------------------------------
_K = ("C", "RS")
_OP = {"input": ("G", "M", "C", "RS"), "weight": ("G", "C", "RS", "N"),
       "output": ("G", "M", "N")}
_OLD = {"os": (("M",), ("N",), _K, False, ("rows", "cols")),
        "ws": (_K, ("N",), ("M",), True, ("rows", "cols")),
        "is": (_K, ("M",), ("N",), True, ("rows", "cols")),
        "dw": (_K, ("G", "N"), ("M",), True, ("rows",)),
        "kc": (("C",), ("N",), ("M",), True, ("rows", "cols"))}


def old_plan(name, dims, rows, cols):
    r_, c_, s_, preload, links = _OLD[name]
    axis = {"rows": r_, "cols": c_}
    outer = [d for d in ("G", "M", "N", "C", "RS") if d not in set(r_) | set(c_) | set(s_)]
    ext = {a: math.prod(dims[d] for d in axis[a]) for a in axis}
    rf, cf = -(-ext["rows"] // rows), -(-ext["cols"] // cols)
    T = math.prod(dims[d] for d in s_)
    folds = {"rows": rf, "cols": cf}
    reads = {}
    for op, od in _OP.items():
        f = math.prod(dims[d] for d in outer if d not in od)
        for a, ax in axis.items():
            missing = [d for d in ax if d not in od]
            if missing and a in links and len(missing) == len(ax):
                f *= folds[a]
            elif missing:
                f *= math.prod(dims[d] for d in missing)
        reads[op] = f
    cyc = T + (rows if preload else 0) + (rows - 1) * ("rows" in links) + (cols - 1) * ("cols" in links)
    return rf, cf, math.prod(dims[d] for d in outer) * rf * cf, cyc, reads


def shifted(name, dims, rows, cols):
    """Register writes of the stationary operand shifting down the columns, fold by
    fold: in a fold of r real rows and c real columns each column latches its value for
    row i in rows 0..i, r (r + 1) / 2 in all; summed over the folds (outer loops too)."""
    r_, c_, s_, _, _ = _OLD[name]
    outer = [d for d in ("G", "M", "N", "C", "RS") if d not in set(r_) | set(c_) | set(s_)]
    rd, cd = math.prod(dims[d] for d in r_), math.prod(dims[d] for d in c_)
    total = 0
    for r0 in range(0, rd, rows):
        r = min(rows, rd - r0)
        for c0 in range(0, cd, cols):
            total += min(cols, cd - c0) * sum(i + 1 for i in range(r))
    return total * math.prod(dims[d] for d in outer)


@st.composite
def layers(draw):
    g = draw(st.sampled_from([1, 1, 2, 4]))
    if g == 1 and draw(st.integers(0, 4)) == 0:
        return fc("fc", draw(st.integers(1, 4)), draw(st.integers(1, 300)),
                  draw(st.integers(1, 300)))
    r, s = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    h = draw(st.integers(max(r, s), 40))
    depthwise = g > 1 and draw(st.booleans())
    c = g if depthwise else g * draw(st.integers(1, 40))
    k = c if depthwise else g * draw(st.integers(1, 40))
    return conv("c", draw(st.integers(1, 3)), c, h, h + draw(st.integers(0, 5)), k, r, s,
                stride=draw(st.integers(1, 3)), pad=draw(st.integers(0, 2)),
                dilation=draw(st.integers(1, 2)) if max(r, s) * 2 <= h else 1, groups=g)


@settings(max_examples=300)
@given(layers(), st.integers(1, 40), st.integers(1, 40))
def test_gemm_dataflows_keep_their_plans(layer, rows, cols):
    """folds, per-fold cycles and reads per element are the old ones; the buffer
    accesses are the im2col elements x reads; the pe writes: a moving operand's once per
    MAC, the stationary one's as it shifts down the columns (:func:`shifted`)."""
    dims = layer_dims(layer)
    g, M, N, K = layer.gemm
    old = {"G": g, "M": M, "N": N, "C": K // (layer.R * layer.S), "RS": layer.R * layer.S}
    el = {"input": g * M * K, "weight": g * N * K, "output": g * M * N}
    assert elements(dims) == {**el, "macs": layer.macs}
    for name, df in DATAFLOWS.items():
        if name not in _OLD:
            continue
        p = df.plan(dims, rows, cols)
        rf, cf, folds, cyc, reads = old_plan(name, old, rows, cols)
        assert (p.row_folds, p.col_folds, p.folds, p.fold_cycles) == (rf, cf, folds, cyc)
        assert p.reads == reads
        assert p.accesses == {op: el[op] * reads[op] for op in el}
        assert p.pe_writes == {op: shifted(name, old, rows, cols) if op == df.stationary
                               else layer.macs for op in ("input", "weight")}
        assert df.applies(dims) == (name != "dw" or N == 1)


def test_fills_array_and_space_unchanged_on_a_conv():
    """A conv's mapspace marks the same points legal whichever way M is split (its
    points' folds and fold cycles are the old plan's)."""
    layer = conv("c", 2, 6, 9, 7, 10, 3, pad=1)
    a = make_arch(rows=4, cols=3, size="2 KiB", dataflows=["os", "is", "kc"])
    sp = Mapspace(layer, a)
    pts = sp.points(np.arange(sp.size))
    g, M, N, K = layer.gemm
    old = {"G": g, "M": M, "N": N, "C": K // 9, "RS": 9}
    for i, name in enumerate(sp.dataflows):
        sel = pts.dataflow == i
        rf, cf, folds, cyc, reads = old_plan(name, old, 4, 3)
        assert (pts.folds[sel] == folds).all() and (pts.fold_cycles[sel] == cyc).all()
        assert pts.legal[sel].any()
