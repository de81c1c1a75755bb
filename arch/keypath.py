"""Key paths into an architecture's dict form: ``compute.arrays[0].rows``, ``memory[1].size``."""
from __future__ import annotations

import copy
import difflib
import re

_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|(\.)")


def parse(path: str) -> tuple:
    """``"memory[1].size"`` -> ``("memory", 1, "size")``; ValueError when malformed."""
    out: list = []
    pos, want_name = 0, True
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            raise ValueError(f"cannot read {path!r} at character {pos + 1}")
        name, idx, dot = m.groups()
        if name is not None:
            if not want_name:
                raise ValueError(f"cannot read {path!r}: a '.' must separate keys")
            out.append(name)
            want_name = False
        elif idx is not None:
            if want_name:
                raise ValueError(f"cannot read {path!r}: an index must follow a key")
            out.append(int(idx))
        else:
            if want_name:
                raise ValueError(f"cannot read {path!r}: empty key")
            want_name = True
        pos = m.end()
    if want_name:
        raise ValueError(f"cannot read {path!r}: it ends without a key")
    return tuple(out)


def fmt(keys: tuple) -> str:
    out = ""
    for k in keys:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else k)
    return out


def check(data: dict, keys: tuple) -> str | None:
    """None when ``keys`` names an existing leaf of ``data``, else what is wrong and a fix."""
    cur = data
    for i, k in enumerate(keys):
        here = fmt(keys[:i]) or "the top level"
        if isinstance(k, int):
            if not isinstance(cur, list):
                return f"{here} is not a list; drop [{k}]"
            if k >= len(cur):
                return f"{here} has {len(cur)} entries; use an index below {len(cur)}"
            cur = cur[k]
        else:
            if not isinstance(cur, dict):
                return f"{here} is a value, not a mapping; it has no key {k!r}"
            if k not in cur:
                close = difflib.get_close_matches(k, list(cur), n=1)
                return ((f"did you mean {close[0]!r}? " if close else "")
                        + f"keys of {here}: {', '.join(map(str, cur))}")
            cur = cur[k]
    return None


def get(data, keys: tuple):
    for k in keys:
        data = data[k]
    return data


def set_(data: dict, keys: tuple, value) -> dict:
    """A deep copy of ``data`` with ``keys`` set to ``value``."""
    out = copy.deepcopy(data)
    cur = out
    for k in keys[:-1]:
        cur = cur[k]
    cur[keys[-1]] = value
    return out


def set_many(data: dict, items) -> dict:
    out = copy.deepcopy(data)
    for keys, value in items:
        cur = out
        for k in keys[:-1]:
            cur = cur[k]
        cur[keys[-1]] = copy.deepcopy(value)
    return out
