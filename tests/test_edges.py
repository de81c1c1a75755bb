"""The layer graph (sources): zoo edges fit, the importers find them, bad edges are refused."""
from __future__ import annotations

import dataclasses
import math

import pytest

from tilesim.cli import main
from tilesim.workloads import NETWORK_INPUT, Model, layer_sources, load
from tilesim.workloads.errors import WorkloadError
from tilesim.workloads.families import families
from tilesim.workloads.graph import GNode, lower
from tilesim.workloads.ir import MacLayer, OpLayer, conv, eltwise, fc, matmul
from tilesim.workloads.zoo import ZOO

#: the network input's (C, H, W), from the published input sizes
INPUT = {name: (3, 224, 224) for name in ZOO} | {
    "yolo_tiny": (3, 416, 416), "efficientnet_b1": (3, 240, 240),
    "efficientnet_b2": (3, 288, 288), "efficientnet_b3": (3, 300, 300)}
#: the few layers that read a slice of their source: ViT's head reads the class token,
#: one of the final LayerNorm's 197 rows
SLICE = {("vit_b_16", "heads.head"): 197}
#: vector ops whose operands are interchangeable (an importer keeps the graph's order)
COMMUTATIVE = ("add", "mul")
#: layers that write in (positions, features) order: a MAC over positions (fc over H x W,
#: matmul), a feature-axis op, a permute (written in its input's view). A reader in the
#: (C, H, W) order of the other view sees the same dimensions in another order.
FEATURES_LAST = ("fc", "matmul", "layernorm", "softmax", "transpose")


def out_shape(layer) -> tuple:
    return (layer.K, layer.P, layer.Q)


def in_shape(layer) -> tuple:
    return (layer.C, layer.H, layer.W)


def graph(model):
    """(layer by name, resolved sources per layer, shape of a tensor by producer name)."""
    by = {l.name: l for l in model.layers}
    net_in = INPUT.get(model.name, in_shape(model.layers[0]))
    shape = lambda s: net_in if s == NETWORK_INPUT else out_shape(by[s])
    return by, layer_sources(model), shape


def same_tensor(src_shape, src_layer, want) -> bool:
    """``src_shape`` is ``want``, exactly or (a features-last writer) up to the order."""
    if tuple(src_shape) == tuple(want):
        return True
    return (src_layer is not None and src_layer.kind in FEATURES_LAST
            and sorted(src_shape) == sorted(want))


def zoo_models():
    return [pytest.param(name, b, id=f"{name}-b{b}") for name in sorted(ZOO) for b in (1, 2)]


def check_graph(model) -> None:
    """The invariants of a zoo model's layer graph (see the tests below)."""
    by, srcs, shape = graph(model)
    seen = {NETWORK_INPUT}
    for l, ss in zip(model.layers, srcs):
        assert l.sources, f"{l.name}: no explicit sources"
        named = [s for s in ss if s is not None]
        assert all(s in seen for s in named), (l.name, ss)
        # a None is a constant operand counted in ``inputs`` (layer scale, position
        # embedding, class token), the op's params; never an activation
        nones = len(ss) - len(named)
        assert nones == 0 or (isinstance(l, OpLayer) and l.params > 0 and nones == 1
                              and ss[-1] is None), (l.name, ss)
        seen.add(l.name)
        if isinstance(l, MacLayer) and l.kind in ("conv", "depthwise", "grouped", "pointwise"):
            (s,) = ss
            assert same_tensor(shape(s), by.get(s), in_shape(l)), (l.name, s)
        elif isinstance(l, MacLayer) and l.kind == "fc":
            (s,) = ss
            per = l.C * l.H * l.W * SLICE.get((model.name, l.name), 1)
            assert math.prod(shape(s)) == per, (l.name, s, shape(s))
        elif isinstance(l, MacLayer):   # matmul: each operand a slice of its source or all
            a, b = ss
            assert math.prod(shape(a)) >= l.C * l.W and \
                math.prod(shape(b)) >= l.weight_elems // l.N, l.name
        elif l.op == "add":
            assert len(named) == l.inputs - (1 if l.params else 0) >= 1
            for s in named:
                assert same_tensor(shape(s), by.get(s), in_shape(l)), (l.name, s)
        elif l.op == "mul":   # the tensor it scales, then the scale (broadcast) if any
            assert same_tensor(shape(ss[0]), by.get(ss[0]), in_shape(l)), l.name
            for s in named[1:]:
                assert shape(s) in (in_shape(l), (l.C, 1, 1)), (l.name, s)
        elif l.op == "concat":   # channels add up: in elements, as the views differ
            const = l.params   # the class token: the rest of the elements
            assert sum(math.prod(shape(s)) for s in named) + const == l.K * l.H * l.W
        else:   # one input, read whole (pools, gap, layernorm, softmax, permutes)
            (s,) = ss
            assert math.prod(shape(s)) == l.C * l.H * l.W, (l.name, s)
    readers = {s for ss in srcs for s in ss}
    unread = [l.name for l in model.layers if l.name not in readers]
    assert unread == [model.layers[-1].name]   # the network's one output: the last layer
    assert [l.name for l, ss in zip(model.layers, srcs) if NETWORK_INPUT in ss] == \
        [model.layers[0].name]   # only the first layer reads the network input


