"""Read a PyTorch ``nn.Module`` into the layer IR (needs the ``torch`` extra).

The module is traced with ``torch.fx.symbolic_trace`` and run once on *meta* tensors
(no memory, no arithmetic, the module is not changed) to get every tensor's shape;
the traced graph is then lowered with the same conventions as the ONNX importer and
the zoo (:mod:`workloads.graph`). When tracing fails (data-dependent control flow),
the module is exported with ``torch.onnx.export`` (TorchScript exporter, BatchNorm
kept, the module in its own train/eval mode) and read by the ONNX importer, with a
warning giving the reason: that route runs the module once on real zeros, so it needs
real weights and the ``onnx`` package, and a data-dependent ``if`` keeps the one branch
those zeros take.

Besides convs, linears, norms, pools and activations, the importer reads the ops of
torchvision-style models: indexing and slicing (``x[:, 0]``, ``x[:, :, None, None]``),
view / reshape / flatten / permute / transpose, chunk / split / unbind, cat, mean,
LayerNorm (module or ``F.layer_norm``), GELU, softmax, matmul / bmm / ``@`` (of two
activations: attention; of an activation and a parameter: a linear layer),
``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention`` (self-attention,
``batch_first``), identity-at-inference modules (dropout, stochastic depth written as
a module returning its input) and a parameter read by an add, mul or cat (layer scale,
position embedding, class token: the op's ``params``).

Layer names: a module's dotted path (``layer1.0.conv1``); a functional op is named
after the module it sits in and the op (``layer1.0.add``), as in the zoo.

From the command line: ``tilesim run --model net.py:build --input-shape 1x3x224x224``
imports ``net.py`` and calls ``build()``, which returns the module. With ``graph=True``
(``--input-sample``) the traced graph and the module's parameters and buffers are kept,
to run it on a real input (``sim.kernels.graphrun``; PyTorch itself does not run it).
"""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

from .errors import WorkloadError, regular_file
from .graph import GNode, lower
from .sparsity import counted


def _need_torch():
    try:
        import torch
        import torch.fx  # noqa: F401
    except ImportError:
        raise WorkloadError("importing PyTorch modules needs the torch package",
                            fix="pip install 'tilesim[torch]'") from None
    return torch


def load_factory(spec: str, batch: int = 1, input_shape=None, allow_unsupported: bool = False,
                 graph: bool = False):
    """A Model from ``"path/to/file.py:factory"``: the module ``factory()`` returns
    (with ``graph``, a :class:`workloads.graph.Graph`: :func:`read_torch`)."""
    path_s, _, fn = str(spec).rpartition(":")
    path = Path(path_s)
    if not fn.isidentifier():
        raise WorkloadError(f"{fn!r} is not a Python function name", source=spec,
                            fix="write --model path/to/file.py:function_name")
    if not path.exists():
        raise WorkloadError("no such Python file", source=path_s,
                            fix="check the path before ':'")
    regular_file(path, "check the path before ':'")
    if input_shape is None:
        raise WorkloadError("a PyTorch model needs an input shape", source=spec,
                            fix="give --input-shape, e.g. --input-shape 1x3x224x224 "
                                "(API: input_shape=(1, 3, 224, 224))")
    torch = _need_torch()
    net = _call_factory(path, fn, spec)
    if not isinstance(net, torch.nn.Module):
        raise WorkloadError(f"{fn}() returned a {type(net).__name__}, not a torch.nn.Module",
                            source=spec, fix="return the network module")
    return read_torch(net, input_shape, batch=batch, allow_unsupported=allow_unsupported,
                      name=fn if fn not in ("build", "model", "factory", "make") else path.stem,
                      source=f"torch:{spec}", graph=graph)


def _call_factory(path: Path, fn: str, spec: str):
    """Import ``path`` as a script would run (its folder importable) and call ``fn()``.

    The module is registered in ``sys.modules`` (dataclasses and pickling need that),
    ``sys.path`` holds the file's folder and ``sys.argv`` is ``[path]`` (as for
    ``python path``: a script that parses its arguments at import sees none of tilesim's)
    only for the duration of the import and the call. A ``sys.exit()`` in the file is a
    WorkloadError, not the end of tilesim."""
    import hashlib
    import sys
    mod_name = "_tilesim_user_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    folder = str(path.resolve().parent)
    argv = sys.argv
    sys.path.insert(0, folder)
    sys.argv = [str(path)]
    try:
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except SystemExit as e:
            raise WorkloadError(f"the file called sys.exit({e.code!r}) while being imported",
                                source=str(path), fix="guard the script's own code with "
                                "`if __name__ == \"__main__\":` so that importing it only "
                                "defines the factory") from None
        except Exception as e:
            raise WorkloadError(f"importing the file failed: {type(e).__name__}: {e}",
                                source=str(path), fix="run the file with python to see the "
                                "error") from None
        factory = getattr(module, fn, None)
        if not callable(factory):
            raise WorkloadError(f"the file defines no function {fn!r}", source=str(path),
                                fix="name a function that returns an nn.Module")
        try:
            return factory()
        except SystemExit as e:
            raise WorkloadError(f"{fn}() called sys.exit({e.code!r})", source=spec,
                                fix="return the network module instead of exiting") from None
        except Exception as e:
            raise WorkloadError(f"{fn}() failed: {type(e).__name__}: {e}", source=spec,
                                fix="call it from Python to see the error") from None
    finally:
        sys.argv = argv
        sys.modules.pop(mod_name, None)
        if folder in sys.path:
            sys.path.remove(folder)


