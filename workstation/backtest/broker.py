"""BacktestBroker: the Broker protocol filled against RECORDED quotes, one snapshot at a time.

Latency is one snapshot: a request sent during the cycle of snapshot t (new, cancel, modify) reaches the
exchange with snapshot t+1, whose quotes it then trades against. In a backtest these are the quotes the
engine's data sanity accepted in that snapshot's cycle: a garbage print in a recording is not a market anyone
could have traded on, so a blanked quote, a dropped future or a skipped snapshot fills nothing. A buy limit
fills at the recorded ask when the limit reaches it (a sell at the bid), up to the displayed size (what one
order takes is gone for that snapshot), plus `slippage_ticks` ticks against us; commissions and fees as the
paper exchange charges them. Positions whose settlement instant has passed are cash-settled at intrinsic value
of the recorded underlying of the first accepted snapshot at or after it (commissions and settlement from
`workstation.sim.clearing`). Combo orders (`place_combo`) fill atomically across their legs against the
recorded leg quotes, as on the paper exchange (see `workstation.sim.combo_matching`). Everything is keyed on
snapshot time and sequence counters: two runs give the same fills.
"""
from __future__ import annotations

import logging
import math
from dataclasses import replace
from datetime import datetime

from workstation.config import PaperConfig
from workstation.domain import (ChainSnapshot, Contract, Fill, Order, OrderEvent, OrderStatus, OrderType, SecType,
                                Side)
from workstation.domain.combos import ComboOrder
from workstation.domain.ticks import on_tick, option_tick
from workstation.sim import clearing, combo_matching
from workstation.sim.clearing import SETTLEMENT, expired, taker_price
from workstation.sim.combo_matching import WorkingCombo, combo_rejection, match
from workstation.sim.working import WorkingOrder, addressed, rejection
from workstation.listeners import Listeners

log = logging.getLogger(__name__)



