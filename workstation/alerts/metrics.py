"""Prometheus metrics on 127.0.0.1 (off unless a port is configured), with their own CollectorRegistry.

The engine either calls the explicit methods or lets `attach(bus)` feed them from the bus topics. The BOOK
topic carries a `reports.BookSummary` (P&L under `.pnl`); other payloads are read by attribute or dict
key, and a payload that does not fit is skipped (logged at debug), never raised.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import Enum as EnumMetric

from workstation import bus as topics

if TYPE_CHECKING:
    from workstation.bus import EventBus
    from workstation.reports import BookSummary

log = logging.getLogger(__name__)

FIT_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
GREEKS = ("delta", "gamma", "vega", "theta")
TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")
# heston_pnl_dollars{kind=...} <- book_summary().pnl (realised <- realized, unrealised <- unrealized, ...)


def _get(obj: Any, *names: str) -> Any:
    """First of `names` found on `obj` as an attribute or dict key (None when absent)."""
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if callable(value) and not isinstance(value, type):
            value = value()  # e.g. Book.realized_pnl()
        if value is not None:
            return value
    return None


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))


class Metrics:
    """The workstation's Prometheus series. Several instances can coexist (one registry each)."""

    def __init__(self, prefix: str = "heston") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r, p = self.registry, prefix
        self._last_snapshot: float | None = None
        self._max_lag_s = 0.0
        self.snapshot_age = Gauge(f"{p}_snapshot_age_seconds", "Age of the newest chain snapshot.", registry=r)
        self.snapshot_age.set_function(self._snapshot_age)
        self.snapshots = Counter(f"{p}_snapshots", "Chain snapshots received.", registry=r)
        self.fit_seconds = Histogram(f"{p}_fit_seconds", "Heston calibration time.", buckets=FIT_BUCKETS_S,
                                     registry=r)
        self.fit_rmse = Gauge(f"{p}_fit_rmse_vol", "IV RMSE of the last fit, vol points.", registry=r)
        self.fits = Counter(f"{p}_fits", "Heston fits by result.", ["result"], registry=r)
        self.signals = Counter(f"{p}_signals", "Signal state changes by state.", ["state"], registry=r)
        self.orders = Counter(f"{p}_orders", "Order events by state.", ["state"], registry=r)
        self.fills = Counter(f"{p}_fills", "Fills received.", registry=r)
        self.filled_contracts = Counter(f"{p}_filled_contracts", "Contracts filled.", registry=r)
        self.rejects = Counter(f"{p}_rejects", "Orders rejected, by who rejected them.", ["by"], registry=r)
        self.pnl = Gauge(f"{p}_pnl_dollars", "Book P&L, dollars: realised, unrealised, commissions, total "
                         "(realised + unrealised - commissions) and day.", ["kind"], registry=r)
        self.greeks = Gauge(f"{p}_portfolio_greek", "Portfolio Greeks (dollar terms as the book reports).",
                            ["greek"], registry=r)
        self.trading_state = EnumMetric(f"{p}_trading_state", "Trading state.", states=list(TRADING_STATES),
                                        registry=r)
        self.loop_lag = Gauge(f"{p}_loop_lag_seconds", "Last event-loop lag sample.", registry=r)
        self.loop_lag_max = Gauge(f"{p}_loop_lag_max_seconds", "Largest event-loop lag seen.", registry=r)
        self.alerts = Counter(f"{p}_alerts", "Alerts raised, by code and severity.", ["code", "severity"],
                              registry=r)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._unsubs: list[Callable[[], None]] = []

    # ------------------------------------------------------------------------------ explicit API
    def observe_snapshot(self, timestamp: datetime | None = None) -> None:
        """A snapshot arrived (its exchange time; now when omitted): resets the snapshot age."""
        self.snapshots.inc()
        age = 0.0 if timestamp is None else max(0.0, (datetime.now(timezone.utc) - timestamp).total_seconds())
        self._last_snapshot = time.time() - age

    def _snapshot_age(self) -> float:
        return math.nan if self._last_snapshot is None else max(0.0, time.time() - self._last_snapshot)

    def observe_fit(self, ms: float, rmse: float | None = None, ok: bool = True) -> None:
        """One calibration: wall time in milliseconds, IV RMSE in vol points, accepted or not."""
        self.fit_seconds.observe(ms / 1000.0)
        self.fits.labels("ok" if ok else "failed").inc()
        if rmse is not None and ok and math.isfinite(rmse):
            self.fit_rmse.set(rmse)

    def inc_signals(self, state: str = "NEW") -> None:
        self.signals.labels(_text(state)).inc()

    def inc_orders(self, state: str) -> None:
        """An order event in `state` (NEW, SUBMITTED, FILLED, CANCELLED, REJECTED, ...)."""
        self.orders.labels(_text(state)).inc()

    def inc_fills(self, quantity: int = 1) -> None:
        self.fills.inc()
        self.filled_contracts.inc(abs(quantity))

    def inc_rejects(self, by: str = "broker") -> None:
        """An order rejected by `by`: 'broker' or 'risk'."""
        self.rejects.labels(by).inc()

    def set_pnl(self, realised: float | None = None, unrealised: float | None = None,
                total: float | None = None, commissions: float | None = None, day: float | None = None) -> None:
        """P&L in dollars by kind; `total` defaults to realised + unrealised - commissions."""
        if total is None and realised is not None and unrealised is not None:
            total = realised + unrealised - (commissions or 0.0)
        for kind, value in (("realised", realised), ("unrealised", unrealised), ("commissions", commissions),
                            ("total", total), ("day", day)):
            if value is not None:
                self.pnl.labels(kind).set(float(value))

    def set_greeks(self, **greeks: float) -> None:
        """Portfolio Greeks by name, e.g. set_greeks(delta=..., gamma=..., vega=..., theta=...)."""
        for name, value in greeks.items():
            if value is not None:
                self.greeks.labels(name).set(float(value))

    def set_trading_state(self, state: str) -> None:
        self.trading_state.state(_text(state))

    def set_loop_lag(self, ms: float) -> None:
        """One event-loop lag sample, milliseconds (also tracks the largest)."""
        self._max_lag_s = max(self._max_lag_s, ms / 1000.0)
        self.loop_lag.set(ms / 1000.0)
        self.loop_lag_max.set(self._max_lag_s)

    def inc_alerts(self, code: str, severity: str) -> None:
        self.alerts.labels(_text(code), getattr(severity, "name", str(severity))).inc()

    # -------------------------------------------------------------------------------- bus feeding
    def attach(self, bus: "EventBus") -> Callable[[], None]:
        """Feed the metrics from bus topics; returns a function that detaches."""
        handlers = {topics.SNAPSHOT: self._on_snapshot, topics.FIT: self._on_fit, topics.SIGNAL: self._on_signal,
                    topics.ORDER_EVENT: self._on_order_event, topics.RISK_DECISION: self._on_risk_decision,
                    topics.FILL: self._on_fill, topics.BOOK: self._on_book, topics.RISK: self._on_risk,
                    topics.TRADING_STATE: self._on_trading_state, topics.ALERT: self._on_alert}
        unsubs = [bus.subscribe(topic, self._tolerant(handler)) for topic, handler in handlers.items()]
        self._unsubs += unsubs
        return lambda: [u() for u in unsubs] and None

    @staticmethod
    def _tolerant(handler: Callable[[Any], None]) -> Callable[[Any], None]:
        def run(payload: Any) -> None:
            try:
                handler(payload)
            except Exception as exc:  # noqa: BLE001 - a payload we do not understand is skipped
                log.debug("metrics skipped a %s payload: %s", type(payload).__name__, exc)
        return run

    def _on_snapshot(self, snap: Any) -> None:
        ts = _get(snap, "timestamp")
        self.observe_snapshot(ts if isinstance(ts, datetime) else None)

    def _on_fit(self, fit: Any) -> None:
        ms = _get(fit, "elapsed_ms", "duration_ms", "fit_ms", "ms")
        if ms is None:
            seconds = _get(fit, "elapsed_s", "duration_s", "seconds")
            ms = None if seconds is None else float(seconds) * 1000.0
        ok = _get(fit, "ok", "accepted", "success")
        rmse = _get(fit, "rmse_iv", "rmse_vol", "rmse")
        if ms is not None:
            self.observe_fit(float(ms), None if rmse is None else float(rmse), bool(True if ok is None else ok))

    def _on_signal(self, signal: Any) -> None:
        self.inc_signals(_text(_get(signal, "state") or "NEW"))

    def _on_order_event(self, event: Any) -> None:
        state = _text(_get(event, "status", "state"))
        self.inc_orders(state)
        if state == "REJECTED":
            self.inc_rejects("broker")

    def _on_risk_decision(self, decision: Any) -> None:
        approved = _get(decision, "approved", "allowed", "ok")
        if approved is False:
            self.inc_rejects("risk")

    def _on_fill(self, fill: Any) -> None:
        self.inc_fills(int(_get(fill, "quantity") or 1))

    def _on_book(self, summary: "BookSummary") -> None:
        """`Engine.book_summary()`: every P&L kind from its `pnl` (any other payload is skipped)."""
        pnl = summary.pnl
        self.set_pnl(realised=pnl.realized, unrealised=pnl.unrealized, commissions=pnl.commissions,
                     total=pnl.total, day=pnl.day)

    def _on_risk(self, report: Any) -> None:
        greeks = _get(report, "greeks") or report
        self.set_greeks(**{g: _get(greeks, f"{g}_dollars", g) for g in GREEKS})

    def _on_trading_state(self, state: Any) -> None:
        self.set_trading_state(_text(_get(state, "state") or state))

    def _on_alert(self, alert: Any) -> None:
        self.inc_alerts(alert.code, alert.severity)

    # ------------------------------------------------------------------------------------- server
    def start(self, port: int) -> int:
        """Serve /metrics on 127.0.0.1:`port` (0 picks a free port); returns the bound port."""
        if self._server is not None:
            return self.port
        self._server, self._thread = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        log.info("metrics on http://127.0.0.1:%d/metrics", self.port)
        return self.port

    @property
    def port(self) -> int:
        return int(self._server.server_port) if self._server is not None else 0

    def stop(self) -> None:
        """Stop the HTTP server and detach from the bus."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None


__all__ = ["Metrics"]
