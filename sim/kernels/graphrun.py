"""A float interpreter of the importers' neutral graph, to measure activation densities.

:func:`run` executes a :class:`workloads.graph.Graph` (an ONNX file's or a PyTorch
module's graph, with the user's own weights) on the user's own input, in fp32. Convs,
linear layers and MatMuls run on the reference kernels (:func:`reference.conv2d`,
:func:`reference.fc`, :func:`reference.gemm`: fp32 multiply-add); the vector ops
(BatchNorm, activations, pools, elementwise, concat, views) in numpy.
:func:`measure` turns the run into each MAC layer's densities: input = non-zeros /
elements of the tensor the layer reads (the unpadded input), output = non-zeros /
elements of the tensor it writes as the IR defines it (after a folded BatchNorm, bias,
activation); a MatMul of two activations also gets its second operand's share as its
weight density (``counted``: met, not asked). A layer reading another's output reads the
same tensor, so its input density is by construction the producer's output density.

It lives in ``sim`` because it runs ``sim``'s reference kernels, and ``workloads``
imports nothing of ours (DESIGN.md §1); the importers only keep the weights and the
attributes running needs (``GNode.attrs["run"]``, :data:`workloads.graph.RUN_ATTRS`).

Views that select elements run when the importer kept their index (``index`` / ``take``
/ ``through`` in ``attrs["run"]``: static slices and integer indexes, narrow, select,
the parts of chunk / split / unbind, ONNX Slice and Gather of constants), never along the
batch axis. A node it cannot run (an op passed through with
``--passthrough-unsupported``, a view of the batch axis or of indices that are not
constants, an attention module it sees only in part) is a WorkloadError naming the node
and the op, never a traceback.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from tilesim.workloads import MacLayer, WorkloadError
from tilesim.workloads.sparsity import DENSE

from . import reference

#: the importers' free ops (views) that keep every element in its order: a reshape
RESHAPES = frozenset((
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Cast",   # ONNX
    "flatten", "reshape", "view", "squeeze", "unsqueeze", "contiguous", "dropout", "clone",
    "detach", "float", "to", "type_as", "identity", "view_as", "reshape_as", "unflatten",
    "Unflatten", "Dropout1d", "Dropout2d", "stochastic_depth", "drop_path",
    "StochasticDepth", "DropPath"))

_FIX = ("give the layers' densities instead (--input-density, or a YAML layer table's "
        "sparsity), or rewrite the op with supported ones")


class _Cannot(Exception):
    """A node the interpreter cannot run; the message says why."""


@dataclass(frozen=True)
class Run:
    """One run of a graph: ``counts`` {tensor: (non-zeros, elements)} of every tensor it
    produced (the input included), ``values`` {tensor: array} of the graph outputs and
    the tensors asked for."""
    counts: dict
    values: dict


def run(graph, x, keep=None, masks=False) -> Run:
    """The graph run once on ``x`` (fp32, the graph input's shape, any batch); ``keep``:
    tensors whose values to return besides the outputs (``masks``: as their non-zero
    masks, a byte a value instead of four)."""
    (name, _), = graph.inputs
    consumers: dict = {}
    for nd in graph.nodes:
        for t in nd.inputs:
            consumers[t] = consumers.get(t, 0) + 1
    keep = set(keep or ())
    env = {name: np.asarray(x, dtype=np.float32)}
    counts = {name: _count(env[name])}
    extra = keep - set(graph.outputs)
    keep = keep | set(graph.outputs)

    def kept(t, y):
        return y != 0 if masks and t in extra else y
    values = {name: kept(name, env[name])} if name in keep else {}
    for nd in graph.nodes:
        try:
            args = [env[t] for t in nd.inputs]
        except KeyError as e:
            raise WorkloadError(f"node {nd.name!r} ({nd.op}) reads tensor {e.args[0]!r}, "
                                "which the run did not produce", source=graph.source,
                                fix=_FIX) from None
        r = nd.attrs.get("run")
        try:
            if r is None:
                raise _Cannot("it: the importer kept nothing to run it with")
            if r.get("opaque"):
                raise _Cannot(f"it: it stands for part of {r['opaque']}")
            if "fn" in r and nd.op not in ("add", "mul", "concat", "free", "pass"):
                raise _Cannot(repr(r["fn"]))
            with np.errstate(over="ignore", under="ignore", invalid="ignore",
                             divide="ignore"):
                y = _OPS[nd.op](nd, args, r, graph)
        except _Cannot as e:
            raise WorkloadError(f"node {nd.name!r} ({nd.op}): the interpreter that measures "
                                f"activation densities cannot run {e}", source=graph.source,
                                fix=_FIX) from None
        except (ValueError, IndexError, TypeError, KeyError) as e:
            raise WorkloadError(f"node {nd.name!r} ({nd.op}) failed on the input sample: "
                                f"{type(e).__name__}: {e}", source=graph.source,
                                fix="check that the sample is an input the model accepts") \
                from None
        y = np.asarray(y, dtype=np.float32)
        env[nd.output] = y
        counts[nd.output] = _count(y)
        if nd.output in keep:
            values[nd.output] = kept(nd.output, y)
        for t in nd.inputs:   # free what no later node reads
            consumers[t] -= 1
            if consumers[t] == 0 and t not in keep:
                env.pop(t, None)
    return Run(counts, values)


def _count(y) -> tuple[int, int]:
    return int(np.count_nonzero(y)), int(y.size)


def measure(graph, x):
    """``graph.model`` with every MAC layer's input and output density measured on ``x``
    (:func:`run`). Densities of 1 leave a layer as it was (weight sparsity kept); an
    all-zero tensor counts as the smallest density (one non-zero)."""
    return _with_densities(graph, run(graph, x).counts)


def _with_densities(graph, counts):
    """``graph.model`` with every MAC layer's densities from ``counts`` (:class:`Run`)."""
    def density(t):
        nz, tot = counts[t]
        return max(nz, 1) / tot if tot else 1.0

    layers = []
    for l in graph.model.layers:
        if l.name in graph.layers and isinstance(l, MacLayer):
            reads, out, _ = graph.layers[l.name]
            s = replace(l.sparsity or DENSE, input=density(reads[0]), output=density(out))
            if l.weights_are_activations and len(reads) > 1:   # a MatMul's second operand
                s = replace(s, weight=density(reads[1]), counted=True)
            l = replace(l, sparsity=None if s.dense and s.nm is None else s)
        layers.append(l)
    return replace(graph.model, layers=tuple(layers))


def _as_nchw(a, shape):
    """``a`` viewed as the IR's 4-D ``shape`` when it holds exactly that: rank 4 as is,
    rank 3 (N, C, L) as (N, C, 1, L), rank 2 (N, C) as (N, C, 1, 1); else None."""
    a = np.asarray(a)
    if a.ndim == 3:
        a = a[:, :, None, :]
    elif a.ndim == 2:
        a = a[:, :, None, None]
    return a if a.shape == tuple(shape) else None


def layer_data(graph, x):
    """``graph.model`` with the values its MAC layers met on ``x``: :func:`measure`'s
    densities, and ``Model.data`` {layer name: :class:`mapper.actual.Tensors`} of the
    non-zero masks of each conv's and linear's input, weights (the model's own) and
    output, in the IR's layouts (the cost model counts compressed formats and gated MACs
    on them). A layer whose tensors are not the IR's shapes (a linear over tokens, a
    MatMul of two activations) keeps only its densities; ``left``: those names."""
    from tilesim.mapper.actual import Tensors
    if np.shape(x)[0] != graph.model.batch:
        raise WorkloadError(f"the input sample's batch ({np.shape(x)[0]}) is not the "
                            f"model's ({graph.model.batch}): the layers' tensors would not "
                            "be the ones simulated", source=graph.source,
                            fix=f"give --batch {np.shape(x)[0]}, or a sample of batch "
                            f"{graph.model.batch}")
    want = {name: v for name, v in graph.layers.items() if v[2] is not None}
    keep = {t for reads, out, _ in want.values() for t in (reads[0], out)}
    r = run(graph, x, keep=keep, masks=True)   # one run: the densities and the masks
    model, values = _with_densities(graph, r.counts), r.values
    nodes = {nd.name: nd for nd in graph.nodes}
    data, left = {}, []
    for l in model.mac_layers:
        if l.name not in want:
            left.append(l.name)
            continue
        reads, out, node = want[l.name]
        nd = nodes[node]
        w = np.asarray(graph.params[nd.attrs["run"]["w"]]) if isinstance(
            nd.attrs["run"].get("w"), str) else None
        if w is not None and w.ndim == 2:   # a linear's (K, C) or (C, K)
            w = w if nd.attrs["run"].get("layout") == "kc" else w.T
        ops = (_as_nchw(values[reads[0]], (l.N, l.C, l.H, l.W)),
               None if w is None else _as_nchw(w, (l.K, l.C // l.groups, l.R, l.S)),
               _as_nchw(values[out], (l.N, l.K, l.P, l.Q)))
        if any(a is None for a in ops):
            left.append(l.name)
            continue
        data[l.name] = Tensors(*(np.asarray(a) != 0 for a in ops))
    return replace(model, data=data), left


# ---- the ops -------------------------------------------------------------------------
def _param(graph, run, key, what):
    k = run.get(key)
    if k is None:
        return None
    if not isinstance(k, str):
        return np.asarray(k, dtype=np.float32)
    if k not in graph.params:
        raise _Cannot(f"it: its {what} {k!r} has no value in the model (a shape-only or "
                      "external weight, or a computed constant)")
    return np.asarray(graph.params[k], dtype=np.float32)


def _need(graph, run, key, what):
    v = _param(graph, run, key, what)
    if v is None:
        raise _Cannot(f"it: the importer kept no {what}")
    return v


def _batch_shape(graph, t, y):
    """The shape of tensor ``t`` for a run whose batch is ``y``'s leading axis."""
    s = tuple(graph.shapes[t])
    if s and s[0] == graph.model.batch and y.ndim and y.shape[0] != s[0]:
        s = (y.shape[0],) + s[1:]
    return s


def _conv(nd, args, run, graph):
    a = nd.attrs
    if run.get("pad_mode", "zeros") != "zeros":
        raise _Cannot(f"padding_mode {run['pad_mode']!r}")
    x = args[0]
    w = _need(graph, run, "w", "weight")
    one = x.ndim == 3
    if one:
        x, w = x[:, :, None, :], w[:, :, None, :]
    if x.ndim != 4 or w.ndim != 4:
        raise _Cannot(f"a convolution of a rank-{args[0].ndim} input")
    oshape = _batch_shape(graph, nd.output, args[0])
    ohw = (1, oshape[-1]) if one else tuple(oshape[-2:])
    y = reference.conv2d(np.ascontiguousarray(x), np.ascontiguousarray(w), a["stride"],
                         tuple(a["pads"][:2]), a["dilation"], a["groups"], out_hw=ohw)
    b = _param(graph, run, "b", "bias")
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y.reshape(oshape)


def _linear(nd, args, run, graph):
    x = args[0]
    w = _need(graph, run, "w", "weight")
    if w.ndim != 2:
        raise _Cannot(f"a weight of rank {w.ndim}")
    wkc = w if run.get("layout") == "kc" else w.T
    k, c = wkc.shape
    y = reference.fc(np.ascontiguousarray(x.reshape(-1, c)), np.ascontiguousarray(wkc))
    y = y * np.float32(run.get("alpha", 1.0))
    b = _param(graph, run, "b", "bias")
    if b is not None:
        y = y + np.float32(run.get("beta", 1.0)) * b.reshape(-1)
    return y.reshape(x.shape[:-1] + (k,) if x.shape[-1] == c else (-1, k))


def _matmul(nd, args, run, graph):
    a, b = args
    if run.get("opaque"):
        raise _Cannot(run["opaque"])
    lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, lead + a.shape[-2:]).reshape(-1, *a.shape[-2:])
    b = np.broadcast_to(b, lead + b.shape[-2:]).reshape(-1, *b.shape[-2:])
    y = np.stack([reference.gemm(np.ascontiguousarray(p), np.ascontiguousarray(q))
                  for p, q in zip(a, b)])
    return y.reshape(lead + y.shape[-2:])


def _bn(nd, args, run, graph):
    x = args[0]
    mean, var = _need(graph, run, "mean", "running mean"), _need(graph, run, "var",
                                                                  "running variance")
    w, b = _param(graph, run, "w", "scale"), _param(graph, run, "b", "shift")
    alpha = (w if w is not None else np.float32(1)) / np.sqrt(var + np.float32(run["eps"]))
    beta = (b if b is not None else np.float32(0)) - mean * alpha
    shp = (1, -1) + (1,) * (x.ndim - 2)
    return x * alpha.reshape(shp) + beta.reshape(shp)


def _layernorm(nd, args, run, graph):
    x = args[0]
    axes = tuple(range(x.ndim - int(run.get("axes", 1)), x.ndim))
    mu = x.mean(axis=axes, keepdims=True, dtype=np.float64)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + float(run.get("eps", 1e-5)))
    w, b = _param(graph, run, "w", "scale"), _param(graph, run, "b", "shift")
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softplus(x, beta=1.0):
    return np.logaddexp(0, beta * x) / beta


_ERF = np.vectorize(math.erf, otypes=[np.float64])


def _act(nd, args, run, graph):
    x = args[0] * np.float32(run["scale"]) if run.get("scale") is not None else args[0]
    kind = nd.attrs["kind"]
    al, be = run.get("alpha"), run.get("beta")
    if kind == "relu":
        return np.maximum(x, 0)
    if kind == "relu6":
        return np.clip(x, 0, 6)
    if kind == "clip":
        lo, hi = run.get("lo"), run.get("hi")
        if "lo" not in run and "hi" not in run:
            raise _Cannot("a clip whose bounds the importer did not keep")
        return np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    if kind == "leaky":
        return np.where(x >= 0, x, x * (0.01 if al is None else al))
    if kind == "sigmoid":
        return _sigmoid(x)
    if kind == "swish":
        return x * _sigmoid(x)
    if kind in ("hardsigmoid", "hardswish"):
        h = np.clip(x * (1 / 6 if al is None else al) + (0.5 if be is None else be), 0, 1)
        return h if kind == "hardsigmoid" else x * h
    if kind == "tanh":
        return np.tanh(x)
    if kind == "gelu":
        if run.get("approximate", "none") == "tanh":
            return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
        return 0.5 * x * (1 + _ERF(x / math.sqrt(2)))
    if kind == "elu":
        return np.where(x > 0, x, (1.0 if al is None else al) * np.expm1(x))
    if kind == "selu":
        a = 1.6732632423543772 if al is None else al
        g = 1.0507009873554805 if be is None else be
        return g * np.where(x > 0, x, a * np.expm1(x))
    if kind == "softplus":
        return _softplus(x, 1.0 if be is None else be)
    if kind == "mish":
        return x * np.tanh(_softplus(x))
    if kind == "softmax":
        axis = run.get("axis", -1)
        if axis is None:
            raise _Cannot("a softmax without a dim")
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)
    raise _Cannot(f"activation {kind!r}")


