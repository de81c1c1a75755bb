"""A progress bar with rate and ETA on stderr (one line redrawn on a terminal, a line
every 10 % otherwise)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, done: int = 0, stream=None, label: str = "rows"):
        self.total, self.done, self.start_done = total, done, done
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.t0 = time.monotonic()
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self._last_decile = -1

    def update(self, n: int) -> None:
        self.done += n
        frac = self.done / self.total if self.total else 1.0
        decile = int(frac * 10)
        if not self.tty and decile == self._last_decile and self.done < self.total:
            return
        self._last_decile = decile
        el = time.monotonic() - self.t0
        rate = (self.done - self.start_done) / el if el > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        eta_s = "?" if eta != eta else f"{int(eta) // 60}:{int(eta) % 60:02d}"
        line = (f"[{bar}] {self.done}/{self.total} {self.label} | {rate:.2f} {self.label}/s | "
                f"elapsed {el:.0f} s | ETA {eta_s}")
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
