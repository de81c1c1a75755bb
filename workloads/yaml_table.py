"""Read a model written as a YAML layer table.

::

    name: tiny
    layers:                      # per sample; N is the batch given at load time
      - {name: conv1, type: conv, C: 3, H: 32, W: 32, K: 16, R: 3, stride: 1, padding: 1}
      - {name: dw1, type: conv, C: 16, H: 32, W: 32, K: 16, R: 3, padding: 1, groups: 16}
      - {name: pool1, type: maxpool, C: 16, H: 32, W: 32, R: 2, stride: 2}
      - {name: fc, type: fc, C: 4096, K: 10}
      - {name: mm, type: gemm, M: 128, N: 64, K: 256}

Shapes follow PyTorch (symmetric padding, floor output rule); ``S`` defaults to ``R``.

A layer reads the previous layer's output (the first one the network input) unless its
optional ``inputs`` key names the layers whose outputs it reads: one name, or for an
``add`` / ``mul`` a list of two or more, in order (``''`` is the network input)::

      - {name: conv1, type: conv, C: 16, H: 32, W: 32, K: 16, R: 3, padding: 1}
      - {name: conv2, type: conv, C: 16, H: 32, W: 32, K: 16, R: 3, padding: 1}
      - {name: res, type: add, C: 16, H: 32, W: 32, inputs: [conv2, conv1]}   # a residual
      - {name: side, type: conv, C: 3, H: 32, W: 32, K: 8, R: 1, inputs: ''}    # a branch

Each name must be a layer above it (an unknown or later name is an error naming the
line). This is the layer graph the network-level planner keeps activations on chip by
(:func:`workloads.layer_sources`). For an ``add`` / ``mul``, ``inputs`` may instead be a
count, as before: the previous layer's output and ``count - 1`` tensors of unknown
producers (kept in DRAM). Layer shapes are not inferred from the named layers: give
``C``, ``H``, ``W`` as usual.
Unknown or duplicate keys, missing keys and bad values are errors naming the line. The
table is plain data: no anchors, aliases or merge keys; sizes are whole numbers (``1.9``
is refused, not truncated), ``bias`` is true or false, ``activation`` one of
``workloads.ir.ACTIVATIONS``.

A MAC layer (conv, fc, gemm) may carry a ``sparsity`` block (:mod:`workloads.sparsity`):
``weight`` a density in (0, 1] or an N:M structure (``'2:4'``, quoted), ``input`` and
``output`` densities::

      - {name: conv2, type: conv, C: 16, H: 32, W: 32, K: 16, R: 3,
         sparsity: {weight: '2:4', input: 0.6}}
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path

from tilesim._input import read_yaml

from .errors import WorkloadError, read_text
from .ir import NETWORK_INPUT, Model, conv, eltwise, fc, gap, gemm, pool

_KEYS = {
    "conv": ({"C", "H", "W", "K", "R"}, {"S", "stride", "padding", "dilation", "groups", "bias",
                                          "activation", "inputs", "sparsity"}),
    "fc": ({"C", "K"}, {"bias", "activation", "inputs", "sparsity"}),
    "gemm": ({"M", "N", "K"}, {"inputs", "sparsity"}),
    "maxpool": ({"C", "H", "W", "R"}, {"stride", "padding", "inputs"}),
    "avgpool": ({"C", "H", "W", "R"}, {"stride", "padding", "inputs"}),
    "gap": ({"C", "H", "W"}, {"inputs"}),
    "add": ({"C", "H", "W"}, {"inputs"}),
    "mul": ({"C", "H", "W"}, {"inputs"}),
}
#: types that read two or more tensors (their ``inputs`` may also be a count)
_MULTI = ("add", "mul")


# ---- a fast path for the plain one-line-per-layer form -----------------------------------
_ROW = re.compile(r"^( *)- +\{([^{}\[\]&*!|>'\"#%@`?]*)\} *$")
_PAIR = re.compile(r"^ *([A-Za-z_][A-Za-z0-9_]*): +([^ ]+) *$")
_TOP = re.compile(r"^(name|description): +([^ #'\"&*!|>{}\[\]%@`]+) *$")
_INT = re.compile(r"^-?(?:0|[1-9][0-9]*)$")
_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
#: plain words YAML 1.1 reads as something other than text (booleans, null)
_SPECIAL = {"yes", "no", "true", "false", "on", "off", "null"}


def _scalar(v: str):
    """A plain YAML scalar of the forms the fast path takes: a decimal integer or a word;
    None for anything else (the full YAML loader then reads the file)."""
    if _INT.match(v):
        n = int(v)   # beyond int64: the safe reader refuses it, naming the key path
        return n if -2**63 <= n < 2**63 else None
    if _WORD.match(v) and v.lower() not in _SPECIAL:
        return v
    return None


def _plain_table(text: str):
    """(data, lines) as :func:`tilesim._input.read_yaml` gives them (``lines``: key path
    tuple -> line), when the
    text is the plain form: comment and blank lines, ``name:`` / ``description:`` with one
    word, ``layers:``, then one ``- {key: value, ...}`` line per layer whose values are
    decimal integers or words. None for anything else (quotes, anchors, aliases, tags,
    floats, nesting, repeated keys, comments after a value, ...): the YAML loader reads
    it, with its checks and messages. A 100,000-layer table parses in about a second
    instead of the
    safe event-stream reader's tens of seconds."""
    if "\t" in text or "\r" in text:   # tabs, old Mac line ends: the loader's rules
        return None
    data: dict = {}
    lines: dict = {}
    rows: list | None = None
    indent = None
    for ln, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if rows is not None:
            m = _ROW.match(line)
            if m is None or (indent is not None and m.group(1) != indent):
                return None
            indent = m.group(1)
            row = {}
            for part in m.group(2).split(","):
                kv = _PAIR.match(part)
                if kv is None or kv.group(1) in row or kv.group(1).lower() in _SPECIAL:
                    return None
                v = _scalar(kv.group(2))
                if v is None:
                    return None
                row[kv.group(1)] = v
            lines[("layers", len(rows))] = ln
            rows.append(row)
            continue
        if line.startswith("layers:") and not line[7:].strip():
            if "layers" in data:
                return None
            rows = data["layers"] = []
            lines[("layers",)] = ln
            continue
        m = _TOP.match(line)
        if m is None or m.group(1) in data:
            return None
        v = _scalar(m.group(2))
        if v is None:
            return None
        data[m.group(1)] = v
        lines[(m.group(1),)] = ln
    return (data, lines) if rows else None


