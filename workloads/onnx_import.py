"""Read an ONNX model into the layer IR (needs the ``onnx`` extra).

Only the graph and the weights' shapes are read, never the weight data (external data
files need not be present), except with ``graph=True`` (``--input-sample``): then the
values the file holds are kept, to run the model on a real input
(``sim.kernels.graphrun``). Shapes come from ONNX shape inference after the graph
inputs are fixed: the leading dimension of every data input is the batch and is set to
``batch``; any other dynamic dimension needs ``input_shape``. A Slice whose bounds nodes
compute from activations' shapes (``torch.onnx.export`` of ``chunk``) gets them folded
from a first inference's shapes, and shapes are inferred again. A graph input that has an
initializer, or that is a declared weight (every node reading it reads it as a
parameter: the weight or bias of Conv / Gemm, the second operand of MatMul when its
shape in the file is static, the tensors of BatchNormalization / LayerNormalization),
keeps its own shape, as exporters such as ZigZag's write weights as graph inputs.

Supported ops (the zoo's conventions, see :mod:`workloads.graph`): Conv (1-D and 2-D,
groups, dilation, pads, auto_pad), Gemm, MatMul with a constant weight (+ Add of a
bias), MatMul of two activations (attention: ``matmul``, a Mul / Div of its output by a
scalar folded in), BatchNormalization, LayerNormalization (last axis), Relu / Clip / LeakyRelu / Sigmoid / HardSwish / HardSigmoid /
Tanh / Gelu / Elu / Selu / Softplus / Mish / Softmax, ``x * Sigmoid(x)`` (SiLU),
MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool / ReduceMean over H, W, Add /
Sub / Mul / Div / Sum, Concat, Reshape / Flatten / Squeeze / Unsqueeze / Identity /
Dropout / Cast / Gather / Slice / Split / Expand of an activation (free views), Transpose
(data movement, free next to a MatMul of two activations), Resize / Upsample, Pad (folded
into the conv or pool that reads it). Nodes whose inputs
are all constants or shapes (Shape, Gather, Constant ...) are folded away. Any other op
is an error listing every unsupported node, unless ``allow_unsupported`` is set: then
each such node is treated as a free pass-through, with a warning.

The layers are those of the file: an exporter that already folded BatchNorm into the
conv weights (``torch.onnx.export`` of a module in eval mode, with its default constant
folding) writes convs with a bias and no BatchNormalization, so each such conv counts K
parameters (bias) instead of 2K (scale, shift): torchvision's ResNet-18 exported that way
imports with 11,684,712 parameters instead of 11,689,512; MACs are unchanged.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

from .errors import WorkloadError, regular_file
from .graph import GNode, lower
from .sparsity import counted

_ACTS = {"Relu": "relu", "LeakyRelu": "leaky", "Sigmoid": "sigmoid", "HardSwish": "hardswish",
         "HardSigmoid": "hardsigmoid", "Tanh": "tanh", "Gelu": "gelu", "Elu": "elu",
         "Selu": "selu", "Softplus": "softplus", "Mish": "mish", "Softmax": "softmax"}
_FREE = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Cast", "Gather",
         "Slice", "Split", "Expand"}
#: node input slots that hold parameters: a graph input read only there is a weight
_WEIGHT_SLOTS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2),
                 "BatchNormalization": (1, 2, 3, 4), "LayerNormalization": (1, 2),
                 "InstanceNormalization": (1, 2)}
_ELTWISE = {"Add": "add", "Sub": "add", "Sum": "add", "Mul": "mul", "Div": "mul"}
_STATIC = {"Shape", "Size"}  # outputs known once shapes are static


def _need_onnx():
    try:
        import onnx
    except ImportError:
        raise WorkloadError("reading ONNX models needs the onnx package",
                            fix="pip install 'tilesim[onnx]'") from None
    return onnx


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1x3x224x224"`` -> (1, 3, 224, 224), or a WorkloadError saying how to write it."""
    try:
        dims = tuple(int(d) for d in str(text).lower().replace(",", "x").split("x"))
    except ValueError:
        dims = ()
    if not dims or min(dims) <= 0:
        raise WorkloadError(f"input shape {text!r} is not a list of positive integers",
                            fix="write it like 1x3x224x224 (batch x channels x height x width)")
    return dims