@pytest.mark.parametrize("name, batch", zoo_models())
def test_zoo_graph(name, batch):
    """Every zoo layer names its sources: earlier layers (or the network input, read by the
    first layer only) whose outputs have the shape it reads (a conv's source writes its
    (C, H, W), an fc's its C x H x W elements, an add's its per-input shape, a concat's
    add up to its K channels); a None only for a constant operand; every output but the
    last layer's (the network output) is read."""
    check_graph(ZOO[name](batch))


def test_family_variants_graph():
    """The parametric families (every published variant: widths, depths, resolutions)
    keep a consistent graph."""
    for f in families().values():
        for v in f.variants:
            m = v.build(2)
            INPUT.setdefault(m.name, (3, m.layers[0].H, m.layers[0].W))
            check_graph(m)


def block_input(model, prefix):
    """The tensor a block starts from: the output of the layer before its first layer."""
    names = [l.name for l in model.layers]
    i = next(i for i, n in enumerate(names) if n.startswith(prefix + "."))
    return names[i - 1]


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large",
                                  "efficientnet_b0", "convnext_tiny"])
def test_residuals_read_main_branch_and_shortcut(name):
    """A residual add reads (its block's last MAC layer or layer scale, the shortcut); the
    shortcut is the block input, or the block's downsample, which reads the block input."""
    m = ZOO[name](1)
    by, srcs, _ = graph(m)
    adds = [(l, ss) for l, ss in zip(m.layers, srcs) if l.kind == "add"]
    assert adds
    for add, (main, short) in adds:
        prefix = add.name.removesuffix(".add")
        block = [l.name for l in m.layers if l.name.startswith(prefix + ".")
                 and l.name != add.name and ".downsample." not in l.name]
        assert main == block[-1]
        ds = f"{prefix}.downsample.0"
        if ds in by:
            assert short == ds and srcs[m.layers.index(by[ds])] == (block_input(m, prefix),)
        else:
            assert short == block_input(m, prefix)


def test_se_and_attention_edges():
    """SE's mul scales the depthwise output by the gate; attention's MatMuls read the
    in-projection (q, k, v are its slices) and the softmax."""
    m = ZOO["efficientnet_b0"](1)
    src = dict(zip((l.name for l in m.layers), layer_sources(m)))
    p = "features.2.0.block"
    assert src[f"{p}.2.mul"] == (f"{p}.1.0", f"{p}.2.fc2")
    assert src[f"{p}.2.avgpool"] == (f"{p}.1.0",)
    v = ZOO["vit_b_16"](1)
    src = dict(zip((l.name for l in v.layers), layer_sources(v)))
    a = "encoder.layers.encoder_layer_3.self_attention"
    assert src[f"{a}.matmul"] == (f"{a}.in_proj", f"{a}.in_proj")
    assert src[f"{a}.matmul_1"] == (f"{a}.softmax", f"{a}.in_proj")
    assert src["encoder.layers.encoder_layer_3.add"] == (
        f"{a}.out_proj", "encoder.layers.encoder_layer_2.add_1")
    assert src["cat"] == ("permute", None) and src["encoder.add"] == ("cat", None)


