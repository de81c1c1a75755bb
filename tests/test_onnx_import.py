"""ONNX import: zoo round trips, op conventions from hand-derived shapes, and clear errors."""
from __future__ import annotations

import re

import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from tilesim import workloads  # noqa: E402
from tilesim.cli import main  # noqa: E402
from tilesim.workloads.errors import WorkloadError  # noqa: E402
from tilesim.workloads.ir import MacLayer, OpLayer  # noqa: E402
from tilesim.workloads.onnx_import import read_onnx  # noqa: E402
from tilesim.workloads.zoo import ZOO  # noqa: E402
from zoo_onnx import zoo_to_onnx  # noqa: E402


# ---- round trips ---------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(set(ZOO) - {"convnext_tiny", "vit_b_16"}))
def test_zoo_round_trip(name):  # ConvNeXt-T and ViT-B/16: tests/test_zoo_vision.py
    """Each zoo model written as ONNX imports to the very same layers, MACs and parameters."""
    zoo = ZOO[name](2)
    m = read_onnx(zoo_to_onnx(zoo), batch=2)
    assert m.layers == zoo.layers
    assert (m.macs, m.params, m.batch) == (zoo.macs, zoo.params, 2)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_fixed_batch_in_file_is_reset(name):
    """A file exported with batch 1 read with batch 3 gives the zoo's batch-3 layers."""
    m = read_onnx(zoo_to_onnx(ZOO[name](1), dynamic_batch=False), batch=3)
    assert m.layers == ZOO[name](3).layers


def test_real_weights_from_file_and_bytes(tmp_path):
    """Embedded (float16) weights read from a file or bytes give the same layers as shapes-only."""
    proto = zoo_to_onnx(ZOO["resnet18"](1), weights="float16")
    path = tmp_path / "r18.onnx"
    onnx.save(proto, path)
    assert path.stat().st_size > 2 * 11_000_000  # the weights really are in the file
    want = ZOO["resnet18"](1).layers
    assert read_onnx(path).layers == want
    assert read_onnx(path.read_bytes()).layers == want
    assert workloads.load(str(path)).source == f"onnx:{path}"


def test_external_weights_file_not_needed(tmp_path):
    """Weights stored as external data are never opened: the .onnx alone is enough."""
    path = tmp_path / "vgg.onnx"
    onnx.save(zoo_to_onnx(ZOO["vgg16"](1)), path)  # points at weights.bin, which is absent
    assert not (tmp_path / "weights.bin").exists()
    m = workloads.load(path)
    assert (m.name, m.params) == ("vgg", 138_357_544)


def test_cli_onnx_equals_zoo(tmp_path, capsys):
    """`tilesim run --model FILE.onnx` prints the same total line as the zoo name."""
    path = tmp_path / "resnet18.onnx"
    onnx.save(zoo_to_onnx(ZOO["resnet18"](1)), path)
    assert main(["run", "--arch", "tpu_v1", "--model", str(path), "--batch", "2", "--quiet"]) == 0
    from_file = capsys.readouterr().out
    assert main(["run", "--arch", "tpu_v1", "--model", "resnet18", "--batch", "2", "--quiet"]) == 0
    assert from_file == capsys.readouterr().out and " MACs" in from_file
    assert len(from_file.splitlines()) == 1   # --quiet: one line


# ---- a tiny graph builder for op tests -------------------------------------------------
def _graph(nodes, inits, in_shape, out_name="y", in_name="x", opset=17, out_shape=None):
    inits = [i if isinstance(i, TensorProto) else
             helper.make_tensor(i[0], TensorProto.FLOAT, i[1], [0.0] * _numel(i[1]))
             for i in inits]
    x = helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)
    g = helper.make_graph(nodes, "t", [x], [y], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _numel(dims):
    n = 1
    for d in dims:
        n *= d
    return n


def _i64(name, values):
    return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)


def _f(name, value):
    return helper.make_tensor(name, TensorProto.FLOAT, [], [value])


def _conv(name, x, y, w, **kw):
    return helper.make_node("Conv", [x, w], [y], name=name, **kw)


