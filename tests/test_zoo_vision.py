"""ConvNeXt-T and ViT-B/16: the zoo, torch modules and ONNX graphs give the same layers,
exact parameters and published MACs; the importers read what such models are made of."""
from __future__ import annotations

import dataclasses
import warnings

import pytest

from tilesim.workloads.ir import OpLayer, matmul
from tilesim.workloads.zoo import ZOO

VISION = ["convnext_tiny", "vit_b_16"]

# sum(p.numel() for p in torchvision.models.<name>().parameters()): the torchvision model
# docs' "num_params" (ConvNeXt_Tiny_Weights 28,589,128; ViT_B_16_Weights 86,567,656).
PARAMS = {"convnext_tiny": 28_589_128, "vit_b_16": 86_567_656}

# Published MACs at 224x224, batch 1: the torchvision model docs' "GFLOPS" column
# (ConvNeXt_Tiny_Weights.IMAGENET1K_V1 4.46, ViT_B_16_Weights.IMAGENET1K_V1 17.56; their
# meta "_ops" 4.456 and 17.564, counted as multiply-adds). The ConvNeXt paper (Liu et
# al. 2022, Table 1 / 10) rounds ConvNeXt-T to 4.5 G "FLOPs" (multiply-adds); Dosovitskiy
# et al. 2021 give no ViT-B/16 MAC count at 224, so torchvision's figure is the source.
PUBLISHED_MACS = {"convnext_tiny": 4.456e9, "vit_b_16": 17.564e9}


def strip(layers):
    return [dataclasses.replace(l, name="") for l in layers]


@pytest.mark.parametrize("name", VISION)
def test_params_exact_and_macs_published(name):
    """Parameters equal torchvision's count; MACs within 1 % of the published figure;
    batch multiplies MACs and vector ops, not parameters."""
    one, three = ZOO[name](1), ZOO[name](3)
    assert one.params == three.params == PARAMS[name]
    assert abs(one.macs - PUBLISHED_MACS[name]) / PUBLISHED_MACS[name] < 0.01
    assert three.macs == 3 * one.macs
    ops = lambda m: sum(l.ops for l in m.layers if isinstance(l, OpLayer))  # noqa: E731
    assert ops(three) == 3 * ops(one)
    assert all(l.N == 3 for l in three.layers)


def test_vit_macs_by_hand():
    """ViT-B/16 MACs: patch embedding 196*768*768, per block 197 tokens x (768*2304 +
    768*768 + 2*768*3072) for the linears plus 2 x 12 heads x 197*197*64 for attention,
    the head 768*1000: 17,563,828,224."""
    linear = 197 * (768 * 2304 + 768 * 768 + 2 * 768 * 3072)
    attention = 2 * 12 * 197 * 197 * 64
    total = 196 * 768 * 768 + 12 * (linear + attention) + 768 * 1000
    m = ZOO["vit_b_16"](1)
    assert m.macs == total == 17_563_828_224
    mm = [l for l in m.mac_layers if l.kind == "matmul"]
    assert len(mm) == 24 and sum(l.macs for l in mm) == 12 * attention
    assert all(l.weights_are_activations and l.params == 0 for l in mm)


