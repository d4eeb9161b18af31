"""The persistent paper account: executions, resting orders, positions and cash survive a restart of the
process (a new world and broker on the same file), ids stay unique across restarts, the exchange commits an
execution before it reports it, and `fills_since` sees earlier runs whatever the simulated clock says."""
from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from workstation.config import PaperConfig, SimulatorConfig
from workstation.domain import Contract, Fill, Order, OrderEvent, OrderStatus, OrderType, Side
from workstation.execution.paper import PaperBroker
from workstation.sim.world import SimWorld

DAY = date(2025, 10, 1)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class Run:
    """One 'process': a manual-clock world and broker on the account file."""

    def __init__(self, path, **sim) -> None:
        self.world = SimWorld(SimulatorConfig(start_date=DAY, mispricing_rate=0, **sim), PaperConfig(latency_ms=0),
                              manual=True, account_path=path)
        self.broker = PaperBroker(self.world)
        self.events: list = []
        self.world.on_event.append(self.events.append)
        self.ex = self.world.exchange

    def run(self, seconds: float = 1.0) -> list:
        start = len(self.events)
        self.world.clock.advance(seconds)
        self.world.sync()
        return self.events[start:]

    def option(self, strike: float = 5900.0, call: bool = True) -> Contract:
        lst = self.world.market.listing
        rows = np.flatnonzero((lst.expiry == np.datetime64("2025-10-17")) & (lst.strike == strike) &
                              (lst.is_call == call) & (lst.trading_class == "SPXW"))
        return lst.contract(int(rows[0]))

    def fills(self) -> list[Fill]:
        return [e for e in self.events if isinstance(e, Fill)]

    def status(self, coid: str) -> OrderStatus:
        return [e for e in self.events if isinstance(e, OrderEvent) and e.client_order_id == coid][-1].status

    async def state(self):
        return (await self.broker.positions(), {o.client_order_id: o for o in await self.broker.open_orders()},
                await self.broker.fills_since(EPOCH), self.ex.cash)

    def close(self) -> None:
        self.world.close()


def limit(coid, c, side, qty, price) -> Order:
    return Order(coid, c, side, qty, OrderType.LIMIT, price)


async def trade_some(r: Run) -> dict[str, Contract]:
    """A filled buy, a partially filled buy, a resting bid, a modified resting offer, a cancelled order."""
    await r.broker.connect()
    call, put, call2 = r.option(), r.option(5800.0, call=False), r.option(6000.0)
    r.run()
    _, ask, _, ask_size = r.ex._touch(call)
    bid_put, _, bid_size_put, _ = r.ex._touch(put)
    await r.broker.place(limit("A-filled", call, Side.BUY, 2, round(ask + 1.0, 2)))
    await r.broker.place(limit("A-partial", put, Side.SELL, bid_size_put + 3, 0.05))
    await r.broker.place(limit("A-resting", call2, Side.BUY, 1, 0.05))
    await r.broker.place(limit("A-modified", call, Side.SELL, 1, round(ask * 3, 1)))
    await r.broker.place(limit("A-cancelled", call2, Side.BUY, 1, 0.05))
    r.world.sync()
    await r.broker.modify("A-modified", limit_price=round(ask * 4, 1), quantity=2)
    await r.broker.cancel("A-cancelled")
    r.world.sync()
    assert r.status("A-filled") is OrderStatus.FILLED
    assert r.status("A-partial") is OrderStatus.PARTIALLY_FILLED
    assert r.status("A-resting") is OrderStatus.SUBMITTED
    assert r.status("A-cancelled") is OrderStatus.CANCELLED
    return {"call": call, "put": put, "call2": call2}