@pytest.mark.parametrize("h, auto, want_p, want_pad", [
    (7, "SAME_UPPER", 4, 1),   # total pad (4-1)*2 + 3 - 7 = 2: 1 before, 1 after
    (8, "SAME_UPPER", 4, 0),   # total pad 1: 0 before, 1 after (SAME_UPPER puts it last)
    (8, "SAME_LOWER", 4, 1),   # ... SAME_LOWER puts it first
    (8, "VALID", 3, 0),        # (8 - 3) // 2 + 1
])
def test_conv_auto_pad(h, auto, want_p, want_pad):
    """auto_pad gives ONNX's output size and keeps the begin padding."""
    m = read_onnx(_graph([_conv("c", "x", "y", "w", auto_pad=auto, strides=[2, 2])],
                         [("w", [4, 2, 3, 3])], [1, 2, h, h]))
    (l,) = m.layers
    assert (l.P, l.Q, l.padding, l.stride) == (want_p, want_p, (want_pad, want_pad), (2, 2))
    assert l.macs == 4 * want_p * want_p * 2 * 9


def test_conv_groups_dilation_bias_asymmetric_pads():
    """Groups, dilation, a bias input and asymmetric pads map onto one MacLayer."""
    m = read_onnx(_graph([helper.make_node("Conv", ["x", "w", "b"], ["y"], name="c", group=4,
                                           dilations=[2, 2], pads=[2, 1, 0, 3])],
                         [("w", [8, 2, 3, 3]), ("b", [8])], [1, 8, 10, 10]))
    (l,) = m.layers
    # H: (10 + 2 + 0 - 2*2 - 1) // 1 + 1 = 8; W: (10 + 1 + 3 - 5) + 1 = 10
    assert (l.kind, l.groups, l.dilation, l.bias, l.P, l.Q, l.padding) == \
        ("grouped", 4, (2, 2), True, 8, 10, (2, 1))
    assert l.params == 8 * 2 * 9 + 8 and l.macs == 8 * 8 * 10 * 2 * 9


