"""Combo (BAG) orders on the IB path, over a real socket with ib_async against the practice gateway: a vertical and
a butterfly sent by the combo desk through IBBroker, filled atomically across the legs, each leg's fill journaled and
booked; the package quoted from its legs; malformed BAGs refused as TWS refuses them (321, 200, 478); and a BAG
order never sent twice across a reconnect, its leg fills delivered once by the reconcile."""
from __future__ import annotations

import contextlib
import math
from datetime import datetime, timezone

import numpy as np
import pytest

pytest.importorskip("ib_async")

from ib_async import Bag, ComboLeg as IBComboLeg, LimitOrder  # noqa: E402

from workstation.domain import ChainSnapshot, Contract, OrderStatus, Side  # noqa: E402
from workstation.domain.combos import (COMBO_TICK, Combo, ComboLeg, ComboOrder, butterfly,  # noqa: E402
                                       vertical)
from workstation.execution.combo_desk import ComboDesk  # noqa: E402
from workstation.execution.ib import IBBroker  # noqa: E402
from workstation.market.ib import IBConnection, IBFeed  # noqa: E402
from workstation.market.ib_codes import Code  # noqa: E402
from workstation.market.ib_session import bag_contract  # noqa: E402
from workstation.portfolio.book import Book  # noqa: E402
from workstation.risk.limits import RiskDecision  # noqa: E402
from workstation.sim.gateway import PracticeGateway  # noqa: E402
from workstation.storage import Journal  # noqa: E402

from gateway_support import HOST, decoder_errors, gateway, practice_settings, wait_for  # noqa: E402,F401
from test_ib_adapters import make_settings, take  # noqa: E402


class Rig:
    """IBFeed and IBBroker on one connection, a SQLite journal, a book and a combo desk that approves."""

    def __init__(self, gw: PracticeGateway, tmp_path) -> None:
        s = make_settings(gw.port)
        self.gw = gw
        self.conn = IBConnection(s)
        self.feed, self.broker = IBFeed(s, self.conn), IBBroker(s, self.conn)
        self.events, self.fills, self.links, self.errors = [], [], [], []
        self.broker.on_order_event.append(self.events.append)
        self.broker.on_fill.append(self.fills.append)
        self.broker.on_connection.append(lambda up, msg: self.links.append(up))
        self.broker.on_error.append(self.errors.append)
        self.journal = Journal(tmp_path / "journal.sqlite", clock=self.conn.now)
        self.book = Book()
        self.desk = ComboDesk(self.broker, self.journal, lambda o: RiskDecision(o.client_order_id, True, ()),
                              self.book, self.conn.now)

    async def open(self) -> ChainSnapshot:
        await self.feed.connect()
        await self.broker.connect()
        [snap] = await take(self.feed, 1)
        return snap

    async def close(self) -> None:
        await self.broker.close()
        await self.feed.close()
        self.journal.close()

    def state(self, coid: str):
        return self.journal.combo_states().get(coid)


def calls_near_the_money(snap: ChainSnapshot, n: int, skip_expiries: int = 0) -> list[Contract]:
    """`n` adjacent two-sided calls of one expiry (after the first `skip_expiries`) around the index."""
    ok = snap.is_call & (snap.bid > 0.5) & (snap.ask > snap.bid)
    for expiry in sorted(set(snap.expiry[ok].tolist()))[skip_expiries:]:
        rows = np.flatnonzero(ok & (snap.expiry == expiry))
        rows = rows[np.argsort(np.abs(snap.strike[rows] - snap.underlying_price))][:max(n, 4)]
        rows = rows[np.argsort(snap.strike[rows])]
        if len(rows) >= n:
            return [snap.contract(int(r)) for r in rows[:n]]
    pytest.skip("no expiry with enough two-sided calls")


def marketable_buy(snap: ChainSnapshot, combo: Combo, cushion_ticks: int = 20) -> float:
    rows = [snap.index_of(leg.contract.contract_id) for leg in combo.legs]
    _, ask = combo.net_quote(snap.bid[rows], snap.ask[rows])
    return round(math.ceil(ask / COMBO_TICK + cushion_ticks) * COMBO_TICK, 2)


