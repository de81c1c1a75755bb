"""Test helper: ConvNeXt-T and ViT-B/16 as ONNX graphs written with onnx.helper.

The graphs are what an exporter writes for the torchvision modules (opset 20, for
LayerNormalization and Gelu): LayerNorm2d as Transpose / LayerNormalization /
Transpose, Linear as MatMul + Add of the bias, the layer scale as a Mul by a (C, 1, 1)
initializer, attention as in torch.onnx's export of ``nn.MultiheadAttention``: the
in-projection, Reshape + Transpose + Gather into q, k, v, ``MatMul(q, Transpose(k))``,
a Mul by the scalar 1/sqrt(d), Softmax, ``MatMul(p, v)``, Transpose + Reshape back, the
out-projection. The class token is an Expand of a (1, 1, 768) initializer to the batch
(computed from Shape(input)), concatenated before the patches. Node names follow the
torch module paths, so the imported layers equal the zoo's. Weights are shapes only
(external data that is never read).
"""
from __future__ import annotations

import onnx
from onnx import TensorProto, helper

OPSET = 20


class _G:
    def __init__(self):
        self.nodes, self.inits, self.k = [], [], 0

    def w(self, name, dims) -> str:
        t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(dims),
                        data_location=TensorProto.EXTERNAL)
        for k, v in (("location", "w.bin"), ("offset", "0"), ("length", "4")):
            e = t.external_data.add()
            e.key, e.value = k, v
        self.inits.append(t)
        return name

    def ints(self, name, values) -> str:
        self.inits.append(helper.make_tensor(name, TensorProto.INT64, [len(values)], values))
        return name

    def scalar(self, name, value) -> str:
        self.inits.append(helper.make_tensor(name, TensorProto.FLOAT, [], [value]))
        return name

    def n(self, op, inputs, name, **attrs) -> str:
        self.k += 1
        out = f"t{self.k}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def linear(self, x, name, cin, cout) -> str:
        y = self.n("MatMul", [x, self.w(f"{name}.weight", [cin, cout])], name)
        return self.n("Add", [y, self.w(f"{name}.bias", [cout])], f"{name}.bias_add")

    def layernorm(self, x, name, c) -> str:
        return self.n("LayerNormalization", [x, self.w(f"{name}.weight", [c]),
                                             self.w(f"{name}.bias", [c])], name, axis=-1,
                      epsilon=1e-6)

    def ln2d(self, x, name, c) -> str:
        x = self.n("Transpose", [x], f"{name}.permute", perm=[0, 2, 3, 1])
        x = self.layernorm(x, f"{name}.layer_norm", c)
        return self.n("Transpose", [x], f"{name}.permute_1", perm=[0, 3, 1, 2])

    def conv(self, x, name, cin, cout, k, stride=1, pad=0, groups=1) -> str:
        return self.n("Conv", [x, self.w(f"{name}.weight", [cout, cin // groups, k, k]),
                               self.w(f"{name}.bias", [cout])], name, kernel_shape=[k, k],
                      strides=[stride, stride], pads=[pad] * 4, group=groups)

    def model(self, x, name) -> onnx.ModelProto:
        inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])
        out = helper.make_tensor_value_info(x, TensorProto.FLOAT, None)
        g = helper.make_graph(self.nodes, name, [inp], [out], self.inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])


def convnext_tiny() -> onnx.ModelProto:
    g = _G()
    x = g.conv("input", "features.0.0", 3, 96, 4, stride=4)
    x = g.ln2d(x, "features.0.1", 96)
    idx, cin = 1, 96
    for s, (dim, depth) in enumerate(zip((96, 192, 384, 768), (3, 3, 9, 3))):
        if s:
            x = g.ln2d(x, f"features.{idx}.0", cin)
            x = g.conv(x, f"features.{idx}.1", cin, dim, 2, stride=2)
            idx += 1
        for b in range(depth):
            p = f"features.{idx}.{b}"
            y = g.conv(x, f"{p}.block.0", dim, dim, 7, pad=3, groups=dim)
            y = g.n("Transpose", [y], f"{p}.block.1.permute", perm=[0, 2, 3, 1])
            y = g.layernorm(y, f"{p}.block.2", dim)
            y = g.n("Gelu", [g.linear(y, f"{p}.block.3", dim, 4 * dim)], f"{p}.block.4")
            y = g.linear(y, f"{p}.block.5", 4 * dim, dim)
            y = g.n("Transpose", [y], f"{p}.block.6.permute", perm=[0, 3, 1, 2])
            y = g.n("Mul", [g.w(f"{p}.layer_scale", [dim, 1, 1]), y], f"{p}.mul")
            x = g.n("Add", [y, x], f"{p}.add")
        idx, cin = idx + 1, dim
    x = g.n("GlobalAveragePool", [x], "avgpool")
    x = g.ln2d(x, "classifier.0", 768)
    x = g.n("Flatten", [x], "classifier.1", axis=1)
    x = g.n("Gemm", [x, g.w("classifier.2.weight", [1000, 768]),
                     g.w("classifier.2.bias", [1000])], "classifier.2", transB=1)
    return g.model(x, "convnext_tiny")


