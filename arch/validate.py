"""Validate, then build: dicts (the YAML form) into schema objects, with errors that name
the source, the key path and a fix; and deriving an object with changed values by key path.

Imports only the schema-free parts of arch (errors, keypath, yamlio), so that both the
schema (``Architecture.replace``) and the loader can use it.
"""
from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Callable, Mapping

from pydantic import BaseModel, ValidationError

from . import keypath
from .errors import ArchError
from .yamlio import format_path

PATH_FIX = "write a key path like memory[1].size or compute.arrays[0].rows"


def build(cls: type[BaseModel], data, source: str = "<dict>", lines: dict | None = None,
          problems: Callable | None = None):
    """``cls`` validated from ``data`` (the YAML form). ``problems(obj)`` lists cross-field
    problems as (key path, problem, fix): the first becomes the error."""
    lines = lines or {}
    if not isinstance(data, Mapping):
        raise ArchError(f"the top level must be a mapping of keys (version, name, clock, ...), "
                        f"not a {type(data).__name__}", source=source,
                        fix="see `tilesim list` presets for an example")
    try:
        obj = cls.model_validate(dict(data), context={"defer_semantic_checks": True})
    except ValidationError as e:
        raise explain(e, source, lines, cls) from None
    found = problems(obj) if problems is not None else []
    if found:
        path, msg, fix = found[0]
        keys = tuple(int(k) if k.isdigit() else k for k in re.findall(r"\w+", path))
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ArchError(f"{path}: {msg}{more}", source=where(source, lines, keys), fix=fix)
    return obj


#: the missing second argument of replace(path, value)
UNSET = object()


def replace(obj: BaseModel, changes, value=UNSET, *, rebuild: Callable, source: str = "<replace>"):
    """``rebuild(dict, source)`` of ``obj``'s YAML form with ``changes`` applied: a key path
    and a value, or a mapping {key path: value}. A key path names an existing value or an
    optional key left unset; a value is what the YAML would hold ("2 MiB", 128, ...)."""
    if isinstance(changes, str):
        if value is UNSET:
            raise TypeError("replace(path, value) or replace({path: value, ...}): the value "
                            f"for {changes!r} is missing")
        changes = {changes: value}
    elif value is not UNSET or not isinstance(changes, Mapping):
        raise TypeError("replace(path, value) or replace({path: value, ...})")
    base = obj.to_yaml_dict()
    edits = []
    for path, v in changes.items():
        if not isinstance(path, str):
            raise ArchError(f"{path!r}: a key path is a string", source=source, fix=PATH_FIX)
        try:
            keys = keypath.parse(path)
        except ValueError as e:
            raise ArchError(str(e), source=source, fix=PATH_FIX) from None
        problem = settable(base, keys, type(obj))
        if problem is not None:
            raise ArchError(f"{path}: no such key path in {getattr(obj, 'name', '')!r}",
                            source=source, fix=problem)
        edits.append((keys, v))
    return rebuild(keypath.set_many(base, edits), source)


def settable(data: dict, keys: tuple, root: type[BaseModel]) -> str | None:
    """None when ``keys`` names a value of ``data`` or an unset optional key of the schema
    that may be added there; else what is wrong and the fix."""
    problem = keypath.check(data, keys)
    if problem is None:
        return None
    cur = data
    for i, k in enumerate(keys):   # a key after a list: say where the index goes
        if isinstance(k, str) and isinstance(cur, list):
            here = keypath.fmt(keys[:i])
            return (f"{here} is a list; give an index, e.g. "
                    f"{keypath.fmt(keys[:i] + (0,) + keys[i:])}")
        if keypath.check(cur, (k,)) is not None:
            break
        cur = cur[k]
    if len(keys) > 1 and keypath.check(data, keys[:-1]) is not None:
        return problem   # the parent is missing: say what is wrong on the way
    parent = keypath.get(data, keys[:-1])
    cls = model_at(keys, root)
    if isinstance(keys[-1], str) and isinstance(parent, dict) and cls is not None:
        if keys[-1] in cls.model_fields:
            return None
        allowed = list(cls.model_fields)
        close = difflib.get_close_matches(keys[-1], allowed, n=1)
        return ((f"did you mean {close[0]!r}? " if close else "")
                + f"allowed keys of {keypath.fmt(keys[:-1]) or 'the top level'}: "
                + ", ".join(allowed))
    return problem


def where(source: str, lines: dict, path: tuple) -> str:
    """``source:line`` of the deepest part of ``path`` with a known line, else ``source``."""
    for k in range(len(path), -1, -1):
        if path[:k] in lines:
            return f"{source}:{lines[path[:k]]}"
    return source


def model_at(path, root: type[BaseModel]) -> type[BaseModel] | None:
    """The schema class that owns the last key of ``path`` (for 'did you mean')."""
    cls = root
    for p in path[:-1]:
        if isinstance(p, int):
            continue
        field = cls.model_fields.get(p)
        if field is None:
            return None
        ann = field.annotation
        found = None
        stack = [ann]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                found = t
                break
            stack.extend(typing.get_args(t))
        if found is None:
            return None
        cls = found
    return cls


def explain(err: ValidationError, source: str, lines: dict,
            root: type[BaseModel]) -> ArchError:
    """pydantic's first error as an ArchError naming the file (and line), key path and fix."""
    errors = err.errors()
    # an unknown key is usually a typo of a key that is then reported missing: report the typo
    errors.sort(key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    path = tuple(x for x in first["loc"]
                 if not (isinstance(x, str) and ("[" in x or x.startswith("function-"))))
    at = where(source, lines, path)
    key = format_path(path)
    typ, msg = first["type"], first["msg"].removeprefix("Value error, ")
    fix = None
    if typ == "extra_forbidden":
        cls = model_at(path, root)
        allowed = list(cls.model_fields) if cls else []
        close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
        msg = "unknown key"
        fix = (f"did you mean {close[0]!r}? " if close else "") + \
            (f"allowed keys here: {', '.join(allowed)}" if allowed else "remove it")
    elif typ == "missing":
        msg = "required key is missing"
        fix = f"add {path[-1]!r}"
    elif typ == "literal_error":
        fix = "use one of the listed values"
    elif typ in ("greater_than", "int_type", "int_parsing", "int_from_float"):
        fix = "give a positive whole number"
    elif typ == "less_than_equal":
        fix = f"give a whole number up to {first.get('ctx', {}).get('le', 'the limit')}"
    elif typ in ("model_type", "model_attributes_type", "dict_type"):
        fix = "write a mapping of keys here (see a preset from `tilesim list`)"
    elif typ == "list_type":
        fix = "write a list here"
    elif typ == "too_short":
        fix = "add at least one entry"
    elif "; " in msg:
        msg, fix = msg.split("; ", 1)
    if fix is None:
        fix = "see the architecture schema in arch/schema.py or a preset from `tilesim list`"
    n_more = len(errors) - 1
    more = f" (and {n_more} more problem{'s' if n_more > 1 else ''})" if n_more else ""
    return ArchError(f"{key}: {msg}{more}", source=at, fix=fix)


