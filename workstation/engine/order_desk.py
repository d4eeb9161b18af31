"""The order desk: build, price, check and route every order — signal entries, the trader's tickets, exits and
hedges all take this one path to the broker:

    build_order (our next client id, a limit from the quote and the model)
      -> preview (risk.pre_trade.check against the risk context: book, working orders, limits, market)
      -> route (denied: journaled with its reasons and alerted; approved: journaled, then sent as a task).
"""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

from .. import bus as topics
from ..bus import EventBus
from ..config import Settings
from ..domain import Contract, Order, OrderPurpose, OrderType, SecType, Severity, Side
from ..domain.combos import Combo, ComboOrder
from ..domain.ticks import FUTURE_TICK
from ..events import OrderPreview
from ..execution.combo_desk import ComboDesk
from ..execution.orders import OrderManager, OrderRecord
from ..execution.pricing_rules import initial_limit, reprice_bound
from ..portfolio.book import Book, trading_day_of
from ..portfolio.greeks import DollarGreeks
from ..analytics.views import book_items
from ..risk import buckets, margin
from ..risk.combo_checks import check_combo
from ..risk.limits import RiskCode, RiskDecision
from ..risk.pre_trade import ContractMarket, DailyMoves, RiskContext, check
from ..sizing import PREVIEW_ID
from .market_view import AlertSink, MarketView
from .supervisor import RiskSupervisor

RECENT_ORDERS_S = 60.0
Spawn = Callable[[Awaitable[Any], str], Any]


def no_order(message: str) -> OrderPreview:
    """A preview with no order behind it: why nothing can be sent."""
    return OrderPreview(None, None, math.nan, math.nan, math.nan, message=message)