def vit_b_16() -> onnx.ModelProto:
    g = _G()
    E, T, H, D, MLP = 768, 197, 12, 64, 3072
    x = g.conv("input", "conv_proj", 3, E, 16, stride=16)
    x = g.n("Reshape", [x, g.ints("shape_tokens", [0, E, 196])], "reshape")
    x = g.n("Transpose", [x], "permute", perm=[0, 2, 1])
    n = g.n("Slice", [g.n("Shape", ["input"], "shape"), g.ints("s0", [0]), g.ints("s1", [1])],
            "batch")
    cls = g.n("Expand", [g.w("class_token", [1, 1, E]),
                         g.n("Concat", [n, g.ints("one_e", [1, E])], "cls_shape", axis=0)],
              "expand")
    x = g.n("Concat", [cls, x], "cat", axis=1)
    x = g.n("Add", [x, g.w("encoder.pos_embedding", [1, T, E])], "encoder.add")
    scale = g.scalar("scale", D ** -0.5)
    heads = g.ints("shape_heads", [0, 0, 3, H, D])
    merged = g.ints("shape_merged", [0, 0, E])
    for i in range(12):
        p = f"encoder.layers.encoder_layer_{i}"
        a = f"{p}.self_attention"
        y = g.layernorm(x, f"{p}.ln_1", E)
        qkv = g.n("Reshape", [g.linear(y, f"{a}.in_proj", E, 3 * E), heads], f"{a}.split")
        qkv = g.n("Transpose", [qkv], f"{a}.heads", perm=[2, 0, 3, 1, 4])
        q, k, v = (g.n("Gather", [qkv, _scalar_index(g, f"{a}.i{j}", j)], f"{a}.{part}", axis=0)
                   for j, part in enumerate("qkv"))
        kt = g.n("Transpose", [k], f"{a}.kt", perm=[0, 1, 3, 2])
        s = g.n("Mul", [g.n("MatMul", [q, kt], f"{a}.matmul"), scale], f"{a}.scale")
        prob = g.n("Softmax", [s], f"{a}.softmax", axis=-1)
        ctx = g.n("MatMul", [prob, v], f"{a}.matmul_1")
        ctx = g.n("Transpose", [ctx], f"{a}.merge", perm=[0, 2, 1, 3])
        ctx = g.n("Reshape", [ctx, merged], f"{a}.merge_reshape")
        x = g.n("Add", [g.linear(ctx, f"{a}.out_proj", E, E), x], f"{p}.add")
        y = g.layernorm(x, f"{p}.ln_2", E)
        y = g.n("Gelu", [g.linear(y, f"{p}.mlp.0", E, MLP)], f"{p}.mlp.1")
        x = g.n("Add", [x, g.linear(y, f"{p}.mlp.3", MLP, E)], f"{p}.add_1")
    x = g.layernorm(x, "encoder.ln", E)
    x = g.n("Gather", [x, _scalar_index(g, "cls_index", 0)], "select", axis=1)
    x = g.n("Gemm", [x, g.w("heads.head.weight", [1000, E]), g.w("heads.head.bias", [1000])],
            "heads.head", transB=1)
    return g.model(x, "vit_b_16")


def _scalar_index(g: _G, name: str, value: int) -> str:
    g.inits.append(helper.make_tensor(name, TensorProto.INT64, [], [value]))
    return name


BUILDERS = {"convnext_tiny": convnext_tiny, "vit_b_16": vit_b_16}
