"""IBFeed and IBBroker over a real socket against the practice gateway (127.0.0.1, ephemeral port).

Snapshots are assembled by rotating snapshot requests within the line budget; orders round-trip with fills and
commissions; a connection dropped in the middle of order flow is re-established, reconciled, and leaves no
duplicate order and no lost fill; the line limit and the pacing limit are handled, not crashed on.
"""
from __future__ import annotations

import asyncio
import numpy as np
import pytest

pytest.importorskip("ib_async")

from workstation.config import Settings  # noqa: E402
from workstation.domain import ChainSnapshot, Order, OrderStatus, Side  # noqa: E402
from workstation.execution.broker import Broker  # noqa: E402
from workstation.execution.ib import IBBroker  # noqa: E402
from workstation.market.feed import FeedState, MarketFeed  # noqa: E402
from workstation.market.ib import IBConnection, IBFeed, Pacer  # noqa: E402
from workstation.sim.gateway import PracticeGateway  # noqa: E402

from gateway_support import HOST, decoder_clean, gateway, practice_settings, wait_for  # noqa: E402,F401  (fixtures)

def make_settings(port: int = 7497, **ib) -> Settings:
    """The practice gateway's settings with the IB feed and broker pointed at it on `port`."""
    s = practice_settings()
    s.market.source, s.execution.broker = "ib", "ib"
    s.market.snapshot_interval_s = 0.5
    s.market.max_expiry_days = 3
    s.market.strike_window = 0.01
    s.ib.host, s.ib.port, s.ib.client_id = HOST, port, 21
    s.ib.connect_timeout_s = 5
    s.ib.reconnect_max_backoff_s = 1.0
    for k, v in ib.items():
        setattr(s.ib, k, v)
    return s


async def take(feed: IBFeed, n: int, timeout: float = 20.0) -> list[ChainSnapshot]:
    out: list[ChainSnapshot] = []

    async def run():
        async for snap in feed.snapshots():
            out.append(snap)
            if len(out) >= n:
                return
    await asyncio.wait_for(run(), timeout)
    return out


def option_order(snap: ChainSnapshot, coid: str, qty: int, marketable: bool) -> Order:
    row = int(((snap.strike - snap.underlying_price) ** 2 + (~snap.is_call) * 1e9).argmin())  # ATM call
    price = float(snap.ask[row]) + 5.0 if marketable else 0.05
    return Order(coid, snap.contract(row), Side.BUY, qty, limit_price=round(price, 1))


async def test_feed_assembles_complete_snapshots_within_the_line_budget(gateway, decoder_clean):
    s = make_settings(gateway.port, line_budget=12, pacing_per_s=25)
    feed = IBFeed(s)
    assert isinstance(feed, MarketFeed)
    statuses = []
    feed.on_status.append(statuses.append)
    await feed.connect()
    try:
        snaps = await take(feed, 6)
        first, last = snaps[0], snaps[-1]
        wanted = last.metadata["wanted"]
        assert wanted > 20                                   # more options than lines: it must rotate
        assert last.metadata["quoted"] >= first.metadata["quoted"]
        assert len(gateway.sessions[21].lines) == 2          # only the index and the future stream
        assert last.metadata["market_data"] == "live" and last.source == "ib"
        assert last.future is not None and last.future_contract is not None and last.future.ask > 0
        assert abs(last.underlying_price - gateway.world.market.spot) / gateway.world.market.spot < 0.01
        assert set(last.trading_class) <= {"SPX", "SPXW"}
        both = ~(np.isnan(last.bid) | np.isnan(last.ask))
        assert (last.ask[both] >= last.bid[both]).all()
        assert abs((last.timestamp - gateway.now()).total_seconds()) < 30   # the server's (simulated) clock
        # re-centring: the window follows the index
        lo = feed.wanted(last.underlying_price * 0.98)
        hi = feed.wanted(last.underlying_price * 1.02)
        assert {c.conId for c in lo} != {c.conId for c in hi}
        rotation = last.metadata["rotation_s"]
        assert rotation and rotation > s.market.snapshot_interval_s
        async for snap in feed.snapshots():                  # one full rotation later the chain is complete
            snaps.append(snap)
            if snap.metadata["complete"] or len(snaps) > 60:
                break
        assert snaps[-1].metadata["complete"] and snaps[-1].metadata["coverage"] > 0.5
        assert statuses[0].state is FeedState.CONNECTED
    finally:
        await feed.close()
    assert feed.status.state is FeedState.DISCONNECTED


