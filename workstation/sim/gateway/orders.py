"""Orders at the practice gateway: placement, modify, cancel, fills and execution reports, as TWS does them.

An order is worked on the paper exchange as one or more sub-orders (slices: the whole remainder, or at most
`faults.fill_slice` contracts at a time when partial fills are injected). The desk also counts what a soak checks:
orders received while IB was lost (1100), orderRefs used twice, modifies per orderRef.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from workstation.domain import Contract, Fill, Order, OrderEvent, OrderStatus, OrderType, SecType, Side
from workstation.market.ib_codes import Code
from workstation.sim.gateway import protocol as P
from workstation.sim.gateway.account import AccountBook
from workstation.sim.gateway.catalog import Catalog, wire_of
from workstation.sim.gateway.faults import Faults
from workstation.sim.gateway.market_data import NO_DEFINITION
from workstation.sim.gateway.protocol import ExecView, OrderView, WireContract
from workstation.sim.world import SimWorld

if TYPE_CHECKING:
    from workstation.sim.gateway.session import Handler, Session

DONE = ("Filled", "Cancelled", "ApiCancelled", "Inactive")


def refuse_cancel(session: "Session | None", order_id: int, status: str) -> None:
    """TWS's answer to a cancel of an order that no longer works (single orders and BAGs alike)."""
    if session is not None:
        session.error(order_id, Code.CANCEL_NOT_ALLOWED, f"OrderId {order_id} that needs to be cancelled "
                                                         f"cannot be cancelled, state: {status}.")


@dataclass
class IbOrder:
    """An order as TWS knows it, worked on the paper exchange as one or more sub-orders (slices)."""

    view: OrderView
    contract: Contract
    created_at: datetime
    notional: float = 0.0
    sub: int = 0                         # current sub-order number (0: none sent yet)
    sub_base: int = 0                    # contracts filled before the current sub-order
    sub_working: bool = False
    cancel_requested: bool = False
    next_slice_at: float | None = None   # simulated epoch of the next slice

    @property
    def sub_id(self) -> str:
        return f"ib{self.view.perm_id}.{self.sub}"

    @property
    def working(self) -> bool:
        return self.view.status not in DONE


