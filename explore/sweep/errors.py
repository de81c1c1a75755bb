"""The one error type of sweeps: bad spec input, named with file, key path and fix."""
from __future__ import annotations


class SweepError(ValueError):
    """Bad sweep input (spec, store, executor). The message names the file, key and a fix."""

    def __init__(self, message: str, *, source: str | None = None, fix: str | None = None):
        self.source, self.fix, self.bare = source, fix, message
        text = f"{source}: {message}" if source else message
        super().__init__(f"{text}. Fix: {fix}" if fix else text)
