"""Health checks the engine feeds (each cycle or on a timer); each raises an alert through the router.

Level checks (stale data, slow fit, loop lag, disk) raise on every failing call and rely on the router's
folding; edge checks (broker connection) raise on transitions only. `LoopLagMonitor` is an asyncio task
measuring sleep overshoot, reusable by the GUI status bar and the benchmark.
"""
from __future__ import annotations

import asyncio
import contextlib
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from workstation import bus as topics
from workstation.reports import EngineStatus

from .codes import Code

if TYPE_CHECKING:
    from workstation.bus import EventBus
    from workstation.config import Settings


class AlertSink(Protocol):
    """What a check needs: the router's `raise_alert` (or anything with the same signature)."""

    def raise_alert(self, code: str, severity: Any = None, source: str = "engine", message: str = "") -> Any: ...


class StaleDataCheck:
    """DATA_STALE when the newest snapshot is older than `max_age_s`."""

    def __init__(self, sink: AlertSink, max_age_s: float, source: str = "health") -> None:
        self.sink, self.max_age_s, self.source = sink, max_age_s, source

    def __call__(self, snapshot_time: datetime | None, now: datetime | None = None) -> float:
        """Return the data age in seconds (inf when there is no data yet); alert when too old."""
        now = now or datetime.now(timezone.utc)
        age = float("inf") if snapshot_time is None else (now - snapshot_time).total_seconds()
        if age > self.max_age_s:
            what = "no market data yet" if snapshot_time is None else f"market data is {age:.0f} s old"
            self.sink.raise_alert(Code.DATA_STALE, None, self.source, f"{what} (limit {self.max_age_s:g} s)")
        return age


class FitCheck:
    """FIT_FAILED on a failed or rejected fit, FIT_SLOW when a fit takes longer than `slow_s`."""

    def __init__(self, sink: AlertSink, slow_s: float, source: str = "calibration") -> None:
        self.sink, self.slow_s, self.source = sink, slow_s, source

    def __call__(self, ok: bool, elapsed_s: float, reason: str = "") -> None:
        if not ok:
            self.sink.raise_alert(Code.FIT_FAILED, None, self.source, f"Heston fit failed: {reason or 'no reason'}")
        if elapsed_s > self.slow_s:
            self.sink.raise_alert(Code.FIT_SLOW, None, self.source,
                                  f"Heston fit took {elapsed_s:.2f} s (limit {self.slow_s:g} s)")


class OrderRejectCheck:
    """ORDER_REJECTED for each order the broker rejects."""

    def __init__(self, sink: AlertSink, source: str = "broker") -> None:
        self.sink, self.source = sink, source

    def __call__(self, client_order_id: str, reason: str = "") -> None:
        self.sink.raise_alert(Code.ORDER_REJECTED, None, self.source,
                              f"order {client_order_id} rejected: {reason or 'no reason given'}")


class BrokerConnectionCheck:
    """BROKER_DISCONNECTED when the connection drops, BROKER_RECONNECTED when it comes back (edges only)."""

    def __init__(self, sink: AlertSink, source: str = "broker") -> None:
        self.sink, self.source = sink, source
        self.connected: bool | None = None

    def __call__(self, connected: bool, detail: str = "") -> None:
        previous, self.connected = self.connected, connected
        if previous is None and connected:
            return
        if not connected and previous is not False:
            self.sink.raise_alert(Code.BROKER_DISCONNECTED, None, self.source,
                                  f"broker disconnected{': ' + detail if detail else ''}")
        elif connected and previous is False:
            self.sink.raise_alert(Code.BROKER_RECONNECTED, None, self.source,
                                  f"broker reconnected{': ' + detail if detail else ''}")


class LoopLagCheck:
    """LOOP_LAG when a lag sample exceeds `max_lag_ms`."""

    def __init__(self, sink: AlertSink, max_lag_ms: float, source: str = "engine") -> None:
        self.sink, self.max_lag_ms, self.source = sink, max_lag_ms, source

    def __call__(self, lag_ms: float) -> None:
        if lag_ms > self.max_lag_ms:
            self.sink.raise_alert(Code.LOOP_LAG, None, self.source,
                                  f"event loop lagged {lag_ms:.0f} ms (limit {self.max_lag_ms:g} ms)")


class JournalCheck:
    """JOURNAL_WRITE_FAILED for each failed journal write."""

    def __init__(self, sink: AlertSink, source: str = "journal") -> None:
        self.sink, self.source = sink, source

    def __call__(self, error: BaseException | str, what: str = "") -> None:
        text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
        self.sink.raise_alert(Code.JOURNAL_WRITE_FAILED, None, self.source,
                              f"journal write failed{' (' + what + ')' if what else ''}: {text}")