def read_yaml_table(path: str | Path, batch: int = 1) -> Model:
    path = Path(path)
    src = str(path)
    text = read_text(path)
    got = _plain_table(text)
    data, lines = got if got is not None else read_yaml(text, src, WorkloadError, aliases=False)
    if not isinstance(data, dict) or "layers" not in data:
        raise WorkloadError("expected a mapping with a 'layers' list", source=src,
                            fix="write 'layers:' followed by one mapping per layer")
    extra = set(data) - {"name", "layers", "description"}
    if extra:
        raise WorkloadError(f"unknown top-level key(s) {sorted(extra, key=str)}", source=src,
                            fix="allowed: name, description, layers")
    if not isinstance(data["layers"], list) or not data["layers"]:
        raise WorkloadError("'layers' must be a non-empty list",
                            source=f"{src}:{lines[('layers',)]}", fix="add at least one layer")
    layers, seen = [], {}
    rows = {d.get("name"): i for i, d in enumerate(data["layers"]) if isinstance(d, dict)
            and isinstance(d.get("name"), str)}
    for i, d in enumerate(data["layers"]):
        line = lines[("layers", i)]
        layers.append(_layer(d, i, f"{src}:{line}", batch, seen, rows))
        if layers[-1].name in seen:
            raise WorkloadError(f"layers[{i}]: layer name {layers[-1].name!r} is used again "
                                f"(first on line {seen[layers[-1].name]})",
                                source=f"{src}:{line}", fix="give every layer a unique name")
        seen[layers[-1].name] = line
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise WorkloadError(f"name: {name!r} is not a model name",
                            source=f"{src}:{lines.get(('name',), 1)}", fix="write name: TEXT")
    return Model(name=name, layers=tuple(layers), batch=batch, source=f"yaml:{src}")


def _inputs(v, typ, i, name, where, seen, rows) -> tuple:
    """The sources named by a layer's ``inputs`` key: one name or a list of names of layers
    above it ("" the network input)."""
    names = [v] if isinstance(v, str) else v
    if not isinstance(names, list) or not names or not all(isinstance(x, str) for x in names):
        raise WorkloadError(f"layers[{i}].inputs ({name}): {v!r} is not a layer name or a "
                            "list of layer names", source=where,
                            fix="write inputs: conv1, or inputs: [conv2, conv0] for an add "
                                "(quote a name YAML reads otherwise: inputs: '7'; "
                                "'' is the network input)")
    if typ in _MULTI and len(names) < 2:
        first = names[0] or "''"
        raise WorkloadError(f"layers[{i}].inputs ({name}): an {typ} reads two or more "
                            f"tensors, {names!r} names one", source=where,
                            fix=f"name every tensor it reads, e.g. inputs: [{first}, OTHER], "
                                "or give their count (inputs: 2: the previous layer's output "
                                "and tensors of unknown producers)")
    if typ not in _MULTI and len(names) > 1:
        raise WorkloadError(f"layers[{i}].inputs ({name}): a {typ} layer reads one tensor, "
                            f"{names!r} names {len(names)}", source=where,
                            fix="name the one layer it reads")
    for x in names:
        if x == NETWORK_INPUT or x in seen:
            continue
        if x == name:
            what, fix = "the layer itself", "name a layer above it"
        elif x in rows:
            what = f"a later layer (layers[{rows[x]}])"
            fix = "a layer reads only layers above it: move the producer up"
        else:
            close = difflib.get_close_matches(x, list(seen), n=1)
            what = "no layer of the table"
            fix = (f"did you mean {close[0]!r}? " if close else "") + \
                "name a layer above it ('' is the network input)"
        raise WorkloadError(f"layers[{i}].inputs ({name}): {x!r} is {what}", source=where,
                            fix=fix)
    return tuple(names)


