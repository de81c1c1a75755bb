"""File output: atomic files (a temporary file in the same folder, then renamed), only over
regular files, and output folders sealed by a manifest written last.

A target that exists and is not a regular file (a FIFO, a device such as /dev/null or
/dev/full, a socket, a folder) is refused and left as it was: :func:`check_file_target`,
which the ``tilesim`` command also calls on its output paths before any work.

A folder of results (``tilesim run --out``, ``compare --out``, ``sweep --out``) is
complete when its ``manifest.json`` (written last, atomically) lists every file with its
size and sha256: :func:`open_folder` removes an old manifest before the first file is
written, :func:`seal_folder` writes the new one, :func:`check_folder` is what a reader
(``tilesim report``) runs. A folder killed while being written has no manifest, so it is
never mistaken for a complete one, even when old and new files are mixed in it.
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import secrets
import stat
from pathlib import Path

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "tilesim-folder-1"


def _umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def check_file_target(path: str | Path) -> Path:
    """``path`` as a file output: refused (an OSError naming it, the file left as it was)
    when it is empty, or exists (a link followed) and is not a regular file."""
    if str(path) == "":
        raise OSError(errno.EINVAL, "an empty path names no file; give a file name", "''")
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return path
    except OSError:   # unreadable: the write itself will say why
        return path
    if stat.S_ISREG(st.st_mode):
        return path
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory; give a file name", str(path))
    raise OSError(errno.EEXIST, f"exists and is {_kind(st.st_mode)}; tilesim writes only "
                  "regular files and leaves it as it is: give a file name", str(path))


def check_dir_target(path: str | Path) -> Path:
    """``path`` as an output folder: refused when empty or when it exists and is not a
    folder (checked before any work)."""
    if str(path) == "":
        raise OSError(errno.EINVAL, "an empty --out names no folder; give a folder name", "''")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder; --out names a "
                                 "folder to write into: give another name", str(path))
    return path


def write_text(path: str | Path, text: str) -> Path:
    path = check_file_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # created with mode 0666 so the umask applies (mkstemp would make every output 0600)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600; outputs are to be shared
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        check_file_target(path)   # made special while we wrote: still never replaced
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_csv(df, path: str | Path) -> Path:
    """A DataFrame as CSV (no index), written atomically; floats with full precision. A
    value that is not a finite number (NaN, ±inf) is written as an empty cell."""
    import numpy as np
    num = df.select_dtypes(include="floating")
    if len(num.columns) and not np.isfinite(num.to_numpy()).all():
        df = df.copy()
        df[num.columns] = num.where(np.isfinite(num.to_numpy()))
    return write_text(path, df.to_csv(index=False, lineterminator="\n"))


def finite(obj):
    """``obj`` with every float that is not finite (NaN, ±inf) replaced by None, so that
    the JSON written is strict (no ``NaN`` or ``Infinity``, which JSON does not have)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if type(obj).__module__ == "numpy" and hasattr(obj, "item"):   # numpy scalars
        return finite(obj.item())
    return obj


def write_json(obj, path: str | Path, compact: bool = False) -> Path:
    """``obj`` as strict JSON, written atomically: indented for small metadata files
    (summary.json, sweep.json), ``compact`` (no spaces or newlines) for big ones (a DES
    trace). A float that is not finite is written as null."""
    kw = ({"separators": (",", ":")} if compact else {"indent": 2, "sort_keys": False})
    try:
        text = json.dumps(obj, allow_nan=False, **kw)
    except ValueError:   # a NaN or an infinity: the (rare) slow path
        text = json.dumps(finite(obj), allow_nan=False, **kw)
    return write_text(path, text + "\n")


# ---- complete folders -------------------------------------------------------------------
def open_folder(path: str | Path) -> Path:
    """Make ``path`` ready to receive a new set of files: created if missing; its old
    manifest removed first, so until :func:`seal_folder` the folder reads as incomplete."""
    d = check_dir_target(path)
    d.mkdir(parents=True, exist_ok=True)
    (d / MANIFEST).unlink(missing_ok=True)
    return d


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def seal_folder(path: str | Path, files, writer: str = "") -> Path:
    """Write ``path``/manifest.json, last: every file of ``files`` (paths in the folder)
    with its size and sha256, and ``writer`` (the tool and version)."""
    d = Path(path)
    entries = {}
    for f in files:
        p = Path(f)
        entries[p.name] = {"bytes": p.stat().st_size, "sha256": _sha256(p)}
    return write_json({"format": MANIFEST_FORMAT, "writer": writer, "files": entries},
                      d / MANIFEST)


def read_manifest(path: str | Path) -> dict:
    """The files a complete folder's manifest lists ({name: {bytes, sha256}}); a
    ValueError naming the folder and the fix when it has no manifest (an interrupted write,
    or a folder written by hand or before manifests) or an unreadable one."""
    d = Path(path)
    m = d / MANIFEST
    if not m.is_file():
        raise ValueError(f"{d}: no {MANIFEST}: the folder is incomplete (a write was "
                         "interrupted, or it was not written by this tilesim). Fix: " + _FIX)
    try:
        got = json.loads(m.read_text(encoding="utf-8"))
        files = got["files"]
        ok = got.get("format") == MANIFEST_FORMAT and isinstance(files, dict) and all(
            isinstance(v, dict) and isinstance(v.get("bytes"), int) and Path(k).name == k
            and isinstance(v.get("sha256"), str) for k, v in files.items())
    except (ValueError, TypeError, KeyError, AttributeError):
        ok = False
    if not ok:
        raise ValueError(f"{m}: not a tilesim manifest. Fix: " + _FIX)
    return files


def verify_manifest(path: str | Path, files: dict) -> None:
    """A ValueError naming the first file of ``files`` (a manifest's list) that is missing
    or differs from its listed size or sha256."""
    d = Path(path)
    for name, v in files.items():
        p = d / name
        if not p.is_file():
            raise ValueError(f"{p}: listed in {MANIFEST} but missing: the folder is "
                             "incomplete. Fix: " + _FIX)
        if p.stat().st_size != v["bytes"] or _sha256(p) != v["sha256"]:
            raise ValueError(f"{p}: does not match {MANIFEST} (size or sha256): the file "
                             "changed after tilesim wrote the folder, or the write was "
                             "interrupted. Fix: " + _FIX)


def check_folder(path: str | Path) -> dict:
    """The files of a complete folder (its manifest's list), each checked against its size
    and sha256; a ValueError naming the folder or the file and the fix otherwise."""
    files = read_manifest(path)
    verify_manifest(path, files)
    return files


_FIX = ("write the folder again with tilesim (run --out, compare --out, sweep --out; "
        "sweep --resume finishes a killed sweep)")