@pytest.mark.parametrize("attrs, pre_pad, h", [
    (dict(pads=[0, 0, 1, 1], strides=[2, 2]), None, 9),            # end padding only
    (dict(pads=[2, 0, 0, 1], strides=[1, 2]), None, 9),            # begin > end, mixed
    (dict(pads=[0, 2, 3, 1], strides=[2, 2], dilations=[2, 1]), None, 11),
    (dict(auto_pad="SAME_LOWER", strides=[2, 2]), None, 8),
    (dict(auto_pad="SAME_UPPER", strides=[3, 3]), None, 10),
    (dict(pads=[1, 0, 0, 1], group=2), [0, 0, 2, 0, 0, 0, 0, 1], 7),  # Pad folded in, grouped
])
def test_imported_conv_computes_what_onnx_computes(attrs, pre_pad, h):
    """The layer read from the file, run by the reference kernel (which reads zeros outside
    the input, begin padding and stored P, Q), equals ONNX's own reference evaluator on
    the same integers: asymmetric and auto padding mean what the file means."""
    import numpy as np
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    from tilesim.sim.kernels import conv2d_layer
    rng = np.random.default_rng(h)
    g = attrs.get("group", 1)
    w = rng.integers(-5, 6, (4, 4 // g, 3, 3)).astype(np.float32)
    nodes, inits, src = [], [numpy_helper.from_array(w, "w")], "x"
    if pre_pad:
        nodes.append(helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad"))
        inits.append(_i64("pads", pre_pad))
        src = "xp"
    nodes.append(helper.make_node("Conv", [src, "w"], ["y"], name="c", kernel_shape=[3, 3],
                                  **attrs))
    model = _graph(nodes, inits, [1, 4, h, h])
    (layer,) = read_onnx(model).layers
    x = rng.integers(-5, 6, (1, 4, h, h)).astype(np.int8)
    want = ReferenceEvaluator(model).run(None, {"x": x.astype(np.float32)})[0]
    got = conv2d_layer(layer, x, w.astype(np.int8))
    assert got.shape == want.shape and np.array_equal(got, want)


def test_conv1d_is_a_1_by_L_layer():
    """A 1-D conv (N, C, L) becomes a 1 x L layer."""
    m = read_onnx(_graph([_conv("c", "x", "y", "w", pads=[1, 1])], [("w", [6, 4, 3])], [1, 4, 20]))
    (l,) = m.layers
    assert (l.H, l.W, l.R, l.S, l.P, l.Q, l.padding) == (1, 20, 1, 3, 1, 20, (0, 1))


def test_gemm_matmul_and_bias_fusion():
    """Gemm (transB 0 or 1) and MatMul + Add(bias) become fc layers with the right shapes."""
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"], name="fc1", transB=1),
             helper.make_node("Relu", ["h1"], ["r1"]),
             helper.make_node("Gemm", ["r1", "w2"], ["h2"], name="fc2"),
             helper.make_node("MatMul", ["h2", "w3"], ["h3"], name="fc3"),
             helper.make_node("Add", ["h3", "b3"], ["y"], name="fc3_bias")]
    m = read_onnx(_graph(nodes, [("w1", [32, 16]), ("b1", [32]), ("w2", [32, 24]),
                                 ("w3", [24, 10]), ("b3", [10])], [1, 16]))
    a, b, c = m.layers
    assert (a.C, a.K, a.bias, a.activation) == (16, 32, True, "relu")
    assert (b.C, b.K, b.bias) == (32, 24, False)
    assert (c.name, c.C, c.K, c.bias, c.kind) == ("fc3", 24, 10, True, "fc")
    assert m.params == 16 * 32 + 32 + 32 * 24 + 24 * 10 + 10


def test_clip_forms_and_standalone_ops():
    """Clip(0,6) is relu6; an activation whose input feeds two nodes stays a vector op."""
    nodes = [_conv("c", "x", "c_out", "w"),
             helper.make_node("Clip", ["c_out", "lo", "hi"], ["a"], name="clip"),
             helper.make_node("Sigmoid", ["a"], ["s"], name="sig"),
             helper.make_node("Add", ["a", "s"], ["y"], name="add")]
    m = read_onnx(_graph(nodes, [("w", [4, 3, 1, 1]), _f("lo", 0.0), _f("hi", 6.0)],
                         [1, 3, 5, 5]))
    conv, sig, add = m.layers
    assert conv.activation == "relu6"
    assert isinstance(sig, OpLayer) and (sig.op, sig.ops) == ("sigmoid", 4 * 25)
    assert (add.op, add.inputs, add.ops) == ("add", 2, 4 * 25)


@pytest.mark.parametrize("form, want", [("inputs", "relu6"), ("constant", "relu6"),
                                        ("attrs", "relu6"), ("min only", "relu"),
                                        ("other", "clip")])
def test_clip_bounds(form, want):
    """Clip bounds are read from initializers, Constant nodes or (opset 6) attributes."""
    nodes, inits, opset = [_conv("c", "x", "c_out", "w")], [("w", [4, 3, 1, 1])], 17
    if form == "attrs":
        nodes.append(helper.make_node("Clip", ["c_out"], ["y"], min=0.0, max=6.0))
        opset = 6
    elif form == "constant":
        nodes += [helper.make_node("Constant", [], ["lo"], value_float=0.0),
                  helper.make_node("Constant", [], ["hi"], value=_f("v", 6.0)),
                  helper.make_node("Clip", ["c_out", "lo", "hi"], ["y"])]
    else:
        lo, hi = {"inputs": (0.0, 6.0), "min only": (0.0, None), "other": (-1.0, 1.0)}[form]
        inits += [_f("lo", lo)] + ([_f("hi", hi)] if hi is not None else [])
        nodes.append(helper.make_node("Clip", ["c_out", "lo"] + (["hi"] if hi is not None else []),
                                      ["y"]))
    (conv,) = read_onnx(_graph(nodes, inits, [1, 3, 5, 5], opset=opset)).layers
    assert conv.activation == want


def test_silu_pattern_and_batchnorm():
    """Conv -> BatchNorm -> x*Sigmoid(x) is one conv with batchnorm and swish; a lone BN is an op."""
    nodes = [helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["x1"], name="bn0"),
             _conv("c", "x1", "c_out", "w"),
             helper.make_node("BatchNormalization", ["c_out", "g2", "b2", "m2", "v2"], ["bn"]),
             helper.make_node("Sigmoid", ["bn"], ["sg"]),
             helper.make_node("Mul", ["bn", "sg"], ["y"], name="silu")]
    inits = [(n, [3]) for n in "gbmv"] + [(n + "2", [4]) for n in "gbmv"] + [("w", [4, 3, 3, 3])]
    m = read_onnx(_graph(nodes, inits, [1, 3, 8, 8]))
    bn0, conv = m.layers
    assert (bn0.op, bn0.ops) == ("batchnorm", 3 * 64)
    assert (conv.batchnorm, conv.activation, conv.params) == (True, "swish", 4 * 27 + 8)


def test_pools_concat_resize_transpose_reshape():
    """Pools, concat (channels add up), resize, transpose (data movement) and free reshapes."""
    nodes = [helper.make_node("MaxPool", ["x"], ["p1"], name="mp", kernel_shape=[3, 3],
                              strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["x"], ["p2"], name="ap", kernel_shape=[2, 2],
                              strides=[2, 2]),
             helper.make_node("Concat", ["p1", "p2"], ["cat"], name="cat", axis=1),
             helper.make_node("Resize", ["cat", "", "scales"], ["up"], name="up", mode="nearest"),
             helper.make_node("Transpose", ["up"], ["t"], name="tr", perm=[0, 2, 3, 1]),
             helper.make_node("Shape", ["t"], ["shp"]),
             helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["newshape"], axis=0),
             helper.make_node("Reshape", ["t", "newshape"], ["y"], name="flat")]
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    inits = [scales, helper.make_tensor("zero", TensorProto.INT64, [], [0]),
             _i64("zero1", [0]), _i64("minus1", [-1])]
    m = read_onnx(_graph(nodes, inits, [1, 6, 8, 8]))
    mp, ap, cat, up, tr = m.layers
    assert (mp.op, mp.P, mp.R, mp.padding, mp.ops) == ("maxpool", 4, 3, (1, 1), 6 * 16 * 9)
    assert (ap.op, ap.P) == ("avgpool", 4)
    assert (cat.op, cat.C, cat.K, cat.inputs, cat.ops) == ("concat", 6, 12, 2, 0)
    assert (up.op, up.C, up.H, up.P, up.Q) == ("resize", 12, 4, 8, 8)
    assert (tr.op, tr.in_elems, tr.out_elems) == ("transpose", 12 * 64, 12 * 64)