# ---- importers -------------------------------------------------------------------------
def same_edges(imported, zoo) -> None:
    """The importer's resolved sources equal the zoo's, layer by layer (the layers are the
    zoo's, names included); add and mul operands as a multiset."""
    assert imported.layers == zoo.layers
    for l, a, b in zip(zoo.layers, layer_sources(imported), layer_sources(zoo)):
        if l.kind in COMMUTATIVE:
            a, b = sorted(a, key=str), sorted(b, key=str)
        assert a == b, (l.name, a, b)


def _torch_builders():
    pytest.importorskip("torch")
    from zoo_torch import BUILDERS, INPUT as SHAPES
    from zoo_torch_vision import BUILDERS as VISION
    return BUILDERS | VISION, SHAPES | {n: (1, 3, 224, 224) for n in VISION}


@pytest.mark.parametrize("name", ["alexnet", "resnet18", "resnet50", "mobilenet_v2",
                                  "efficientnet_b0", "yolo_tiny", "convnext_tiny",
                                  "vit_b_16"])
def test_torch_import_finds_the_zoo_edges(name):
    """A torch module of the network imports with the zoo's edges (fused BN / activations,
    flatten, permutes, q/k/v slices and the attention scale resolved to their layers)."""
    torch = pytest.importorskip("torch")
    from tilesim.workloads.torch_import import read_torch
    builders, shapes = _torch_builders()
    with torch.device("meta"):
        net = builders[name]()
    same_edges(read_torch(net, shapes[name], batch=2), ZOO[name](2))


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small",
                                  "efficientnet_b0", "yolo_tiny", "convnext_tiny", "vit_b_16"])
def test_onnx_import_finds_the_zoo_edges(name):
    """An ONNX graph of the network imports with the zoo's edges: tests/zoo_onnx.py wires
    residuals and SE from the zoo's layer names (not from its sources),
    tests/zoo_onnx_vision.py writes ConvNeXt-T and ViT-B/16 node by node."""
    pytest.importorskip("onnx")
    from zoo_onnx import zoo_to_onnx
    from zoo_onnx_vision import BUILDERS
    from tilesim.workloads.onnx_import import read_onnx
    zoo = ZOO[name](2)
    proto = BUILDERS[name]() if name in BUILDERS else zoo_to_onnx(zoo)
    same_edges(read_onnx(proto, batch=2), zoo)


def _conv_node(name, x, out, k=4):
    return GNode(name, "conv", [x], out, {"K": k, "R": 3, "S": 3, "stride": (1, 1),
                                          "pads": (1, 1, 1, 1), "dilation": (1, 1),
                                          "groups": 1, "bias": False})


def test_lower_resolves_views_fusions_and_constants():
    """lower: a view of the graph input reads ""; a BatchNorm, activation and pad fold
    into their layer (readers name that layer); a constant operand is no source."""
    s4 = (1, 4, 8, 8)
    nodes = [GNode("view", "free", ["x"], "xv"),
             _conv_node("c1", "xv", "t1"),
             GNode("bn", "bn", ["t1"], "t2"),
             GNode("relu", "act", ["t2"], "t3", {"kind": "relu"}),
             GNode("res", "add", ["t3", "x"], "t4"),
             GNode("scale", "mul", ["t4"], "t5", {"params": 4}, consts=[(1, 4, 1, 1)]),
             GNode("pad", "pad", ["t5"], "t6", {"pads": (1, 1, 1, 1)}),
             GNode("c2", "conv", ["t6"], "t7", {"K": 4, "R": 3, "S": 3, "stride": (1, 1),
                                                "pads": (0, 0, 0, 0), "dilation": (1, 1),
                                                "groups": 1, "bias": False}),
             GNode("flat", "free", ["t7"], "t8"),
             GNode("fc", "linear", ["t8"], "t9", {"K": 10, "C": 256, "bias": True})]
    shapes = {t: s4 for t in ("x", "xv", "t1", "t2", "t3", "t4", "t5", "t7")} | {
        "t6": (1, 4, 10, 10), "t8": (1, 256), "t9": (1, 10)}
    m = lower(nodes, shapes, ["t9"], "g", 1, "test")
    assert [l.name for l in m.layers] == ["c1", "res", "scale", "c2", "fc"]
    assert m.layers[0].batchnorm and m.layers[0].activation == "relu"
    assert m.layers[3].padding == (1, 1)
    assert [l.sources for l in m.layers] == [("",), ("c1", ""), ("res",), ("scale",), ("c2",)]
    assert layer_sources(m)[2] == ("res", None)   # the constant: no producer


