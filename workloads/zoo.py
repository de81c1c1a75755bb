"""The model zoo: well-known CNNs built by code (no downloads, no torch).

Every builder takes the batch size and returns a :class:`Model` whose MAC layers carry
the exact shapes of the reference network, so that parameter and MAC totals match the
published figures. Conventions used throughout:

* Activations are fused into the layer that precedes them (``activation=``); they
  are not separate layers. A ReLU that follows a residual add (ResNet) is fused into the
  ``add`` (``activation="relu"``: an add + ReLU pass on the vector unit).
* BatchNorm is folded into its conv (``batchnorm=True``: 2 parameters per output
  channel, scale and shift, no run-time cost). Running statistics are buffers, not
  parameters, as in PyTorch's ``parameters()`` count.
* Dropout and flatten are no-ops for a simulator and are left out; so is the adaptive
  average pool of AlexNet (to 6x6) and VGG-16 (to 7x7), an identity at 224x224.
* Every layer names the layers whose outputs it reads (``sources``; the first layer
  reads the network input, ``""``), so the model is a graph, not only a list: a residual
  ``add`` reads (main branch output, shortcut), the shortcut being the block input or
  its downsample; SE's ``mul`` reads (the depthwise output it scales, the scale). A slice
  or view (ViT's q, k, v and class token) reads its producer's output; a constant
  operand (a layer scale, a position embedding, a class token) is no source.
* Layer names follow the torchvision module names (``features.3``,
  ``layer1.0.conv1``, ``features.2.conv.1.0``, ``classifier.1``); non-MAC ops that are
  functional in torchvision get a readable name (``layer1.0.add``, ``avgpool``).

Variants:

``alexnet``
    torchvision's AlexNet (the one-tower "One weird trick" variant: 64, 192, 384, 256,
    256 channels), 224x224x3, convs and FCs with bias, max pools 3x3/2.
``vgg16``
    torchvision ``vgg16`` (configuration D, no BatchNorm, biases everywhere), 224x224x3.
``resnet18``, ``resnet34``
    torchvision BasicBlock ResNets, convs without bias, BatchNorm on every conv
    (downsample 1x1 convs included), fc 512->1000 with bias, 224x224x3.
``resnet50``
    torchvision ResNet-50 v1.5 (stride 2 on the 3x3 conv of the bottleneck, not on the
    first 1x1), 224x224x3.
``mobilenet_v2``
    torchvision MobileNetV2, width 1.0, 224x224x3: depthwise 3x3 convs are grouped
    layers with groups == C == K, BatchNorm on every conv, ReLU6, final 1x1 conv to
    1280, classifier fc 1280->1000 with bias.
``efficientnet_b0``
    torchvision EfficientNet-B0, 224x224x3: MBConv blocks (1x1 expansion, depthwise
    3x3 or 5x5, squeeze-and-excitation, 1x1 linear projection, residual add when the
    shape is kept), BatchNorm on every conv, SiLU written ``swish``. The SE block is a
    global average pool, two 1x1 convs with bias (SiLU, then sigmoid) on the 1x1 tensor
    and an elementwise ``mul`` (``...block.N.mul``) scaling the depthwise output;
    stochastic depth and dropout are identities at inference and left out. Final 1x1
    conv 320->1280, classifier fc 1280->1000 with bias.
``yolo_tiny``
    Tiny YOLOv2 for VOC, darknet ``cfg/yolov2-tiny-voc.cfg``, 416x416x3: 3x3 convs
    16-32-64-128-256-512 each followed by a 2x2 max pool (stride 2, except the last
    one: stride 1 with darknet's one-sided padding, so 13x13 stays 13x13), then 3x3
    convs 1024 and 1024, then a 1x1 conv to 125 = 5 anchors x (20 classes + 5) with
    bias and a linear activation. BatchNorm and leaky ReLU on all other convs. The
    region (detection) layer is post-processing and is left out.
``convnext_tiny``
    torchvision ConvNeXt-T, 224x224x3: a 4x4/4 patchify stem with LayerNorm2d, stages of
    3, 3, 9, 3 CNBlocks at 96, 192, 384, 768 channels (7x7 depthwise conv with bias,
    permute to channels-last, LayerNorm, Linear 4x up with GELU, Linear down, permute
    back, layer scale ``mul`` of C parameters, residual ``add``), downsampling by
    LayerNorm2d + 2x2/2 conv, then global average pool, LayerNorm2d, Linear 768->1000.
    torchvision's LayerNorm2d is a permute, a layer norm and a permute back: the permutes
    are ``transpose`` ops (data movement), written in the input tensor's (N, C, H, W)
    view. Stochastic depth is an identity at inference and left out.
``vit_b_16``
    torchvision ViT-B/16, 224x224x3: a 16x16/16 conv patch embedding, flatten + permute
    to 196 tokens, the class token concatenated (768 parameters) and the position
    embedding added (197 x 768 parameters), 12 encoder blocks (LayerNorm,
    nn.MultiheadAttention with 12 heads of 64: the in-projection to q, k, v, the
    ``Q @ K^T`` scores, softmax, ``P @ V`` and the out-projection; residual add;
    LayerNorm, MLP 768->3072 (GELU)->768, residual add), a final LayerNorm and the head
    on the class token, Linear 768->1000. Attention's two MatMuls are MAC layers whose
    both operands are activations (``matmul``); the head split and merge are views of
    their operands (free). Linear layers on (N, tokens, features) are ``fc`` layers over
    H x W = 1 x tokens positions; layernorm and softmax hold the features in C.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from .ir import NETWORK_INPUT, Model, OpLayer, conv, eltwise, fc, gap, matmul, pool, rowwise

Shape = tuple[int, int, int]  # (channels, height, width) of one image


class _T(NamedTuple):
    """A tensor of the network under construction: its shape and the layer that wrote it."""

    shape: Shape
    name: str   # the producer's layer name; NETWORK_INPUT ("") for the network input


class _Net:
    """Appends layers in order and tracks the current tensor (its (C, H, W) and its
    producer): every layer is given ``sources``, the current tensor unless told otherwise,
    so that the model's layer graph is explicit (:func:`workloads.layer_sources`)."""

    def __init__(self, n: int, c: int, h: int, w: int):
        self.n, self.layers, self.t = n, [], _T((c, h, w), NETWORK_INPUT)

    @property
    def x(self) -> Shape:
        """The current tensor's (C, H, W)."""
        return self.t.shape

    def conv(self, name, k, r, stride=1, pad=None, groups=1, bias=False, bn=False, act=None,
             src: _T | None = None) -> _T:
        """A conv on ``src`` (default: the current tensor); the output becomes current."""
        t = src or self.t
        c, h, w = t.shape
        pad = r // 2 if pad is None else pad
        layer = conv(name, self.n, c, h, w, k, r, stride=stride, pad=pad, groups=groups,
                     bias=bias, batchnorm=bn, activation=act, sources=(t.name,))
        return self.put(layer, (layer.K, layer.P, layer.Q))

    def fc(self, name, k, act=None) -> _T:
        c, h, w = self.x  # flatten
        return self.put(fc(name, self.n, c * h * w, k, bias=True, activation=act,
                           sources=(self.t.name,)), (k, 1, 1))

    def pool(self, name, r, stride=None, pad=0, op="maxpool") -> _T:
        layer = pool(name, op, self.n, *self.x, r, stride=stride, pad=pad, sources=(self.t.name,))
        return self.put(layer, (layer.K, layer.P, layer.Q))

    def gap(self, name) -> _T:
        return self.put(gap(name, self.n, *self.x, sources=(self.t.name,)), (self.x[0], 1, 1))

    def add(self, name, main: _T, shortcut: _T, act=None) -> _T:
        """A residual ``main + shortcut`` (both of one shape)."""
        assert main.shape == shortcut.shape, (name, main, shortcut)
        return self.put(eltwise(name, "add", self.n, *main.shape, activation=act,
                                sources=(main.name, shortcut.name)), main.shape)

    def mul(self, name, src: _T) -> _T:
        """``src * current`` (the current tensor broadcast over src's H x W, as in SE)."""
        return self.put(eltwise(name, "mul", self.n, *src.shape,
                                sources=(src.name, self.t.name)), src.shape)

    def put(self, layer, out: Shape | None = None) -> _T:
        """Append ``layer`` (its ``sources`` given); its output, of (C, H, W) ``out``
        (default: the current tensor's), becomes current."""
        self.layers.append(layer)
        self.t = _T(self.x if out is None else out, layer.name)
        return self.t

    def model(self, name: str) -> Model:
        return Model(name=name, layers=tuple(self.layers), batch=self.n, source="zoo")


