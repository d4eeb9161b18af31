"""The paper exchange: limit and market orders matched against the simulated quotes.

A buy fills when its limit reaches the ask, at the ask (a sell at the bid), up to the displayed size (what one
order takes is gone for that simulated second); the rest keeps working. Every request reaches the exchange after
`latency_ms` of simulated time, where it is validated: a bad order is REJECTED with a reason, never raised.
Positions and cash are the exchange's (the broker's truth); options and futures are cash-settled at expiry
at intrinsic value of the opening (AM) or closing (PM) print (see `clearing`).

Combo orders (`submit_combo`) rest at a net limit and fill atomically across their legs (see `combo_matching`):
each leg is booked as its own fill, with its own fees, under the combo's client order id.

Given an `AccountStore`, the account outlives the process: every acknowledgement, fill (with its order,
position and cash), cancel and modify is committed there before the event is reported, and a new exchange
on the same file starts from it — resting orders keep working, ids keep counting (see `account_store`).
Resting combos are kept in memory only (their leg fills are in the account).
"""
from __future__ import annotations

import contextlib
import heapq
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from workstation.domain import Contract, Fill, Order, OrderEvent, OrderStatus, OrderType, SecType, Side
from workstation.domain.combos import ComboOrder
from workstation.domain.ticks import FUTURE_TICK, contract_tick, on_tick
from workstation.sim import clearing, combo_matching
from workstation.sim.account_store import AccountStore, StoredOrder
from workstation.sim.clearing import expired, taker_price
from workstation.sim.combo_matching import LegFill, WorkingCombo, combo_rejection, match
from workstation.sim.market import SimMarket
from workstation.sim.working import WorkingOrder, addressed, rejection

Event = OrderEvent | Fill


@dataclass(order=True)
class _Request:
    due: float
    seq: int
    kind: str = field(compare=False)           # "new" | "cancel" | "modify"
    payload: tuple = field(compare=False)


