"""`tilesim verify --torch-device`: the reference kernels agree with PyTorch's conv2d
(integers bit-exact via float64, fp32 within the rounding bound), and a wrong reference
is caught."""
from __future__ import annotations

import pytest

from tilesim import arch
from tilesim import workloads
from tilesim.cli import main

pytest.importorskip("torch")
import tilesim.explore.torch_check as tc  # noqa: E402


def _fp32_arch():
    d = arch.load("tpu_v1").to_yaml_dict()
    d["precision"] = {"input": "fp32", "weight": "fp32", "accumulator": "fp32"}
    return arch.from_dict(d)


def test_int8_layers_agree_bit_exactly():
    """int8 x int8 -> int32: torch (float64) equals the reference to the LSB, grouped and
    strided layers included."""
    got = tc.torch_check(workloads.load("mobilenet_v2"), arch.load("tpu_v1"), layers=4)
    assert [c.torch_ok for c in got] == [True] * 4
    assert {c.torch_max_err for c in got} == {0.0}
    assert {c.torch_dtype for c in got} == {"float64 (exact for integers)"}


def test_fp32_layers_agree_within_the_rounding_bound():
    """fp32: torch (TF32 off) agrees within n * 2^-23 * sum|x*w| per output."""
    got = tc.torch_check(workloads.load("resnet18"), _fp32_arch(), layers=3)
    assert all(c.torch_ok for c in got) and {c.torch_dtype for c in got} == {"float32 (TF32 off)"}
    assert max(c.torch_max_err for c in got) < 1e-3


def test_large_layer_is_shrunk_as_verify_shrinks_it():
    """A layer over the MAC budget is checked on verify's shrunk copy, and says so."""
    got = tc.torch_check(workloads.load("vgg16"), arch.load("tpu_v1"), layers=2, max_macs=2e6)
    assert all(c.torch_ok for c in got)
    assert got[1].torch_shape != "full" and "->" in got[1].torch_shape


def test_a_wrong_reference_is_caught(monkeypatch, capsys):
    """If the reference kernel were off by one LSB, the check fails and verify exits 1."""
    real = tc.conv2d_layer
    monkeypatch.setattr(tc, "conv2d_layer", lambda l, x, w: real(l, x, w) + 1)
    got = tc.torch_check(workloads.load("resnet18"), arch.load("tpu_v1"), layers=1)
    assert not got[0].torch_ok and got[0].torch_max_err == 1.0
    assert main(["verify", "--arch", "tpu_v1", "--model", "resnet18", "--layers", "1",
                 "--torch-device", "cpu"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_cli_torch_check_passes(capsys):
    """`tilesim verify --torch-device cpu` prints the torch table and passes."""
    assert main(["verify", "--arch", "tpu_v1", "--model", "resnet18", "--layers", "2",
                 "--torch-device", "cpu"]) == 0
    assert "2/2 layers agree with the reference kernels" in capsys.readouterr().out


def test_cuda_without_a_gpu(capsys):
    """--torch-device cuda without a GPU: exit 2, one clear line."""
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["verify", "--arch", "tpu_v1", "--model", "alexnet", "--layers", "1",
                 "--torch-device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_torch_check_columns_are_documented():
    """Each column of the torch-check table appears in docs/outputs.md."""
    import re
    from pathlib import Path
    doc = (Path(__file__).resolve().parent.parent / "docs" / "outputs.md").read_text()
    documented = set(re.findall(r"`([a-z_<>]+)`", doc))
    got = tc.torch_check(workloads.load("alexnet"), arch.load("tpu_v1"), layers=1)
    assert [c for c in tc.frame(got).columns if c not in documented] == []
