"""News from the broker and the feed: order events and fills applied (journal first) and booked, connection
changes holding or lifting trading, IB errors and reconcile reports turned into alerts."""
from __future__ import annotations

import logging
from typing import Any, Callable

from .. import bus as topics
from ..bus import EventBus
from ..config import Settings
from ..domain import Fill, OrderEvent, OrderPurpose, OrderStatus, Severity
from ..execution.orders import OrderManager
from ..execution.recovery import Recovery
from ..market.ib_codes import QUIET_CODES
from .exits import ExitDesk
from .market_view import AlertSink
from .marking import Marking

log = logging.getLogger(__name__)


class BrokerNews:
    """The handlers the broker and the feed call; each one applies, books, alerts and publishes."""

    def __init__(self, settings: Callable[[], Settings], orders: OrderManager, marking: Marking, exits: ExitDesk,
                 recovery: Recovery, bus: EventBus, alert: AlertSink,
                 journal_failed: Callable[[str, BaseException], None], running: Callable[[], bool],
                 publish_status: Callable[[], None]) -> None:
        self._settings, self.orders, self.marking, self.exits, self.recovery = settings, orders, marking, exits, recovery
        self.bus, self.alert, self.journal_failed = bus, alert, journal_failed
        self.running, self.publish_status = running, publish_status
        self.combo_ids: Callable[[str], bool] = lambda client_order_id: False   # the combo desk's own orders

    def listen(self, broker: Any, feed: Any) -> None:
        """Subscribe to the broker's (and the feed's) callback lists; the optional hooks only where present."""
        broker.on_order_event.append(self.order_event)
        broker.on_fill.append(self.fill)
        for hook, handler in (("on_connection", self.connection), ("on_error", self.error),
                              ("on_reconcile", self.reconciled)):
            if isinstance(getattr(broker, hook, None), list):     # the IB broker has them
                getattr(broker, hook).append(handler)
        if hasattr(feed, "on_status"):
            feed.on_status.append(self.feed_status)

    def order_event(self, event: OrderEvent) -> None:
        if self.combo_ids(event.client_order_id):
            return                      # a package's state: the combo desk journals it
        try:
            self.orders.apply_event(event)
        except Exception as exc:
            log.exception("order event not applied")
            self.journal_failed("order event", exc)

    def fill(self, fill: Fill) -> None:
        try:
            self.orders.apply_fill(fill)
        except Exception as exc:
            log.exception("fill not applied")
            self.journal_failed(f"fill {fill.fill_id}", exc)

    def order_event_applied(self, event: OrderEvent) -> None:
        """The order manager journaled an order event: publish it; a broker rejection is an alert."""
        self.bus.publish(topics.ORDER_EVENT, event)
        if event.status is OrderStatus.REJECTED and not event.reason.startswith("risk:"):
            self.alert("ORDER_REJECTED", Severity.WARNING, f"order {event.client_order_id} rejected: {event.reason}")

    def fill_applied(self, fill: Fill) -> None:
        """The order manager journaled a new fill: book it, remember the entry, publish."""
        before = self.marking.book.quantity(fill.contract.contract_id)
        self.marking.book_fill(fill)
        record = self.orders.records.get(fill.client_order_id)
        self.exits.filled(fill, before, record is not None and record.order.purpose is OrderPurpose.SIGNAL)
        self.bus.publish(topics.FILL, fill)
        self.marking.publish()

    def connection(self, up: bool, message: str) -> None:
        """HALTED while the broker is away (config); when it returns, HALTED until a reconcile has passed."""
        if not self.running():
            return                      # our own connect/close, not news
        if up:
            self.alert("BROKER_RECONNECTED", Severity.INFO, f"broker connected: {message}; reconciling")
            self.recovery.broker_up(message)
        else:
            self.alert("BROKER_DISCONNECTED", Severity.CRITICAL, f"broker disconnected: {message}")
            if self._settings().ib.halt_on_disconnect:
                self.recovery.broker_down(message)
        self.publish_status()

    def error(self, info: Any) -> None:
        if getattr(info, "code", None) in QUIET_CODES:
            log.info("IB %s: %s", info.code, info.message)
            return
        severity = Severity.WARNING if getattr(info, "warning", False) else Severity.ERROR
        self.alert("IB_ERROR", severity, f"IB {getattr(info, 'code', '?')}: {getattr(info, 'message', info)}",
                   source="ib")

    def reconciled(self, report: Any) -> None:
        if not getattr(report, "clean", True):
            self.alert("RECONCILE_MISMATCH", Severity.WARNING,
                       f"broker reconcile: {len(report.missed_fills)} missed fill(s) delivered, "
                       f"{len(report.closed_while_away)} order(s) closed while away, "
                       f"{len(report.foreign_orders)} working order(s) without our id", source="ib")

    def feed_status(self, status: Any) -> None:
        state = getattr(status, "state", None)
        value = getattr(state, "value", str(state))
        if value in ("disconnected", "stale") and self.running():
            self.alert("DATA_STALE" if value == "stale" else "FEED_DISCONNECTED", Severity.WARNING,
                       f"market data {value}: {getattr(status, 'message', '')}")
        self.publish_status()
