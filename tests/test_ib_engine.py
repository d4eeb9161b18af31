"""The whole engine on the IB code path: IBFeed + IBBroker (ib_async) against the practice gateway over a real
socket. Snapshots arrive, signals become orders, fills land in the book and the journal."""
from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("ib_async")

from engine_support import SIM_DAY  # noqa: E402
from workstation.config import Settings  # noqa: E402
from workstation.domain import OrderStatus  # noqa: E402
from workstation.engine import build_engine  # noqa: E402
from workstation.sim.gateway import PracticeGateway  # noqa: E402

HOST = "127.0.0.1"


def ib_settings(port: int) -> Settings:
    s = Settings()
    sim = s.market.simulator
    sim.always_open, sim.speed, sim.seed, sim.start_date = True, 20.0, 3, SIM_DAY
    sim.mispricing_rate, sim.mispricing_size_vol = 0.2, 0.05
    s.market.source, s.execution.broker = "ib", "ib"
    s.market.snapshot_interval_s = 1.0
    s.market.max_expiry_days = 45
    s.market.strike_window = 0.05
    s.signals.min_history, s.signals.min_zscore = 3, 1.5
    s.execution.aggressiveness = 1.0
    s.risk.allow_uncovered_shorts = True
    s.ib.host, s.ib.port, s.ib.client_id = HOST, port, 31
    s.ib.connect_timeout_s, s.ib.reconnect_max_backoff_s = 5, 1.0
    return s


@pytest.mark.slow
async def test_engine_trades_end_to_end_through_the_practice_gateway(tmp_path):
    probe = PracticeGateway(ib_settings(7497))
    port = await probe.start(HOST, 0)
    settings = ib_settings(port)
    engine = build_engine(settings, tmp_path)
    engine.auto_execute = True
    try:
        await engine.start()
        assert engine.connection == "ib-paper"
        for _ in range(120):                      # up to ~60 s of wall time
            await asyncio.sleep(0.5)
            if engine.book.fill_count and engine.snapshots >= 5:
                break
        assert engine.snapshots >= 3
        assert engine.last_fit is not None
        filled = [r for r in engine.orders.records.values() if r.status is OrderStatus.FILLED]
        assert filled, f"no order filled; orders {engine.orders.counts()}, signals {engine.signals.counts}"
        await asyncio.sleep(1.0)                  # let the last executions arrive
        journal_fills = {f.fill_id for f in engine.journal.fills()}
        gateway_execs = {e.exec_id for e in probe.executions}
        assert journal_fills and journal_fills <= gateway_execs           # every fill is a real execution, once
        assert engine.journal.order_states()[filled[0].order.client_order_id].status is OrderStatus.FILLED
        book = {cid: p.quantity for cid, p in engine.book.positions.items() if p.quantity}
        assert book == {cid: p.quantity for cid, p in engine.journal.positions_from_fills().items() if p.quantity}
    finally:
        await engine.stop()
        await probe.stop()