@pytest.mark.parametrize("structure", ["vertical", "butterfly"])
async def test_a_combo_fills_atomically_at_the_gateway_and_is_journaled_and_booked_per_leg(gateway, tmp_path,
                                                                                          decoder_errors, structure):
    rig = Rig(gateway, tmp_path)
    try:
        snap = await rig.open()
        calls = calls_near_the_money(snap, 3)
        combo = vertical(calls[0], calls[1]) if structure == "vertical" else butterfly(*calls)
        # the package quoted from its legs (reqMktData on the BAG)
        ticker = rig.conn.ib.reqMktData(bag_contract(combo), "", True, False)
        assert await wait_for(lambda: ticker.ask > 0 and not math.isnan(ticker.bid)), ticker
        assert ticker.bid < ticker.ask                       # a butterfly's net bid may be at or below zero
        stream = rig.conn.ib.reqMktData(bag_contract(combo), "", False, False)       # and a streaming line
        assert await wait_for(lambda: stream.ask > 0 and not math.isnan(stream.bid)), stream
        rig.conn.ib.cancelMktData(bag_contract(combo))
        limit = marketable_buy(snap, combo)
        coid = f"cmb-{structure}"
        decision = await rig.desk.send(ComboOrder(coid, combo, Side.BUY, 1, limit))
        assert decision.approved
        assert await wait_for(lambda: rig.state(coid) is not None and rig.state(coid).status is OrderStatus.FILLED,
                              10)
        assert await wait_for(lambda: len(rig.journal.fills_of(coid)) == len(combo.legs))
        fills = rig.journal.fills_of(coid)
        assert sorted((f.contract.contract_id, f.signed_quantity) for f in fills) == \
            sorted((leg.contract.contract_id, leg.weight) for leg in combo.legs)        # every leg, once, whole
        assert {f.contract for f in fills} == {leg.contract for leg in combo.legs}       # the legs' own contracts
        assert all(f.commission > 0 for f in fills)                                     # a commission per leg
        net_paid = sum(f.signed_quantity * f.price for f in fills)
        assert net_paid <= limit + 1e-9
        state = rig.state(coid)
        assert state.filled_quantity == 1 and state.avg_fill_price == pytest.approx(net_paid, abs=1e-6)
        for leg in combo.legs:                                                          # booked per leg
            assert rig.book.quantity(leg.contract.contract_id) == leg.weight
        assert await rig.broker.positions() == {leg.contract.contract_id: leg.weight for leg in combo.legs}
        # at the gateway: one package, one BAG execution at the net price and one execution per leg, all under the
        # order's orderRef and permId, at one instant (atomic)
        (bag,) = [b for b in gateway.combos.bags.values() if b.view.order_ref == coid]
        assert bag.view.status == "Filled" and gateway.order_refs == {coid: 1}
        execs = [e for e in gateway.executions if e.order_ref == coid]
        assert sorted(e.contract.sec_type for e in execs) == sorted(["BAG"] + ["OPT"] * len(combo.legs))
        assert {e.perm_id for e in execs} == {bag.view.perm_id} and len({e.time for e in execs}) == 1
        (bag_exec,) = [e for e in execs if e.contract.sec_type == "BAG"]
        assert bag_exec.price == pytest.approx(net_paid, abs=1e-6)
        # today's executions read back: the legs only (the BAG's own execution is no fill)
        since = datetime(2000, 1, 1, tzinfo=timezone.utc)
        assert {f.fill_id for f in await rig.broker.fills_since(since)} == {f.fill_id for f in fills}
    finally:
        await rig.close()


@pytest.fixture
async def two_index_gateway():
    gw = PracticeGateway(practice_settings(underlyings=["SPX", "XSP"]))
    await gw.start(HOST, 0)
    yield gw
    await gw.stop()


