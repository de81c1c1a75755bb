"""The one error type of the workloads package."""


def regular_file(path, fix: str = "check the path") -> None:
    """A WorkloadError naming ``path`` unless it is a regular file (a link followed),
    checked before it is opened: opening a FIFO would wait for a writer forever."""
    import os
    import stat
    try:
        st = os.stat(path)
    except OSError as e:
        raise WorkloadError(f"cannot read the file: {e.strerror}", source=str(path),
                            fix=f"{fix} and its permissions" if fix != "check the path"
                            else "check the path and its permissions") from None
    if not stat.S_ISREG(st.st_mode):
        what = ("a folder" if stat.S_ISDIR(st.st_mode) else
                "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a special file")
        raise WorkloadError(f"is {what}, not a regular file; tilesim reads models from "
                            "regular files only", source=str(path),
                            fix="give the path of the file itself (save a stream to a file "
                                "first)")


def read_text(path) -> str:
    """A file's text, or a WorkloadError naming it (missing, not a regular file,
    unreadable, not UTF-8)."""
    regular_file(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise WorkloadError(f"not UTF-8 text (byte {e.start})", source=str(path),
                            fix="save the file as UTF-8") from None
    except OSError as e:
        raise WorkloadError(f"cannot read the file: {e.strerror}", source=str(path),
                            fix="check the path and its permissions") from None


class WorkloadError(ValueError):
    """Bad workload input. The message names the source (file, line or key) and a fix."""

    def __init__(self, message: str, *, source: str | None = None, fix: str | None = None):
        self.source, self.fix, self.bare = source, fix, message
        text = f"{source}: {message}" if source else message
        super().__init__(f"{text}. Fix: {fix}" if fix else text)
