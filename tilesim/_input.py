"""Reading untrusted input: bounded YAML and one number checker.

A leaf (imports nothing of ours, like ``_version``) so that ``arch``, ``workloads`` and
``explore`` share one reader without importing each other (DESIGN §1). Every function
takes ``fail``, which builds the caller's own error: ``fail(message, fix=...)`` (and
``source=`` from :func:`read_yaml`), which ArchError and WorkloadError are. One error path
per package; this module adds none.

YAML (:func:`read_yaml`) is read from the event stream by a loop, not by PyYAML's
recursive composer, so that

- nesting deeper than :data:`MAX_DEPTH` is refused (no RecursionError);
- an alias (``*a``) is counted, not copied, until the document is known to stay within
  :data:`ALIAS_BUDGET` nodes more than it spells out (a 300-byte "billion laughs" is
  refused in a millisecond);
- only plain data is built: tags other than the core scalar, mapping and sequence ones
  (``!!python/name:``, ``!!binary``, ``!!set``) are refused, and so are merge keys (``<<``),
  duplicate keys and keys that are not scalars;
- numbers are decimal, finite and within int64: YAML 1.1 readings that surprise
  (``1:00`` as 60, ``2_24`` as 224, ``010`` as 8, ``.inf``, ``yes`` as true) are refused
  with the spelling to use.
"""
from __future__ import annotations

import math
import re

#: deepest nesting of mappings and sequences a file may have
MAX_DEPTH = 64
#: nodes that aliases may add to a document beyond those it spells out
ALIAS_BUDGET = 100_000
#: the largest integer tilesim reads (int64)
INT_MAX = 2 ** 63 - 1
#: the largest count a layer, and a whole network, may have (MACs, elements, operations):
#: 2**50, about 1.1e15. Bytes, re-reads and cycles derived from them stay inside int64.
COUNT_MAX = 2 ** 50

_DEC_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_TEXT_INT = re.compile(r"[-+]?[0-9]+")
_DEC_FLOAT = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp")}


def limit_text(v: int) -> str:
    """``2**63 - 1`` style text of a power-of-two limit (or the plain number)."""
    if v <= 10 ** 6:
        return f"{v:,}"
    for e in range(1, 128):
        if v == 2 ** e:
            return f"2**{e} ({v:.2g})"
        if v == 2 ** e - 1:
            return f"2**{e} - 1 ({v:.2g})"
    return f"{v:,}"


