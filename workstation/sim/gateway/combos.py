"""Combo (BAG) orders at the practice gateway, as TWS does them.

A placeOrder with a BAG contract carries its legs (conId, ratio, action, exchange). TWS refuses a malformed
package before anything reaches an exchange, with only an error message (no openOrder, no orderStatus):
321 "Security type 'BAG' requires combo leg details" (no legs), 321 "The combo details for leg 'i' are invalid"
(a ratio <= 0, an action other than BUY/SELL, a leg without an exchange), 321 "Invalid leg ratio" (ratios with a
common factor), 321 "Missing order exchange" (a BAG without an exchange), 200 (a leg conId it does not know, or
that is not an option) and 478 (the BAG's symbol is not its legs' symbol: legs in different underlyings). An
accepted package is worked on the paper exchange as one combo order (`sim/combo_matching`: atomic across the
legs, each at its quote). Each package fill is reported as TWS does: one execDetails for the BAG (the net price,
no commission report), then one execDetails and one commissionReport per leg, all with the order's orderRef and
permId, then the package's orderStatus (quantities in packages, the average net price).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from math import gcd
from functools import reduce
from typing import TYPE_CHECKING

from workstation.domain import Fill, OrderEvent, OrderStatus, SecType, Side
from workstation.domain.combos import Combo, ComboLeg, ComboOrder
from workstation.market.ib_codes import Code
from workstation.sim.gateway import orders
from workstation.sim.gateway import protocol as P
from workstation.sim.gateway.catalog import wire_of
from workstation.sim.gateway.market_data import NO_DEFINITION
from workstation.sim.gateway.protocol import ExecView, OrderView, WireContract

if TYPE_CHECKING:
    from workstation.sim.gateway.orders import OrderDesk
    from workstation.sim.gateway.session import Handler, Session

SMART_COMBO_CON_ID = 28812380          # the conId TWS gives every SMART-routed BAG
VALIDATING = "Error validating request.-'bH' : cause - "
PLACE_LEGS_AT = 35                     # placeOrder: the leg count follows `hidden`
OPEN_LEGS_AT = 70                      # openOrder: the leg count follows comboLegsDescrip
COMPLETED_LEGS_AT = 59                 # completedOrder: the same
DONE = ("Filled", "Cancelled", "ApiCancelled", "Inactive")


@dataclass(frozen=True)
class WireLeg:
    """One leg of a BAG as the client sent it."""

    con_id: int
    ratio: int
    action: str
    exchange: str

    def fields(self) -> list:
        """conId, ratio, action, exchange, openClose, shortSaleSlot, designatedLocation, exemptCode."""
        return [self.con_id, self.ratio, self.action, self.exchange, 0, 0, "", -1]


def parse_legs(f: list[str], at: int, width: int) -> tuple[list[WireLeg], int]:
    """The legs of a BAG request starting at field `at` (`width` fields per leg); and the field after them."""
    n = P.to_int(f[at]) if at < len(f) else 0
    legs, i = [], at + 1
    for _ in range(n):
        if i + 3 >= len(f):
            raise P.ProtocolError("combo legs cut short")
        legs.append(WireLeg(P.to_int(f[i]), P.to_int(f[i + 1]), f[i + 2].upper(), f[i + 3]))
        i += width
    return legs, i


def bag_wire(symbol: str, exchange: str = "SMART", currency: str = "USD") -> WireContract:
    return WireContract(SMART_COMBO_CON_ID, symbol, "BAG", "", 0.0, "", "", exchange, "", currency, symbol, "COMB")


def with_legs(message: list, at: int, legs: list[WireLeg]) -> list:
    """An openOrder / completedOrder message with the BAG's legs in place of 'no legs'."""
    if message[at:at + 3] != [0, 0, 0]:
        raise ValueError("the order message layout moved: the combo legs are not where they were")
    return [*message[:at], len(legs), *(x for leg in legs for x in leg.fields()), 0, 0, *message[at + 3:]]