def test_pad_not_before_conv_is_a_layer():
    """A Pad read by something other than a conv or pool is a ``pad`` copy that can carry an
    activation; transpose, batchnorm and resize are vector ops too."""
    nodes = [helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad"),
             helper.make_node("Relu", ["xp"], ["r"]),
             helper.make_node("BatchNormalization", ["r", "g", "b", "m", "v"], ["bn"], name="bn"),
             helper.make_node("Transpose", ["bn"], ["y"], name="tr", perm=[0, 1, 3, 2])]
    m = read_onnx(_graph(nodes, [_i64("pads", [0, 0, 1, 1, 0, 0, 1, 1])] +
                         [(n, [3]) for n in "gbmv"], [1, 3, 6, 6]))
    pad, bn, tr = m.layers
    assert (pad.name, pad.op, pad.H, pad.P, pad.activation) == ("pad", "pad", 6, 8, "relu")
    assert pad.ops == 2 * 3 * 64  # the copy and the fused ReLU, one op per element each
    assert (bn.op, bn.ops, tr.op) == ("batchnorm", 3 * 64, "transpose")


def test_hardswish_globalmaxpool_upsample_and_token_matmul():
    """HardSwish fuses; GlobalMaxPool is a window over H x W; Upsample is resize; a
    MatMul on (N, T, C) tokens is an fc over 1 x T positions (N stays the batch)."""
    nodes = [_conv("c", "x", "c_out", "w"),
             helper.make_node("HardSwish", ["c_out"], ["hs"]),
             helper.make_node("Upsample", ["hs", "scales"], ["up"], name="up", mode="nearest"),
             helper.make_node("GlobalMaxPool", ["up"], ["gm"], name="gmp"),
             helper.make_node("Reshape", ["gm", "shape"], ["tok"]),
             helper.make_node("MatMul", ["tok", "wt"], ["y"], name="proj")]
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    m = read_onnx(_graph(nodes, [("w", [8, 3, 3, 3]), scales, _i64("shape", [1, 2, 4]),
                                 ("wt", [4, 5])], [1, 3, 6, 6], opset=14))
    conv, up, gmp, proj = m.layers
    assert conv.activation == "hardswish" and (conv.P, conv.K) == (4, 8)
    assert (up.op, up.H, up.P) == ("resize", 4, 8)
    assert (gmp.op, gmp.R, gmp.S, gmp.P, gmp.ops) == ("maxpool", 8, 8, 1, 8 * 64)
    assert (proj.kind, proj.N, proj.C, proj.K, proj.macs) == ("fc", 1, 4, 5, 40)
    assert (proj.H, proj.W, proj.P, proj.Q) == (1, 2, 1, 2)