async def test_positions_open_orders_executions_and_cash_survive_a_restart(tmp_path):
    path = tmp_path / "paper_account.sqlite"
    first = Run(path)
    await first.broker.connect()
    contracts = await trade_some(first)
    positions, open_orders, fills, cash = await first.state()
    assert positions and len(fills) >= 2 and set(open_orders) == {"A-partial", "A-resting", "A-modified"}
    assert open_orders["A-modified"].quantity == 2 and open_orders["A-modified"].limit_price > 0
    first.close()

    second = Run(path)
    assert await second.state() == (positions, open_orders, fills, cash)
    assert [f.fill_id for f in await second.broker.fills_since(EPOCH)] == [f.fill_id for f in fills]
    assert {f.fill_id: (f.timestamp, f.price, f.quantity, f.side, f.contract) for f in fills} == \
        {f.fill_id: (f.timestamp, f.price, f.quantity, f.side, f.contract) for f in second.ex.fills}

    # the resting orders keep working at the exchange: a new second shows new size and the partial fills on
    await second.broker.connect()
    more = second.run(1)
    rest = [f for f in more if isinstance(f, Fill) and f.client_order_id == "A-partial"]
    assert rest and sum(f.quantity for f in rest) <= 3
    # an order id already known to the account is still a duplicate
    await second.broker.place(limit("A-filled", contracts["call"], Side.BUY, 1, 0.05))
    second.world.sync()
    assert second.status("A-filled") is OrderStatus.REJECTED

    # new executions get new ids: unique across restarts
    _, ask, _, _ = second.ex._touch(contracts["call2"])
    await second.broker.place(limit("B-filled", contracts["call2"], Side.BUY, 1, round(ask + 1.0, 2)))
    second.world.sync()
    all_fills = await second.broker.fills_since(EPOCH)
    ids = [f.fill_id for f in all_fills]
    assert len(ids) == len(set(ids)) and len(ids) > len(fills)
    assert all(f.fill_id not in {g.fill_id for g in fills} for f in second.fills())
    broker_ids = {e.broker_order_id for e in second.events + first.events
                  if isinstance(e, OrderEvent) and e.broker_order_id}
    assert len(broker_ids) == len({e.client_order_id for e in second.events + first.events
                                   if isinstance(e, OrderEvent) and e.broker_order_id})
    positions2, open2, _, cash2 = await second.state()
    second.close()

    third = Run(path)
    assert await third.state() == (positions2, open2, all_fills, cash2)
    third.close()


async def test_positions_equal_the_sum_of_the_executions(tmp_path):
    path = tmp_path / "acct.sqlite"
    r = Run(path)
    await trade_some(r)
    r.run(1)
    r.close()
    r = Run(path)
    positions, _, fills, _ = await r.state()
    summed: dict[int, int] = {}
    for f in fills:
        summed[f.contract.contract_id] = summed.get(f.contract.contract_id, 0) + f.signed_quantity
    assert positions == {cid: q for cid, q in summed.items() if q}
    r.close()


async def test_an_execution_is_committed_before_it_is_reported(tmp_path):
    path = tmp_path / "acct.sqlite"
    r = Run(path)
    seen: list[tuple[str, int]] = []

    def on_event(event) -> None:             # read the file from another connection, as a new process would
        if isinstance(event, Fill):
            with sqlite3.connect(path) as other:
                n = other.execute("SELECT COUNT(*) FROM executions WHERE exec_id = ?", (event.fill_id,)).fetchone()[0]
            seen.append((event.fill_id, n))
    r.world.on_event.insert(0, on_event)
    c = r.option()
    r.run()
    _, ask, _, _ = r.ex._touch(c)
    r.ex.submit(limit("X1", c, Side.BUY, 1, round(ask + 1.0, 2)))
    r.world.sync()
    assert seen and all(n == 1 for _, n in seen)
    r.close()


async def test_a_restart_resumes_after_the_account_and_sees_its_fills(tmp_path):
    """The restarted sim clock carries on after the account's last activity (not back at the morning open);
    executions are found whether the caller asks with wall-clock or simulated time."""
    path = tmp_path / "acct.sqlite"
    r = Run(path)
    await trade_some(r)
    fills = await r.broker.fills_since(EPOCH)
    r.close()
    r = Run(path)
    wall_week = datetime.now(timezone.utc) - timedelta(days=7)
    sim_week = r.world.clock.now() - timedelta(days=7)
    assert fills and all(f.timestamp < r.world.clock.now() for f in fills)
    assert await r.broker.fills_since(wall_week) == fills
    assert await r.broker.fills_since(sim_week) == fills
    assert await r.broker.fills_since(datetime.now(timezone.utc) + timedelta(days=1)) == []
    r.close()


def test_without_a_path_the_account_stays_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    world = SimWorld(SimulatorConfig(start_date=DAY), PaperConfig(), manual=True)
    assert world.account is None and world.exchange.store is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("n", [3])
def test_account_file_is_wal_and_sound(tmp_path, n):
    path = tmp_path / "acct.sqlite"
    for _ in range(n):
        r = Run(path)
        r.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