async def test_feed_hedges_with_the_micro_future_when_configured(gateway, decoder_clean):
    s = make_settings(gateway.port)
    s.hedging.instrument = "MES"                             # as config/paper.yaml
    feed = IBFeed(s)
    await feed.connect()
    try:
        [snap] = await take(feed, 1)
    finally:
        await feed.close()
    assert snap.future_contract.symbol == "MES" and snap.future_contract.multiplier == 5.0
    assert snap.future.contract_id == snap.future_contract.contract_id and snap.future.ask > 0


async def test_feed_falls_back_to_delayed_data(gateway, decoder_clean):
    gateway.set_live_entitled(False)
    feed = IBFeed(make_settings(gateway.port, market_data_type="auto"))
    await feed.connect()
    try:
        snaps = await take(feed, 2)
        assert feed.delayed and snaps[-1].metadata["market_data"] == "delayed"
        assert "delayed" in feed.status.message
        assert len(snaps[-1]) > 0
    finally:
        await feed.close()


async def test_broker_places_cancels_and_fills_land(gateway, decoder_clean):
    s = make_settings(gateway.port)
    conn = IBConnection(s)
    feed, broker = IBFeed(s, conn), IBBroker(s, conn)       # one socket for both
    assert isinstance(broker, Broker)
    events, fills = [], []
    broker.on_order_event.append(events.append)
    broker.on_fill.append(fills.append)
    await feed.connect()
    await broker.connect()
    try:
        [snap] = await take(feed, 1)
        buy = option_order(snap, "sig-1", 2, marketable=True)
        await broker.place(buy)
        assert await wait_for(lambda: sum(f.quantity for f in fills) == 2)
        assert all(f.client_order_id == "sig-1" and f.commission > 0 for f in fills)
        assert await wait_for(lambda: events and events[-1].status is OrderStatus.FILLED)
        assert await broker.positions() == {buy.contract.contract_id: 2}

        rest = option_order(snap, "sig-2", 1, marketable=False)
        await broker.place(rest)
        assert await wait_for(lambda: any(e.client_order_id == "sig-2" and e.status is OrderStatus.SUBMITTED
                                          for e in events))
        assert [o.client_order_id for o in await broker.open_orders()] == ["sig-2"]
        await broker.modify("sig-2", limit_price=0.1)
        assert await wait_for(lambda: any(e.client_order_id == "sig-2" and e.limit_price == 0.1 for e in events))
        await broker.cancel("sig-2")
        assert await wait_for(lambda: events[-1].client_order_id == "sig-2"
                              and events[-1].status is OrderStatus.CANCELLED)
        suppressed = []
        broker.on_error.append(lambda info: suppressed.append(info.message))
        await broker.place(rest)                              # same client order id: never sent twice
        await conn.ib.reqCurrentTimeAsync()                   # answered after anything sent before it was read
        assert any("duplicate order sig-2 suppressed" in m for m in suppressed)
        assert sum(1 for o in gateway.orders.values() if o.view.order_ref == "sig-2") == 1
        await broker.cancel("nope")
        assert "cancel rejected" in events[-1].reason

        gateway.reject_next_orders(1, "not enough margin")
        await broker.place(option_order(snap, "sig-3", 1, marketable=True))
        assert await wait_for(lambda: events[-1].client_order_id == "sig-3"
                              and events[-1].status is OrderStatus.REJECTED)
        assert "not enough margin" in events[-1].reason
        got = await broker.fills_since(snap.timestamp.replace(year=2000))
        assert {f.fill_id for f in got} == {f.fill_id for f in fills}
        assert all(f.commission > 0 for f in got)
    finally:
        await broker.close()
        await feed.close()
    assert not conn.ib.isConnected()


