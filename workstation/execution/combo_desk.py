"""The combo desk: a combo order from its checks to the broker, and its fills into the journal and the book.

`send(order)` runs the pre-trade checker on the package, journals the order, its check results and (when
denied) its rejection in one transaction, then places it (`broker.place_combo`). Broker events for the package
are journaled as its state; each leg's fill is journaled (idempotent on fill id) and then booked. Collaborators
are explicit so the engine can own one desk: the broker (paper, backtest), the journal, the checker (a callable
order -> RiskDecision, e.g. `check_combo` with the engine's context and leg markets), the book and a clock.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from typing import TYPE_CHECKING

from workstation.domain import Fill, OrderEvent, OrderPurpose, OrderStatus
from workstation.domain.combos import ComboOrder

if TYPE_CHECKING:      # collaborators, by type only: the engine hands them in
    from workstation.portfolio.book import Book
    from workstation.risk.limits import RiskDecision
    from workstation.storage import Journal

log = logging.getLogger(__name__)


class ComboDesk:
    """Routes combo orders: checks -> journal -> broker; journals package states and books leg fills."""

    def __init__(self, broker, journal: Journal, checker: Callable[[ComboOrder], RiskDecision], book: Book,
                 clock: Callable[[], datetime]) -> None:
        self.broker = broker
        self.journal = journal
        self.checker = checker
        self.book = book
        self.clock = clock
        self.working: dict[str, ComboOrder] = {}
        self.sent: dict[str, ComboOrder] = {}   # every combo sent or recovered, by id: late leg fills are ours
        self.on_booked: list[Callable[[ComboOrder, Fill], None]] = []   # each leg fill of ours, once booked
        self.cancelling: set[str] = set()    # timed-out packages whose cancel was sent
        broker.on_order_event.append(self.on_order_event)
        broker.on_fill.append(self.on_fill)

    def owns(self, client_order_id: str) -> bool:
        """True for a combo order this desk sent (its events are not single-order events)."""
        return client_order_id in self.working

    def recover(self) -> list[ComboOrder]:
        """Take back the journal's working combo orders (after a restart); returns them. The broker learns every
        journaled package when it can use them (`adopt_combos`: IB's leg fills and open BAG orders are ours)."""
        states = self.journal.combo_states()
        orders = self.journal.combo_orders()
        self.sent = {o.client_order_id: o for o in orders}
        self.working = {o.client_order_id: o for o in orders if states[o.client_order_id].status.is_working}
        adopt = getattr(self.broker, "adopt_combos", None)      # a broker that maps leg fills back to packages
        if adopt is not None:
            adopt(orders)
        return list(self.working.values())

    async def send(self, order: ComboOrder) -> RiskDecision:
        """Check, journal and place `order`; a denied package is journaled as REJECTED with its reasons."""
        decision = self.checker(order)
        with self.journal.transaction():
            fresh = self.journal.record_combo_order(order)
            if fresh:
                self.journal.record_risk_checks(order.client_order_id, decision.results)
                if not decision.approved:
                    reasons = ", ".join(code.value for code in decision.reasons)
                    self.journal.record_combo_event(OrderEvent(order.client_order_id, OrderStatus.REJECTED,
                                                               self.clock(), reason=f"risk: {reasons}",
                                                               limit_price=order.limit_price))
        if not fresh:
            log.warning("combo order %s was journaled before: not sent again", order.client_order_id)
            return replace(decision, approved=False)
        if decision.approved:
            self.working[order.client_order_id] = order
            self.sent[order.client_order_id] = order
            await self.broker.place_combo(order)
        return decision

    async def cancel(self, client_order_id: str) -> None:
        await self.broker.cancel(client_order_id)

    async def cancel_all(self) -> int:
        """Cancel every working package (each tried even when another fails); how many cancels were sent."""
        n = 0
        for client_order_id in list(self.working):
            try:
                await self.broker.cancel(client_order_id)
                n += 1
            except Exception:
                log.exception("cancel of combo %s failed", client_order_id)
        return n

    def timed_out(self, now: datetime, max_age_s: float) -> list[str]:
        """Working signal packages (a signal's structure, auto-executed arbitrage) older than `max_age_s`, each
        named once: the caller cancels them, as single signal orders are cancelled at `order_timeout_s`. The
        trader's own packages are left to the trader."""
        out = [cid for cid, o in self.working.items()
               if o.purpose is OrderPurpose.SIGNAL and cid not in self.cancelling and o.created_at is not None
               and (now - o.created_at).total_seconds() > max_age_s]
        self.cancelling.update(out)
        return out

    def on_order_event(self, event: OrderEvent) -> None:
        """Journal a state of one of our packages (others are not ours)."""
        if event.client_order_id not in self.working:
            return
        self.journal.record_combo_event(event)
        if not event.status.is_working:
            del self.working[event.client_order_id]
            self.cancelling.discard(event.client_order_id)

    def on_fill(self, fill: Fill) -> None:
        """Journal and book one leg's fill of one of our packages (once per fill id)."""
        order = self.sent.get(fill.client_order_id)
        if order is None:
            return
        if self.journal.record_fill(fill):      # in the engine the order manager has journaled and booked it
            self.book.apply_fill(fill)
        for listener in self.on_booked:         # idempotent on the fill id themselves (a broker may replay)
            listener(order, fill)