def _check_batch(batch) -> int:
    if not isinstance(batch, int) or isinstance(batch, bool) or batch <= 0:
        from .errors import WorkloadError
        raise WorkloadError(f"batch = {batch!r} must be a positive integer", fix="use a batch of 1 or more")
    return batch


# ---- AlexNet / VGG ---------------------------------------------------------------------
def alexnet(batch: int = 1) -> Model:
    """torchvision AlexNet at 224x224: 61,100,840 parameters."""
    net = _Net(_check_batch(batch), 3, 224, 224)
    feats = [(0, 64, 11, 4, 2), (3, 192, 5, 1, 2), (6, 384, 3, 1, 1), (8, 256, 3, 1, 1),
             (10, 256, 3, 1, 1)]  # (module index, K, kernel, stride, padding)
    for i, k, r, st, pd in feats:
        net.conv(f"features.{i}", k, r, stride=st, pad=pd, bias=True, act="relu")
        if i in (0, 3, 10):
            net.pool(f"features.{i + 2}", 3, stride=2)
    net.fc("classifier.1", 4096, act="relu")
    net.fc("classifier.4", 4096, act="relu")
    net.fc("classifier.6", 1000)
    return net.model("alexnet")


_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16(batch: int = 1) -> Model:
    """torchvision VGG-16 (configuration D, no BatchNorm) at 224x224: 138,357,544 parameters."""
    net = _Net(_check_batch(batch), 3, 224, 224)
    i = 0
    for v in _VGG16:
        if v == "M":
            net.pool(f"features.{i}", 2, stride=2)
            i += 1
        else:
            net.conv(f"features.{i}", v, 3, pad=1, bias=True, act="relu")
            i += 2  # conv, relu
    net.fc("classifier.0", 4096, act="relu")
    net.fc("classifier.3", 4096, act="relu")
    net.fc("classifier.6", 1000)
    return net.model("vgg16")