async def test_malformed_bag_orders_are_refused_as_tws_refuses_them(two_index_gateway, tmp_path, decoder_errors):
    gw = two_index_gateway
    rig = Rig(gw, tmp_path)
    try:
        snap = await rig.open()
        c0, c1 = calls_near_the_money(snap, 2)
        lst = gw.world.market.listing
        xsp = next(lst.contract(r) for r in range(len(lst)) if str(lst.underlying[r]) == "XSP")

        def bag(*legs, symbol="SPX", exchange="SMART"):
            return Bag(symbol=symbol, exchange=exchange, currency="USD",
                       comboLegs=[IBComboLeg(conId=c, ratio=r, action=a, exchange=x) for c, r, a, x in legs])

        cases = {
            "no legs": (bag(), Code.VALIDATION_ERROR, "Security type 'BAG' requires combo leg details"),
            "zero ratio": (bag((c0.contract_id, 1, "BUY", "SMART"), (c1.contract_id, 0, "SELL", "SMART")),
                           Code.VALIDATION_ERROR, "The combo details for leg '1' are invalid"),
            "no leg exchange": (bag((c0.contract_id, 1, "BUY", ""), (c1.contract_id, 1, "SELL", "SMART")),
                                Code.VALIDATION_ERROR, "The combo details for leg '0' are invalid"),
            "no exchange": (bag((c0.contract_id, 1, "BUY", "SMART"), (c1.contract_id, 1, "SELL", "SMART"),
                                exchange=""), Code.VALIDATION_ERROR, "Missing order exchange"),
            "2:2": (bag((c0.contract_id, 2, "BUY", "SMART"), (c1.contract_id, 2, "SELL", "SMART")),
                    Code.VALIDATION_ERROR, "Invalid leg ratio"),
            "unknown leg": (bag((c0.contract_id, 1, "BUY", "SMART"), (123456789, 1, "SELL", "SMART")),
                            Code.NO_SECURITY_DEFINITION, "No security definition"),
            "two underlyings": (bag((c0.contract_id, 1, "BUY", "SMART"), (xsp.contract_id, 1, "SELL", "SMART")),
                                Code.CONTRACT_CONFLICT, "in legs SPX,XSP"),
        }
        trades = {}
        for name, (contract, _, _) in cases.items():
            order = LimitOrder("BUY", 1, 1.0)
            order.orderRef = f"bad-{name}"
            trades[name] = rig.conn.ib.placeOrder(contract, order)
        await rig.conn.ib.reqCurrentTimeAsync()              # answered after every order above was read
        assert await wait_for(lambda: len({e.req_id for e in rig.errors}) >= len(cases))
        for name, (_, code, text) in cases.items():
            got = [e for e in rig.errors if e.req_id == trades[name].order.orderId]
            assert [e.code for e in got] == [code], (name, got)
            assert text in got[0].message, (name, got[0].message)
        assert gw.combos.bags == {}                           # nothing reached the exchange
        assert gw.world.exchange.open_combos() == []

        # through the combo desk: the refusal reaches the journal as the package's rejection, with IB's words
        ratio_2_2 = Combo((ComboLeg(c0, 2, Side.BUY), ComboLeg(c1, 2, Side.SELL)))   # the domain would flag it
        unknown = Combo((ComboLeg(c0, 1, Side.BUY), ComboLeg(Contract(contract_id=99, symbol="SPX",
                                                                      sec_type=c1.sec_type,
                                                                      trading_class=c1.trading_class,
                                                                      expiry=c1.expiry, strike=c1.strike,
                                                                      right=c1.right, multiplier=100.0), 1,
                                                             Side.SELL)))
        await rig.desk.send(ComboOrder("desk-2x2", ratio_2_2, Side.BUY, 1, 1.0))
        await rig.desk.send(ComboOrder("desk-unknown", unknown, Side.BUY, 1, 1.0))
        for coid, code in (("desk-2x2", Code.VALIDATION_ERROR), ("desk-unknown", Code.NO_SECURITY_DEFINITION)):
            assert await wait_for(lambda: rig.state(coid) is not None
                                  and rig.state(coid).status is OrderStatus.REJECTED), coid
            assert rig.state(coid).reason.startswith(f"IB {int(code)}:"), rig.state(coid).reason
        assert coid not in rig.desk.working
    finally:
        await rig.close()


