"""An order resting at an exchange (the simulated one, or the backtest's recorded-quote one) and the events that
refuse requests: shared by the paper exchange, the backtest broker and their combo orders."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from workstation.domain import Order, OrderEvent, OrderStatus
from workstation.domain.combos import ComboOrder


@dataclass
class WorkingOrder:
    """An order resting at an exchange (the simulated one, or the backtest's recorded-quote one)."""

    order: Order
    broker_id: str
    limit: float | None
    quantity: int
    filled: int = 0
    notional: float = 0.0
    status: OrderStatus = OrderStatus.SUBMITTED

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def avg_price(self) -> float:
        return round(self.notional / self.filled, 6) if self.filled else math.nan

    def event(self, at: datetime, reason: str = "") -> OrderEvent:
        """The order's state now, as the exchange reports it."""
        return OrderEvent(self.order.client_order_id, self.status, at, self.filled,
                          self.remaining if self.status.is_working else 0, self.avg_price, reason, self.broker_id,
                          self.limit)


def rejection(order: Order | ComboOrder, at: datetime, reason: str) -> OrderEvent:
    """A new order (or combo order) the exchange refuses."""
    return OrderEvent(order.client_order_id, OrderStatus.REJECTED, at, 0, 0, math.nan, reason, "", order.limit_price)


def addressed(orders: dict[str, WorkingOrder], client_order_id: str, at: datetime,
              action: str) -> WorkingOrder | OrderEvent:
    """The working order a cancel or modify (`action`) is for, or the event refusing it: unknown, or done."""
    w = orders.get(client_order_id)
    if w is None:
        return OrderEvent(client_order_id, OrderStatus.REJECTED, at, reason=f"{action} rejected: unknown order")
    if not w.status.is_working:
        return w.event(at, f"{action} rejected: order is already {w.status.value}")
    return w
