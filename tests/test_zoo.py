"""The model zoo: shapes, parameter and MAC totals against published figures."""
from __future__ import annotations

import math

import pytest

from tilesim import workloads
from tilesim.workloads.errors import WorkloadError
from tilesim.workloads.ir import MacLayer, OpLayer
from tilesim.workloads.zoo import ZOO

NAMES = ["alexnet", "vgg16", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
         "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "yolo_tiny",
         "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3"]
VISION = ["convnext_tiny", "vit_b_16"]  # tests/test_zoo_vision.py
SEQUENTIAL = ["alexnet", "vgg16", "yolo_tiny"]

# Parameter totals: sum(p.numel() for p in torchvision.models.<name>().parameters()), as
# listed in the torchvision model docs ("num_params"). BatchNorm scale and shift count,
# running statistics (buffers) do not.
#
# yolo_tiny, by hand from darknet cfg/yolov2-tiny-voc.cfg, counting conv weights
# (K*C*3*3), BatchNorm scale + shift (2*K: darknet stores the shift as the conv
# "biases") and, for the last 1x1 conv without BN, its 125 biases; darknet's rolling
# mean/variance are statistics, not parameters:
#   3->16     432 +   32 =       464
#   16->32   4608 +   64 =     4,672
#   32->64  18432 +  128 =    18,560
#   64->128 73728 +  256 =    73,984
#   128->256   294,912 +  512 =   295,424
#   256->512 1,179,648 + 1024 = 1,180,672
#   512->1024  4,718,592 + 2048 = 4,720,640
#   1024->1024 9,437,184 + 2048 = 9,439,232
#   1024->125 (1x1) 128,000 + 125 = 128,125
#   total 15,861,773 (with the 6,112 rolling statistics: 15,867,885 floats, i.e. the
#   ~63.5 MB of yolov2-tiny-voc.weights at 4 bytes each).
PARAMS = {
    "alexnet": 61_100_840,
    "vgg16": 138_357_544,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    "yolo_tiny": 15_861_773,
    "efficientnet_b0": 5_288_548,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856,
    "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232,
}

# Published MAC figures (multiply-accumulates of convs + fully connected layers only,
# batch 1). Sources: the torchvision model docs' "GFLOPS" column, which is fvcore's
# count of multiply-adds (AlexNet 0.71, VGG-16 15.47, ResNet-18 1.81, ResNet-34 3.66,
# ResNet-50 4.09, MobileNetV2 0.30); the MobileNetV2 paper (Sandler et al. 2018,
# Table 4: 300M multiply-adds); ResNet-18 1.814 G and ResNet-50 4.089 G are the same
# conv + fc counts quoted to three decimals (e.g. fvcore's FlopCountAnalysis); Tiny YOLOv2 VOC: 6.97 billion FLOPs (= 2 x MACs) on
# pjreddie.com/darknet/yolov2 and in darknet's load-time printout.
PUBLISHED_MACS = {
    "alexnet": 714e6,
    "vgg16": 15.47e9,
    "resnet18": 1.814e9,
    "resnet34": 3.66e9,
    "resnet50": 4.089e9,
    "mobilenet_v2": 300.8e6,
    "yolo_tiny": 6.97e9 / 2,
    "efficientnet_b0": 0.39e9,  # torchvision docs (GFLOPS 0.39); Tan & Le 2019, Table 2: 0.39B FLOPS
    # torchvision weights' meta "_ops" (GFLOPS, three decimals), as in workloads/data/families.yaml
    "resnet101": 7.801e9,
    "resnet152": 11.514e9,
    "mobilenet_v3_large": 0.217e9,
    "mobilenet_v3_small": 0.057e9,
    "efficientnet_b1": 0.687e9,
    "efficientnet_b2": 1.088e9,
    "efficientnet_b3": 1.827e9,
}

