"""A frozen price is never acted on, on the real engine, simulator, paper exchange and journal (issue 20).

A feed line that dies while the options keep coming leaves the index (or the hedge future) at its last price with
an ever older time. Older than `market.stale_after_s`: a frozen index stops new signal orders, marks, exits and
hedges; a frozen future stops hedges only. DATA_STALE is raised once when a price turns stale (not every cycle),
and everything resumes by itself when the price is fresh again.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from engine_support import SimRig, fast_settings

from workstation import bus as topics
from workstation.domain import ChainSnapshot, OrderPurpose, Quote

STALE_AFTER_S = 12.0
STEP_S = 5.0


class DeadLines:
    """The rig's live market with the index and/or future line frozen: price and time held from the moment
    each line died, as a feed shows a line that stopped ticking."""

    def __init__(self, rig: SimRig) -> None:
        self.rig = rig
        self.index: tuple[float, datetime] | None = None
        self.future: Quote | None = None

    def kill_index(self, snap: ChainSnapshot) -> None:
        self.index = (snap.underlying_price, snap.timestamp)

    def kill_future(self, snap: ChainSnapshot) -> None:
        self.future = snap.future

    def revive_index(self) -> None:
        self.index = None

    def revive(self) -> None:
        self.index, self.future = None, None

    def snapshot(self) -> ChainSnapshot:
        snap = self.rig.feed.snapshot_now()
        if self.index is not None:
            snap = replace(snap, underlying_price=self.index[0], underlying_time=self.index[1])
        if self.future is not None:
            snap = replace(snap, future=self.future)
        return snap


async def _cycle(rig: SimRig, lines: DeadLines) -> None:
    rig.world.clock.advance(STEP_S)
    rig.broker.pump()
    await rig.engine.run_cycle(lines.snapshot())
    await rig.settle()


def _orders(rig: SimRig, purpose: OrderPurpose | None = None) -> set[str]:
    return {coid for coid, r in rig.engine.orders.records.items() if purpose is None or r.order.purpose is purpose}


def _auto_approvable(rig: SimRig) -> list[str]:
    """NEW signals auto-execution would approve now (within its size and premium limits, sized above 0)."""
    cfg = rig.engine.settings.signals
    return [s.signal_id for s in rig.engine.signals.new_signals()
            if 0 < s.quantity <= cfg.auto_max_quantity
            and s.limit_reference * s.quantity * s.contract.multiplier <= cfg.auto_max_premium]


def _hedge_due(rig: SimRig) -> bool:
    """The hedger would hedge the book now on a live future quote (the book's delta is outside the band)."""
    engine, snap = rig.engine, rig.feed.snapshot_now()
    delta_points = engine.book.greeks.delta / (0.01 * snap.underlying_price)
    return engine.hedger.propose(delta_points, snap.future_contract, snap.future, engine.clock()) is not None


def _stale_alerts(rig: SimRig) -> int:
    return rig.engine.alert_counts.get("DATA_STALE", 0)


def _alert_messages(rig: SimRig, code: str) -> list[str]:
    """The messages of every `code` alert the engine publishes from now on."""
    seen: list[str] = []
    rig.engine.bus.subscribe(topics.ALERT, lambda a: seen.append(a.message) if a.code == code else None)
    return seen


@pytest.fixture
async def rig(tmp_path, warm_numba):
    s = fast_settings(signals__min_zscore=0.5, signals__min_edge_dollars=1.0, signals__min_edge_vol=0.05,
                      signals__spread_multiple=0.0, signals__min_history=3, signals__max_quantity=2,
                      signals__auto_max_quantity=1, signals__auto_max_premium=1_500.0, execution__aggressiveness=1.0,
                      hedging__band_delta=50.0, hedging__min_interval_s=0.0,
                      risk__max_order_premium=100_000.0)
    s.market.stale_after_s = STALE_AFTER_S
    s.market.simulator.mispricing_rate = 0.2
    s.hedging.enabled = False
    r = await SimRig(tmp_path, s).open()
    yield r
    await r.close()


async def test_a_frozen_index_stops_signals_marks_and_hedges_a_frozen_future_stops_hedges_then_both_resume(rig):
    engine, lines = rig.engine, DeadLines(rig)
    stale = _alert_messages(rig, "DATA_STALE")
    for _ in range(4):
        await _cycle(rig, lines)
    # a long position whose delta (about $165 a point) is outside the 50 band once hedging is on
    snap, surface = engine.last_snapshot, engine.last_surface
    rows = [r for r in range(len(snap)) if surface.usable[r] and snap.is_call[r] and snap.maturity[r] * 365 > 20]
    row = min(rows, key=lambda r: abs(snap.strike[r] / surface.forward[r] - 1.0))
    cid = int(snap.contract_id[row])
    assert engine.submit_order(cid, "BUY", 3, float(snap.ask[row])).sent
    for _ in range(3):
        await _cycle(rig, lines)
    assert engine.book.quantity(cid) == 3
    assert _stale_alerts(rig) == 0

    # 1. the index line dies: once its age passes stale_after_s nothing is sent and nothing is marked
    lines.kill_index(rig.feed.snapshot_now())
    await _cycle(rig, lines)
    await _cycle(rig, lines)                                    # 10 s old: still fresh
    assert not engine.market.freshness.index_stale and not stale
    await _cycle(rig, lines)                                    # 15 s old: stale from here
    assert engine.market.freshness.index_stale and not engine.market.freshness.future_stale
    engine.settings.hedging.enabled = True                      # from now on a hedge and signal orders are due
    engine.auto_execute = True
    orders, mark = _orders(rig), engine.book.mark_of(cid)
    waiting, mids_moved, due = set(), False, False
    for _ in range(6):
        await _cycle(rig, lines)
        waiting |= set(_auto_approvable(rig))
        due |= _hedge_due(rig)
        used = engine.last_snapshot
        mids_moved |= float(used.mid[used.index_of(cid)]) != mark
        assert _orders(rig) == orders                           # no signal order, exit or hedge
        assert engine.book.mark_of(cid) == mark                 # the book keeps its last good mark
    assert waiting, "no signal was waiting for auto-execution: the signal gate was not exercised"
    assert due, "no hedge was due: the hedge gate was not exercised"
    assert mids_moved, "the options never moved: the mark gate was not exercised"
    assert _stale_alerts(rig) == 1                              # once for the transition, not once a cycle
    assert len(stale) == 1 and stale[0].startswith("index price stale")

    # 2. the future line dies too: still nothing, and the future's transition alerts once
    lines.kill_future(rig.feed.snapshot_now())
    for _ in range(4):
        await _cycle(rig, lines)
        assert _orders(rig) == orders and engine.book.mark_of(cid) == mark
    assert engine.market.freshness.index_stale and engine.market.freshness.future_stale
    assert len(stale) == 2 and stale[1].startswith("future price stale")

    # 3. the index is back, the future still frozen: signals and marks resume, hedges still wait
    lines.revive_index()
    signal_orders = _orders(rig, OrderPurpose.SIGNAL)
    for _ in range(5):
        await _cycle(rig, lines)
        used = engine.last_snapshot
        assert engine.book.mark_of(cid) == pytest.approx(float(used.mid[used.index_of(cid)]))   # marked again
        assert not _orders(rig, OrderPurpose.HEDGE)
    assert engine.market.freshness.future_stale and not engine.market.freshness.index_stale
    assert _orders(rig, OrderPurpose.SIGNAL) - signal_orders, "no signal was auto-executed once the index was fresh"
    assert len(stale) == 2 and _stale_alerts(rig) == 2         # no alert while nothing turns stale
    assert _hedge_due(rig), "the book's delta came back inside the band: the hedge gate was not exercised"

    # 4. both lines live again: the hedge goes out on the next cycle, no further alert
    lines.revive()
    await _cycle(rig, lines)
    hedges = _orders(rig, OrderPurpose.HEDGE)
    assert len(hedges) == 1
    assert not engine.market.freshness.index_stale and not engine.market.freshness.future_stale
    assert _stale_alerts(rig) == 2

    # 5. the index line dies again: a new transition, a new alert (once)
    lines.kill_index(rig.feed.snapshot_now())
    for _ in range(5):
        await _cycle(rig, lines)
    assert engine.market.freshness.index_stale
    assert len(stale) == 3 and stale[2].startswith("index price stale")
