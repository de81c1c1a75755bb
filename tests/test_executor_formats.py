"""The executor moves DRAM tiles in DRAM's storage format for real (encode, count,
decode) and stays bit-exact with the reference; its DRAM bytes per operand equal the
cost model's exactly where the format's size is linear in the non-zero count and every
value is moved equally often (sim/kernels/executor.py's module doc); it counts the MACs
it performs (mapper.sparse.performed_macs, N:M skipping included) and those with both
operands non-zero (against a direct numpy count)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from conftest import seed_mapping
from test_executor import layers, retile, tilings
from tilesim import arch as arch_mod
from tilesim.mapper import MappingError
from tilesim.mapper.sparse import performed_macs
from tilesim.sim import CostModel
from tilesim.sim.kernels import conv2d_layer
from tilesim.sim.kernels.executor import execute
from tilesim.sim.kernels.formats import FormatError
from tilesim.workloads.ir import conv
from tilesim.workloads.sparsity import Sparsity, nm_kept

FAST = settings(max_examples=25, deadline=None)


def fmt_arch(fmt=None, rows=4, cols=4, dataflow="ws", zeros=None, size="64 MiB",
             precision=("int8", "int8", "int32")):
    """make_arch's one-buffer accelerator with DRAM storing ``fmt`` (a format or a map)."""
    i, w, acc = precision
    arr = {"rows": rows, "cols": cols, "dataflow": dataflow}
    if zeros:
        arr["zeros"] = zeros
    return arch_mod.from_dict({
        "version": 1, "name": "fmt", "clock": "1 GHz", "technology": "28 nm",
        "precision": {"input": i, "weight": w, "accumulator": acc},
        "compute": {"arrays": [arr], "vector": {"lanes": 4}},
        "memory": [
            {"name": "dram", "kind": "dram", "holds": ["input", "weight", "output"],
             "bandwidth": "unlimited", **({"format": fmt} if fmt else {})},
            {"name": "buf", "kind": "sram", "holds": ["input", "weight", "output"],
             "size": size, "double_buffered": True}]})


def sparse_ints(rng, shape, d):
    v = rng.integers(1, 128, shape) * rng.choice([-1, 1], shape)
    return (v * (rng.random(shape) < d)).astype(np.int8)


def nm_filters(rng, K, red, n, m, fill=1.0):
    """(K, red) int8 weights, N:M along each filter from its first value."""
    w = sparse_ints(rng, (K, red), 1.0)
    keep = np.zeros((K, red), dtype=bool)
    for j in range(0, red, m):
        blen = min(m, red - j)
        pick = np.argsort(rng.random((K, blen)), axis=1)[:, :min(n, blen)]
        keep[np.arange(K)[:, None], j + pick] = True
    return np.where(keep & (rng.random((K, red)) < fill), w, 0).astype(np.int8)


def operands(layer, seed, dx, dw, nm=None):
    rng = np.random.default_rng(seed)
    x = sparse_ints(rng, (layer.N, layer.C, layer.H, layer.W), dx)
    shape = (layer.K, layer.C // layer.groups, layer.R, layer.S)
    if nm is None:
        w = sparse_ints(rng, shape, dw)
    else:
        w = nm_filters(rng, shape[0], int(np.prod(shape[1:])), *nm).reshape(shape)
    return x, w


def counted(layer, x, w, nm=None):
    """``layer`` with the densities of ``x``, ``w`` and its output counted (None when an
    operand is all zeros: a density is in (0, 1])."""
    out = conv2d_layer(layer, x, w)
    d = [np.count_nonzero(a) / a.size for a in (x, w, out)]
    if min(d) == 0:
        return None
    s = Sparsity(nm=nm, input=d[0], output=d[2]) if nm else \
        Sparsity(weight=d[1], input=d[0], output=d[2], counted=True)
    return replace(layer, sparsity=s)


def nonzero_pairs(layer, x, w) -> int:
    """Products with both operands non-zero, by numpy: per (group, r, s), the non-zero
    inputs each channel offers over the outputs times the non-zero weights on it."""
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    G, Cg, Kg = layer.groups, layer.C // layer.groups, layer.K // layer.groups
    xp = np.pad(x != 0, ((0, 0), (0, 0), (ph, ph), (pw, pw))).astype(np.int64)
    total = 0
    for g in range(G):
        for r in range(layer.R):
            for s in range(layer.S):
                xs = xp[:, g * Cg:(g + 1) * Cg, r * dh:r * dh + (layer.P - 1) * sh + 1:sh,
                        s * dw:s * dw + (layer.Q - 1) * sw + 1:sw]
                ws = (w[g * Kg:(g + 1) * Kg, :, r, s] != 0).astype(np.int64)
                total += int(xs.sum(axis=(0, 2, 3)) @ ws.sum(axis=0))
    return total


def dram_access(m, a):
    acc = CostModel(a).point(m).access
    return {op: tuple(int(v[0]) for v in acc[(a.dram.name, op)])
            for op in ("input", "weight", "output")}


FMTS = ["dense", "bitmask", "rle", "csr"]


@FAST
@given(st.data(), layers(), st.sampled_from(FMTS), st.sampled_from(FMTS + ["nm"]),
       st.sampled_from(FMTS), st.sampled_from([0.05, 0.3, 1.0]),
       st.sampled_from([0.05, 0.5, 1.0]), st.integers(0, 2 ** 31))
def test_formats_execute_bit_exact(data, layer, fi, fw, fo, dx, dw, seed):
    """Any tiling and order, every DRAM tile encoded and decoded: the reference output,
    all MACs performed, the non-zero pairs counted exactly."""
    nm = (2, 4) if fw == "nm" else None
    x, w = operands(layer, seed, dx, dw, nm)
    sl = counted(layer, x, w, nm)
    assume(sl is not None)
    a = fmt_arch({"input": fi, "weight": fw, "output": fo})
    m = retile(seed_mapping(sl, a), **data.draw(tilings(sl)))
    ex = execute(m, x, w, arch=a)
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))
    assert ex.formats == {"input": fi, "weight": fw, "output": fo}
    assert ex.macs == performed_macs(sl, a, None) == layer.macs
    assert ex.nonzero_macs == nonzero_pairs(layer, x, w)


