"""What real IB does with the socket up, over a real socket with ib_async against the practice gateway:
1100/1101/1102, data-farm breaks (2103/2104), an acknowledgement lost in a disconnect, a restart that rolls
nextValidId back; and the engine on top: HALTED with "IB connectivity lost", ACTIVE again only after a reconcile,
RECONCILE_MISMATCH until the trader accepts the broker's positions, the nightly-restart window, and an unreachable
TWS at start (headless exit 2, or --wait)."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest

pytest.importorskip("ib_async")

from workstation.domain import ChainSnapshot, OrderStatus, TradingState  # noqa: E402
from workstation.execution.ib import IBBroker  # noqa: E402
from workstation.market.feed import FeedState  # noqa: E402
from workstation.market.ib import IBConnection, IBFeed, ib_contract  # noqa: E402
from workstation.market.ib_codes import CODES, Effect, effect_of  # noqa: E402
from workstation.market.ib_session import PACING_SLICE_S, ConnectionState, pace_every_message  # noqa: E402

from gateway_support import decoder_clean, gateway, wait_for  # noqa: E402,F401  (fixtures)
from test_ib_adapters import make_settings, option_order, take  # noqa: E402


# how long a restore may take before the test calls it broken: a bound for a hung run only, never a speed target
# (the 10 s "fresh data after 1101/2104" target is measured by benchmarks/soak.py)
RESTORE_WAIT_S = 120.0


def streamed_since(gw, t0: float) -> set[str]:
    """Streaming lines (IND, FUT) requested at the gateway since `t0` (its time.monotonic log: order only)."""
    return {kind for at, kind in gw.stream_requests if at >= t0}


async def snapshot_after(feed: IBFeed, after: datetime) -> ChainSnapshot:
    """The first snapshot whose index and future both ticked after `after` (on the server clock the feed stamps
    its ticks with): data that arrived after that moment, however long the machine took to bring it."""
    async def first() -> ChainSnapshot:
        async for snap in feed.snapshots():
            if (snap.underlying_time is not None and snap.underlying_time > after
                    and snap.future is not None and snap.future.timestamp > after):
                return snap
        raise AssertionError("the feed stopped before fresh data arrived")
    return await asyncio.wait_for(first(), RESTORE_WAIT_S)


async def rig(gw, **ib):
    s = make_settings(gw.port, **ib)
    conn = IBConnection(s)
    feed, broker = IBFeed(s, conn), IBBroker(s, conn)
    seen = {"events": [], "fills": [], "links": [], "reports": [], "status": []}
    broker.on_order_event.append(seen["events"].append)
    broker.on_fill.append(seen["fills"].append)
    broker.on_connection.append(lambda up, msg: seen["links"].append((up, msg)))
    broker.on_reconcile.append(seen["reports"].append)
    feed.on_status.append(seen["status"].append)
    await feed.connect()
    await broker.connect()
    return s, conn, feed, broker, seen


def test_the_code_table_is_the_one_home_of_connectivity_codes():
    assert effect_of(1100) is Effect.IB_LOST and effect_of(1101) is Effect.RESTORED_DATA_LOST
    assert effect_of(1102) is Effect.RESTORED_DATA_KEPT
    assert {c for c in (2103, 2105, 2157) if effect_of(c) is Effect.FARM_DOWN} == {2103, 2105, 2157}
    assert {c for c in (2104, 2106, 2158) if effect_of(c) is Effect.FARM_UP} == {2104, 2106, 2158}
    assert effect_of(2199) is Effect.INFO and effect_of(99999) is None
    assert all(code == info.code and info.meaning for code, info in CODES.items())


async def test_1100_is_a_disconnect_and_1101_resubscribes_then_reconciles(gateway, decoder_clean):
    s, conn, feed, broker, seen = await rig(gateway)
    try:
        [snap] = await take(feed, 1)
        gateway.lose_ib()
        assert await wait_for(lambda: seen["links"] and seen["links"][-1] == (False, "IB connectivity lost"))
        assert not broker.connected and feed.status.state is FeedState.DISCONNECTED
        await broker.place(option_order(snap, "in-outage", 1, marketable=False))    # refused by the broker
        assert seen["events"][-1].reason == "broker not connected" and "in-outage" not in gateway.order_refs
        from ib_async import LimitOrder                       # the gateway does see an order sent into the outage
        assert await wait_for(lambda: any(s.knows_ib_lost for s in gateway.sessions.values()))
        conn.ib.placeOrder(ib_contract(option_order(snap, "x", 1, False).contract), LimitOrder("BUY", 1, 0.05))
        assert await wait_for(lambda: gateway.orders_while_lost == 1)
        reports = len(seen["reports"])
        t0 = time.monotonic()
        gateway.restore_ib(data_lost=True)
        assert await wait_for(lambda: seen["links"][-1][0] is True, RESTORE_WAIT_S)
        assert len(seen["reports"]) == reports + 1             # reconciled before it reported itself back
        assert "1101" in seen["links"][-1][1]
        assert await wait_for(lambda: streamed_since(gateway, t0) == {"IND", "FUT"}, RESTORE_WAIT_S)
        snap = await snapshot_after(feed, conn.now())          # data lost: fresh only from the new lines
        assert snap.index_age_s <= s.market.stale_after_s and snap.future_age_s <= s.market.stale_after_s
    finally:
        await broker.close()
        await feed.close()


async def test_1102_reconciles_without_resubscribing(gateway, decoder_clean):
    s, conn, feed, broker, seen = await rig(gateway)
    try:
        await take(feed, 1)
        gateway.lose_ib()
        assert await wait_for(lambda: seen["links"] and seen["links"][-1][0] is False)
        t0, reports = time.monotonic(), len(seen["reports"])
        gateway.restore_ib(data_lost=False)
        assert await wait_for(lambda: seen["links"][-1][0] is True, RESTORE_WAIT_S)
        assert len(seen["reports"]) == reports + 1 and "1102" in seen["links"][-1][1]
        [snap] = await take(feed, 1)
        assert streamed_since(gateway, t0) == set() and snap.index_age_s <= s.market.stale_after_s
    finally:
        await broker.close()
        await feed.close()


async def test_a_broken_farm_makes_the_data_stale_and_2104_resubscribes(gateway, decoder_clean):
    s, conn, feed, broker, seen = await rig(gateway)
    s.market.stale_after_s = feed.stale_after_s = 20.0       # simulated seconds (speed 5: 4 s of wall time)
    try:
        await take(feed, 1)
        gateway.farm_down()
        assert await wait_for(lambda: "farm" in feed.status.message and feed.status.state is FeedState.STALE)

        async def index_age() -> float:
            [snap] = await take(feed, 1)
            return snap.index_age_s
        for _ in range(60):                                   # the index line is dead: its age only grows
            if await index_age() > s.market.stale_after_s:
                break
        assert await index_age() > s.market.stale_after_s
        t0 = time.monotonic()
        gateway.farm_up()
        assert await wait_for(lambda: streamed_since(gateway, t0) == {"IND", "FUT"}, RESTORE_WAIT_S)
        snap = await snapshot_after(feed, conn.now())          # the index ticks again on its new line
        assert snap.index_age_s <= s.market.stale_after_s
        assert feed.resubscriptions == 1 and not feed.farms_down
    finally:
        await broker.close()
        await feed.close()


async def test_streaming_lines_that_fall_silent_without_a_notice_are_requested_again(gateway, decoder_clean):
    """The soak's one 2104 without fresh data: TWS dropped the resubscription for pacing (error 100), so the lines
    were open for us and dead at TWS. Lines silent for stale_after_s with no farm down are requested again."""
    s, conn, feed, broker, seen = await rig(gateway)
    s.market.stale_after_s = feed.stale_after_s = 20.0       # simulated seconds (speed 5: 4 s of wall time)
    try:
        await take(feed, 1)
        before = feed.resubscriptions
        t0 = time.monotonic()
        for session in gateway.sessions.values():             # dead at the gateway, and nobody says so
            for line in session.lines.values():
                line.dead = True
        aged = False
        for _ in range(60):                                   # the feed's cycles notice it: the ages grow, then
            [snap] = await take(feed, 1)                      # the lines are requested again and tick
            aged |= snap.index_age_s > s.market.stale_after_s
            if streamed_since(gateway, t0) == {"IND", "FUT"} and snap.index_age_s <= s.market.stale_after_s \
                    and snap.future_age_s <= s.market.stale_after_s:
                break
        assert aged and streamed_since(gateway, t0) == {"IND", "FUT"}
        assert snap.index_age_s <= s.market.stale_after_s and snap.future_age_s <= s.market.stale_after_s
        assert feed.resubscriptions == before + 1 and not feed.farms_down
    finally:
        await broker.close()
        await feed.close()


async def test_a_modify_whose_acknowledgement_was_lost_is_resolved_not_resent(gateway, decoder_clean):
    s, conn, feed, broker, seen = await rig(gateway)
    try:
        [snap] = await take(feed, 1)
        await broker.place(option_order(snap, "mod-1", 1, marketable=False))
        assert await wait_for(lambda: any(e.client_order_id == "mod-1" and e.status is OrderStatus.SUBMITTED
                                          for e in seen["events"]))
        gateway.lose_next_ack()
        await broker.modify("mod-1", limit_price=0.1)         # applied at the gateway, the socket cut before the ack
        assert await wait_for(lambda: seen["links"][-1][0] is False, 5)
        await broker.modify("mod-1", limit_price=0.15)        # while away: refused, not queued
        assert await wait_for(lambda: seen["links"][-1][0] is True and broker.connected, 10)
        resolved = [e for e in seen["events"] if e.client_order_id == "mod-1" and "after reconnect" in e.reason]
        assert resolved and resolved[-1].limit_price == 0.1 and "confirmed" in resolved[-1].reason
        assert gateway.modifies == {"mod-1": 1} and gateway.order_refs == {"mod-1": 1}
        live = [o for o in gateway.orders.values() if o.view.order_ref == "mod-1" and o.working]
        assert len(live) == 1 and live[0].view.limit_price == 0.1
        await broker.modify("mod-1", limit_price=0.2)         # resolved: the next modify is a new one
        assert await wait_for(lambda: gateway.modifies["mod-1"] == 2)
    finally:
        await broker.close()
        await feed.close()


@pytest.mark.parametrize("msg_id, where", [(61, "inside the handshake's own requests (reqPositions)"),
                                            (49, "as the handshake ends (reqCurrentTime)"),
                                            (16, "while the broker reconciles (reqAllOpenOrders)")])
async def test_a_connection_cut_again_while_it_is_restored_is_restored_again(gateway, decoder_clean, msg_id, where):
    """The CI soak hung here: a gateway restart landed 0.15 s into a reconnect's handshake. ib_async's connectAsync
    swallows a disconnect among its start-up requests, so the reconnect "succeeded" on a dead socket, the
    connection said CONNECTED and nothing reconnected again until the process was killed 4.5 minutes later."""
    s, conn, feed, broker, seen = await rig(gateway)
    try:
        await take(feed, 1)
        reconnects = conn.reconnects
        gateway.drop_connections(s.ib.client_id)
        gateway.drop_on_next_request(msg_id)              # the new session is cut there: `where`
        assert await wait_for(lambda: gateway.faults.drop_on_request is None, RESTORE_WAIT_S), "never got there"
        # connected at both ends: the client may call the cut socket up until it reads the close, and the gateway
        # holds a session for us only once a new one has been handed over
        assert await wait_for(lambda: conn.connected and conn.ib.isConnected() and s.ib.client_id in gateway.sessions,
                              RESTORE_WAIT_S), f"cut {where}: state {conn.state}, socket up {conn.ib.isConnected()}"
        assert conn.reconnects > reconnects
        t_up = time.monotonic()
        await snapshot_after(feed, conn.now())            # and data flows again, from lines asked for anew
        assert streamed_since(gateway, t_up) >= {"IND", "FUT"}
    finally:
        await broker.close()
        await feed.close()


async def test_a_restart_that_rolls_next_valid_id_back_never_reuses_an_order_id(gateway, decoder_clean):
    s, conn, feed, broker, seen = await rig(gateway)
    try:
        [snap] = await take(feed, 1)
        await broker.place(option_order(snap, "before", 1, marketable=True))
        assert await wait_for(lambda: any(f.client_order_id == "before" for f in seen["fills"]))
        first_id = next(o.view.order_id for o in gateway.orders.values() if o.view.order_ref == "before")
        await gateway.restart(down_s=0.5, rollback_ids=True)
        assert gateway.next_order_id(s.ib.client_id) == 1     # TWS would hand out id 1 again
        assert await wait_for(lambda: broker.connected and seen["links"][-1][0] is True, 10)
        await broker.place(option_order(snap, "after", 1, marketable=True))
        assert await wait_for(lambda: any(f.client_order_id == "after" for f in seen["fills"]), 10)
        after = [o.view for o in gateway.orders.values() if o.view.order_ref == "after"]
        assert len(after) == 1 and after[0].order_id > first_id
        assert gateway.modifies == {} and gateway.duplicate_order_refs == {}
        before = [o.view for o in gateway.orders.values() if o.view.order_ref == "before"]
        assert before[0].filled == 1 and before[0].quantity == 1   # the old order was not "modified"
    finally:
        await broker.close()
        await feed.close()


# ------------------------------------------------------------------------------------------------ the engine
def engine_settings(port: int):
    s = make_settings(port)
    s.market.simulator.speed = 20.0
    s.market.snapshot_interval_s = 1.0
    s.market.max_expiry_days = 45
    s.market.strike_window = 0.05
    s.signals.min_history, s.signals.min_zscore = 3, 1.5
    s.market.simulator.mispricing_rate, s.market.simulator.mispricing_size_vol = 0.2, 0.05
    s.market.simulator.mispricing_max_spreads = 100.0
    s.risk.allow_uncovered_shorts = True
    s.ib.client_id = 41
    return s


@pytest.fixture
async def engine_gateway(tmp_path):
    from workstation.engine import build_engine
    from workstation.sim.gateway import PracticeGateway
    gw = PracticeGateway(engine_settings(7497))
    port = await gw.start("127.0.0.1", 0)
    settings = engine_settings(port)
    built = []

    def make(**changes):
        for path, value in changes.items():
            section, name = path.split("__")
            setattr(getattr(settings, section), name, value)
        engine = build_engine(settings, tmp_path)
        engine.auto_execute = True
        built.append(engine)
        return engine
    yield gw, make
    for engine in built:
        await engine.stop()
    await gw.stop()


def released_by(engine, code: str) -> list[str]:
    return [c.reason for c in engine.trading.history if c.code == code and c.state is TradingState.ACTIVE]


@pytest.mark.slow
async def test_engine_halts_on_1100_and_trades_again_only_after_a_reconcile(engine_gateway, decoder_clean):
    gw, make = engine_gateway
    engine = make()
    await engine.start()
    assert await wait_for(lambda: engine.snapshots >= 2, 30)
    gw.lose_ib()
    assert await wait_for(lambda: engine.state is TradingState.HALTED, 5)
    assert engine.trading.reason == "IB connectivity lost"
    before = engine.recovery.reconciles
    sim_start = gw.now()                                      # an outage of a simulated minute
    assert await wait_for(lambda: gw.now() - sim_start > timedelta(seconds=60), 10)
    assert gw.orders_while_lost == 0 and engine.state is TradingState.HALTED
    gw.restore_ib(data_lost=True)
    assert await wait_for(lambda: engine.state is TradingState.ACTIVE, 15)
    assert engine.recovery.reconciles > before
    assert any("reconciled with the broker" in r for r in released_by(engine, "BROKER_DISCONNECTED"))
    assert await wait_for(lambda: engine.freshness is not None and not engine.freshness.index_stale, 10)
    assert gw.orders_while_lost == 0 and gw.duplicate_order_refs == {}


@pytest.mark.slow
async def test_a_position_mismatch_holds_until_the_trader_accepts_the_broker_positions(engine_gateway,
                                                                                      decoder_clean):
    gw, make = engine_gateway
    engine = make()
    await engine.start()
    assert await wait_for(lambda: engine.last_snapshot is not None, 30)
    engine.auto_execute = False
    snap = engine.last_snapshot
    contract = option_order(snap, "x", 1, True).contract
    gw.move_position(contract, 2)           # an assignment or transfer: the broker's position moves, no execution
    gw.lose_ib()
    assert await wait_for(lambda: engine.state is TradingState.HALTED, 5)
    gw.restore_ib(data_lost=False)
    assert await wait_for(lambda: "RECONCILE_MISMATCH" in engine.trading.holds, 15)
    assert engine.state is TradingState.HALTED and "BROKER_DISCONNECTED" not in engine.trading.holds
    cid = contract.contract_id
    adjusted = await engine.accept_broker_positions()
    assert adjusted == {cid: (0, 2)}
    assert engine.state is TradingState.ACTIVE and engine.book.quantity(cid) == 2
    assert engine.journal.positions_from_fills()[cid].quantity == 2


@pytest.mark.slow
async def test_the_nightly_restart_stops_new_orders_and_waits_for_a_reconcile(engine_gateway, decoder_clean):
    gw, make = engine_gateway
    from workstation.config import DailyRestart
    now = gw.now()
    restart_at = (now + timedelta(minutes=3)).replace(second=0, microsecond=0)
    lead = (restart_at - now).total_seconds() - 40            # the hold starts ~2 s (40 simulated s) from now
    engine = make(ib__daily_restart=DailyRestart(time=f"{restart_at:%H:%M}", zone="UTC", stop_before_s=lead,
                                                 expect_down_s=1800))
    gw.schedule_restart(restart_at, down_s=1.0, rollback_ids=True)
    await engine.start()
    assert await wait_for(lambda: "IB_DAILY_RESTART" in engine.trading.holds, 30)
    assert engine.state is TradingState.HALTED
    sent = sum(gw.order_refs.values()) + sum(gw.modifies.values())
    assert await wait_for(lambda: gw.restarts == 1, 30)
    assert await wait_for(lambda: engine.state is TradingState.ACTIVE, 30)
    assert sum(gw.order_refs.values()) + sum(gw.modifies.values()) == sent   # nothing sent in the window
    assert gw.now() >= restart_at and released_by(engine, "IB_DAILY_RESTART")
    assert engine.recovery.reconciles >= 2                       # at start, and after the restart
    assert gw.duplicate_order_refs == {}


def test_headless_exits_2_with_one_line_when_tws_is_unreachable(tmp_path, capsys):
    import socket
    from workstation.headless import BrokerUnreachable, run_for
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]                          # closed again: nobody listens there
    s = make_settings(port, connect_timeout_s=1.0)
    with pytest.raises(BrokerUnreachable, match="not reachable"):
        asyncio.run(run_for(s, tmp_path, 1.0, console_alerts=False))
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith("TWS / IB Gateway not reachable") for line in err)


@pytest.mark.slow
async def test_headless_wait_keeps_retrying_until_tws_appears(tmp_path):
    import socket
    from workstation.headless import run_for
    from workstation.sim.gateway import PracticeGateway
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = make_settings(port, connect_timeout_s=1.0)
    run = asyncio.ensure_future(run_for(s, tmp_path, 2.0, console_alerts=False, wait=True))
    await asyncio.sleep(2.0)                                  # longer than connect_timeout_s: still retrying
    assert not run.done()
    gw = PracticeGateway(make_settings())
    await gw.start("127.0.0.1", port)
    try:
        summary = await asyncio.wait_for(run, 60)
        assert summary["snapshots"] >= 1
    finally:
        await gw.stop()


def test_the_window_shows_a_banner_while_tws_is_unreachable_and_names_stale_data(qtbot):
    pytest.importorskip("pytestqt")
    from workstation.config import Settings
    from workstation.execution.recovery import BrokerUnreachable, connect_with_retry
    from workstation.ui.main_window import MainWindow

    class Refused:
        async def connect(self):
            raise ConnectionError("Connect call failed")
    s = Settings()
    s.market.source, s.ib.port, s.ib.connect_timeout_s = "ib", 1, 0.6
    window = MainWindow(None, s)
    qtbot.addWidget(window)
    with pytest.raises(BrokerUnreachable):
        asyncio.run(connect_with_retry(Refused(), s, False, window.show_banner))
    assert not window.banner_bar.isHidden() and "not reachable at 127.0.0.1:1" in window.banner.text()
    window.show_banner("")
    assert window.banner_bar.isHidden()
    from workstation.reports import EngineStatus
    window.status_line.on_status(EngineStatus(
        connection="ib-paper", connected=True, feed="stale", data_age_s=1.0,
        sim_time=datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc), clock_label="", trading_state="ACTIVE",
        trading_reason="", stale_data=("index 42s", "future 40s"), auto_execute=False, read_only=False, day_pnl=0.0,
        loop_lag_ms=0.0))
    assert window.status_line.data_age.text() == "data 1.0s - stale: index 42s, future 40s"


async def test_the_gateway_schedules_a_daily_restart_in_new_york_time(gateway):
    from zoneinfo import ZoneInfo
    now = gateway.now()
    local = now.astimezone(ZoneInfo("America/New_York"))
    target = (local + timedelta(hours=1)).strftime("%H:%M")
    at = gateway.schedule_daily_restart(target, down_s=0.2)
    assert timedelta(minutes=59) < at - now <= timedelta(hours=1)
    assert at.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == target
    earlier = (local - timedelta(hours=1)).strftime("%H:%M")      # already past today: tomorrow
    assert timedelta(hours=22) < gateway.schedule_daily_restart(earlier) - now <= timedelta(hours=23)


async def test_orders_still_queued_in_the_client_when_ib_is_lost_never_reach_tws(gateway, decoder_clean):
    s, conn, feed, broker, seen = await rig(gateway)
    try:
        [snap] = await take(feed, 1)
        await feed.close()                                      # no quote requests queue beside the orders
        client = conn.ib.client
        await asyncio.sleep(PACING_SLICE_S + 0.1)
        client.sendMsg(None)                                    # the throttle forgets what left before its window
        client.MaxRequests, client.RequestsInterval = 1, 30.0   # ... then one message per 30 s: the 2nd and 3rd
        for i in range(3):                                      # orders wait in ib_async's queue
            await broker.place(option_order(snap, f"q-{i}", 1, marketable=False))
        assert await wait_for(lambda: "q-0" in gateway.order_refs, 20)     # the first one is on the wire
        gateway.lose_ib()
        assert await wait_for(lambda: not broker.connected)
        pace_every_message(conn.ib, s.ib.pacing_per_s)
        assert conn.withheld_orders == 2
        gateway.restore_ib(data_lost=False)
        assert await wait_for(lambda: broker.connected and seen["links"][-1][0] is True, 10)
        assert set(gateway.order_refs) == {"q-0"} and gateway.orders_while_lost == 0
        assert [o.client_order_id for o in await broker.open_orders()] == ["q-0"]
    finally:
        await broker.close()
        await feed.close()


async def test_a_reconcile_that_fails_keeps_trading_halted_until_one_passes():
    from datetime import datetime, timezone

    from workstation.execution.recovery import Recovery
    from workstation.risk.state import TradingStateMachine
    trading, calls, tasks = TradingStateMachine(), [], []

    async def reconcile():
        calls.append(1)
        if len(calls) == 1:
            raise TimeoutError("executions not answered")
        return {"missing_fills": 0, "closed_orders": 0, "position_mismatches": 0}
    recovery = Recovery(trading, lambda: datetime(2026, 12, 4, 15, tzinfo=timezone.utc), reconcile,
                        lambda change: None, lambda *a: None, lambda coro, name: tasks.append(asyncio.ensure_future(coro)),
                        lambda: True, lambda: None)
    assert await recovery.reconcile("start") is None
    assert trading.state is TradingState.HALTED and trading.reason == "reconcile with the broker pending"
    await asyncio.wait_for(asyncio.gather(*tasks), 10)         # the retry (after 2 s) passes
    assert trading.state is TradingState.ACTIVE and len(calls) == 2


async def test_a_1100_that_comes_with_the_handshake_is_an_outage_from_the_first_moment(gateway, decoder_clean):
    """TWS already without IB when we connect (or reconnect): the 1100 arrives inside the handshake, before the
    session calls itself connected. Seen in the 30-minute soak as an order sent into an outage after a restart."""
    gw = gateway
    gw.lose_ib()
    s, conn, feed, broker, seen = await rig(gw)
    assert conn.state is ConnectionState.IB_LOST
    assert seen["links"] == [(False, "IB connectivity lost")]
    assert feed.status.state is FeedState.DISCONNECTED
    reports = len(seen["reports"])
    gw.drop_connections()                                      # and again on a reconnect during the outage
    assert await wait_for(lambda: conn.reconnects == 1 and conn.state is ConnectionState.IB_LOST, 30)
    assert await wait_for(lambda: len(seen["reports"]) > reports, 30)   # the reconnect's reconcile ran ...
    await asyncio.sleep(0)
    assert not any(up for up, _ in seen["links"])              # ... and did not call the link up
    gw.restore_ib(data_lost=True)
    assert await wait_for(lambda: conn.state is ConnectionState.CONNECTED and seen["links"][-1][0], RESTORE_WAIT_S)
    assert "restored" in seen["links"][-1][1]
    await feed.close()
    await broker.close()


@pytest.mark.slow
async def test_an_engine_started_during_an_outage_sends_nothing_until_ib_is_back(engine_gateway, decoder_clean):
    gw, make = engine_gateway
    gw.lose_ib()
    engine = make()
    await engine.start()
    assert await wait_for(lambda: engine.state is TradingState.HALTED and engine.recovery.reconciles >= 1, 30)
    assert "BROKER_DISCONNECTED" in engine.trading.holds, engine.trading.holds
    sim_start = gw.now()                                       # a simulated minute of outage
    assert await wait_for(lambda: gw.now() - sim_start > timedelta(seconds=60), 10)
    assert engine.state is TradingState.HALTED
    assert sum(gw.order_refs.values()) == 0 and gw.orders_while_lost == 0
    gw.restore_ib(data_lost=True)
    assert await wait_for(lambda: engine.state is TradingState.ACTIVE, RESTORE_WAIT_S)
    assert released_by(engine, "BROKER_DISCONNECTED")
