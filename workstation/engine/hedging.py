"""The hedge desk: keep the book's delta inside the hedger's band with the future, through the order desk."""
from __future__ import annotations

from datetime import datetime

from ..domain import ChainSnapshot, OrderPurpose
from ..execution.hedger import Hedger
from ..execution.orders import OrderManager
from ..portfolio.book import Book
from .order_desk import OrderDesk


class HedgeDesk:
    """One hedge order at a time; a denied hedge waits `risk.retry_denied_s` before the next try."""

    def __init__(self, hedger: Hedger, book: Book, orders: OrderManager, desk: OrderDesk) -> None:
        self.hedger, self.book, self.orders, self.desk = hedger, book, orders, desk

    def run(self, snap: ChainSnapshot | None, now: datetime) -> None:
        if snap is None or snap.future_contract is None:
            return
        if any(r.order.purpose is OrderPurpose.HEDGE for r in self.orders.working()) \
                or not self.desk.may_retry(("hedge",), now):
            return
        delta_points = self.book.greeks.delta / (0.01 * snap.underlying_price)   # $ per index point
        proposal = self.hedger.propose(delta_points, snap.future_contract, snap.future, now)
        if proposal is None:
            return
        pv = self.desk.slice_and_route(proposal.contract, proposal.side, proposal.quantity, proposal.limit_price,
                                       OrderPurpose.HEDGE, proposal.limit_price)
        if pv.sent:
            self.hedger.hedged(now)
        elif pv.order is not None:
            self.desk.denied(("hedge",), now)