# Exact counts with torchvision-style (fvcore) counting of convs + fc. ResNet-50's
# 4,089,184,256 is the published exact figure; Tiny YOLOv2's is derived below; the
# others pin this zoo's exact count, which rounds to the published figure above.
#
# Tiny YOLOv2 by hand, P*Q*K*C*R*S per conv:
#   416^2*16*27 = 74,760,192; then five convs of 199,360,512 each (208^2*32*144,
#   104^2*64*288, 52^2*128*576, 26^2*256*1152, 13^2*512*2304); 13^2*1024*4608 =
#   797,442,048; 13^2*1024*9216 = 1,594,884,096; 13^2*125*1024 = 21,632,000.
#   Total 3,485,520,896 MACs = 6.971 GFLOPs.
EXACT_MACS = {
    "alexnet": 714_188_480,
    "vgg16": 15_470_264_320,
    "resnet18": 1_814_073_344,
    "resnet34": 3_663_761_408,
    "resnet50": 4_089_184_256,
    "mobilenet_v2": 300_774_272,
    "yolo_tiny": 74_760_192 + 5 * 199_360_512 + 797_442_048 + 1_594_884_096 + 21_632_000,
    "efficientnet_b0": 385_814_752,  # this zoo's exact count (SE 1x1 convs included)
    "resnet101": 7_801_405_440,
    "resnet152": 11_513_626_624,
    "mobilenet_v3_large": 216_589_760,
    "mobilenet_v3_small": 56_510_400,
    "efficientnet_b1": 686_802_832,
    "efficientnet_b2": 1_087_529_456,
    "efficientnet_b3": 1_827_141_392,
}

INPUT = {name: (3, 224, 224) for name in NAMES} | {"yolo_tiny": (3, 416, 416),
                                                   "efficientnet_b1": (3, 240, 240),
                                                   "efficientnet_b2": (3, 288, 288),
                                                   "efficientnet_b3": (3, 300, 300)}


def mac_sum(model) -> int:
    return sum(l.macs for l in model.layers if isinstance(l, MacLayer))


def in_shape(layer):
    return (layer.C, layer.H, layer.W)


def out_shape(layer):
    return (layer.K, layer.P, layer.Q)


def feeds(src_shape, layer) -> bool:
    """``layer`` reads a tensor of shape ``src_shape`` (an fc may read it flattened)."""
    if in_shape(layer) == src_shape:
        return True
    return (isinstance(layer, MacLayer) and layer.kind == "fc" and layer.H == layer.W == 1
            and layer.C == math.prod(src_shape))


def block_input(layers, prefix: str):
    """Output shape of the layer before the first layer of the block ``prefix``."""
    first = next(i for i, l in enumerate(layers) if l.name.startswith(prefix + "."))
    return out_shape(layers[first - 1])


def test_zoo_names():
    """The zoo holds exactly the agreed model names, all reachable via workloads.load."""
    assert sorted(ZOO) == sorted(NAMES + VISION)
    assert workloads.zoo_names() == sorted(NAMES + VISION)
    assert workloads.load("resnet50", batch=2).batch == 2


@pytest.mark.parametrize("name", NAMES)
def test_model_metadata(name):
    """Each builder returns a Model named after its key, with the batch and source "zoo"."""
    m = ZOO[name](3)
    assert (m.name, m.batch, m.source) == (name, 3, "zoo")
    assert all(l.N == 3 for l in m.layers)
    assert all(isinstance(l, (MacLayer, OpLayer)) for l in m.layers)


@pytest.mark.parametrize("name", NAMES)
def test_params_match_published(name):
    """Parameter totals equal the torchvision / darknet figures exactly."""
    assert ZOO[name](1).params == PARAMS[name]


@pytest.mark.parametrize("name", NAMES)
def test_macs_match_published(name):
    """The sum of MacLayer.macs is within 1% of the published figure and equals the exact count."""
    m = ZOO[name](1)
    macs = mac_sum(m)
    assert macs == m.macs  # OpLayers contribute no MACs
    if name == "efficientnet_b0":  # published to two decimals only: 0.39 G = [0.385, 0.395)
        assert round(macs / 1e9, 2) == 0.39
    else:
        assert abs(macs - PUBLISHED_MACS[name]) / PUBLISHED_MACS[name] < 0.01
    assert macs == EXACT_MACS[name]


