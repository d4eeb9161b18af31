"""The day survives a restart: what the journal knows of today is put back on screen and in the books.

At start (after the book and the orders are recovered): the day's P&L explain is reloaded, signals left open
by a run that did not shut down cleanly are closed with that reason, and today's orders and alerts are
republished for the window (the alerts to the router's recent list only: no channel hears them twice).
At stop: open signals are closed with the reason, and the explain is kept.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Callable

from .domain import Signal, SignalState
from .portfolio.book import trading_day_of
from .portfolio.explain import DayExplain

log = logging.getLogger(__name__)

EXPLAIN_KEY = "day_explain"
SHUTDOWN_REASON = "closed at shutdown: the workstation stopped"
CRASH_REASON = "closed at restart: still open when the workstation last stopped"


def save_explain(journal: Any, explain: DayExplain) -> None:
    """Keep today's explain lines in the journal (a restart reloads them); no write when nothing changed."""
    kept = (explain.day, dict(explain.parts))
    if explain.day is not None and kept != explain.kept:
        journal.set_value(EXPLAIN_KEY, {"day": explain.day.isoformat(), "parts": explain.parts})
        explain.kept = kept


def load_explain(journal: Any, today: date) -> DayExplain:
    """Today's explain as last kept, or an empty one (another day's lines are not today's)."""
    explain = DayExplain(today)
    kept = journal.value(EXPLAIN_KEY) or {}
    if kept.get("day") == today.isoformat():
        for name, value in (kept.get("parts") or {}).items():
            if name in explain.parts:
                explain.parts[name] = float(value)
    return explain


def close_open_signals(journal: Any, signals: Iterable[Signal], at: datetime, reason: str) -> int:
    """Journal every still-open signal as EXPIRED with `reason`; returns how many."""
    n = 0
    for signal in signals:
        if signal.state.is_open:
            journal.record_signal(signal.with_state(SignalState.EXPIRED, at, reason))
            n += 1
    return n


def journaled_open_signals(journal: Any) -> list[Signal]:
    return [*journal.signals(state=SignalState.NEW.value), *journal.signals(state=SignalState.APPROVED.value)]


def todays_records(records: Iterable[Any], today: date) -> list[Any]:
    """Order records created on the trading day `today`."""
    return [r for r in records if r.order.created_at is not None and trading_day_of(r.order.created_at) == today]


def restore_alerts(journal: Any, router: Any, today: date, limit: int = 500) -> int:
    """Today's journaled alerts into the router's recent list (and the panel), oldest first."""
    if router is None or not callable(getattr(router, "restore", None)):
        return 0
    alerts = [a for a in journal.alerts(limit) if trading_day_of(a.timestamp) == today]
    router.restore(reversed(alerts))
    return len(alerts)


def restore_day(journal: Any, today: date, at: datetime, records: Iterable[Any], publish_order: Callable[[Any], None],
                router: Any) -> DayExplain:
    """Everything of `today` the window shows, back from the journal; returns today's explain."""
    closed = close_open_signals(journal, journaled_open_signals(journal), at, CRASH_REASON)
    orders = todays_records(records, today)
    for record in sorted(orders, key=lambda r: r.order.created_at):
        publish_order(record)
    alerts = restore_alerts(journal, router, today)
    log.info("day restored from the journal: %d orders, %d alerts, %d stale signals closed", len(orders), alerts,
             closed)
    return load_explain(journal, today)