# ---- validation ------------------------------------------------------------------------
def _net(*extra):
    a = conv("a", 1, 3, 8, 8, 4, 3, pad=1, sources=("",))
    b = conv("b", 1, 4, 8, 8, 4, 3, pad=1, sources=("a",))
    return Model("m", (a, b) + extra)


@pytest.mark.parametrize("layer, words", [
    (eltwise("x", "add", 1, 4, 8, 8, sources=("b", "nope")),
     ["model 'm'", "layer 'x'", "'nope'", "no layer of the model writes", "Fix:",
      "sources=()"]),
    (eltwise("x", "add", 1, 4, 8, 8, sources=("b", "x")),
     ["layer 'x'", "'x'", "its own output", "Fix: name an earlier layer"]),
    (eltwise("x", "add", 1, 4, 8, 8, sources=("b", "a", "a")),
     ["layer 'x' (add)", "3 sources", "reads 2 tensors", "Fix: name at most 2"]),
    (conv("x", 1, 4, 8, 8, 4, 3, pad=1, sources=("a", "b")),
     ["layer 'x' (conv)", "2 sources", "reads 1 tensor", "Fix: name at most 1 source"]),
    (matmul("x", 1, 8, 4, 8, sources=("a", "b", "a")),
     ["layer 'x' (matmul)", "reads 2 tensors"]),
])
def test_bad_sources_are_refused(layer, words):
    """Model refuses a source that is no layer, the layer itself, or more sources than the
    layer reads, naming the model, the layer, the source and a fix."""
    with pytest.raises(WorkloadError) as e:
        _net(layer)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_forward_reference_is_refused():
    """A source that is a later layer is refused (a layer reads only layers above it)."""
    c = conv("c", 1, 4, 8, 8, 4, 3, pad=1, sources=("d",))
    d = conv("d", 1, 4, 8, 8, 4, 3, pad=1, sources=("a",))
    with pytest.raises(WorkloadError, match="layer 'c' .*reads 'd', a later layer's output"):
        _net(c, d)
    assert _net(d, dataclasses.replace(c, sources=("d",))).layers[-1].sources == ("d",)


def test_sources_are_names():
    """sources is a tuple of names: a list becomes a tuple, text or a number is refused."""
    assert conv("c", 1, 3, 8, 8, 4, 3, sources=["", ]).sources == ("",)
    with pytest.raises(WorkloadError, match="not a list of layer names"):
        fc("f", 1, 4, 4, sources="a")
    with pytest.raises(WorkloadError, match="source 3 is not a layer name"):
        fc("f", 1, 4, 4, sources=("a", 3))


def test_sources_are_not_part_of_the_shape():
    """Two layers differing only in sources compare and hash equal (the mappers' caches key
    layers by shape), and so do their models; layer_sources tells them apart."""
    a = conv("c", 1, 4, 8, 8, 4, 3, pad=1)
    b = dataclasses.replace(a, sources=("x",))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    o1, o2 = eltwise("o", "add", 1, 4, 8, 8), eltwise("o", "add", 1, 4, 8, 8, sources=("x", "c"))
    assert o1 == o2 and hash(o1) == hash(o2)
    x = conv("x", 1, 4, 8, 8, 4, 3, pad=1)
    m1, m2 = Model("m", (x, a, o1)), Model("m", (x, b, o2))
    assert m1 == m2 and hash(m1) == hash(m2)
    assert layer_sources(m1) == (("",), ("x",), ("c", None))
    assert layer_sources(m2) == (("",), ("x",), ("x", "c"))


