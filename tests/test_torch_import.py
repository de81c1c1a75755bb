"""PyTorch import: zoo round trips from torch modules, the ONNX fallback, factories and errors."""
from __future__ import annotations

import dataclasses

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from tilesim import workloads  # noqa: E402
from tilesim.cli import main  # noqa: E402
from tilesim.workloads.errors import WorkloadError  # noqa: E402
from tilesim.workloads.torch_import import read_torch  # noqa: E402
from tilesim.workloads.zoo import ZOO  # noqa: E402
from zoo_torch import BUILDERS, INPUT  # noqa: E402


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_zoo_round_trip(name):
    """Each zoo network written as a torch module imports to the zoo's layers, names included."""
    with torch.device("meta"):
        net = BUILDERS[name]()
    m = read_torch(net, INPUT[name], batch=2)
    zoo = ZOO[name](2)
    assert m.layers == zoo.layers
    assert (m.macs, m.params) == (zoo.macs, zoo.params)
    assert m.params == sum(p.numel() for p in net.parameters())  # the module's own count


def test_module_is_not_changed():
    """Import runs on meta tensors: the module keeps its device, weights and mode."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    m = read_torch(net, (1, 3, 8, 8))
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    (l,) = m.layers
    assert (l.name, l.batchnorm, l.activation, l.P) == ("0", True, "relu", 6)


class _ControlFlow(nn.Module):
    """A forward that torch.fx cannot trace (Python branch on a tensor value)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        if x.sum() > 1e30:
            return self.net(x) * 2
        return self.net(x)


@pytest.mark.slow  # a PyTorch -> ONNX export
def test_untraceable_module_goes_through_onnx():
    """When fx tracing fails, torch.onnx export is read instead: same layers (names aside)."""
    pytest.importorskip("onnx")
    # seeded: an unseeded init can draw an exact 0.0 among the classifier's 1.28 M
    # weights (uniform floats on a 2^-24 grid: about 1.28 M x 2^-24, 7 % of runs; one
    # failed run seen), and the ONNX path counts it (a weight density below 1)
    torch.manual_seed(0)
    net = BUILDERS["mobilenet_v2"]().eval()
    m = read_torch(_ControlFlow(net), (1, 3, 224, 224))
    strip = lambda layers: [dataclasses.replace(l, name="") for l in layers]  # noqa: E731
    assert strip(m.layers) == strip(ZOO["mobilenet_v2"](1).layers)
    assert m.source.endswith("(via onnx)") and m.params == 3_504_872


def test_functional_ops_and_pass_through():
    """Functional ops map like modules; unsupported modules are listed by path, or passed through."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding="same")
            self.up = nn.ConvTranspose2d(8, 8, 2, 2)
            self.head = nn.Linear(8, 5)

        def forward(self, x):
            y = torch.nn.functional.silu(self.conv(x))
            y = torch.cat([y, torch.relu(y)], dim=1)[:, :8]
            y = self.up(y)
            y = y.mean((2, 3))
            return self.head(y)

    with pytest.raises(WorkloadError) as e:
        read_torch(Net(), "1x3x16x16")
    # the slice [:, :8] (getitem) is a free view, not an unsupported op
    assert "ConvTranspose2d ('up')" in str(e.value) and "getitem" not in str(e.value)
    with pytest.warns(UserWarning, match="pass-through"):
        m = read_torch(Net(), "1x3x16x16", allow_unsupported=True)
    kinds = [(l.name, l.kind) for l in m.layers]
    assert kinds == [("conv", "conv"), ("relu", "relu"), ("cat", "concat"), ("mean", "gap"),
                     ("head", "fc")]
    conv, relu, cat, gap, head = m.layers
    assert conv.activation == "swish" and (conv.P, conv.padding) == (16, (1, 1))
    assert (cat.C, cat.K, gap.C, gap.H) == (8, 16, 8, 32)  # after the free ConvTranspose2d


def test_factory_from_cli(tmp_path, capsys):
    """`--model file.py:factory --input-shape` runs like a zoo name."""
    src = tmp_path / "mynet.py"
    src.write_text("import sys\nsys.path.insert(0, %r)\nfrom zoo_torch import resnet18\n\n"
                   "def build():\n    return resnet18()\n" % str(__import__("zoo_torch").__file__
                                                             .rsplit("/", 1)[0]))
    args = ["run", "--arch", "tpu_v1", "--batch", "2", "--quiet"]
    assert main(args + ["--model", f"{src}:build", "--input-shape", "1x3x224x224"]) == 0
    out = capsys.readouterr().out
    assert main(args + ["--model", "resnet18"]) == 0
    assert out == capsys.readouterr().out
    m = workloads.load(f"{src}:build", input_shape="1x3x224x224")
    # the random weights' zeros are counted (a float32 init can draw an exact 0.0)
    counted = [l.sparsity for l in m.layers if getattr(l, "sparsity", None) is not None]
    assert all(s.counted and s.weight > 0.999 for s in counted)
    plain = tuple(replace(l, sparsity=None) if hasattr(l, "sparsity") else l for l in m.layers)
    assert (m.name, plain) == ("mynet", ZOO["resnet18"](1).layers)


@pytest.mark.parametrize("body, spec_fn, shape, match", [
    ("def build():\n    return 3\n", "build", "1x3x8x8", "returned a int, not a torch.nn.Module"),
    ("def build():\n    raise RuntimeError('boom')\n", "build", "1x3x8x8", "build\\(\\) failed: RuntimeError: boom"),
    ("import nonexistent_pkg\n", "build", "1x3x8x8", "importing the file failed: ModuleNotFoundError"),
    ("def build():\n    pass\n", "make", "1x3x8x8", "defines no function 'make'"),
    ("import torch\ndef build():\n    return torch.nn.Conv2d(3, 4, 3)\n", "build", None,
     "needs an input shape.*--input-shape"),
    ("import torch\ndef build():\n    return torch.nn.Conv2d(3, 4, 3)\n", "build", "1x5x8x8",
     "running the traced module on an input of shape 1x5x8x8 failed"),
])
def test_factory_errors(tmp_path, capsys, body, spec_fn, shape, match):
    """Bad factories give one clear line (exit code 2) naming the file."""
    src = tmp_path / "f.py"
    src.write_text(body)
    with pytest.raises(WorkloadError, match=match) as e:
        workloads.load(f"{src}:{spec_fn}", input_shape=shape)
    assert "f.py" in str(e.value) and "Fix:" in str(e.value)
    args = ["run", "--arch", "tpu_v1", "--model", f"{src}:{spec_fn}"]
    assert main(args + (["--input-shape", shape] if shape else [])) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_missing_file_and_batch_conflict(tmp_path):
    """A factory path that does not exist, and an input batch that contradicts --batch."""
    with pytest.raises(WorkloadError, match="no such Python file"):
        workloads.load(f"{tmp_path}/none.py:build", input_shape="1x3x8x8")
    with pytest.raises(WorkloadError, match="says batch 4, but the batch is 2"):
        read_torch(nn.Conv2d(3, 4, 3), "4x3x8x8", batch=2)
    m = read_torch(nn.Conv2d(3, 4, 3), (4, 3, 8, 8), batch=4)  # a bare layer works too
    assert (m.layers[0].name, m.layers[0].N, m.layers[0].P, m.batch) == ("conv2d", 4, 6, 4)


def test_api_simulate_takes_a_module():
    """tilesim.simulate accepts an nn.Module with input_shape and matches the zoo model's result."""
    import tilesim
    with torch.device("meta"):
        net = BUILDERS["yolo_tiny"]()
    r = tilesim.simulate("edge_tpu_like", net, input_shape=(1, 3, 416, 416))
    z = tilesim.simulate("edge_tpu_like", "yolo_tiny")
    assert r.summary() == z.summary() | {"model": "_Seq"}  # named after the module's class
    with pytest.raises(WorkloadError, match="needs an input shape"):
        tilesim.load_model(net)