async def test_a_bag_order_is_not_sent_twice_across_a_reconnect(gateway, tmp_path, decoder_errors):
    rig = Rig(gateway, tmp_path)
    try:
        snap = await rig.open()
        c0, c1, c2 = calls_near_the_money(snap, 3)
        # 1. the connection drops right after the package reaches the gateway: it fills while we are away
        fly = butterfly(c0, c1, c2)
        order = ComboOrder("fly-away", fly, Side.BUY, 2, marketable_buy(snap, fly))
        gateway.drop_after_next_order()
        await rig.desk.send(order)
        assert await wait_for(lambda: False in rig.links, 60)
        assert await wait_for(lambda: rig.links[-1] is True and rig.broker.connected, 60)
        # on the way back: both packages' legs (in one fill each, or a package at a time when the quoted size is
        # smaller), every one the gateway executed, once
        legs_done = lambda: sum(f.quantity for f in rig.journal.fills_of("fly-away")) == 8    # noqa: E731
        assert await wait_for(legs_done, 30)
        assert {f.client_order_id for f in rig.broker.last_reconcile.executions} >= {"fly-away"}
        assert await wait_for(lambda: rig.state("fly-away").status is OrderStatus.FILLED, 5)
        assert rig.state("fly-away").filled_quantity == 2
        assert sorted(f.fill_id for f in rig.journal.fills_of("fly-away")) == sorted(
            e.exec_id for e in gateway.executions if e.order_ref == "fly-away" and e.contract.sec_type == "OPT")
        for leg in fly.legs:
            assert rig.book.quantity(leg.contract.contract_id) == 2 * leg.weight
        await rig.broker.place_combo(order)                   # a retry after the reconnect: suppressed
        await rig.desk.send(order)                            # and the desk knows it journaled it
        await rig.conn.ib.reqCurrentTimeAsync()
        assert any("duplicate order fly-away suppressed" in e.message for e in rig.errors)
        assert gateway.order_refs == {"fly-away": 1}
        assert sum(1 for b in gateway.combos.bags.values() if b.view.order_ref == "fly-away") == 1

        # 2. a resting package survives a dropped connection (not taken for closed), then cancels
        v = vertical(c0, c1)
        await rig.desk.send(ComboOrder("v-rest", v, Side.BUY, 1, COMBO_TICK))
        assert await wait_for(lambda: rig.state("v-rest").status is OrderStatus.SUBMITTED, 5)
        links = len(rig.links)
        gateway.drop_connections(21)
        assert await wait_for(lambda: len(rig.links) >= links + 2 and rig.broker.connected, 10)
        assert rig.broker.last_reconcile.clean or "v-rest" not in rig.broker.last_reconcile.closed_while_away
        assert rig.state("v-rest").status is OrderStatus.SUBMITTED and "v-rest" in rig.desk.working
        await rig.desk.cancel("v-rest")
        assert await wait_for(lambda: rig.state("v-rest").status is OrderStatus.CANCELLED, 5)
        assert gateway.order_refs == {"fly-away": 1, "v-rest": 1}
        ids = [f.fill_id for f in rig.fills]
        assert len(ids) == len(set(ids))                      # no leg fill delivered twice
    finally:
        await rig.close()


async def test_a_restarted_broker_takes_its_working_combo_back_from_the_journal(gateway, tmp_path, decoder_errors):
    rig = Rig(gateway, tmp_path)
    try:
        snap = await rig.open()
        c0, c1 = calls_near_the_money(snap, 2)
        order = ComboOrder("v-keep", vertical(c0, c1), Side.BUY, 1, COMBO_TICK)
        await rig.desk.send(order)
        assert await wait_for(lambda: rig.state("v-keep").status is OrderStatus.SUBMITTED, 5)
    finally:
        await rig.close()
    again = Rig(gateway, tmp_path)                            # the engine restarted: same journal, same client id
    try:
        assert [o.client_order_id for o in again.desk.recover()] == ["v-keep"]
        await again.open()
        report = again.broker.last_reconcile
        assert report.foreign_orders == [] and report.closed_while_away == []    # ours, and still working
        await again.broker.place_combo(order)                 # never sent twice, even by a new process
        await again.conn.ib.reqCurrentTimeAsync()
        assert gateway.order_refs == {"v-keep": 1}
        await again.desk.cancel("v-keep")
        assert await wait_for(lambda: again.state("v-keep").status is OrderStatus.CANCELLED, 5)
    finally:
        await again.close()


@contextlib.asynccontextmanager
async def engine_on_a_gateway(tmp_path, **execution):
    """The real engine on IB (started) against a fresh practice gateway, no auto-execution and no hedging;
    `execution` settings as given: yields (gateway, engine), stops both."""
    from test_ib_engine import ib_settings
    from workstation.engine import build_engine
    gw = PracticeGateway(ib_settings(7497))
    settings = ib_settings(await gw.start(HOST, 0))
    settings.signals.auto_execute, settings.hedging.enabled = False, False
    for name, value in execution.items():
        setattr(settings.execution, name, value)
    engine = build_engine(settings, tmp_path)
    try:
        await engine.start()
        yield gw, engine
    finally:
        await engine.stop()
        await gw.stop()


