"""Progress on stderr: one bar for sweeps, sweep planning, and per-layer work (DES, verify,
baseline, a long mapping search).

On a terminal the bar is one line redrawn in place (at most 10 times a second; not drawn
before ``delay`` seconds, so quick work prints nothing); elsewhere (a log, a test's
captured stderr) it is a line every tenth of the work. Never on stdout, which stays
pipeable.

The rate, and so the ETA, is measured over the last ``WINDOW_S`` seconds of updates (not
since the start, which would carry the start-up of worker processes or a slow first
design point into every later estimate), and the ETA is shown only after ``MIN_UPDATES``
updates and ``MIN_ETA_S`` seconds: before that it reads ``ETA ?``.

``sim/`` and ``workloads/`` do not import this module: they take a ``progress(i, n, name)``
callback, which :func:`layer_callback` makes from a bar.
"""
from __future__ import annotations

import sys
import time
from collections import deque

WINDOW_S = 30.0
MIN_UPDATES = 3
MIN_ETA_S = 2.0


def wanted(quiet: bool = False, force: bool = False, stream=None) -> bool:
    """Whether to show progress: never with ``quiet``; always with ``force``; else when
    ``stream`` (default stderr) is a terminal."""
    if quiet:
        return False
    if force:
        return True
    s = stream if stream is not None else sys.stderr
    return bool(getattr(s, "isatty", lambda: False)())


def clock(seconds: float) -> str:
    """``m:ss`` under an hour, ``h:mm:ss`` beyond."""
    s = int(round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


class Progress:
    """A bar of ``total`` units (``label``: rows, layers, design points planned) on
    ``stream`` (default stderr), ``done`` already finished (a resumed sweep). ``prefix``
    starts the line (e.g. ``"tilesim: des: "``); ``clear`` erases a terminal's bar when
    closed (per-layer progress before a table) instead of leaving it."""

    def __init__(self, total: int, done: int = 0, stream=None, label: str = "rows",
                 prefix: str = "", delay: float = 0.0, clear: bool = False):
        self.total, self.done, self.start_done = total, done, done
        self.stream = stream if stream is not None else sys.stderr
        self.label, self.prefix, self.delay, self.clear = label, prefix, delay, clear
        self.t0 = time.monotonic()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_decile = -1
        self._drawn_at = None        # monotonic time of the last redraw (terminal)
        self._updates = 0
        self._window: deque = deque([(self.t0, done)])

    def start_at(self, done: int) -> None:
        """``done`` units were finished before this run (rows found in a resumed sweep's
        store): counted in the bar, not in the rate."""
        self.done = self.start_done = done
        self._window = deque([(time.monotonic(), done)])

    def rate(self, now: float) -> float:
        """Units per second over the last ``WINDOW_S`` seconds."""
        w = self._window
        while len(w) > 2 and now - w[1][0] >= WINDOW_S:
            w.popleft()
        t, d = w[0]
        return (self.done - d) / (now - t) if now > t else 0.0

    def eta(self, now: float) -> float | None:
        """Seconds left (None until enough is known)."""
        if self.done >= self.total:
            return 0.0
        r = self.rate(now)
        if self._updates < MIN_UPDATES or now - self.t0 < MIN_ETA_S or r <= 0:
            return None
        return (self.total - self.done) / r

    def update(self, n: int = 1, note: str = "") -> None:
        self.set(self.done + n, note)

    def set(self, done: int, note: str = "") -> None:
        """``done`` units finished so far; ``note`` names what is under way."""
        self.done = done
        self._updates += 1
        now = time.monotonic()
        self._window.append((now, done))
        last = self.done >= self.total
        if self.tty:
            if now - self.t0 < self.delay and self._drawn_at is None:
                return   # quick work: nothing drawn, nothing to erase
            if self._drawn_at is not None and now - self._drawn_at < 0.1 and not last:
                return
            self._drawn_at = now
        else:
            frac = self.done / self.total if self.total else 1.0
            decile = int(frac * 10)
            if decile == self._last_decile and not last:
                return
            self._last_decile = decile
        line = self.line(now, note)
        self.stream.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        self.stream.flush()

    def line(self, now: float, note: str = "") -> str:
        frac = min(1.0, self.done / self.total) if self.total else 1.0
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        eta = self.eta(now)
        return (f"{self.prefix}[{bar}] {self.done:,}/{self.total:,} {self.label}"
                f"{' | ' + note if note else ''} | {self.rate(now):.2f} {self.label}/s | "
                f"elapsed {now - self.t0:.0f} s | ETA {'?' if eta is None else clock(eta)}")

    def close(self) -> None:
        if self.tty and self._drawn_at is not None:
            self.stream.write("\r\x1b[K" if self.clear else "\n")
            self.stream.flush()


class layer_progress:
    """``with layer_progress(on, "des") as cb: api.simulate_des(..., progress=cb)``: a
    per-layer bar (``tilesim: des: [###---] 12/177 layers | conv3_2 | ...``) when ``on``,
    else ``cb`` is None. The callback is ``progress(i, n, name)``: layer ``i`` of ``n``
    (``name``) is starting; the bar ends at n/n when the block ends without an error."""

    def __init__(self, on: bool, what: str, stream=None):
        self.on, self.what, self.stream, self.bar = on, what, stream, None
        self.last = None

    def __enter__(self):
        return self.callback if self.on else None

    def callback(self, i: int, n: int, name: str) -> None:
        if self.bar is None:
            self.bar = Progress(n, stream=self.stream, label="layers",
                                prefix=f"tilesim: {self.what}: ", delay=0.5, clear=True)
        self.last = name
        self.bar.set(i, name)

    def __exit__(self, kind, *_):
        if self.bar is not None:
            if kind is None and self.bar.done < self.bar.total:
                self.bar.set(self.bar.total, "done")
            self.bar.close()
        return False