class OrderDesk:
    """Every order of every client, worked on the paper exchange; replies go to the client that owns the order."""

    def __init__(self, world: SimWorld, sessions: dict[int, Session], faults: Faults, book: AccountBook,
                 catalog: Catalog, account: str) -> None:
        self.world = world
        self.sessions = sessions
        self.faults = faults
        self.book = book
        self.catalog = catalog
        self.account = account
        self.orders: dict[int, IbOrder] = {}              # perm id -> order
        self.by_key: dict[tuple[int, int], int] = {}       # (client id, order id) -> perm id
        self.next_ids: dict[int, int] = {}
        self.executions: list[ExecView] = []
        self._perm = itertools.count(1_000_001)
        self._exec_seq = itertools.count(1)
        self.orders_while_lost = 0                        # new orders and modifies sent knowing of a 1100
        self.lost_order_delays: list[float] = []          # seconds after the 1100 each order (either kind) arrived
        self.orders_crossing_loss = 0                     # received during a 1100, sent before the client saw it
        self.ib_lost_at = 0.0                             # monotonic time of the last 1100
        self.order_refs: dict[str, int] = {}              # orderRef -> new orders carrying it
        self.modifies: dict[str, int] = {}                # orderRef -> modifies received

    def now(self) -> datetime:
        return self.world.clock.now()

    def next_order_id(self, client_id: int) -> int:
        return self.next_ids.setdefault(client_id, 1)

    def send_to(self, client_id: int, *messages: list) -> None:
        s = self.sessions.get(client_id)
        if s is not None:
            for m in messages:
                s.send(m)

    # ------------------------------------------------------------------------------ place, modify
    def note_arrival(self, session: Session) -> None:
        """Count an order or modify (single or combo) that arrived while IB was lost (1100)."""
        if self.faults.ib_lost:
            self.lost_order_delays.append(session.arrived - self.ib_lost_at)
            if session.knows_ib_lost:       # sent after the client answered the 1100 (its reqCurrentTime came first)
                self.orders_while_lost += 1
            else:                           # sent before the 1100 reached the client: it crossed the 1100
                self.orders_crossing_loss += 1

    def place_order(self, session: Session, req: P.PlaceOrder) -> None:
        client_id = session.client_id
        key = (client_id, req.order_id)
        self.note_arrival(session)
        lose_ack = self.faults.lose_next_ack
        if lose_ack:                        # apply it, but nothing reaches the client: the socket is cut first
            self.faults.lose_next_ack = False
            session.closed = True
        try:
            if key in self.by_key:
                ref = self.orders[self.by_key[key]].view.order_ref
                self.modifies[ref] = self.modifies.get(ref, 0) + 1
                self._modify(session, self.orders[self.by_key[key]], req)
                return
            if req.order_ref:
                self.order_refs[req.order_ref] = self.order_refs.get(req.order_ref, 0) + 1
            self._place_new(session, req, client_id, key)
        finally:
            if lose_ack:
                session.closed = False
                session.abort()

    def _place_new(self, session: Session, req: P.PlaceOrder, client_id: int, key: tuple[int, int]) -> None:
        contract = self._resolve(req.contract)
        if contract is None:
            session.error(req.order_id, Code.NO_SECURITY_DEFINITION, NO_DEFINITION)
            return
        if not req.transmit:
            session.error(req.order_id, Code.ORDER_REJECTED,
                          "Order rejected - reason:the practice gateway transmits every order")
            return
        self.next_ids[client_id] = max(self.next_ids.get(client_id, 1), req.order_id + 1)
        wire = wire_of(contract, req.contract.exchange or ("CME" if contract.sec_type is SecType.FUTURE else "SMART"))
        view = OrderView(req.order_id, client_id, next(self._perm), wire, req.action, req.quantity, req.order_type,
                         req.limit_price, req.tif or "DAY", req.account or self.account, req.order_ref, "PreSubmitted")
        o = IbOrder(view, contract, self.now())
        self.orders[view.perm_id] = o
        self.by_key[key] = view.perm_id
        reason = self._validate(req)
        if not reason and self.faults.reject_orders > 0:
            self.faults.reject_orders -= 1
            reason = self.faults.reject_reason
        if reason:
            self._reject(o, reason)
            return
        session.send(P.open_order(view))
        session.send(P.order_status(view))
        self._next_slice(o)
        if self.faults.drop_after_order:
            self.faults.drop_after_order = False
            session.abort()

    def _validate(self, req: P.PlaceOrder) -> str:
        if req.action not in ("BUY", "SELL"):
            return f"action must be BUY or SELL, got {req.action!r}"
        if req.order_type not in ("LMT", "MKT"):
            return f"the practice gateway supports LMT and MKT orders, not {req.order_type!r}"
        if req.quantity <= 0 or req.quantity != int(req.quantity):
            return f"quantity must be a positive whole number, got {req.quantity:g}"
        if req.order_type == "LMT" and (req.limit_price is None or not math.isfinite(req.limit_price)):
            return "a limit order needs a limit price"
        if req.account and req.account != self.account:
            return f"unknown account {req.account!r}"
        return ""

    def _resolve(self, q: WireContract) -> Contract | None:
        if q.sec_type == "IND":
            return None
        found = self.catalog.search(q)
        if len(found) != 1:
            return None
        return self.catalog.domain_contract(found[0].con_id)

    def _reject(self, o: IbOrder, reason: str) -> None:
        o.view.status = "Cancelled"
        o.view.completed_status = f"Rejected: {reason}"
        o.view.completed_time = P.ib_time(self.now())
        rejected = P.error(o.view.order_id, Code.ORDER_REJECTED, f"Order rejected - reason:{reason}")
        self.send_to(o.view.client_id, rejected, P.order_status(o.view))

    def _next_slice(self, o: IbOrder) -> None:
        """Send the next sub-order (the whole remainder unless partial fills are injected)."""
        v = o.view
        remaining = int(v.quantity) - int(v.filled)
        qty = remaining if not self.faults.fill_slice else min(self.faults.fill_slice, remaining)
        o.sub += 1
        o.sub_base = int(v.filled)
        o.sub_working = True
        o.next_slice_at = None
        order = Order(o.sub_id, o.contract, Side(v.action), qty,
                      OrderType.LIMIT if v.order_type == "LMT" else OrderType.MARKET,
                      v.limit_price if v.order_type == "LMT" else None, created_at=self.now())
        self.world.exchange.submit(order)

    def start_due_slices(self) -> None:
        now = self.world.market.now.timestamp()
        for o in list(self.orders.values()):
            if o.next_slice_at is not None and o.next_slice_at <= now and o.working and not o.cancel_requested:
                self._next_slice(o)

    def _modify(self, session: Session, o: IbOrder, req: P.PlaceOrder) -> None:
        v = o.view
        if not o.working:
            session.error(v.order_id, Code.CANT_MODIFY_FILLED,
                          f"Can't modify a filled order (order {v.order_id} is {v.status})")
            return
        if req.quantity <= v.filled or req.quantity != int(req.quantity):
            session.error(v.order_id, Code.VALIDATION_ERROR,
                          f"Error validating request: quantity {req.quantity:g} must exceed the {v.filled:g} filled")
            return
        v.quantity = req.quantity
        if v.order_type == "LMT" and req.limit_price is not None:
            v.limit_price = req.limit_price
        v.order_ref = req.order_ref or v.order_ref
        if o.sub_working:
            cap = int(v.quantity) - o.sub_base
            if self.faults.fill_slice:
                cap = min(cap, self.faults.fill_slice)
            self.world.exchange.modify(o.sub_id, v.limit_price if v.order_type == "LMT" else None, cap)
        else:
            session.send(P.open_order(v))
            session.send(P.order_status(v))

    # ------------------------------------------------------------------------------------ cancel
    def cancel_order(self, session: Session | None, order_id: int, client_id: int | None = None) -> None:
        client_id = session.client_id if session is not None else client_id
        perm = self.by_key.get((client_id, order_id))
        if perm is None:
            if session is not None:
                session.error(order_id, Code.CANCEL_NOT_FOUND,
                              f"OrderId {order_id} that needs to be cancelled is not found.")
            return
        o = self.orders[perm]
        if not o.working:
            refuse_cancel(session, order_id, o.view.status)
            return
        o.cancel_requested = True
        if o.sub_working:
            self.world.exchange.cancel(o.sub_id)
        else:
            self._finish_cancel(o)

    def cancel_all(self) -> int:
        """Cancel every working order of every client (a global cancel); returns how many."""
        working = [o for o in self.orders.values() if o.working]
        for o in working:
            self.cancel_order(self.sessions.get(o.view.client_id), o.view.order_id, client_id=o.view.client_id)
        return len(working)

    def _finish_cancel(self, o: IbOrder, reason: str = "") -> None:
        v = o.view
        v.status = "Cancelled"
        v.completed_time = P.ib_time(self.now())
        v.completed_status = "Cancelled"
        o.next_slice_at = None
        self.send_to(v.client_id, P.error(v.order_id, Code.ORDER_CANCELLED, f"Order Canceled - reason:{reason}"),
                     P.order_status(v))

    # --------------------------------------------------------------------------- exchange events
    def on_exchange_event(self, event: OrderEvent | Fill) -> None:
        if isinstance(event, Fill):
            self.book.book_fill(event)
        coid = event.client_order_id
        if not coid.startswith("ib"):
            return
        perm_text, _, sub_text = coid[2:].partition(".")
        o = self.orders.get(int(perm_text))
        if o is None or int(sub_text) != o.sub:
            return
        if isinstance(event, Fill):
            self._on_fill(o, event)
        else:
            self._on_order_event(o, event)

    def _on_order_event(self, o: IbOrder, e: OrderEvent) -> None:
        v = o.view
        reason = e.reason or ""
        if reason.startswith("cancel rejected") or reason.startswith("modify rejected"):
            code = Code.CANCEL_NOT_ALLOWED if reason.startswith("cancel") else Code.VALIDATION_ERROR
            self.send_to(v.client_id, P.error(v.order_id, code, f"Error validating request: {reason}"))
            return
        if e.status is OrderStatus.REJECTED:
            o.sub_working = False
            if v.filled:
                self._finish_cancel(o, reason)
            else:
                self._reject(o, reason)
            return
        if e.status is OrderStatus.CANCELLED:
            o.sub_working = False
            self._finish_cancel(o, "" if o.cancel_requested else reason)
            return
        if e.status is OrderStatus.FILLED:
            o.sub_working = False
            if v.filled < v.quantity and not o.cancel_requested:
                o.next_slice_at = self.world.market.now.timestamp() + self.faults.slice_pause_s
            return
        if e.status is OrderStatus.SUBMITTED and (v.status == "PreSubmitted" or reason == "modified"):
            v.status = "Submitted"
            self.send_to(v.client_id, P.open_order(v), P.order_status(v))

    def _on_fill(self, o: IbOrder, fill: Fill) -> None:
        v = o.view
        o.notional += fill.quantity * fill.price
        v.filled += fill.quantity
        v.avg_fill_price = round(o.notional / v.filled, 6)
        v.last_fill_price = fill.price
        if v.filled >= v.quantity:
            v.status = "Filled"
            v.completed_time = P.ib_time(fill.timestamp)
            v.completed_status = "Filled"
        else:
            v.status = "Submitted"
        e = ExecView(f"0000{v.perm_id:x}.{next(self._exec_seq):08x}.01.01", v.order_id, v.client_id, v.perm_id,
                     wire_of(o.contract, v.contract.exchange), fill.timestamp, v.account,
                     "CME" if o.contract.sec_type is SecType.FUTURE else "CBOE",
                     "BOT" if fill.side is Side.BUY else "SLD", float(fill.quantity), fill.price, v.filled,
                     v.avg_fill_price, v.order_ref, 2 if fill.liquidity == "taker" else 1, round(fill.commission, 4),
                     self.book.realized_by_fill.get(fill.fill_id))
        self.executions.append(e)
        self.send_to(v.client_id, P.exec_details(-1, e), P.commission_report(e), P.order_status(v))
        if v.status == "Filled":
            self.send_to(v.client_id, P.open_order(v))
        self.book.broadcast_position(fill.contract.contract_id)


