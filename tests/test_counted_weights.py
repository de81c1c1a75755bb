"""Zeros of real weights are counted on import, whatever the tensor's size: an N:M
structure when the weights fill it, else their share of non-zeros
(workloads.sparsity.counted, NM_FILL)."""
from __future__ import annotations

import io

import numpy as np
import pytest

from tilesim.workloads.sparsity import NM_FILL, counted, nm_kept


def _nm_pruned(rng, k, red, n, m):
    w = rng.integers(1, 100, (k, red)) * rng.choice([-1, 1], (k, red))
    for b in range(0, red, m):
        blen = min(m, red - b)
        for f in range(k):
            w[f, b + rng.choice(blen, blen - min(n, blen), replace=False)] = 0
    return w


def test_random_zeros_are_a_density_not_a_structure():
    """30 % random non-zeros: the densest block of 16 holds several non-zeros (an N:16
    with N < 16 would fit), but that structure's kept values would be mostly zeros, so
    the count is the unstructured share."""
    rng = np.random.default_rng(0)
    w = rng.integers(1, 100, (32, 288)) * (rng.random((32, 288)) < 0.3)
    s = counted(w)
    assert s.nm is None and s.weight == np.count_nonzero(w) / w.size


def test_pruned_nm_with_a_few_quantized_zeros_stays_nm():
    rng = np.random.default_rng(1)
    w = _nm_pruned(rng, 16, 72, 2, 4)
    assert counted(w).nm == (2, 4)
    kept = np.flatnonzero(w)
    # zero the kept values down to NM_FILL of the structure: still 2:4; one more: density
    z = len(kept) - int(np.ceil(NM_FILL * 16 * nm_kept(72, 2, 4)))
    w[np.unravel_index(kept[:z], w.shape)] = 0
    assert counted(w).nm == (2, 4)
    w[np.unravel_index(kept[z], w.shape)] = 0
    s = counted(w)
    assert s.nm is None and s.weight == np.count_nonzero(w) / w.size


def test_onnx_weights_of_any_size_are_counted():
    """The importer counts initializers before it drops large payloads: a 2:4-pruned conv
    of 4,608 weights and a 30 %-dense fc of 20,480 are counted."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from tilesim.workloads.onnx_import import read_onnx
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(32 * 8 * 8, 10))
    rng = np.random.default_rng(2)
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(
            _nm_pruned(rng, 32, 144, 2, 4).reshape(32, 16, 3, 3).astype(np.float32)))
        fc = (rng.random((10, 2048)) < 0.3) * rng.standard_normal((10, 2048))
        net[3].weight.copy_(torch.from_numpy(fc.astype(np.float32)))
    buf = io.BytesIO()
    torch.onnx.export(net, torch.randn(1, 16, 8, 8), buf, dynamo=False)
    conv, lin = read_onnx(buf.getvalue()).mac_layers
    assert conv.sparsity.nm == (2, 4) and conv.sparsity.counted
    assert lin.sparsity.nm is None and lin.sparsity.counted
    assert lin.sparsity.weight == np.count_nonzero(fc.astype(np.float32)) / fc.size