@FAST
@given(st.data(), layers(), st.sampled_from([(1, 2), (2, 4), (1, 4), (3, 8)]),
       st.sampled_from(["os", "ws", "is"]), st.booleans(), st.integers(0, 2 ** 31))
def test_nm_skipping_performs_the_kept_macs(data, layer, nm, df, stored_nm, seed):
    """An array that skips N:M zeros performs the kept weights' MACs only (straddling
    channel tiles included), with nm or dense weights in DRAM; output exact."""
    x, w = operands(layer, seed, 0.5, 1.0, nm)
    sl = counted(layer, x, w, nm)
    assume(sl is not None)
    a = fmt_arch({"weight": "nm"} if stored_nm else None, dataflow=df, zeros="skip")
    try:
        m = seed_mapping(sl, a)
    except MappingError:
        assume(False)
    assert m.skip == nm
    m = retile(m, **data.draw(tilings(sl)))
    ex = execute(m, x, w, arch=a)
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))
    red = layer.C // layer.groups * layer.R * layer.S
    assert ex.macs == performed_macs(sl, a, m.skip) == layer.macs // red * nm_kept(red, *nm)
    assert ex.nonzero_macs == nonzero_pairs(layer, x, w)


def test_nm_weights_that_are_not_nm_are_refused():
    layer = conv("c", 1, 4, 3, 3, 2, 1)
    x, w = operands(layer, 0, 1.0, 1.0)
    sl = replace(layer, sparsity=Sparsity(nm=(2, 4)))
    a = fmt_arch({"weight": "nm"})
    with pytest.raises(FormatError, match="more than N = 2"):
        execute(seed_mapping(sl, a), x, w, arch=a)
    # a layer without N:M structure: nm DRAM stores its weights dense (mapper.sparse);
    # (a sparsity of its own: mapper.sparse.ratios reads layer.sparsity.nm)
    dl = replace(layer, sparsity=Sparsity(input=0.5))
    assert execute(seed_mapping(dl, a), x, w, arch=a).formats["weight"] == "dense"


# ---- DRAM bytes: the cost model's, exactly where its rule holds ----------------------
def _layer_1x1(draw):
    g = draw(st.sampled_from([1, 1, 2]))
    h = draw(st.integers(1, 6))
    return conv("p", draw(st.integers(1, 2)), g * draw(st.integers(1, 6)), h,
                h + draw(st.integers(0, 3)), g * draw(st.integers(1, 5)), 1, groups=g)


@st.composite
def exact_cases(draw):
    """1x1 convs (no halo), tilings under which the format's bytes are the cost model's:
    csr rows uncut (cols = Q; c_tile = C/g for csr weights), nm tiles on block
    boundaries."""
    layer = _layer_1x1(draw)
    fi, fo = draw(st.sampled_from(["dense", "bitmask", "csr"])), \
        draw(st.sampled_from(["dense", "bitmask", "csr"]))
    fw = draw(st.sampled_from(["dense", "bitmask", "csr", "nm"]))
    t = draw(tilings(layer))
    Cg, Kg = layer.C // layer.groups, layer.K // layer.groups
    kt = t["k_tile"]
    t["k_tile"] = kt if layer.groups == 1 else (kt if Kg % kt == 0 else Kg)
    if "csr" in (fi, fo):
        t["cols"] = layer.Q
    nm = (draw(st.integers(1, 2)), draw(st.sampled_from([2, 4]))) if fw == "nm" else None
    if fw == "csr" or (nm and t["c_tile"] % nm[1]):
        t["c_tile"] = Cg
    return layer, (fi, fw, fo), nm, t