# ---- ResNets ---------------------------------------------------------------------------
def _resnet(name: str, batch: int, bottleneck: bool, blocks: list[int]) -> Model:
    net = _Net(_check_batch(batch), 3, 224, 224)
    net.conv("conv1", 64, 7, stride=2, pad=3, bn=True, act="relu")
    net.pool("maxpool", 3, stride=2, pad=1)
    expansion = 4 if bottleneck else 1
    for stage, (width, n_blocks) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
        for b in range(n_blocks):
            stride = 2 if (b == 0 and stage > 1) else 1
            p = f"layer{stage}.{b}"
            x = net.t   # the block input: the shortcut, or the downsample's input
            if bottleneck:  # v1.5: the stride sits on the 3x3 conv
                net.conv(f"{p}.conv1", width, 1, bn=True, act="relu")
                net.conv(f"{p}.conv2", width, 3, stride=stride, bn=True, act="relu")
                out = net.conv(f"{p}.conv3", width * expansion, 1, bn=True)
            else:
                net.conv(f"{p}.conv1", width, 3, stride=stride, bn=True, act="relu")
                out = net.conv(f"{p}.conv2", width, 3, bn=True)
            if stride != 1 or x.shape[0] != width * expansion:
                x = net.conv(f"{p}.downsample.0", width * expansion, 1, stride=stride, bn=True,
                             src=x)
            net.add(f"{p}.add", out, x, act="relu")
    net.gap("avgpool")
    net.fc("fc", 1000)
    return net.model(name)


def resnet18(batch: int = 1) -> Model:
    """torchvision ResNet-18: 11,689,512 parameters."""
    return _resnet("resnet18", batch, False, [2, 2, 2, 2])


def resnet34(batch: int = 1) -> Model:
    """torchvision ResNet-34: 21,797,672 parameters."""
    return _resnet("resnet34", batch, False, [3, 4, 6, 3])


