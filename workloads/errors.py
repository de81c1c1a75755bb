"""The one error type of the workloads package."""


class WorkloadError(ValueError):
    """Bad workload input. The message names the source (file, line or key) and a fix."""

    def __init__(self, message: str, *, source: str | None = None, fix: str | None = None):
        self.source, self.fix, self.bare = source, fix, message
        text = f"{source}: {message}" if source else message
        super().__init__(f"{text}. Fix: {fix}" if fix else text)