def test_gap_forms_and_pad_folding():
    """GlobalAveragePool and ReduceMean(H, W) are gap; a Pad before a conv folds into its padding."""
    nodes = [helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad"),
             _conv("c", "xp", "c_out", "w"),
             helper.make_node("ReduceMean", ["c_out", "axes"], ["y"], name="mean", keepdims=0)]
    m = read_onnx(_graph(nodes, [_i64("pads", [0, 0, 1, 1, 0, 0, 2, 2]), _i64("axes", [2, 3]),
                                 ("w", [4, 3, 3, 3])], [1, 3, 6, 6], opset=18))
    conv, gap = m.layers
    # 6 + 1 + 2 - 3 + 1 = 7 rows; the begin padding 1 is kept
    assert (conv.H, conv.P, conv.padding) == (6, 7, (1, 1))
    assert (gap.op, gap.C, gap.H) == ("gap", 4, 7)


def test_pads_computed_by_constant_nodes_fold():
    """A Pad whose pads come out of constant nodes (Constant -> Concat -> Cast), not an
    initializer, still folds into the pool that reads it, and shapes flow past it."""
    nodes = [helper.make_node("Constant", [], ["lo"], value=_i64("", [0, 0, 0, 0])),
             helper.make_node("Constant", [], ["hi"], value=_i64("", [0, 0, 1, 1])),
             helper.make_node("Concat", ["lo", "hi"], ["cat"], axis=0),
             helper.make_node("Cast", ["cat"], ["pads"], to=TensorProto.INT64),
             helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad"),
             helper.make_node("MaxPool", ["xp"], ["mp"], name="pool", kernel_shape=[2, 2]),
             _conv("c", "mp", "y", "w", pads=[1, 1, 1, 1])]
    pool, conv = read_onnx(_graph(nodes, [("w", [4, 3, 3, 3])], [1, 3, 13, 13])).layers
    assert (pool.op, pool.H, pool.P, pool.Q, pool.padding) == ("maxpool", 13, 13, 13, (0, 0))
    assert (conv.H, conv.P) == (13, 13)


def test_torch_exported_f_pad_imports():
    """torch.onnx.export writes F.pad's pads as a Constant -> Reshape -> Slice -> Transpose
    -> Cast chain (darknet's one-sided pool padding, TF-style 'same' convs): it imports."""
    torch = pytest.importorskip("torch")
    import io
    import warnings

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.pool = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.MaxPool2d(2, 1)

        def forward(self, x):
            return self.pool(torch.nn.functional.pad(self.conv(x), (0, 1, 0, 1)))

    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Net().eval(), torch.zeros(1, 3, 13, 13), f, dynamo=False)
    conv, pool = read_onnx(f.getvalue()).layers
    assert (conv.P, pool.op, pool.H, pool.P, pool.Q) == (13, "maxpool", 13, 13, 13)


