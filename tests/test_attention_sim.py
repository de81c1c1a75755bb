"""Attention's MatMul of two activations in every fidelity: both operands move as
activations (no weight traffic, activation precision), the DES agrees with the cost
model, the executor is bit-exact and the PE model cycle-exact."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import layer_result, make_arch, seed_mapping
from tilesim.sim.cost import mapping_compute_cycles
from tilesim.sim.des.layer import simulate_mac as des_mac
from tilesim.sim.kernels import conv2d_layer
from tilesim.sim.kernels.executor import execute
from tilesim.sim.pe import simulate_mapping
from tilesim.workloads.ir import matmul

B, HEADS, T, D = 2, 3, 7, 5
QK = matmul("qk", B, T, D, T, heads=HEADS)    # (T x D) @ (D x T) per head and image
PV = matmul("pv", B, T, T, D, heads=HEADS)    # (T x T) @ (T x D)


def as_conv(layer):
    """The same loop nest with a shared weight operand (a grouped 1x1 conv)."""
    return dataclasses.replace(layer.nest, weights_are_activations=False, origin="conv")


@pytest.mark.parametrize("layer", [QK, PV], ids=lambda l: l.name)
def test_both_operands_are_activation_traffic(layer):
    """One tile holds everything (64 MiB buffer): DRAM reads are A and B once each, all
    counted as activation bytes at the input precision (int8, while weights are int4),
    no weight bytes; the writes are the output at 1 B."""
    a = make_arch(precision=("int8", "int4", "int32"))
    r = layer_result(seed_mapping(layer.nest, a), a)
    a_elems = B * HEADS * T * (layer.C // HEADS)               # A: rows x reduction
    b_elems = B * HEADS * (layer.C // HEADS) * (layer.K // HEADS)  # B: reduction x cols
    assert (r.dram_read_input_bytes, r.dram_read_weight_bytes) == (a_elems + b_elems, 0)
    assert r.dram_write_bytes == B * layer.K * T and r.macs == layer.macs
    conv = layer_result(seed_mapping(as_conv(layer), a), a)    # the same nest with weights
    assert conv.dram_read_weight_bytes == b_elems // 2          # int4: half a byte each
    assert conv.compute_cycles == r.compute_cycles


@pytest.mark.parametrize("layer", [QK, PV], ids=lambda l: l.name)
@pytest.mark.parametrize("df", ["os", "ws", "is", "rs"])
def test_des_equals_cost_model(layer, df):
    """Unlimited bandwidth: DES cycles equal the cost model's; finite bandwidth: the same
    DRAM bytes, the w operand's counted as activation reads."""
    a = make_arch(rows=4, cols=3, dataflow=df, size="2 KiB")
    m = seed_mapping(layer.nest, a)
    assert des_mac(m, a).total_cycles == layer_result(m, a).total_cycles
    b = make_arch(rows=4, cols=3, dataflow=df, size="2 KiB", bandwidth="3 B/cycle")
    r, c = des_mac(m, b), layer_result(m, b)
    assert (r.dram_read_input_bytes, r.dram_read_weight_bytes, r.dram_write_bytes) == \
        (c.dram_read_input_bytes, 0, c.dram_write_bytes)
    assert r.dram_read_input_bytes == m.traffic.read_input + m.traffic.read_weight


def operands(layer, rng):
    """Q, K, V-like tensors per image and head, laid out as the layer's input (N, C, 1, W)
    and its shared-weight nest's w operand (N*K, C/groups, 1, 1)."""
    red, cols = layer.C // HEADS, layer.K // HEADS
    a = rng.integers(-128, 128, (B, HEADS, T, red), dtype=np.int8)      # rows x red
    b = rng.integers(-128, 128, (B, HEADS, red, cols), dtype=np.int8)   # red x cols
    x = a.transpose(0, 1, 3, 2).reshape(B, HEADS * red, 1, T)           # x[n, h*red + c, 0, t]
    w = b.transpose(0, 1, 3, 2).reshape(B * HEADS * cols, red, 1, 1)     # w[(n*H + h)*cols + j, c]
    want = np.einsum("nhtc,nhcj->nhtj", a.astype(np.int32), b.astype(np.int32))
    want = want.transpose(0, 1, 3, 2).reshape(B, HEADS * cols, 1, T)    # out[n, h*cols + j, 0, t]
    return x, w, want


@pytest.mark.parametrize("layer", [QK, PV], ids=lambda l: l.name)
@pytest.mark.parametrize("df", ["os", "ws", "is", "rs"])
@pytest.mark.parametrize("size", ["64 MiB", "512 B"])
def test_executor_bit_exact(layer, df, size):
    """The executor runs the mapping of the folded nest and matches the reference kernel
    bit for bit, and both equal A @ B per image and head (einsum), at one tile (64 MiB)
    and at many (512 B: the operands split across tiles)."""
    a = make_arch(rows=4, cols=3, dataflow=df, size=size)
    m = seed_mapping(layer.nest, a)
    x, w, want = operands(layer, np.random.default_rng(1))
    xf = x.reshape(1, -1, 1, T)                    # the nest's input: same bytes
    ref = conv2d_layer(layer.nest, xf, w)
    ex = execute(m, xf, w)
    assert np.array_equal(ex.output, ref)
    assert np.array_equal(ref.reshape(want.shape), want)
    if size == "512 B":
        assert ex.tiles > 1


@pytest.mark.parametrize("layer", [QK, PV], ids=lambda l: l.name)
@pytest.mark.parametrize("df", ["os", "ws", "is", "rs"])
@pytest.mark.parametrize("count", [1, 2])
def test_pe_model_cycle_exact(layer, df, count):
    """The register-level PE model computes A @ B exactly and in exactly the cost model's
    compute cycles."""
    a = make_arch(rows=4, cols=3, dataflow=df, count=count)
    m = seed_mapping(layer.nest, a)
    x, w, want = operands(layer, np.random.default_rng(2))
    out, r = simulate_mapping(m, x.reshape(1, -1, 1, T), w)
    assert np.array_equal(out.reshape(want.shape), want)
    assert r.last_cycle == mapping_compute_cycles(m, a) == layer_result(m, a).compute_cycles


def test_vit_attention_layers_verify():
    """`verify` on a ViT block's attention MatMuls (batch 2): executor and PE model agree."""
    from tilesim import arch
    from tilesim.sim.verify import verify_model
    from tilesim.workloads.ir import Model
    from tilesim.workloads.zoo import vit_b_16
    # taken out of the network: their sources (layers not in the sub-model) cleared
    mm = tuple(dataclasses.replace(l, sources=()) for l in vit_b_16(2).layers if l.kind == "matmul")[:2]
    res = verify_model(Model("vit_attention", mm, batch=2), arch.load("tpu_v1"))
    assert [c.layer for c in res.checks] == [l.name for l in mm]
    assert all(c.exec_ok and c.tiles_fit for c in res.checks)
    assert all(c.pe_ok for c in res.checks if c.pe_cycles is not None)
    assert any(c.pe_cycles is not None for c in res.checks)