async def test_the_engine_sends_a_combo_through_ib_to_the_gateway(tmp_path, warm_numba, decoder_errors):
    async with engine_on_a_gateway(tmp_path) as (gw, engine):
        assert await wait_for(lambda: engine.last_fit is not None and engine.snapshots >= 3, 300)
        snap = engine.last_snapshot
        combo = vertical(*calls_near_the_money(snap, 2, skip_expiries=1))   # not today's (days to expiry)
        decision = engine.send_combo(combo, Side.BUY, 1, marketable_buy(snap, combo, cushion_ticks=6))
        assert not isinstance(decision, str) and decision.approved, [r for r in decision.results if not r.passed]
        assert await wait_for(lambda: len(engine.journal.combo_orders()) == 1)
        coid = engine.journal.combo_orders()[0].client_order_id
        assert await wait_for(lambda: engine.journal.combo_states()[coid].status is OrderStatus.FILLED, 20)
        assert await wait_for(lambda: len(engine.journal.fills_of(coid)) == 2)
        fills = engine.journal.fills_of(coid)
        assert sorted((f.contract.contract_id, f.signed_quantity) for f in fills) == \
            sorted((leg.contract.contract_id, leg.weight) for leg in combo.legs)
        for leg in combo.legs:                                   # booked once per leg in the engine's book
            assert engine.book.quantity(leg.contract.contract_id) == leg.weight
        assert gw.order_refs == {coid: 1}
        assert {f.fill_id for f in fills} == {e.exec_id for e in gw.executions if e.contract.sec_type == "OPT"}


def test_golden_bag_open_and_completed_orders_decode_with_their_legs(decoder_errors):
    from test_gateway_protocol import decode
    from workstation.sim.gateway import protocol as P
    from workstation.sim.gateway.combos import IbBag, WireLeg, bag_wire
    legs = [WireLeg(11, 1, "BUY", "SMART"), WireLeg(12, 2, "SELL", "SMART"), WireLeg(13, 1, "BUY", "SMART")]
    view = P.OrderView(7, 21, 1_000_001, bag_wire("SPX"), "BUY", 2.0, "LMT", -1.25, "DAY", "DU123456", "fly-1",
                       "Submitted")
    bag = IbBag(view, legs, None)
    name, (_, contract, order, state) = decode(bag.open_message(), decoder_errors)
    assert name == "openOrder" and contract.secType == "BAG" and contract.conId == 28812380
    assert [(c.conId, c.ratio, c.action, c.exchange) for c in contract.comboLegs] == \
        [(11, 1, "BUY", "SMART"), (12, 2, "SELL", "SMART"), (13, 1, "BUY", "SMART")]
    assert (order.orderRef, order.lmtPrice, order.totalQuantity, order.permId) == ("fly-1", -1.25, 2.0, 1_000_001)
    assert state.status == "Submitted"
    view.status, view.filled = "Filled", 2.0
    name, (contract, order, state) = decode(bag.completed_message(), decoder_errors)
    assert name == "completedOrder" and len(contract.comboLegs) == 3 and state.status == "Filled"


async def test_a_package_larger_than_the_quoted_size_fills_in_whole_packages_over_time(gateway, tmp_path,
                                                                                      decoder_errors):
    rig = Rig(gateway, tmp_path)
    try:
        snap = await rig.open()
        c0, c1 = calls_near_the_money(snap, 2)
        v = vertical(c0, c1)
        rows = [snap.index_of(c.contract_id) for c in (c0, c1)]
        shown = int(min(snap.ask_size[rows[0]], snap.bid_size[rows[1]]))
        qty = 2 * shown + 1                                   # more than one quote's worth: several package fills
        await rig.desk.send(ComboOrder("v-big", v, Side.BUY, qty, marketable_buy(snap, v)))
        assert await wait_for(lambda: rig.state("v-big").status is OrderStatus.FILLED, 20)
        fills = rig.journal.fills_of("v-big")
        for leg in v.legs:                                    # every leg filled in step with the package, in parts
            leg_fills = [f.quantity for f in fills if f.contract == leg.contract]
            assert sum(leg_fills) == qty and len(leg_fills) > 1, leg_fills
            assert rig.book.quantity(leg.contract.contract_id) == leg.weight * qty
        bag_execs = [e for e in gateway.executions if e.order_ref == "v-big" and e.contract.sec_type == "BAG"]
        assert len(bag_execs) > 1 and sum(e.shares for e in bag_execs) == qty
        net = sum(f.signed_quantity * f.price for f in fills) / qty
        assert rig.state("v-big").avg_fill_price == pytest.approx(net, abs=1e-4)
    finally:
        await rig.close()
