"""Python's cyclic garbage collection on the GUI thread: one generation per tick of a short timer.

A collection that happens to run in a numerics thread may free Qt objects there, and Qt crashes; so while the
window is up automatic collection is off and this timer collects instead.

What a collection costs is the objects it scans, not what it frees. pyqtgraph's GarbageCollector, used before,
ticked every 0.5 s and in one tick collected the young generation and then the middle one over the same survivors:
on the full chain that was 32 ms and then 37 ms, both freeing nothing, back to back (a 64-ms stall of the event
loop). Here a tick collects only the oldest generation that is due (a collection of a generation includes the
younger ones), at five times the rate, so each pause scans about a fifth as much.
"""
from __future__ import annotations

import gc

from PySide6.QtCore import QTimer


class GuiThreadCollector:
    """Collect on a QTimer of the thread that creates it; `timer` is the QTimer (stop it to hand collection back)."""

    def __init__(self, interval_s: float, middle_every: int, full_every: int) -> None:
        gc.disable()
        gc.set_threshold(gc.get_threshold()[0], middle_every, full_every)
        self.timer = QTimer()
        self.timer.timeout.connect(self.check)
        self.timer.start(max(1, int(interval_s * 1000)))

    @staticmethod
    def due() -> int | None:
        """The generation to collect now, as Python's automatic collection would choose it (the oldest whose
        count passed its threshold), or None while fewer objects than the young threshold were allocated."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        if counts[0] <= thresholds[0]:
            return None
        for generation in (2, 1):
            if counts[generation] > thresholds[generation]:
                return generation
        return 0

    def check(self) -> None:
        generation = self.due()
        if generation is not None:
            gc.collect(generation)