# ------------------------------------------------------------------------------------- handlers
def place_order(s: Session, f: list[str]) -> None:                 # placeOrder [3, ...]
    s.gw.desk.place_order(s, P.parse_place_order(f))


def cancel_order(s: Session, f: list[str]) -> None:                # cancelOrder [4, 1, orderId, manualCancelTime]
    s.gw.desk.cancel_order(s, int(f[2]))


def global_cancel(s: Session, f: list[str]) -> None:               # reqGlobalCancel
    s.gw.desk.cancel_all()


def open_orders(s: Session, f: list[str]) -> None:                 # reqOpenOrders: this client's working orders
    _send_open_orders(s, only_mine=s.client_id != 0)


def all_open_orders(s: Session, f: list[str]) -> None:             # reqAllOpenOrders
    _send_open_orders(s, only_mine=False)


def _send_open_orders(s: Session, only_mine: bool) -> None:
    for o in s.gw.desk.orders.values():
        if o.working and (not only_mine or o.view.client_id == s.client_id):
            s.send(P.open_order(o.view))
            s.send(P.order_status(o.view))
    s.gw.combos.send_open(s, only_mine)
    s.send(P.open_order_end())


def completed_orders(s: Session, f: list[str]) -> None:            # reqCompletedOrders [99, apiOnly]
    for o in s.gw.desk.orders.values():
        if not o.working:
            s.send(P.completed_order(o.view))
    s.gw.combos.send_completed(s)
    s.send(P.completed_orders_end())


