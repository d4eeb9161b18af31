"""IBBroker: the Broker protocol on Interactive Brokers (TWS / IB Gateway / the practice gateway) with ib_async.

- Limit (and market) orders for options (SMART, multiplier 100) and the hedge future (CME), our client order id in
  `orderRef`: an id already sent (or seen at the broker) is never sent again.
- TWS statuses map to our OrderEvents (PreSubmitted/Submitted -> SUBMITTED or PARTIALLY_FILLED, Filled,
  Cancelled, and an order cancelled by an error such as 201 -> REJECTED with IB's text); each execution becomes
  one Fill (fill_id = IB execId) once its commission report arrives.
- On connect and after every reconnect: reconcile open orders, positions and today's executions; missed fills and
  status changes are delivered through the callbacks, the report goes to `on_reconcile`.
- Connection state to `on_connection` (the engine goes HALTED while disconnected), IB errors to `on_error`.
  1100 (IB lost, socket up) is a disconnect ("IB connectivity lost"); after 1101/1102 the broker reconciles
  first and only then reports itself connected again.
- A modify not acknowledged before a disconnect is never sent again: after the reconnect the broker's open order
  (found by orderRef, one live order per client order id) says what happened; extra live copies are cancelled.
Shares the IBConnection of the feed (one socket, one client id).
"""
from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ib_async import ExecutionFilter, Fill as IBFill, LimitOrder, MarketOrder, Trade

from workstation.domain import Contract, Fill, Order, OrderEvent, OrderStatus, OrderType, Side
from workstation.market.ib_session import ConnectionState, IBConnection, IBErrorInfo, domain_contract, ib_contract
from workstation.market.ib_codes import REJECT_CODES, Code  # noqa: F401  (REJECT_CODES: kept importable here)
from workstation.listeners import Listeners

log = logging.getLogger(__name__)

WORKING = {"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted", "PendingCancel"}
CANCELLED = {"Cancelled", "ApiCancelled", "Inactive"}


@dataclass(frozen=True)
class ReconcileReport:
    """What the broker says after a (re)connect, and what differed from what we knew."""

    at: datetime
    open_orders: list[Order]                    # working at the broker, ours and others (client id = orderRef)
    positions: dict[int, int]
    executions: list[Fill]                      # today's executions at the broker
    missed_fills: list[Fill]                    # executions we had not delivered: now delivered
    closed_while_away: list[str]                # our orders no longer working at the broker
    foreign_orders: list[str] = field(default_factory=list)   # working orders without one of our ids

    @property
    def clean(self) -> bool:
        return not (self.missed_fills or self.closed_while_away or self.foreign_orders)


