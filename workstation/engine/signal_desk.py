"""The signal desk: the life of a signal after the scan found it — sized to what the limits pass, shown,
approved by the trader (or auto-executed within its limits) into an order through the order desk, or rejected.

A signal may carry a proposed structure (a package: `strategy.structures`); it is sized by the package checks
(`check_combo`) and sent as one combo order (`send_structure`), by the trader from the combo ticket or, with
`signals.auto_execute_packages`, by auto-execution — which then also takes static arbitrage packages, each
opportunity once, within the same auto limits and every pre-trade check on the package.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Callable

from .. import bus as topics
from ..bus import EventBus
from ..config import Settings
from ..domain import OrderPurpose, Severity, Side, Signal, SignalState
from ..domain.combos import Combo, ComboOrder
from ..events import OrderPreview
from ..risk.limits import RiskDecision
from ..risk.pre_trade import check
from ..sizing import PREVIEW_ID, largest_sendable
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
        self._arbitrage_seen: set[tuple] = set()          # every opportunity told (this run)
        self._arbitrage_taken: set[tuple] = set()         # every opportunity auto-execution sent (this run)

    def _on_signal(self, signal: Signal, state_changed: bool) -> None:
        if state_changed:
            try:
                self.journal.record_signal(signal)
            except Exception as exc:
                self.supervisor.journal_failed("signal", exc)
        self.bus.publish(topics.SIGNAL, signal)

    def arbitrage_found(self, found: list[Arbitrage]) -> None:
        """This snapshot's static arbitrage, published as the current list; one alert a cycle when some are new
        today (the count and the best of them: quotes flicker, so an opportunity is told once a day)."""
        new = [a for a in found if a.key not in self._arbitrage_seen]
        self._arbitrage_seen.update(a.key for a in new)
        if new:
            best = max(new, key=lambda a: a.edge_dollars)
            tradable = f"; tradable as a {best.kind} combo at {best.limit_price:+.2f}" if best.combo is not None else ""
            self.alert("ARBITRAGE", Severity.INFO, f"{len(new)} new static arbitrage(s) in the quotes; best: "
                       f"{best.description} (${best.edge_dollars:,.0f} a package{tradable})", source="signals")
        self.arbitrage = {a.key: a for a in found}
        self.bus.publish(topics.ARBITRAGE, list(found))

    def open_signals(self) -> list[Signal]:
        return list(self.signals.open.values())

    def set_auto_execute(self, on: bool) -> None:
        self.auto_execute = bool(on)
        self.alert("AUTO_EXECUTE", Severity.INFO, f"auto-execute {'on' if on else 'off'}")

    def auto_approve(self) -> None:
        """Approve every new signal within the auto-execution limits (quantity and premium); with
        `signals.auto_execute_packages` a signal's structure goes instead of the naked option when it fits those
        limits, and static arbitrage packages are taken too."""
        for _ in self.auto_approve_steps():
            pass

    def auto_approve_steps(self) -> Iterator[None]:
        """`auto_approve`, pausing after each order sent (the engine hands the loop back to the window there: an
        auto-execution of several orders, each checked, journaled and published, held it 20-30 ms in one go)."""
        cfg = self._settings().signals
        for signal in self.signals.new_signals():
            if self.signals.open.get(signal.signal_id) is not signal:
                continue                         # changed (approved, sized, expired) while the window drew
            st = signal.structure
            if cfg.auto_execute_packages and st is not None and self._within_auto(st.quantity, st.limit_price,
                                                                                   st.combo):
                self.send_structure(signal.signal_id, st.combo, st.side, st.quantity, st.limit_price, by="auto")
                yield
                continue
            premium = signal.limit_reference * signal.quantity * signal.contract.multiplier
            if 0 < signal.quantity <= cfg.auto_max_quantity and premium <= cfg.auto_max_premium:
                self.approve_signal(signal.signal_id, by="auto")
                yield
        if cfg.auto_execute_packages:
            yield from self.auto_arbitrage_steps()

    def _within_auto(self, quantity: int, limit_price: float, combo: Combo) -> bool:
        cfg = self._settings().signals
        premium = abs(limit_price) * quantity * combo.multiplier
        return 0 < quantity <= cfg.auto_max_quantity and premium <= cfg.auto_max_premium

    def auto_arbitrage(self) -> list[RiskDecision | str]:
        """Send each tradable static arbitrage of the last snapshot once, `signals.base_quantity` packages at its
        net price at the quotes, when it fits the auto limits: checked as a package (a denial is journaled with
        its codes and alerted; nothing reaches the broker). Returns the decisions."""
        out: list[RiskDecision | str] = []
        for _ in self.auto_arbitrage_steps(out):
            pass
        return out

    def auto_arbitrage_steps(self, out: list | None = None) -> Iterator[None]:
        """`auto_arbitrage`, pausing after each package sent; the decisions are appended to `out`."""
        quantity = self._settings().signals.base_quantity
        for key, found in list(self.arbitrage.items()):
            if found.combo is None or key in self._arbitrage_taken \
                    or not self._within_auto(quantity, found.limit_price, found.combo):
                continue
            self._arbitrage_taken.add(key)          # once: a denial is not retried on every snapshot
            decision = self.desk.send_combo(found.combo, found.side, quantity, found.limit_price, OrderPurpose.SIGNAL)
            if out is not None:
                out.append(decision)
            yield

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
            structure = self._sized_structure(signal, base)
            if (quantity, why, structure) != (signal.quantity, signal.blocked, signal.structure):
                self.signals.open[signal.signal_id] = replace(signal, quantity=quantity, blocked=why,
                                                              structure=structure)
                self.bus.publish(topics.SIGNAL, self.signals.open[signal.signal_id])

    def _sized_structure(self, signal: Signal, ctx):
        """The signal's structure at the largest package quantity (up to the signal's suggested size) that every
        check on the package passes now; 0 with the reason when none does."""
        st = signal.structure
        if st is None:
            return None
        mine = next((leg.ratio for leg in st.combo.legs if leg.contract.contract_id == signal.contract.contract_id), 1)
        want = max(st.quantity, signal.quantity // mine, 1)      # packages: the signal's contracts, m per package

        def approved(q: int) -> tuple[bool, str]:
            order = ComboOrder(PREVIEW_ID, st.combo, st.side, q, st.limit_price, self.clock(), OrderPurpose.SIGNAL)
            decision = self.desk.check_combo(order, ctx)
            return decision.approved, decision.denial()
        try:
            quantity, why = largest_sendable(want, approved)
        except ValueError as exc:           # e.g. a net limit that makes no order
            quantity, why = 0, str(exc)
        return st if (quantity, why) == (st.quantity, st.blocked) else replace(st, quantity=quantity, blocked=why)

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

    def send_structure(self, signal_id: str, combo: Combo, side: Side | str, quantity: int, limit_price: float,
                       by: str = "trader") -> RiskDecision | str:
        """The signal as a package (its structure, or the trader's edit of it in the combo ticket): APPROVED, then
        one combo order through every pre-trade check on the package; ORDERED when it was sent, else REJECTED
        with the denial's codes. The decision, or why no order could be made."""
        signal = self.signals.get(signal_id)
        if signal is None or signal.state is not SignalState.NEW:
            return f"signal {signal_id} is not open for approval"
        now = self.clock()
        self.signals.transition(signal_id, SignalState.APPROVED, now, f"package approved by {by}")
        result = self.desk.send_combo(combo, side, quantity, limit_price, OrderPurpose.SIGNAL)
        if isinstance(result, str):
            self.signals.transition(signal_id, SignalState.REJECTED, now, result)
        elif result.approved:
            self.signals.transition(signal_id, SignalState.ORDERED, now, result.client_order_id)
        else:
            self.signals.transition(signal_id, SignalState.REJECTED, now, f"denied: {result.denial()}")
        return result

    def reject_signal(self, signal_id: str, reason: str = "") -> bool:
        return self.signals.transition(signal_id, SignalState.REJECTED, self.clock(),
                                       reason or "rejected by trader") is not None


def denial(pv: OrderPreview) -> str:
    """The failed checks of a preview, named with their details."""
    if pv.decision is None:
        return pv.message
    return pv.decision.denial() or "denied"

