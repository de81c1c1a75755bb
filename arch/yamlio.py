"""YAML reading for arch: the shared bounded reader (``tilesim._input``) raising ArchError.

Keeps line numbers, rejects duplicate keys, unknown tags, merge keys, nesting deeper
than ``_input.MAX_DEPTH`` and alias expansion beyond ``_input.ALIAS_BUDGET`` nodes.
"""
from __future__ import annotations

from tilesim import _input

from .errors import ArchError

format_path = _input.format_path


def read_yaml(text: str, source: str) -> tuple[object, dict[tuple, int]]:
    """Parse YAML; return (data, {key path: line}). Duplicate keys are errors."""
    data, lines = _input.read_yaml(text, source, ArchError)
    if data is None:
        raise ArchError("the file is empty", source=source, fix="write an architecture, "
                        "e.g. copy a preset from `tilesim list`")
    return data, lines