@dataclass
class IbBag:
    """A combo order as TWS knows it, worked on the paper exchange as one combo order."""

    view: OrderView
    legs: list[WireLeg]
    order: ComboOrder
    notional: float = 0.0
    leg_filled: dict[int, float] = field(default_factory=dict)      # conId -> contracts filled
    leg_notional: dict[int, float] = field(default_factory=dict)
    cancel_requested: bool = False

    @property
    def working(self) -> bool:
        return self.view.status not in DONE

    def open_message(self) -> list:
        return with_legs(P.open_order(self.view), OPEN_LEGS_AT, self.legs)

    def completed_message(self) -> list:
        return with_legs(P.completed_order(self.view), COMPLETED_LEGS_AT, self.legs)


class BagDesk:
    """Every combo order of every client: placement, refusal as TWS does it, cancel, fills per leg."""

    def __init__(self, desk: OrderDesk) -> None:
        self.desk = desk
        self.bags: dict[int, IbBag] = {}                  # perm id -> combo order
        self.by_key: dict[tuple[int, int], int] = {}       # (client id, order id) -> perm id

    def owns(self, client_id: int, order_id: int) -> bool:
        return (client_id, order_id) in self.by_key

    # ---------------------------------------------------------------------------------- place
    def place(self, session: Session, req: P.PlaceOrder, f: list[str]) -> None:
        desk = self.desk
        key = (session.client_id, req.order_id)
        desk.note_arrival(session)
        if key in self.by_key:
            bag = self.bags[self.by_key[key]]
            desk.modifies[bag.view.order_ref] = desk.modifies.get(bag.view.order_ref, 0) + 1
            session.error(req.order_id, Code.VALIDATION_ERROR,
                          f"{VALIDATING}the practice gateway does not modify combo orders: cancel and send again")
            return
        if req.order_ref:
            desk.order_refs[req.order_ref] = desk.order_refs.get(req.order_ref, 0) + 1
        legs, _ = parse_legs(f, PLACE_LEGS_AT, 8)
        refusal = self.refusal(req, legs) or self._order_refusal(req)
        if refusal:
            session.error(req.order_id, *refusal)
            return
        desk.next_ids[session.client_id] = max(desk.next_ids.get(session.client_id, 1), req.order_id + 1)
        perm = next(desk._perm)
        combo = Combo(tuple(ComboLeg(desk.catalog.domain_contract(leg.con_id), leg.ratio, Side(leg.action))
                            for leg in legs))
        order = ComboOrder(f"bag{perm}", combo, Side(req.action), int(req.quantity), float(req.limit_price),
                           desk.now())
        view = OrderView(req.order_id, session.client_id, perm, bag_wire(req.contract.symbol, req.contract.exchange,
                                                                         req.contract.currency or "USD"),
                         req.action, req.quantity, "LMT", req.limit_price, req.tif or "DAY",
                         req.account or desk.account, req.order_ref, "PreSubmitted")
        bag = IbBag(view, legs, order)
        self.bags[perm] = bag
        self.by_key[key] = perm
        session.send(bag.open_message())
        session.send(P.order_status(view))
        desk.world.exchange.submit_combo(order)
        if desk.faults.drop_after_order:
            desk.faults.drop_after_order = False
            session.abort()

    def refusal(self, req: P.PlaceOrder, legs: list[WireLeg]) -> tuple[int, str] | None:
        """(code, message) of TWS's refusal of a malformed BAG, None when it is well formed."""
        if not legs:
            return Code.VALIDATION_ERROR, f"{VALIDATING}Security type 'BAG' requires combo leg details."
        if not req.contract.exchange:
            return Code.VALIDATION_ERROR, f"{VALIDATING}Missing order exchange"
        for i, leg in enumerate(legs):
            side = {"BUY": 1, "SELL": 2}.get(leg.action, 0)
            if leg.ratio <= 0 or side == 0:
                return Code.VALIDATION_ERROR, (f"{VALIDATING}The combo details for leg '{i}' are invalid. -  "
                                               f"conid, ratio, side: {leg.con_id}, {leg.ratio}, {side}")
            if not leg.exchange:
                return Code.VALIDATION_ERROR, (f"{VALIDATING}The combo details for leg '{i}' are invalid. - "
                                               "Missing leg exchange")
        contracts = [self.desk.catalog.domain_contract(leg.con_id) for leg in legs]
        if any(c is None or c.sec_type is not SecType.OPTION for c in contracts):
            return Code.NO_SECURITY_DEFINITION, NO_DEFINITION
        symbols = sorted({c.symbol for c in contracts})
        if symbols != [req.contract.symbol.upper()]:
            return Code.CONTRACT_CONFLICT, ("Parameters in request conflicts with contract parameters received by "
                                            f"contract id:Requested symbol {req.contract.symbol}, in legs "
                                            f"{','.join(symbols)}")
        if reduce(gcd, (leg.ratio for leg in legs)) > 1:
            return Code.VALIDATION_ERROR, f"{VALIDATING}Invalid leg ratio."
        return None

    def _order_refusal(self, req: P.PlaceOrder) -> tuple[int, str] | None:
        reason = self.desk._validate(req)
        if not reason and req.order_type != "LMT":
            reason = "the practice gateway takes combo orders at a net limit (LMT) only"
        if not reason and not req.transmit:
            reason = "the practice gateway transmits every order"
        return (Code.ORDER_REJECTED, f"Order rejected - reason:{reason}") if reason else None

    def send_open(self, s: Session, only_mine: bool) -> None:
        """The working combo orders (of this client when `only_mine`), for reqOpenOrders / reqAllOpenOrders."""
        for b in self.bags.values():
            if b.working and (not only_mine or b.view.client_id == s.client_id):
                s.send(b.open_message())
                s.send(P.order_status(b.view))

    def send_completed(self, s: Session) -> None:
        for b in self.bags.values():
            if not b.working:
                s.send(b.completed_message())

    # --------------------------------------------------------------------------------- cancel
    def cancel(self, session: Session | None, order_id: int, client_id: int) -> None:
        bag = self.bags[self.by_key[(client_id, order_id)]]
        if not bag.working:
            orders.refuse_cancel(session, order_id, bag.view.status)
            return
        bag.cancel_requested = True
        self.desk.world.exchange.cancel(bag.order.client_order_id)

    def cancel_all(self) -> int:
        working = [b for b in self.bags.values() if b.working]
        for b in working:
            self.cancel(self.desk.sessions.get(b.view.client_id), b.view.order_id, b.view.client_id)
        return len(working)

    # ------------------------------------------------------------------------ exchange events
    def on_exchange_event(self, event: OrderEvent | Fill) -> None:
        coid = event.client_order_id
        if not coid.startswith("bag"):
            return
        bag = self.bags.get(int(coid[3:]))
        if bag is None:
            return
        if isinstance(event, Fill):
            self._on_leg_fill(bag, event)
        else:
            self._on_package(bag, event)

    def _send(self, bag: IbBag, *messages: list) -> None:
        self.desk.send_to(bag.view.client_id, *messages)

    def _exec(self, bag: IbBag, contract: WireContract, at: datetime, side: Side, qty: float, price: float,
              cum: float, avg: float, commission: float, realized: float | None, exchange: str) -> ExecView:
        v = bag.view
        e = ExecView(f"0000{v.perm_id:x}.{next(self.desk._exec_seq):08x}.01.01", v.order_id, v.client_id,
                     v.perm_id, contract, at, v.account, exchange, "BOT" if side is Side.BUY else "SLD", float(qty),
                     price, cum, avg, v.order_ref, 2, round(commission, 4), realized)
        self.desk.executions.append(e)
        return e

    def _on_leg_fill(self, bag: IbBag, fill: Fill) -> None:
        cid = fill.contract.contract_id
        bag.leg_filled[cid] = bag.leg_filled.get(cid, 0.0) + fill.quantity
        bag.leg_notional[cid] = bag.leg_notional.get(cid, 0.0) + fill.quantity * fill.price
        cum = bag.leg_filled[cid]
        e = self._exec(bag, wire_of(fill.contract, "SMART"), fill.timestamp, fill.side, fill.quantity, fill.price,
                       cum, round(bag.leg_notional[cid] / cum, 6), fill.commission,
                       self.desk.book.realized_by_fill.get(fill.fill_id), "CBOE")
        self._send(bag, P.exec_details(-1, e), P.commission_report(e))
        self.desk.book.broadcast_position(cid)

    def _on_package(self, bag: IbBag, e: OrderEvent) -> None:
        v = bag.view
        reason = e.reason or ""
        if reason.startswith("cancel rejected"):
            self._send(bag, P.error(v.order_id, Code.CANCEL_NOT_ALLOWED, f"Error validating request: {reason}"))
            return
        if e.status is OrderStatus.REJECTED:
            self._finish(bag, "Cancelled", f"Rejected: {reason}")
            self._send(bag, P.error(v.order_id, Code.ORDER_REJECTED, f"Order rejected - reason:{reason}"),
                       P.order_status(v))
            return
        if e.status is OrderStatus.CANCELLED:
            self._finish(bag, "Cancelled", "Cancelled")
            why = "" if bag.cancel_requested else reason
            self._send(bag, P.error(v.order_id, Code.ORDER_CANCELLED, f"Order Canceled - reason:{why}"),
                       P.order_status(v))
            return
        if e.filled_quantity > v.filled:                     # a package fill: the BAG's execution, then its state
            done = e.filled_quantity - v.filled
            notional = e.filled_quantity * e.avg_fill_price
            price = round((notional - bag.notional) / done, 6)
            bag.notional = notional
            v.filled, v.avg_fill_price, v.last_fill_price = float(e.filled_quantity), e.avg_fill_price, price
            x = self._exec(bag, v.contract, e.timestamp, Side(v.action), done, price, v.filled, v.avg_fill_price,
                           0.0, None, "SMART")
            if e.status is OrderStatus.FILLED:
                self._finish(bag, "Filled", "Filled", e.timestamp)
            else:
                v.status = "Submitted"
            self._send(bag, P.exec_details(-1, x), P.order_status(v))
            if v.status == "Filled":
                self._send(bag, bag.open_message())
            return
        if e.status is OrderStatus.SUBMITTED and v.status == "PreSubmitted":
            v.status = "Submitted"
            self._send(bag, bag.open_message(), P.order_status(v))

    def _finish(self, bag: IbBag, status: str, completed: str, at: datetime | None = None) -> None:
        v = bag.view
        v.status, v.completed_status = status, completed
        v.completed_time = P.ib_time(at or self.desk.now())


