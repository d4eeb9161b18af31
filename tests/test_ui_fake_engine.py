"""A stand-in engine (the engine's GUI contract and bus topics, no numerics). Not used by the UI tests.

The UI tests no longer need it: test_ui_panels.py runs every panel on the real engine, simulator, paper broker
and journal with a manual clock (engine_support.SimRig) — fills, resting orders, denials, folded alerts and a
live-account label are all produced by the real components — and test_ui_window.py runs the free-running engine.
There is no deterministic UI edge case left that only this stand-in can produce.

It remains only because tests/test_backtest_gui.py::test_tools_menu_opens_the_backtest_window imports it to host
the Backtest window (that test only opens the dialog; the real engine from engine_support.SimRig works there too).
Once that test is switched, delete this module.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from workstation import bus as topics
from workstation.bus import EventBus
from workstation.config import Settings
from workstation.domain import (Alert, ChainSnapshot, Fill, HestonParams, Order, OrderEvent,
                                OrderPurpose, OrderStatus, Severity, Side, Signal, SignalState, TradingState)
from workstation.events import FitEvent, OrderPreview
from workstation.strategy.surface import ExpiryForward, Filter, Surface

NOW = datetime(2025, 10, 1, 15, 0, tzinfo=timezone.utc)
SPOT = 5900.0


@dataclass
class Check:
    name: str
    passed: bool
    code: str = ""
    detail: str = ""


@dataclass
class Decision:
    results: list[Check] = field(default_factory=list)

    @property
    def approved(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def reasons(self) -> list[str]:
        return [f"{r.code}: {r.detail}" for r in self.results if not r.passed]


def make_chain(expiry_days=(7, 30, 60, 120)) -> ChainSnapshot:
    strikes = np.arange(5400, 6401, 50, dtype=float)
    rows = []
    cid = itertools.count(1000)
    for d in expiry_days:
        for k in strikes:
            for call in (True, False):
                rows.append((next(cid), np.datetime64(NOW.date() + timedelta(days=d)), k, call))
    n = len(rows)
    cols = {"contract_id": np.array([r[0] for r in rows]), "trading_class": np.full(n, "SPXW"),
            "expiry": np.array([r[1] for r in rows], dtype="datetime64[D]"), "strike": np.array([r[2] for r in rows]),
            "is_call": np.array([r[3] for r in rows])}
    intrinsic = np.where(cols["is_call"], np.maximum(SPOT - cols["strike"], 0), np.maximum(cols["strike"] - SPOT, 0))
    mid = intrinsic + 20.0 + 0.01 * np.abs(cols["strike"] - SPOT)
    cols.update(bid=mid - 0.5, ask=mid + 0.5, bid_size=np.full(n, 10), ask_size=np.full(n, 10))
    return ChainSnapshot.from_columns(timestamp=NOW, underlying="SPX", underlying_price=SPOT, columns=cols)


def make_surface(chain: ChainSnapshot) -> Surface:
    """A surface with a synthetic skew (no pricing): enough for the plots."""
    n = len(chain)
    maturity = chain.maturity
    money = chain.strike / SPOT
    iv = 0.18 - 0.25 * (money - 1.0) + 0.4 * (money - 1.0) ** 2
    expiries = [ExpiryForward(e, False, float(maturity[chain.expiry == e][0]), SPOT, 0.99, 10, 0.01, True)
                for e in np.unique(chain.expiry)]
    return Surface(chain, maturity, np.full(n, SPOT), np.full(n, 0.99), iv - 0.005, iv, iv + 0.005,
                   np.zeros(n, dtype=np.int8) + Filter.OK, np.ones(n, dtype=bool), expiries)


class FakeEngine:
    """Implements the engine's GUI contract with immediate fills."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.bus = EventBus()
        self.state = TradingState.ACTIVE
        self.auto_execute = False
        self._chain = make_chain()
        self.last_surface = None
        self.last_fit = None
        self.fit_history: list[FitEvent] = []
        self._signals: dict[str, Signal] = {}
        self._orders: dict[str, dict] = {}
        self._positions: dict[int, dict] = {}
        self._ids = itertools.count(1)
        self.fill_immediately = True

    # ---------------------------------------------------------------------------- publishing
    def publish_market(self) -> None:
        self.bus.publish(topics.SNAPSHOT, self._chain)
        self.last_surface = make_surface(self._chain)
        self.bus.publish(topics.SURFACE, self.last_surface)
        fit = FitEvent(NOW, HestonParams(0.03, 2.0, 0.04, 0.5, -0.7), 0.42, 1.1, {"2025-10-31": 0.3, "2025-11-30": 0.5},
                       12, 85.0, 400, True, False)
        self.last_fit = fit
        self.fit_history.append(fit)
        self.bus.publish(topics.FIT, fit)
        self.bus.publish(topics.STATUS, {"connection": "simulated", "connected": True, "data_age_s": 0.4,
                                         "sim_time": NOW})
        self.bus.publish(topics.RISK, {"greeks": {"delta": 12_000.0, "gamma": 3_000.0, "vega": -45_000.0,
                                                  "theta": 800.0},
                                       "limits": {"delta": 500_000.0, "gamma": 50_000.0, "vega": 50_000.0},
                                       "var95": 8_000.0, "var99": 12_000.0,
                                       "stress": {"spot_shocks": [-0.1, 0.0, 0.1], "vol_shocks": [-0.05, 0.0, 0.05],
                                                  "pnl": [[-5e4, 1e3, 2e4], [-3e4, 0.0, 1e4], [-1e4, 2e3, 5e3]]},
                                       "attribution": {"delta": 120.0, "gamma": -30.0, "vega": 400.0, "theta": 55.0}})
        self._publish_book()

    def add_signal(self, side: Side = Side.BUY, quantity: int = 2, row: int = 36) -> Signal:
        contract = self._chain.contract(row)
        sig = Signal(f"S{next(self._ids)}", contract, side, NOW, float(self._chain.bid[row]),
                     float(self._chain.ask[row]), float(self._chain.mid[row]) + 1.0, 100.0, 1.2, 2.5, 40.0, quantity)
        self._signals[sig.signal_id] = sig
        self.bus.publish(topics.SIGNAL, sig)
        return sig

    def raise_alert(self, severity: Severity, code: str = "TEST_ALERT", message: str = "test") -> Alert:
        alert = Alert(code, severity, "test", message, datetime.now(timezone.utc), alert_id=f"A{next(self._ids)}")
        self.bus.publish(topics.ALERT, alert)
        return alert

    # ------------------------------------------------------------------------------- queries
    def open_signals(self):
        return [s for s in self._signals.values() if s.state.is_open]

    def orders(self):
        return list(self._orders.values())

    def positions(self):
        return list(self._positions.values())

    def chain(self):
        return self._chain

    # ------------------------------------------------------------------------------ commands
    def _decide(self, contract_id: int, quantity: int, limit: float) -> Decision:
        risk = self.settings.risk
        return Decision([
            Check("trading state", self.state is TradingState.ACTIVE, "TRADING_HALTED", f"state {self.state.value}"),
            Check("order size", quantity <= risk.max_order_quantity, "MAX_ORDER_QUANTITY",
                  f"{quantity} > max_order_quantity {risk.max_order_quantity}"),
            Check("premium", quantity * limit * 100 <= risk.max_order_premium, "MAX_ORDER_PREMIUM", "premium"),
        ])

    def _order(self, contract_id: int, side, quantity: int, limit: float, purpose=OrderPurpose.MANUAL,
               signal_id=None) -> Order:
        row = self._chain.index_of(contract_id)
        return Order(f"O{next(self._ids)}", self._chain.contract(row), Side(side), int(quantity), limit_price=limit,
                     created_at=datetime.now(timezone.utc), purpose=purpose, signal_id=signal_id)

    def _preview(self, order: Order) -> OrderPreview:
        row = self._chain.index_of(order.contract.contract_id)
        mid = float(self._chain.mid[row])
        return OrderPreview(order, self._decide(order.contract.contract_id, order.quantity, order.limit_price),
                            mid + 1.0, mid, 100.0 * order.quantity)

    def _send(self, order: Order) -> None:
        self._orders[order.client_order_id] = {"order": order, "status": OrderStatus.NEW, "filled_quantity": 0}
        self.bus.publish(topics.ORDER, order)
        self.bus.publish(topics.ORDER_EVENT, OrderEvent(order.client_order_id, OrderStatus.SUBMITTED,
                                                        datetime.now(timezone.utc), remaining_quantity=order.quantity))
        self._orders[order.client_order_id]["status"] = OrderStatus.SUBMITTED
        if self.fill_immediately:
            self.fill(order.client_order_id)

    def fill(self, client_order_id: str) -> None:
        order = self._orders[client_order_id]["order"]
        now = datetime.now(timezone.utc)
        self.bus.publish(topics.FILL, Fill(f"F{next(self._ids)}", client_order_id, order.contract, order.side,
                                           order.quantity, order.limit_price, now))
        self.bus.publish(topics.ORDER_EVENT, OrderEvent(client_order_id, OrderStatus.FILLED, now,
                                                        filled_quantity=order.quantity,
                                                        avg_fill_price=order.limit_price))
        self._orders[client_order_id]["status"] = OrderStatus.FILLED
        cid = order.contract.contract_id
        pos = self._positions.setdefault(cid, {"contract": order.contract, "contract_id": cid, "quantity": 0,
                                               "avg_cost": order.limit_price, "mark": order.limit_price, "pnl": 0.0,
                                               "greeks": {"delta": 0.5, "gamma": 0.001, "vega": 40.0,
                                                          "theta": -12.0}})
        pos["quantity"] += order.signed_quantity
        self._publish_book()

    def _publish_book(self) -> None:
        self.bus.publish(topics.BOOK, {"positions": list(self._positions.values()),
                                       "totals": {"delta": 1500.0, "vega": -4000.0}, "day_pnl": -1234.0})

    def preview_signal(self, signal_id: str) -> OrderPreview:
        sig = self._signals[signal_id]
        return self._preview(self._order(sig.contract.contract_id, sig.side, sig.quantity, sig.limit_reference,
                                         OrderPurpose.SIGNAL, signal_id))

    def approve_signal(self, signal_id: str) -> OrderPreview:
        sig = self._signals[signal_id]
        preview = self.preview_signal(signal_id)
        if preview.approved:
            self._signals[signal_id] = sig.with_state(SignalState.ORDERED, NOW)
            self.bus.publish(topics.SIGNAL, self._signals[signal_id])
            self._send(preview.order)
        return OrderPreview(preview.order, preview.decision, preview.model_price, preview.mid, preview.edge_dollars,
                            sent=preview.approved)

    def reject_signal(self, signal_id: str, reason: str = "") -> None:
        self._signals[signal_id] = self._signals[signal_id].with_state(SignalState.REJECTED, NOW, reason)
        self.bus.publish(topics.SIGNAL, self._signals[signal_id])

    def preview_order(self, contract_id, side, quantity, limit_price) -> OrderPreview:
        return self._preview(self._order(contract_id, side, quantity, limit_price))

    def submit_order(self, contract_id, side, quantity, limit_price) -> OrderPreview:
        preview = self.preview_order(contract_id, side, quantity, limit_price)
        if preview.approved:
            self._send(preview.order)
        return OrderPreview(preview.order, preview.decision, preview.model_price, preview.mid, preview.edge_dollars,
                            sent=preview.approved)

    def cancel_order(self, client_order_id: str) -> None:
        rec = self._orders[client_order_id]
        if rec["status"].is_working:
            rec["status"] = OrderStatus.CANCELLED
            self.bus.publish(topics.ORDER_EVENT, OrderEvent(client_order_id, OrderStatus.CANCELLED,
                                                            datetime.now(timezone.utc)))

    def modify_order(self, client_order_id: str, limit_price=None, quantity=None) -> None:
        self.bus.publish(topics.ORDER_EVENT, OrderEvent(client_order_id, OrderStatus.SUBMITTED,
                                                        datetime.now(timezone.utc), limit_price=limit_price))

    def close_position(self, contract_id: int, quantity=None) -> OrderPreview:
        pos = self._positions[contract_id]
        qty = quantity or abs(pos["quantity"])
        side = Side.SELL if pos["quantity"] > 0 else Side.BUY
        return self.submit_order(contract_id, side, qty, pos["mark"])

    def set_auto_execute(self, on: bool) -> None:
        self.auto_execute = bool(on)

    def kill_switch(self) -> None:
        for coid, rec in self._orders.items():
            if rec["status"].is_working:
                self.cancel_order(coid)
        self.state = TradingState.HALTED
        self.bus.publish(topics.TRADING_STATE, self.state)

    def resume_trading(self) -> None:
        self.state = TradingState.ACTIVE
        self.bus.publish(topics.TRADING_STATE, self.state)

    def apply_settings(self, new_settings: Settings, source: str = "settings dialog") -> list[str]:
        self.settings = new_settings
        self.bus.publish(topics.SETTINGS, new_settings)
        return []
