"""Load an Architecture from a preset name, a YAML file or a SCALE-Sim .cfg file."""
from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ArchError
from .schema import Architecture, semantic_problems
from .yamlio import format_path, read_yaml

if TYPE_CHECKING:
    from .gpu_schema import GpuSpec

PRESET_DIR = Path(__file__).parent / "presets"
GPU_DIR = Path(__file__).parent / "gpus"


def is_gpu(a) -> bool:
    """True for a loaded GPU preset (:class:`GpuSpec`), False for an Architecture (no GPU
    schema is built to tell)."""
    return getattr(a, "kind", None) == "gpu"


def presets() -> list[str]:
    """Names of the bundled accelerator presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def gpu_presets() -> list[str]:
    """Names of the bundled GPU presets (``arch/gpus/*.yaml``)."""
    return sorted(p.stem for p in GPU_DIR.glob("*.yaml"))


def load(spec: str | Path) -> Architecture:
    """An Architecture from a preset name, a ``.yaml`` path or a SCALE-Sim ``.cfg`` path;
    a GPU preset name or a YAML file with ``kind: gpu`` gives a :class:`GpuSpec` instead."""
    spec_s = str(spec)
    path = Path(spec_s)
    if path.suffix == ".cfg":
        from .scalesim_cfg import cfg_dict
        if not path.is_file():
            raise ArchError("no such file", source=str(path),
                            fix="check the path to the SCALE-Sim .cfg")
        return from_dict(cfg_dict(path, read_text(path)), source=str(path))
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ArchError("no such file", source=spec_s,
                            fix="check the path, or give a preset name: " + ", ".join(presets()))
        return from_yaml(read_text(path), source=spec_s)
    if spec_s in presets():
        p = PRESET_DIR / f"{spec_s}.yaml"
        return from_yaml(p.read_text(), source=str(p))
    if spec_s in gpu_presets():
        p = GPU_DIR / f"{spec_s}.yaml"
        return from_yaml(p.read_text(), source=str(p))
    close = difflib.get_close_matches(spec_s, presets() + gpu_presets(), n=1)
    raise ArchError(f"unknown architecture {spec_s!r}: not a preset and not a file",
                    fix=(f"did you mean {close[0]!r}? " if close else "")
                    + "presets: " + ", ".join(presets()) + "; GPU presets: "
                    + ", ".join(gpu_presets()))


def read_text(path: Path) -> str:
    """A file's text, or an ArchError that names it (missing, unreadable, not UTF-8)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ArchError(f"not UTF-8 text (byte {e.start})", source=str(path),
                        fix="save the file as UTF-8") from None
    except OSError as e:
        raise ArchError(f"cannot read the file: {e.strerror}", source=str(path),
                        fix="check the path and its permissions") from None


def from_yaml(text: str, source: str = "<string>") -> Architecture:
    data, lines = read_yaml(text, source)
    if not isinstance(data, dict):
        raise ArchError("the top level must be a mapping of keys (version, name, clock, ...)",
                        source=source, fix="see `tilesim list` presets for an example")
    if data.get("kind") == "gpu":
        return gpu_from_dict(data, source, lines)
    return from_dict(data, source, lines)


def gpu_from_dict(data: dict, source: str = "<dict>", lines: dict | None = None) -> GpuSpec:
    """A GpuSpec from a parsed GPU YAML (``kind: gpu``), errors naming file, key and fix."""
    from .gpu_schema import GpuSpec
    try:
        return GpuSpec.model_validate(data)
    except ValidationError as e:
        raise _explain(e, source, lines or {}, GpuSpec) from None


def from_dict(data: dict, source: str = "<dict>", lines: dict | None = None) -> Architecture:
    lines = lines or {}
    try:
        a = Architecture.model_validate(data, context={"defer_semantic_checks": True})
    except ValidationError as e:
        raise _explain(e, source, lines) from None
    problems = semantic_problems(a)
    if problems:
        path, msg, fix = problems[0]
        keys = tuple(int(k) if k.isdigit() else k for k in re.findall(r"\w+", path))
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ArchError(f"{path}: {msg}{more}", source=_where(source, lines, keys), fix=fix)
    return a


def _where(source: str, lines: dict, path: tuple) -> str:
    for k in range(len(path), -1, -1):
        if path[:k] in lines:
            return f"{source}:{lines[path[:k]]}"
    return source


def dump_yaml(arch: Architecture | GpuSpec) -> str:
    """The resolved architecture as YAML that :func:`load` reads back to an equal object."""
    return yaml.safe_dump(arch.to_yaml_dict(), sort_keys=False)


# ---- error messages ---------------------------------------------------------------------
def _model_at(path, root: type[BaseModel] = Architecture) -> type[BaseModel] | None:
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


def _explain(err: ValidationError, source: str, lines: dict,
             root: type[BaseModel] = Architecture) -> ArchError:
    errors = err.errors()
    # an unknown key is usually a typo of a key that is then reported missing: report the typo
    errors.sort(key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    path = tuple(x for x in first["loc"]
                 if not (isinstance(x, str) and ("[" in x or x.startswith("function-"))))
    where = _where(source, lines, path)
    key = format_path(path)
    typ, msg = first["type"], first["msg"].removeprefix("Value error, ")
    fix = None
    if typ == "extra_forbidden":
        cls = _model_at(path, root)
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
    return ArchError(f"{key}: {msg}{more}", source=where, fix=fix)
