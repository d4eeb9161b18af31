"""A terminal progress bar on stderr: done/total, rate and ETA. Redrawn in place on a TTY; plain lines (at most
every few seconds) otherwise, so logs and CI output stay readable."""
from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    if not seconds == seconds or seconds == float("inf"):   # NaN or inf
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    """Call `update(done, total)`; `close()` ends the line. `unit` names what is counted (snapshots, runs)."""

    def __init__(self, label: str = "backtest", unit: str = "snapshots", stream: TextIO | None = None,
                 width: int = 30, plain_every_s: float = 5.0, clock=time.monotonic) -> None:
        self.label, self.unit = label, unit
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.plain_every_s = plain_every_s
        self.clock = clock
        self.started = clock()
        self._last_draw = -1e9
        self.done = self.total = 0

    def line(self) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        frac = min(self.done / self.total, 1.0) if self.total else 0.0
        fill = int(round(frac * self.width))
        bar = "#" * fill + "-" * (self.width - fill)
        return (f"{self.label} [{bar}] {self.done}/{self.total} {self.unit} {frac:6.1%} "
                f"{rate:7.1f}/s  elapsed {_duration(elapsed)}  ETA {_duration(eta)}")

    def update(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        now = self.clock()
        final = done >= total
        if self.tty:
            if now - self._last_draw >= 0.1 or final:
                self.stream.write("\r" + self.line())
                self.stream.flush()
                self._last_draw = now
        elif now - self._last_draw >= self.plain_every_s or final:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._last_draw = now

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r" + self.line() + "\n")
            self.stream.flush()
