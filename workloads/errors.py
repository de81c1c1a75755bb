"""The one error type of the workloads package."""


def read_text(path) -> str:
    """A file's text, or a WorkloadError naming it (missing, unreadable, not UTF-8)."""
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