def read_onnx(src, batch: int = 1, input_shape=None, allow_unsupported: bool = False,
              name: str | None = None, graph: bool = False):
    """A :class:`Model` from an ONNX file path, bytes or ``onnx.ModelProto``; with
    ``graph``, a :class:`workloads.graph.Graph` holding it, the graph and the file's
    weights (the initializers' values and Constant nodes), to run on a real input.

    ``input_shape``: the full shape of the (single) graph input, e.g. ``(1, 3, 224, 224)``
    or ``"1x3x224x224"``, or a dict {input name: shape}; its leading (batch) entry must
    be 1 or ``batch``. ``allow_unsupported``: treat unsupported ops as free pass-through
    ops with a warning instead of failing.
    """
    onnx = _need_onnx()
    from google.protobuf.message import DecodeError

    where = str(src) if isinstance(src, (str, Path)) else "<onnx model>"
    if isinstance(src, (str, Path)):
        regular_file(src)
        try:
            data = Path(src).read_bytes()
        except OSError as e:
            raise WorkloadError(f"cannot read the file: {e.strerror}", source=where,
                                fix="check the path and its permissions") from None
        name = name or Path(src).stem
    elif isinstance(src, (bytes, bytearray)):
        data = bytes(src)
    else:
        data = None
        model = src
    if data is not None:
        try:
            model = onnx.load_model_from_string(data)
        except (DecodeError, ValueError, RuntimeError) as e:
            raise WorkloadError(f"not a valid ONNX file, corrupt or truncated ({e})",
                                source=where, fix="export the model again or check the "
                                "download; tilesim reads ONNX protobuf (.onnx) files") from None
    if not isinstance(model, onnx.ModelProto):
        raise WorkloadError(f"expected an ONNX file, bytes or onnx.ModelProto, got "
                            f"{type(src).__name__}", source=where)
    name = name or model.graph.name or "onnx_model"
    _check_structure(model, where)
    if data is None:  # the caller's ModelProto: work on a copy
        model = type(model).FromString(model.SerializeToString())
    _weights_as_initializers(onnx, model, where)
    # before _fix_inputs drops the data; external data from the file's folder
    values = _values(model, Path(src).parent if isinstance(src, (str, Path)) else None) \
        if graph else None
    counts = _weight_counts(model)   # before _fix_inputs drops the large payloads
    model = _fix_inputs(onnx, model, batch, input_shape, where, copy=False)
    _fold_pads(model)

    def infer():
        try:
            return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
        except Exception as e:  # onnx raises its own InferenceError / ValidationError types
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise WorkloadError(f"ONNX shape inference failed: {msg}", source=where,
                                fix="check the model with onnx.checker, or give "
                                "--input-shape (API: input_shape=)") from None
    inferred = infer()
    if _fold_slices(model, inferred):   # slice bounds computed from shapes, now known
        inferred = infer()
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    nodes, shapes, outputs = _translate(onnx, inferred.graph, where, allow_unsupported, opset,
                                        counts)
    tensors: dict = {}
    m = lower(nodes, shapes, outputs, name=name, batch=batch, source=f"onnx:{where}",
              tensors=tensors)
    if not graph:
        return m
    from onnx import numpy_helper

    from .graph import Graph
    for n in inferred.graph.node:   # Constant nodes' values (small): operands of add, pad...
        if n.op_type == "Constant" and n.output[0] not in values:
            v = _const_value(_constant(onnx, n), numpy_helper)
            if v is not None:
                values[n.output[0]] = v
    _computed_values(inferred.graph, nodes, values, shapes, list(model.opset_import))
    inits = {t.name for t in inferred.graph.initializer}
    ins = tuple((i.name, shapes[i.name]) for i in inferred.graph.input
                if i.name not in inits and i.name in shapes)
    return Graph(model=m, nodes=tuple(nodes), shapes=shapes, inputs=ins,
                 outputs=tuple(outputs), params=values, layers=tensors, source=where)


def _computed_values(g, nodes, values, shapes, opsets) -> None:
    """Add to ``values`` the constants the nodes' run attrs name that nodes compute from
    the weights (an exporter's Identity of a shared bias, a Transpose or Cast of a
    weight), evaluated with ONNX's reference evaluator; those it cannot compute stay
    missing (running the node says so)."""
    need = set()
    for nd in nodes:
        r = nd.attrs.get("run") or {}
        need.update(v for k, v in r.items() if k in ("w", "b", "mean", "var", "value")
                    and isinstance(v, str))
        need.update(v for kind, v in r.get("operands", ()) if kind == "p")
    need -= set(values)
    if not need:
        return
    static, producers = {t.name for t in g.initializer}, {}
    for n in g.node:
        if n.op_type == "Constant" or (n.input and all(not t or t in static for t in n.input)):
            static.update(n.output)
            producers.update((o, n) for o in n.output)
    for t in sorted(need):
        v = _evaluate(t, producers, values, shapes, opsets)
        if v is not None:
            values[t] = v


def _evaluate(name, producers, values, shapes, opsets):
    """Tensor ``name`` computed by the static nodes that produce it from ``values`` and
    known shapes, or None."""
    return _fold(name, producers, shapes, opsets,
                 lambda t: values[t] if t in values else _NOT_LEAF)


#: :func:`_fold`'s leaf function's answer for a tensor that some node computes
_NOT_LEAF = object()


def _fold(name, producers, shapes, opsets, leaf):
    """The value of tensor ``name`` computed, with ONNX's reference evaluator, by the
    nodes (``producers``: tensor -> node) that produce it from leaves and known shapes
    (``Shape`` nodes); ``leaf(t)`` gives a tensor's value, None when folding must give
    up there, or :data:`_NOT_LEAF`. None when anything is missing or evaluation fails."""
    import numpy as np
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator
    inits, order, seen = {}, [], set()

    def visit(t) -> bool:
        if not t or t in seen:
            return True
        seen.add(t)
        v = leaf(t)
        if v is not _NOT_LEAF:
            if v is None:
                return False
            inits[t] = v
            return True
        n = producers.get(t)
        if n is None:
            return False
        if n.op_type == "Shape":
            if n.input[0] not in shapes:
                return False
            a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
            shp = shapes[n.input[0]]
            inits[t] = np.array(shp[a.get("start", 0):a.get("end", len(shp))], dtype=np.int64)
            return True
        if not all(visit(i) for i in n.input):
            return False
        if all(o is not n for o in order):
            order.append(n)
        return True

    if not visit(name):
        return None
    try:
        graph = helper.make_graph(order, "fold", [], [helper.make_empty_tensor_value_info(name)],
                                  [numpy_helper.from_array(np.asarray(v), k)
                                   for k, v in inits.items()])
        return np.asarray(ReferenceEvaluator(helper.make_model(
            graph, opset_imports=opsets or None)).run(None, {})[0])
    except Exception:
        return None


