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
        raise yaml_error(e, source) from None
    lines: dict[tuple, int] = {}
    if node is None:
        raise ArchError("the file is empty", source=source, fix="write an architecture, "
                        "e.g. copy a preset from `tilesim list`")
    ctor = SafeConstructor()

    def build(n, path):
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            out = {}
            for k, v in n.value:
                if not isinstance(k, yaml.ScalarNode) or k.value == "<<":
                    raise ArchError(f"{format_path(path)}: a key must be a plain name",
                                    source=f"{source}:{k.start_mark.line + 1}",
                                    fix="write 'name: value' (no lists, mappings or << merges as keys)")
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


def yaml_error(e: yaml.YAMLError, source: str) -> ArchError:
    """An ArchError for a YAML syntax error, at the line where the broken construct starts."""
    mark = getattr(e, "context_mark", None) or getattr(e, "problem_mark", None)
    where = f"{source}:{mark.line + 1}" if mark else source
    what = " ".join(x for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x)
    return ArchError(f"not valid YAML: {what or e}", source=where,
                     fix="check indentation, colons and quotes on that line")
