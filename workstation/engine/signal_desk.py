"""The signal desk: the life of a signal after the scan found it — sized to what the limits pass, shown,
approved by the trader (or auto-executed within its limits) into an order through the order desk, or rejected.
"""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from typing import Callable

from .. import bus as topics
from ..bus import EventBus
from ..config import Settings
from ..domain import OrderPurpose, Severity, Signal, SignalState
from ..events import OrderPreview
from ..risk.pre_trade import check
from ..sizing import largest_sendable
from ..strategy.arbitrage_signals import Arbitrage
from ..strategy.signals import SignalBook
from .market_view import AlertSink
from .order_desk import OrderDesk, no_order
from .supervisor import RiskSupervisor


class SignalDesk:
    """Open signals, their sizes and their approval into orders."""

    def __init__(self, settings: Callable[[], Settings], clock: Callable[[], datetime], desk: OrderDesk,
                 supervisor: RiskSupervisor, journal, bus: EventBus, alert: AlertSink) -> None:
        self._settings, self.clock, self.desk, self.supervisor = settings, clock, desk, supervisor
        self.journal, self.bus, self.alert = journal, bus, alert
        # ids unique across restarts (journal counters), and the same in two runs of a backtest
        self.signals = SignalBook(settings().signals, self._on_signal, lambda: journal.next_client_order_id("S"))
        self.auto_execute = settings().signals.auto_execute
        self.arbitrage: dict[tuple, Arbitrage] = {}      # the static arbitrage in the last snapshot, by key

    def _on_signal(self, signal: Signal, state_changed: bool) -> None:
        if state_changed:
            try:
                self.journal.record_signal(signal)
            except Exception as exc:
                self.supervisor.journal_failed("signal", exc)
        self.bus.publish(topics.SIGNAL, signal)

    def arbitrage_found(self, found: list[Arbitrage]) -> None:
        """This snapshot's static arbitrage: published as the current list; each new one alerted once (with its
        legs and edge) while it lasts."""
        keys = {a.key for a in found}
        for a in found:
            if a.key not in self.arbitrage:
                tradable = f"; tradable as a {a.kind} combo at {a.limit_price:+.2f}" if a.combo is not None else ""
                self.alert("ARBITRAGE", Severity.INFO, f"{a.description} (${a.edge_dollars:,.0f} a package{tradable})",
                           source="signals")
        self.arbitrage = {a.key: a for a in found if a.key in keys}
        self.bus.publish(topics.ARBITRAGE, list(found))

    def open_signals(self) -> list[Signal]:
        return list(self.signals.open.values())

    def set_auto_execute(self, on: bool) -> None:
        self.auto_execute = bool(on)
        self.alert("AUTO_EXECUTE", Severity.INFO, f"auto-execute {'on' if on else 'off'}")

    def auto_approve(self) -> None:
        """Approve every new signal within the auto-execution limits (quantity and premium)."""
        cfg = self._settings().signals
        for signal in self.signals.new_signals():
            premium = signal.limit_reference * signal.quantity * signal.contract.multiplier
            if 0 < signal.quantity <= cfg.auto_max_quantity and premium <= cfg.auto_max_premium:
                self.approve_signal(signal.signal_id, by="auto")

    def size_signals(self) -> None:
        """Cap every NEW signal at the largest quantity the pre-trade checks pass now (quantity, premium,
        position, Greek and VaR what-ifs); 0 with the reason when no size passes (shown greyed)."""
        signals = self.signals.new_signals()
        if not signals:
            return
        base = self.desk.risk_context(None)     # one context per cycle: only the contract's market differs
        for signal in signals:
            order, market, why = self.desk.build_order(signal.contract, signal.side, max(signal.quantity, 1), None,
                                                       OrderPurpose.SIGNAL, signal.signal_id, preview=True)
            if order is None:
                quantity = 0
            else:
                ctx = replace(base, market=market)

                def approved(q: int, order=order, ctx=ctx) -> tuple[bool, str]:
                    decision = check(replace(order, quantity=q), ctx)
                    return decision.approved, denial(OrderPreview(order, decision, math.nan, math.nan, math.nan))
                quantity, why = largest_sendable(signal.quantity, approved)
            if (quantity, why) != (signal.quantity, signal.blocked):
                self.signals.open[signal.signal_id] = replace(signal, quantity=quantity, blocked=why)
                self.bus.publish(topics.SIGNAL, self.signals.open[signal.signal_id])

    def preview_signal(self, signal_id: str, quantity: int | None = None, capped: bool = True) -> OrderPreview:
        """The what-if of a signal's order, at `quantity` (at most the signal's size when `capped`)."""
        signal = self.signals.get(signal_id)
        if signal is None:
            return no_order(f"signal {signal_id} is no longer open")
        qty = signal.quantity if quantity is None else int(quantity)
        if capped:
            qty = min(qty, signal.quantity)
        if qty < 1:
            return no_order(f"no size can be sent: {signal.blocked}" if signal.blocked else "quantity 0")
        order, market, why = self.desk.build_order(signal.contract, signal.side, qty, None,
                                                   OrderPurpose.SIGNAL, signal.signal_id, preview=True)
        if order is None:
            return no_order(why)
        return self.desk.preview(order, market)

    def approve_signal(self, signal_id: str, by: str = "trader", quantity: int | None = None) -> OrderPreview:
        """APPROVED, then an order (of `quantity`, at most the signal's size) through the risk checks; ORDERED
        when it was sent, else back to REJECTED."""
        signal = self.signals.get(signal_id)
        now = self.clock()
        if signal is None or signal.state is not SignalState.NEW:
            return no_order(f"signal {signal_id} is not open for approval")
        qty = signal.quantity if quantity is None else min(int(quantity), signal.quantity)
        if qty < 1:
            return no_order(f"no size can be sent: {signal.blocked or 'quantity 0'}")
        self.signals.transition(signal_id, SignalState.APPROVED, now, f"approved by {by}")
        order, market, why = self.desk.build_order(signal.contract, signal.side, qty, None,
                                                   OrderPurpose.SIGNAL, signal_id)
        if order is None:
            self.signals.transition(signal_id, SignalState.REJECTED, now, why)
            return no_order(why)
        pv = self.desk.route(order, market)
        if pv.sent:
            self.signals.transition(signal_id, SignalState.ORDERED, now, order.client_order_id)
        else:
            self.signals.transition(signal_id, SignalState.REJECTED, now, pv.message)
        return pv

    def reject_signal(self, signal_id: str, reason: str = "") -> bool:
        return self.signals.transition(signal_id, SignalState.REJECTED, self.clock(),
                                       reason or "rejected by trader") is not None


def denial(pv: OrderPreview) -> str:
    """The failed checks of a preview, named with their details."""
    if pv.decision is None:
        return pv.message
    failed = [f"{r.code.value}: {r.detail}" if r.detail else r.code.value for r in pv.decision.results if not r.passed]
    return "; ".join(failed) or "denied"