# ---- numbers ------------------------------------------------------------------------------
def check_number(v, what: str, fail, *, lo=None, hi=None, integer: bool = False,
                 unit: str = "", lo_open: bool = False):
    """``v`` (an int or a float, never a bool) checked: finite, representable (an integer
    within int64), whole when ``integer``, within [``lo``, ``hi``] (``lo`` excluded when
    ``lo_open``). Returns it (an int when ``integer``); else raises ``fail(message, fix=...)``."""
    if type(v) is int and -INT_MAX - 1 <= v <= INT_MAX and (lo is None or v > lo or (
            v == lo and not lo_open)) and (hi is None or v <= hi):
        return v     # the common case, quickly
    u = f" {unit}" if unit else ""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise fail(f"{what} = {v!r} is not a number",
                   fix=f"give a {'whole ' if integer else ''}number{u}")
    if isinstance(v, float) and not math.isfinite(v):
        raise fail(f"{what} = {v!r} is not a finite number",
                   fix=f"give a finite number{u}")
    if integer:
        if isinstance(v, float):
            if v != int(v):
                raise fail(f"{what} = {v!r} is not a whole number",
                           fix=f"give a whole number{u}, e.g. {int(v)}")
            v = int(v)
        if not -INT_MAX - 1 <= v <= INT_MAX:
            raise fail(f"{what} = {v:.3g} is beyond the largest integer tilesim reads, "
                       f"{limit_text(INT_MAX)}",
                       fix=f"give a number up to {limit_text(hi or INT_MAX)}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        if integer and lo == 1:
            raise fail(f"{what} = {v} must be positive", fix="give a number >= 1")
        raise fail(f"{what} = {v:g}{u} is {'not above' if lo_open else 'below'} the "
                   f"smallest allowed, {lo:g}{u}",
                   fix=f"give a value {'above' if lo_open else 'of at least'} {lo:g}{u}")
    if hi is not None and v > hi:
        limit = limit_text(hi) if isinstance(hi, int) else f"{hi:g}"
        raise fail(f"{what} = {v:.6g}{u} is above the largest allowed, {limit}{u}",
                   fix=f"give a value up to {limit}{u}")
    return v


def parse_int_text(text: str, what: str, fail, *, lo: int = 1, hi: int = INT_MAX) -> int:
    """A decimal integer from text (a CSV cell, a cfg value): ASCII digits with an
    optional sign, nothing else (no ``2_24``, ``0x10``, ``1e3`` or other scripts' digits),
    checked by :func:`check_number`."""
    s = text.strip()
    if not _TEXT_INT.fullmatch(s):
        how = (" (no '_' separators)" if "_" in s else "")
        raise fail(f"{what} = {text!r} is not an integer{how}",
                   fix="give a whole number in plain digits, e.g. 224")
    return check_number(int(s), what, fail, lo=lo, hi=hi, integer=True)


def parse_real_text(text: str, what: str, fail, *, lo=None, hi=None, lo_open=False) -> float:
    """A finite decimal number from text (``12.5``, ``1e3``), checked by :func:`check_number`."""
    s = text.strip()
    if not _DEC_FLOAT.fullmatch(s):
        raise fail(f"{what} = {text!r} is not a number",
                   fix="give a number like 10 or 12.5")
    return check_number(float(s), what, fail, lo=lo, hi=hi, lo_open=lo_open)


# ---- YAML ---------------------------------------------------------------------------------
def format_path(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


class _Node:
    """A composed node: kind 'map' | 'seq' | 'scalar', its items or value, its line and
    its expanded size (nodes, aliases counted as the node they name)."""
    __slots__ = ("kind", "items", "line", "size", "done", "value", "anchor")

    def __init__(self, kind, line, value=None):
        self.kind, self.line, self.value = kind, line, value
        self.items, self.size, self.done, self.anchor = [], 1, kind == "scalar", None


def read_yaml(text: str, source: str, fail, *, aliases: bool = True):
    """(data, {key path: line}) of one YAML document: plain dicts, lists and scalars.

    ``fail(message, source=FILE:LINE, fix=...)`` builds the error raised (an error
    class of ours is one). ``aliases=False`` refuses anchors, aliases and merge keys (a table
    that must be plain data)."""
    import yaml
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    stack: list[_Node] = []

    def err(line, message, fix, levels=None):
        """The error at ``line``, with the key path being read (``levels``: the open
        collections above a finished node, each holding its child already)."""
        where = f"{source}:{line}" if line else source
        path = []
        for depth, n in enumerate(stack if levels is None else levels):
            inner = levels is None and depth == len(stack) - 1   # its child is not in items yet
            if n.kind == "seq":
                path.append(len(n.items) - (not inner))
            elif len(n.items) % 2 == inner and len(n.items) > (not inner):
                path.append(n.items[-1 - (not inner)].value)
        return fail(f"{format_path(path) + ': ' if path else ''}{message}", source=where, fix=fix)

    resolver = yaml.resolver.Resolver()
    anchors: dict[str, _Node] = {}
    memo: dict = {}    # scalar (text, tag, style, implicit) -> value: tables repeat them
    root = None
    spelled = 0        # nodes written in the text
    Scalar, MapStart, SeqStart, Alias = (yaml.ScalarEvent, yaml.MappingStartEvent,
                                         yaml.SequenceStartEvent, yaml.AliasEvent)
    try:
        for ev in yaml.parse(text, Loader=loader):
            cls = type(ev)
            if cls is Scalar or cls is MapStart or cls is SeqStart or cls is Alias:
                line = ev.start_mark.line + 1
                if cls is Alias:
                    if not aliases:
                        raise err(line, f"alias *{ev.anchor} in a file that must be plain "
                                  "data", "write the values out in full (no &anchors or "
                                  "*aliases)")
                    node = anchors.get(ev.anchor)
                    if node is None:
                        raise err(line, f"alias *{ev.anchor} names no anchor",
                                  f"define &{ev.anchor} before using it")
                    if not node.done:
                        raise err(line, f"alias *{ev.anchor} refers to a node that contains "
                                  "it", "write the values out (a recursive structure is not data)")
                else:
                    if ev.anchor is not None and not aliases:
                        raise err(line, f"anchor &{ev.anchor} in a file that must be plain data",
                                  "remove the anchor and write the values out in full")
                    tag = ev.tag
                    if tag is not None and tag != "!" and not (
                            tag in _SCALAR_TAGS if cls is Scalar else
                            tag == _CORE + ("map" if cls is MapStart else "seq")):
                        raise err(line, f"tag {tag.replace(_CORE, '!!')} is not allowed",
                                  "remove the tag: tilesim reads plain YAML data (mappings, "
                                  "lists, text, numbers, true/false)")
                    spelled += 1
                    if cls is Scalar:
                        key = (ev.value, tag, ev.style, ev.implicit)
                        value = memo.get(key, memo)
                        if value is memo:
                            try:
                                value = memo[key] = _scalar(ev, resolver)
                            except _Bad as b:
                                raise err(line, b.message, b.fix) from None
                        node = _Node("scalar", line, value)
                    else:
                        node = _Node("map" if cls is MapStart else "seq", line)
                    if ev.anchor is not None:
                        node.anchor = ev.anchor
                        anchors[ev.anchor] = node
                if stack:
                    stack[-1].items.append(node)
                else:
                    root = node
                if not node.done:
                    stack.append(node)
                    if len(stack) > MAX_DEPTH:
                        raise err(line, f"nesting deeper than {MAX_DEPTH} levels",
                                  "flatten the structure (tilesim files nest a few levels)")
            elif cls is yaml.MappingEndEvent or cls is yaml.SequenceEndEvent:
                node = stack.pop()
                node.done = True
                node.size = 1 + sum(c.size for c in node.items)
                if node.size > spelled + ALIAS_BUDGET:
                    raise err(node.line, f"aliases expand this document beyond {ALIAS_BUDGET:,} "
                              f"nodes more than it spells out ({node.size:,} nodes here)",
                              "write the values out, or use fewer nested aliases", stack)
            elif cls is yaml.DocumentStartEvent and root is not None:
                raise err(ev.start_mark.line + 1, "a second YAML document ('---') in one file",
                          "keep one document per file")
    except yaml.YAMLError as e:
        if "maximum nesting depth" in str(e):   # libyaml's own limit, met while scanning ahead
            raise err(None, f"nesting deeper than {MAX_DEPTH} levels",
                      "flatten the structure (tilesim files nest a few levels)") from None
        if loader is not yaml.SafeLoader and len(text) < 2 ** 20:
            # PyYAML's own parser names the line better (and is slower: small files only)
            try:
                for _ in yaml.parse(text, Loader=yaml.SafeLoader):
                    pass
            except yaml.YAMLError as e2:
                e = e2
        mark = getattr(e, "context_mark", None) or getattr(e, "problem_mark", None)
        what = " ".join(x for x in (getattr(e, "context", None), getattr(e, "problem", None))
                        if x)
        raise err(mark.line + 1 if mark else None, f"not valid YAML: {what or e}",
                  "check indentation, colons and quotes on that line") from None
    if root is None:
        return None, {}
    lines: dict[tuple, int] = {}

    def build(n: _Node, path: tuple):
        lines.setdefault(path, n.line)
        if n.kind == "scalar":
            return n.value
        if n.kind == "seq":
            return [build(c, path + (i,)) for i, c in enumerate(n.items)]
        out = {}
        for k, v in zip(n.items[::2], n.items[1::2]):
            if k.kind != "scalar" or k.value == "<<":
                raise err(k.line, f"{format_path(path)}: a key must be a plain name",
                          "write 'name: value' (no lists, mappings or << merges as keys)")
            key = k.value
            if key in out:
                raise err(k.line, f"duplicate key {format_path(path + (key,))!r} (first at "
                          f"line {lines[path + (key,)]})", "keep one of the two entries")
            lines[path + (key,)] = k.line
            out[key] = build(v, path + (key,))
        return out

    return build(root, ()), lines


class _Bad(Exception):
    """A scalar's problem, before the reader knows where it is (becomes the caller's error)."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.message, self.fix = message, fix


def _scalar(ev, resolver, fail=_Bad):
    """The value of a scalar event: text, a decimal number, true/false or null."""
    import yaml
    value = ev.value
    tag = ev.tag
    if tag in (None, "!"):
        if ev.style or tag == "!":     # quoted (or '!'): text
            return value
        tag = resolver.resolve(yaml.ScalarNode, value, ev.implicit)
    kind = tag.replace(_CORE, "")
    if kind in ("str", "timestamp", "merge"):   # a merge key '<<' is refused as a key
        return value
    if kind == "null":
        if value not in ("", "~", "null", "Null", "NULL"):
            raise fail(f"{value!r} is not null",
                       fix="write null, or quote the text")
        return None
    if kind == "bool":
        low = value.lower()
        if low in ("true", "false") and value in ("true", "True", "TRUE", "false", "False",
                                                   "FALSE"):
            return low == "true"
        raise fail(f"{value!r} would be read as a boolean by YAML 1.1 and as text by others",
                   fix="write true or false (or quote it for text)")
    if kind == "int":
        if _DEC_INT.fullmatch(value):
            return check_number(int(value), "integer", fail, integer=True)
        if ":" in value:
            why = "is YAML 1.1 base-60 (1:00 reads as 60)"
        elif "_" in value:
            why = "has '_' separators"
        elif re.fullmatch(r"[-+]?0[0-7]+", value):
            why = "is octal in YAML 1.1 (010 reads as 8)"
        else:
            why = "is not a plain decimal integer"
        raise fail(f"number {value!r} {why}",
                   fix="write it in plain decimal digits, or quote it for text")
    if kind == "float":
        if _DEC_FLOAT.fullmatch(value):
            return check_number(float(value), "number", fail)
        low = value.lower()
        if low.lstrip("+-") in (".inf", ".nan"):
            raise fail(f"{value!r} is not a finite number",
                       fix="give a finite number")
        raise fail(f"number {value!r} is not a plain decimal number",
                   fix="write it like 12.5 or 1e3 (no '_' or ':'), or quote it for text")
    raise fail(f"tag !!{kind} is not allowed",
               fix="remove the tag")
