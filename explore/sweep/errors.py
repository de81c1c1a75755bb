"""The one error type of sweeps: bad spec input, named with file, key path and fix."""
from __future__ import annotations


class SweepError(ValueError):
    """Bad sweep input (spec, store, executor). The message names the file, key and a fix.

    An error whose message or fix names a command-line flag (``--resume``) also carries
    the Python spelling (``resume=True``) in ``py_message`` / ``py_fix``; the Python API
    (:func:`tilesim.sweep`) raises :meth:`for_python`, the ``tilesim`` command the flags."""

    def __init__(self, message: str, *, source: str | None = None, fix: str | None = None,
                 py_message: str | None = None, py_fix: str | None = None):
        self.source, self.fix, self.bare = source, fix, message
        self.py_message, self.py_fix = py_message, py_fix
        text = f"{source}: {message}" if source else message
        super().__init__(f"{text}. Fix: {fix}" if fix else text)

    def for_python(self) -> SweepError:
        """This error as a Python caller should read it (keyword arguments, not flags)."""
        if self.py_message is None and self.py_fix is None:
            return self
        return SweepError(self.py_message or self.bare, source=self.source,
                          fix=self.py_fix or self.fix)
