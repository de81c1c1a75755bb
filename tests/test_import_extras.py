"""Model import without the optional extras: errors name the extra to install."""
from __future__ import annotations

import sys

import pytest

from tilesim import workloads
from tilesim.cli import main
from tilesim.workloads.errors import WorkloadError


def test_onnx_missing_names_the_extra(monkeypatch, tmp_path):
    """Without onnx, reading an .onnx file says `pip install 'tilesim[onnx]'`."""
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    p = tmp_path / "m.onnx"
    p.write_bytes(b"\x08\x07")
    with pytest.raises(WorkloadError, match=r"needs the onnx package.*pip install 'tilesim\[onnx\]'"):
        workloads.load(p)


def test_torch_missing_names_the_extra(monkeypatch, tmp_path, capsys):
    """Without torch, a file.py:factory model says `pip install 'tilesim[torch]'` (exit code 2)."""
    monkeypatch.setitem(sys.modules, "torch", None)
    p = tmp_path / "net.py"
    p.write_text("def build():\n    return None\n")
    with pytest.raises(WorkloadError, match=r"needs the torch package.*pip install 'tilesim\[torch\]'"):
        workloads.load(f"{p}:build", input_shape="1x3x8x8")
    assert main(["run", "--arch", "tpu_v1", "--model", f"{p}:build", "--input-shape",
                 "1x3x8x8"]) == 2
    assert "tilesim[torch]" in capsys.readouterr().err


def test_input_shape_only_for_imported_models(capsys):
    """--input-shape with a zoo model is refused rather than silently ignored."""
    with pytest.raises(WorkloadError, match="only for ONNX and PyTorch models, not 'resnet18'"):
        workloads.load("resnet18", input_shape="1x3x224x224")
    assert main(["run", "--arch", "tpu_v1", "--model", "resnet18", "--input-shape",
                 "1x3x224x224"]) == 2


def test_not_a_model_object():
    """An object that is neither a path, a ModelProto nor an nn.Module is a WorkloadError."""
    with pytest.raises(WorkloadError, match="cannot read a model from a dict"):
        workloads.load({"layers": []})


def test_activation_vocabulary_is_closed():
    """Every activation an importer can emit is a known kind that can also stand alone."""
    from tilesim.workloads.graph import ACTIVATIONS
    from tilesim.workloads.ir import OP_KINDS
    from tilesim.workloads.onnx_import import _ACTS
    from tilesim.workloads.torch_import import _ACT_FUNCS, _ACT_MODULES
    assert set(ACTIVATIONS) <= set(OP_KINDS)
    emitted = set(_ACTS.values()) | set(_ACT_MODULES.values()) | set(_ACT_FUNCS.values())
    assert emitted | {"relu6", "clip"} <= set(ACTIVATIONS)
