"""Atomic file output: write to a temporary file in the same folder, then rename."""
from __future__ import annotations

import errno
import json
import os
import secrets
from pathlib import Path


def _umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    if path.is_dir():   # name the user's path, not the temporary file
        raise IsADirectoryError(errno.EISDIR, "is a directory; give a file name", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    # created with mode 0666 so the umask applies (mkstemp would make every output 0600)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600; outputs are to be shared
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_csv(df, path: str | Path) -> Path:
    """A DataFrame as CSV (no index), written atomically; floats with full precision."""
    return write_text(path, df.to_csv(index=False, lineterminator="\n"))


def write_json(obj, path: str | Path, compact: bool = False) -> Path:
    """``obj`` as JSON, written atomically: indented for small metadata files (summary.json,
    sweep.json), ``compact`` (no spaces or newlines) for big ones (a DES trace)."""
    text = (json.dumps(obj, separators=(",", ":")) if compact
            else json.dumps(obj, indent=2, sort_keys=False))
    return write_text(path, text + "\n")
