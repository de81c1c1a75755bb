"""Depth-first fused schedules: bit-exact with the layer-by-layer reference, and the
executor's measured DRAM bytes, on-chip peak and MACs equal to the closed form."""
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tilesim.sim.fusion import (FusedGroup, FusionError, OnChipLimitError, fused_costs,
                                row_macs)
from tilesim.sim.kernels import fused as fused_mod
from tilesim.sim.kernels.fused import reference_outputs, run_fused
from tilesim.workloads import MacLayer, Model, layer_sources
from tilesim.workloads.ir import conv, eltwise, fc, gap, pool

HALOS = ("recompute", "cache")


# ---- the three networks ---------------------------------------------------------------
def resnet_block(n, c, h, w, k) -> Model:
    """ResNet basic block, stride 2: 3x3/2 conv + relu, 3x3 conv; 1x1/2 shortcut; add + relu."""
    p = (h - 1) // 2 + 1
    q = (w - 1) // 2 + 1
    return Model("resnet_block", (
        conv("conv1", n, c, h, w, k, 3, stride=2, pad=1, activation="relu"),
        conv("conv2", n, k, p, q, k, 3, pad=1),
        replace(conv("down", n, c, h, w, k, 1, stride=2), sources=("",)),
        replace(eltwise("add", "add", n, k, p, q, activation="relu"), sources=("conv2", "down")),
    ))


def mobilenet_blocks(n, c, h, w, t, k) -> Model:
    """MobileNetV2: an inverted residual (1x1 expand, 3x3 depthwise, 1x1 project, add), then
    a stride-2 block (1x1 expand, 3x3/2 depthwise, 1x1 project)."""
    e = c * t
    p = (h - 1) // 2 + 1
    q = (w - 1) // 2 + 1
    return Model("mbv2_blocks", (
        conv("b1.expand", n, c, h, w, e, 1, activation="relu6"),
        conv("b1.dw", n, e, h, w, e, 3, pad=1, groups=e, activation="relu6"),
        conv("b1.project", n, e, h, w, c, 1),
        replace(eltwise("b1.add", "add", n, c, h, w), sources=("b1.project", "")),
        conv("b2.expand", n, c, h, w, e, 1, activation="relu6"),
        conv("b2.dw", n, e, h, w, e, 3, stride=2, pad=1, groups=e, activation="relu6"),
        conv("b2.project", n, e, p, q, k, 1),
    ))


def pool_skip(n, c, h, w, k) -> Model:
    """conv -> maxpool(2, stride 2) -> conv -> conv, the pool's output added back (skip)."""
    p, q = h // 2, w // 2
    return Model("pool_skip", (
        conv("conv1", n, c, h, w, k, 3, pad=1, activation="relu"),
        pool("pool", "maxpool", n, k, h, w, 2, stride=2),
        conv("conv2", n, k, p, q, k, 3, pad=1, activation="relu"),
        conv("conv3", n, k, p, q, k, 3, pad=1),
        replace(eltwise("add", "add", n, k, p, q, activation="relu"), sources=("conv3", "pool")),
    ))