def _window(x, nd, run, graph, fill):
    """x padded with ``fill`` to cover every window of the output (its stored size)."""
    a = nd.attrs
    if tuple(run.get("dilation") or (1, 1)) not in ((1, 1), (1,)):
        raise _Cannot(f"a pool with dilation {tuple(run['dilation'])}")
    one = x.ndim == 3
    if one:
        x = x[:, :, None, :]
    oshape = _batch_shape(graph, nd.output, x)
    p, q = (1, oshape[-1]) if one else oshape[-2:]
    t, l, b, r = a["pads"]
    (sh, sw), R, S = a["stride"], a["R"], a["S"]
    n, c, h, w = x.shape
    hp, wp = max(h + t + b, (p - 1) * sh + R), max(w + l + r, (q - 1) * sw + S)
    xp = np.full((n, c, hp, wp), fill, dtype=np.float32)
    xp[:, :, t:t + h, l:l + w] = x
    return xp, (p, q), (t, l, b, r), (h, w), oshape


def _pool(nd, args, run, graph):
    x = args[0]
    mx = nd.op == "maxpool"
    xp, (p, q), (t, l, b, r), (h, w), oshape = _window(x, nd, run, graph,
                                                        -np.inf if mx else 0.0)
    (sh, sw), R, S = nd.attrs["stride"], nd.attrs["R"], nd.attrs["S"]
    y = np.full(xp.shape[:2] + (p, q), -np.inf if mx else 0.0, dtype=np.float32)
    mask = np.zeros(xp.shape[2:], dtype=np.float32)   # what a window's average divides by
    if run.get("count_include_pad"):
        mask[:h + t + b, :w + l + r] = 1
    else:
        mask[t:t + h, l:l + w] = 1
    div = np.zeros((p, q), dtype=np.float32)
    for i in range(R):
        for j in range(S):
            win = xp[:, :, i:i + (p - 1) * sh + 1:sh, j:j + (q - 1) * sw + 1:sw]
            if mx:
                np.maximum(y, win, out=y)
            else:
                y += win
                div += mask[i:i + (p - 1) * sh + 1:sh, j:j + (q - 1) * sw + 1:sw]
    if not mx:
        y = y / np.maximum(div, 1)
    return y.reshape(oshape)