@pytest.mark.parametrize("name", NAMES)
def test_batch_scales_macs_not_params(name):
    """Batch multiplies MACs and op counts linearly and leaves parameters unchanged."""
    one, four = ZOO[name](1), ZOO[name](4)
    assert mac_sum(four) == 4 * mac_sum(one)
    assert four.params == one.params
    assert [l.name for l in four.layers] == [l.name for l in one.layers]
    ops = lambda m: sum(l.ops for l in m.layers if isinstance(l, OpLayer))
    assert ops(four) == 4 * ops(one)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_batch_rejected(bad):
    """A batch that is not a positive integer is rejected with a WorkloadError."""
    with pytest.raises(WorkloadError):
        ZOO["resnet18"](bad)


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_sequential_chain(name):
    """In the plain chains every layer reads exactly what the previous layer wrote."""
    layers = ZOO[name](1).layers
    assert in_shape(layers[0]) == INPUT[name]
    for prev, layer in zip(layers, layers[1:]):
        assert feeds(out_shape(prev), layer), (prev.name, layer.name)


@pytest.mark.parametrize("name", NAMES)
def test_chain_with_shortcuts(name):
    """Every layer reads the previous output, except downsample convs, which read the block input."""
    layers = ZOO[name](1).layers
    assert in_shape(layers[0]) == INPUT[name]
    for i in range(1, len(layers)):
        layer = layers[i]
        if layer.name.endswith(".downsample.0"):
            src = block_input(layers, layer.name.rsplit(".", 2)[0])
        elif layer.name.endswith(".mul"):  # SE scale: reads the tensor before the squeeze
            src = out_shape(layers[i - 4])
            assert layers[i - 3].op == "gap"
        else:
            src = out_shape(layers[i - 1])
        assert feeds(src, layer), (layers[i - 1].name, layer.name)


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "mobilenet_v2",
                                  "efficientnet_b0"])
def test_residual_adds(name):
    """Both operands of every residual add (main branch and shortcut) have the add's shape."""
    layers = ZOO[name](1).layers
    adds = [l for l in layers if isinstance(l, OpLayer) and l.op == "add"]
    assert len(adds) == {"resnet18": 8, "resnet34": 16, "resnet50": 16, "mobilenet_v2": 10,
                         "efficientnet_b0": 9}[name]
    for add in adds:
        assert add.inputs == 2 and in_shape(add) == out_shape(add)
        prefix = add.name.removesuffix(".add")
        block = [l for l in layers if l.name.startswith(prefix + ".") and isinstance(l, MacLayer)]
        main = [l for l in block if ".downsample." not in l.name][-1]
        down = [l for l in block if ".downsample." in l.name]
        shortcut = out_shape(down[0]) if down else block_input(layers, prefix)
        assert out_shape(main) == in_shape(add) == shortcut, add.name


def test_resnet50_is_v1_5():
    """ResNet-50 puts the stride on the 3x3 conv of the bottleneck (v1.5) and BN on downsample convs."""
    layers = {l.name: l for l in ZOO["resnet50"](1).layers}
    for stage in (2, 3, 4):
        assert layers[f"layer{stage}.0.conv1"].stride == (1, 1)
        assert layers[f"layer{stage}.0.conv2"].stride == (2, 2)
        assert layers[f"layer{stage}.0.downsample.0"].stride == (2, 2)
    assert all(l.batchnorm and not l.bias for l in layers.values()
               if isinstance(l, MacLayer) and l.kind != "fc")
    assert layers["fc"].bias and (layers["fc"].C, layers["fc"].K) == (2048, 1000)


def test_mobilenet_v2_depthwise():
    """MobileNetV2's 3x3 depthwise convs are real grouped layers with groups == C == K."""
    m = ZOO["mobilenet_v2"](1)
    dw = [l for l in m.mac_layers if l.kind == "depthwise"]
    assert len(dw) == 17
    for l in dw:
        assert l.groups == l.C == l.K > 1 and (l.R, l.S) == (3, 3)
        assert l.weight_elems == l.C * 9 and l.macs == l.C * l.P * l.Q * 9
        assert l.activation == "relu6" and l.batchnorm
    assert not [l for l in m.mac_layers if l.kind == "grouped"]
    assert {l.kind for l in m.mac_layers} == {"conv", "depthwise", "pointwise", "fc"}
    last = m.mac_layers[-2]
    assert (last.kind, last.K, last.P, last.Q) == ("pointwise", 1280, 7, 7)


