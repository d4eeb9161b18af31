"""Reconciling with Interactive Brokers after a connect, a reconnect or IB's return (1101/1102).

`Reconciling` is the half of `IBBroker` that reads open orders, positions and today's executions back from the
broker and delivers what we missed: executions as fills (each once, by execId), orders that finished while away
as their last state (a combo in packages at its net price, from its legs' fills), one live order per client order
id (a second live copy is cancelled), and the fate of a modify not acknowledged before the link dropped. It uses
the broker's state and ib_async objects as the broker hands them in (no ib_async import here).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from workstation.domain import Fill, Order, OrderEvent, OrderStatus
from workstation.execution.ib_combos import package_fills
from workstation.market.ib_session import IBErrorInfo

log = logging.getLogger(__name__)


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


class Reconciling:
    """The reconcile half of IBBroker: open orders, positions and today's executions read back after a (re)connect."""

    async def reconcile(self) -> ReconcileReport:
        """Open orders, positions and today's executions from the broker; deliver what we missed."""
        if not self.ib.isConnected():       # ib_async's caches were emptied with the socket: nothing to read back
            raise ConnectionError("not connected to TWS/Gateway: nothing to reconcile against")
        now = self.conn.now()
        start_of_day = now - timedelta(hours=24)
        # only orders working before we ask can have closed while we were away: one sent while the reconcile's
        # requests are on their way is not in the open orders read back, and is not "closed"
        working_before = {coid for coid, last in self._last_event.items() if last[0].is_working}
        # open orders before executions: an order that fills between the two reads is then found filled; the other
        # way round it was in neither list and was reported cancelled
        open_orders = await self.open_orders()
        executions = await self.fills_since(start_of_day)
        positions = await self.positions()
        for o in open_orders:
            self._sent.add(o.client_order_id)
        self._sent |= self._open_combo_refs
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
        working_now = {o.client_order_id for o in open_orders} | self._open_combo_refs
        closed = []
        for coid, last in list(self._last_event.items()):
            if coid in working_before and last[0].is_working and coid not in working_now:
                closed.append(coid)
                done = [f for f in executions if f.client_order_id == coid]
                filled = sum(f.quantity for f in done)
                avg = sum(f.price * f.quantity for f in done) / filled if filled else math.nan
                order = self._orders.get(coid) or self._combos.get(coid)
                if coid in self._combos:
                    filled, avg = package_fills(self._combos[coid], done)     # in packages, at the net price
                total = order.quantity if order else filled
                status = OrderStatus.FILLED if filled >= total and filled > 0 else OrderStatus.CANCELLED
                self._last_event[coid] = (status, filled, last[2], last[3])
                self._emit(OrderEvent(coid, status, now, filled, 0, avg, "reconciled after reconnect", "",
                                      last[2]))
        foreign = [o.client_order_id for o in open_orders if o.client_order_id not in self._orders] + \
            sorted(ref for ref in self._open_combo_refs if ref not in self._combos)
        report = ReconcileReport(now, open_orders, positions, executions, missed, closed, foreign)
        self.last_reconcile = report
        log.info("IB reconcile: %d open orders, %d positions, %d executions, %d missed fills, %d closed away",
                 len(open_orders), len(positions), len(executions), len(missed), len(closed))
        self.on_reconcile(report)
        return report

    def _one_live_order_per_id(self) -> dict[str, Any]:
        """Working orders at the broker by our client order id; a second live copy of one id (a modify that
        arrived as a new order) is cancelled, the oldest is kept."""
        by_ref: dict[str, list[Any]] = {}
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

    def _resolve_modifies(self, live: dict[str, Any], now: datetime) -> None:
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
