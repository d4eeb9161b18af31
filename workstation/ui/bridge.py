"""The engine-to-GUI bridge: bus topics become Qt signals, engine commands come back through one place.

Each topic is one line, `bus.subscribe(topic, signal.emit)`. The bridge lives in the GUI thread, so a
publish from the engine's worker thread is delivered as a queued call on the GUI thread (Qt's
AutoConnection); a publish from the loop thread is delivered directly. Panels never touch the bus.

Payloads are typed (`events`, `reports`, domain values): panels read attributes. Commands go back as
`commands` objects (`bridge.command(ApproveSignal(...))`); reads of the engine's state are typed methods.
"""
from __future__ import annotations

import inspect
import logging
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from .. import bus as topics
from ..domain.snapshot import series_label
from .. import commands
from ..commands import Command

log = logging.getLogger(__name__)


class CommandError(RuntimeError):
    """An engine command failed; the message is fit to show the trader."""


class Bridge(QObject):
    """Qt signals for every bus topic, plus the engine commands the panels may call."""

    snapshot = Signal(object)
    surface = Signal(object)
    fit = Signal(object)
    signal = Signal(object)
    order = Signal(object)
    order_event = Signal(object)
    risk_decision = Signal(object)
    fill = Signal(object)
    book = Signal(object)
    risk = Signal(object)
    trading_state = Signal(object)
    alert = Signal(object)
    status = Signal(object)
    cycle = Signal(object)
    settings = Signal(object)
    vol_views = Signal(object)
    arbitrage = Signal(object)

    def __init__(self, engine: Any = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self._unsubscribe: list[Callable[[], None]] = []

    # ------------------------------------------------------------------------------------ events
    def attach(self, bus: Any) -> None:
        """Subscribe every topic's Qt signal to the bus."""
        pairs = {
            topics.SNAPSHOT: self.snapshot, topics.SURFACE: self.surface, topics.FIT: self.fit,
            topics.SIGNAL: self.signal, topics.ORDER: self.order, topics.ORDER_EVENT: self.order_event,
            topics.RISK_DECISION: self.risk_decision, topics.FILL: self.fill, topics.BOOK: self.book,
            topics.RISK: self.risk, topics.TRADING_STATE: self.trading_state, topics.ALERT: self.alert,
            topics.STATUS: self.status, topics.CYCLE: self.cycle, topics.SETTINGS: self.settings,
            topics.VOL_VIEWS: self.vol_views, topics.ARBITRAGE: self.arbitrage,
        }
        router = self.alert_router
        if router is not None:     # folded alerts (one row per repeating condition, with its count)
            del pairs[topics.ALERT]
            self._unsubscribe.append(router.subscribe(self.alert.emit))
        for topic, qt_signal in pairs.items():
            self._unsubscribe.append(bus.subscribe(topic, qt_signal.emit))

    @property
    def alert_router(self) -> Any:
        """The engine's alert router when it has one that folds repeats (subscribe/acknowledge/recent)."""
        router = getattr(self.engine, "alert_router", None)
        return router if router is not None and callable(getattr(router, "subscribe", None)) else None

    def acknowledge_alert(self, alert_id: str) -> bool:
        """Acknowledge through the router (its listeners, the panel included, get the acknowledged alert;
        the next repeat starts a new alert). False when there is no router: the panel marks it itself."""
        router = self.alert_router
        return bool(router is not None and alert_id and router.acknowledge(alert_id))

    def detach(self) -> None:
        """Unsubscribe everything (before the window goes away, so no emit reaches a dead object)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    def replay_state(self) -> None:
        """Emit what the engine already knows, so panels opened after start-up are not empty."""
        eng = self.engine
        if eng is None:
            return
        self.settings.emit(eng.settings)
        self.trading_state.emit(eng.state)
        if self.alert_router is not None:
            for alert in self.alert_router.recent()[-200:]:
                self.alert.emit(alert)
        for fit in list(eng.fit_history)[-200:]:
            self.fit.emit(fit)
        if eng.last_surface is not None:
            self.surface.emit(eng.last_surface)
        if eng.vol_views.last is not None:
            self.vol_views.emit(eng.vol_views.last)
        for sig in self.open_signals():
            self.signal.emit(sig)
        for record in self.order_records():
            self.order.emit(record)

    # ------------------------------------------------------------------------------- engine state
    def current_settings(self, default: Any = None) -> Any:
        """The engine's settings (`default` without an engine)."""
        return default if self.engine is None else self.engine.settings

    def trading_state_now(self, default: Any = "ACTIVE") -> Any:
        """The engine's TradingState (`default` without an engine)."""
        return default if self.engine is None else self.engine.state

    def auto_execute(self) -> bool:
        return bool(self.engine is not None and self.engine.auto_execute)

    def open_signals(self) -> list:
        """The engine's open signals ([] without an engine or when the engine fails to list them)."""
        return self._ask(lambda e: e.open_signals(), [])

    def order_records(self) -> list:
        """Every order the engine knows today, with its status."""
        return self._ask(lambda e: e.order_records(), [])

    def market_for(self, contract: Any) -> Any:
        """The engine's market of one contract (quote, model price, dollar Greeks per +1 contract), or None."""
        return self._ask(lambda e: e.market_for(contract), None)

    def market_now(self) -> tuple[Any, Any]:
        """The engine's latest chain snapshot and surface ((None, None) without an engine)."""
        return self._ask(lambda e: (e.last_snapshot, e.last_surface), (None, None))

    def combo_records(self) -> list:
        """Every journaled combo order with its latest state and its legs' fills: [(ComboOrder, OrderEvent, [Fill])]
        ([] without an engine or a journal)."""
        def read(e: Any) -> list:
            journal = getattr(e, "journal", None)
            if journal is None:
                return []
            states = journal.combo_states()
            return [(o, states.get(o.client_order_id), journal.fills_of(o.client_order_id))
                    for o in journal.combo_orders()]
        return self._ask(read, [])

    def contract_by_id(self, contract_id: int) -> Any:
        return self._ask(lambda e: e.contract_by_id(contract_id), None)

    def model_iv(self, surface: Any) -> Any:
        """Model IV per row of `surface` from the engine's last model values (None when not aligned)."""
        model = getattr(self.engine, "last_model", None)
        iv = getattr(model, "iv", None)
        if iv is None or surface is None or len(iv) != len(surface.iv_mid):
            return None
        return iv

    def fair_iv(self, surface: Any) -> Any:
        """Fair-value IV per row of `surface` when the engine has a fair surface aligned with it, else None (the
        chain board then shows the model's IV as fair)."""
        fair = getattr(self.engine, "last_fair", None)
        iv = getattr(fair, "fair_iv", None)
        if iv is None or surface is None or fair.surface is not surface or len(iv) != len(surface.iv_mid):
            return None             # another snapshot's fit: its rows need not be this one's
        return iv

    def fair_quality(self) -> dict[str, Any]:
        """The latest fair-value slices by expiry label ('2025-10-17 PM', as the fit's per-expiry RMSE is keyed)."""
        fair = getattr(self.engine, "last_fair", None)
        if fair is None:
            return {}
        return {series_label(sl.expiry, sl.am_settled): sl for sl in fair.slices}

    def fair_fit(self, surface: Any) -> Any:
        """The engine's fair-value fit of exactly this `surface` (its slices, their status and quality), else None."""
        fair = getattr(self.engine, "last_fair", None)
        return fair if fair is not None and surface is not None and fair.surface is surface else None

    def _ask(self, read: Callable[[Any], Any], default: Any) -> Any:
        if self.engine is None:
            return default
        try:
            return read(self.engine)
        except Exception:
            log.exception("reading the engine failed")
            return default

    # ---------------------------------------------------------------------------------- commands
    def command(self, command: Command, on_done: Callable[[Any], None] | None = None,
                on_error: Callable[[str], None] | None = None) -> Any:
        """Pass `command` on to the engine (`commands.send`). Sync results are returned (and passed to
        `on_done`); coroutine results are scheduled on the running loop and `on_done` gets the value when it is
        ready. Failures become `on_error(message)`, or CommandError when no `on_error` is given."""
        title = command.title

        def fail(message: str) -> None:
            log.warning("command %s failed: %s", title, message)
            if on_error is None:
                raise CommandError(message)
            on_error(message)

        if self.engine is None:
            fail(f"no engine for '{title}'")
            return None
        try:
            result = commands.send(self.engine, command)
        except Exception as exc:  # the engine names the reason; the GUI shows it
            fail(str(exc) or type(exc).__name__)
            return None
        if inspect.isawaitable(result):
            import asyncio

            task = asyncio.ensure_future(result)

            def finished(t: "asyncio.Future") -> None:
                if t.cancelled():
                    return
                if t.exception() is not None:
                    fail(str(t.exception()))
                elif on_done is not None:
                    on_done(t.result())

            task.add_done_callback(finished)
            return None
        if on_done is not None:
            on_done(result)
        return result