def test_with_batch_keeps_sources():
    """A model at another batch (api.load_model) keeps its graph."""
    import tilesim
    m = tilesim.load_model(ZOO["resnet18"](1), batch=3)
    assert layer_sources(m) == layer_sources(ZOO["resnet18"](3))


# ---- the YAML table's inputs key -------------------------------------------------------
TABLE = """name: res
layers:
  - {name: conv1, type: conv, C: 3, H: 8, W: 8, K: 4, R: 3, padding: 1}
  - {name: conv2, type: conv, C: 4, H: 8, W: 8, K: 4, R: 3, padding: 1, inputs: conv1}
  - {name: res, type: add, C: 4, H: 8, W: 8, INPUTS}
  - {name: side, type: conv, C: 3, H: 8, W: 8, K: 4, R: 1, inputs: ''}
  - {name: out, type: add, C: 4, H: 8, W: 8, inputs: [res, side, conv1]}
  - {name: gap, type: gap, C: 4, H: 8, W: 8}
"""


def test_yaml_inputs_name_sources(tmp_path):
    """``inputs:`` names a layer's sources (one name, a list, '' the network input); a
    count still works for add / mul; a layer without it reads the previous layer."""
    p = tmp_path / "res.yaml"
    p.write_text(TABLE.replace("INPUTS", "inputs: [conv2, conv1]"))
    m = load(str(p))
    assert layer_sources(m) == (("",), ("conv1",), ("conv2", "conv1"), ("",),
                                ("res", "side", "conv1"), ("out",))
    assert [getattr(l, "inputs", 1) for l in m.layers] == [1, 1, 2, 1, 3, 1]
    p.write_text(TABLE.replace("INPUTS", "inputs: 2"))
    assert layer_sources(load(str(p)))[2] == ("conv2", None)


@pytest.mark.parametrize("inputs, line, words", [
    ("inputs: [conv2, conv9]", 5, ["layers[2].inputs (res)", "'conv9' is no layer",
                                   "did you mean 'conv"]),
    ("inputs: [conv2, side]", 5, ["'side' is a later layer (layers[3])", "move the producer up"]),
    ("inputs: [res, conv1]", 5, ["'res' is the layer itself"]),
    ("inputs: conv2", 5, ["an add reads two or more tensors", "inputs: [conv2, OTHER]"]),
    ("inputs: [conv2, 7]", 5, ["is not a layer name or a list", "quote a name"]),
])
def test_yaml_bad_inputs(tmp_path, capsys, inputs, line, words):
    """A bad ``inputs`` is one error line naming the file, the line, the key path and a fix
    (exit 2 from the CLI)."""
    p = tmp_path / "res.yaml"
    p.write_text(TABLE.replace("INPUTS", inputs))
    with pytest.raises(WorkloadError) as e:
        load(str(p))
    text = str(e.value)
    assert text.startswith(f"{p}:{line}: ") and "Fix: " in text
    assert all(w in text for w in words), text
    assert main(["run", "--arch", "tpu_v1", "--model", str(p), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{p}:{line}:" in err and "Traceback" not in err


def test_yaml_conv_reads_one_tensor(tmp_path):
    """A conv, fc or pool names one source."""
    p = tmp_path / "res.yaml"
    p.write_text(TABLE.replace("INPUTS", "inputs: 2").replace("inputs: conv1",
                                                             "inputs: [conv1, conv1]"))
    with pytest.raises(WorkloadError, match=r"res.yaml:4: layers\[1\].inputs \(conv2\): a "
                                            r"conv layer reads one tensor"):
        load(str(p))


def test_scalesim_csv_stays_sequential(tmp_path):
    """A SCALE-Sim topology has no edges: every layer reads the previous one."""
    p = tmp_path / "topo.csv"
    p.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                 "Channels, Num Filter, Strides,\nc1, 8, 8, 3, 3, 3, 4, 1,\n"
                 "c2, 6, 6, 3, 3, 4, 4, 1,\nc3, 4, 4, 1, 1, 4, 2, 1,\n")
    m = load(str(p))
    assert [l.sources for l in m.layers] == [(), (), ()]
    assert layer_sources(m) == (("",), ("c1",), ("c2",))
