"""Housekeeping beside the cycle: the nightly-restart guard every second, stale data every second, free disk
every minute, and the event loop's lag sampled into the health checks and the metrics."""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Callable

from ..domain import ChainSnapshot
from ..execution.recovery import Recovery
from .tasks import Tasks


class Housekeeping:
    """Started with the engine, stopped before it closes the feed and the broker."""

    def __init__(self, recovery: Recovery, clock: Callable[[], datetime],
                 last_snapshot: Callable[[], ChainSnapshot | None]) -> None:
        self.recovery, self.clock, self.last_snapshot = recovery, clock, last_snapshot
        self.health: Any = None             # alerts.HealthChecks, when wired
        self.metrics: Any = None            # alerts.Metrics, when wired
        self.loop_lag_ms = 0.0
        self._lag_monitor: Any = None
        self._running = False

    def start(self, tasks: Tasks) -> None:
        self._running = True
        tasks.spawn(self._restart_guard(), "recovery", long_running=True)
        if self.health is not None:
            self._lag_monitor = self.health.lag_monitor()
            self._lag_monitor.on_sample = self._lag_sample
            self._lag_monitor.start()
            tasks.spawn(self._health(), "health checks", long_running=True)

    async def stop(self) -> None:
        self._running = False
        if self._lag_monitor is not None:
            await self._lag_monitor.stop()

    async def _restart_guard(self, every_s: float = 1.0) -> None:
        while self._running:
            self.recovery.tick(self.clock())
            await asyncio.sleep(every_s)

    def _lag_sample(self, lag_ms: float) -> None:
        self.loop_lag_ms = lag_ms
        self.health.loop_lag(lag_ms)
        if self.metrics is not None:
            self.metrics.set_loop_lag(lag_ms)

    async def _health(self, every_s: float = 1.0) -> None:
        ticks = 0
        while self._running:
            await asyncio.sleep(every_s)
            snap = self.last_snapshot()
            if snap is not None:
                self.health.data(snap.timestamp, self.clock())
            if ticks % 60 == 0:
                self.health.disk()
            ticks += 1