def _layer(d, i, where, batch, seen=(), rows=None):
    if not isinstance(d, dict):
        raise WorkloadError(f"layers[{i}] is not a mapping", source=where,
                            fix="write each layer as {name: ..., type: ..., ...}")
    d = dict(d)
    name, typ = d.pop("name", None), d.pop("type", None)
    if not isinstance(name, str) or typ is None:
        raise WorkloadError(f"layers[{i}] needs a 'name' (text) and a 'type'", source=where,
                            fix="add the missing key")
    if not name.strip():
        raise WorkloadError(f"layers[{i}].name is empty", source=where,
                            fix="give every layer a name")
    if not isinstance(typ, str) or typ not in _KEYS:
        raise WorkloadError(f"layers[{i}] ({name}): unknown type {typ!r}", source=where,
                            fix=f"use one of {', '.join(_KEYS)}")
    req, opt = _KEYS[typ]
    for key in ("bias",):
        if key in d and not isinstance(d[key], bool):
            raise WorkloadError(f"layers[{i}] ({name}): {key} = {d[key]!r} is not true or false",
                                source=where, fix=f"write {key}: true or {key}: false")
    sources, count = (), 2
    sp = d.pop("sparsity", None) if "sparsity" in opt else None
    if sp is not None:   # checked now: its errors name the key path
        from dataclasses import replace
        from .sparsity import from_dict
        try:
            sp = from_dict(sp, f"layers[{i}] ({name}).sparsity")
        except WorkloadError as e:
            raise WorkloadError(e.bare, source=where, fix=e.fix) from None
    if "inputs" in d:
        v = d.pop("inputs")
        if typ in _MULTI and isinstance(v, int) and not isinstance(v, bool):
            count = v   # a count (checked below with the other whole numbers)
            d["inputs"] = v
        else:
            sources = _inputs(v, typ, i, name, where, seen, rows or {})
            count = max(2, len(sources))
    missing, unknown = req - set(d), set(d) - req - opt
    if missing or unknown:
        what = (f"missing key(s) {sorted(missing)}" if missing else "") + \
            ("; " if missing and unknown else "") + (f"unknown key(s) {sorted(unknown, key=str)}" if unknown else "")
        raise WorkloadError(f"layers[{i}] ({name}): {what}", source=where,
                            fix=f"a {typ} layer takes {sorted(req)} and optionally {sorted(opt)}")
    for key, v in d.items():
        if key in ("bias", "activation"):
            continue
        for x in v if isinstance(v, list) and key in ("stride", "padding", "dilation") else [v]:
            if isinstance(x, bool) or not isinstance(x, int):
                raise WorkloadError(f"layers[{i}] ({name}): {key} = {x!r} is not a whole number",
                                    source=where, fix=f"give {key} as an integer (fractions "
                                    "are not truncated)")
    layer = _build(typ, d, i, name, where, batch, sources, count)
    return layer if sp is None else replace(layer, sparsity=sp)


def _build(typ, d, i, name, where, batch, sources, count):
    try:
        if typ == "conv":
            return conv(name, batch, d["C"], d["H"], d["W"], d["K"], d["R"], d.get("S"),
                        stride=d.get("stride", 1), pad=d.get("padding", 0),
                        dilation=d.get("dilation", 1), groups=d.get("groups", 1),
                        bias=d.get("bias", False), activation=d.get("activation"),
                        sources=sources)
        if typ == "fc":
            return fc(name, batch, d["C"], d["K"], bias=d.get("bias", True),
                      activation=d.get("activation"), sources=sources)
        if typ == "gemm":
            return gemm(name, d["M"] * batch, d["N"], d["K"], sources=sources)
        if typ in ("maxpool", "avgpool"):
            return pool(name, typ, batch, d["C"], d["H"], d["W"], d["R"], d.get("stride"),
                        d.get("padding", 0), sources=sources)
        if typ == "gap":
            return gap(name, batch, d["C"], d["H"], d["W"], sources=sources)
        return eltwise(name, typ, batch, d["C"], d["H"], d["W"], count, sources=sources)
    except WorkloadError as e:
        raise WorkloadError(f"layers[{i}]: {e.bare}", source=where, fix=e.fix) from None
    except (TypeError, ValueError) as e:
        raise WorkloadError(f"layers[{i}] ({name}): bad value ({e})", source=where,
                            fix="sizes are positive integers") from None
