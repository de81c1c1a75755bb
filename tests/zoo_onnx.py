"""Test helper: write a zoo model as an ONNX graph with onnx.helper (no download, no torch).

The graph is what an exporter such as torch.onnx writes for the network: Conv with a
weight (and bias) initializer, a separate BatchNormalization with its four per-channel
tensors, Relu / Clip(0, 6) / LeakyRelu / Sigmoid nodes, SiLU as ``x * Sigmoid(x)``,
MaxPool / AveragePool / GlobalAveragePool, Flatten + Gemm (transB=1) for fully connected
layers, and the residual and squeeze-and-excitation dataflow (a downsample reads the
block input, an add reads the main branch and the shortcut, an SE ``mul`` reads the
depthwise output and the gate). Dataflow is recovered from the zoo's layer names (the
same rules as tests/test_zoo.py).

Weights are shapes only by default (``weights="external"``: initializers that point to an
external data file, which the importer never opens), so even VGG-16 builds in
milliseconds; ``weights="float16"`` embeds real zero weights (input in float16 too).
"""
from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from tilesim.workloads.ir import MacLayer, Model

OPSET = 17


class _Builder:
    def __init__(self, weights: str):
        self.nodes, self.inits, self.weights, self.offset = [], [], weights, 0
        self.dtype = TensorProto.FLOAT16 if weights == "float16" else TensorProto.FLOAT

    def init(self, name: str, dims) -> str:
        dims = [int(d) for d in dims]
        if self.weights == "float16":
            import numpy as np
            t = helper.make_tensor(name, self.dtype, dims,
                                   np.zeros(dims, np.float16).tobytes(), raw=True)
        else:
            t = TensorProto(name=name, data_type=self.dtype, dims=dims,
                            data_location=TensorProto.EXTERNAL)
            n = 4
            for d in dims:
                n *= d
            for k, v in (("location", "weights.bin"), ("offset", str(self.offset)),
                         ("length", str(n))):
                e = t.external_data.add()
                e.key, e.value = k, v
            self.offset += n
        self.inits.append(t)
        return name

    def scalar(self, name: str, value: float) -> str:
        import numpy as np
        dt = np.float16 if self.dtype == TensorProto.FLOAT16 else np.float32
        self.inits.append(onnx.numpy_helper.from_array(np.array(value, dt), name))
        return name

    def node(self, op, inputs, output, name, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def act(self, kind, x, base) -> str:
        if kind is None:
            return x
        if kind == "relu":
            return self.node("Relu", [x], f"{base}/relu", f"{base}/relu")
        if kind == "relu6":
            return self.node("Clip", [x, self.scalar(f"{base}/min", 0.0),
                                      self.scalar(f"{base}/max", 6.0)], f"{base}/clip", f"{base}/clip")
        if kind == "leaky":
            return self.node("LeakyRelu", [x], f"{base}/leaky", f"{base}/leaky", alpha=0.1)
        if kind == "sigmoid":
            return self.node("Sigmoid", [x], f"{base}/sigmoid", f"{base}/sigmoid")
        if kind == "swish":
            s = self.node("Sigmoid", [x], f"{base}/silu_sig", f"{base}/silu_sig")
            return self.node("Mul", [x, s], f"{base}/silu", f"{base}/silu")
        if kind in ("hardswish", "hardsigmoid"):
            op = {"hardswish": "HardSwish", "hardsigmoid": "HardSigmoid"}[kind]
            return self.node(op, [x], f"{base}/{kind}", f"{base}/{kind}")
        raise ValueError(kind)


def _end_pad(size, out, kernel, stride, dilation, begin) -> int:
    """The end padding that gives ``out`` (symmetric when that already does)."""
    if (size + 2 * begin - dilation * (kernel - 1) - 1) // stride + 1 == out:
        return begin
    return (out - 1) * stride + dilation * (kernel - 1) + 1 - size - begin


def _pads(l) -> list[int]:
    d = getattr(l, "dilation", (1, 1))
    eh = _end_pad(l.H, l.P, l.R, l.stride[0], d[0], l.padding[0])
    ew = _end_pad(l.W, l.Q, l.S, l.stride[1], d[1], l.padding[1])
    return [l.padding[0], l.padding[1], eh, ew]


def zoo_to_onnx(model: Model, weights: str = "external", dynamic_batch: bool = True):
    """An ``onnx.ModelProto`` of ``model`` (see the module docstring)."""
    b = _Builder(weights)
    layers = model.layers
    first = layers[0]
    x0 = "input"
    out: dict[str, str] = {}
    cur = x0
    order = [l.name for l in layers]

    def block_input(prefix):
        i = next(i for i, n in enumerate(order) if n.startswith(prefix + "."))
        return out[order[i - 1]] if i else x0

    for i, l in enumerate(layers):
        if isinstance(l, MacLayer):
            src = cur
            if l.name.endswith(".downsample.0"):
                src = block_input(l.name.rsplit(".", 2)[0])
            if l.kind == "fc":
                src = b.node("Flatten", [src], f"{l.name}/flatten_out", f"{l.name}/flatten")
                ins = [src, b.init(f"{l.name}.weight", (l.K, l.C))]
                if l.bias:
                    ins.append(b.init(f"{l.name}.bias", (l.K,)))
                y = b.node("Gemm", ins, f"{l.name}/out", l.name, transB=1)
            else:
                ins = [src, b.init(f"{l.name}.weight", (l.K, l.C // l.groups, l.R, l.S))]
                if l.bias:
                    ins.append(b.init(f"{l.name}.bias", (l.K,)))
                y = b.node("Conv", ins, f"{l.name}/out", l.name, kernel_shape=[l.R, l.S],
                           strides=list(l.stride), pads=_pads(l), dilations=list(l.dilation),
                           group=l.groups)
            if l.batchnorm:
                bn = [y] + [b.init(f"{l.name}.bn.{p}", (l.K,)) for p in
                            ("weight", "bias", "running_mean", "running_var")]
                y = b.node("BatchNormalization", bn, f"{l.name}/bn_out", f"{l.name}/bn")
            y = b.act(l.activation, y, l.name)
        else:
            if l.op in ("maxpool", "avgpool"):
                y = b.node("MaxPool" if l.op == "maxpool" else "AveragePool", [cur],
                           f"{l.name}/out", l.name, kernel_shape=[l.R, l.S],
                           strides=list(l.stride), pads=_pads(l))
            elif l.op == "gap":
                y = b.node("GlobalAveragePool", [cur], f"{l.name}/out", l.name)
            elif l.op == "add":
                prefix = l.name.removesuffix(".add")
                ds = f"{prefix}.downsample.0"
                short = out[ds] if ds in out else block_input(prefix)
                # the main branch: the layer before the downsample when there is one
                main = out[order[i - 2]] if ds in out else cur
                y = b.node("Add", [main, short], f"{l.name}/out", l.name)
            elif l.op == "mul":  # SE: scale the tensor that fed the squeeze
                y = b.node("Mul", [out[order[i - 4]], cur], f"{l.name}/out", l.name)
            else:
                raise ValueError(f"no ONNX export for op {l.op!r}")
            y = b.act(l.activation, y, l.name)
        out[l.name] = cur = y
    batch = "N" if dynamic_batch else first.N
    inp = helper.make_tensor_value_info(x0, b.dtype, [batch, first.C, first.H, first.W])
    last = layers[-1]
    shape = [batch, last.K] if isinstance(last, MacLayer) and last.kind == "fc" else \
        [batch, last.K, last.P, last.Q]
    outp = helper.make_tensor_value_info(cur, b.dtype, shape)
    graph = helper.make_graph(b.nodes, model.name, [inp], [outp], initializer=b.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                             producer_name="tilesim-tests")