def _gap(nd, args, run, graph):
    x = args[0]
    if nd.attrs.get("tokens"):
        y = x.mean(axis=1, dtype=np.float64)
    else:
        y = x.reshape(x.shape[0], x.shape[1], -1).mean(axis=2, dtype=np.float64)
    return y.reshape(_batch_shape(graph, nd.output, x))


def _operands(nd, args, run, graph):
    if "operands" not in run:
        raise _Cannot("it: the importer kept no operands")
    vals, it = [], iter(args)
    for kind, v in run["operands"]:
        if kind == "t":
            vals.append(next(it))
        elif kind == "p":
            vals.append(_need(graph, {"k": v}, "k", "constant operand"))
        elif kind == "v":
            vals.append(np.float32(v))
        else:
            raise _Cannot(f"it: an operand computed from parameters ({v})")
    return vals


def _eltwise(nd, args, run, graph):
    fn = run.get("fn")
    if fn == "concat":
        return np.concatenate(_operands(nd, args, run, graph), axis=nd.attrs["axis"])
    vals = _operands(nd, args, run, graph)
    if fn in ("add", "sum"):
        y = vals[0]
        for v in vals[1:]:
            y = y + v
        return y
    if len(vals) != 2:
        raise _Cannot(f"{fn} of {len(vals)} operands")
    a, b = vals
    ops = {"sub": np.subtract, "mul": np.multiply, "div": np.divide}
    if fn not in ops:
        raise _Cannot(f"the elementwise op {fn!r}")
    return ops[fn](a, b)