@FAST
@given(exact_cases(), st.sampled_from([0.1, 0.5, 1.0]), st.integers(0, 2 ** 31))
def test_dram_bytes_equal_the_cost_model(case, d, seed):
    layer, (fi, fw, fo), nm, t = case
    x, w = operands(layer, seed, d, d, nm)
    sl = counted(layer, x, w, nm)
    assume(sl is not None)
    a = fmt_arch({"input": fi, "weight": fw, "output": fo})
    m = retile(seed_mapping(sl, a), **t)
    ex = execute(m, x, w, arch=a)
    assert np.array_equal(ex.output, conv2d_layer(layer, x, w))
    cost = dram_access(m, a)
    for op in ("input", "weight", "output"):
        r, wr = ex.dram_bits[op]
        assert truncated(cost[op][0], r) and truncated(cost[op][1], wr), \
            (op, ex.formats[op], cost[op], r / 8, wr / 8)


def truncated(cost_bytes: int, bits: int) -> bool:
    """The cost model's bytes are its float product (dense bytes x the format's ratio)
    truncated to whole bytes (mapper.tiling): the executor's exact ``bits`` / 8 rounded
    down, or, where that is a whole number, the float a hair below it truncated one
    lower (e.g. 120 x 1.025 = 122.99999999999999 -> 122 for 123 exact)."""
    return cost_bytes in (bits // 8, (bits - 1) // 8) if bits else cost_bytes == 0


@FAST
@given(st.data(), layers(), st.integers(0, 2 ** 31))
def test_dense_bytes_equal_the_cost_model(data, layer, seed):
    """Dense DRAM, any layer (halo rows fetched as the cost model charges them, padding
    by neither), any tiling with group-aligned k tiles, in integers: equal bytes."""
    t = data.draw(tilings(layer))
    Kg = layer.K // layer.groups
    if layer.groups > 1 and Kg % t["k_tile"] and t["k_tile"] % Kg:
        t["k_tile"] = Kg
    x, w = operands(layer, seed, 0.5, 0.5)
    a = fmt_arch()
    m = retile(seed_mapping(layer, a), **t)
    ex = execute(m, x, w, arch=a)
    assert dram_access(m, a) == {op: (r // 8, wr // 8) for op, (r, wr) in ex.dram_bits.items()}


def test_dense_bytes_equal_the_cost_model_with_halos():
    """Dense: every layer without padding (halos are the same rows either way), any
    tiling; the bytes by hand for one."""
    layer = conv("c", 1, 4, 8, 8, 6, 3)            # P = Q = 6
    x, w = operands(layer, 1, 1.0, 1.0)
    a = fmt_arch()
    m = retile(seed_mapping(layer, a), images=1, rows=3, cols=6, k_tile=3, c_tile=4,
               order=("r", "k", "c"))
    ex = execute(m, x, w, arch=a)
    # inputs: 2 row blocks of 5 rows x 8 cols x 4 ch, fetched once each (k inside r,
    # c one trip: the input stays across k); weights: 2 k tiles per row block
    assert ex.dram_bits["input"] == (2 * 5 * 8 * 4 * 8, 0)
    assert ex.dram_bits["weight"] == (2 * 2 * 3 * 4 * 9 * 8, 0)
    assert ex.dram_bits["output"] == (0, 6 * 36 * 8)
    # dense: integers throughout, no rounding
    assert dram_access(m, a) == {op: (r // 8, wr // 8) for op, (r, wr) in ex.dram_bits.items()}


# ---- tilesim verify: sparse operands through DRAM's formats -------------------------
@pytest.mark.parametrize("zeros", ["gate", "skip"])
def test_verify_runs_sparse_layers_through_formats(zeros):
    """verify draws zeros at the layer's sparsity (N:M weights structured, or the nm
    encoder would refuse them) and executes them through DRAM's formats bit-exactly,
    the tiles fitting the compressed tile bytes the mapping charged. (The PE model's
    N:M skipping is sim.pe's: its check is not asserted here under ``skip``.)"""
    from tilesim.sim.run import make_mapper
    from tilesim.sim.verify import random_operands, verify_layer
    a = fmt_arch({"input": "bitmask", "weight": "nm", "output": "rle"}, zeros=zeros,
                 size="4 KiB")
    for layer in (conv("c", 1, 16, 10, 10, 8, 3, pad=1), conv("p", 1, 24, 6, 6, 12, 1)):
        sl = replace(layer, sparsity=Sparsity(nm=(2, 4), input=0.5))
        c = verify_layer(sl, a, make_mapper(a, "traffic"), np.random.default_rng(0))
        assert c.exec_ok and c.tiles_fit and c.tiles > 1
        if zeros == "gate":
            assert c.pe_ok
        x, w = random_operands(sl, a, np.random.default_rng(1))
        red = w[0].size
        blocks = np.pad(w.reshape(len(w), red), ((0, 0), (0, -red % 4))).reshape(len(w), -1, 4)
        assert ((blocks != 0).sum(axis=2) <= 2).all()
        assert abs(np.count_nonzero(x) / x.size - 0.5) < 0.1
    # a dense layer draws what it drew before (no extra random numbers)
    d = conv("p", 1, 4, 3, 3, 4, 1)
    x0, w0 = random_operands(d, a, np.random.default_rng(2))
    x1, w1 = random_operands(replace(d, sparsity=Sparsity()), a, np.random.default_rng(2))
    assert np.array_equal(x0, x1) and np.array_equal(w0, w1)