def _values(model, folder=None) -> dict:
    """{initializer: numpy array} of the initializers whose data the file holds, or an
    external data file in ``folder`` (a shape-only weight, or external data not there,
    has none: running a node that reads it says so)."""
    from onnx import external_data_helper, numpy_helper
    out = {}
    for t in model.graph.initializer:
        if t.data_location == 1 and folder is not None:
            try:
                external_data_helper.load_external_data_for_tensor(t, str(folder))
                t.data_location = 0
            except Exception:   # no such file, a bad offset, no location: no value
                pass
        if t.data_location == 1 or not (t.raw_data or t.float_data or t.int32_data
                                        or t.int64_data or t.double_data):
            if math.prod(t.dims) != 0:
                continue
        try:
            v = numpy_helper.to_array(t)
        except Exception:   # external data that is not there, or a broken payload
            continue
        if v.size == math.prod(t.dims):
            out[t.name] = v
    return out


def _constant(onnx, n):
    """The TensorProto of a Constant node (None for one of another kind)."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
    if "value" in attrs:
        return attrs["value"]
    if "value_float" in attrs:
        return onnx.helper.make_tensor("", onnx.TensorProto.FLOAT, [], [attrs["value_float"]])
    if "value_floats" in attrs:
        return onnx.helper.make_tensor("", onnx.TensorProto.FLOAT, [len(attrs["value_floats"])],
                                       attrs["value_floats"])
    if "value_int" in attrs:
        return onnx.helper.make_tensor("", onnx.TensorProto.INT64, [], [attrs["value_int"]])
    if "value_ints" in attrs:
        return onnx.helper.make_tensor("", onnx.TensorProto.INT64, [len(attrs["value_ints"])],
                                       attrs["value_ints"])
    return None


def _check_structure(model, where: str) -> None:
    """Catch a truncated or hand-broken graph before shape inference does, with names."""
    g = model.graph
    if not g.node:
        raise WorkloadError("the ONNX file has no graph nodes (empty, truncated or not ONNX)",
                            source=where, fix="export the model again")
    if not g.output:
        raise WorkloadError("the ONNX graph declares no outputs (truncated file?)",
                            source=where, fix="export the model again")
    known = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    for i, n in enumerate(g.node):
        for t in n.input:
            if t not in known:
                raise WorkloadError(f"node {n.name or n.op_type + '#' + str(i)!r} reads tensor "
                                    f"{t!r}, which nothing produces (truncated or not "
                                    "topologically sorted)", source=where,
                                    fix="export the model again, or sort it with onnx tools")
        known.update(n.output)
    for o in g.output:
        if o.name not in known:
            raise WorkloadError(f"graph output {o.name!r} is produced by no node (truncated file?)",
                                source=where, fix="export the model again")


def declared_weights(model) -> list:
    """Graph inputs without an initializer that are weights: every node reading one reads
    it in a parameter slot (:data:`_WEIGHT_SLOTS`, or MatMul's second operand when the
    file gives it a static shape)."""
    g = model.graph
    inits = {t.name for t in g.initializer}
    slots: dict = {}
    for n in g.node:
        for i, t in enumerate(n.input):
            if not t:
                continue
            if n.op_type == "MatMul" and i == 1:
                slots.setdefault(t, []).append("matmul")
            else:
                slots.setdefault(t, []).append(i in _WEIGHT_SLOTS.get(n.op_type, ()))
    out = []
    for vi in g.input:
        uses = slots.get(vi.name, [])
        if vi.name in inits or not uses:
            continue
        static = bool(_dims(vi)) and all(isinstance(d, int) and d > 0 for d in _dims(vi))
        if all(u is True for u in uses) or (static and all(u in (True, "matmul") for u in uses)):
            out.append(vi)
    return out


def _weights_as_initializers(onnx, model, where) -> None:
    """Give every declared weight (:func:`declared_weights`) a shape-only initializer, so
    that it keeps its shape and reads as a constant; ``model`` is the importer's own."""
    for vi in declared_weights(model):
        dims = _dims(vi)
        if not dims or not all(isinstance(d, int) and d > 0 for d in dims):
            raise WorkloadError(f"weight input {vi.name!r} has no static shape in the file "
                                f"({_fmt(dims) or 'none'})", source=where,
                                fix="export the model with static weight shapes, or with the "
                                "weights as initializers")
        model.graph.initializer.append(onnx.TensorProto(
            name=vi.name, data_type=vi.type.tensor_type.elem_type or onnx.TensorProto.FLOAT,
            dims=dims, data_location=onnx.TensorProto.EXTERNAL))


def _dims(vi) -> list:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]