def _free(nd, args, run, graph):
    x = args[0]
    if run.get("opaque"):
        raise _Cannot(run["opaque"])
    if run.get("perm") is not None:
        return np.transpose(x, run["perm"])
    if run.get("through"):   # several tensors: the views reading it pick their parts
        return x
    if "index" in run or "take" in run:   # a view selecting elements (not the batch's)
        y = x[run["index"]] if "index" in run else np.take(x, run["take"][1],
                                                             axis=run["take"][0])
        want = tuple(graph.shapes[nd.output])
        if y.shape[1:] != want[1:] or y.shape[:1] != x.shape[:1]:
            raise _Cannot(f"the view {run.get('fn', '')!r}: it gives shape {y.shape}, the "
                          f"model says {want}")
        return y
    fn = run.get("fn")
    if fn not in RESHAPES:
        raise _Cannot(f"the view {fn or 'of unknown kind'!r}: it does not keep every "
                      "element in its place")
    return x.reshape(_batch_shape(graph, nd.output, x))


def _transpose(nd, args, run, graph):
    if "perm" not in run:
        raise _Cannot("a transpose whose permutation the importer did not keep")
    return np.transpose(args[0], run["perm"])


def _pad(nd, args, run, graph):
    x = args[0]
    if run.get("mode", "constant") != "constant":
        raise _Cannot(f"padding mode {run['mode']!r}")
    v = run.get("value")
    v = 0.0 if v is None else float(_need(graph, {"k": v}, "k", "pad value").reshape(-1)[0]) \
        if isinstance(v, str) else float(v)
    t, l, b, r = nd.attrs["pads"]
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(t, b), (l, r)], constant_values=v)


def _resize(nd, args, run, graph):
    x = args[0]
    if run.get("mode", "nearest") != "nearest":
        raise _Cannot(f"resize mode {run['mode']!r} (nearest only)")
    oshape = _batch_shape(graph, nd.output, x)
    if x.ndim != 4 or any(o % i for o, i in zip(oshape[2:], x.shape[2:])):
        raise _Cannot(f"a resize from {list(x.shape)} to {list(oshape)} (whole factors only)")
    fh, fw = oshape[2] // x.shape[2], oshape[3] // x.shape[3]
    return np.repeat(np.repeat(x, fh, axis=2), fw, axis=3)


def _pass(nd, args, run, graph):
    raise _Cannot(f"{run.get('fn', 'it')!r}, passed through unsupported "
                  "(--passthrough-unsupported)")


_OPS = {"conv": _conv, "linear": _linear, "matmul": _matmul, "bn": _bn, "layernorm": _layernorm,
        "act": _act, "maxpool": _pool, "avgpool": _pool, "gap": _gap, "add": _eltwise,
        "mul": _eltwise, "concat": _eltwise, "free": _free, "transpose": _transpose,
        "pad": _pad, "resize": _resize, "pass": _pass}