def resnet50(batch: int = 1) -> Model:
    """torchvision ResNet-50 v1.5: 25,557,032 parameters."""
    return _resnet("resnet50", batch, True, [3, 4, 6, 3])


def resnet101(batch: int = 1) -> Model:
    """torchvision ResNet-101 v1.5: 44,549,160 parameters."""
    return _resnet("resnet101", batch, True, [3, 4, 23, 3])


def resnet152(batch: int = 1) -> Model:
    """torchvision ResNet-152 v1.5: 60,192,808 parameters."""
    return _resnet("resnet152", batch, True, [3, 8, 36, 3])


_RESNET_BLOCKS = {18: (False, [2, 2, 2, 2]), 34: (False, [3, 4, 6, 3]),
                  50: (True, [3, 4, 6, 3]), 101: (True, [3, 4, 23, 3]),
                  152: (True, [3, 8, 36, 3])}


def resnet(batch: int = 1, depth: int = 50) -> Model:
    """torchvision ResNet-``depth`` (18, 34, 50, 101, 152) at 224x224: the family builder."""
    if depth not in _RESNET_BLOCKS:
        from .errors import WorkloadError
        raise WorkloadError(f"resnet depth {depth!r} is not one of 18, 34, 50, 101, 152",
                            fix="use depth 18, 34, 50, 101 or 152")
    return _resnet(f"resnet{depth}", batch, *_RESNET_BLOCKS[depth])


# ---- MobileNetV2 -----------------------------------------------------------------------
_MBV2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
         (6, 160, 3, 2), (6, 320, 1, 1)]  # (expansion t, channels c, repeats n, stride s)


