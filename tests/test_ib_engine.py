"""The whole engine on the IB code path: IBFeed + IBBroker (ib_async) against the practice gateway over a real
socket. Snapshots arrive, signals become orders, fills land in the book and the journal."""
from __future__ import annotations


import pytest

pytest.importorskip("ib_async")

from engine_support import SIM_DAY  # noqa: E402
from workstation.config import Settings  # noqa: E402
from workstation.domain import OrderStatus  # noqa: E402
from workstation.engine import build_engine  # noqa: E402
from workstation.domain import TradingState  # noqa: E402
from workstation.sim.gateway import PracticeGateway  # noqa: E402

from gateway_support import wait_for  # noqa: E402

HOST = "127.0.0.1"


def ib_settings(port: int) -> Settings:
    s = Settings()
    sim = s.market.simulator
    sim.always_open, sim.speed, sim.seed, sim.start_date = True, 20.0, 3, SIM_DAY
    sim.mispricing_rate, sim.mispricing_size_vol, sim.mispricing_max_spreads = 0.2, 0.05, 100.0
    s.market.source, s.execution.broker = "ib", "ib"
    s.market.snapshot_interval_s = 1.0
    # two expiries inside the fair surface's window (>= 7 days): the market-data line budget then gives each enough
    # quotes to fit, and the `relative` / `model` families measure against a trusted surface
    s.market.min_expiry_days, s.market.max_expiry_days = 7, 9
    s.market.strike_window = 0.05
    s.signals.min_history, s.signals.min_zscore = 3, 1.5
    s.execution.aggressiveness = 1.0
    s.risk.allow_uncovered_shorts = True
    s.ib.host, s.ib.port, s.ib.client_id = HOST, port, 31
    s.ib.connect_timeout_s, s.ib.reconnect_max_backoff_s = 5, 1.0
    return s


@pytest.mark.slow
async def test_engine_trades_end_to_end_through_the_practice_gateway(tmp_path, warm_numba):
    probe = PracticeGateway(ib_settings(7497))
    port = await probe.start(HOST, 0)
    settings = ib_settings(port)
    engine = build_engine(settings, tmp_path)
    engine.auto_execute = True
    try:
        await engine.start()
        assert engine.connection == "ib-paper"
        # generous: a cold numba cache compiles for 30+ s before the first fit
        assert await wait_for(lambda: engine.book.fill_count and engine.snapshots >= 5, 300)
        assert engine.last_fit is not None
        filled = [r for r in engine.orders.records.values() if r.status is OrderStatus.FILLED]
        assert filled, f"no order filled; orders {engine.orders.counts()}, signals {engine.signals.counts}"
        # every execution reaches the journal, once, and every journaled fill is a real execution
        assert await wait_for(lambda: {f.fill_id for f in engine.journal.fills()} == {e.exec_id for e in
                                                                                      probe.executions}, 30)
        fills = engine.journal.fills()
        assert len(fills) == len({f.fill_id for f in fills})
        assert engine.journal.order_states()[filled[0].order.client_order_id].status is OrderStatus.FILLED
        book = {cid: p.quantity for cid, p in engine.book.positions.items() if p.quantity}
        assert book == {cid: p.quantity for cid, p in engine.journal.positions_from_fills().items() if p.quantity}
    finally:
        await engine.stop()
        await probe.stop()


@pytest.mark.parametrize("halt", [True, False])
async def test_a_broker_disconnect_halts_per_config_until_it_reconnects(tmp_path, halt, warm_numba):
    """ib.halt_on_disconnect: HALTED while the socket is down (BROKER_DISCONNECTED), ACTIVE again once the adapter
    reconnects (BROKER_RECONNECTED); off: the state is left alone and only the alerts tell."""
    probe = PracticeGateway(ib_settings(7497))
    port = await probe.start(HOST, 0)
    settings = ib_settings(port)
    settings.ib.halt_on_disconnect = halt
    engine = build_engine(settings, tmp_path)
    states = []
    engine.bus.subscribe("trading_state", states.append)
    try:
        await engine.start()
        assert engine.broker.connected and engine.state is TradingState.ACTIVE
        assert probe.drop_connections(31) == 1
        assert await wait_for(lambda: engine.alert_counts.get("BROKER_DISCONNECTED"), 10)
        assert engine.state is (TradingState.HALTED if halt else TradingState.ACTIVE)
        assert await wait_for(lambda: engine.alert_counts.get("BROKER_RECONNECTED") and engine.broker.connected, 30)
        # ACTIVE again once the reconcile that follows the reconnect has passed (it runs as a task)
        assert await wait_for(lambda: engine.state is TradingState.ACTIVE, 30), engine.trading.reason
        assert states == ([TradingState.HALTED, TradingState.ACTIVE] if halt else [])
    finally:
        await engine.stop()
        await probe.stop()