class BacktestBroker:
    """Broker protocol on recorded snapshots: the runner calls `deliver(snap)` before each engine cycle and
    `match(sane)` with the snapshot the cycle's data sanity accepted (`on_snapshot` does both on one snapshot)."""

    name = "backtest"

    def __init__(self, config: PaperConfig) -> None:
        self.config = config
        self.on_order_event = Listeners("order event callback")
        self.on_fill = Listeners("fill callback")
        self.orders: dict[str, WorkingOrder] = {}
        self.combos: dict[str, WorkingCombo] = {}
        self.position_by_id: dict[int, int] = {}
        self.contracts: dict[int, Contract] = {}
        self.fills: list[Fill] = []
        self.cash = 0.0
        self.snapshot: ChainSnapshot | None = None
        self._requests: list[tuple[str, tuple]] = []
        self._seq = 0
        self._connected = False

    # ---------------------------------------------------------------------------- protocol
    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self._connected = True

    async def close(self) -> None:
        self._connected = False

    async def place(self, order: Order) -> None:
        self._requests.append(("new", (order,)))

    async def place_combo(self, order: ComboOrder) -> None:
        """A combo limit order at a net price, filled atomically across its legs from the next snapshot on."""
        self._requests.append(("combo", (order,)))

    async def cancel(self, client_order_id: str) -> None:
        self._requests.append(("cancel", (client_order_id,)))

    async def modify(self, client_order_id: str, limit_price: float | None = None,
                     quantity: int | None = None) -> None:
        self._requests.append(("modify", (client_order_id, limit_price, quantity)))

    async def positions(self) -> dict[int, int]:
        return dict(self.position_by_id)

    async def open_orders(self) -> list[Order]:
        return [replace(w.order, limit_price=w.limit, quantity=w.quantity)
                for w in self.orders.values() if w.status.is_working]

    async def fills_since(self, since: datetime) -> list[Fill]:
        return [f for f in self.fills if f.timestamp >= since]

    # ---------------------------------------------------------------------------- the clock tick
    def on_snapshot(self, snap: ChainSnapshot) -> None:
        """Deliver the requests sent since the last snapshot, then settle and match on `snap`'s quotes."""
        self.deliver(snap)
        self.match(snap)

    def deliver(self, snap: ChainSnapshot) -> None:
        """The requests sent since the last snapshot reach the exchange; orders on expired contracts end."""
        self.snapshot = snap
        at = snap.timestamp
        requests, self._requests = self._requests, []
        for kind, payload in requests:
            self._emit(getattr(self, f"_on_{kind}")(at, *payload))
        for w in self.orders.values():
            if w.status.is_working and expired(w.order.contract, at):
                w.status = OrderStatus.CANCELLED
                self._emit([w.event(at, "contract expired")])
        self._emit(combo_matching.expire(self.combos.values(), at))

    def match(self, snap: ChainSnapshot) -> None:
        """Settle expiries and fill working orders and combos on `snap`'s quotes (the runner passes the quotes the
        engine's data sanity accepted: a blanked quote or a dropped future trades nothing)."""
        self._emit(self._settle(snap))
        taken: dict[tuple[int, Side], int] = {}
        for w in list(self.orders.values()):
            if w.status.is_working:
                self._emit(self._match(w, snap, taken))
        for wc in list(self.combos.values()):
            if wc.status.is_working:
                self._emit(self._match_combo(wc, snap, taken))

    def _emit(self, events: list[OrderEvent | Fill]) -> None:
        for event in events:
            callbacks = self.on_fill if isinstance(event, Fill) else self.on_order_event
            callbacks(event)

    def _next(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq}"

    # ---------------------------------------------------------------------------- requests
    def _on_new(self, at: datetime, order: Order) -> list[OrderEvent | Fill]:
        reason = self._check(order, at)
        if reason:
            return [rejection(order, at, reason)]
        w = WorkingOrder(order, self._next("B"), order.limit_price, order.quantity)
        self.orders[order.client_order_id] = w
        self.contracts[order.contract.contract_id] = order.contract
        return [w.event(at)]

    def _on_combo(self, at: datetime, order: ComboOrder) -> list[OrderEvent | Fill]:
        reason = "broker not connected" if not self._connected else \
            combo_rejection(order, at, lambda c: True, set(self.orders) | set(self.combos))
        if reason:
            return [rejection(order, at, reason)]
        w = WorkingCombo(order, self._next("B"), order.limit_price, order.quantity)
        self.combos[order.client_order_id] = w
        for leg in order.combo.legs:
            self.contracts[leg.contract.contract_id] = leg.contract
        return [w.event(at)]

    def _check(self, order: Order, at: datetime) -> str:
        """Why the exchange refuses `order`, or '' when it accepts it."""
        if not self._connected:
            return "broker not connected"
        if order.client_order_id in self.orders or order.client_order_id in self.combos:
            return f"duplicate order id {order.client_order_id}"
        if order.quantity <= 0:
            return f"quantity must be > 0, got {order.quantity}"
        if expired(order.contract, at):
            return f"expired contract {order.contract.description}"
        if order.order_type is OrderType.LIMIT:
            price = float(order.limit_price)
            if price <= 0:
                return f"limit price must be > 0, got {price:g}"
            if order.contract.sec_type is SecType.OPTION and not on_tick(price):
                return f"bad tick: {price:g} is not a multiple of {option_tick(price):g}"
        return ""

    def _on_cancel(self, at: datetime, client_order_id: str) -> list[OrderEvent | Fill]:
        book = self.combos if client_order_id in self.combos else self.orders
        w = addressed(book, client_order_id, at, "cancel")
        if isinstance(w, OrderEvent):
            return [w]
        w.status = OrderStatus.CANCELLED
        return [w.event(at, "cancelled")]

    def _on_modify(self, at: datetime, client_order_id: str, limit: float | None,
                   qty: int | None) -> list[OrderEvent | Fill]:
        if client_order_id in self.combos:
            return [self.combos[client_order_id].event(at, "modify rejected: cancel and resend a combo")]
        w = addressed(self.orders, client_order_id, at, "modify")
        if isinstance(w, OrderEvent):
            return [w]
        if limit is not None and not (math.isfinite(limit) and limit > 0):
            return [w.event(at, f"modify rejected: bad price {limit!r}")]
        if qty is not None and qty <= w.filled:
            return [w.event(at, f"modify rejected: quantity must exceed the {w.filled} filled")]
        w.limit = limit if limit is not None else w.limit
        w.quantity = qty if qty is not None else w.quantity
        return [w.event(at, "modified")]

    # ---------------------------------------------------------------------------- matching
    @staticmethod
    def _touch(contract: Contract, snap: ChainSnapshot) -> tuple[float, float, int, int] | None:
        """Recorded bid, ask and sizes of `contract` in `snap` (None when it is not quoted)."""
        if contract.sec_type is SecType.FUTURE:
            fc, q = snap.future_contract, snap.future
            if fc is None or q is None or fc.contract_id != contract.contract_id:
                return None
            return float(q.bid), float(q.ask), int(q.bid_size), int(q.ask_size)
        row = snap.index_of(contract.contract_id)
        if row is None:
            return None
        return float(snap.bid[row]), float(snap.ask[row]), int(snap.bid_size[row]), int(snap.ask_size[row])

    def _match(self, w: WorkingOrder, snap: ChainSnapshot, taken: dict[tuple[int, Side], int]) -> list[OrderEvent | Fill]:
        c, side = w.order.contract, w.order.side
        touch = self._touch(c, snap)
        if touch is None:
            return []
        bid, ask, bid_size, ask_size = touch
        price, shown = (ask, ask_size) if side is Side.BUY else (bid, bid_size)
        if not (math.isfinite(price) and price > 0) or shown <= 0:
            return []
        if w.limit is not None and (price > w.limit + 1e-9 if side is Side.BUY else price < w.limit - 1e-9):
            return []
        key = (c.contract_id, side)
        qty = min(w.remaining, shown - taken.get(key, 0))
        if qty <= 0:
            return []
        taken[key] = taken.get(key, 0) + qty
        fill_price = taker_price(c, side, price, self.config.slippage_ticks)
        w.filled += qty
        w.notional += qty * fill_price
        w.status = OrderStatus.FILLED if w.remaining == 0 else OrderStatus.PARTIALLY_FILLED
        fill = self._book(w.order.client_order_id, c, side, qty, fill_price, snap.timestamp, w.broker_id, "taker")
        return [fill, w.event(snap.timestamp)]

    def _match_combo(self, w: WorkingCombo, snap: ChainSnapshot,
                     taken: dict[tuple[int, Side], int]) -> list[OrderEvent | Fill]:
        """Whole packages across every leg against the recorded quotes, or nothing (no legging)."""
        def quote(c: Contract, side: Side) -> tuple[float, int] | None:
            touch = self._touch(c, snap)
            if touch is None:
                return None
            bid, ask, bid_size, ask_size = touch
            price, shown = (ask, ask_size) if side is Side.BUY else (bid, bid_size)
            return price, shown - taken.get((c.contract_id, side), 0)
        legs = match(w, quote, self.config.slippage_ticks)
        coid = w.order.client_order_id
        fills: list[OrderEvent | Fill] = []
        for f in legs:
            taken[(f.contract.contract_id, f.side)] = taken.get((f.contract.contract_id, f.side), 0) + f.quantity
            fills.append(self._book(coid, f.contract, f.side, f.quantity, f.price, snap.timestamp, w.broker_id,
                                    "taker", metadata={"combo": coid, "leg": f.leg}))
        return [*fills, w.event(snap.timestamp)] if legs else []

    def _book(self, coid: str, c: Contract, side: Side, qty: int, price: float, at: datetime, broker_id: str,
              liquidity: str, commission: float | None = None, metadata: dict | None = None) -> Fill:
        fee = clearing.commission(self.config, c, qty) if commission is None else commission
        fill = Fill(self._next(f"{broker_id}-"), coid, c, side, qty, price, at, round(fee, 6), liquidity,
                    metadata or {})
        self.contracts[c.contract_id] = c
        pos = self.position_by_id.get(c.contract_id, 0) + side.sign * qty
        if pos:
            self.position_by_id[c.contract_id] = pos
        else:
            self.position_by_id.pop(c.contract_id, None)
        self.cash -= side.sign * qty * price * c.multiplier + fee
        self.fills.append(fill)
        return fill

    # ---------------------------------------------------------------------------- settlement
    def _settle(self, snap: ChainSnapshot) -> list[OrderEvent | Fill]:
        """Cash-settle expired positions at intrinsic value of the recorded underlying (no fee)."""
        out: list[OrderEvent | Fill] = []
        for cid, pos in sorted(self.position_by_id.items()):
            c = self.contracts[cid]
            if not expired(c, snap.timestamp):
                continue
            t = clearing.settlement_trade(c, pos, snap.underlying_price, snap.underlying)
            out.append(self._book(t.client_order_id, c, t.side, t.quantity, t.price, snap.timestamp, t.broker_id,
                                  SETTLEMENT, 0.0))
        return out
