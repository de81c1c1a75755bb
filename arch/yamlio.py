"""YAML reading that keeps line numbers and rejects duplicate keys.

Kept free of tilesim types so that ``arch`` and ``workloads`` can each use a copy of
the same idea without importing each other (see DESIGN §1); this is arch's.
"""
from __future__ import annotations

import yaml
from yaml.constructor import SafeConstructor

from .errors import ArchError


def read_yaml(text: str, source: str) -> tuple[object, dict[tuple, int]]:
    """Parse YAML; return (data, {key path: line}). Duplicate keys are errors."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ArchError(f"not valid YAML: {getattr(e, 'problem', e)}", source=where,
                        fix="check indentation, colons and quotes on that line") from None
    lines: dict[tuple, int] = {}
    if node is None:
        raise ArchError("the file is empty", source=source, fix="write an architecture, "
                        "e.g. copy a preset from `tilesim list`")
    ctor = SafeConstructor()

    def build(n, path):
        lines[path] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            out = {}
            for k, v in n.value:
                key = ctor.construct_object(k, deep=True)
                if key in out:
                    raise ArchError(
                        f"duplicate key {format_path(path + (key,))!r} (first at line "
                        f"{lines[path + (key,)]})", source=f"{source}:{k.start_mark.line + 1}",
                        fix="keep one of the two entries")
                lines[path + (key,)] = k.start_mark.line + 1
                out[key] = build(v, path + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(v, path + (i,)) for i, v in enumerate(n.value)]
        return ctor.construct_object(n, deep=True)

    return build(node, ()), lines


def format_path(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"