class OrderDesk:
    """Every order's one path: build, price, check, journal, send; and the trader's manual tickets."""

    def __init__(self, settings: Callable[[], Settings], clock: Callable[[], datetime], market: MarketView,
                 book: Book, orders: OrderManager, supervisor: RiskSupervisor, bus: EventBus, alert: AlertSink,
                 spawn: Spawn, connection: str, model_params: Callable[[], Any]) -> None:
        self._settings, self.clock, self.market, self.book = settings, clock, market, book
        self.orders, self.supervisor, self.bus, self.alert, self.spawn = orders, supervisor, bus, alert, spawn
        self.connection = connection
        self.model_params = model_params          # the last good fit (for the VaR what-if's daily moves)
        self._denied_until: dict[tuple, datetime] = {}
        self.combos: ComboDesk | None = None      # set when the broker takes combo orders

    @property
    def read_only(self) -> bool:
        return not self._settings().execution.trading_enabled

    # ------------------------------------------------------------ the context every check reads
    def risk_context(self, market: ContractMarket | None) -> RiskContext:
        now = self.clock()
        settings = self._settings()
        working = self.orders.working()
        cutoff = now - timedelta(seconds=max(RECENT_ORDERS_S, settings.risk.duplicate_window_s))
        recent = [r.order for r in self.orders.records.values()      # sent lately (risk denials never left)
                  if r.order.created_at is not None and r.order.created_at >= cutoff and not r.risk_codes]
        risk_cfg = settings.risk
        if self.connection == "simulated" and settings.market.simulator.always_open:
            risk_cfg = risk_cfg.model_copy(update={"enforce_trading_hours": False})
        pending = DollarGreeks()            # working orders (approved this cycle included) as if they filled
        pending_items = []
        for r in working:
            m = self.market.market_for(r.order.contract)
            if m is not None and r.remaining > 0:
                greeks = m.greeks.scaled(r.order.side.sign * r.remaining)
                pending = pending + greeks
                pending_items.append((r.order.contract.expiry, greeks))
        return RiskContext(
            settings=risk_cfg, now=now, trading_state=self.supervisor.state, positions=self.book.positions,
            open_orders=[r.order for r in working], filled={r.order.client_order_id: r.filled for r in working},
            recent_orders=recent, market=market, portfolio_greeks=self.book.greeks, day_pnl=self.book.day_pnl,
            buying_power_used=self._margin_used(), marks=self.book.marks,
            trading_enabled=not self.read_only, pending_greeks=pending, var99=self.supervisor.var99,
            daily_moves=self._daily_moves(),
            bucket_greeks=buckets.by_bucket(book_items(self.book) + pending_items, trading_day_of(now)))

    def _daily_moves(self) -> DailyMoves | None:
        """One-day spreads of the index and of implied vol from the fitted model (for the VaR what-if)."""
        good = self.model_params()
        if good is None:
            return None
        params = good.heston      # the diffusion in force today (any calibration.model)
        v0, sigma, rho = float(params.v0), float(params.sigma), float(params.rho)
        day = 1.0 / 252.0
        return DailyMoves(spot_pct=100.0 * math.sqrt(max(v0, 0.0) * day),
                          vol_points=100.0 * 0.5 * sigma * math.sqrt(day), correlation=rho)

    def _margin_used(self) -> float:
        legs = [margin.Leg(p.contract, p.quantity, self.book.mark_of(cid))
                for cid, p in self.book.positions.items() if p.quantity]
        snap = self.market.snapshot
        if not legs or snap is None:
            return 0.0
        return margin.estimate(legs, snap.underlying_price, self._settings().risk.future_margin_rate).margin

    # ------------------------------------------------------------ build, check, route
    def build_order(self, contract: Contract, side: Side, quantity: int, limit_price: float | None,
                    purpose: OrderPurpose, signal_id: str | None = None, preview: bool = False
                    ) -> tuple[Order | None, ContractMarket | None, str]:
        """An order with our next client id (PREVIEW_ID for a preview: no id is used up); limit from
        mid/model when `limit_price` is None."""
        market = self.market.market_for(contract)
        if limit_price is None:
            if market is None:
                return None, None, "no market for this contract"
            limit_price = initial_limit(side, market.bid, market.ask, self._price_cap(purpose, market),
                                        self._settings().execution.aggressiveness,
                                        tick=FUTURE_TICK if contract.sec_type is SecType.FUTURE else None)
        try:
            client_order_id = PREVIEW_ID if preview else self.orders.new_client_order_id()
        except Exception as exc:        # ids come from the journal: no record, no order
            self.supervisor.journal_failed("client order id", exc)
            return None, market, f"not sent: the journal could not give an order id ({exc})"
        try:
            order = Order(client_order_id, contract, side, int(quantity), OrderType.LIMIT,
                          float(limit_price), self.clock(), purpose, signal_id,
                          market.model_price if market else None)
        except (ValueError, TypeError) as exc:
            return None, market, f"bad order: {exc}"
        return order, market, ""

    @staticmethod
    def _price_cap(purpose: OrderPurpose, market: ContractMarket) -> float:
        """Entries never pay past the model (that is the edge); exits and hedges must get done: no cap."""
        return market.model_price if purpose in (OrderPurpose.SIGNAL, OrderPurpose.MANUAL) else math.nan

    def preview(self, order: Order, market: ContractMarket | None) -> OrderPreview:
        """The pre-trade decision for `order` (nothing is sent, nothing journaled)."""
        decision = check(order, self.risk_context(market))
        mid = market.mid if market else math.nan
        model = market.model_price if market else math.nan
        edge = (model - order.limit_price) * order.side.sign * order.contract.multiplier * order.quantity \
            if order.limit_price is not None and math.isfinite(model) else math.nan     # per order
        return OrderPreview(order, decision, model, mid, edge)

    def route(self, order: Order, market: ContractMarket | None) -> OrderPreview:
        """Check `order` and, when approved, journal it and send it (the send runs as a task)."""
        pv = self.preview(order, market)
        self.bus.publish(topics.RISK_DECISION, pv.decision)
        if RiskCode.VAR_LIMIT in pv.decision.reasons:
            self.supervisor.revalue_now = True   # the linearised what-if bound: a full revaluation next, at once
        if not pv.approved:
            try:
                self.orders.record_denied(order, pv.decision)
            except Exception as exc:
                self.supervisor.journal_failed(f"denied order {order.client_order_id}", exc)
            codes = ", ".join(c.value for c in pv.decision.reasons)
            self.alert("RISK_DENIED", Severity.WARNING,
                       f"{order.purpose.value} order {order.side.value} {order.quantity} "
                       f"{order.contract.description} denied: {codes}")
            return replace(pv, message=f"denied: {codes}")
        bound = math.nan
        if market is not None:
            bound = reprice_bound(order.side, market.bid, market.ask, self._price_cap(order.purpose, market),
                                  self._settings().execution.max_slippage)
        try:
            self.orders.register(order, pv.decision, bound)     # journaled before it is sent, or not sent
        except Exception as exc:
            self.supervisor.journal_failed(f"order {order.client_order_id}", exc)
            return replace(pv, message=f"not sent: the journal could not record it ({exc})")
        self.spawn(self.orders.place(order), f"place {order.client_order_id}")
        return replace(pv, sent=True, message="sent")

    def slice_and_route(self, contract: Contract, side: Side, quantity: int, limit_price: float | None,
                        purpose: OrderPurpose, mark: float) -> OrderPreview:
        """An exit or a hedge: the largest slice the order limits allow (the rest follows in later cycles),
        built and routed."""
        quantity = self.supervisor.room(set()).slice(contract, quantity, mark)
        order, market, why = self.build_order(contract, side, quantity, limit_price, purpose)
        if order is None:
            return no_order(why)
        return self.route(order, market)

    # ------------------------------------------------------------ structures (combos)
    def check_combo(self, order: ComboOrder, ctx: RiskContext | None = None) -> RiskDecision:
        """Every pre-trade check on the package as a whole (a leg with no market: NaN, so its checks fail);
        `ctx`: a risk context already built this cycle (sizing checks many quantities against one)."""
        markets = []
        for leg in order.combo.legs:
            m = self.market.market_for(leg.contract)
            markets.append(m if m is not None else ContractMarket(greeks=DollarGreeks(*(math.nan,) * 4)))
        return check_combo(order, ctx if ctx is not None else self.risk_context(None), markets)

    def send_combo(self, combo: Combo, side: Side | str, quantity: int, limit_price: float,
                   purpose: OrderPurpose = OrderPurpose.MANUAL) -> RiskDecision | str:
        """A combo order at a net limit with our next client id: checked, and when approved journaled and sent
        by the combo desk (a task). The decision, or why no order could be made."""
        if self.combos is None:
            return "this broker does not take combo orders"
        try:
            client_order_id = self.orders.new_client_order_id()
        except Exception as exc:        # ids come from the journal: no record, no order
            self.supervisor.journal_failed("client order id", exc)
            return f"not sent: the journal could not give an order id ({exc})"
        try:
            order = ComboOrder(client_order_id, combo, Side(side), int(quantity), float(limit_price), self.clock(),
                               purpose)
        except (ValueError, TypeError) as exc:
            return f"bad combo order: {exc}"
        decision = self.check_combo(order)
        self.bus.publish(topics.RISK_DECISION, decision)
        if not decision.approved:
            codes = ", ".join(c.value for c in decision.reasons)
            self.alert("RISK_DENIED", Severity.WARNING, f"combo {order.side.value} {order.quantity} "
                                                          f"{combo.description} denied: {codes}")
        self.spawn(self.combos.send(order), f"combo {client_order_id}")   # journals a denial too; sends if approved
        return decision

    async def work_orders(self, now: datetime) -> None:
        """Work the single orders (repricing, timeouts); cancel signal packages working longer than
        `execution.order_timeout_s` (a package is not repriced)."""
        await self.orders.work_orders(now)
        if self.combos is None:
            return
        for client_order_id in self.combos.timed_out(now, self._settings().execution.order_timeout_s):
            self.spawn(self.combos.cancel(client_order_id), f"cancel {client_order_id} (timed out)")

    # ------------------------------------------------------------ retrying denied exits and hedges
    def may_retry(self, key: tuple, now: datetime) -> bool:
        """False while an exit/hedge for `key` was denied less than risk.retry_denied_s ago."""
        until = self._denied_until.get(key)
        return until is None or now >= until

    def denied(self, key: tuple, now: datetime) -> None:
        self._denied_until[key] = now + timedelta(seconds=self._settings().risk.retry_denied_s)

    # ------------------------------------------------------------ the trader's tickets
    def preview_order(self, contract_id: int, side: Side | str, quantity: int, limit_price: float | None,
                      preview: bool = True) -> OrderPreview:
        contract = self.market.contract_by_id(contract_id)
        if contract is None:
            return no_order(f"unknown contract {contract_id}")
        try:
            side = Side(side)
        except ValueError:
            return no_order(f"bad side {side!r}")
        order, market, why = self.build_order(contract, side, quantity, limit_price, OrderPurpose.MANUAL,
                                              preview=preview)
        if order is None:
            return no_order(why)
        return self.preview(order, market)

    def submit_order(self, contract_id: int, side: Side | str, quantity: int, limit_price: float | None
                     ) -> OrderPreview:
        pv = self.preview_order(contract_id, side, quantity, limit_price, preview=False)
        if pv.order is None:
            return pv
        return self.route(pv.order, self.market.market_for(pv.order.contract))

    def close_position(self, contract_id: int, quantity: int | None = None) -> OrderPreview:
        pos = self.book.position(contract_id)
        if pos is None or not pos.quantity:
            return no_order("no position to close")
        qty = min(abs(pos.quantity), quantity or abs(pos.quantity))
        side = Side.SELL if pos.quantity > 0 else Side.BUY
        return self.slice_and_route(pos.contract, side, qty, None, OrderPurpose.EXIT, self.book.mark_of(contract_id))

    async def cancel_all(self) -> int:
        """Cancel every working single order and combo package (the kill switch, the shutdown's cancels); how many
        cancels were sent. A package left working at the broker would fill with no one to journal it."""
        n = await self.orders.cancel_all()
        if self.combos is not None:
            n += await self.combos.cancel_all()
        return n

    def any_working(self) -> bool:
        """A single order or a combo package still working (its cancel not yet acknowledged)."""
        return bool(self.orders.working()) or bool(self.combos is not None and self.combos.working)

    def cancel_order(self, client_order_id: str) -> None:
        self.spawn(self.orders.cancel(client_order_id), f"cancel {client_order_id}")

    def modify_order(self, client_order_id: str, limit_price: float | None = None, quantity: int | None = None
                     ) -> None:
        self.spawn(self.orders.modify(client_order_id, limit_price, quantity), f"modify {client_order_id}")

    def order_records(self) -> list[OrderRecord]:
        return list(self.orders.records.values())