def _fix_inputs(onnx, model, batch, input_shape, where, copy: bool):
    """Fix the graph inputs' shapes: batch first, then ``input_shape`` or the file's dims.

    Works on a copy when ``copy`` (the caller's ModelProto); large weights are dropped
    from it (only their shapes are used), which keeps shape inference fast and light."""
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if isinstance(input_shape, dict):
        given = {k: parse_shape("x".join(map(str, v)) if not isinstance(v, str) else v)
                 for k, v in input_shape.items()}
        unknown = set(given) - {i.name for i in inputs}
        if unknown:
            raise WorkloadError(f"input_shape names {sorted(unknown)}, which are not graph inputs",
                                source=where, fix="graph inputs: " +
                                ", ".join(i.name for i in inputs))
    elif input_shape is not None:
        shp = parse_shape(input_shape if isinstance(input_shape, str)
                          else "x".join(map(str, input_shape)))
        if len(inputs) != 1:
            raise WorkloadError(f"the model has {len(inputs)} inputs; one input shape is ambiguous",
                                source=where, fix="give a dict {input name: shape} in the API")
        given = {inputs[0].name: shp}
    else:
        given = {}
    if copy:
        model = type(model).FromString(model.SerializeToString())
    for t in model.graph.initializer:
        if math.prod(t.dims) > 64:  # small constants (shapes, pads, clip bounds) are read
            for f in ("raw_data", "float_data", "int32_data", "int64_data", "double_data",
                      "uint64_data", "string_data"):
                t.ClearField(f)
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = _dims(vi)
        if vi.name in given:
            want = list(given[vi.name])
            if dims and len(dims) != len(want):
                raise WorkloadError(f"input {vi.name!r} has rank {len(dims)} ({_fmt(dims)}), "
                                    f"but the input shape given is {_fmt(want)}", source=where,
                                    fix=f"give {len(dims)} dimensions, like {_example(dims)}")
            if (len(dims) == 4 and isinstance(dims[1], int) and dims[1] > 0
                    and want[1] != dims[1]):  # NCHW channels are fixed by the weights
                raise WorkloadError(f"input {vi.name!r} has {dims[1]} channels in the file "
                                    f"({_fmt(dims)}), but the input shape given is {_fmt(want)}",
                                    source=where, fix=f"give {dims[1]} channels, like "
                                    f"{_fmt([1, dims[1]] + want[2:])} (height and width may "
                                    "change)")
            if want[0] not in (1, batch):
                raise WorkloadError(f"the input shape {_fmt(want)} says batch {want[0]}, "
                                    f"but the batch is {batch}", source=where,
                                    fix=f"use --batch {want[0]} (API: batch={want[0]}), or "
                                    "write the input shape with a leading 1")
        else:
            want = list(dims)
            if not want:
                raise WorkloadError(f"input {vi.name!r} has no shape in the file", source=where,
                                    fix="give the input shape, e.g. --input-shape 1x3x224x224 "
                                    "(API: input_shape=)")
            dyn = [i for i, d in enumerate(want) if not isinstance(d, int) or d <= 0]
            if [i for i in dyn if i > 0]:
                raise WorkloadError(f"input {vi.name!r} has dynamic shape {_fmt(dims)}",
                                    source=where, fix="give the input shape, e.g. --input-shape "
                                    f"{_example(dims)} (API: input_shape=)")
        want[0] = batch
        shape = vi.type.tensor_type.shape
        del shape.dim[:]
        for d in want:
            shape.dim.add().dim_value = int(d)
    # shapes recorded for the old input shape would contradict the new ones: infer afresh
    del model.graph.value_info[:]
    for vi in model.graph.output:
        vi.type.tensor_type.ClearField("shape")
    return model


def _fmt(dims) -> str:
    return "x".join(str(d) for d in dims)


def _example(dims) -> str:
    return "x".join(str(d) if isinstance(d, int) and d > 0 else
                    ("1" if i == 0 else "224") for i, d in enumerate(dims))


def _translate(onnx, g, where, allow_unsupported, opset=0, counts=None):
    from onnx import numpy_helper

    shapes: dict = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        d = _dims(vi)
        if d and all(isinstance(x, int) and x > 0 for x in d):
            shapes[vi.name] = tuple(d)
    consts = {t.name: t for t in g.initializer}  # name -> TensorProto (shape, maybe data)
    static = set(consts)
    # static tensor -> {floating-point initializer of more than one value: elements} it is
    # computed from: the parameters an add, mul or concat reads
    params = {t.name: {t.name: math.prod(t.dims)} for t in g.initializer
              if t.data_type in _FLOATS and math.prod(t.dims) > 1}
    nodes, bad = [], []
    for i, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{i}"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        dyn = [t for t in n.input if t and t not in static]
        if n.op_type == "Constant":
            t = attrs.get("value")
            if t is None and "value_float" in attrs:
                t = onnx.helper.make_tensor("", onnx.TensorProto.FLOAT, [], [attrs["value_float"]])
            if t is None and "value_ints" in attrs:
                t = onnx.helper.make_tensor("", onnx.TensorProto.INT64, [len(attrs["value_ints"])],
                                            attrs["value_ints"])
            if t is not None:
                t.name = n.output[0]
                consts[n.output[0]] = t
            static.update(n.output)
            continue
        if n.op_type in _STATIC or not dyn:
            static.update(n.output)
            src = {k: v for t in n.input for k, v in params.get(t, {}).items()}
            params.update((o, src) for o in n.output if src)
            continue
        out = n.output[0]
        if n.op_type == "Split" and len(n.output) > 1:   # one free view a part
            nodes.extend(_split(n, name, attrs, dyn, consts, shapes, numpy_helper))
            continue
        try:
            nd = _node(n, name, attrs, dyn, consts, shapes, numpy_helper, counts or {})
            if nd.op in ("add", "mul", "concat", "layernorm"):
                src = {k: v for t in n.input if t not in dyn for k, v in params.get(t, {}).items()}
                nd.attrs["params"] = sum(src.values())
                if nd.op == "concat":
                    nd.consts = [shapes.get(t, ()) for t in n.input if t and t not in dyn]
        except WorkloadError as e:
            raise WorkloadError(e.bare, source=where, fix=e.fix) from None
        except _Unsupported as e:
            bad.append((n.op_type, name, str(e)))
            nd = GNode(name, "pass", dyn[:1], out)
        nd.attrs["run"] = _run(n, nd, attrs, dyn, consts, numpy_helper, opset, shapes)
        nodes.append(nd)
    if bad:
        listing = "; ".join(f"{op} ({nm!r}{': ' + why if why else ''})" for op, nm, why in bad)
        if not allow_unsupported:
            types = sorted({op for op, _, _ in bad})
            raise WorkloadError(f"unsupported ONNX ops {', '.join(types)} at nodes: {listing}",
                                source=where, fix="remove or replace these ops, or pass them "
                                "through as free ops with --passthrough-unsupported "
                                "(API: allow_unsupported=True)")
        warnings.warn(f"{where}: unsupported ONNX ops treated as free pass-through (no time, no "
                      f"traffic): {listing}", UserWarning, stacklevel=3)
    return nodes, shapes, [o.name for o in g.output]


