"""The paper exchange and PaperBroker: fills at the touch, partial fills, latency, rejects, cancel/modify,
commissions and cash settlement at expiry."""
from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from workstation.config import PaperConfig, Settings, SimulatorConfig
from workstation.domain import Contract, Fill, Order, OrderEvent, OrderStatus, OrderType, SecType, Side
from workstation.execution.broker import Broker
from workstation.execution.paper import PaperBroker
from workstation.sim.world import SimWorld

DAY = date(2025, 10, 1)


class Harness:
    """A manual-clock world with a recorder of every event."""

    def __init__(self, latency_ms: float = 50.0, **sim) -> None:
        self.world = SimWorld(SimulatorConfig(start_date=DAY, mispricing_rate=0, **sim),
                              PaperConfig(latency_ms=latency_ms), manual=True)
        self.events: list = []
        self.world.on_event.append(self.events.append)
        self.ex = self.world.exchange

    def run(self, seconds: float) -> list:
        start = len(self.events)
        self.world.clock.advance(seconds)
        self.world.sync()
        return self.events[start:]

    def option(self, expiry: str = "2025-10-17", strike: float = 5900.0, call: bool = True) -> Contract:
        lst = self.world.market.listing
        rows = np.flatnonzero((lst.expiry == np.datetime64(expiry)) & (lst.strike == strike) &
                              (lst.is_call == call) & (lst.trading_class == "SPXW"))
        return lst.contract(int(rows[0]))

    def touch(self, c: Contract):
        return self.ex._touch(c)

    def order_events(self, coid: str) -> list[OrderEvent]:
        return [e for e in self.events if isinstance(e, OrderEvent) and e.client_order_id == coid]

    def fills(self, coid: str) -> list[Fill]:
        return [e for e in self.events if isinstance(e, Fill) and e.client_order_id == coid]


def limit(coid, c, side, qty, price):
    return Order(coid, c, side, qty, OrderType.LIMIT, price)


def test_buy_limit_at_or_through_the_ask_fills_at_the_ask():
    h = Harness(latency_ms=0)
    c = h.option()
    h.run(1)
    bid, ask, _, ask_size = h.touch(c)
    h.ex.submit(limit("b1", c, Side.BUY, 1, round(ask + 1.0, 2)))   # a marketable limit fills at the ask
    h.ex.submit(limit("b2", c, Side.BUY, 1, round(bid, 2)))          # a bid does not fill
    h.world.sync()
    f = h.fills("b1")
    assert len(f) == 1 and f[0].price == ask and f[0].quantity == 1
    assert h.order_events("b1")[-1].status is OrderStatus.FILLED
    assert h.fills("b2") == [] and h.order_events("b2")[-1].status is OrderStatus.SUBMITTED
    assert h.ex.positions == {c.contract_id: 1}


def test_sell_limit_fills_at_the_bid():
    h = Harness(latency_ms=0)
    c = h.option(strike=5800.0, call=False)
    h.run(1)
    bid, _, _, _ = h.touch(c)
    h.ex.submit(limit("s1", c, Side.SELL, 2, 0.05))
    h.world.sync()
    f = h.fills("s1")
    assert f[0].price == bid and h.ex.positions[c.contract_id] == -2


def test_partial_fills_up_to_displayed_size_then_the_rest_keeps_working():
    h = Harness(latency_ms=0)
    c = h.option()
    h.run(1)
    _, ask, _, ask_size = h.touch(c)
    h.ex.submit(Order("big", c, Side.BUY, 10_000, OrderType.MARKET))
    h.world.sync()
    first = h.fills("big")
    assert len(first) == 1 and first[0].quantity == ask_size
    h.world.sync()                                                 # same second: the size is used up
    assert len(h.fills("big")) == 1
    h.run(1)                                                       # a new second shows new size
    assert len(h.fills("big")) == 2
    last = h.order_events("big")[-1]
    assert last.status is OrderStatus.PARTIALLY_FILLED and last.remaining_quantity == 10_000 - last.filled_quantity