class PaperExchange:
    """Matching, positions, cash and settlement on top of a `SimMarket`. Call `step()` after advancing the market.

    `store`: the account on disk (loaded now, written as things happen); None keeps it in memory only.
    """

    def __init__(self, market: SimMarket, config, store: AccountStore | None = None) -> None:
        self.market = market
        self.config = config
        self.store = store
        self.orders: dict[str, WorkingOrder] = {}
        self.combos: dict[str, WorkingCombo] = {}     # in memory only: their leg fills are in the account
        self.positions: dict[int, int] = {}
        self.contracts: dict[int, Contract] = {}
        self.cash = 0.0
        self.fills: list[Fill] = []
        self.booked_at: dict[str, datetime] = {}     # execution id -> wall-clock time it was booked
        self._requests: list[_Request] = []
        self._seq = 0
        self._taken: dict[tuple[int, Side, int], int] = {}
        if store is not None:
            self._load(store)

    def _load(self, store: AccountStore) -> None:
        state = store.load()
        for o in state.orders:
            self.orders[o.order.client_order_id] = WorkingOrder(o.order, o.broker_id, o.limit, o.quantity, o.filled,
                                                            o.notional, o.status)
        self.positions, self.contracts, self.cash = state.positions, state.contracts, state.cash
        self.fills, self.booked_at, self._seq = state.fills, state.booked_at, state.seq

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _save(self, w: WorkingOrder) -> None:
        if self.store is not None and not isinstance(w, WorkingCombo):      # resting combos: memory only
            self.store.save_order(StoredOrder(w.order, w.broker_id, w.limit, w.quantity, w.filled, w.notional,
                                              w.status), self._seq)

    def fills_since(self, since: datetime) -> list[Fill]:
        """Executions at or after `since` by simulated time *or* by the wall-clock time they were booked.

        The simulated clock restarts at the session open on every process start (and may be set to any
        date), so simulated timestamps of earlier runs can lie after the new clock or years before the
        wall clock; an execution is returned when either instant is inside the window, so a caller using
        the wall clock and one using the simulated clock both see every recent execution.
        """
        return [f for f in self.fills
                if f.timestamp >= since or self.booked_at.get(f.fill_id, f.timestamp) >= since]

    # ------------------------------------------------------------------------------------ requests
    def submit(self, order: Order) -> None:
        """Send a new order; it reaches the exchange after the latency."""
        self._send("new", (order,))

    def submit_combo(self, order: ComboOrder) -> None:
        """Send a combo limit order at a net price; it reaches the exchange after the latency."""
        self._send("combo", (order,))

    def cancel(self, client_order_id: str) -> None:
        self._send("cancel", (client_order_id,))

    def modify(self, client_order_id: str, limit_price: float | None = None, quantity: int | None = None) -> None:
        self._send("modify", (client_order_id, limit_price, quantity))

    def _send(self, kind: str, payload: tuple) -> None:
        due = self.market.now.timestamp() + self.config.latency_ms / 1000.0
        heapq.heappush(self._requests, _Request(due, self._next_seq(), kind, payload))

    def open_orders(self) -> list[Order]:
        """Working orders as they stand now (limit and quantity after modifications)."""
        return [replace(w.order, limit_price=w.limit, quantity=w.quantity)
                for w in self.orders.values() if w.status.is_working]

    def open_combos(self) -> list[ComboOrder]:
        """Working combo orders."""
        return [w.order for w in self.combos.values() if w.status.is_working]

    # ---------------------------------------------------------------------------------------- step
    def step(self) -> list[Event]:
        """Deliver requests that have arrived, match working orders, settle expired positions."""
        events: list[Event] = []
        now = self.market.now.timestamp()
        while self._requests and self._requests[0].due <= now:
            req = heapq.heappop(self._requests)
            at = datetime.fromtimestamp(req.due, timezone.utc)
            events += getattr(self, f"_on_{req.kind}")(at, *req.payload)
        for w in list(self.orders.values()):
            c = w.order.contract
            if w.status.is_working and expired(c, self.market.now):
                w.status = OrderStatus.CANCELLED
                self._save(w)
                events.append(w.event(self.market.now, "contract expired"))
        events += combo_matching.expire(self.combos.values(), self.market.now)
        events += self._settle()
        if self.market.is_open:
            for w in list(self.orders.values()):
                if w.status.is_working:
                    events += self._match(w)
            for wc in list(self.combos.values()):
                if wc.status.is_working:
                    events += self._match_combo(wc)
        return events

    def _on_new(self, at: datetime, order: Order) -> list[Event]:
        reason = self._check(order, at)
        if reason:
            return [rejection(order, at, reason)]
        w = WorkingOrder(order, f"P{self._next_seq()}", order.limit_price, order.quantity)
        self._save(w)
        self.orders[order.client_order_id] = w
        self.contracts[order.contract.contract_id] = order.contract
        return [w.event(at)]

    def _on_combo(self, at: datetime, order: ComboOrder) -> list[Event]:
        reason = combo_rejection(order, at, self._known, set(self.orders) | set(self.combos)) or \
            ("" if self.market.is_open else "market closed")
        if reason:
            return [rejection(order, at, reason)]
        w = WorkingCombo(order, f"P{self._next_seq()}", order.limit_price, order.quantity)
        self.combos[order.client_order_id] = w
        for leg in order.combo.legs:
            self.contracts[leg.contract.contract_id] = leg.contract
        return [w.event(at)]

    def _check(self, order: Order, at: datetime) -> str:
        """Why the exchange refuses `order`, or '' when it accepts it."""
        if order.client_order_id in self.orders or order.client_order_id in self.combos:
            return f"duplicate order id {order.client_order_id}"
        if order.quantity <= 0:
            return f"quantity must be > 0, got {order.quantity}"
        c = order.contract
        if expired(c, at):
            return f"expired contract {c.description} (expired {c.expiry})"
        if not self._known(c):
            return f"unknown contract {c.contract_id} ({c.description})"
        if order.order_type is OrderType.LIMIT:
            price = float(order.limit_price)
            if price <= 0:
                return f"limit price must be > 0, got {price:g}"
            if not self._on_tick(c, price):
                return f"bad tick: {price:g} is not a multiple of {self._tick(c, price):g}"
        if not self.market.is_open:
            return "market closed"
        if order.order_type is OrderType.MARKET:
            bid, ask, _, _ = self._touch(c)
            if order.side is Side.SELL and bid <= 0:
                return "no bid: a market sell cannot fill"
            if order.side is Side.BUY and not ask > 0:
                return "no offer: a market buy cannot fill"
        return ""

    def _known(self, c: Contract) -> bool:
        lst = self.market.listing
        if c.sec_type is SecType.FUTURE:
            return lst.future_by_id(c.contract_id) is not None
        row = lst.row_of(c.contract_id)
        return row is not None and float(lst.strike[row]) == c.strike and bool(lst.is_call[row]) == c.is_call

    @staticmethod
    def _tick(c: Contract, price: float) -> float:
        return contract_tick(c.sec_type is SecType.FUTURE, price)

    def _on_tick(self, c: Contract, price: float) -> bool:
        return on_tick(price, FUTURE_TICK if c.sec_type is SecType.FUTURE else None)

    def _on_cancel(self, at: datetime, client_order_id: str) -> list[Event]:
        w = addressed(self.combos if client_order_id in self.combos else self.orders, client_order_id, at, "cancel")
        if isinstance(w, OrderEvent):
            return [w]
        w.status = OrderStatus.CANCELLED
        self._save(w)
        return [w.event(at, "cancelled")]

    def _on_modify(self, at: datetime, client_order_id: str, limit: float | None, qty: int | None) -> list[Event]:
        if client_order_id in self.combos:
            return [self.combos[client_order_id].event(at, "modify rejected: cancel and resend a combo")]
        w = addressed(self.orders, client_order_id, at, "modify")
        if isinstance(w, OrderEvent):
            return [w]
        c = w.order.contract
        if limit is not None:
            if w.order.order_type is OrderType.MARKET:
                return [w.event(at, "modify rejected: a market order has no limit")]
            if not (math.isfinite(limit) and limit > 0 and self._on_tick(c, limit)):
                return [w.event(at, f"modify rejected: bad tick or price {limit!r}")]
        if qty is not None and (not isinstance(qty, int) or qty <= w.filled):
            return [w.event(at, f"modify rejected: quantity must exceed the {w.filled} filled, got {qty!r}")]
        w.limit = limit if limit is not None else w.limit
        w.quantity = qty if qty is not None else w.quantity
        self._save(w)
        return [w.event(at, "modified")]

    # ------------------------------------------------------------------------------------ matching
    def _touch(self, c: Contract) -> tuple[float, float, int, int]:
        """Bid, ask and displayed sizes of a contract now."""
        if c.sec_type is SecType.FUTURE:
            q = self.market.future_quote(self.market.listing.future_by_id(c.contract_id))
            return q.bid, q.ask, q.bid_size, q.ask_size
        row = self.market.listing.row_of(c.contract_id)
        q = self.market.quote_rows([row])
        return float(q.bid[0]), float(q.ask[0]), int(q.bid_size[0]), int(q.ask_size[0])

    def _match(self, w: WorkingOrder) -> list[Event]:
        c, side = w.order.contract, w.order.side
        if not self._known(c):        # an order restored from the account for a contract no longer listed
            return []
        price, available = self._side_quote(c, side)
        if not price > 0 or available <= 0:
            return []
        if w.limit is not None and (price > w.limit + 1e-9 if side is Side.BUY else price < w.limit - 1e-9):
            return []
        qty = min(w.remaining, available)
        if qty <= 0:
            return []
        self._take(c, side, qty)
        fill_price = taker_price(c, side, price, self.config.slippage_ticks)
        w.filled += qty
        w.notional += qty * fill_price
        w.status = OrderStatus.FILLED if w.remaining == 0 else OrderStatus.PARTIALLY_FILLED
        with self._transaction():     # the execution and its order's new state, committed together
            fill = self._book(w.order.client_order_id, c, side, qty, fill_price, w.broker_id, "taker")
            self._save(w)
        return [fill, w.event(self.market.now)]

    def _side_quote(self, c: Contract, side: Side) -> tuple[float, int]:
        """The touch a taker on `side` meets (the ask for a buy) and the size still shown there this second."""
        bid, ask, bid_size, ask_size = self._touch(c)
        price, shown = (ask, ask_size) if side is Side.BUY else (bid, bid_size)
        return price, shown - self._taken.get((c.contract_id, side, int(self.market.now.timestamp())), 0)

    def _take(self, c: Contract, side: Side, qty: int) -> None:
        """`qty` taken at the touch this simulated second (gone for the next order)."""
        key = (c.contract_id, side, int(self.market.now.timestamp()))
        self._taken = {k: v for k, v in self._taken.items() if k[2] == key[2]}
        self._taken[key] = self._taken.get(key, 0) + qty

    def _match_combo(self, w: WorkingCombo) -> list[Event]:
        """Fill whole packages across every leg at once, or nothing (no legging)."""
        quote = (lambda c, side: self._side_quote(c, side) if self._known(c) else None)
        legs: list[LegFill] = match(w, quote, self.config.slippage_ticks)
        if not legs:
            return []
        coid = w.order.client_order_id
        with self._transaction():     # every leg's execution committed together
            fills = [self._book(coid, f.contract, f.side, f.quantity, f.price, w.broker_id, "taker",
                                metadata={"combo": coid, "leg": f.leg}) for f in legs]
        for f in legs:
            self._take(f.contract, f.side, f.quantity)
        return [*fills, w.event(self.market.now)]

    def _transaction(self):
        return self.store.transaction() if self.store is not None else contextlib.nullcontext()

    def _book(self, coid: str, c: Contract, side: Side, qty: int, price: float, broker_id: str,
              liquidity: str, commission: float | None = None, metadata: dict | None = None) -> Fill:
        """Record a fill: position, cash, fill list (committed to the store first, when there is one)."""
        fee = clearing.commission(self.config, c, qty) if commission is None else commission
        fill = Fill(f"{broker_id}-{self._next_seq()}", coid, c, side, qty, price, self.market.now, fee, liquidity,
                    metadata or {})
        pos = self.positions.get(c.contract_id, 0) + side.sign * qty
        cash = self.cash - (side.sign * qty * price * c.multiplier + fee)
        booked_at = datetime.now(timezone.utc)
        if self.store is not None:
            self.store.save_execution(fill, pos, cash, self._seq, booked_at)
        self.contracts[c.contract_id] = c
        if pos:
            self.positions[c.contract_id] = pos
        else:
            self.positions.pop(c.contract_id, None)
        self.cash = cash
        self.fills.append(fill)
        self.booked_at[fill.fill_id] = booked_at
        return fill

    # ---------------------------------------------------------------------------------- settlement
    def _settle(self) -> list[Event]:
        """Cash-settle positions whose settlement print is known, at intrinsic value."""
        events: list[Event] = []
        for cid, pos in list(self.positions.items()):
            c = self.contracts[cid]
            if not expired(c, self.market.now):
                continue
            index = self.market.settlement_price(c.expiry, c.settlement.value == "AM")
            if index is None:
                continue
            t = clearing.settlement_trade(c, pos, index)
            events.append(self._book(t.client_order_id, c, t.side, t.quantity, t.price, t.broker_id,
                                     clearing.SETTLEMENT, 0.0))
        return events