class _Unsupported(Exception):
    pass


def _split(n, name, attrs, dyn, consts, shapes, numpy_helper) -> list:
    """An ONNX Split of an activation as one free view per output (PyTorch's ``chunk`` /
    ``split`` exported), each with its ``index`` (graph.RUN_ATTRS) when the part sizes
    are known (the ``split`` input or attribute, else equal parts, the last one smaller)
    and the axis is not the batch's."""
    x = dyn[0]
    shape = shapes.get(x, ())
    outs = [o for o in n.output]
    index = [None] * len(outs)
    if shape:
        axis = int(attrs.get("axis", 0)) % len(shape)
        sizes = attrs.get("split")
        if sizes is None and len(n.input) > 1 and n.input[1]:
            v = _const_value(consts.get(n.input[1]), numpy_helper)
            sizes = None if v is None else [int(a) for a in v.ravel()]
        if sizes is None:
            step = -(-shape[axis] // len(outs))
            sizes = [min(step, shape[axis] - i * step) for i in range(len(outs))]
        if axis and len(sizes) == len(outs) and sum(sizes) == shape[axis]:
            ends = [sum(sizes[:i + 1]) for i in range(len(sizes))]
            index = [(slice(None),) * axis + (slice(a, b),)
                     for a, b in zip([0] + ends[:-1], ends)]
    return [GNode(name if j == 0 else f"{name}_{j}", "free", [x], o,
                  {"run": {"fn": "Split", **({"index": ix} if ix else {})}})
            for j, (o, ix) in enumerate(zip(outs, index)) if o]


_FLOATS = (1, 10, 11, 16)  # TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16


def _fold_pads(model) -> None:
    """Give every Pad whose pads a chain of constant nodes computes (torch.onnx.export of
    ``F.pad``: Constant -> Reshape -> Slice -> Transpose -> Cast) the values as an
    initializer, so that shape inference sees through it and the pad can fold into the
    conv or pool reading it. ``model`` is the importer's own copy."""
    import numpy as np
    from onnx import numpy_helper
    g = model.graph
    consts = {t.name: t for t in g.initializer}
    static, producers = set(consts), {}
    for n in g.node:
        if n.op_type == "Constant" or (n.input and all(not t or t in static for t in n.input)):
            static.update(n.output)
            producers.update((o, n) for o in n.output)
    for n in g.node:
        if n.op_type == "Pad" and len(n.input) > 1 and n.input[1] in producers:
            v = _static_value(n.input[1], producers, consts, {}, list(model.opset_import))
            if v is not None and v.ndim == 1 and np.issubdtype(v.dtype, np.integer):
                folded = n.input[1] + "_tilesim_folded"
                g.initializer.append(numpy_helper.from_array(v.astype(np.int64), folded))
                n.input[1] = folded


def _fold_slices(model, inferred) -> bool:
    """Give every Slice whose starts, ends, axes or steps nodes compute from the shapes of
    activations (torch.onnx.export of ``chunk``: Shape -> Gather -> Div -> Mul) the values
    as initializers, from the shapes a first inference found, so that a second one gives
    the parts their shapes. True when any was folded. ``model`` is the importer's copy."""
    import numpy as np
    from onnx import numpy_helper
    g = model.graph
    shapes = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.input):
        dims = v.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
            shapes[v.name] = tuple(d.dim_value for d in dims)
    consts = {t.name: t for t in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    opsets = list(model.opset_import)
    done = False
    for n in g.node:
        if n.op_type != "Slice":
            continue
        for i in range(1, min(len(n.input), 5)):
            t = n.input[i]
            if not t or t in consts or t not in producers \
                    or producers[t].op_type == "Constant":
                continue
            v = _static_value(t, producers, consts, shapes, opsets)
            if v is not None and v.ndim == 1 and np.issubdtype(v.dtype, np.integer):
                folded = t + "_tilesim_folded"
                if folded not in consts:
                    consts[folded] = numpy_helper.from_array(v.astype(np.int64), folded)
                    g.initializer.append(consts[folded])
                n.input[i] = folded
                done = True
    return done


def _static_value(name, producers, consts, shapes, opsets):
    """The value of tensor ``name`` that folded nodes compute from small constants and
    known shapes (``Shape``), evaluated with ONNX's reference evaluator; None when it
    needs anything else (large or external data, an unknown shape) or fails."""
    from onnx import numpy_helper

    def leaf(t):
        if t not in consts:
            return _NOT_LEAF
        v = _const_value(consts[t], numpy_helper)
        return None if v is None or v.size > 4096 else v
    return _fold(name, producers, shapes, opsets, leaf)


def _s(v):
    return v.decode(errors="replace") if isinstance(v, bytes) else v


def _run(n, nd, attrs, dyn, consts, numpy_helper, opset, shapes) -> dict:
    """What running node ``n`` (lowered to ``nd``) needs (:data:`workloads.graph.RUN_ATTRS`):
    its weights and constants by name, and the attributes the lowering drops (``opset``:
    the file's default-domain version; ``shapes``: the static shapes)."""
    op = n.op_type
    ins = list(n.input) + [""] * 5

    def opt(i):
        return ins[i] or None

    if nd.op == "pass":
        return {"fn": op}
    if op == "Conv":
        return {"w": ins[1], "b": opt(2)}
    if op == "Gemm":
        return {"w": ins[1], "b": opt(2), "layout": "kc" if attrs.get("transB", 0) else "ck",
                "alpha": float(attrs.get("alpha", 1.0)), "beta": float(attrs.get("beta", 1.0))}
    if op == "MatMul" and nd.op == "linear":
        return {"w": ins[1], "b": None, "layout": "ck"}
    if op == "BatchNormalization":
        return {"w": ins[1], "b": ins[2], "mean": ins[3], "var": ins[4],
                "eps": float(attrs.get("epsilon", 1e-5))}
    if op == "LayerNormalization":
        return {"w": ins[1], "b": opt(2), "eps": float(attrs.get("epsilon", 1e-5)), "axes": 1}
    if op == "Clip":
        lo, hi = attrs.get("min"), attrs.get("max")
        for i in (1, 2):
            if opt(i):
                v = _const_value(consts.get(ins[i]), numpy_helper)
                if v is None:
                    return {"fn": "Clip with bounds that are not constants"}
                lo, hi = (float(v), hi) if i == 1 else (lo, float(v))
        return {"lo": lo, "hi": hi}
    if op == "LeakyRelu":
        return {"alpha": float(attrs.get("alpha", 0.01))}
    if op in ("HardSigmoid", "HardSwish"):
        return {"alpha": float(attrs.get("alpha", 0.2 if op == "HardSigmoid" else 1 / 6)),
                "beta": float(attrs.get("beta", 0.5))}
    if op in ("Elu", "Selu"):
        selu = (1.67326319217681884765625, 1.05070102214813232421875)   # ONNX's defaults
        return {"alpha": float(attrs.get("alpha", 1.0 if op == "Elu" else selu[0])),
                "beta": float(attrs.get("gamma", selu[1]))}
    if op == "Softmax":
        if 0 < opset < 13:   # the axes from ``axis`` (default 1) on, as one
            rank = len(shapes.get(dyn[0], ())) or 2
            return {"axis": tuple(range(int(attrs.get("axis", 1)) % rank, rank))}
        return {"axis": int(attrs.get("axis", -1))}
    if op == "Gelu":
        return {"approximate": _s(attrs.get("approximate", "none"))}
    if op in ("MaxPool", "AveragePool"):
        return {"count_include_pad": bool(attrs.get("count_include_pad", 0)),
                "dilation": tuple(attrs.get("dilations", ()) or ())}
    if op in _ELTWISE or op == "Concat":
        return {"fn": op.lower(), "operands": [("t", t) if t in dyn else ("p", t)
                                               for t in n.input if t]}
    if op in ("Slice", "Gather"):
        return {"fn": op, **_selection(n, attrs, consts, numpy_helper, shapes)}
    if op in _FREE:
        return {"fn": op}
    if op == "Transpose":
        return {"perm": tuple(attrs["perm"]) if "perm" in attrs else None}
    if op == "Pad":
        return {"mode": _s(attrs.get("mode", "constant")), "value": opt(2)}
    if op in ("Resize", "Upsample"):
        return {"mode": _s(attrs.get("mode", "nearest"))}
    return {}


def _selection(n, attrs, consts, numpy_helper, shapes) -> dict:
    """A Slice's numpy ``index`` or a Gather's ``take`` (graph.RUN_ATTRS), from constant
    starts, ends, axes, steps (inputs, or attributes before opset 10) or indices; empty
    when one is not a constant or the batch axis is selected (the interpreter refuses)."""
    rank = len(shapes.get(n.input[0], ()))
    if not rank:
        return {}

    def const(i):
        if len(n.input) <= i or not n.input[i]:
            return None
        v = _const_value(consts.get(n.input[i]), numpy_helper)
        return None if v is None else [int(a) for a in v.ravel()]

    if n.op_type == "Gather":
        axis = int(attrs.get("axis", 0)) % rank
        if len(n.input) < 2 or axis == 0:
            return {}
        v = _const_value(consts.get(n.input[1]), numpy_helper)
        if v is None or v.ndim > 1:
            return {}
        return {"take": (axis, int(v) if v.ndim == 0 else [int(a) for a in v])}
    if "starts" in attrs:   # opset < 10: attributes
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes, steps = list(attrs.get("axes", range(len(starts)))), [1] * len(starts)
    else:
        starts, ends, axes, steps = const(1), const(2), const(3), const(4)
        if starts is None or ends is None or (len(n.input) > 3 and n.input[3] and axes is None) \
                or (len(n.input) > 4 and n.input[4] and steps is None):
            return {}
        axes = axes if axes is not None else list(range(len(starts)))
        steps = steps if steps is not None else [1] * len(starts)
    index = [slice(None)] * rank
    for a, s0, e0, st in zip(axes, starts, ends, steps):
        a %= rank
        if a == 0 or st == 0:
            return {}
        index[a] = slice(s0, e0, st)   # numpy clamps as ONNX does
    return {"index": tuple(index)}


def _ints(v, n, default):
    v = list(v) if v is not None else []
    return v if v else [default] * n


def _const_value(t, numpy_helper):
    """A small constant's value, or None (external or missing data)."""
    if t is None:
        return None
    try:
        return numpy_helper.to_array(t)
    except Exception:
        return None


#: the values ONNX defines for a conv / pool's auto_pad attribute
_AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _window(attrs, kernel, in_shape, what):
    """(stride, pads as (top, left, bottom, right), dilation) of a conv / pool window."""
    nsp = len(kernel)
    stride = _ints(attrs.get("strides"), nsp, 1)
    dil = _ints(attrs.get("dilations"), nsp, 1)
    pads = _ints(attrs.get("pads"), 2 * nsp, 0)
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode(errors="replace") if isinstance(auto, bytes) else auto
    if auto not in _AUTO_PAD:
        raise WorkloadError(f"{what}: auto_pad = {auto!r} is not an ONNX value",
                            fix=f"use one of {', '.join(_AUTO_PAD)}")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * nsp)
        for i in range(nsp):
            size = in_shape[2 + i]
            total = max((-(-size // stride[i]) - 1) * stride[i] + (kernel[i] - 1) * dil[i] + 1
                        - size, 0)
            small = total // 2
            pads[i], pads[i + nsp] = ((small, total - small) if auto == "SAME_UPPER"
                                      else (total - small, small))
    elif auto == "VALID":
        pads = [0] * (2 * nsp)
    if nsp == 1:  # 1-D: (1, L)
        return (1, stride[0]), (0, pads[0], 0, pads[1]), (1, dil[0])
    if nsp != 2:
        raise _Unsupported(f"{nsp}-D {what} (tilesim models 1-D and 2-D)")
    return tuple(stride), tuple(pads), tuple(dil)


def _transposed(n) -> bool:
    """Whether node ``n``'s weight (input 1) is stored (C, K) rather than filters first:
    a MatMul's, or a Gemm's without transB."""
    if n.op_type == "Conv":
        return False
    return not (n.op_type == "Gemm" and any(a.name == "transB" and a.i for a in n.attribute))


def _weight_counts(model) -> dict:
    """(initializer name, transposed) -> the counted sparsity (:func:`_counted`) of
    every conv / fc weight initializer, taken while the file's payloads are still there
    (:func:`_fix_inputs` drops those of more than 64 values before translation)."""
    from onnx import numpy_helper
    inits = {t.name: t for t in model.graph.initializer}
    out: dict = {}
    for n in model.graph.node:
        if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1 \
                and n.input[1] in inits:
            key = (n.input[1], _transposed(n))
            if key not in out:
                out[key] = _counted(inits[key[0]], numpy_helper, transpose=key[1])
    return out


def _weight_sparsity(counts: dict, name: str, t, numpy_helper, transpose: bool):
    """The counted sparsity of weight ``name``: from ``counts`` (the initializers'), or
    counted on ``t`` (a Constant node's tensor keeps its values)."""
    key = (name, transpose)
    return counts[key] if key in counts else _counted(t, numpy_helper, transpose=transpose)


def _counted(t, numpy_helper, transpose: bool = False):
    """The counted sparsity of a weight initializer (:func:`workloads.sparsity.counted`;
    filters first), or None when it is dense or holds no values (a shape-only
    declared weight)."""
    if t is None or not (t.raw_data or t.float_data or t.int32_data or t.int64_data
                         or t.double_data):
        return None
    try:
        v = numpy_helper.to_array(t)
    except (ValueError, TypeError):   # a payload that does not match its shape: no count
        return None
    if v.size != math.prod(t.dims):
        return None
    return counted(v.T if transpose and v.ndim == 2 else v)


def _node(n, name, attrs, dyn, consts, shapes, numpy_helper, counts) -> GNode:
    op, out = n.op_type, n.output[0]
    x = dyn[0]
    if op == "Conv":
        w = consts.get(n.input[1])
        if w is None:
            raise _Unsupported("weights are not a constant")
        wd = list(w.dims)
        kernel = wd[2:]
        if x not in shapes:
            raise _Unsupported("input shape unknown")
        groups = int(attrs.get("group", 1))
        if wd[1] * groups != shapes[x][1]:
            raise WorkloadError(f"node {name!r}: the weight {_fmt(wd)} with group {groups} "
                                f"expects {wd[1] * groups} input channels, the input has "
                                f"{shapes[x][1]} ({_fmt(shapes[x])})",
                                fix="check the exporter; the graph is inconsistent")
        stride, pads, dil = _window(attrs, kernel, shapes[x], "conv")
        r, s = (1, kernel[0]) if len(kernel) == 1 else kernel
        return GNode(name, "conv", [x], out, dict(
            K=wd[0], R=r, S=s, stride=stride, pads=pads, dilation=dil,
            groups=groups, bias=len(n.input) > 2 and bool(n.input[2]),
            sparsity=_weight_sparsity(counts, n.input[1], w, numpy_helper, False)))
    if op == "MatMul" and len(dyn) == 2:
        return GNode(name, "matmul", list(dyn), out)
    if op == "LayerNormalization":
        rank = len(shapes.get(x, ()))
        if int(attrs.get("axis", -1)) % max(rank, 1) != rank - 1:
            raise _Unsupported("only the normalisation of the last axis")
        return GNode(name, "layernorm", [x], out)
    if op in ("Gemm", "MatMul"):
        if len(dyn) != 1 or n.input[0] != x:
            raise _Unsupported("only activation x constant weight is supported")
        wd = list(consts[n.input[1]].dims)
        if len(wd) != 2:
            raise _Unsupported(f"weight of rank {len(wd)}")
        if op == "Gemm":
            if attrs.get("transA", 0):
                raise _Unsupported("transA=1")
            k, c = (wd[0], wd[1]) if attrs.get("transB", 0) else (wd[1], wd[0])
            bias = len(n.input) > 2 and bool(n.input[2])
        else:
            c, k, bias = wd[0], wd[1], False
        kc = op == "Gemm" and attrs.get("transB", 0)   # stored (K, C), else (C, K)
        return GNode(name, "linear", [x], out, dict(
            K=k, C=c, bias=bias, sparsity=_weight_sparsity(
                counts, n.input[1], consts[n.input[1]], numpy_helper, not kc)))
    if op == "BatchNormalization":
        return GNode(name, "bn", [x], out)
    if op in _ACTS:
        return GNode(name, "act", [x], out, dict(kind=_ACTS[op]))
    if op == "Clip":
        lo, hi = attrs.get("min"), attrs.get("max")
        if len(n.input) > 1 and n.input[1]:
            v = _const_value(consts.get(n.input[1]), numpy_helper)
            lo = None if v is None else float(v)
        if len(n.input) > 2 and n.input[2]:
            v = _const_value(consts.get(n.input[2]), numpy_helper)
            hi = None if v is None else float(v)
        kind = ("relu6" if (lo, hi) == (0.0, 6.0) else
                "relu" if lo == 0.0 and (hi is None or math.isinf(hi)) else "clip")
        return GNode(name, "act", [x], out, dict(kind=kind))
    if op in ("MaxPool", "AveragePool"):
        kernel = list(attrs.get("kernel_shape", []))
        if x not in shapes:
            raise _Unsupported("input shape unknown")
        stride, pads, _ = _window(attrs, kernel, shapes[x], "pool")
        r, s = (1, kernel[0]) if len(kernel) == 1 else kernel
        return GNode(name, "maxpool" if op == "MaxPool" else "avgpool", [x], out,
                     dict(R=r, S=s, stride=stride, pads=pads))
    if op == "GlobalAveragePool":
        return GNode(name, "gap", [x], out)
    if op == "GlobalMaxPool":
        if x not in shapes:
            raise _Unsupported("input shape unknown")
        h, w = (shapes[x] + (1, 1))[2:4] if len(shapes[x]) == 4 else (1, shapes[x][-1])
        return GNode(name, "maxpool", [x], out, dict(R=h, S=w, stride=(1, 1), pads=(0, 0, 0, 0)))
    if op == "ReduceMean":
        axes = attrs.get("axes")
        if axes is None and len(n.input) > 1:
            v = _const_value(consts.get(n.input[1]), numpy_helper)
            axes = None if v is None else [int(a) for a in v.ravel()]
        rank = len(shapes.get(x, ()))
        if rank == 4 and axes is not None and sorted(a % 4 for a in axes) == [2, 3]:
            return GNode(name, "gap", [x], out)
        raise _Unsupported("only the mean over H and W (global average pool)")
    if op in _ELTWISE:
        cs = [tuple(consts[t].dims) for t in n.input if t and t in consts]
        return GNode(name, _ELTWISE[op], list(dyn), out, consts=cs)
    if op == "Concat":
        return GNode(name, "concat", list(dyn), out, dict(axis=int(attrs.get("axis", 1))))
    if op in _FREE:
        return GNode(name, "free", [x], out)
    if op == "Transpose":
        return GNode(name, "transpose", [x], out)
    if op == "Pad":
        mode = attrs.get("mode", b"constant")
        pads = attrs.get("pads")
        if pads is None and len(n.input) > 1:
            v = _const_value(consts.get(n.input[1]), numpy_helper)
            pads = None if v is None else [int(p) for p in v.ravel()]
        if len(n.input) > 3 and n.input[3]:
            raise _Unsupported("padding selected axes")
        if pads is None or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
            raise _Unsupported("only constant padding of H and W of a 4-D tensor")
        return GNode(name, "pad", [x], out, dict(pads=(pads[2], pads[3], pads[6], pads[7]),
                                                 mode=mode))
    if op in ("Resize", "Upsample"):
        return GNode(name, "resize", [x], out)
    raise _Unsupported("")