async def test_disconnect_mid_order_flow_reconnects_without_duplicates_or_lost_fills(gateway, decoder_clean):
    s = make_settings(gateway.port)
    conn = IBConnection(s)
    feed, broker = IBFeed(s, conn), IBBroker(s, conn)
    events, fills, links, reports = [], [], [], []
    broker.on_order_event.append(events.append)
    broker.on_fill.append(fills.append)
    broker.on_connection.append(lambda up, msg: links.append(up))
    broker.on_reconcile.append(reports.append)
    await feed.connect()
    await broker.connect()
    try:
        [snap] = await take(feed, 1)
        # 1. the connection drops right after the order reaches the exchange: it fills while we are away
        gateway.drop_after_next_order()
        await broker.place(option_order(snap, "sig-away", 2, marketable=True))
        assert await wait_for(lambda: links[-1] is False, 5)
        assert await wait_for(lambda: links[-1] is True and broker.connected, 10)
        assert await wait_for(lambda: sum(f.quantity for f in fills if f.client_order_id == "sig-away") == 2)
        # delivered once: by ib_async's start-up sync of executions or by our reconcile, whichever came first
        assert any(f.client_order_id == "sig-away" for f in reports[-1].executions)
        assert any(e.client_order_id == "sig-away" and e.status is OrderStatus.FILLED for e in events)
        suppressed = []
        broker.on_error.append(lambda info: suppressed.append(info.message))
        await broker.place(option_order(snap, "sig-away", 2, marketable=True))   # the engine retries: suppressed
        await conn.ib.reqCurrentTimeAsync()                   # answered after anything sent before it was read
        assert any("duplicate order sig-away suppressed" in m for m in suppressed)
        assert sum(1 for o in gateway.orders.values() if o.view.order_ref == "sig-away") == 1

        # 2. a working order filling in slices loses its connection between slices
        gateway.partial_fills(1, pause_s=2.0)
        await broker.place(option_order(snap, "sig-slices", 3, marketable=True))
        assert await wait_for(lambda: any(f.client_order_id == "sig-slices" for f in fills), 5)
        gateway.drop_connections(21)
        assert await wait_for(lambda: links[-1] is True and broker.connected and len(links) >= 4, 10)
        assert await wait_for(lambda: sum(f.quantity for f in fills if f.client_order_id == "sig-slices") == 3, 10)
        assert await wait_for(lambda: any(e.client_order_id == "sig-slices" and e.status is OrderStatus.FILLED
                                          for e in events), 5)
        ids = [f.fill_id for f in fills]
        assert len(ids) == len(set(ids))                      # no fill delivered twice
        at_gateway = {e.exec_id for e in gateway.executions}
        assert set(ids) == at_gateway                         # and none lost
        assert sum(1 for o in gateway.orders.values() if o.view.order_ref == "sig-slices") == 1
        # the feed resubscribed and keeps producing snapshots
        more = await take(feed, 2)
        assert more[-1].sequence > snap.sequence
    finally:
        await broker.close()
        await feed.close()


async def test_line_limit_and_pacing_are_handled(decoder_clean):
    gw = PracticeGateway(make_settings(), max_lines=5, max_msg_rate=20)
    await gw.start(HOST, 0)
    s = make_settings(gw.port, line_budget=30, pacing_per_s=40)
    errors = []
    feed = IBFeed(s)
    feed.conn.on_error.append(lambda info: errors.append(info.code))
    await feed.connect()
    try:
        snaps = await take(feed, 3, timeout=30)
        assert 100 in errors                                  # over the gateway's 20 msg/s: some requests refused
        assert feed.conn.ib.isConnected() and len(snaps[-1]) > 0
        # streaming beyond the gateway's 5 lines: error 101, handled
        tickers = [feed.ib.reqMktData(c) for c in feed.wanted(snaps[-1].underlying_price)[:6]]
        assert await wait_for(lambda: 101 in errors, 10)
        assert tickers and feed.conn.ib.isConnected()
    finally:
        await feed.close()
        await gw.stop()


async def test_a_burst_of_messages_leaves_paced_and_none_is_refused(decoder_clean):
    """Sixty messages at once (a reconnect's re-requests, a cancel-all) go out at `ib.pacing_per_s`, spread over
    quarter seconds: a gateway enforcing TWS's rule (here 20 a second, TWS's is 50) refuses none and answers all.
    With ib_async's own throttle (45 within any second, sent at once) 25+ of them were refused with error 100."""
    gw = PracticeGateway(make_settings(), max_msg_rate=20)
    await gw.start(HOST, 0)
    conn = IBConnection(make_settings(gw.port, pacing_per_s=16))
    errors, answered = [], []
    conn.on_error.append(lambda info: errors.append(info.code))
    await conn.connect()
    reply = conn.ib.wrapper.currentTime
    conn.ib.wrapper.currentTime = lambda t: (answered.append(t), reply(t))
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        for _ in range(60):
            conn.ib.client.reqCurrentTime()
        assert await wait_for(lambda: len(answered) == 60, 30), f"{len(answered)} of 60 answered"
        assert 100 not in errors
        assert loop.time() - started >= (60 - 16) / 16 - 0.5     # spread over seconds, not sent at once
    finally:
        await conn.close()
        await gw.stop()


async def test_connect_failure_raises_connection_error():
    feed = IBFeed(make_settings(1, connect_timeout_s=1))
    with pytest.raises(ConnectionError):
        await feed.connect()


async def test_pacer_keeps_any_one_second_window_under_the_rate():
    pacer = Pacer(20)
    loop = asyncio.get_running_loop()
    stamps = []
    for _ in range(45):
        await pacer.wait()
        stamps.append(loop.time())
    worst = max(sum(1 for t in stamps if a <= t < a + 1.0) for a in stamps)
    assert worst <= 20
