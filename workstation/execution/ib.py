"""IBBroker: the Broker protocol on Interactive Brokers (TWS / IB Gateway / the practice gateway) with ib_async.

- Limit (and market) orders for options (SMART, multiplier 100) and the hedge future (CME), our client order id in
  `orderRef`: an id already sent (or seen at the broker) is never sent again.
- TWS statuses map to our OrderEvents (PreSubmitted/Submitted -> SUBMITTED or PARTIALLY_FILLED, Filled,
  Cancelled, and an order cancelled by an error such as 201 -> REJECTED with IB's text); each execution becomes
  one Fill (fill_id = IB execId) once its commission report arrives (the translation: `execution.ib_events`).
- On connect and after every reconnect: reconcile open orders, positions and today's executions; missed fills and
  status changes are delivered through the callbacks, the report goes to `on_reconcile`.
- Connection state to `on_connection` (the engine goes HALTED while disconnected), IB errors to `on_error`.
  1100 (IB lost, socket up) is a disconnect ("IB connectivity lost"); after 1101/1102 the broker reconciles
  first and only then reports itself connected again.
- Combo orders (`place_combo`): a BAG of the legs (SMART, each leg by conId, ratio, side) at the net limit, the same
  orderRef idempotence; the package's status maps to its OrderEvents, each leg's execution to one Fill under the
  combo's id with the leg's contract (the BAG's own execution is not a fill); reconcile delivers missed leg fills.
- A new order TWS refuses with a "warning" code (321: ib_async leaves it alive as ValidationError) is REJECTED.
- A modify not acknowledged before a disconnect is never sent again: after the reconnect the broker's open order
  (found by orderRef, one live order per client order id) says what happened; extra live copies are cancelled.
Shares the IBConnection of the feed (one socket, one client id).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from ib_async import ExecutionFilter, Fill as IBFill, LimitOrder, MarketOrder, Trade

from workstation.domain import Contract, Fill, Order, OrderEvent, OrderStatus, OrderType, Side
from workstation.domain.combos import ComboOrder
from workstation.execution.ib_combos import BAG
from workstation.execution.ib_events import (CANCELLED, WORKING, average_price, execution_fill,  # noqa: F401
                                             order_event)
from workstation.execution.ib_reconcile import ReconcileReport, Reconciling  # noqa: F401  (the report: importable here)
from workstation.market.ib_session import (ConnectionState, IBConnection, IBErrorInfo, bag_contract, domain_contract,
                                           ib_contract)
from workstation.market.ib_codes import REJECT_CODES, Code  # noqa: F401  (REJECT_CODES: kept importable here)
from workstation.listeners import Listeners

log = logging.getLogger(__name__)

_average = average_price      # its old name


class IBBroker(Reconciling):
    """Orders to Interactive Brokers through a (shared) IBConnection."""

    name = "ib"

    def __init__(self, settings, connection: IBConnection | None = None) -> None:
        self.settings = settings
        self.conn = connection or IBConnection(settings)
        self.on_order_event = Listeners("order event callback")
        self.on_fill = Listeners("fill callback")
        self.on_error = Listeners("IB error callback")              # IBErrorInfo
        self.on_connection = Listeners("connection callback")    # (up, message)
        self.on_reconcile = Listeners("reconcile callback")      # ReconcileReport
        self.last_reconcile: ReconcileReport | None = None
        self.position_contracts: dict[int, Contract] = {}   # contracts of the broker's positions (last read)
        self._orders: dict[str, Order] = {}          # our client order id -> order as placed
        self._trades: dict[str, Trade] = {}          # our client order id -> ib_async trade
        self._combos: dict[str, ComboOrder] = {}     # our combo orders by client order id
        self._open_combo_refs: set[str] = set()      # orderRefs of the BAG orders working at the broker (last read)
        self._sent: set[str] = set()                 # client order ids ever sent or seen at the broker
        self._last_event: dict[str, tuple] = {}
        self._delivered: set[str] = set()            # execIds delivered as Fills
        self._exec_ref: dict[str, str] = {}          # execId -> client order id
        self._pending_modify: dict[str, tuple[float | None, int, int]] = {}   # sent, not acknowledged: price,
        #                                                                         quantity, session it was sent in
        self._connected = False
        self._subscribed = False
        self._link_epoch = 0
        self.conn.on_state.append(self._on_state)
        self.conn.on_error.append(self._on_error)
        self.conn.on_reconnected.append(self._after_reconnect)
        self.conn.on_restored.append(self._after_restored)

    @property
    def ib(self):
        return self.conn.ib

    @property
    def connected(self) -> bool:
        return self._connected and self.conn.connected

    # ---------------------------------------------------------------------------- lifecycle
    async def connect(self) -> None:
        if self._connected:
            return
        await self.conn.connect()
        self._subscribe()
        self._connected = True
        if self.conn.state is ConnectionState.IB_LOST:        # TWS up, IB not (1100 with the handshake)
            self._notify_connection(False, "IB connectivity lost")
        else:
            self._notify_connection(True, "connected")
        await self.reconcile()

    async def close(self) -> None:
        if not self._connected:
            return
        self._connected = False
        self._unsubscribe()
        await self.conn.close()
        self._notify_connection(False, "closed")

    def _subscribe(self) -> None:
        if self._subscribed:
            return
        self.ib.orderStatusEvent += self._on_status
        self.ib.openOrderEvent += self._on_status
        self.ib.commissionReportEvent += self._on_commission
        self._subscribed = True

    def _unsubscribe(self) -> None:
        if not self._subscribed:
            return
        self.ib.orderStatusEvent -= self._on_status
        self.ib.openOrderEvent -= self._on_status
        self.ib.commissionReportEvent -= self._on_commission
        self._subscribed = False

    def _notify_connection(self, up: bool, message: str) -> None:
        self.on_connection(up, message)

    def _on_state(self, state: ConnectionState, message: str) -> None:
        if state in (ConnectionState.RECONNECTING, ConnectionState.DISCONNECTED, ConnectionState.IB_LOST):
            self._link_epoch += 1
        if not self._connected:
            return
        if state in (ConnectionState.RECONNECTING, ConnectionState.DISCONNECTED):
            self._notify_connection(False, message or state.value)
        elif state is ConnectionState.IB_LOST:
            self._notify_connection(False, "IB connectivity lost")

    async def _after_reconnect(self) -> None:
        if not self._connected:
            return
        self._trades.clear()        # ib_async starts afresh; reconcile finds our trades again by orderRef
        await self.reconcile()
        if self.conn.state is ConnectionState.IB_LOST:      # TWS is back but without IB: wait for 1101/1102
            return
        self._notify_connection(True, f"reconnected (#{self.conn.reconnects})")

    async def _after_restored(self, data_lost: bool) -> None:
        """1101/1102: orders may have filled or died while IB was away: reconcile, then report connected."""
        if not self._connected:
            return
        try:
            await self.reconcile()
        except Exception as exc:        # TWS not answering yet: the engine stays HALTED, its own reconcile retries
            log.warning("reconcile after IB restore failed: %r", exc)
        code = Code.RESTORED_DATA_LOST if data_lost else Code.RESTORED_DATA_KEPT
        self._notify_connection(True, f"IB connectivity restored ({code})")

    def _on_error(self, info: IBErrorInfo) -> None:
        self.on_error(info)

    # ------------------------------------------------------------------------------- orders
    def _emit(self, event: OrderEvent) -> None:
        self.on_order_event(event)

    def _emit_fill(self, fill: Fill) -> None:
        if fill.fill_id in self._delivered:
            return
        self._delivered.add(fill.fill_id)
        self.on_fill(fill)

    async def place(self, order: Order) -> None:
        if not self._may_send(order.client_order_id, order.limit_price):
            return
        action = order.side.value
        if order.order_type is OrderType.LIMIT:
            ib_order = LimitOrder(action, order.quantity, float(order.limit_price))
        else:
            ib_order = MarketOrder(action, order.quantity)
        self._orders[order.client_order_id] = order
        self._send(order.client_order_id, ib_contract(order.contract), ib_order)

    async def place_combo(self, order: ComboOrder) -> None:
        """A combo limit order at its net price: a BAG of its legs, our client order id in orderRef."""
        if not self._may_send(order.client_order_id, order.limit_price):
            return
        self._combos[order.client_order_id] = order
        self._send(order.client_order_id, bag_contract(order.combo),
                   LimitOrder(order.side.value, order.quantity, float(order.limit_price)))

    def adopt_combos(self, orders: list[ComboOrder]) -> None:
        """Combo orders sent before a restart (from the journal): their BAG orders and leg fills are ours."""
        for order in orders:
            self._combos.setdefault(order.client_order_id, order)

    def _may_send(self, coid: str, limit: float | None) -> bool:
        """False (and why, to the callbacks) when `coid` was sent before or the broker is not connected."""
        if coid in self._sent:
            log.warning("order %s was already sent to IB: not sending it again", coid)
            self._on_error(IBErrorInfo(0, f"duplicate order {coid} suppressed (already at the broker)", -1,
                                       self.conn.now(), True))
            return False
        if not self.connected:
            self._emit(OrderEvent(coid, OrderStatus.REJECTED, self.conn.now(), reason="broker not connected",
                                  limit_price=limit))
            return False
        return True

    def _send(self, coid: str, contract, ib_order) -> None:
        ib_order.orderRef = coid
        ib_order.tif = "DAY"
        ib_order.transmit = True
        if self.conn.account:
            ib_order.account = self.conn.account
        self._sent.add(coid)
        self.conn.floor_order_ids()
        trade = self.ib.placeOrder(contract, ib_order)
        self.conn.note_order_id(trade.order.orderId)
        self._trades[coid] = trade

    async def cancel(self, client_order_id: str) -> None:
        trade = self._trade(client_order_id)
        if trade is None or not self.connected:
            why = "broker not connected" if not self.connected else "unknown order"
            self._emit(OrderEvent(client_order_id, self._status_of(client_order_id), self.conn.now(),
                                  reason=f"cancel rejected: {why}"))
            return
        if trade.orderStatus.status not in WORKING:
            self._emit(OrderEvent(client_order_id, self._status_of(client_order_id), self.conn.now(),
                                  reason=f"cancel rejected: order is already {trade.orderStatus.status}"))
            return
        self.ib.cancelOrder(trade.order)

    async def modify(self, client_order_id: str, limit_price: float | None = None,
                     quantity: int | None = None) -> None:
        trade = self._trade(client_order_id)
        if trade is None or not self.connected or trade.orderStatus.status not in WORKING \
                or client_order_id in self._pending_modify:
            why = "broker not connected" if not self.connected else (
                "unknown order" if trade is None else
                "the last modify is not acknowledged yet" if client_order_id in self._pending_modify else
                f"order is already {trade.orderStatus.status}")
            self._emit(OrderEvent(client_order_id, self._status_of(client_order_id), self.conn.now(),
                                  reason=f"modify rejected: {why}"))
            return
        if limit_price is not None:
            trade.order.lmtPrice = float(limit_price)
        if quantity is not None:
            trade.order.totalQuantity = float(quantity)
        self._pending_modify[client_order_id] = (trade.order.lmtPrice, int(round(trade.order.totalQuantity)),
                                                 self._session())
        self.ib.placeOrder(trade.contract, trade.order)

    def _trade(self, coid: str) -> Trade | None:
        trade = self._trades.get(coid)
        if trade is not None:
            return trade
        for t in self.ib.trades():
            if t.order.orderRef == coid:
                self._trades[coid] = t
                return t
        return None

    def _status_of(self, coid: str) -> OrderStatus:
        last = self._last_event.get(coid)
        return last[0] if last else OrderStatus.REJECTED

    # ------------------------------------------------------------------------------- events
    def _event_for(self, trade: Trade) -> OrderEvent | None:
        return order_event(trade, self.conn.now())

    def _on_status(self, trade: Trade) -> None:
        event = self._event_for(trade)
        if event is None:
            return
        coid = event.client_order_id
        self.conn.note_order_id(trade.order.orderId)
        pending = self._pending_modify.get(coid)
        if pending is not None and pending[2] == self._session() and (
                trade.orderStatus.status in ("Submitted", "PreSubmitted") or not event.status.is_working):
            del self._pending_modify[coid]      # acknowledged in the session it was sent in (or the order is done)
        self._sent.add(coid)
        self._trades.setdefault(coid, trade)
        key = (event.status, event.filled_quantity, event.limit_price, trade.order.totalQuantity)
        if self._last_event.get(coid) == key:
            return
        self._last_event[coid] = key
        self._emit(event)

    def _fill_for(self, ib_fill: IBFill, contract=None) -> Fill | None:
        return execution_fill(ib_fill, contract, self._exec_ref, self._combos)

    def _on_commission(self, trade: Trade, ib_fill: IBFill, report) -> None:
        fill = self._fill_for(ib_fill, ib_fill.contract if trade.contract.secType == BAG else trade.contract)
        if fill is not None:
            self._emit_fill(fill)
            self._on_status(trade)

    # ---------------------------------------------------------------------------- the truth
    async def positions(self) -> dict[int, int]:
        if not self.conn.connected:
            return {p.contract.conId: int(p.position) for p in self.ib.positions() if p.position}
        await self.conn.pacer.wait()
        items = await asyncio.wait_for(self.ib.reqPositionsAsync(), self.settings.ib.connect_timeout_s)
        account = self.conn.account
        mine = [p for p in items if p.position and (not account or p.account == account)]
        for p in mine:
            try:
                self.position_contracts[p.contract.conId] = domain_contract(p.contract)
            except (ValueError, TypeError):
                log.debug("position contract %s not representable", p.contract)
        return {p.contract.conId: int(p.position) for p in mine}

    async def open_orders(self) -> list[Order]:
        if self.conn.connected:
            await self.conn.pacer.wait()
            trades = await asyncio.wait_for(self.ib.reqAllOpenOrdersAsync(), self.settings.ib.connect_timeout_s)
        else:
            trades = self.ib.openTrades()
        self._open_trades = [t for t in trades if t.orderStatus.status in WORKING]
        self._open_combo_refs = {t.order.orderRef or f"ib-{t.order.permId}" for t in self._open_trades
                                 if t.contract.secType == BAG}
        out = []
        for t in trades:
            if t.orderStatus.status not in WORKING and t.orderStatus.status != "ValidationError" \
                    or t.contract.secType == BAG:          # combos: in `_open_combo_refs`, not single orders
                continue
            o = t.order
            coid = o.orderRef or f"ib-{o.permId}"
            try:
                out.append(Order(coid, domain_contract(t.contract), Side(o.action), int(round(o.totalQuantity)),
                                 OrderType.LIMIT if o.orderType == "LMT" else OrderType.MARKET,
                                 o.lmtPrice if o.orderType == "LMT" else None))
            except ValueError as exc:
                log.warning("open order %s at IB not representable: %s", coid, exc)
        return out

    async def fills_since(self, since: datetime) -> list[Fill]:
        if not self.conn.connected:
            return [f for f in (self._fill_for(x) for x in self.ib.fills()) if f and f.timestamp >= since]
        await self.conn.pacer.wait()
        since_utc = since.astimezone(timezone.utc)
        flt = ExecutionFilter(time=since_utc.strftime("%Y%m%d %H:%M:%S UTC"))
        ib_fills = await asyncio.wait_for(self.ib.reqExecutionsAsync(flt), self.settings.ib.connect_timeout_s)
        known = {f.execution.execId: f for f in self.ib.fills()}   # carries the commission reports
        out = []
        for x in ib_fills:
            fill = self._fill_for(known.get(x.execution.execId, x), x.contract)
            if fill is not None and fill.timestamp >= since:
                out.append(fill)
        return out

    def _session(self) -> int:
        """Changes with every loss of the link (socket or 1100): an acknowledgement counts only within one."""
        return self._link_epoch

    async def executions_since(self, since: datetime) -> list[Fill]:
        """Executions at the broker since `since` (alias of fills_since for the journal)."""
        return await self.fills_since(since)

