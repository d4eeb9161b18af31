"""The engine's alerts: each one numbered per run, journaled and published (the router folds and routes it)."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable

from .. import bus as topics
from ..bus import EventBus
from ..domain import Alert, Severity

log = logging.getLogger(__name__)


class Alerts:
    """alert(code, severity, message, source) for every part of the engine; counts per code."""

    def __init__(self, journal, bus: EventBus, clock: Callable[[], datetime], run_id: str) -> None:
        self.journal, self.bus, self.clock, self.run_id = journal, bus, clock, run_id
        self.counts: dict[str, int] = {}
        self._seq = 0

    def alert(self, code: str, severity: Severity, message: str, source: str = "engine") -> None:
        """Publish an alert (the router folds and routes it; the journal keeps it)."""
        self.counts[code] = self.counts.get(code, 0) + 1
        self._seq += 1
        alert = Alert(code, severity, source, message, self.clock(), alert_id=f"{self.run_id}/A{self._seq}")
        try:
            self.journal.record_alert(alert)
        except Exception:
            log.exception("alert not journaled")
        self.bus.publish(topics.ALERT, alert)

    def raise_alert(self, code: str, severity: Any = None, source: str = "health", message: str = "") -> None:
        """The alert sink of the health checks (severity by name, or the code's default)."""
        from ..alerts.codes import default_severity
        self.alert(code, Severity.parse(severity) if severity is not None else default_severity(code), message,
                   source)