class DiskCheck:
    """DISK_LOW when the disk holding `path` has less than `min_free_mb` free."""

    def __init__(self, sink: AlertSink, path: Path | str, min_free_mb: float, source: str = "health",
                 usage: Callable[[Path], Any] = shutil.disk_usage) -> None:
        self.sink, self.path, self.min_free_mb, self.source = sink, Path(path), min_free_mb, source
        self._usage = usage

    def __call__(self) -> float:
        """Return free megabytes; alert when below the limit."""
        path = self.path
        while not path.exists() and path != path.parent:  # the data dir may not exist yet
            path = path.parent
        free_mb = self._usage(path).free / 1e6
        if free_mb < self.min_free_mb:
            self.sink.raise_alert(Code.DISK_LOW, None, self.source,
                                  f"{free_mb:.0f} MB free on the disk of {self.path} "
                                  f"(limit {self.min_free_mb:g} MB)")
        return free_mb


class LoopLagMonitor:
    """Measure event-loop lag as the overshoot of `asyncio.sleep(interval_s)`; call `on_sample(lag_ms)`.

    `last_ms`/`max_ms` are readable at any time (GUI status bar, benchmark). Start inside a running loop.
    """

    def __init__(self, interval_s: float = 0.1, on_sample: Callable[[float], None] | None = None) -> None:
        self.interval_s = interval_s
        self.on_sample = on_sample
        self.last_ms = 0.0
        self.max_ms = 0.0
        self.samples = 0
        self._task: asyncio.Task | None = None

    def start(self) -> asyncio.Task:
        """Start measuring in the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag-monitor")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval_s)
            self.last_ms = max(0.0, (loop.time() - start - self.interval_s) * 1000.0)
            self.max_ms = max(self.max_ms, self.last_ms)
            self.samples += 1
            if self.on_sample is not None:
                self.on_sample(self.last_ms)


class HealthChecks:
    """All checks wired to one alert sink with the thresholds from settings; the engine calls the members."""

    def __init__(self, sink: AlertSink, *, stale_data_s: float = 20.0, fit_slow_s: float = 2.0,
                 loop_lag_ms: float = 250.0, data_dir: Path | str = ".", disk_free_mb: float = 500.0) -> None:
        self.data = StaleDataCheck(sink, stale_data_s)
        self.fit = FitCheck(sink, fit_slow_s)
        self.order_reject = OrderRejectCheck(sink)
        self.broker = BrokerConnectionCheck(sink)
        self.loop_lag = LoopLagCheck(sink, loop_lag_ms)
        self.journal = JournalCheck(sink)
        self.disk = DiskCheck(sink, data_dir, disk_free_mb)

    @classmethod
    def from_settings(cls, sink: AlertSink, settings: "Settings", data_dir: Path | str) -> "HealthChecks":
        a = settings.alerts
        return cls(sink, stale_data_s=a.stale_data_s, fit_slow_s=settings.calibration.timeout_s,
                   loop_lag_ms=a.loop_lag_ms, data_dir=data_dir, disk_free_mb=a.disk_free_mb)

    def lag_monitor(self, interval_s: float = 0.1) -> LoopLagMonitor:
        """A loop-lag monitor whose samples feed the LOOP_LAG check."""
        return LoopLagMonitor(interval_s, self.loop_lag)

    def attach(self, bus: "EventBus") -> Callable[[], None]:
        """Feed order rejects (ORDER_EVENT status REJECTED), fits (FIT FitEvent: accepted, elapsed_ms,
        message) and broker status (STATUS: the engine's EngineStatus, or a dict with a 'broker' entry or a
        'connected' flag) from the bus. Returns a function that detaches."""
        unsubs = [bus.subscribe(topics.ORDER_EVENT, self._on_order_event),
                  bus.subscribe(topics.STATUS, self._on_status),
                  bus.subscribe(topics.FIT, self._on_fit)]
        return lambda: [u() for u in unsubs] and None

    def _on_order_event(self, event: Any) -> None:
        status = getattr(getattr(event, "status", None), "value", getattr(event, "status", None))
        if status == "REJECTED":
            self.order_reject(getattr(event, "client_order_id", "?"), getattr(event, "reason", ""))

    def _on_fit(self, fit: Any) -> None:
        accepted, elapsed_ms = getattr(fit, "accepted", None), getattr(fit, "elapsed_ms", None)
        if isinstance(accepted, bool) and elapsed_ms is not None:
            self.fit(accepted, float(elapsed_ms) / 1000.0, str(getattr(fit, "message", "")))

    def _on_status(self, status: Any) -> None:
        if isinstance(status, EngineStatus):
            self.broker(status.connected, "")
            return
        if not isinstance(status, dict):
            return
        broker = status.get("broker", status)
        connected = broker.get("connected") if isinstance(broker, dict) else broker
        if isinstance(connected, bool):
            detail = broker.get("detail", "") if isinstance(broker, dict) else ""
            self.broker(connected, str(detail))


__all__ = ["AlertSink", "StaleDataCheck", "FitCheck", "OrderRejectCheck", "BrokerConnectionCheck", "LoopLagCheck",
           "JournalCheck", "DiskCheck", "LoopLagMonitor", "HealthChecks"]
