"""The order state machine and manager: journal first, then act; broker events drive the states.

NEW -> SUBMITTED -> PARTIALLY_FILLED -> FILLED | CANCELLED | REJECTED. Client order ids come from the
journal (unique across restarts), so a resent order is recognisable and never doubled.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from ..config import ExecutionConfig
from ..domain import Fill, Order, OrderEvent, OrderPurpose, OrderStatus
from .pricing_rules import next_limit

log = logging.getLogger(__name__)

ALLOWED: dict[OrderStatus, set[OrderStatus]] = {
    OrderStatus.NEW: {OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED,
                      OrderStatus.CANCELLED, OrderStatus.REJECTED},
    OrderStatus.SUBMITTED: {OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED,
                            OrderStatus.CANCELLED, OrderStatus.REJECTED},
    OrderStatus.PARTIALLY_FILLED: {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED},
}


@dataclass
class OrderRecord:
    """Our live view of one order."""

    order: Order
    status: OrderStatus = OrderStatus.NEW
    filled: int = 0
    avg_price: float = math.nan
    limit_price: float | None = None
    reprice_bound: float = math.nan
    created_at: datetime | None = None
    last_reprice: datetime | None = None
    reason: str = ""
    broker_order_id: str = ""
    risk_codes: list[str] = field(default_factory=list)
    cancel_requested: bool = False
    fill_quantity: int = 0          # from our own fills (the broker's cumulative count is `filled`)

    @property
    def remaining(self) -> int:
        return max(self.order.quantity - self.filled, 0)

    @property
    def is_working(self) -> bool:
        return self.status.is_working


class OrderManager:
    """Routes approved orders to the broker and applies the broker's events, journaling each first."""

    def __init__(self, broker: Any, journal: Any, config: ExecutionConfig,
                 on_event: Callable[[OrderEvent], None], on_fill: Callable[[Fill], None],
                 on_order: Callable[[Order], None], clock: Callable[[], datetime]) -> None:
        self.broker = broker
        self.journal = journal
        self.config = config
        self._on_event, self._on_fill, self._on_order = on_event, on_fill, on_order
        self.clock = clock
        self.records: dict[str, OrderRecord] = {}
        self.on_journal_error: Callable[[str, BaseException], None] | None = None   # the engine halts on it
        self.id_prefix = "HW"           # client order ids: HW-00000042 live, BT-… in a backtest

    # ------------------------------------------------------------------ queries
    def working(self) -> list[OrderRecord]:
        return [r for r in self.records.values() if r.is_working]

    def working_for(self, contract_id: int) -> list[OrderRecord]:
        return [r for r in self.working() if r.order.contract.contract_id == contract_id]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {s.value: 0 for s in OrderStatus}
        for r in self.records.values():
            out[r.status.value] += 1
        return out

    # ------------------------------------------------------------------ commands
    def new_client_order_id(self) -> str:
        return self.journal.next_client_order_id(self.id_prefix)

    def record_denied(self, order: Order, decision: Any) -> OrderRecord:
        """Journal an order the risk checks denied, with every check's result; it is never sent."""
        reason = "risk: " + ", ".join(decision.reasons)
        event = OrderEvent(order.client_order_id, OrderStatus.REJECTED, self.clock(),
                           remaining_quantity=order.quantity, reason=reason, limit_price=order.limit_price)
        with self.journal.transaction():
            self.journal.record_order(order)
            self.journal.record_risk_checks(order.client_order_id, decision.results)
            self.journal.record_order_event(event)
        record = OrderRecord(order, OrderStatus.REJECTED, limit_price=order.limit_price, created_at=self.clock(),
                             reason=reason, risk_codes=list(decision.reasons))
        self.records[order.client_order_id] = record
        self._on_order(order)
        self._on_event(event)
        return record

    def register(self, order: Order, decision: Any, reprice_bound: float = math.nan) -> OrderRecord:
        """Journal the order, its risk checks and NEW in one transaction (write-ahead); nothing is sent yet."""
        now = self.clock()
        new = OrderEvent(order.client_order_id, OrderStatus.NEW, now, remaining_quantity=order.quantity,
                         limit_price=order.limit_price)
        with self.journal.transaction():
            self.journal.record_order(order)
            if decision is not None:
                self.journal.record_risk_checks(order.client_order_id, decision.results)
            self.journal.record_order_event(new)
        record = OrderRecord(order, limit_price=order.limit_price, reprice_bound=reprice_bound, created_at=now,
                             last_reprice=now)
        self.records[order.client_order_id] = record
        self._on_order(order)
        self._on_event(new)
        return record

    async def place(self, order: Order) -> None:
        """Send a registered order; a broker that raises before acknowledging leaves it REJECTED."""
        try:
            await self.broker.place(order)
        except Exception as exc:
            log.warning("broker refused %s: %s", order.client_order_id, exc)
            self.apply_event(OrderEvent(order.client_order_id, OrderStatus.REJECTED, self.clock(),
                                        remaining_quantity=order.quantity, reason=f"broker: {exc}"))

    async def submit(self, order: Order, decision: Any, reprice_bound: float = math.nan) -> OrderRecord:
        """`register` then `place`."""
        record = self.register(order, decision, reprice_bound)
        await self.place(order)
        return record

    def adopt(self, order: Order, event: OrderEvent | None) -> OrderRecord:
        """Take over a working order found in the journal at start-up (recovery)."""
        record = OrderRecord(order, event.status if event else OrderStatus.NEW,
                             filled=event.filled_quantity if event else 0,
                             avg_price=event.avg_fill_price if event else math.nan,
                             limit_price=(event.limit_price if event and event.limit_price else order.limit_price),
                             created_at=order.created_at or self.clock(), last_reprice=self.clock())
        self.records[order.client_order_id] = record
        return record

    async def cancel(self, client_order_id: str) -> bool:
        record = self.records.get(client_order_id)
        if record is None or not record.is_working:
            return False
        record.cancel_requested = True
        try:
            self.journal.record_order_event(OrderEvent(        # write-ahead: the request, before it is sent
                client_order_id, record.status, self.clock(), record.filled, record.remaining, record.avg_price,
                reason="cancel requested", limit_price=record.limit_price))
        except Exception as exc:    # a cancel only lowers risk: it goes out even when the journal cannot keep it
            log.error("cancel of %s not journaled (%s): sending it anyway", client_order_id, exc)
            if self.on_journal_error is not None:
                self.on_journal_error(f"cancel of {client_order_id}", exc)
        try:
            await self.broker.cancel(client_order_id)
        except Exception as exc:
            log.warning("cancel of %s failed: %s", client_order_id, exc)
            return False
        return True

    async def cancel_all(self) -> int:
        """Cancel every working order (each one tried even when another fails); how many were sent."""
        n = 0
        for record in self.working():
            try:
                n += await self.cancel(record.order.client_order_id)
            except Exception:
                log.exception("cancel of %s failed", record.order.client_order_id)
        return n

    async def modify(self, client_order_id: str, limit_price: float | None = None,
                     quantity: int | None = None) -> bool:
        record = self.records.get(client_order_id)
        if record is None or not record.is_working:
            return False
        event = OrderEvent(client_order_id, record.status, self.clock(), record.filled,
                           max((quantity or record.order.quantity) - record.filled, 0), record.avg_price,
                           reason="modify", limit_price=limit_price if limit_price is not None else record.limit_price)
        self.journal.record_order_event(event)
        try:
            await self.broker.modify(client_order_id, limit_price=limit_price, quantity=quantity)
        except Exception as exc:
            log.warning("modify of %s failed: %s", client_order_id, exc)
            return False
        if limit_price is not None:
            record.limit_price = limit_price
        return True

    async def work_orders(self, now: datetime) -> None:
        """Reprice working signal/exit orders toward their bound; cancel those past the timeout."""
        for record in self.working():
            if record.cancel_requested:
                continue
            age = (now - (record.created_at or now)).total_seconds()
            if age > self.config.order_timeout_s:
                log.info("order %s timed out after %.0fs", record.order.client_order_id, age)
                await self.cancel(record.order.client_order_id)
                continue
            if record.order.purpose not in (OrderPurpose.SIGNAL, OrderPurpose.EXIT, OrderPurpose.HEDGE):
                continue
            since = (now - (record.last_reprice or now)).total_seconds()
            if since < self.config.reprice_interval_s or record.limit_price is None:
                continue
            price = next_limit(record.order.side, record.limit_price, record.reprice_bound)
            record.last_reprice = now
            if price != record.limit_price:
                await self.modify(record.order.client_order_id, limit_price=price)

    # ------------------------------------------------------------------ broker events
    def apply_event(self, event: OrderEvent) -> bool:
        """Journal a broker event, then update the record; illegal transitions are logged and ignored."""
        record = self.records.get(event.client_order_id)
        if record is not None and event.status not in ALLOWED.get(record.status, set()):
            if event.status != record.status:
                log.debug("ignored %s -> %s for %s", record.status, event.status, event.client_order_id)
            return False
        self.journal.record_order_event(event)
        if record is None:
            log.warning("event for unknown order %s (%s)", event.client_order_id, event.status.value)
            return False
        record.status = event.status
        if event.filled_quantity:
            record.filled = max(record.filled, event.filled_quantity)
        if math.isfinite(event.avg_fill_price) and not record.fill_quantity:
            record.avg_price = event.avg_fill_price
        if event.reason:
            record.reason = event.reason
        if event.broker_order_id:
            record.broker_order_id = event.broker_order_id
        if event.limit_price is not None and record.is_working:
            record.limit_price = event.limit_price      # the broker's limit is the truth (a lost modify)
        self._on_event(event)
        return True

    def apply_fill(self, fill: Fill) -> bool:
        """Journal a fill (idempotent on fill_id), then pass it on to the book. False for a duplicate."""
        if not self.journal.record_fill(fill):
            return False
        record = self.records.get(fill.client_order_id)
        if record is not None:
            before = record.fill_quantity
            paid = before * record.avg_price if before else 0.0
            record.fill_quantity = before + fill.quantity
            record.avg_price = (paid + fill.quantity * fill.price) / record.fill_quantity
            record.filled = max(record.filled, record.fill_quantity)
        self._on_fill(fill)
        return True
