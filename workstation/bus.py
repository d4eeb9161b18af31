"""The in-process event bus: every arrow of the cycle is a topic; subscribers never block publishers.

Handlers run synchronously in the publisher's thread, in subscription order. A handler that raises is
logged and skipped: one broken subscriber (a panel, a channel) never stops the engine.
"""
from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any, Callable

log = logging.getLogger(__name__)

Handler = Callable[[Any], None]

# Topics (payload type in brackets).
SNAPSHOT = "snapshot"            # ChainSnapshot
SURFACE = "surface"              # strategy.surface.Surface
FIT = "fit"                      # engine FitEvent
SIGNAL = "signal"                # domain.Signal (every state change)
ARBITRAGE = "arbitrage"          # list[strategy.arbitrage_signals.Arbitrage] in this snapshot's quotes
ORDER = "order"                  # domain.Order (new order accepted for routing)
ORDER_EVENT = "order_event"      # domain.OrderEvent
RISK_DECISION = "risk_decision"  # risk.pre_trade.RiskDecision
FILL = "fill"                    # domain.Fill
BOOK = "book"                    # reports.BookSummary
RISK = "risk"                    # reports.RiskReport
TRADING_STATE = "trading_state"  # domain.TradingState
ALERT = "alert"                  # domain.Alert
STATUS = "status"                # reports.EngineStatus (connections, data age, clock, state)
CYCLE = "cycle"                  # engine CycleReport
SETTINGS = "settings"            # config.Settings after a live change
VOL_VIEWS = "vol_views"          # analytics.views.VolViews (skew, realised, scenarios with time, risk by expiry)


class EventBus:
    """Topic -> handlers. `subscribe` returns a function that unsubscribes."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        with self._lock:
            self._handlers[topic].append(handler)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._handlers[topic]:
                    self._handlers[topic].remove(handler)

        return unsubscribe

    def publish(self, topic: str, payload: Any = None) -> None:
        with self._lock:
            handlers = list(self._handlers.get(topic, ()))
        for handler in handlers:
            try:
                handler(payload)
            except Exception:  # a subscriber's bug must not stop the publisher
                log.exception("bus handler %r failed on topic %s", handler, topic)