def test_latency_delays_acknowledgement_and_matching():
    h = Harness(latency_ms=2000)
    c = h.option()
    h.run(1)
    _, ask, _, _ = h.touch(c)
    h.ex.submit(limit("l1", c, Side.BUY, 1, round(ask + 5.0, 1)))
    assert h.run(1.0) == []
    events = h.run(1.5)
    assert [type(e).__name__ for e in events][:1] == ["OrderEvent"]
    ack = h.order_events("l1")[0]
    assert ack.status is OrderStatus.SUBMITTED
    assert (ack.timestamp - h.world.clock.start).total_seconds() == pytest.approx(3.0)
    assert h.fills("l1")


@pytest.mark.parametrize("case, reason", [
    ("bad_tick", "bad tick"), ("bad_tick_above_3", "bad tick"), ("zero_qty", "quantity must be > 0"),
    ("negative_qty", "quantity must be > 0"), ("unknown", "unknown contract"), ("expired", "expired contract"),
    ("closed", "market closed"), ("duplicate", "duplicate order id"), ("no_bid", "no bid"),
])
def test_rejects_carry_a_reason(case, reason):
    h = Harness(latency_ms=10)
    c = h.option()
    order = limit("r1", c, Side.BUY, 1, 10.0)
    if case == "bad_tick":
        order = limit("r1", h.option(strike=6300.0), Side.BUY, 1, 1.02)
    elif case == "bad_tick_above_3":
        order = limit("r1", c, Side.BUY, 1, 10.05)
    elif case == "zero_qty":
        order = limit("r1", c, Side.BUY, 0, 10.0)
    elif case == "negative_qty":
        order = limit("r1", c, Side.BUY, -3, 10.0)
    elif case == "unknown":
        order = limit("r1", Contract(123456789, "SPX", SecType.OPTION, "SPXW", date(2025, 10, 17), 5901.0, "C"),
                      Side.BUY, 1, 10.0)
    elif case == "expired":
        order = limit("r1", Contract(223456789, "SPX", SecType.OPTION, "SPXW", date(2025, 9, 30), 5900.0, "C"),
                      Side.BUY, 1, 10.0)
    elif case == "closed":
        h.run(7 * 3600)
    elif case == "duplicate":
        h.ex.submit(limit("r1", c, Side.BUY, 1, 0.05))
    elif case == "no_bid":
        far = h.option(expiry="2025-10-02", strike=5500.0, call=False)
        assert h.touch(far)[0] == 0
        order = Order("r1", far, Side.SELL, 1, OrderType.MARKET)
    h.ex.submit(order)
    h.run(1)
    last = h.order_events("r1")[-1]
    assert last.status is OrderStatus.REJECTED and reason in last.reason, last.reason
    assert h.fills("r1") == []


def test_cancel_and_modify():
    h = Harness(latency_ms=10)
    c = h.option()
    h.run(1)
    bid, ask, _, _ = h.touch(c)
    h.ex.submit(limit("m1", c, Side.BUY, 3, 0.05))
    h.run(1)
    assert [o.client_order_id for o in h.ex.open_orders()] == ["m1"]
    h.ex.modify("m1", limit_price=round(ask + 10.0, 1), quantity=1)
    h.run(1)
    ev = [e for e in h.order_events("m1") if e.reason == "modified"]
    assert ev and ev[0].limit_price == round(ask + 10.0, 1) and ev[0].remaining_quantity == 1
    assert sum(f.quantity for f in h.fills("m1")) == 1
    h.ex.cancel("m1")                                  # already filled
    h.run(1)
    assert "cancel rejected" in h.order_events("m1")[-1].reason
    h.ex.submit(limit("m2", c, Side.BUY, 1, 0.05))
    h.run(1)
    h.ex.modify("m2", limit_price=0.07)                # bad tick
    h.run(1)
    assert "modify rejected" in h.order_events("m2")[-1].reason
    h.ex.cancel("m2")
    h.run(1)
    assert h.order_events("m2")[-1].status is OrderStatus.CANCELLED
    assert h.ex.open_orders() == []
    h.ex.cancel("nope")
    h.run(1)
    assert "unknown order" in h.order_events("nope")[-1].reason


