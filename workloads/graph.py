"""A framework-neutral dataflow graph and its lowering to the layer IR (shared by importers).

The ONNX and PyTorch importers translate their graphs into a list of :class:`GNode` (a
small canonical op set, static shapes attached) and call :func:`lower`, so that both
produce the zoo's conventions exactly:

* a BatchNorm right after a conv or fc (and read by nothing else) is folded into it
  (``batchnorm=True``); elsewhere it is a vector op ``batchnorm``;
* an activation is fused into the layer that produced its input (MAC or vector op,
  e.g. the ReLU after a residual add) when that output feeds nothing else; otherwise it
  is a vector op of its own (``relu``, ``swish``, ...);
* ``x * sigmoid(x)`` is recognised as ``swish`` (SiLU), as ONNX writes it;
* an add of a constant vector right after a bias-free fc or conv is its bias;
* reshape / flatten / squeeze / dropout / identity / slicing (getitem, split, chunk)
  are free (no layer); transpose is data movement (a vector op copying every element,
  written in its input's (N, C, H, W) view), except next to a MatMul of two activations
  (the head split and merge of attention: a transpose read only by such MatMuls, or
  reading one's output, is free: the array streams its operands in either order);
  resize is a vector op;
* a linear layer (and a layernorm or softmax) reads its features from the last axis:
  (N, ..., C) with the positions between (rank 3 (N, L, C) as H x W = 1 x L, rank 4
  (N, H, W, C) as H x W); a linear layer over positions is an ``fc`` with H x W > 1;
* a MatMul of two activations (…, M, R) @ (…, R, N) is a ``matmul`` MAC layer
  (``weights_are_activations``): N the leading axis, the other leading axes the groups;
  a multiplication or division of its output by a scalar (attention's 1/sqrt(d)) is
  folded into it; softmax and layernorm are vector ops of their own (never fused);
* constant parameters read by an add, mul or concat (a layer scale, a position
  embedding, a class token) and a layernorm's scale and shift are the op's ``params``;
* an explicit pad read only by a conv or pool is folded into its padding; elsewhere it
  is a vector op ``pad`` (a copy of the padded tensor);
* tensors of rank 2 (N, C) and 3 (N, C, L) are read as (N, C, 1, 1) and (N, C, 1, L);
* every layer names the layers whose outputs it reads (``sources``, in the node's input
  order), through free views and fused or folded nodes (an activation, a BatchNorm, a
  bias, a pad, attention's scale: their output is their layer's); a graph input is
  ``""`` (``NETWORK_INPUT``); constant operands are no sources.

Asymmetric padding (ONNX ``pads`` with begin != end, ``auto_pad=SAME_*``, darknet's
one-sided pool padding) cannot be written as the IR's symmetric pair: the layer keeps
the begin (top, left) padding and the exact output size P, Q taken from the graph.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from .errors import WorkloadError
from .ir import (ACTIVATIONS, NETWORK_INPUT, MacLayer, Model,  # noqa: F401 (ACTIVATIONS: graph's too)
                 OpLayer)
#: vector ops over the feature (last) axis: never fused, features in C
ROWWISE = ("softmax", "layernorm")

#: canonical graph ops
GRAPH_OPS = ("conv", "linear", "matmul", "layernorm", "bn", "act", "maxpool", "avgpool",
             "gap", "add", "mul", "concat", "free", "transpose", "resize", "pad", "pass")


@dataclass
class GNode:
    """One node of the neutral graph.

    ``inputs`` are the dynamic (activation) tensors, in order; constants and weights are
    described by ``attrs``. ``consts`` holds the shapes of constant operands of add/mul.

    attrs by op: conv: K, R, S, stride (2), pads (top, left, bottom, right), dilation (2),
    groups, bias; linear: K, C, bias; both: sparsity (the weights' zeros, counted:
    :func:`workloads.sparsity.counted`; absent when dense or not known); act: kind; maxpool/avgpool: R, S, stride, pads;
    concat: axis; pad: pads (top, left, bottom, right); layernorm: params; add, mul,
    concat: params (the constant parameters they read, 0 if none). matmul: inputs are
    the two activations (A, B), shapes (…, M, R) and (…, R, N).
    """

    name: str
    op: str
    inputs: list
    output: str
    attrs: dict = field(default_factory=dict)
    consts: list = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class Graph:
    """A neutral graph with the user's weights: what ``sim.kernels.graphrun`` runs to
    measure activation densities (``--input-sample``).

    ``nodes`` are the importer's :class:`GNode` before lowering, each with
    ``attrs["run"]``, what running it needs beyond the lowering's attrs (RUN_ATTRS);
    ``params`` maps the keys named there to numpy arrays (the user's weights, an ONNX
    file's initializers or a module's parameters and buffers); ``inputs`` is ((tensor,
    shape), ...) of the graph inputs; ``layers`` {layer name: (tensors read, tensor
    written, weight node)} from :func:`lower`; ``model`` the lowered Model."""

    model: Model
    nodes: tuple
    shapes: dict
    inputs: tuple
    outputs: tuple
    params: dict
    layers: dict
    source: str


#: ``attrs["run"]`` by op (keys into :attr:`Graph.params` are strings): conv: w, b
#: (None: no bias), pad_mode; linear: w, b, layout ("kc": (K, C) as PyTorch and Gemm
#: transB=1 store it, "ck"), alpha, beta (Gemm's); bn: w, b, mean, var, eps;
#: layernorm: w, b, eps, axes (normalised trailing axes); act: alpha, beta (also
#: softplus's and selu's gamma), lo, hi, axis (softmax: an axis or a tuple of axes),
#: approximate (gelu), scale (a factor applied first: attention's 1/sqrt(d));
#: maxpool / avgpool: count_include_pad, dilation; add / mul / concat: fn
#: (add, sub, mul, div, sum, concat), operands [("t", tensor) | ("p", key) | ("v",
#: number)] in order; free: fn (the importer's op: only reshapes run), perm (a view that
#: is a transpose); transpose: perm; pad: mode, value; resize: mode; pass, and anything
#: the interpreter cannot run: fn. ``opaque``: the node stands for more than it says
#: (nn.MultiheadAttention's head split); the interpreter refuses it. A view that selects
#: elements: ``index`` (a tuple of ints, slices, None and Ellipsis, as numpy indexes:
#: slices, ``x[:, 0]``, narrow, select, a part of chunk / split / unbind), or ``take``
#: ((axis, an int or a list of ints): a Gather of constant indices); ``through``: a node
#: whose value is several tensors (chunk, split), passed through whole to the views that
#: pick its parts. Neither selects along the batch axis.
RUN_ATTRS = ("w", "b", "layout", "alpha", "beta", "mean", "var", "eps", "axes", "lo", "hi",
             "axis", "approximate", "scale", "count_include_pad", "dilation", "fn",
             "operands", "perm", "mode", "value", "pad_mode", "opaque", "index", "take",
             "through")


def nchw(shape, what: str) -> tuple[int, int, int, int]:
    """(N, C, H, W) of a static tensor shape of rank 1 to 4."""
    s = tuple(int(d) for d in shape)
    if len(s) == 4:
        return s
    if len(s) == 3:
        return (s[0], s[1], 1, s[2])
    if len(s) == 2:
        return (s[0], s[1], 1, 1)
    if len(s) == 1:
        return (1, s[0], 1, 1)
    raise WorkloadError(f"{what}: tensor of shape {list(s)} (rank {len(s)}) is not supported",
                        fix="tilesim models tensors of rank 1 to 4 (N, C, H, W)")


def features_last(shape, what: str) -> tuple[int, int, int, int]:
    """(N, C, H, W) of a tensor whose features are its last axis: (N, ..., C)."""
    s = tuple(int(d) for d in shape)
    if len(s) == 4:
        return (s[0], s[3], s[1], s[2])
    if len(s) == 3:
        return (s[0], s[2], 1, s[1])
    if len(s) in (1, 2):
        return nchw(s, what)
    raise WorkloadError(f"{what}: tensor of shape {list(s)} (rank {len(s)}) is not supported",
                        fix="tilesim models tensors of rank 1 to 4")


def _free_near_matmul(nodes: list[GNode], outputs) -> list[GNode]:
    """Turn into free views the transposes that only feed MatMuls of two activations or
    that read one's output (through other views): attention's head split and merge."""
    by_out = {n.output: n for n in nodes}
    readers: dict = {}
    for n in nodes:
        for t in n.inputs:
            readers.setdefault(t, []).append(n)
    outs = set(outputs)

    def only_mm(t, depth=0) -> bool:
        rs = readers.get(t, [])
        return (bool(rs) and t not in outs and depth < 16 and all(
            r.op == "matmul" or (r.op in ("free", "transpose") and only_mm(r.output, depth + 1))
            for r in rs))

    def from_mm(t, depth=0) -> bool:
        n = by_out.get(t)
        if n is None or depth >= 16:
            return False
        return n.op == "matmul" or (n.op in ("free", "transpose") and bool(n.inputs)
                                    and from_mm(n.inputs[0], depth + 1))

    return [replace(n, op="free") if n.op == "transpose" and (
        only_mm(n.output) or from_mm(n.inputs[0])) else n for n in nodes]


def _swish(nodes: list[GNode], consumers: dict) -> list[GNode]:
    """Rewrite ``m = x * sigmoid(x)`` (sigmoid read only by the mul) as ``act swish`` on x."""
    by_out = {n.output: n for n in nodes}
    drop, out = set(), []
    for n in nodes:
        if n.op == "mul" and len(n.inputs) == 2 and not n.consts:
            for a, b in (n.inputs, n.inputs[::-1]):
                sig = by_out.get(b)
                if (sig is not None and sig.op == "act" and sig.attrs["kind"] == "sigmoid"
                        and sig.inputs == [a] and consumers.get(b, 0) == 1):
                    drop.add(id(sig))
                    n = replace(n, op="act", inputs=[a], attrs={"kind": "swish"})
                    break
        out.append(n)
    return [n for n in out if id(n) not in drop]


class _Layer:
    """A layer under construction (fields still change while fusing); ``reads`` and
    ``out`` are its graph tensors (:func:`lower`'s ``tensors``)."""

    def __init__(self, cls, **kw):
        self.cls, self.kw = cls, kw
        self.reads, self.out = (), None
        self.node = None   # a conv's or linear's node: where its weights are

    def build(self):
        return self.cls(**self.kw)


def lower(nodes: list[GNode], shapes: dict, outputs, name: str, batch: int, source: str,
          tensors: dict | None = None) -> Model:
    """The layer-IR :class:`Model` of a neutral graph (see the module docstring).

    ``tensors``, when given, is filled with {layer name: (the tensors it reads, the
    tensor it writes, the node holding its weights)} in the graph's names: the reads are
    the node's inputs (an explicit pad folded in: the unpadded tensor), the write is the
    last tensor fused into the layer (after a folded BatchNorm, bias, activation or
    scale); the node is a conv's or linear's own (None for other layers)."""
    def count(nodes) -> dict:
        c: dict = {}
        for t in [t for n in nodes for t in n.inputs] + list(outputs):
            c[t] = c.get(t, 0) + 1
        return c

    nodes = _free_near_matmul(_swish(nodes, count(nodes)), outputs)
    consumers = count(nodes)

    layers: list[_Layer] = []
    producer: dict = {}   # tensor -> _Layer whose output it is (after fusion and aliases)
    alias: dict = {}      # tensor -> the tensor it is a free view of
    used_names: set = set()

    def single_use(t) -> bool:
        while True:
            if consumers.get(t, 0) != 1:
                return False
            if t not in alias:
                return True
            t = alias[t]

    def shape(t, who):
        try:
            return shapes[t]
        except KeyError:
            raise WorkloadError(f"node {who!r}: tensor {t!r} has no static shape",
                                fix="give the input shape (--input-shape / input_shape=)") from None

    def uniq(n: str) -> str:
        base, i = n or "layer", 1
        while n in used_names or not n:
            n, i = f"{base}_{i}", i + 1
        used_names.add(n)
        return n

    made = {nd.output for nd in nodes}

    def producer_name(t):
        """The name of the layer whose output tensor ``t`` is (through free views and
        fusions), NETWORK_INPUT for a graph input, None when unknown."""
        for _ in range(len(alias) + 1):
            if t in producer:
                return producer[t].kw["name"]
            if t in alias:
                t = alias[t]
                continue
            break
        return NETWORK_INPUT if t is not None and t not in made else None

    def push(layer: _Layer, out: str, reads) -> None:
        """Append ``layer`` writing tensor ``out`` and reading tensors ``reads``: its
        sources, up to the first tensor of no known producer (the rest are None in
        :func:`layer_sources`, in their places)."""
        layer.kw["name"] = uniq(layer.kw["name"])
        srcs = []
        for t in reads:
            s = producer_name(t)
            if s is None:
                break
            srcs.append(s)
        layer.kw["sources"] = tuple(srcs)
        layer.reads, layer.out = tuple(reads), out
        layers.append(layer)
        producer[out] = layer

    pending: dict = {}  # output of an explicit pad -> (its input, its pads, its name)

    def materialize(t) -> None:
        src, _, who = pending.pop(t)
        n, c, h, w = nchw(shape(src, who), who)
        _, k, p, q = nchw(shape(t, who), who)
        push(_Layer(OpLayer, name=who, op="pad", N=n, C=c, H=h, W=w, K=k, P=p, Q=q), t, [src])

    for nd in nodes:
        op, a = nd.op, nd.attrs
        if op == "pad":
            pending[nd.output] = (nd.inputs[0], tuple(a["pads"]), nd.name)
            continue
        if op in ("conv", "maxpool", "avgpool") and nd.inputs[0] in pending and \
                consumers.get(nd.inputs[0], 0) == 1:
            src, pads, _ = pending.pop(nd.inputs[0])
            nd = replace(nd, inputs=[src], attrs=dict(a, pads=tuple(
                x + y for x, y in zip(a["pads"], pads))))
            a = nd.attrs
        for t in nd.inputs:
            if t in pending:
                materialize(t)
        if op in ("free", "pass"):
            alias[nd.output] = nd.inputs[0] if nd.inputs else None
            if op == "free" and nd.inputs and nd.inputs[0] in producer:
                producer[nd.output] = producer[nd.inputs[0]]
            continue
        src = nd.inputs[0] if nd.inputs else None
        if op == "conv":
            n, c, h, w = nchw(shape(src, nd.name), nd.name)
            _, k, p, q = nchw(shape(nd.output, nd.name), nd.name)
            t, l = a["pads"][0], a["pads"][1]
            push(_Layer(MacLayer, name=nd.name, N=n, K=k, C=c, H=h, W=w, R=a["R"], S=a["S"],
                        P=p, Q=q, stride=tuple(a["stride"]), padding=(t, l),
                        dilation=tuple(a["dilation"]), groups=a["groups"], bias=a["bias"],
                        sparsity=a.get("sparsity")),
                 nd.output, nd.inputs)
            layers[-1].node = nd.name
        elif op == "linear":
            ins = shape(src, nd.name)
            if len(ins) in (3, 4) and ins[-1] == a["C"]:  # over tokens / positions
                n, c, h, w = features_last(ins, nd.name)
            else:
                numel = math.prod(ins)
                if numel % a["C"]:
                    raise WorkloadError(f"node {nd.name!r}: input of {numel} elements does "
                                        f"not split into rows of {a['C']} features")
                n, c, h, w = numel // a["C"], a["C"], 1, 1
            push(_Layer(MacLayer, name=nd.name, N=n, K=a["K"], C=c, H=h, W=w, R=1, S=1, P=h,
                        Q=w, bias=a["bias"], origin="fc", sparsity=a.get("sparsity")),
                 nd.output, nd.inputs)
            layers[-1].node = nd.name
        elif op == "matmul":
            push(_matmul(nd, shape(nd.inputs[0], nd.name), shape(nd.inputs[1], nd.name),
                         shape(nd.output, nd.name)), nd.output, nd.inputs)
        elif op == "layernorm":
            n, c, h, w = features_last(shape(src, nd.name), nd.name)
            push(_Layer(OpLayer, name=nd.name, op="layernorm", N=n, C=c, H=h, W=w, P=h, Q=w,
                        params=a.get("params", 0)), nd.output, nd.inputs)
        elif op == "bn":
            prod = producer.get(src)
            if (prod is not None and prod.cls is MacLayer and not prod.kw.get("batchnorm")
                    and not prod.kw.get("activation") and single_use(src)
                    and not prod.kw.get("weights_are_activations")):
                prod.kw["batchnorm"] = True
                prod.out = nd.output
                producer[nd.output] = prod
            else:
                push(_op(nd, "batchnorm", shape(src, nd.name), shape(nd.output, nd.name)),
                     nd.output, nd.inputs)
        elif op == "act" and a["kind"] in ROWWISE:
            n, c, h, w = features_last(shape(src, nd.name), nd.name)
            push(_Layer(OpLayer, name=nd.name, op=a["kind"], N=n, C=c, H=h, W=w, P=h, Q=w),
                 nd.output, nd.inputs)
        elif op == "act":
            prod = producer.get(src)
            if prod is not None and not prod.kw.get("activation") and single_use(src):
                prod.kw["activation"] = a["kind"]
                prod.out = nd.output
                producer[nd.output] = prod
            else:
                push(_op(nd, a["kind"], shape(src, nd.name), shape(nd.output, nd.name)),
                     nd.output, nd.inputs)
        elif op in ("add", "mul"):
            prod = producer.get(src)
            if (op == "add" and len(nd.inputs) == 1 and len(nd.consts) == 1
                    and prod is not None and prod.cls is MacLayer and not prod.kw.get("bias")
                    and not prod.kw.get("weights_are_activations")
                    and not prod.kw.get("batchnorm") and not prod.kw.get("activation")
                    and single_use(src) and len(nd.consts[0]) >= 1  # a vector, not a scalar
                    and math.prod(nd.consts[0]) == prod.kw["K"]):
                prod.kw["bias"] = True
                prod.out = nd.output
                producer[nd.output] = prod
                continue
            if (op == "mul" and len(nd.inputs) == 1 and len(nd.consts) == 1
                    and math.prod(nd.consts[0]) == 1 and prod is not None
                    and prod.kw.get("weights_are_activations") and not prod.kw.get("activation")
                    and single_use(src)):  # attention's scale, folded into its MatMul
                producer[nd.output] = prod
                alias[nd.output] = src
                prod.out = nd.output
                continue
            n, c, h, w = nchw(shape(nd.output, nd.name), nd.name)
            push(_Layer(OpLayer, name=nd.name, op=op, N=n, C=c, H=h, W=w, P=h, Q=w,
                        inputs=max(2, len(nd.inputs) + len(nd.consts)),
                        params=a.get("params", 0)), nd.output, nd.inputs)
        elif op == "concat":
            ins = [nchw(shape(t, nd.name), nd.name) for t in nd.inputs]
            n, k, h, w = nchw(shape(nd.output, nd.name), nd.name)
            rank = len(shape(nd.output, nd.name))
            if a["axis"] % rank != 1:
                raise WorkloadError(f"node {nd.name!r}: concat along axis {a['axis']} is not "
                                    "supported", fix="tilesim concatenates along channels (axis 1)")
            push(_Layer(OpLayer, name=nd.name, op="concat", N=n, C=ins[0][1], K=k, H=h, W=w,
                        P=h, Q=w, inputs=len(ins) + len(nd.consts),
                        params=a.get("params", 0)), nd.output, nd.inputs)
        elif op == "gap":  # over H x W, or over the tokens of (N, T, C) (``tokens``)
            n, c, h, w = (features_last if a.get("tokens") else nchw)(shape(src, nd.name), nd.name)
            push(_Layer(OpLayer, name=nd.name, op="gap", N=n, C=c, H=h, W=w, P=1, Q=1),
                 nd.output, nd.inputs)
        elif op in ("maxpool", "avgpool"):
            n, c, h, w = nchw(shape(src, nd.name), nd.name)
            _, k, p, q = nchw(shape(nd.output, nd.name), nd.name)
            push(_Layer(OpLayer, name=nd.name, op=op, N=n, C=c, H=h, W=w, P=p, Q=q, R=a["R"],
                        S=a["S"], stride=tuple(a["stride"]), padding=tuple(a["pads"][:2])),
                 nd.output, nd.inputs)
        elif op == "transpose":  # same elements: the input's (N, C, H, W) view
            push(_op(nd, op, shape(src, nd.name), shape(src, nd.name)), nd.output, nd.inputs)
        elif op == "resize":
            push(_op(nd, op, shape(src, nd.name), shape(nd.output, nd.name)), nd.output,
                 nd.inputs)
        else:  # pragma: no cover - importers only emit GRAPH_OPS
            raise AssertionError(op)
    if not layers:
        raise WorkloadError(f"model {name!r}: the graph has no layers tilesim can time",
                            source=source, fix="give a model with convolutions, GEMMs or "
                            "vector ops")
    if tensors is not None:
        tensors.update((l.kw["name"], (l.reads, l.out, l.node)) for l in layers)
    return Model(name=name, layers=tuple(l.build() for l in layers), batch=batch, source=source)


def _matmul(nd: GNode, a_shape, b_shape, out_shape) -> _Layer:
    """The ``matmul`` MAC layer of (…, M, R) @ (…, R, N) -> (…, M, N), both activations."""
    a_s, b_s, o_s = (tuple(int(d) for d in x) for x in (a_shape, b_shape, out_shape))
    if min(len(a_s), len(b_s)) < 2 or a_s[:-2] != o_s[:-2] or b_s[:-2] != o_s[:-2] \
            or a_s[-1] != b_s[-2]:
        raise WorkloadError(f"node {nd.name!r}: MatMul of two activations {list(a_s)} @ "
                            f"{list(b_s)} with broadcasting is not supported",
                            fix="give both operands the same leading (batch, head) axes")
    lead = o_s[:-2]
    n = lead[0] if lead else 1
    g = math.prod(lead[1:])
    m, r, c = a_s[-2], a_s[-1], b_s[-1]
    return _Layer(MacLayer, name=nd.name, N=n, K=g * c, C=g * r, H=1, W=m, R=1, S=1, P=1,
                  Q=m, groups=g, origin="matmul", weights_are_activations=True)


def _op(nd: GNode, op: str, in_shape, out_shape) -> _Layer:
    n, c, h, w = nchw(in_shape, nd.name)
    _, k, p, q = nchw(out_shape, nd.name)
    return _Layer(OpLayer, name=nd.name, op=op, N=n, C=c, H=h, W=w, K=k, P=p, Q=q)