def _make_divisible(v: float, divisor: int = 8) -> int:
    """Round ``v`` to a multiple of ``divisor`` (at least ``divisor``), never more than 10 %
    below ``v`` (TF-slim / Keras / torchvision ``_make_divisible``)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def mobilenet_v2(batch: int = 1, width: float = 1.0, resolution: int = 224,
                 classes: int = 1000) -> Model:
    """MobileNetV2 at ``resolution`` x ``resolution`` with width multiplier ``width``.

    Defaults: torchvision MobileNetV2 (width 1.0, 224x224, 1000 classes): 3,504,872
    parameters. Other widths follow the released TF-slim checkpoints (Keras
    ``MobileNetV2(alpha=...)``): every layer's channels ``make_divisible(int(c * width),
    8)``, the stem ``make_divisible(32 * width, 8)``, expansions 6x the block input, and the
    last 1x1 conv 1280 channels unless ``width > 1`` (then ``make_divisible(1280 * width, 8)``).
    The TF-slim checkpoints have 1001 classes (background first)."""
    net = _Net(_check_batch(batch), 3, resolution, resolution)
    net.conv("features.0.0", _make_divisible(32 * width), 3, stride=2, bn=True, act="relu6")
    i = 1
    for t, c, n, s in _MBV2:
        out_c = _make_divisible(int(c * width))
        for j in range(n):
            stride = s if j == 0 else 1
            x = net.t
            cin = x.shape[0]
            hidden = cin * t
            p, m = f"features.{i}.conv", 0  # m: index inside the block's Sequential
            if t != 1:
                net.conv(f"{p}.0.0", hidden, 1, bn=True, act="relu6")
                m = 1
            net.conv(f"{p}.{m}.0", hidden, 3, stride=stride, groups=hidden, bn=True, act="relu6")
            y = net.conv(f"{p}.{m + 1}", out_c, 1, bn=True)  # linear bottleneck (BN at .{m + 2})
            if stride == 1 and cin == out_c:
                net.add(f"features.{i}.add", y, x)
            i += 1
    last = _make_divisible(1280 * width) if width > 1.0 else 1280
    net.conv(f"features.{i}.0", last, 1, bn=True, act="relu6")
    net.gap("avgpool")
    net.fc("classifier.1", classes)
    default = width == 1.0 and resolution == 224 and classes == 1000
    return net.model("mobilenet_v2" if default else
                     f"mobilenet_v2_{width:g}_{resolution}" + ("" if classes == 1000 else
                                                               f"_c{classes}"))


# ---- EfficientNet-B0..B3 -----------------------------------------------------------------
_EFFB0 = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]  # (t, kernel, s, c, n)
#: torchvision's (width, depth, eval resolution) of B0..B3 (``_efficientnet_conf`` and the
#: IMAGENET1K_V1 weights' crop size)
_EFF_SCALE = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 288), 3: (1.2, 1.4, 300)}


def efficientnet(batch: int = 1, variant: int = 0, resolution: int | None = None) -> Model:
    """torchvision EfficientNet-B``variant`` (0..3) at its evaluation resolution (224,
    240, 288, 300; or ``resolution``): channels ``make_divisible(c * width, 8)``, stage
    repeats ``ceil(n * depth)``, SE squeeze ``max(1, block input // 4)``, last conv 4x the
    last stage's channels."""
    import math
    if variant not in _EFF_SCALE:
        from .errors import WorkloadError
        raise WorkloadError(f"efficientnet variant {variant!r} is not one of 0, 1, 2, 3",
                            fix="use variant 0, 1, 2 or 3 (B0..B3)")
    width, depth, res = _EFF_SCALE[variant]
    res = resolution or res
    net = _Net(_check_batch(batch), 3, res, res)
    net.conv("features.0.0", _make_divisible(32 * width), 3, stride=2, bn=True, act="swish")
    for stage, (t, r, s, c, n) in enumerate(_EFFB0, start=1):
        out_c = _make_divisible(c * width)
        for j in range(int(math.ceil(n * depth))):
            stride = s if j == 0 else 1
            xin = net.t
            cin = xin.shape[0]
            hidden, p, m = _make_divisible(cin * t), f"features.{stage}.{j}.block", 0
            if t != 1:
                net.conv(f"{p}.0.0", hidden, 1, bn=True, act="swish")
                m = 1
            x = net.conv(f"{p}.{m}.0", hidden, r, stride=stride, groups=hidden, bn=True,
                         act="swish")
            net.gap(f"{p}.{m + 1}.avgpool")  # squeeze-and-excitation
            net.conv(f"{p}.{m + 1}.fc1", max(1, cin // 4), 1, bias=True, act="swish")
            net.conv(f"{p}.{m + 1}.fc2", hidden, 1, bias=True, act="sigmoid")
            net.mul(f"{p}.{m + 1}.mul", x)
            y = net.conv(f"{p}.{m + 2}.0", out_c, 1, bn=True)
            if stride == 1 and cin == out_c:
                net.add(f"features.{stage}.{j}.add", y, xin)
    net.conv("features.8.0", 4 * net.x[0], 1, bn=True, act="swish")
    net.gap("avgpool")
    net.fc("classifier.1", 1000)
    name = f"efficientnet_b{variant}"
    return net.model(name if resolution in (None, _EFF_SCALE[variant][2]) else f"{name}_{res}")


def efficientnet_b0(batch: int = 1) -> Model:
    """torchvision EfficientNet-B0 at 224x224: 5,288,548 parameters."""
    return efficientnet(batch, 0)


def efficientnet_b1(batch: int = 1) -> Model:
    """torchvision EfficientNet-B1 at 240x240: 7,794,184 parameters."""
    return efficientnet(batch, 1)


def efficientnet_b2(batch: int = 1) -> Model:
    """torchvision EfficientNet-B2 at 288x288: 9,109,994 parameters."""
    return efficientnet(batch, 2)


def efficientnet_b3(batch: int = 1) -> Model:
    """torchvision EfficientNet-B3 at 300x300: 12,233,232 parameters."""
    return efficientnet(batch, 3)


# ---- MobileNetV3 -------------------------------------------------------------------------
# (kernel, expanded, out, SE, activation, stride) per bneck, torchvision _mobilenet_v3_conf
_MBV3 = {
    "large": ([(3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2),
               (3, 72, 24, False, "relu", 1), (5, 72, 40, True, "relu", 2),
               (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
               (3, 240, 80, False, "hardswish", 2), (3, 200, 80, False, "hardswish", 1),
               (3, 184, 80, False, "hardswish", 1), (3, 184, 80, False, "hardswish", 1),
               (3, 480, 112, True, "hardswish", 1), (3, 672, 112, True, "hardswish", 1),
               (5, 672, 160, True, "hardswish", 2), (5, 960, 160, True, "hardswish", 1),
               (5, 960, 160, True, "hardswish", 1)], 1280),
    "small": ([(3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2),
               (3, 88, 24, False, "relu", 1), (5, 96, 40, True, "hardswish", 2),
               (5, 240, 40, True, "hardswish", 1), (5, 240, 40, True, "hardswish", 1),
               (5, 120, 48, True, "hardswish", 1), (5, 144, 48, True, "hardswish", 1),
               (5, 288, 96, True, "hardswish", 2), (5, 576, 96, True, "hardswish", 1),
               (5, 576, 96, True, "hardswish", 1)], 1024),
}


def mobilenet_v3(batch: int = 1, size: str = "large", resolution: int = 224) -> Model:
    """torchvision MobileNetV3-Large / -Small (width 1.0): stem 3x3/2 conv to 16
    (hardswish), bnecks (1x1 expansion unless expanded == input, depthwise k x k, SE with
    ``make_divisible(expanded // 4, 8)`` squeeze channels, ReLU then hardsigmoid, 1x1
    linear projection, residual add when the shape is kept), a 1x1 conv to 6x the last
    bneck's channels (hardswish), global pool, fc to 1280 / 1024 (hardswish), fc to 1000."""
    if size not in _MBV3:
        from .errors import WorkloadError
        raise WorkloadError(f"mobilenet_v3 size {size!r} is not 'large' or 'small'",
                            fix="use size large or small")
    blocks, last = _MBV3[size]
    net = _Net(_check_batch(batch), 3, resolution, resolution)
    net.conv("features.0.0", 16, 3, stride=2, bn=True, act="hardswish")
    for i, (k, exp, out, se, act, stride) in enumerate(blocks, start=1):
        xin = net.t
        cin, p, m = xin.shape[0], f"features.{i}.block", 0
        if exp != cin:
            net.conv(f"{p}.0.0", exp, 1, bn=True, act=act)
            m = 1
        x = net.conv(f"{p}.{m}.0", exp, k, stride=stride, groups=exp, bn=True, act=act)
        if se:
            m += 1
            net.gap(f"{p}.{m}.avgpool")
            net.conv(f"{p}.{m}.fc1", _make_divisible(exp // 4), 1, bias=True, act="relu")
            net.conv(f"{p}.{m}.fc2", exp, 1, bias=True, act="hardsigmoid")
            net.mul(f"{p}.{m}.mul", x)
        y = net.conv(f"{p}.{m + 1}.0", out, 1, bn=True)
        if stride == 1 and cin == out:
            net.add(f"features.{i}.add", y, xin)
    net.conv(f"features.{len(blocks) + 1}.0", 6 * net.x[0], 1, bn=True, act="hardswish")
    net.gap("avgpool")
    net.fc("classifier.0", last, act="hardswish")
    net.fc("classifier.3", 1000)
    name = f"mobilenet_v3_{size}"
    return net.model(name if resolution == 224 else f"{name}_{resolution}")


def mobilenet_v3_large(batch: int = 1) -> Model:
    """torchvision MobileNetV3-Large at 224x224: 5,483,032 parameters."""
    return mobilenet_v3(batch, "large")


def mobilenet_v3_small(batch: int = 1) -> Model:
    """torchvision MobileNetV3-Small at 224x224: 2,542,856 parameters."""
    return mobilenet_v3(batch, "small")


# ---- Tiny YOLOv2 (VOC) -----------------------------------------------------------------
def yolo_tiny(batch: int = 1) -> Model:
    """Tiny YOLOv2 for VOC (darknet yolov2-tiny-voc.cfg) at 416x416: 15,861,773 parameters."""
    n = _check_batch(batch)
    net = _Net(n, 3, 416, 416)
    idx = 0  # darknet layer index, as printed by darknet when it loads the cfg
    for k in (16, 32, 64, 128, 256, 512):
        net.conv(f"layers.{idx}.conv", k, 3, pad=1, bn=True, act="leaky")
        if k < 512:
            net.pool(f"layers.{idx + 1}.maxpool", 2, stride=2)
        else:
            # size 2, stride 1, darknet padding = size - 1 = 1 applied on the bottom/right
            # only: 13x13 -> 13x13. The IR's padding pair is symmetric and cannot say
            # "0 before, 1 after", so the output size is given directly.
            c, h, w = net.x
            net.put(OpLayer(name=f"layers.{idx + 1}.maxpool", op="maxpool", N=n, C=c,
                            H=h, W=w, P=h, Q=w, R=2, S=2, stride=(1, 1), padding=(0, 0),
                            sources=(net.t.name,)))
        idx += 2
    net.conv(f"layers.{idx}.conv", 1024, 3, pad=1, bn=True, act="leaky")
    net.conv(f"layers.{idx + 1}.conv", 1024, 3, pad=1, bn=True, act="leaky")
    net.conv(f"layers.{idx + 2}.conv", 125, 1, pad=0, bias=True)  # linear, feeds [region]
    return net.model("yolo_tiny")


# ---- ConvNeXt-T ------------------------------------------------------------------------
def _move(name, shape, src: str) -> OpLayer:
    """A permute of a tensor of (torch) ``shape`` written by layer ``src``: a copy of every
    element, written in the input's (N, C, H, W) view (rank 3 (N, C, L) reads as
    (N, C, 1, L))."""
    n, c, h, w = shape if len(shape) == 4 else (shape[0], shape[1], 1, shape[2])
    return OpLayer(name=name, op="transpose", N=n, C=c, H=h, W=w, P=h, Q=w, sources=(src,))


def _layernorm2d(net: _Net, name: str) -> None:
    """torchvision LayerNorm2d on the current (C, H, W): permute, layer_norm, permute."""
    c, h, w = net.x
    net.put(_move(f"{name}.permute", (net.n, c, h, w), net.t.name))
    net.put(rowwise(f"{name}.layer_norm", "layernorm", net.n, c, h, w, params=2 * c,
                    sources=(net.t.name,)))
    net.put(_move(f"{name}.permute_1", (net.n, h, w, c), net.t.name))


def convnext_tiny(batch: int = 1) -> Model:
    """torchvision ConvNeXt-T at 224x224: 28,589,128 parameters."""
    net = _Net(_check_batch(batch), 3, 224, 224)
    n = net.n
    net.conv("features.0.0", 96, 4, stride=4, pad=0, bias=True)
    _layernorm2d(net, "features.0.1")
    idx = 1
    for stage, (dim, depth) in enumerate(zip((96, 192, 384, 768), (3, 3, 9, 3))):
        if stage:
            _layernorm2d(net, f"features.{idx}.0")
            net.conv(f"features.{idx}.1", dim, 2, stride=2, pad=0, bias=True)
            idx += 1
        for b in range(depth):
            p = f"features.{idx}.{b}"
            x = net.t   # the block input: the residual's shortcut
            _, h, w = net.conv(f"{p}.block.0", dim, 7, pad=3, groups=dim, bias=True).shape
            for layer in (
                    _move(f"{p}.block.1.permute", (n, dim, h, w), f"{p}.block.0"),
                    rowwise(f"{p}.block.2", "layernorm", n, dim, h, w, params=2 * dim,
                            sources=(f"{p}.block.1.permute",)),
                    fc(f"{p}.block.3", n, dim, 4 * dim, activation="gelu", h=h, w=w,
                       sources=(f"{p}.block.2",)),
                    fc(f"{p}.block.5", n, 4 * dim, dim, h=h, w=w, sources=(f"{p}.block.3",)),
                    _move(f"{p}.block.6.permute", (n, h, w, dim), f"{p}.block.5"),
                    # the layer scale: C parameters, its second operand (read from DRAM)
                    eltwise(f"{p}.mul", "mul", n, dim, h, w, params=dim,
                            sources=(f"{p}.block.6.permute",))):
                net.put(layer)
            net.add(f"{p}.add", net.t, x)
        idx += 1
    net.gap("avgpool")
    _layernorm2d(net, "classifier.0")
    net.fc("classifier.2", 1000)
    return net.model("convnext_tiny")


# ---- ViT-B/16 --------------------------------------------------------------------------
def vit_b_16(batch: int = 1) -> Model:
    """torchvision ViT-B/16 at 224x224: 86,567,656 parameters."""
    n = _check_batch(batch)
    E, T, heads, mlp = 768, 197, 12, 3072
    d = E // heads
    layers = [conv("conv_proj", n, 3, 224, 224, E, 16, stride=16, bias=True,
                   sources=(NETWORK_INPUT,)),
              _move("permute", (n, E, 196), "conv_proj"),
              OpLayer(name="cat", op="concat", N=n, C=196, K=T, H=1, W=E, P=1, Q=E, inputs=2,
                      params=E, sources=("permute",)),  # and the class token (a constant)
              OpLayer(name="encoder.add", op="add", N=n, C=T, H=1, W=E, P=1, Q=E, inputs=2,
                      params=T * E, sources=("cat",))]  # and the position embedding

    def residual(name, main, shortcut):  # an add on (N, T, E), in its (N, C, H, W) view
        return OpLayer(name=name, op="add", N=n, C=T, H=1, W=E, P=1, Q=E, inputs=2,
                       sources=(main, shortcut))

    x = "encoder.add"   # the block input
    for i in range(12):
        p = f"encoder.layers.encoder_layer_{i}"
        a = f"{p}.self_attention"
        layers += [
            rowwise(f"{p}.ln_1", "layernorm", n, E, 1, T, params=2 * E, sources=(x,)),
            fc(f"{a}.in_proj", n, E, 3 * E, h=1, w=T, sources=(f"{p}.ln_1",)),
            # Q @ K^T: q and k are slices (views) of the in-projection's output
            matmul(f"{a}.matmul", n, T, d, T, heads=heads,
                   sources=(f"{a}.in_proj", f"{a}.in_proj")),
            rowwise(f"{a}.softmax", "softmax", n, T, heads, T, sources=(f"{a}.matmul",)),
            # P @ V: v a slice of the in-projection's output
            matmul(f"{a}.matmul_1", n, T, T, d, heads=heads,
                   sources=(f"{a}.softmax", f"{a}.in_proj")),
            fc(f"{a}.out_proj", n, E, E, h=1, w=T, sources=(f"{a}.matmul_1",)),
            residual(f"{p}.add", f"{a}.out_proj", x),
            rowwise(f"{p}.ln_2", "layernorm", n, E, 1, T, params=2 * E, sources=(f"{p}.add",)),
            fc(f"{p}.mlp.0", n, E, mlp, activation="gelu", h=1, w=T, sources=(f"{p}.ln_2",)),
            fc(f"{p}.mlp.3", n, mlp, E, h=1, w=T, sources=(f"{p}.mlp.0",)),
            residual(f"{p}.add_1", f"{p}.mlp.3", f"{p}.add")]
        x = f"{p}.add_1"
    layers += [rowwise("encoder.ln", "layernorm", n, E, 1, T, params=2 * E, sources=(x,)),
               # on the class token: a slice (view) of the final LayerNorm's output
               fc("heads.head", n, E, 1000, sources=("encoder.ln",))]
    return Model(name="vit_b_16", layers=tuple(layers), batch=n, source="zoo")


ZOO: dict[str, Callable[[int], Model]] = {
    "alexnet": alexnet,
    "vgg16": vgg16,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_large": mobilenet_v3_large,
    "mobilenet_v3_small": mobilenet_v3_small,
    "efficientnet_b0": efficientnet_b0,
    "efficientnet_b1": efficientnet_b1,
    "efficientnet_b2": efficientnet_b2,
    "efficientnet_b3": efficientnet_b3,
    "yolo_tiny": yolo_tiny,
    "convnext_tiny": convnext_tiny,
    "vit_b_16": vit_b_16,
}

#: parametric family builders (``workloads/families.py`` pairs their variants with published
#: accuracy): ``builder(batch, **knobs)``
FAMILY_BUILDERS: dict[str, Callable[..., Model]] = {
    "mobilenet_v2": mobilenet_v2,
    "resnet": resnet,
    "efficientnet": efficientnet,
    "mobilenet_v3": mobilenet_v3,
}

__all__ = ["FAMILY_BUILDERS", "ZOO", *ZOO, "resnet", "efficientnet", "mobilenet_v3"]