def test_commissions_fees_and_cash():
    h = Harness(latency_ms=0)
    c = h.option()
    h.run(1)
    h.ex.submit(Order("c1", c, Side.BUY, 2, OrderType.MARKET))
    h.world.sync()
    fills = h.fills("c1")
    qty = sum(f.quantity for f in fills)
    cfg = PaperConfig()
    assert sum(f.commission for f in fills) == pytest.approx(qty * (cfg.commission_per_contract + cfg.fees_per_contract))
    assert h.ex.cash == pytest.approx(-sum(f.price * f.quantity * 100 + f.commission for f in fills))


def test_the_future_trades_with_a_tight_spread_and_futures_commission():
    h = Harness(latency_ms=0)
    fut = h.world.market.listing.future
    q = h.world.market.future_quote()
    assert q.ask - q.bid == 0.25
    h.run(1)
    h.ex.submit(Order("h1", fut, Side.SELL, 3, OrderType.MARKET))
    h.ex.submit(limit("h2", fut, Side.BUY, 1, 5900.10))            # futures tick is 0.25
    h.world.sync()
    f = h.fills("h1")
    assert f and f[0].commission == pytest.approx(2.25 * f[0].quantity)
    assert h.ex.positions[fut.contract_id] == -3
    assert "bad tick" in h.order_events("h2")[-1].reason


def test_cash_settlement_at_intrinsic_value_at_expiry():
    h = Harness(latency_ms=0)
    call, put = h.option(expiry="2025-10-01", strike=5900.0), h.option(expiry="2025-10-01", strike=5900.0, call=False)
    h.run(1)
    h.ex.submit(Order("e1", call, Side.BUY, 1, OrderType.MARKET))
    h.ex.submit(Order("e2", put, Side.SELL, 1, OrderType.MARKET))
    h.world.sync()
    assert h.ex.positions == {call.contract_id: 1, put.contract_id: -1}
    cash_before = h.ex.cash
    h.run(6.5 * 3600)                                              # past the 16:00 close
    close = h.world.market.settlement_price(DAY, am_settled=False)
    settle = [e for e in h.events if isinstance(e, Fill) and e.liquidity == "settlement"]
    assert len(settle) == 2 and h.ex.positions == {}
    by_id = {f.contract.contract_id: f for f in settle}
    assert by_id[call.contract_id].price == pytest.approx(max(close - 5900.0, 0), abs=1e-4)
    assert by_id[put.contract_id].price == pytest.approx(max(5900.0 - close, 0), abs=1e-4)
    assert h.ex.cash - cash_before == pytest.approx(100 * (close - 5900.0), abs=0.05)


def test_working_order_on_an_expiring_contract_is_cancelled():
    h = Harness(latency_ms=0)
    c = h.option(expiry="2025-10-01", strike=5900.0)
    h.ex.submit(limit("x1", c, Side.BUY, 1, 0.05))
    h.run(1)
    h.run(7 * 3600)
    last = h.order_events("x1")[-1]
    assert last.status is OrderStatus.CANCELLED and last.reason == "contract expired"


async def test_paper_broker_implements_the_protocol_with_callbacks():
    s = Settings()
    s.market.simulator.start_date = DAY
    world = SimWorld.from_settings(s, manual=True)
    broker = PaperBroker(world)
    assert isinstance(broker, Broker)
    events, fills = [], []
    broker.on_order_event.append(events.append)
    broker.on_fill.append(fills.append)
    c = world.market.listing.contract(int(np.flatnonzero(world.market.listing.strike == 5900.0)[0]))
    await broker.place(Order("p0", c, Side.BUY, 1, OrderType.MARKET))      # not connected yet
    assert events[-1].status is OrderStatus.REJECTED and "not connected" in events[-1].reason
    await broker.connect()
    await broker.place(Order("p1", c, Side.BUY, 1, OrderType.MARKET))
    world.clock.advance(1)
    broker.pump()
    assert fills and fills[0].client_order_id == "p1"
    assert await broker.positions() == {c.contract_id: 1}
    assert await broker.fills_since(world.clock.start) == fills
    assert await broker.open_orders() == []
    await broker.close()
    assert not broker.connected and math.isfinite(fills[0].price)