def test_factory_imports_its_neighbours(tmp_path):
    """A factory file can import modules next to it and define dataclasses, as a script can;
    sys.path and sys.modules are restored afterwards."""
    import sys
    (tmp_path / "blocks.py").write_text("import torch\n\ndef stem():\n"
                                        "    return torch.nn.Conv2d(3, 8, 3, 2, 1)\n")
    (tmp_path / "net.py").write_text(
        "import dataclasses\nimport torch\nfrom blocks import stem\n\n"
        "@dataclasses.dataclass\nclass Cfg:\n    width: int = 8\n\n"
        "def build():\n    return torch.nn.Sequential(stem(), torch.nn.ReLU())\n")
    path_before, mods_before = list(sys.path), set(sys.modules)
    m = workloads.load(f"{tmp_path / 'net.py'}:build", input_shape="1x3x32x32")
    assert [(l.name, l.P, l.activation) for l in m.layers] == [("0", 16, "relu")]
    assert sys.path == path_before
    assert {n for n in set(sys.modules) - mods_before if n.startswith("_tilesim")} == set()


def test_bias_parameter_add_fuses_scalar_does_not():
    """A learned bias vector added after a bias-free Linear is its bias; `+ 1.0` stays an add."""

    class Net(nn.Module):
        def __init__(self, k):
            super().__init__()
            self.fc = nn.Linear(6, k, bias=False)
            self.b = nn.Parameter(torch.zeros(k))

        def forward(self, x):
            return self.fc(x) + self.b

    (fc,) = read_torch(Net(4), (1, 6)).layers
    assert (fc.bias, fc.params) == (True, 6 * 4 + 4)

    class Scalar(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 1, bias=False)

        def forward(self, x):
            return self.fc(x) + 1.0

    fc, add = read_torch(Scalar(), (1, 6)).layers
    assert (fc.bias, add.op, add.inputs, add.ops) == (False, "add", 2, 1)


def test_untraceable_and_unexportable_is_clear():
    """A module neither fx nor the ONNX exporter can handle gives one error naming both causes."""
    pytest.importorskip("onnx")

    class Picky(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            if x.abs().sum() == 0:
                raise ValueError("refuses an all-zero input")
            return self.conv(x)

    with pytest.raises(WorkloadError, match=r"torch\.fx cannot trace the module \(TraceError.*"
                                            r"torch\.onnx\.export failed too \(ValueError: "
                                            r"refuses an all-zero input\)") as e:
        read_torch(Picky(), (1, 3, 8, 8))
    assert "Fix: make the forward traceable" in str(e.value)