def read_torch(module, input_shape, batch: int = 1, allow_unsupported: bool = False,
               name: str | None = None, source: str | None = None, graph: bool = False):
    """A :class:`Model` of ``module`` for an input of ``input_shape`` (batch first).

    ``input_shape`` is a tuple or ``"1x3x224x224"``; its leading (batch) entry must be 1
    or ``batch`` and is set to ``batch``. ``allow_unsupported`` passes modules and
    functions tilesim cannot model through as free ops, with a warning. With ``graph``,
    a :class:`workloads.graph.Graph` holding the Model, the traced graph and the
    module's own parameters and buffers, to run on a real input (``--input-sample``)."""
    torch = _need_torch()
    from .onnx_import import parse_shape
    if not isinstance(module, torch.nn.Module):
        raise WorkloadError(f"expected a torch.nn.Module, got {type(module).__name__}")
    shp = list(parse_shape(input_shape if isinstance(input_shape, str)
                           else "x".join(map(str, input_shape))))
    if shp[0] not in (1, batch):
        raise WorkloadError(f"the input shape {'x'.join(map(str, shp))} says batch {shp[0]}, "
                            f"but the batch is {batch}",
                            fix=f"use --batch {shp[0]} (API: batch={shp[0]}), or write the input "
                                "shape with a leading 1")
    shp[0] = batch
    name = name or type(module).__name__
    source = source or f"torch:{type(module).__name__}"
    if type(module).__module__.startswith("torch.nn.modules") and not isinstance(
            module, (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)):
        from collections import OrderedDict  # a bare layer: trace it as a one-layer net
        module = torch.nn.Sequential(OrderedDict([(type(module).__name__.lower(), module)]))
    try:
        gm = torch.fx.symbolic_trace(module)
    except Exception as e:  # data-dependent control flow and friends
        m = _via_onnx(torch, module, shp, batch, allow_unsupported, name, source, e, graph)
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        warnings.warn(f"{source}: torch.fx cannot trace the module ({type(e).__name__}: "
                      f"{first}); imported through torch.onnx.export instead, which ran it "
                      "once on an all-zeros input: a data-dependent `if` keeps only the "
                      "branch those zeros took, baked into the layers", UserWarning,
                      stacklevel=2)
        return m
    shapes, multi = _meta_shapes(torch, gm, shp, source)
    nodes, outputs = _translate(torch, gm, shapes, multi, source, allow_unsupported)
    tensors: dict = {}
    m = lower(nodes, shapes, outputs, name=name, batch=batch, source=source, tensors=tensors)
    if not graph:
        return m
    from .graph import Graph
    params = {}
    for k, v in list(gm.named_parameters()) + list(gm.named_buffers()):
        params[k] = v.detach().cpu().float().numpy()
    for node in gm.graph.nodes:   # get_attr of plain tensor attributes (constants)
        if node.op == "get_attr" and node.target not in params:
            v = gm
            for part in str(node.target).split("."):
                v = getattr(v, part, None)
            if isinstance(v, torch.Tensor):
                params[node.target] = v.detach().cpu().float().numpy()
    ins = tuple((n.name, shapes[n.name]) for n in gm.graph.nodes
                if n.op == "placeholder" and n.name in shapes)
    return Graph(model=m, nodes=tuple(nodes), shapes=shapes, inputs=ins,
                 outputs=tuple(outputs), params=params, layers=tensors, source=source)


