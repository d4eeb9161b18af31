"""Recovery and reconciliation: the book and the working orders rebuilt from the journal before connecting,
then brought in line with the broker's truth (missed fills, orders closed while away, position mismatches);
and the trader's "accept the broker's positions" as journaled adjustment fills."""
from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any, Callable

from ..domain import Contract, Fill, OrderEvent, OrderStatus, Severity, Side
from ..portfolio.book import Book
from .orders import OrderManager

log = logging.getLogger(__name__)

AlertSink = Callable[..., None]      # alert(code, severity, message, source=...)


class Reconciler:
    """Journal -> book and orders at start; journal and book <-> broker on every reconcile."""

    def __init__(self, journal, broker, orders: OrderManager, book: Book, clock: Callable[[], datetime],
                 alert: AlertSink, run_id: str, contract_by_id: Callable[[int], Contract | None]) -> None:
        self.journal, self.broker, self.orders, self.book = journal, broker, orders, book
        self.clock, self.alert, self.run_id, self.contract_by_id = clock, alert, run_id, contract_by_id

    def recover_from_journal(self) -> list[Fill]:
        """Rebuild the book from journaled fills and adopt working orders (before connecting); the fills."""
        fills = self.journal.fills()
        self.book.apply_fills(fills)
        states = self.journal.order_states()
        for order in self.journal.working_orders():
            self.orders.adopt(order, states.get(order.client_order_id))
        for order in self.journal.orders():
            if order.client_order_id not in self.orders.records:
                ev = states.get(order.client_order_id)
                record = self.orders.adopt(order, ev)
                if ev is not None:
                    record.status = ev.status
        for fill in fills:      # each order's journaled fills: reconcile tells FILLED from CANCELLED by them
            record = self.orders.records.get(fill.client_order_id)
            if record is not None:
                paid = record.fill_quantity * record.avg_price if record.fill_quantity else 0.0
                record.fill_quantity += fill.quantity
                record.avg_price = (paid + fill.quantity * fill.price) / record.fill_quantity
                record.filled = max(record.filled, record.fill_quantity)
        log.info("recovered %d fills, %d working orders from the journal", len(fills), len(self.orders.working()))
        return fills

    async def reconcile(self) -> dict:
        """Bring the journal and book in line with the broker's truth: missing fills, orphan orders, positions."""
        since = self.clock() - timedelta(days=7)
        report = {"missing_fills": 0, "closed_orders": 0, "position_mismatches": 0}
        broker_fills = await self.broker.fills_since(since)     # unreadable: the reconcile fails (and is retried)
        for fill in broker_fills:
            if not self.journal.has_fill(fill.fill_id):
                if fill.client_order_id not in self.orders.records and self.journal.order(fill.client_order_id) is None:
                    log.warning("fill %s for an order we never journaled", fill.fill_id)
                self.orders.apply_fill(fill)
                report["missing_fills"] += 1
        open_at_broker = {o.client_order_id for o in await self.broker.open_orders()}
        for record in self.orders.working():
            cid = record.order.client_order_id
            if cid not in open_at_broker:
                status = OrderStatus.FILLED if record.fill_quantity >= record.order.quantity else OrderStatus.CANCELLED
                self.orders.apply_event(OrderEvent(cid, status, self.clock(), record.filled,
                                                   record.remaining if status is OrderStatus.CANCELLED else 0,
                                                   reason="reconciled: not working at the broker"))
                report["closed_orders"] += 1
        broker_positions = await self.broker.positions()
        mine = self._positions()
        for cid in set(mine) | set(broker_positions):
            if mine.get(cid, 0) != broker_positions.get(cid, 0):
                report["position_mismatches"] += 1
                self.alert("RECONCILE_MISMATCH", Severity.ERROR,
                           f"position {cid}: journal {mine.get(cid, 0)} vs broker {broker_positions.get(cid, 0)}")
        if any(report.values()):
            self.alert("RECONCILE_MISMATCH", Severity.WARNING, f"reconciled with the broker: {report}")
        return report

    async def accept_broker_positions(self, by: str) -> dict[int, tuple[int, int]]:
        """The broker's positions taken as the truth: one adjustment fill per differing contract, journaled (at
        the current mark, no commission). Returns {contract id: (journal quantity, broker quantity)}."""
        broker_positions = await self.broker.positions()
        contracts: dict[int, Any] = getattr(self.broker, "position_contracts", {})
        mine = self._positions()
        now = self.clock()
        adjusted: dict[int, tuple[int, int]] = {}
        for cid in sorted(set(mine) | set(broker_positions)):
            have, want = mine.get(cid, 0), broker_positions.get(cid, 0)
            if have == want:
                continue
            contract = self.contract_by_id(cid) or contracts.get(cid)
            if contract is None:
                self.alert("RECONCILE_MISMATCH", Severity.ERROR, f"cannot adjust {cid}: contract unknown")
                continue
            price = self.book.mark_of(cid)
            fill = Fill(f"{self.run_id}/ADJ{cid}-{len(self.journal.fills())}", f"ACCEPT-BROKER-{self.run_id}",
                        contract, Side.BUY if want > have else Side.SELL, abs(want - have),
                        price if math.isfinite(price) else 0.0, now, 0.0, "",
                        {"adjustment": f"broker positions accepted by {by}"})
            self.orders.apply_fill(fill)
            adjusted[cid] = (have, want)
        self.alert("RECONCILE_MISMATCH", Severity.WARNING,
                   f"broker positions accepted by {by}: {len(adjusted)} contract(s) adjusted")
        return adjusted

    def _positions(self) -> dict[int, int]:
        return {cid: p.quantity for cid, p in self.book.positions.items() if p.quantity}
