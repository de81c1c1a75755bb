"""Test helper: the zoo's networks written as PyTorch modules, torchvision style.

Module paths follow torchvision (``layer1.0.conv1``, ``features.2.conv.1.0``,
``features.2.0.block.1.fc1``), so the imported layer names equal the zoo's. Differences
from torchvision, all irrelevant to the layers: the global average pool is an
``nn.AdaptiveAvgPool2d`` named ``avgpool`` everywhere (MobileNetV2 calls the function),
and dropout / stochastic depth are left out. Build under ``torch.device("meta")`` so that
no weights are allocated (the importer never needs them).
"""
from __future__ import annotations

import torch
from torch import nn


def _cna(cin, cout, k, stride=1, groups=1, act=nn.ReLU, bias=False, pad=None):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2 if pad is None else pad, groups=groups,
                        bias=bias), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class _Classic(nn.Module):
    """AlexNet / VGG: features, an identity adaptive pool, flatten, classifier."""

    def __init__(self, features, pool, classifier):
        super().__init__()
        self.features, self.avgpool, self.classifier = features, nn.AdaptiveAvgPool2d(pool), classifier

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def alexnet():
    f = nn.Sequential(nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(True), nn.MaxPool2d(3, 2),
                      nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(3, 2),
                      nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(True),
                      nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(True),
                      nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(3, 2))
    c = nn.Sequential(nn.Dropout(), nn.Linear(9216, 4096), nn.ReLU(True), nn.Dropout(),
                      nn.Linear(4096, 4096), nn.ReLU(True), nn.Linear(4096, 1000))
    return _Classic(f, (6, 6), c)


def vgg16():
    layers, c = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(True)]
            c = v
    cl = nn.Sequential(nn.Linear(25088, 4096), nn.ReLU(True), nn.Dropout(),
                       nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, 1000))
    return _Classic(nn.Sequential(*layers), (7, 7), cl)


class _Basic(nn.Module):
    expansion = 1

    def __init__(self, cin, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = None
        if stride != 1 or cin != width:
            self.downsample = nn.Sequential(nn.Conv2d(cin, width, 1, stride, bias=False),
                                            nn.BatchNorm2d(width))

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        out += identity
        return self.relu(out)


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != width * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, width * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(width * 4))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class _ResNet(nn.Module):
    def __init__(self, block, blocks):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c = 64
        for i, (w, n) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
            mods = []
            for b in range(n):
                mods.append(block(c, w, 2 if (b == 0 and i > 1) else 1))
                c = w * block.expansion
            setattr(self, f"layer{i}", nn.Sequential(*mods))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c, 1000)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18():
    return _ResNet(_Basic, [2, 2, 2, 2])


def resnet34():
    return _ResNet(_Basic, [3, 4, 6, 3])


def resnet50():
    return _ResNet(_Bottleneck, [3, 4, 6, 3])


class _InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        self.use_res = stride == 1 and cin == cout
        layers = [] if t == 1 else [_cna(cin, hidden, 1, act=nn.ReLU6)]
        layers += [_cna(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class _Head(nn.Module):
    def __init__(self, features, cin):
        super().__init__()
        self.features, self.avgpool = features, nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(cin, 1000))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def mobilenet_v2():
    feats, c = [_cna(3, 32, 3, 2, act=nn.ReLU6)], 32
    for t, co, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for j in range(n):
            feats.append(_InvertedResidual(c, co, s if j == 0 else 1, t))
            c = co
    feats.append(_cna(c, 1280, 1, act=nn.ReLU6))
    return _Head(nn.Sequential(*feats), 1280)


class _SE(nn.Module):
    def __init__(self, c, sq):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(c, sq, 1), nn.Conv2d(sq, c, 1)
        self.activation, self.scale_activation = nn.SiLU(inplace=True), nn.Sigmoid()

    def forward(self, x):
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return s * x


class _MBConv(nn.Module):
    def __init__(self, t, k, stride, cin, cout):
        super().__init__()
        hidden = cin * t
        self.use_res = stride == 1 and cin == cout
        layers = [] if t == 1 else [_cna(cin, hidden, 1, act=nn.SiLU)]
        layers += [_cna(hidden, hidden, k, stride, groups=hidden, act=nn.SiLU),
                   _SE(hidden, max(1, cin // 4)), _cna(hidden, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return self.block(x) + x if self.use_res else self.block(x)


def efficientnet_b0():
    feats, c = [_cna(3, 32, 3, 2, act=nn.SiLU)], 32
    for t, k, s, co, n in [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                           (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]:
        stage = []
        for j in range(n):
            stage.append(_MBConv(t, k, s if j == 0 else 1, c, co))
            c = co
        feats.append(nn.Sequential(*stage))
    feats.append(_cna(c, 1280, 1, act=nn.SiLU))
    return _Head(nn.Sequential(*feats), 1280)


class _Darknet(nn.Module):
    def __init__(self, cin, cout, k, bn=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, 1, k // 2, bias=not bn)
        self.bn = nn.BatchNorm2d(cout) if bn else nn.Identity()
        self.act = nn.LeakyReLU(0.1) if bn else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class _Pool(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.maxpool = nn.MaxPool2d(2, stride)
        self.one_sided = stride == 1

    def forward(self, x):  # darknet pads the stride-1 pool on the bottom and right only
        return self.maxpool(nn.functional.pad(x, (0, 1, 0, 1)) if self.one_sided else x)


def yolo_tiny():
    mods, c = [], 3
    for k in (16, 32, 64, 128, 256, 512):
        mods += [_Darknet(c, k, 3), _Pool(2 if k < 512 else 1)]
        c = k
    mods += [_Darknet(512, 1024, 3), _Darknet(1024, 1024, 3), _Darknet(1024, 125, 1, bn=False)]
    return _Seq(nn.Sequential(*mods))


class _Seq(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = layers

    def forward(self, x):
        return self.layers(x)


BUILDERS = {"alexnet": alexnet, "vgg16": vgg16, "resnet18": resnet18, "resnet34": resnet34,
            "resnet50": resnet50, "mobilenet_v2": mobilenet_v2,
            "efficientnet_b0": efficientnet_b0, "yolo_tiny": yolo_tiny}
INPUT = {name: (1, 3, 224, 224) for name in BUILDERS} | {"yolo_tiny": (1, 3, 416, 416)}


def calibrated(name: str, seed: int = 0) -> nn.Module:
    """``name``'s network with seeded random weights and BatchNorm statistics taken from
    one random batch (so that activations keep their scale), in eval mode: what the
    benchmarks measure on (not a trained network's densities)."""
    torch.manual_seed(seed)
    net = BUILDERS[name]()
    for mod in net.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None   # a cumulative average: this batch's statistics
    with torch.no_grad():
        net.train()(torch.randn(4, 3, 64, 64))
    return net.eval()