def executions(s: Session, f: list[str]) -> None:
    """reqExecutions [7, 3, reqId, clientId, acct, time, symbol, secType, exchange, side]"""
    req_id = int(f[2])
    client_id, acct, since, symbol, sec, side = P.to_int(f[3]), f[4], f[5], f[6], f[7], f[9]
    since_at = parse_filter_time(since)
    for e in s.gw.desk.executions:
        if client_id and e.client_id != client_id:
            continue
        if acct and acct != e.account:
            continue
        if since_at and e.time < since_at:
            continue
        if symbol and symbol.upper() != e.contract.symbol:
            continue
        if sec and sec.upper() != e.contract.sec_type:
            continue
        if side and {"BUY": "BOT", "SELL": "SLD"}.get(side.upper(), side.upper()) != e.side:
            continue
        s.send(P.exec_details(req_id, e))
        if e.contract.sec_type != "BAG":             # a combo's own execution has no commission: its legs do
            s.send(P.commission_report(e))
    s.send(P.exec_details_end(req_id))


def parse_filter_time(text: str) -> datetime | None:
    """An execution-filter time: 'yyyymmdd hh:mm:ss [zone]' or 'yyyymmdd-hh:mm:ss' (UTC when no zone)."""
    text = text.strip()
    if not text:
        return None
    zone = timezone.utc
    if "-" in text[:9]:
        day, clock = text.split("-", 1)
    else:
        parts = text.split(" ")
        day, clock = parts[0], parts[1] if len(parts) > 1 else "00:00:00"
        if len(parts) > 2:
            try:
                zone = ZoneInfo(parts[2])
            except Exception:
                zone = timezone.utc
    at = datetime.strptime(day + clock.strip(), "%Y%m%d%H:%M:%S")
    return at.replace(tzinfo=zone)


HANDLERS: dict[int, Handler] = {
    3: place_order, 4: cancel_order, 58: global_cancel, 5: open_orders, 16: all_open_orders, 99: completed_orders,
    7: executions}