def test_yolo_tiny_structure():
    """Tiny YOLOv2 keeps 13x13 through the stride-1 max pool and ends in a 1x1 conv to 125 with bias."""
    layers = ZOO["yolo_tiny"](1).layers
    pools = [l for l in layers if isinstance(l, OpLayer)]
    assert [l.op for l in pools] == ["maxpool"] * 6
    assert [(l.H, l.P) for l in pools] == [(416, 208), (208, 104), (104, 52), (52, 26),
                                            (26, 13), (13, 13)]
    assert pools[-1].stride == (1, 1) and (pools[-1].R, pools[-1].S) == (2, 2)
    convs = [l for l in layers if isinstance(l, MacLayer)]
    assert [l.K for l in convs] == [16, 32, 64, 128, 256, 512, 1024, 1024, 125]
    assert all(l.batchnorm and l.activation == "leaky" and not l.bias for l in convs[:-1])
    head = convs[-1]
    assert (head.R, head.bias, head.batchnorm, head.activation, head.P) == (1, True, False, None, 13)


@pytest.mark.parametrize("name", NAMES)
def test_layer_names_unique(name):
    """Layer names are unique and non-empty within each model."""
    names = [l.name for l in ZOO[name](1).layers]
    assert len(names) == len(set(names)) and all(names)


@pytest.mark.parametrize("name", NAMES)
def test_activations_fused(name):
    """Activations live on MAC layers; there are no standalone activation layers."""
    m = ZOO[name](1)
    assert not [l for l in m.layers if isinstance(l, OpLayer)
                and l.op in ("relu", "sigmoid", "swish", "hardswish", "hardsigmoid")]
    assert {l.activation for l in m.mac_layers} <= {None, "relu", "relu6", "leaky", "swish",
                                                    "sigmoid", "hardswish", "hardsigmoid"}
    assert m.mac_layers[0].activation is not None


def test_efficientnet_b0_structure():
    """EfficientNet-B0: 16 MBConv blocks, each with an SE (gap, 1x1 swish, 1x1 sigmoid, mul)."""
    m = ZOO["efficientnet_b0"](1)
    layers = m.layers
    muls = [i for i, l in enumerate(layers) if isinstance(l, OpLayer) and l.op == "mul"]
    assert len(muls) == 16
    for i in muls:
        gap_, fc1, fc2, mul, proj = layers[i - 3], layers[i - 2], layers[i - 1], layers[i], layers[i + 1]
        dw = layers[i - 4]
        assert dw.kind == "depthwise" and dw.R in (3, 5) and dw.activation == "swish"
        assert gap_.op == "gap" and (fc1.P, fc1.Q, fc2.P, fc2.Q) == (1, 1, 1, 1)
        assert fc1.bias and fc2.bias and (fc1.activation, fc2.activation) == ("swish", "sigmoid")
        assert fc2.K == dw.K == mul.C and (mul.H, mul.W) == (dw.P, dw.Q) and mul.inputs == 2
        assert proj.kind == "pointwise" and proj.batchnorm and proj.activation is None
    assert [l.R for l in m.mac_layers if l.kind == "depthwise"] == [3] * 3 + [5] * 2 + [3] * 3 + [5] * 7 + [3]
    head = m.mac_layers[-1]
    assert (head.kind, head.C, head.K, head.bias) == ("fc", 1280, 1000, True)


def test_resnet_add_carries_relu():
    """The ReLU after a ResNet residual add is fused into the add; MobileNetV2's adds are linear."""
    r = [l for l in ZOO["resnet18"](1).layers if isinstance(l, OpLayer) and l.op == "add"]
    assert r and all(l.activation == "relu" and l.ops == 2 * l.out_elems for l in r)
    mb = [l for l in ZOO["mobilenet_v2"](1).layers if isinstance(l, OpLayer) and l.op == "add"]
    assert mb and all(l.activation is None and l.ops == l.out_elems for l in mb)
