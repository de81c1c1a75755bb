"""The layer IR: one MAC layer type for the 7-deep conv loop nest, plus non-MAC ops.

A :class:`MacLayer` is the loop nest

    for n in N, k in K, p in P, q in Q, c in C/groups, r in R, s in S:
        out[n, k, p, q] += in[n, g*C/G + c, p*sh - ph + r*dh, q*sw - pw + s*dw] * w[k, c, r, s]

where g = k // (K/groups). Convolution, depthwise (groups == C == K), grouped, pointwise
(R = S = 1), fully connected (H = W = R = S = 1) and GEMM are all this one type.
The output size P, Q is stored, not recomputed, so that importers with their own
output-size rule (SCALE-Sim: ceil((H - R + s) / s), no padding) keep theirs.

A MatMul of two activations (attention's ``Q @ K^T`` and ``P @ V``) is a MacLayer with
``weights_are_activations=True`` (``origin="matmul"``, kind ``matmul``): the ``w`` operand of
the nest is a second activation tensor, one per image, so it has no parameters and moves
as an activation. Written per image (``N`` = batch) as a grouped GEMM: ``groups`` = heads
(batch matrices per image), ``C/groups`` the reduction, ``K/groups`` the output columns,
``Q`` the output rows (``H = P = 1``, ``W = Q``, ``R = S = 1``). :attr:`MacLayer.nest`
folds the batch into the groups (``N = 1``), which gives the shared-weight loop nest the
mapper, the cost model, the executor and the PE model run unchanged.

An :class:`OpLayer` is a non-MAC operation (pooling, elementwise add, concat, global
average pooling, activation, normalisation) that runs on the vector unit; it has an op
count and a tensor traffic, no MACs. Ops that reduce over the feature axis (``layernorm``,
``softmax``) hold that axis in ``C``: ``N`` the batch, ``H x W`` the rows (positions).
Op counts per element are in docs/vector_ops.md.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field

from tilesim._input import COUNT_MAX, limit_text

from .errors import WorkloadError
from .sparsity import Sparsity

MAC_KINDS = ("conv", "depthwise", "grouped", "pointwise", "fc", "gemm", "matmul")
OP_KINDS = ("maxpool", "avgpool", "gap", "add", "concat", "relu", "sigmoid", "swish", "mul",
            # standalone activations, batchnorm and data movement (from the importers)
            "relu6", "leaky", "hardswish", "hardsigmoid", "tanh", "gelu", "elu", "selu",
            "softplus", "mish", "softmax", "clip", "batchnorm", "transpose", "resize", "pad",
            "layernorm")
#: canonical activation names (the ``activation`` field, or the op of a standalone vector op)
ACTIVATIONS = ("relu", "relu6", "leaky", "sigmoid", "swish", "hardswish", "hardsigmoid",
               "tanh", "gelu", "elu", "selu", "softplus", "mish", "softmax", "clip")


def _whole(v, what: str, layer) -> int:
    """``v`` as an int when it is a whole number (numpy ints welcome); never truncated."""
    if type(v) is int:   # the common case, without the ABC check
        return v
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise WorkloadError(f"layer {layer!r}: {what} = {v!r} must be a whole number",
                            fix=f"give {what} as an integer (a fraction is not truncated)")
    return int(v)


def _check_layer(obj, dims, counts) -> None:
    """The checks every layer passes: a known activation, and dimensions and counts
    (MACs, elements, operations) within COUNT_MAX, so that no count derived from them
    (bytes, re-reads, cycles) can leave int64. (An empty name is the importers' to refuse:
    the mapper's caches key layers by shape with the name blanked.)"""
    if obj.activation is not None and obj.activation not in ACTIVATIONS:
        raise WorkloadError(f"layer {obj.name!r}: unknown activation {obj.activation!r}",
                            fix=f"use one of {', '.join(ACTIVATIONS)} (or none)")
    window = [(f, max(getattr(obj, f))) for f in ("stride", "padding", "dilation")
              if hasattr(obj, f)]
    for what, v in [(f, getattr(obj, f)) for f in dims] + window + list(counts):
        if v > COUNT_MAX:
            raise WorkloadError(f"layer {obj.name!r}: {what} = {v:.3g} is above the limit "
                                f"{limit_text(COUNT_MAX)} a layer may have",
                                fix="use smaller dimensions or a smaller batch")


def _ints(obj, fields) -> None:
    """Normalise integer fields (numpy ints welcome) and reject non-integers."""
    for f in fields:
        v = getattr(obj, f)
        if type(v) is int:   # the common case, without the ABC check
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise WorkloadError(f"layer {obj.name!r}: {f} = {v!r} must be a positive integer",
                                fix=f"give {f} a whole number >= 1")
        object.__setattr__(obj, f, int(v))
    for f in ("stride", "padding", "dilation"):
        if hasattr(obj, f):
            t = getattr(obj, f)
            if type(t) is not tuple or len(t) != 2 or type(t[0]) is not int or type(t[1]) is not int:
                object.__setattr__(obj, f, tuple(_whole(x, f, obj.name) for x in t))


def _sources(obj) -> None:
    """``sources`` as a tuple of layer names (a list is welcome); which names are legal is
    the :class:`Model`'s to check (it knows the other layers)."""
    s = obj.sources
    if type(s) is not tuple:
        if isinstance(s, str) or not isinstance(s, (list, tuple)):
            raise WorkloadError(f"layer {obj.name!r}: sources = {s!r} is not a list of layer "
                                "names", fix="give sources as a tuple of names, e.g. "
                                "('conv1',) ('' is the network input)")
        s = tuple(s)
        object.__setattr__(obj, "sources", s)
    for x in s:
        if type(x) is not str:
            raise WorkloadError(f"layer {obj.name!r}: source {x!r} is not a layer name",
                                fix="name the layers it reads as text ('' is the network input)")


def _check_window(name, stride, pad, dilation) -> None:
    for what, v, lo in (("stride", stride, 1), ("dilation", dilation, 1), ("padding", pad, 0)):
        if min(v) < lo:
            raise WorkloadError(f"layer {name!r}: {what} = {v} must be >= {lo}",
                                fix=f"give a {what} of at least {lo}")


def _pair(v, what: str, layer: str) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise WorkloadError(f"layer {layer!r}: {what} must be an int or a pair, got {v!r}",
                                fix=f"write {what}: 2 or {what}: [2, 2]")
        return _whole(v[0], what, layer), _whole(v[1], what, layer)
    v = _whole(v, what, layer)
    return v, v


def conv_out(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Standard (PyTorch/ONNX) output size: floor((size + 2 pad - d (kernel - 1) - 1) / stride) + 1."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class MacLayer:
    """A layer made of multiply-accumulates (conv / depthwise / grouped / fc / gemm)."""

    name: str
    N: int
    K: int
    C: int
    H: int
    W: int
    R: int
    S: int
    P: int
    Q: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = False
    batchnorm: bool = False  # a folded BatchNorm: 2*K parameters (scale, shift), no run-time cost
    activation: str | None = None  # fused post-op on the vector unit, e.g. "relu"
    origin: str = "conv"  # "conv", "fc", "gemm" or "matmul": how the layer was written
    # the w operand is a second activation (attention's MatMul): no parameters, moved as
    # an activation, one per image (see the module docstring and :attr:`nest`)
    weights_are_activations: bool = False
    # non-zero shares of the operands (workloads/sparsity.py); None: dense. Part of the
    # layer's shape (what it costs depends on it)
    sparsity: Sparsity | None = None
    # names of the layers whose outputs this layer reads, in order ("" = the network
    # input); empty: the previous layer's output (see :func:`layer_sources`). Not part of
    # the layer's shape: equality, hashing and the mappers' caches ignore it
    sources: tuple = field(default=(), compare=False)

    def __post_init__(self):
        _sources(self)
        _ints(self, ("N", "K", "C", "H", "W", "R", "S", "P", "Q", "groups"))
        for f in ("N", "K", "C", "H", "W", "R", "S", "P", "Q", "groups"):
            v = getattr(self, f)
            if v <= 0:
                raise WorkloadError(
                    f"layer {self.name!r}: {f} = {v!r} must be a positive integer",
                    fix=f"give {f} a value >= 1")
        for f in ("stride", "dilation"):
            if min(getattr(self, f)) <= 0:
                raise WorkloadError(f"layer {self.name!r}: {f} = {getattr(self, f)} must be positive")
        if min(self.padding) < 0:
            raise WorkloadError(f"layer {self.name!r}: padding = {self.padding} must be >= 0")
        if self.C % self.groups or self.K % self.groups:
            raise WorkloadError(
                f"layer {self.name!r}: groups = {self.groups} must divide C = {self.C} and K = {self.K}",
                fix="use a group count that divides both channel counts")
        if self.sparsity is not None and not isinstance(self.sparsity, Sparsity):
            raise WorkloadError(f"layer {self.name!r}: sparsity = {self.sparsity!r} is not "
                                "a Sparsity", fix="use tilesim.workloads.sparsity.Sparsity(...)")
        if self.weights_are_activations and (self.bias or self.batchnorm):
            raise WorkloadError(f"layer {self.name!r}: a MatMul of two activations has no "
                                "bias nor BatchNorm", fix="use an add or batchnorm op after it")
        _check_layer(self, ("N", "K", "C", "H", "W", "R", "S", "P", "Q"),
                     [("MACs", self.macs), ("input elements", self.input_elems),
                      ("output elements", self.output_elems), ("weights", self.weight_elems)])

    # ---- derived quantities -------------------------------------------------------
    @property
    def kind(self) -> str:
        if self.origin in ("fc", "gemm", "matmul"):
            return self.origin
        if self.groups > 1:
            return "depthwise" if self.groups == self.C == self.K else "grouped"
        if self.R == self.S == 1:
            return "pointwise"
        return "conv"

    @property
    def macs(self) -> int:
        return self.N * self.K * self.P * self.Q * (self.C // self.groups) * self.R * self.S

    @property
    def params(self) -> int:
        if self.weights_are_activations:
            return 0
        return self.weight_elems + (self.K if self.bias else 0) + (2 * self.K if self.batchnorm else 0)

    @property
    def weight_elems(self) -> int:
        """Elements of the w operand: shared by the batch, or one per image when it is an
        activation."""
        per = self.K * (self.C // self.groups) * self.R * self.S
        return per * self.N if self.weights_are_activations else per

    @property
    def nest(self) -> "MacLayer":
        """The loop nest with weights shared across images, as the mapper, cost model,
        executor and PE model read it: the layer itself, or, when the w operand is an
        activation (one per image), the batch folded into the groups: N = 1,
        groups x N, C x N, K x N. Input (N, C, H, W) and output (N, K, P, Q) keep their
        memory layout ((1, N*C, H, W) is the same bytes); the w operand becomes
        (N*K, C/groups, R, S), image n's matrices after image n-1's. MACs are unchanged."""
        if not self.weights_are_activations or self.N == 1:
            return self
        from dataclasses import replace
        return replace(self, N=1, groups=self.groups * self.N, C=self.C * self.N,
                       K=self.K * self.N)

    @property
    def input_elems(self) -> int:
        return self.N * self.C * self.H * self.W

    @property
    def output_elems(self) -> int:
        return self.N * self.K * self.P * self.Q

    @property
    def gemm(self) -> tuple[int, int, int, int]:
        """(groups, M, N, K) of the GEMM view of one group.

        M = N*P*Q output pixels, N = K/groups filters, K = C/groups*R*S reduction.
        """
        return (self.groups, self.N * self.P * self.Q, self.K // self.groups,
                (self.C // self.groups) * self.R * self.S)

    def with_batch(self, n: int) -> "MacLayer":
        from dataclasses import replace
        return replace(self, N=n)


@dataclass(frozen=True)
class OpLayer:
    """A non-MAC operation on the vector unit.

    ``ops`` counts elementary operations (compare, add, multiply) and ``in_elems`` /
    ``out_elems`` the tensor elements read and written.
    """

    name: str
    op: str
    N: int
    C: int
    H: int
    W: int
    P: int
    Q: int
    K: int = 0  # output channels (defaults to C)
    R: int = 1
    S: int = 1
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    inputs: int = 1  # number of input tensors (add, concat, mul)
    activation: str | None = None  # fused post-op (e.g. the ReLU after a residual add)
    # constant parameters the op reads: LayerNorm's scale and shift, a layer scale's or a
    # position embedding's values, a class token
    params: int = 0
    # names of the layers whose outputs this op reads, in order ("" = the network input);
    # empty: the previous layer's output (see :func:`layer_sources`); ignored by equality
    sources: tuple = field(default=(), compare=False)

    def __post_init__(self):
        if self.op not in OP_KINDS:
            raise WorkloadError(f"layer {self.name!r}: unknown op {self.op!r}",
                                fix=f"use one of {', '.join(OP_KINDS)}")
        if self.K == 0:
            object.__setattr__(self, "K", self.C)
        _sources(self)
        _ints(self, ("N", "C", "H", "W", "P", "Q", "K", "R", "S", "inputs"))
        if isinstance(self.params, bool) or not isinstance(self.params, numbers.Integral) \
                or self.params < 0:
            raise WorkloadError(f"layer {self.name!r}: params = {self.params!r} must be a "
                                "whole number >= 0", fix="give params as a count of values")
        object.__setattr__(self, "params", int(self.params))
        for f in ("N", "C", "H", "W", "P", "Q", "K", "R", "S", "inputs"):
            v = getattr(self, f)
            if v <= 0:
                raise WorkloadError(f"layer {self.name!r}: {f} = {v!r} must be a positive integer",
                                    fix=f"give {f} a value >= 1")
        _check_layer(self, ("N", "C", "H", "W", "P", "Q", "K", "R", "S", "inputs"),
                     [("input elements", self.in_elems), ("output elements", self.out_elems),
                      ("operations", self.ops)])

    kind = property(lambda self: self.op)
    macs = 0

    @property
    def rows(self) -> int:
        """Rows a feature-axis op (layernorm, softmax) reduces: N x H x W, C values each."""
        return self.N * self.H * self.W

    @property
    def in_elems(self) -> int:
        if self.op == "concat":
            return self.N * self.K * self.H * self.W
        if self.op == "layernorm":  # its input, then its scale and shift (2 C values)
            return self.N * self.C * self.H * self.W + self.params
        return self.inputs * self.N * self.C * self.H * self.W

    @property
    def out_elems(self) -> int:
        return self.N * self.K * self.P * self.Q

    @property
    def ops(self) -> int:
        """Elementary vector-unit operations, a fused activation included."""
        return self._ops + (self.out_elems if self.activation else 0)

    @property
    def _ops(self) -> int:
        if self.op in ("maxpool", "avgpool"):
            return self.out_elems * self.R * self.S
        if self.op == "gap":
            return self.N * self.C * self.H * self.W
        if self.op in ("add", "mul"):
            return self.out_elems * (self.inputs - 1)
        if self.op == "concat":
            return 0
        if self.op == "layernorm":  # docs/vector_ops.md: 5 per element, 3 per row
            return 5 * self.out_elems + 3 * self.rows
        if self.op == "softmax":    # docs/vector_ops.md: 4 per element, 1 per row
            return 4 * self.out_elems + self.rows
        return self.out_elems  # activations, batchnorm, transpose, resize, pad: one op per element

    def with_batch(self, n: int) -> "OpLayer":
        from dataclasses import replace
        return replace(self, N=n)


Layer = MacLayer | OpLayer

#: the name :func:`layer_sources` gives the network's input tensor
NETWORK_INPUT = ""


def operands(layer) -> int:
    """How many activation tensors ``layer`` reads: a MAC layer 1 (2 for a MatMul of two
    activations, ``weights_are_activations``), a vector op its ``inputs`` (which count
    the constant operands too: a layer scale, a position embedding, a class token)."""
    return 2 if getattr(layer, "weights_are_activations", False) else getattr(layer, "inputs", 1)


def layer_sources(model: "Model") -> tuple:
    """Per layer of ``model``, the names of the layers whose output tensors it reads, in
    order (:data:`NETWORK_INPUT` for the network input): the layer's own ``sources`` when
    given, else the previous layer's output (the network input for the first layer). A
    layer that reads more tensors than it names (an ``add`` of ``inputs=2`` with one
    source or none) reads the rest from tensors of unknown producers, written ``None``:
    they are kept in DRAM by the network-level planner. The zoo and the importers name
    every tensor a layer reads that some layer produces, so a ``None`` there is a
    constant operand counted in ``inputs`` (ConvNeXt's layer scale, ViT's class token and
    position embedding: the op's ``params``), which is indeed read from DRAM. Every named
    source is an earlier layer (:class:`Model` checks it)."""
    out, prev = [], NETWORK_INPUT
    for l in model.layers:
        want = operands(l)
        src = tuple(l.sources) if l.sources else (prev,)
        out.append(src + (None,) * max(0, want - len(src)))
        prev = l.name
    return tuple(out)


def _check_sources(model: "Model", names: set) -> None:
    """Every named source is the network input or an earlier layer of ``model``, and no
    layer names more sources than it reads (O(layers + sources))."""
    earlier: set = {NETWORK_INPUT}
    for i, l in enumerate(model.layers):
        if l.sources:
            want = operands(l)
            if len(l.sources) > want:
                raise WorkloadError(
                    f"model {model.name!r}: layer {l.name!r} ({l.kind}) names "
                    f"{len(l.sources)} sources {list(l.sources)} but reads "
                    f"{want} tensor{'s' if want > 1 else ''}",
                    fix=f"name at most {want} source{'s' if want > 1 else ''}, in the "
                        "order it reads them")
            for s in l.sources:
                if s in earlier:
                    continue
                if s == l.name:
                    what = "its own output"
                elif s in names:
                    what = "a later layer's output"
                else:
                    what = "a tensor no layer of the model writes"
                raise WorkloadError(
                    f"model {model.name!r}: layer {l.name!r} (layer {i}) reads {s!r}, "
                    f"{what}",
                    fix="name an earlier layer ('' is the network input); a layer taken "
                        "from another model keeps its sources: clear them with "
                        "dataclasses.replace(layer, sources=())")
        earlier.add(l.name)


@dataclass(frozen=True)
class Model:
    """An ordered list of layers with a name, a batch size and where it came from."""

    name: str
    layers: tuple
    batch: int = 1
    source: str = "zoo"
    #: {MAC layer name: its operands' values} when the model was run on a real input
    #: and asked to keep them (``load_model(..., actual_data=True)``): the cost model then
    #: counts compressed formats and gated MACs on them (mapper/actual.py). Not part of
    #: the model's identity (equality, hash, repr).
    data: dict | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        seen: set = set()
        dup = {l.name for l in self.layers if l.name in seen or seen.add(l.name)}   # O(n)
        if dup:
            raise WorkloadError(f"model {self.name!r}: duplicate layer names {sorted(dup)}",
                                fix="give every layer a unique name")
        if not self.layers:
            raise WorkloadError(f"model {self.name!r} has no layers")
        _check_sources(self, seen)
        # the whole network within COUNT_MAX too: totals (and a layer's bytes at the
        # slowest bandwidth allowed, arch.units.BPC_MIN) then stay inside int64
        total = sum(max(l.macs, l.input_elems) if isinstance(l, MacLayer)
                    else max(l.in_elems, l.out_elems, l.ops) for l in self.layers)
        if total > COUNT_MAX:
            raise WorkloadError(f"model {self.name!r}: {total:.3g} MACs and elements in all "
                                f"(batch {self.batch}) are above the limit "
                                f"{limit_text(COUNT_MAX)} a model may have",
                                fix="use a smaller batch or fewer layers")

    @property
    def macs(self) -> int:
        return sum(l.macs for l in self.layers)

    @property
    def params(self) -> int:
        return sum(l.params for l in self.layers)

    @property
    def mac_layers(self) -> list[MacLayer]:
        return [l for l in self.layers if isinstance(l, MacLayer)]

    def frame(self):
        """The layers as a table, one row each (pandas DataFrame; what ``model.csv`` holds)."""
        import pandas as pd
        rows = []
        for l in self.layers:
            dil = getattr(l, "dilation", (1, 1))   # an OpLayer has no dilation nor groups
            rows.append({"layer": l.name, "kind": l.kind, "N": l.N, "C": l.C, "H": l.H,
                         "W": l.W, "K": l.K, "R": l.R, "S": l.S, "P": l.P, "Q": l.Q,
                         "stride_h": l.stride[0], "stride_w": l.stride[1],
                         "pad_h": l.padding[0], "pad_w": l.padding[1],
                         "dilation_h": dil[0], "dilation_w": dil[1],
                         "groups": getattr(l, "groups", 1), "macs": l.macs, "params": l.params})
        return pd.DataFrame(rows)


# ---- constructors -----------------------------------------------------------------
def conv(name, n, c, h, w, k, r, s=None, stride=1, pad=0, dilation=1, groups=1,
         bias=False, batchnorm=False, activation=None, sources=()) -> MacLayer:
    """A convolution with PyTorch semantics (symmetric padding, floor output rule).
    ``sources`` (every constructor here): the names of the layers it reads (see
    :func:`layer_sources`)."""
    s = r if s is None else s
    st, pd, dl = (_pair(stride, "stride", name), _pair(pad, "padding", name),
                  _pair(dilation, "dilation", name))
    _check_window(name, st, pd, dl)
    p = conv_out(h, r, st[0], pd[0], dl[0])
    q = conv_out(w, s, st[1], pd[1], dl[1])
    if p <= 0 or q <= 0:
        raise WorkloadError(
            f"layer {name!r}: a {r}x{s} filter (dilation {dl}, padding {pd}) does not fit "
            f"a {h}x{w} input", fix="use a larger input, more padding or a smaller filter")
    return MacLayer(name=name, N=n, K=k, C=c, H=h, W=w, R=r, S=s, P=p, Q=q, stride=st,
                    padding=pd, dilation=dl, groups=groups, bias=bias, batchnorm=batchnorm,
                    activation=activation, sources=sources)


def fc(name, n, in_features, out_features, bias=True, activation=None, h=1, w=1,
       sources=()) -> MacLayer:
    """A fully connected layer: N x in -> N x out; applied at every one of ``h`` x ``w``
    positions (a Linear on an (N, tokens, features) or (N, H, W, features) tensor) it is
    a 1x1 convolution over them, written ``fc``."""
    return MacLayer(name=name, N=n, K=out_features, C=in_features, H=h, W=w, R=1, S=1,
                    P=h, Q=w, bias=bias, activation=activation, origin="fc", sources=sources)


def gemm(name, m, n, k, sources=()) -> MacLayer:
    """A plain GEMM (M x K) @ (K x N): M rows become the batch, K the input features."""
    return MacLayer(name=name, N=m, K=n, C=k, H=1, W=1, R=1, S=1, P=1, Q=1, origin="gemm",
                    sources=sources)


def pool(name, op, n, c, h, w, r, stride=None, pad=0, sources=()) -> OpLayer:
    st = _pair(r if stride is None else stride, "stride", name)
    pd = _pair(pad, "padding", name)
    _check_window(name, st, pd, (1, 1))
    p, q = conv_out(h, r, st[0], pd[0]), conv_out(w, r, st[1], pd[1])
    return OpLayer(name=name, op=op, N=n, C=c, H=h, W=w, P=p, Q=q, R=r, S=r, stride=st, padding=pd,
                   sources=sources)


def gap(name, n, c, h, w, sources=()) -> OpLayer:
    return OpLayer(name=name, op="gap", N=n, C=c, H=h, W=w, P=1, Q=1, sources=sources)


def eltwise(name, op, n, c, h, w, inputs=2, activation=None, params=0, sources=()) -> OpLayer:
    return OpLayer(name=name, op=op, N=n, C=c, H=h, W=w, P=h, Q=w, inputs=inputs,
                   activation=activation, params=params, sources=sources)


def concat(name, n, channels: list[int], h, w, params: int = 0, sources=()) -> OpLayer:
    return OpLayer(name=name, op="concat", N=n, C=channels[0], K=sum(channels), H=h, W=w,
                   P=h, Q=w, inputs=len(channels), params=params, sources=sources)


def rowwise(name, op, n, c, h=1, w=1, params: int = 0, sources=()) -> OpLayer:
    """A feature-axis op (``layernorm``, ``softmax``) over N x H x W rows of C values."""
    return OpLayer(name=name, op=op, N=n, C=c, H=h, W=w, P=h, Q=w, params=params,
                   sources=sources)


def matmul(name, n, rows, red, cols, heads=1, sources=()) -> MacLayer:
    """A MatMul of two activations per image: ``heads`` products (rows x red) @ (red x cols)
    (see the module docstring for the layout)."""
    return MacLayer(name=name, N=n, K=heads * cols, C=heads * red, H=1, W=rows, R=1, S=1,
                    P=1, Q=rows, groups=heads, origin="matmul", weights_are_activations=True,
                    sources=sources)
