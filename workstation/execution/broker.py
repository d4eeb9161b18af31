"""The Broker protocol: where orders go (paper exchange or Interactive Brokers), and the broker's truth.

The engine places, cancels and modifies orders by our `client_order_id`; the broker reports back through
its `Listeners` (workstation/listeners.py: append to listen; one that raises is logged, the others still hear):
every OrderEvent (SUBMITTED, PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED with a reason) to `on_order_event`,
every Fill to `on_fill`. Bad requests are answered by events with a reason
(a REJECTED order, or a "cancel rejected: ..." event), never by exceptions. `positions()` is the broker's record,
used to reconcile the book.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable, Protocol, runtime_checkable

from workstation.domain import Fill, Order, OrderEvent

OrderEventCallback = Callable[[OrderEvent], None]
FillCallback = Callable[[Fill], None]


@runtime_checkable
class Broker(Protocol):
    """An async order route with event callbacks."""

    name: str                                 # "paper" | "ib"
    on_order_event: list[OrderEventCallback]  # called with every OrderEvent
    on_fill: list[FillCallback]               # called with every Fill (fill_id is unique: idempotent)

    @property
    def connected(self) -> bool:
        """True between a successful connect() and close() (or a lost connection)."""

    async def connect(self) -> None:
        """Connect (idempotent); raises ConnectionError when the broker cannot be reached."""

    async def close(self) -> None:
        """Disconnect (idempotent). Working orders stay at the broker."""

    async def place(self, order: Order) -> None:
        """Send a new order; the outcome arrives as OrderEvents and Fills."""

    async def cancel(self, client_order_id: str) -> None:
        """Ask to cancel a working order; a CANCELLED event (or a 'cancel rejected: ...' event) follows."""

    async def modify(self, client_order_id: str, limit_price: float | None = None,
                     quantity: int | None = None) -> None:
        """Change the limit price and/or total quantity of a working order; an event with the new limit follows."""

    async def positions(self) -> dict[int, int]:
        """Signed position per contract id, as the broker records it (flat contracts omitted)."""

    async def open_orders(self) -> list[Order]:
        """Working orders at the broker, with their current limit and quantity."""

    async def fills_since(self, since: datetime) -> list[Fill]:
        """Executions at or after `since` (for recovery after a restart or reconnect)."""