def test_convnext_macs_by_hand():
    """ConvNeXt-T MACs: stem 56^2*96*48; a block at (HxW, C): HW*C*49 (7x7 depthwise) +
    2*HW*C*4C (the two linears); a downsample HW_out*C_out*C_in*4; the head 768*1000."""
    stages = [(56 * 56, 96, 3), (28 * 28, 192, 3), (14 * 14, 384, 9), (7 * 7, 768, 3)]
    total = 56 * 56 * 96 * 3 * 16 + 768 * 1000
    for i, (hw, c, depth) in enumerate(stages):
        total += depth * (hw * c * 49 + 2 * hw * c * 4 * c)
        if i:
            total += hw * c * (c // 2) * 4
    assert ZOO["convnext_tiny"](1).macs == total == 4_455_531_264


def test_attention_matmul_layer():
    """A MatMul of two activations: no parameters, its w operand one per image, and its
    shared-weight nest folds the batch into the groups with the same MACs."""
    layer = matmul("qk", n=2, rows=5, red=4, cols=5, heads=3)
    assert (layer.kind, layer.params, layer.macs) == ("matmul", 0, 2 * 3 * 5 * 5 * 4)
    assert layer.weight_elems == 2 * 3 * 5 * 4      # one (red x cols) per head and image
    nest = layer.nest
    assert (nest.N, nest.groups, nest.C, nest.K) == (1, 6, 24, 30)
    assert nest.macs == layer.macs and nest.weight_elems == layer.weight_elems
    conv = ZOO["resnet18"](2).layers[0]
    assert nest.nest is nest and conv.nest is conv  # shared weights: the layer itself


# ---- torch ------------------------------------------------------------------------------
torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name", VISION)
def test_torch_modules_import_to_the_zoo(name):
    """The torchvision-style modules import to the zoo's layers, names included; the
    parameters equal the module's own count."""
    from tilesim.workloads.torch_import import read_torch
    from zoo_torch_vision import BUILDERS
    with torch.device("meta"):
        net = BUILDERS[name]()
    m = read_torch(net, (1, 3, 224, 224), batch=2)
    assert m.layers == ZOO[name](2).layers
    assert m.params == sum(p.numel() for p in net.parameters()) == PARAMS[name]


def _attention_net(form: str):
    nn = torch.nn

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv, self.proj, self.heads = nn.Linear(16, 48), nn.Linear(16, 16), 4
            self.mha = nn.MultiheadAttention(16, 4, batch_first=True)

        def forward(self, x):
            if form == "mha":
                return self.mha(x, x, x, need_weights=False)[0]
            b, t, e = x.shape
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            q, k, v = (y.reshape(b, t, self.heads, e // self.heads).transpose(1, 2)
                       for y in (q, k, v))
            if form == "sdpa":
                o = torch.nn.functional.scaled_dot_product_attention(q, k, v)
            else:
                o = ((q @ k.transpose(-2, -1)) * (e // self.heads) ** -0.5).softmax(-1) @ v
            return self.proj(o.transpose(1, 2).reshape(b, t, e))
    return Attn().eval()


@pytest.mark.parametrize("form", ["manual", "sdpa"])
def test_attention_forms_agree(form):
    """Manual attention (chunk, reshape, transpose, @, scale, softmax) and
    scaled_dot_product_attention import to the layers of nn.MultiheadAttention: an fc
    to q, k, v, a matmul, a softmax, a matmul and an fc; head split and merge are free."""
    from tilesim.workloads.torch_import import read_torch
    ref = read_torch(_attention_net("mha"), (1, 10, 16), batch=2)
    got = read_torch(_attention_net(form), (1, 10, 16), batch=2)
    assert [l.kind for l in got.layers] == ["fc", "matmul", "softmax", "matmul", "fc"]
    assert strip(got.layers) == strip(ref.layers)
    qk = got.layers[1]
    assert (qk.N, qk.groups, qk.C, qk.K, qk.Q, qk.macs) == (2, 4, 16, 40, 10, 2 * 4 * 10 * 10 * 4)


def test_getitem_imports_without_passthrough():
    """Indexing (x[:, :, None, None], x[:, 0], slices) is a free view: the model imports
    without allow_unsupported, and without a warning."""
    nn = torch.nn

    class SE(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 8)

        def forward(self, x):
            x = self.conv(x)
            g = torch.sigmoid(self.fc(x.mean((2, 3))))
            y = x * g[:, :, None, None]
            return y[:, :4]

    from tilesim.workloads.torch_import import read_torch
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = read_torch(SE(), (1, 3, 6, 6))
    assert [(l.kind, l.name) for l in m.layers] == [("conv", "conv"), ("gap", "mean"),
                                                   ("fc", "fc"), ("mul", "mul")]
    assert m.layers[2].activation == "sigmoid" and m.layers[3].out_elems == 8 * 36


def test_data_dependent_branch_warns_and_says_which():
    """A module fx cannot trace (an `if` on tensor values) imports through ONNX with a
    warning that names the reason and says one branch is baked in."""
    pytest.importorskip("onnx")
    nn = torch.nn

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3), nn.Conv2d(3, 8, 1)

        def forward(self, x):
            if x.sum() > 0:
                return self.a(x)
            return self.b(x)

    from tilesim.workloads.torch_import import read_torch
    with pytest.warns(UserWarning, match=r"torch\.fx cannot trace the module \(TraceError.*"
                                         r"data-dependent `if` keeps only the branch"):
        m = read_torch(Branchy(), (1, 3, 8, 8))
    (layer,) = m.layers
    assert (layer.K, layer.R) == (8, 1)  # all zeros: the else branch
    assert m.source.endswith("(via onnx)")


# ---- ONNX -------------------------------------------------------------------------------
onnx = pytest.importorskip("onnx")


@pytest.mark.parametrize("name", VISION)
def test_onnx_graphs_import_to_the_zoo(name):
    """The onnx.helper graphs (LayerNormalization, Gelu, attention as MatMuls of two
    activations, class token and position embedding) import to the zoo's layers."""
    from tilesim.workloads.onnx_import import read_onnx
    from zoo_onnx_vision import BUILDERS
    m = read_onnx(BUILDERS[name](), batch=2)
    assert m.layers == ZOO[name](2).layers
    assert m.params == PARAMS[name]


def _weights_as_inputs(model):
    """ZigZag's resnet50_gen.onnx style: every weight a graph input, no initializer."""
    from onnx import helper
    g = model.graph
    ins = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in g.initializer]
    g.input.extend(ins)
    del g.initializer[:]
    return model


def test_resnet50_gen_style_weights_as_inputs():
    """ResNet-50 with its weights declared as graph inputs (batch 1 in the file, read with
    batch 4): the weights keep their shapes, only the data input takes the batch; 54 MAC
    layers, 4.089 GMACs (4,089,184,256 per image)."""
    from tilesim.workloads.onnx_import import declared_weights, read_onnx
    from zoo_onnx import zoo_to_onnx
    model = _weights_as_inputs(zoo_to_onnx(ZOO["resnet50"](1), dynamic_batch=False))
    assert len(model.graph.initializer) == 0 and len(model.graph.input) > 100
    assert [vi.name for vi in model.graph.input if vi not in declared_weights(model)] == ["input"]
    m = read_onnx(model, batch=4)
    assert len(m.mac_layers) == 54
    assert m.macs == 4 * 4_089_184_256 and round(m.macs / 4 / 1e9, 3) == 4.089
    assert m.layers == ZOO["resnet50"](4).layers and m.params == 25_557_032


def test_matmul_second_input_with_dynamic_shape_is_data():
    """A graph input read as MatMul's second operand is a weight only when its shape in
    the file is static; with a dynamic batch it is data (a MatMul of two activations)."""
    from onnx import TensorProto, helper

    from tilesim.workloads.onnx_import import read_onnx
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3, 5, 4])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 3, 4, 6])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [6, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["s"], name="mm"),
                           helper.make_node("MatMul", ["s", "w"], ["y"], name="proj")],
                          "g", [a, b, w], [y])
    m = read_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), batch=2)
    mm, proj = m.layers
    assert (mm.kind, mm.N, mm.groups, mm.C, mm.K, mm.Q, mm.params) == ("matmul", 2, 3, 12, 18, 5, 0)
    assert (proj.kind, proj.N, proj.C, proj.K, proj.params) == ("fc", 2, 6, 2, 12)
