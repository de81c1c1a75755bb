"""Load an Architecture from a preset name, a YAML file or a SCALE-Sim .cfg file."""
from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from . import validate
from .errors import ArchError
from .schema import Architecture
from .yamlio import read_yaml

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


def load(spec) -> Architecture:
    """An Architecture from a preset name, a ``.yaml`` path (str or Path), a SCALE-Sim
    ``.cfg`` path, or a dict of the YAML form (validated as a file is, errors naming
    ``<dict>``); a GPU preset name, or a YAML file or dict with ``kind: gpu``, gives a
    :class:`GpuSpec` instead."""
    if isinstance(spec, Mapping):
        return from_dict(spec) if spec.get("kind") != "gpu" else gpu_from_dict(dict(spec))
    if not isinstance(spec, (str, os.PathLike)):
        raise ArchError("cannot load an architecture from a value of type "
                        f"{type(spec).__name__}",
                        fix="give a preset name, a path to a .yaml or .cfg file, or a dict of "
                            "the YAML form (see `tilesim schema`)")
    spec_s = str(spec)
    path = Path(spec_s)
    if path.suffix == ".cfg":
        from .scalesim_cfg import cfg_dict
        if not path.is_file():
            raise ArchError(_not_a_file(path), source=str(path),
                            fix="check the path to the SCALE-Sim .cfg")
        return from_dict(cfg_dict(path, read_text(path)), source=str(path))
    if path.suffix in (".yaml", ".yml") or isinstance(spec, os.PathLike) or _exists(path):
        if not path.is_file():
            raise ArchError(_not_a_file(path), source=spec_s,
                            fix="check the path, or give a preset name: " + ", ".join(presets()))
        return from_yaml(read_text(path), source=spec_s)
    if spec_s in presets():
        p = PRESET_DIR / f"{spec_s}.yaml"
        return from_yaml(p.read_text(), source=str(p))
    if spec_s in gpu_presets():
        p = GPU_DIR / f"{spec_s}.yaml"
        return from_yaml(p.read_text(), source=str(p))
    if "\n" in spec_s or ": " in spec_s:
        raise ArchError("this text is neither a preset name nor a file",
                        fix="to read YAML text, use tilesim.arch.from_yaml(text); a dict goes "
                            "to tilesim.load_arch(d) or tilesim.arch.from_dict(d)")
    close = difflib.get_close_matches(spec_s, presets() + gpu_presets(), n=1)
    raise ArchError(f"unknown architecture {spec_s!r}: not a preset and not a file",
                    fix=(f"did you mean {close[0]!r}? " if close else "")
                    + "presets: " + ", ".join(presets()) + "; GPU presets: "
                    + ", ".join(gpu_presets()))


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; False for a name the system cannot look up (too long)."""
    try:
        return path.exists()
    except OSError:
        return False


def _not_a_file(path: Path) -> str:
    """Why ``path`` (not a regular file) is not read: it is missing, or a folder or a
    special file (a FIFO would block the read forever, so it is never opened)."""
    return ("no such file" if not _exists(path) else
            "is a folder, not a file" if path.is_dir() else
            "is a FIFO or other special file, not a regular file; tilesim reads "
            "architectures from regular files only")


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
    return validate.build(GpuSpec, data, source, lines)


def from_dict(data: dict, source: str = "<dict>", lines: dict | None = None) -> Architecture:
    """An Architecture from a dict of the YAML form (unit strings, as ``to_yaml_dict``
    writes), validated as a file is: errors name ``source``, the key path and a fix."""
    return Architecture.from_dict(data, source, lines)


def dump_yaml(arch: Architecture | GpuSpec) -> str:
    """The resolved architecture as YAML that :func:`load` reads back to an equal object."""
    return yaml.safe_dump(arch.to_yaml_dict(), sort_keys=False)