class IBBroker:
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
        coid = order.client_order_id
        if coid in self._sent:
            log.warning("order %s was already sent to IB: not sending it again", coid)
            self._on_error(IBErrorInfo(0, f"duplicate order {coid} suppressed (already at the broker)", -1,
                                       self.conn.now(), True))
            return
        if not self.connected:
            self._emit(OrderEvent(coid, OrderStatus.REJECTED, self.conn.now(), reason="broker not connected",
                                  limit_price=order.limit_price))
            return
        action = order.side.value
        if order.order_type is OrderType.LIMIT:
            ib_order = LimitOrder(action, order.quantity, float(order.limit_price))
        else:
            ib_order = MarketOrder(action, order.quantity)
        ib_order.orderRef = coid
        ib_order.tif = "DAY"
        ib_order.transmit = True
        if self.conn.account:
            ib_order.account = self.conn.account
        self._sent.add(coid)
        self._orders[coid] = order
        self.conn.floor_order_ids()
        trade = self.ib.placeOrder(ib_contract(order.contract), ib_order)
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
        coid = trade.order.orderRef
        if not coid:
            return None
        st = trade.orderStatus
        filled = int(round(st.filled))
        total = int(round(trade.order.totalQuantity))
        reason = ""
        if st.status == "Filled":
            status = OrderStatus.FILLED
        elif st.status in CANCELLED:
            error = next((e for e in reversed(trade.log) if e.errorCode), None)
            if error is not None and error.errorCode != Code.ORDER_CANCELLED and filled == 0:
                status, reason = OrderStatus.REJECTED, f"IB {error.errorCode}: {error.message}"
            else:
                status, reason = OrderStatus.CANCELLED, "cancelled"
        elif st.status in WORKING or st.status == "ValidationError":
            if st.status in ("PendingSubmit", "ApiPending"):
                return None
            status = OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.SUBMITTED
        else:
            return None
        remaining = max(total - filled, 0) if status.is_working else 0
        avg = st.avgFillPrice if filled > 0 and st.avgFillPrice else math.nan
        limit = trade.order.lmtPrice if trade.order.orderType == "LMT" else None
        broker_id = str(trade.order.permId or st.permId or trade.order.orderId)
        return OrderEvent(coid, status, self.conn.now(), filled, remaining, avg, reason, broker_id, limit)

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
        ex = ib_fill.execution
        coid = ex.orderRef or self._exec_ref.get(ex.execId, "")
        if not coid:
            return None
        report = ib_fill.commissionReport
        commission = report.commission if report and report.execId and math.isfinite(report.commission) else 0.0
        when = ex.time if isinstance(ex.time, datetime) else ib_fill.time
        return Fill(ex.execId, coid, domain_contract(contract or ib_fill.contract),
                    Side.BUY if ex.side.upper() in ("BOT", "BUY") else Side.SELL, int(round(ex.shares)),
                    float(ex.price), when, float(commission),
                    {1: "maker", 2: "taker"}.get(ex.lastLiquidity, ""), {"perm_id": ex.permId})

    def _on_commission(self, trade: Trade, ib_fill: IBFill, report) -> None:
        fill = self._fill_for(ib_fill, trade.contract)
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
        out = []
        for t in trades:
            if t.orderStatus.status not in WORKING and t.orderStatus.status != "ValidationError":
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

    async def reconcile(self) -> ReconcileReport:
        """Open orders, positions and today's executions from the broker; deliver what we missed."""
        now = self.conn.now()
        start_of_day = now - timedelta(hours=24)
        executions = await self.fills_since(start_of_day)
        open_orders = await self.open_orders()
        positions = await self.positions()
        for o in open_orders:
            self._sent.add(o.client_order_id)
        for f in executions:
            self._sent.add(f.client_order_id)
        missed = [f for f in executions if f.fill_id not in self._delivered]
        for f in sorted(missed, key=lambda f: f.timestamp):
            self._emit_fill(f)
        live = self._one_live_order_per_id()
        self._resolve_modifies(live, now)
        for t in self.ib.trades():
            ref = t.order.orderRef
            if ref and (ref not in live or live[ref] is t):
                self._trades[ref] = t
                self._on_status(t)
        working_now = {o.client_order_id for o in open_orders}
        closed = []
        for coid, last in list(self._last_event.items()):
            if last[0].is_working and coid not in working_now:
                closed.append(coid)
                done = [f for f in executions if f.client_order_id == coid]
                filled = sum(f.quantity for f in done)
                order = self._orders.get(coid)
                total = order.quantity if order else filled
                status = OrderStatus.FILLED if filled >= total and filled > 0 else OrderStatus.CANCELLED
                self._last_event[coid] = (status, filled, last[2], last[3])
                avg = sum(f.price * f.quantity for f in done) / filled if filled else math.nan
                self._emit(OrderEvent(coid, status, now, filled, 0, avg, "reconciled after reconnect", "",
                                      last[2]))
        foreign = [o.client_order_id for o in open_orders if o.client_order_id not in self._orders]
        report = ReconcileReport(now, open_orders, positions, executions, missed, closed, foreign)
        self.last_reconcile = report
        log.info("IB reconcile: %d open orders, %d positions, %d executions, %d missed fills, %d closed away",
                 len(open_orders), len(positions), len(executions), len(missed), len(closed))
        self.on_reconcile(report)
        return report

    def _session(self) -> int:
        """Changes with every loss of the link (socket or 1100): an acknowledgement counts only within one."""
        return self._link_epoch

    def _one_live_order_per_id(self) -> dict[str, Trade]:
        """Working orders at the broker by our client order id; a second live copy of one id (a modify that
        arrived as a new order) is cancelled, the oldest is kept."""
        by_ref: dict[str, list[Trade]] = {}
        for t in getattr(self, "_open_trades", []):
            if t.order.orderRef:
                by_ref.setdefault(t.order.orderRef, []).append(t)
        live = {}
        for ref, trades in by_ref.items():
            trades.sort(key=lambda t: (t.order.permId or 0, t.order.orderId))
            live[ref] = trades[0]
            for extra in trades[1:]:
                log.error("order %s is live twice at IB (order ids %d and %d): cancelling the copy", ref,
                          trades[0].order.orderId, extra.order.orderId)
                self._on_error(IBErrorInfo(0, f"order {ref} was live twice at IB: copy {extra.order.orderId} "
                                              "cancelled", -1, self.conn.now(), False))
                self.ib.cancelOrder(extra.order)
        return live

    def _resolve_modifies(self, live: dict[str, Trade], now: datetime) -> None:
        """A modify sent before a disconnect and never acknowledged: the broker's open order is the truth (its
        limit and quantity reach the order manager); it is not sent again."""
        for coid in list(self._pending_modify):
            price, quantity, _ = self._pending_modify.pop(coid)
            trade = live.get(coid)
            if trade is None:
                continue                    # finished while away: the closed-orders pass reports it
            o = trade.order
            took = o.lmtPrice == price and int(round(o.totalQuantity)) == quantity
            log.info("modify of %s %s while disconnected: broker has limit %g x %d", coid,
                     "took effect" if took else "was lost", o.lmtPrice, int(round(o.totalQuantity)))
            event = self._event_for(trade)
            if event is not None:
                reason = f"modify {'confirmed' if took else 'not applied'} after reconnect"
                self._last_event[coid] = (event.status, event.filled_quantity, event.limit_price,
                                          trade.order.totalQuantity)
                self._emit(OrderEvent(coid, event.status, now, event.filled_quantity, event.remaining_quantity,
                                      event.avg_fill_price, reason, event.broker_order_id, event.limit_price))

    async def executions_since(self, since: datetime) -> list[Fill]:
        """Executions at the broker since `since` (alias of fills_since for the journal)."""
        return await self.fills_since(since)