# ---- errors --------------------------------------------------------------------------
def _small():
    return zoo_to_onnx(ZOO["yolo_tiny"](1)).SerializeToString()


def test_truncated_files_error_or_import_whole():
    """Every truncation of a model either raises a WorkloadError or (if the cut falls after the
    graph) imports the full model; never a traceback or a silently partial model."""
    data = _small()
    want = read_onnx(data).layers
    outcomes = {"error": 0, "whole": 0}
    for cut in range(0, len(data), 7):
        try:
            m = read_onnx(data[:cut])
        except WorkloadError as e:
            assert "<onnx model>" in str(e) and "Fix:" in str(e)
            outcomes["error"] += 1
        else:
            assert m.layers == want
            outcomes["whole"] += 1
    assert outcomes["error"] > 50


@pytest.mark.parametrize("content", [b"", b"not an onnx file at all\xff\xfe", b"\x08\x07"])
def test_corrupt_file(tmp_path, content):
    """Empty, garbage or header-only files name the file and say how to fix it."""
    p = tmp_path / "bad.onnx"
    p.write_bytes(content)
    with pytest.raises(WorkloadError, match=r"bad\.onnx: .*(corrupt|truncated|no graph)") as e:
        workloads.load(p)
    assert "export the model again" in str(e.value)