def net_quote(legs: list[WireLeg], bids: list[float], asks: list[float], bid_sizes: list[int],
              ask_sizes: list[int]) -> tuple[tuple[float, int], tuple[float, int]]:
    """The package's (bid, size) and (ask, size) from its legs' quotes; (-1, 0) for a side a leg cannot fill."""
    bid = ask = 0.0
    bid_size = ask_size = 10**9
    bid_ok = ask_ok = True
    for leg, b, a, bs, as_ in zip(legs, bids, asks, bid_sizes, ask_sizes):
        w = leg.ratio * (1 if leg.action == "BUY" else -1)
        sell_px, sell_sz, buy_px, buy_sz = (b, bs, a, as_) if w > 0 else (a, as_, b, bs)
        bid_ok &= sell_px > 0 and sell_sz > 0 and math.isfinite(sell_px)
        ask_ok &= buy_px > 0 and buy_sz > 0 and math.isfinite(buy_px)
        bid += w * sell_px
        ask += w * buy_px
        bid_size = min(bid_size, int(sell_sz) // leg.ratio)
        ask_size = min(ask_size, int(buy_sz) // leg.ratio)
    return ((round(bid, 2), bid_size) if bid_ok and bid_size > 0 else (-1.0, 0),
            (round(ask, 2), ask_size) if ask_ok and ask_size > 0 else (-1.0, 0))


# ------------------------------------------------------------------------------------- handlers
def place_order(s: Session, f: list[str]) -> None:                 # placeOrder [3, ...]: a BAG's legs follow
    req = P.parse_place_order(f)
    if req.contract.sec_type == "BAG":
        s.gw.combos.place(s, req, f)
    else:
        s.gw.desk.place_order(s, req)


def cancel_order(s: Session, f: list[str]) -> None:                # cancelOrder [4, 1, orderId, manualCancelTime]
    if s.gw.combos.owns(s.client_id, int(f[2])):
        s.gw.combos.cancel(s, int(f[2]), s.client_id)
    else:
        orders.cancel_order(s, f)


def global_cancel(s: Session, f: list[str]) -> None:               # reqGlobalCancel: single orders and combos
    orders.global_cancel(s, f)
    s.gw.combos.cancel_all()


HANDLERS: dict[int, Handler] = {3: place_order, 4: cancel_order, 58: global_cancel}
