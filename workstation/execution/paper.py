"""PaperBroker: the Broker protocol on the simulated paper exchange.

In real time a pump task syncs the world every `pump_interval_s` wall seconds, so latency and fills happen as the
simulated clock runs. With a manual clock the driver advances time and calls `pump()` (or lets the sim feed
sync the world): events then reach the callbacks synchronously, deterministically.

When the world has an account file, `positions`, `open_orders` and `fills_since` answer from it across process
restarts (the exchange commits each execution before reporting it), which is what reconciliation needs.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from workstation.domain import Fill, Order, OrderEvent
from workstation.domain.combos import ComboOrder
from workstation.sim.exchange import Event
from workstation.sim.world import SimWorld
from workstation.listeners import Listeners

log = logging.getLogger(__name__)


class PaperBroker:
    """Orders to the paper exchange of `world`; its events to `on_order_event` / `on_fill`."""

    name = "paper"

    def __init__(self, world: SimWorld, pump_interval_s: float = 0.02) -> None:
        self.world = world
        self.pump_interval_s = pump_interval_s
        self.on_order_event = Listeners("order event callback")
        self.on_fill = Listeners("fill callback")
        self._connected = False
        self._task: asyncio.Task | None = None
        world.on_event.append(self._dispatch)

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        if self._connected:
            return
        self._connected = True
        if not self.world.clock.manual:
            self._task = asyncio.create_task(self._pump_forever(), name="paper-broker-pump")

    async def close(self) -> None:
        self._connected = False
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _pump_forever(self) -> None:
        while self._connected:
            self.pump()
            await asyncio.sleep(self.pump_interval_s)

    def pump(self) -> list[Event]:
        """Advance the world to the clock and deliver the exchange's events."""
        return self.world.sync()

    def _dispatch(self, event: Event) -> None:
        callbacks = self.on_fill if isinstance(event, Fill) else self.on_order_event
        callbacks(event)

    async def place(self, order: Order) -> None:
        self._submit(order, self.world.exchange.submit)

    async def place_combo(self, order: ComboOrder) -> None:
        """Send a combo limit order at a net price; its package events and per-leg fills follow."""
        self._submit(order, self.world.exchange.submit_combo)

    def _submit(self, order: Order | ComboOrder, send) -> None:
        self.world.sync()
        if not self._connected:
            self._dispatch(OrderEvent(order.client_order_id, "REJECTED", self.world.market.now,
                                      reason="broker not connected", limit_price=order.limit_price))
            return
        send(order)

    async def cancel(self, client_order_id: str) -> None:
        self.world.sync()
        self.world.exchange.cancel(client_order_id)

    async def modify(self, client_order_id: str, limit_price: float | None = None,
                     quantity: int | None = None) -> None:
        self.world.sync()
        self.world.exchange.modify(client_order_id, limit_price, quantity)

    async def positions(self) -> dict[int, int]:
        return dict(self.world.exchange.positions)

    async def open_orders(self) -> list[Order]:
        return self.world.exchange.open_orders()

    async def fills_since(self, since: datetime) -> list[Fill]:
        """Executions since `since` by simulated or by wall-clock booking time (see `PaperExchange.fills_since`)."""
        return self.world.exchange.fills_since(since)