def data(model, seed=0, inputs=("",)):
    """int8 inputs and weights over the whole int8 range."""
    rng = np.random.default_rng(seed)
    shapes = {}
    for l, names in zip(model.layers, layer_sources(model)):
        for t in names:
            if t in inputs:
                shapes[t] = (l.N, l.C, l.H, l.W)
    x = {t: rng.integers(-128, 128, s).astype(np.int8) for t, s in shapes.items()}
    wts = {l.name: rng.integers(-128, 128, (l.K, l.C // l.groups, l.R, l.S)).astype(np.int8)
           for l in model.layers if isinstance(l, MacLayer)}
    return x, wts


def check(model, group, x, wts):
    """The properties every fused run has; returns (costs, run)."""
    ref = reference_outputs(model, group, x, wts)
    cost = fused_costs(model, group)
    run = run_fused(model, group, x, wts, onchip_limit=cost.peak_onchip_bytes)
    assert run.outputs, "a group writes at least its last layer"
    for name, y in run.outputs.items():
        assert y.dtype == np.int32
        assert np.array_equal(y, ref[name]), name
    assert run.counts == cost
    with pytest.raises(OnChipLimitError):
        run_fused(model, group, x, wts, onchip_limit=cost.peak_onchip_bytes - 1)
    if group.halo == "cache":   # every row at most once
        assert cost.macs <= cost.layer_macs
    return cost, run


def unfused_bytes(model, wts, outputs=None) -> int:
    """Layer-by-layer DRAM traffic of a whole-network group (int8): the network input once,
    the weights, the last layer's output."""
    first, last = model.layers[0], model.layers[-1]
    return (first.N * first.C * first.H * first.W + sum(w.size for w in wts.values())
            + last.N * last.K * last.P * last.Q)


dims = dict(n=st.integers(1, 2), c=st.integers(1, 4), h=st.integers(3, 11),
            w=st.integers(1, 6), k=st.integers(1, 5))


@settings(max_examples=30)
@given(**dims, rows=st.integers(1, 7), halo=st.sampled_from(HALOS))
def test_resnet_block(n, c, h, w, k, rows, halo):
    """ResNet basic block with a stride-2 3x3 and a 1x1/2 shortcut: bit-exact, counts exact."""
    m = resnet_block(n, c, h, w, k)
    x, wts = data(m, seed=h * 7 + w)
    cost, run = check(m, FusedGroup(0, 3, rows, halo), x, wts)
    assert list(run.outputs) == ["add"]
    recomputes = halo == "recompute" and cost.strips > 1   # conv1's halo rows
    assert cost.macs == cost.layer_macs if not recomputes else cost.macs > cost.layer_macs
    one = fused_costs(m, FusedGroup(0, 3, m.layers[-1].P, halo))
    assert one.dram_bytes == unfused_bytes(m, wts)
    assert one.macs == one.layer_macs


@settings(max_examples=20)
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(3, 9), w=st.integers(1, 5),
       t=st.integers(1, 3), k=st.integers(1, 4), rows=st.integers(1, 5),
       halo=st.sampled_from(HALOS))
def test_mobilenet_blocks(n, c, h, w, t, k, rows, halo):
    """MobileNetV2 inverted residual + stride-2 block: bit-exact, counts exact."""
    m = mobilenet_blocks(n, c, h, w, t, k)
    x, wts = data(m, seed=h * 5 + w)
    cost, run = check(m, FusedGroup(0, 6, rows, halo), x, wts)
    recomputes = halo == "recompute" and cost.strips > 1   # the expands' halo rows
    assert cost.macs == cost.layer_macs if not recomputes else cost.macs > cost.layer_macs
    one = fused_costs(m, FusedGroup(0, 6, m.layers[-1].P, halo))
    assert one.dram_bytes == unfused_bytes(m, wts)


@settings(max_examples=25)
@given(**dims, rows=st.integers(1, 6), halo=st.sampled_from(HALOS))
def test_pool_skip(n, c, h, w, k, rows, halo):
    """conv -> maxpool/2 -> conv -> conv + skip add: bit-exact, counts exact; an odd height's
    last conv1 row, which the pool drops, is never computed."""
    m = pool_skip(n, c, max(h, 2), max(w, 2), k)
    x, wts = data(m, seed=h * 3 + w)
    cost, _ = check(m, FusedGroup(0, 4, rows, halo), x, wts)
    conv1 = m.layers[0]
    if halo == "cache" or cost.strips == 1:
        assert cost.macs == cost.layer_macs - (conv1.P % 2) * conv1.N * row_macs(conv1)
    else:   # conv1 and conv2 recompute halo rows
        assert cost.macs > cost.layer_macs
    one = fused_costs(m, FusedGroup(0, 4, m.layers[-1].P, halo))
    assert one.dram_bytes == unfused_bytes(m, wts)


@pytest.mark.parametrize("halo", HALOS)
def test_two_convs_by_hand(halo):
    """Two 3x3 pad-1 convs on 8 rows, strips of 2 rows (derivation in the comments)."""
    C, K, W = 2, 3, 5
    m = Model("two", (conv("a", 1, C, 8, W, K, 3, pad=1), conv("b", 1, K, 8, W, K, 3, pad=1)))
    x, wts = data(m)
    cost, _ = check(m, FusedGroup(0, 1, 2, halo), x, wts)
    # strip s makes b's rows [2s, 2s+2); it needs a's rows [2s-1, 2s+3) clipped to [0, 8):
    # [0,3) [1,5) [3,7) [5,8) = 14 rows (recompute), and those need x's rows
    # [0,4) [0,6) [2,8) [4,8) = 20 rows; with cache every row once: 8 and 8
    ra, rb = K * W * C * 9, K * W * K * 9
    a_rows, x_rows = (14, 20) if halo == "recompute" else (8, 8)
    assert cost.macs == a_rows * ra + 8 * rb
    assert cost.act_read_bytes == x_rows * C * W
    assert cost.weight_read_bytes == (C + K) * K * 9
    assert cost.write_bytes == 8 * K * W
    # recompute, strip 1 (the fullest): a's step holds x [0,6) and a [1,5); b's step holds
    # a [1,5) and b [2,4) (x was freed: nobody reads it again in the strip)
    # cache keeps the halos of x too: strip 1's a step holds x [0,6) ([0,4) kept, [4,6)
    # loaded) and a [1,5) ([1,3) kept, [3,5) made); its b step x [2,6) (what strip 2
    # reads), a [1,5) and b [2,4)
    act = 6 * C + 4 * K if halo == "recompute" else max(6 * C + 4 * K, 4 * C + 6 * K)
    assert cost.peak_onchip_bytes == act * W + cost.weight_read_bytes


def test_interior_output_read_later_is_written():
    """A group ending before the skip add writes the pool's output (read after the group)
    as well as its last layer's, both exact."""
    m = pool_skip(1, 3, 8, 6, 4)
    x, wts = data(m)
    cost, run = check(m, FusedGroup(0, 3, 1, "recompute"), x, wts)
    assert sorted(run.outputs) == ["conv3", "pool"]
    assert cost.write_bytes == 2 * 4 * 4 * 3


@pytest.mark.parametrize("halo", HALOS)
def test_group_inside_network_reads_earlier_output(halo):
    """A group starting mid-network reads the earlier layer's output from DRAM ("inputs")."""
    m = mobilenet_blocks(2, 2, 7, 4, 2, 3)
    full = reference_outputs(m, FusedGroup(0, 6, 1), *data(m))
    _, wts = data(m)
    x = {"b1.add": full["b1.add"]}
    cost, run = check(m, FusedGroup(4, 6, 2, halo), x, wts)
    assert np.array_equal(run.outputs["b2.project"], full["b2.project"])


def test_int4_bytes():
    """Half-byte activations: executor and closed form round the same totals."""
    m = resnet_block(1, 3, 5, 3, 2)
    x, wts = data(m)
    g = FusedGroup(0, 3, 1, "cache")
    c = fused_costs(m, g, act_bytes=0.5, weight_bytes=0.5)
    assert run_fused(m, g, x, wts, act_bytes=0.5, weight_bytes=0.5).counts == c
    assert c.act_read_bytes == -(-1 * 3 * 5 * 3 // 2)


def test_executor_catches_a_plan_that_frees_too_early(monkeypatch):
    """The executor reads only what is on chip: a schedule keeping nothing fails."""
    m = resnet_block(1, 2, 6, 3, 2)
    x, wts = data(m)
    real = fused_mod.schedule
    monkeypatch.setattr(fused_mod, "schedule",
                        lambda plan: tuple(replace(s, keep=()) for s in real(plan)))
    with pytest.raises(FusionError, match="not on chip"):
        run_fused(m, FusedGroup(0, 3, 1), x, wts)


@pytest.mark.parametrize("layers, match", [
    ((gap("g", 1, 4, 4, 4),), "op 'gap'"),
    ((fc("f", 1, 4, 4),), "fc layers"),
    ((conv("c", 1, 4, 4, 4, 4, 3, pad=1, activation="sigmoid"),), "activation 'sigmoid'"),
])
def test_unsupported_layers(layers, match):
    with pytest.raises(FusionError, match=f"cannot be fused: {match}"):
        fused_costs(layers, FusedGroup(0, 0, 1))


def test_unused_interior_layer():
    """A layer of the group that no later group layer reads cannot be fused."""
    m = Model("m", (conv("a", 1, 2, 4, 4, 2, 1),
                    replace(conv("b", 1, 2, 4, 4, 2, 1), sources=("",))))
    with pytest.raises(FusionError, match="'a' cannot be fused: no later layer"):
        fused_costs(m, FusedGroup(0, 1, 1))


@pytest.mark.parametrize("kw, match", [
    (dict(first=1, last=0, tile_rows=1), "first <= last"),
    (dict(first=0, last=0, tile_rows=0), "tile_rows"),
    (dict(first=0, last=0, tile_rows=1, halo="keep"), "halo"),
])
def test_bad_group(kw, match):
    with pytest.raises(FusionError, match=match):
        FusedGroup(**kw)


@st.composite
def chains(draw):
    """2-4 layers: convs (stride 1-2, padding 0-2, dilation 1-2, dense / grouped /
    depthwise), max- and avgpools with padding, standalone relu6."""
    n, c, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(4, 12)), \
        draw(st.integers(1, 6))
    layers = []
    for i in range(draw(st.integers(2, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "maxpool", "avgpool", "relu6"]))
        name = f"l{i}"
        if kind == "conv":
            r = draw(st.integers(1, 3))
            groups = draw(st.sampled_from([1, c]))
            k = c if groups > 1 else draw(st.integers(1, 4))
            args = dict(stride=draw(st.integers(1, 2)), pad=draw(st.integers(0, 2)),
                        dilation=draw(st.integers(1, 2)), groups=groups,
                        activation=draw(st.sampled_from([None, "relu", "relu6"])))
            if (h + 2 * args["pad"] - args["dilation"] * (r - 1) - 1) < 0 or \
                    (w + 2 * args["pad"] - args["dilation"] * (r - 1) - 1) < 0:
                break
            layers.append(conv(name, n, c, h, w, k, r, **args))
        elif kind == "relu6":
            layers.append(eltwise(name, "relu6", n, c, h, w, inputs=1))
        else:
            r, pad = draw(st.integers(2, 3)), draw(st.integers(0, 1))
            if r > min(h, w) + 2 * pad:
                break
            layers.append(pool(name, kind, n, c, h, w, r, stride=draw(st.integers(1, 2)),
                               pad=pad))
        last = layers[-1]
        c, h, w = last.K, last.P, last.Q
    return Model("chain", tuple(layers)) if layers else None


@settings(max_examples=40)
@given(m=chains(), rows=st.integers(1, 6), halo=st.sampled_from(HALOS))
def test_layer_chains(m, rows, halo):
    """Chains of convs (any stride, padding, dilation, groups) and pools: bit-exact, exact."""
    if m is None:
        return
    x, wts = data(m, seed=len(m.layers))
    check(m, FusedGroup(0, len(m.layers) - 1, rows, halo), x, wts)


def test_output_read_later_must_be_whole():
    """A group layer read after the group must be computed whole: a 1x1 stride-2 consumer
    needs only a's even rows, so the group cannot be fused."""
    m = Model("m", (conv("a", 1, 2, 7, 4, 2, 1), conv("b", 1, 2, 7, 4, 2, 1, stride=2),
                    replace(conv("c", 1, 2, 7, 4, 2, 1), sources=("a",))))
    with pytest.raises(FusionError, match="'a' cannot be fused: its output rows 1..1 are "
                                          "read after the group"):
        fused_costs(m, FusedGroup(0, 1, 1))
    # one strip: b's rows 0..3 read a's rows 0, 2, 4, 6, and the hull 0..6 is all of a
    x, wts = data(m)
    cost, run = check(m, FusedGroup(0, 1, 4), x, wts)
    assert cost.write_bytes == 2 * 7 * 4 + 2 * 4 * 2   # a: 2 x 7 x 4, b: 2 x 4 x 2
    assert sorted(run.outputs) == ["a", "b"]


def test_unnamed_and_mismatched_inputs():
    """An add that does not name both inputs, or readers disagreeing on a tensor's shape."""
    a = conv("a", 1, 2, 4, 4, 2, 1)
    with pytest.raises(FusionError, match="'add' cannot be fused: .*name every input"):
        fused_costs((a, eltwise("add", "add", 1, 2, 4, 4)), FusedGroup(0, 1, 1))
    b = replace(conv("b", 1, 3, 4, 4, 2, 1), sources=("",))
    add = replace(eltwise("add", "add", 1, 2, 4, 4), sources=("a", "b"))
    with pytest.raises(FusionError, match="'b' cannot be fused: it reads 'the network input' "
                                          "as 3x4x4, another layer as 2x4x4"):
        fused_costs((a, b, add), FusedGroup(0, 2, 1))