def test_missing_file_and_cli_exit_code(tmp_path, capsys):
    """A missing .onnx is a WorkloadError; the CLI turns bad ONNX into exit code 2 and one line."""
    with pytest.raises(WorkloadError, match="cannot read the file"):
        workloads.load(tmp_path / "nope.onnx")
    p = tmp_path / "half.onnx"
    p.write_bytes(_small()[:300])
    assert main(["run", "--arch", "tpu_v1", "--model", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tilesim: error: ") and "half.onnx" in err and "\n" not in err


def test_dynamic_shape_needs_input_shape():
    """Dynamic H, W without an input shape is a clear error; with one, the model imports."""
    proto = zoo_to_onnx(ZOO["resnet18"](1))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "H", "W"
    with pytest.raises(WorkloadError, match=r"input 'input' has dynamic shape Nx3xHxW.*"
                                            r"--input-shape 1x3x224x224"):
        read_onnx(proto)
    assert read_onnx(proto, input_shape="1x3x224x224").layers == ZOO["resnet18"](1).layers
    assert read_onnx(proto, batch=2, input_shape=(2, 3, 224, 224)).layers == ZOO["resnet18"](2).layers
    with pytest.raises(WorkloadError, match="says batch 4, but the batch is 2"):
        read_onnx(proto, batch=2, input_shape="4x3x224x224")
    with pytest.raises(WorkloadError, match="rank 4"):
        read_onnx(proto, input_shape="3x224x224")
    with pytest.raises(WorkloadError, match="not a list of positive integers"):
        read_onnx(proto, input_shape="1x3xbig")


def test_input_shape_against_static_file_dims(tmp_path, capsys):
    """A static file takes another H x W (a fully convolutional net at a new resolution), but
    not other channels: that is the user's shape, not a broken graph, and the error says so."""
    proto = zoo_to_onnx(ZOO["yolo_tiny"](1))  # Nx3x416x416 in the file
    first = read_onnx(proto, input_shape="1x3x320x320").layers[0]
    assert (first.H, first.P) == (320, 320)
    with pytest.raises(WorkloadError, match=r"has 3 channels in the file \(Nx3x416x416\), but the "
                                            r"input shape given is 1x4x416x416.*give 3 channels"):
        read_onnx(proto, input_shape="1x4x416x416")
    p = tmp_path / "YOLO.ONNX"  # upper-case extension
    onnx.save(proto, p)
    assert workloads.load(str(p)).layers == ZOO["yolo_tiny"](1).layers
    assert main(["run", "--arch", "tpu_v1", "--model", str(p), "--input-shape", "1x1x416x416",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "YOLO.ONNX" in err and "1 channels" not in err


def test_cli_input_shape(tmp_path, capsys):
    """--input-shape fixes a dynamic ONNX input from the command line."""
    proto = zoo_to_onnx(ZOO["mobilenet_v2"](1))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "H", "W"
    p = tmp_path / "mb.onnx"
    onnx.save(proto, p)
    assert main(["run", "--arch", "tpu_v1", "--model", str(p), "--quiet"]) == 2
    assert "--input-shape" in capsys.readouterr().err
    assert main(["run", "--arch", "tpu_v1", "--model", str(p), "--input-shape", "1x3x224x224",
                 "--quiet"]) == 0
    macs = re.search(r"([\d,]+) MACs", capsys.readouterr().out).group(1)
    assert round(int(macs.replace(",", "")) / 1e9, 4) == 0.3008   # GMACs


def _with_unsupported():
    nodes = [_conv("conv", "x", "c", "w"),
             helper.make_node("LRN", ["c"], ["l"], name="norm1", size=3),
             helper.make_node("Relu", ["l"], ["r"], name="relu"),
             helper.make_node("LpNormalization", ["r"], ["n"], name="norm2"),
             helper.make_node("LRN", ["n"], ["y"], name="norm3", size=3)]
    return _graph(nodes, [("w", [4, 3, 3, 3])], [1, 3, 8, 8])


def test_unsupported_ops_listed():
    """Unsupported ops are listed by type and node name, with the pass-through option as the fix."""
    with pytest.raises(WorkloadError) as e:
        read_onnx(_with_unsupported())
    msg = str(e.value)
    assert "unsupported ONNX ops LRN, LpNormalization" in msg
    for node in ("'norm1'", "'norm2'", "'norm3'"):
        assert node in msg
    assert "--passthrough-unsupported" in msg and "allow_unsupported=True" in msg


def test_unsupported_ops_pass_through_with_warning(capsys, tmp_path):
    """allow_unsupported treats them as free ops, warns, and blocks fusion across them."""
    with pytest.warns(UserWarning, match="pass-through.*norm1.*norm2.*norm3"):
        m = read_onnx(_with_unsupported(), allow_unsupported=True)
    conv, relu = m.layers
    assert isinstance(conv, MacLayer) and conv.activation is None
    assert (relu.name, relu.op) == ("relu", "relu")
    p = tmp_path / "u.onnx"
    onnx.save(_with_unsupported(), p)
    assert main(["run", "--arch", "tpu_v1", "--model", str(p), "--passthrough-unsupported",
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("tilesim: warning: ") and "LRN ('norm1')" in err


def test_inconsistent_shapes_are_clear():
    """Shapes that do not fit (broadcast failure; conv weight channels != input channels)
    are WorkloadErrors naming the node."""
    bad = _graph([helper.make_node("Add", ["x", "b"], ["y"], name="add")], [("b", [5])],
                 [1, 3, 8, 8])
    with pytest.raises(WorkloadError, match="<onnx model>: ONNX shape inference failed.*add"):
        read_onnx(bad)
    bad = _graph([_conv("c", "x", "y", "w")], [("w", [4, 5, 3, 3])], [1, 3, 8, 8])
    with pytest.raises(WorkloadError, match=r"node 'c': the weight 4x5x3x3 with group 1 expects "
                                            r"5 input channels, the input has 3"):
        read_onnx(bad)


def test_dangling_input_named():
    """A node reading a tensor nothing produces is named in the error."""
    g = _graph([_conv("c", "x", "y", "w")], [("w", [4, 3, 3, 3])], [1, 3, 8, 8])
    g.graph.node[0].input[0] = "ghost"
    with pytest.raises(WorkloadError, match="node 'c' reads tensor 'ghost'"):
        read_onnx(g)