def _via_onnx(torch, module, shp, batch, allow_unsupported, name, source, why, graph=False):
    import io
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise WorkloadError(f"torch.fx cannot trace the module ({type(why).__name__}: {why}) "
                            "and the ONNX fallback needs the onnx package", source=source,
                            fix="pip install 'tilesim[onnx]', or make the module traceable") from None
    buf = io.BytesIO()
    try:
        x = torch.zeros(shp, device=next(iter(module.parameters()), torch.zeros(0)).device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kw = dict(do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE,
                      opset_version=17)
            try:
                torch.onnx.export(module, (x,), buf, dynamo=False, **kw)
            except TypeError:  # torch < 2.5 has no dynamo= (and exports with TorchScript)
                torch.onnx.export(module, (x,), buf, **kw)
    except Exception as e:
        raise WorkloadError(f"torch.fx cannot trace the module ({type(why).__name__}: {why}) "
                            f"and torch.onnx.export failed too ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''})", source=source,
                            fix="make the forward traceable (no Python control flow on "
                            "tensor values), or export to ONNX yourself") from None
    from .onnx_import import read_onnx
    m = read_onnx(buf.getvalue(), batch=batch, allow_unsupported=allow_unsupported, name=name,
                  graph=graph)
    from dataclasses import replace

    from .ir import Model
    if graph:
        return replace(m, model=Model(name=name, layers=m.model.layers, batch=batch,
                                      source=source + " (via onnx)"),
                       source=source + " (via onnx)")
    return Model(name=name, layers=m.layers, batch=batch, source=source + " (via onnx)")


def _meta_shapes(torch, gm, shp, source) -> dict:
    """Shape of every tensor-valued node, from one run on meta tensors."""
    from torch.func import functional_call

    class Meta(torch.fx.Interpreter):
        def call_module(self, target, args, kwargs):
            mod = self.fetch_attr(target)
            state = {k: torch.empty_like(v, device="meta") for k, v in
                     list(mod.named_parameters()) + list(mod.named_buffers())}
            return functional_call(mod, state, args, kwargs)

        def get_attr(self, target, args, kwargs):
            v = super().get_attr(target, args, kwargs)
            return torch.empty_like(v, device="meta") if isinstance(v, torch.Tensor) else v

    shapes, env = {}, {}
    interp = Meta(gm, garbage_collect_values=False)
    try:
        interp.run(torch.empty(shp, device="meta"))
    except Exception as e:
        raise WorkloadError(f"running the traced module on an input of shape "
                            f"{'x'.join(map(str, shp))} failed: {type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''}", source=source,
                            fix="check the input shape the module expects") from None
    env = interp.env
    multi = set()  # nodes whose value is a tuple or list holding tensors (chunk, split, MHA)
    for node, v in env.items():
        if isinstance(v, torch.Tensor):
            shapes[node.name] = tuple(int(d) for d in v.shape)
        elif isinstance(v, (tuple, list)) and any(isinstance(x, torch.Tensor) for x in v):
            multi.add(node.name)
            first = next(x for x in v if isinstance(x, torch.Tensor))
            shapes.setdefault(node.name + "::0", tuple(int(d) for d in first.shape))
    return shapes, multi


def _layer_name(node) -> str:
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    scope = list(stack)[-1] if stack else ""
    base = getattr(node.target, "__name__", str(node.target)).strip("_")
    base = {"iadd": "add", "imul": "mul", "isub": "sub", "itruediv": "div",
            "truediv": "div"}.get(base, base)
    return f"{scope}.{base}" if scope else base


_ACT_MODULES = {"ReLU": "relu", "ReLU6": "relu6", "LeakyReLU": "leaky", "Sigmoid": "sigmoid",
                "SiLU": "swish", "Hardswish": "hardswish", "Hardsigmoid": "hardsigmoid",
                "Tanh": "tanh", "GELU": "gelu", "ELU": "elu", "SELU": "selu",
                "Softplus": "softplus", "Mish": "mish", "Softmax": "softmax"}
_ACT_FUNCS = {"relu": "relu", "relu_": "relu", "relu6": "relu6", "leaky_relu": "leaky",
              "sigmoid": "sigmoid", "silu": "swish", "hardswish": "hardswish",
              "hardsigmoid": "hardsigmoid", "tanh": "tanh", "gelu": "gelu", "elu": "elu",
              "selu": "selu", "softplus": "softplus", "mish": "mish", "softmax": "softmax"}
_FREE_MODULES = {"Flatten", "Unflatten", "Dropout", "Dropout1d", "Dropout2d", "Identity"}
_FREE_FUNCS = {"flatten", "reshape", "view", "squeeze", "unsqueeze", "contiguous", "dropout",
               "clone", "detach", "float", "to", "type_as", "identity", "getitem", "chunk",
               "split", "unbind", "tensor_split", "narrow", "select", "view_as", "reshape_as",
               "expand", "expand_as", "unflatten", "stochastic_depth", "drop_path"}
_MOVE_FUNCS = {"permute", "transpose", "t"}


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _translate(torch, gm, shapes, multi, source, allow_unsupported):
    nodes, bad, outputs = [], [], []
    static: set = set()
    params: dict = {}  # static node -> {parameter target: elements} it is computed from
    mods = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            outputs = [a.name for a in _flat(node.args) if isinstance(a, torch.fx.Node)]
            continue
        if node.op == "get_attr" or (node.name not in shapes and node.name not in multi):
            static.add(node.name)  # parameters, sizes, Python values
            params[node.name] = _param_sources(torch, gm, node, params)
            continue
        dyn = [a.name for a in _flat((node.args, node.kwargs))
               if isinstance(a, torch.fx.Node) and a.name not in static]
        if not dyn:
            static.add(node.name)
            params[node.name] = _param_sources(torch, gm, node, params)
            continue
        name = _layer_name(node)
        try:
            if node.op == "call_module":
                nd = _module(torch, mods[node.target], name, node, dyn, shapes)
                run = _module_run(torch, mods[node.target], str(node.target), nd)
            else:
                nd = _function(torch, node, name, dyn, shapes, static, params)
                run = _function_run(torch, node, nd, shapes, static)
            if not isinstance(nd, list):
                nd.attrs.setdefault("run", run)
        except _Unsupported as e:
            what = (type(mods[node.target]).__name__ if node.op == "call_module"
                    else getattr(node.target, "__name__", str(node.target)))
            bad.append((what, name, str(e)))
            nd = GNode(name, "pass", dyn[:1], node.name, {"run": {"fn": what}})
        nodes.extend(nd if isinstance(nd, list) else [nd])
    if bad:
        listing = "; ".join(f"{op} ({nm!r}{': ' + why if why else ''})" for op, nm, why in bad)
        if not allow_unsupported:
            raise WorkloadError(f"unsupported PyTorch ops {', '.join(sorted({b[0] for b in bad}))}"
                                f" at: {listing}", source=source,
                                fix="remove or replace them, or pass them through as free ops "
                                "with --passthrough-unsupported (API: allow_unsupported=True)")
        warnings.warn(f"{source}: unsupported PyTorch ops treated as free pass-through (no "
                      f"time, no traffic): {listing}", UserWarning, stacklevel=3)
    return nodes, outputs


def _param_sources(torch, gm, node, params) -> dict:
    """{parameter target: elements} of the parameters a static node is computed from."""
    if node.op == "get_attr":
        try:
            v = gm.get_parameter(node.target)
        except AttributeError:
            return {}
        return {node.target: v.numel()}
    out: dict = {}
    for a in node.all_input_nodes:
        out.update(params.get(a.name, {}))
    return out


def _const_params(node, torch, params) -> int:
    """Elements of the distinct parameters the static arguments of ``node`` read."""
    src: dict = {}
    for a in _flat((node.args, node.kwargs)):
        if isinstance(a, torch.fx.Node):
            src.update(params.get(a.name, {}))
    return sum(src.values())


def _flat(x):
    if isinstance(x, (list, tuple)):
        for v in x:
            yield from _flat(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _flat(v)
    else:
        yield x


class _Unsupported(Exception):
    pass


def _pads_sym(padding, in_shape, out_shape, kernel, stride, dilation):
    """(top, left, bottom, right) of a torch padding (ints, pair or 'same' / 'valid')."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        tot = [max((o - 1) * s + d * (k - 1) + 1 - i, 0) for i, o, k, s, d in
               zip(in_shape, out_shape, kernel, stride, dilation)]
        return (tot[0] // 2, tot[1] // 2, tot[0] - tot[0] // 2, tot[1] - tot[1] // 2)
    ph, pw = padding
    return (ph, pw, ph, pw)


def _counted(m):
    """The counted sparsity of a module's ``weight`` (:func:`workloads.sparsity.counted`;
    filters first, as PyTorch stores them), None when dense."""
    w = getattr(m, "weight", None)
    if w is None or getattr(w, "is_meta", False):
        return None
    return counted(w.detach().cpu().numpy())


def _module(torch, m, name, node, dyn, shapes) -> GNode:
    nn = torch.nn
    cls = type(m).__name__
    x, out = dyn[0], node.name
    if isinstance(m, (nn.Conv1d, nn.Conv2d)) and type(m) in (nn.Conv1d, nn.Conv2d):
        one = isinstance(m, nn.Conv1d)
        k = (1, m.kernel_size[0]) if one else m.kernel_size
        st = (1, m.stride[0]) if one else m.stride
        dl = (1, m.dilation[0]) if one else m.dilation
        pd = m.padding if isinstance(m.padding, str) else ((0, m.padding[0]) if one else m.padding)
        ins, outs = shapes[x][2:], shapes[out][2:]
        if one:
            ins, outs = (1, ins[0]), (1, outs[0])
        return GNode(name, "conv", [x], out, dict(
            K=m.out_channels, R=k[0], S=k[1], stride=tuple(st), dilation=tuple(dl),
            pads=_pads_sym(pd, ins, outs, k, st, dl), groups=m.groups, bias=m.bias is not None,
            sparsity=_counted(m)))
    if isinstance(m, nn.Linear):
        return GNode(name, "linear", [x], out, dict(K=m.out_features, C=m.in_features,
                                                    bias=m.bias is not None,
                                                    sparsity=_counted(m)))
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return GNode(name, "bn", [x], out)
    if isinstance(m, nn.LayerNorm):
        return GNode(name, "layernorm", [x], out,
                     dict(params=sum(p.numel() for p in m.parameters(recurse=False))))
    if isinstance(m, nn.MultiheadAttention):
        return _mha(m, name, node, dyn, shapes)
    if cls in _ACT_MODULES:
        return GNode(name, "act", [x], out, dict(kind=_ACT_MODULES[cls]))
    if isinstance(m, nn.Hardtanh):
        kind = "relu6" if (m.min_val, m.max_val) == (0.0, 6.0) else "clip"
        return GNode(name, "act", [x], out, dict(kind=kind))
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        k = _pair(m.kernel_size)
        st = _pair(m.stride if m.stride not in (None, ()) else m.kernel_size)
        ph, pw = _pair(m.padding)
        return GNode(name, "maxpool" if isinstance(m, nn.MaxPool2d) else "avgpool", [x], out,
                     dict(R=k[0], S=k[1], stride=st, pads=(ph, pw, ph, pw)))
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return _adaptive(name, x, out, shapes, isinstance(m, nn.AdaptiveMaxPool2d))
    if isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d)):
        lft, rgt, top, bot = m.padding
        return GNode(name, "pad", [x], out, dict(pads=(top, lft, bot, rgt)))
    if cls in _FREE_MODULES or cls in ("StochasticDepth", "DropPath"):
        return GNode(name, "free", [x], out)
    if isinstance(m, nn.Upsample):
        return GNode(name, "resize", [x], out)
    raise _Unsupported("")


def _attention(name, q, k, v, out, shapes, tag="", scale=None) -> list:
    """softmax(q @ k^T) @ v on (..., T, d) tensors ``q``, ``k``, ``v``: two matmuls of two
    activations and a softmax (the scale folds into the softmax)."""
    sq, sk, sv = shapes[q], shapes[k], shapes[v]
    kt = f"{out}::{tag}kt"
    shapes[kt] = sk[:-2] + (sk[-1], sk[-2])
    s, p = f"{out}::{tag}scores", f"{out}::{tag}probs"
    shapes[s] = shapes[p] = sq[:-1] + (sk[-2],)
    shapes[out] = sq[:-1] + (sv[-1],)
    rank = len(sk)
    perm = tuple(range(rank - 2)) + (rank - 1, rank - 2)
    return [GNode(f"{name}.kt", "free", [k], kt, {"run": {"fn": "transpose", "perm": perm}}),
            GNode(f"{name}.matmul", "matmul", [q, kt], s, {"run": {}}),
            GNode(f"{name}.softmax", "act", [s], p, dict(kind="softmax", run={
                "axis": -1, "scale": scale if scale is not None else sq[-1] ** -0.5})),
            GNode(f"{name}.matmul_1", "matmul", [p, v], out, {"run": {}})]


def _mha(m, name, node, dyn, shapes) -> list:
    """nn.MultiheadAttention (self-attention, batch_first): the in-projection, the
    attention of its heads and the out-projection."""
    args = list(node.args) + [node.kwargs.get(k) for k in ("query", "key", "value")
                              if k in node.kwargs]
    names = [getattr(a, "name", None) for a in args[:3]]
    if not m.batch_first:
        raise _Unsupported("only batch_first=True")
    if len(set(names)) != 1 or node.kwargs.get("attn_mask") is not None \
            or getattr(m, "bias_k", None) is not None:
        raise _Unsupported("only self-attention (query is key is value), no mask, no bias_kv")
    x, out = dyn[0], node.name
    b, t, e = shapes[x]
    h = m.num_heads
    d = e // h
    qkv, merged = f"{out}::qkv", f"{out}::merged"
    shapes[qkv] = (b, t, 3 * e)
    heads = {}
    for part in ("q", "k", "v"):
        heads[part] = f"{out}::{part}"
        shapes[heads[part]] = (b, h, t, d)
    ctx = f"{out}::ctx"
    nodes = [GNode(f"{name}.in_proj", "linear", [x], qkv,
                   dict(K=3 * e, C=e, bias=m.in_proj_bias is not None))]
    nodes += [GNode(f"{name}.{p}", "free", [qkv], heads[p],
                    {"run": {"opaque": "nn.MultiheadAttention"}}) for p in ("q", "k", "v")]
    nodes += _attention(name, heads["q"], heads["k"], heads["v"], ctx, shapes)
    shapes[merged] = (b, t, e)
    nodes += [GNode(f"{name}.merge", "free", [ctx], merged),
              GNode(f"{name}.out_proj", "linear", [merged], out,
                    dict(K=e, C=e, bias=m.out_proj.bias is not None))]
    shapes[out] = (b, t, e)
    return nodes


def _adaptive(name, x, out, shapes, is_max) -> GNode:
    si, so = shapes[x], shapes[out]
    if si == so:
        return GNode(name, "free", [x], out)
    if so[2:] == (1, 1) and not is_max:
        return GNode(name, "gap", [x], out)
    h, w = si[2:]
    p, q = so[2:]
    if h % p or w % q:
        raise _Unsupported(f"adaptive pool {h}x{w} -> {p}x{q} is not a regular window")
    return GNode(name, "maxpool" if is_max else "avgpool", [x], out,
                 dict(R=h // p, S=w // q, stride=(h // p, w // q), pads=(0, 0, 0, 0)))


def _arg(node, i, key, default=None):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(key, default)


def _function(torch, node, name, dyn, shapes, static, params) -> GNode:
    t = node.target
    fn = t if isinstance(t, str) else getattr(t, "__name__", str(t))
    fn = fn.strip("_") if fn.startswith("__") else fn
    fn = {"iadd": "add", "isub": "sub", "imul": "mul", "itruediv": "truediv", "truediv": "div",
          "add_": "add", "mul_": "mul"}.get(fn, fn)
    x, out = dyn[0], node.name
    if fn in ("add", "sub", "mul", "div"):
        consts = [shapes.get(a.name, ()) if isinstance(a, torch.fx.Node) else ()
                  for a in node.args[:2]
                  if not (isinstance(a, torch.fx.Node) and a.name not in static)]
        return GNode(name, "add" if fn in ("add", "sub") else "mul", dyn, out, consts=consts,
                     attrs=dict(params=_const_params(node, torch, params)))
    if fn in ("cat", "concat"):
        ts = _arg(node, 0, "tensors", [])
        consts = [shapes.get(a.name, ()) for a in ts
                  if isinstance(a, torch.fx.Node) and a.name in static]
        return GNode(name, "concat", dyn, out, dict(axis=int(_arg(node, 1, "dim", 0)),
                                                    params=_const_params(node, torch, params)),
                     consts=consts)
    if fn in ("matmul", "bmm", "mm"):
        a_, b_ = node.args[0], node.args[1]
        if len(dyn) == 2:
            return GNode(name, "matmul", [a_.name, b_.name], out)
        w = b_ if getattr(a_, "name", None) == x else None
        ws = shapes.get(getattr(w, "name", None), ())
        if w is None or len(ws) != 2:
            raise _Unsupported("only activation @ activation or activation @ 2-D parameter")
        return GNode(name, "linear", [x], out, dict(K=ws[1], C=ws[0], bias=False))
    if fn == "linear":
        ws = shapes.get(getattr(_arg(node, 1, "weight"), "name", None), ())
        if len(ws) != 2:
            raise _Unsupported("weight is not a 2-D parameter")
        return GNode(name, "linear", [x], out, dict(K=ws[0], C=ws[1],
                                                    bias=_arg(node, 2, "bias") is not None))
    if fn == "layer_norm":
        return GNode(name, "layernorm", [x], out, dict(params=_const_params(node, torch, params)))
    if fn == "scaled_dot_product_attention":
        q, k, v = (getattr(_arg(node, i, key), "name", None) for i, key in
                   enumerate(("query", "key", "value")))
        if None in (q, k, v) or _arg(node, 3, "attn_mask") is not None:
            raise _Unsupported("query, key and value must be activations; no attn_mask")
        nodes = _attention(name, q, k, v, out, shapes, scale=node.kwargs.get("scale"))
        if _arg(node, 4, "dropout_p", 0.0) or _arg(node, 5, "is_causal", False):
            nodes[1].attrs["run"] = {"opaque": "scaled_dot_product_attention with dropout "
                                               "or is_causal"}
        return nodes
    if fn in _ACT_FUNCS:
        return GNode(name, "act", [x], out, dict(kind=_ACT_FUNCS[fn]))
    if fn in ("hardtanh", "clamp", "clip"):
        lo = _arg(node, 1, "min_val" if fn == "hardtanh" else "min")
        hi = _arg(node, 2, "max_val" if fn == "hardtanh" else "max")
        kind = "relu6" if (lo, hi) == (0, 6) else "relu" if lo == 0 and hi is None else "clip"
        return GNode(name, "act", [x], out, dict(kind=kind))
    if fn in _FREE_FUNCS:
        return GNode(name, "free", [x], out)
    if fn in _MOVE_FUNCS:
        return GNode(name, "transpose", [x], out)
    if fn in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        return _adaptive(name, x, out, shapes, fn == "adaptive_max_pool2d")
    if fn in ("max_pool2d", "avg_pool2d"):
        k = _pair(_arg(node, 1, "kernel_size"))
        st = _pair(_arg(node, 2, "stride") or k)
        ph, pw = _pair(_arg(node, 3, "padding", 0))
        return GNode(name, "maxpool" if fn == "max_pool2d" else "avgpool", [x], out,
                     dict(R=k[0], S=k[1], stride=st, pads=(ph, pw, ph, pw)))
    if fn == "mean":
        dims = _arg(node, 1, "dim")
        dims = [dims] if isinstance(dims, int) else list(dims or [])
        if len(shapes[x]) == 4 and sorted(d % 4 for d in dims) == [2, 3]:
            return GNode(name, "gap", [x], out)
        if len(shapes[x]) == 3 and [d % 3 for d in dims] == [1]:  # (N, T, C) over tokens
            return GNode(name, "gap", [x], out, dict(tokens=True))
        raise _Unsupported("only the mean over H and W, or over the tokens of (N, T, C)")
    if fn == "pad":
        p = list(_arg(node, 1, "pad"))
        if len(p) != 4:
            raise _Unsupported("only 2-D padding (left, right, top, bottom)")
        return GNode(name, "pad", [x], out, dict(pads=(p[2], p[0], p[3], p[1])))
    if fn in ("interpolate", "upsample"):
        return GNode(name, "resize", [x], out)
    raise _Unsupported("")


def _module_run(torch, m, path: str, nd) -> dict:
    """What running module ``m`` (at ``path``, lowered to ``nd``) needs
    (:data:`workloads.graph.RUN_ATTRS`): its parameters and buffers by state-dict key,
    and the attributes the lowering drops."""
    nn = torch.nn
    if isinstance(nd, list):
        return {}

    def key(attr):
        return f"{path}.{attr}" if getattr(m, attr, None) is not None else None

    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        return {"w": key("weight"), "b": key("bias"), "pad_mode": m.padding_mode}
    if isinstance(m, nn.Linear):
        return {"w": key("weight"), "b": key("bias"), "layout": "kc"}
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if m.running_mean is None:
            return {"fn": f"{type(m).__name__} without running statistics"}
        return {"w": key("weight"), "b": key("bias"), "mean": key("running_mean"),
                "var": key("running_var"), "eps": float(m.eps)}
    if isinstance(m, nn.LayerNorm):
        return {"w": key("weight"), "b": key("bias"), "eps": float(m.eps),
                "axes": len(m.normalized_shape)}
    if isinstance(m, nn.LeakyReLU):
        return {"alpha": float(m.negative_slope)}
    if isinstance(m, nn.ELU):
        return {"alpha": float(m.alpha)}
    if isinstance(m, nn.Softplus):
        return {"beta": float(m.beta)}
    if isinstance(m, nn.Softmax):
        return {"axis": m.dim}
    if isinstance(m, nn.GELU):
        return {"approximate": m.approximate}
    if isinstance(m, (nn.Hardsigmoid, nn.Hardswish)):
        return {"alpha": 1 / 6, "beta": 0.5}
    if isinstance(m, nn.Hardtanh):
        return {"lo": float(m.min_val), "hi": float(m.max_val)}
    if isinstance(m, nn.MaxPool2d):
        return {"dilation": _pair(m.dilation)}
    if isinstance(m, nn.AvgPool2d):
        if m.divisor_override:
            return {"fn": "AvgPool2d with divisor_override"}
        return {"count_include_pad": bool(m.count_include_pad)}
    if isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d)):
        return {"mode": "constant", "value": float(getattr(m, "value", 0.0))}
    if isinstance(m, (nn.ReflectionPad2d, nn.ReplicationPad2d)):
        return {"mode": type(m).__name__}
    if isinstance(m, nn.Upsample):
        return {"mode": m.mode}
    if nd.op == "free":
        return {"fn": "identity" if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))
                else type(m).__name__}
    return {}


def _function_run(torch, node, nd, shapes, static) -> dict:
    """:func:`_module_run` for a function call (``node``, lowered to ``nd``)."""
    if isinstance(nd, list):
        return {}
    t = node.target
    fn = t if isinstance(t, str) else getattr(t, "__name__", str(t))
    fn = fn.strip("_") if fn.startswith("__") else fn
    fn = {"iadd": "add", "isub": "sub", "imul": "mul", "itruediv": "div", "truediv": "div",
          "add_": "add", "mul_": "mul", "relu_": "relu"}.get(fn, fn)

    def operand(a):
        if isinstance(a, torch.fx.Node):
            if a.name not in static:
                return ("t", a.name)
            return ("p", a.target) if a.op == "get_attr" else ("?", a.name)
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            return ("v", float(a))
        return ("?", repr(a))

    def key(a):
        return a.target if isinstance(a, torch.fx.Node) and a.op == "get_attr" else None

    if nd.op in ("add", "mul"):
        if node.kwargs.get("alpha") is not None or len(node.args) > 2:
            return {"fn": f"{fn} with alpha"}
        return {"fn": fn, "operands": [operand(a) for a in node.args[:2]]}
    if nd.op == "concat":
        return {"fn": "concat", "operands": [operand(a) for a in _arg(node, 0, "tensors", [])]}
    if nd.op == "linear":
        if fn == "linear":
            b = _arg(node, 2, "bias")
            return {"w": key(_arg(node, 1, "weight")), "b": key(b) if b is not None else None,
                    "layout": "kc"}
        return {"w": key(node.args[1]), "b": None, "layout": "ck"}
    if nd.op == "layernorm":
        w, b = _arg(node, 2, "weight"), _arg(node, 3, "bias")
        if (w is not None and key(w) is None) or (b is not None and key(b) is None):
            return {"fn": "layer_norm of computed parameters"}
        shape = _arg(node, 1, "normalized_shape")
        return {"w": key(w), "b": key(b), "eps": float(_arg(node, 4, "eps", 1e-5)),
                "axes": len(shape) if isinstance(shape, (list, tuple)) else 1}
    if nd.op == "act":
        kind = nd.attrs["kind"]
        if fn == "leaky_relu":
            return {"alpha": float(_arg(node, 1, "negative_slope", 0.01))}
        if fn == "elu":
            return {"alpha": float(_arg(node, 1, "alpha", 1.0))}
        if fn == "softplus":
            return {"beta": float(_arg(node, 1, "beta", 1.0))}
        if fn == "softmax":
            return {"axis": _arg(node, 1, "dim")}
        if fn == "gelu":
            return {"approximate": node.kwargs.get("approximate", "none")}
        if kind in ("hardsigmoid", "hardswish"):
            return {"alpha": 1 / 6, "beta": 0.5}
        if fn in ("hardtanh", "clamp", "clip"):
            lo = _arg(node, 1, "min_val" if fn == "hardtanh" else "min",
                      -1.0 if fn == "hardtanh" else None)
            hi = _arg(node, 2, "max_val" if fn == "hardtanh" else "max",
                      1.0 if fn == "hardtanh" else None)
            if any(isinstance(v, torch.fx.Node) for v in (lo, hi)):
                return {"fn": f"{fn} with tensor bounds"}
            return {"lo": None if lo is None else float(lo),
                    "hi": None if hi is None else float(hi)}
        return {}
    if nd.op == "transpose":
        rank = len(shapes.get(nd.inputs[0], ()))
        if fn == "permute":
            dims = node.args[1:] if len(node.args) > 1 else node.kwargs.get("dims", ())
            dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (list, tuple)) \
                else tuple(dims)
            return {"perm": tuple(int(d) % rank for d in dims)}
        if fn == "transpose":
            a, b = (int(_arg(node, i, k)) % rank for i, k in ((1, "dim0"), (2, "dim1")))
            perm = list(range(rank))
            perm[a], perm[b] = perm[b], perm[a]
            return {"perm": tuple(perm)}
        return {"perm": tuple(range(rank))[::-1]}   # t()
    if nd.op == "maxpool" and fn == "max_pool2d":
        return {"dilation": _pair(_arg(node, 4, "dilation", 1))}
    if nd.op == "avgpool" and fn == "avg_pool2d":
        if _arg(node, 6, "divisor_override") is not None:
            return {"fn": "avg_pool2d with divisor_override"}
        return {"count_include_pad": bool(_arg(node, 5, "count_include_pad", True))}
    if nd.op == "pad":
        v = _arg(node, 3, "value")
        return {"mode": _arg(node, 2, "mode", "constant"), "value": float(v or 0.0)}
    if nd.op == "resize":
        return {"mode": _arg(node, 3, "mode", "nearest")}
    if nd.op == "free":
        run = {"fn": "identity" if fn.startswith("adaptive") else fn}
        run.update(_selection(torch, node, fn, shapes))
        return run
    return {}


def _selection(torch, node, fn, shapes) -> dict:
    """For a view that selects elements (``x[...]`` of static ints and slices, narrow,
    select, a part of chunk / split / unbind), its numpy ``index``; for chunk / split /
    unbind themselves, ``through`` (graph.RUN_ATTRS). Empty when the view is not one of
    those, or selects along the batch axis: the interpreter then refuses it."""
    if fn in ("chunk", "split", "unbind"):
        return {"through": True}
    x = node.args[0] if node.args else None
    if not isinstance(x, torch.fx.Node):
        return {}
    if fn == "getitem" and x.name not in shapes:   # a part of chunk / split / unbind
        part = node.args[1]
        src = x.args[0] if x.args else None
        pfn = getattr(x.target, "__name__", str(x.target)).strip("_")
        if pfn not in ("chunk", "split", "unbind") or not isinstance(part, int) \
                or not isinstance(src, torch.fx.Node) or src.name not in shapes:
            return {}   # a part of another tuple (max's values, attention's outputs)
        shape = shapes[src.name]
        dim = _arg(x, 2 if pfn in ("chunk", "split") else 1, "dim", 0) % len(shape)
        n = shape[dim]
        if pfn == "unbind":
            sel = part
        else:
            size = _arg(x, 1, "chunks" if pfn == "chunk" else "split_size_or_sections")
            if pfn == "chunk" and isinstance(size, int):
                step = -(-n // size)
                bounds = [(i, min(i + step, n)) for i in range(0, n, step)]
            elif isinstance(size, int):
                bounds = [(i, min(i + size, n)) for i in range(0, n, size)]
            elif isinstance(size, (list, tuple)) and all(isinstance(v, int) for v in size):
                ends = [sum(size[:i + 1]) for i in range(len(size))]
                bounds = list(zip([0] + ends[:-1], ends))
            else:
                return {}
            if not -len(bounds) <= part < len(bounds):
                return {}
            sel = slice(*bounds[part])
        index = (slice(None),) * dim + (sel,)
    elif fn == "getitem":
        idx = node.args[1]
        index = tuple(idx) if isinstance(idx, (tuple, list)) else (idx,)
        ok = all(v is None or v is Ellipsis or (isinstance(v, int) and not isinstance(v, bool))
                 or (isinstance(v, slice) and all(isinstance(e, int) or e is None
                                                  for e in (v.start, v.stop, v.step)))
                 for v in index)
        if not ok:
            return {}
    elif fn in ("narrow", "select") and x.name in shapes:
        shape = shapes[x.name]
        dim = _arg(node, 1, "dim")
        if not isinstance(dim, int):
            return {}
        dim %= len(shape)
        if fn == "narrow":
            start, length = _arg(node, 2, "start"), _arg(node, 3, "length")
            if not (isinstance(start, int) and isinstance(length, int)):
                return {}
            start %= shape[dim]
            sel = slice(start, start + length)
        else:
            sel = _arg(node, 2, "index")
            if not isinstance(sel, int):
                return {}
        index = (slice(None),) * dim + (sel,)
    else:
        return {}
    first = index[0] if index else slice(None)
    if first is Ellipsis and len(index) > 1 and not any(v is Ellipsis for v in index[1:]):
        return {"index": index}   # the leading axes untouched
    if first is None or first != slice(None):
        return {}   # the batch axis selected or moved: not the sample's batch
    return {"index": index}
