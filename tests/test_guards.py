"""Guards on the real engine, simulator, paper exchange and journal: nothing acts on a number that has not
earned it (garbage quotes, a garbage future, a whole garbage snapshot, an index off the options' forward, a chain
that collapsed; a real new level is accepted), the two garbage recordings backtested with hedging on fill nothing
away from the clean market, the Greek and VaR limits count every order, a cycle that keeps failing and a journal
that cannot write stop trading until the trader resumes, and shutdown still cancels (and says so)."""
from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from chain_support import simulated_snapshots

from engine_support import SimRig, fast_settings
from workstation.backtest.runner import run
from workstation.config import Settings
from workstation.domain import ChainSnapshot, OrderPurpose, Quote, SecType, Side, TradingState
from workstation.domain.ticks import round_to_tick
from workstation.market.recorder import SnapshotRecorder
from workstation.risk.limits import RiskCode


@pytest.fixture
async def rig(tmp_path):
    s = fast_settings()
    s.market.simulator.mispricing_rate = 0.0          # no planted mispricings: the tests place their orders
    s.hedging.enabled = False
    r = await SimRig(tmp_path, s).open()
    yield r
    await r.close()


async def _cycle(rig: SimRig, snapshot=None, seconds: float = 5.0):
    """Advance the market and run one cycle on `snapshot` (the market's own when None)."""
    rig.world.clock.advance(seconds)
    rig.broker.pump()
    report = await rig.engine.run_cycle(snapshot if snapshot is not None else rig.feed.snapshot_now())
    await rig.settle()
    return report


def _atm_calls(rig: SimRig, n: int, min_days: float = 20.0) -> list[int]:
    """Contract ids of `n` usable calls nearest the money, weeks from expiry."""
    snap, surface = rig.engine.last_snapshot, rig.engine.last_surface
    ok = surface.usable & snap.is_call & (snap.maturity * 365 > min_days)
    rows = np.flatnonzero(ok)
    rows = rows[np.argsort(np.abs(snap.strike[rows] / surface.forward[rows] - 1.0))][:n]
    return [int(snap.contract_id[r]) for r in rows]


async def test_twenty_orders_in_one_cycle_cannot_pass_the_gamma_limit_together(rig):
    """The incident: 20 buy-call orders in 0.2 s each saw gamma$ 0. Working orders now count as if filled."""
    for _ in range(3):
        await _cycle(rig)
    ids = _atm_calls(rig, 20)
    one = rig.engine.market_for(rig.engine.contract_by_id(ids[0])).greeks.gamma
    rig.engine.settings.risk.max_gamma_dollars = 4.5 * one            # room for about four lots
    sent = []
    for cid in ids:                                                     # all in the same cycle
        snap = rig.engine.last_snapshot
        bid = float(snap.bid[snap.index_of(cid)])
        pv = rig.engine.submit_order(cid, "BUY", 1, round_to_tick(bid * 0.9, "down"))        # rests below bid
        sent.append(pv)
    approved = [pv for pv in sent if pv.sent]
    denied = [pv for pv in sent if not pv.sent]
    assert 1 <= len(approved) <= 5, [pv.message for pv in sent]
    assert denied and all(RiskCode.GAMMA_LIMIT in pv.decision.reasons for pv in denied)
    pending = sum(rig.engine.market_for(pv.order.contract).greeks.gamma for pv in approved)
    assert pending <= rig.engine.settings.risk.max_gamma_dollars * 1.01


async def test_var_is_checked_before_the_trade_on_the_running_engine(rig):
    """The incident: VaR99 $179k-228k against a $100k limit and VaR never checked before a trade. With the limit
    lowered below the book's VaR, the next order that adds risk is denied VAR_LIMIT, one that reduces it passes,
    and the denial makes the next monitor run revalue at once (not `var_interval_s` later)."""
    engine = rig.engine
    engine.settings.risk.var_interval_s = 3600.0            # no timed revaluation inside this test
    for _ in range(3):
        await _cycle(rig)
    cid = _atm_calls(rig, 1)[0]
    snap = engine.last_snapshot
    assert engine.submit_order(cid, "BUY", 2, float(snap.ask[snap.index_of(cid)])).sent
    for _ in range(3):
        await _cycle(rig)
        await engine.settle_tasks()                           # the monitor's revaluation included
    assert engine.book.quantity(cid) == 2
    var99, revalued_at = engine.last_risk.var99, engine.last_risk.var_at
    assert var99 > 0
    await _cycle(rig)                                         # same book, within var_interval_s: no revaluation
    await engine.settle_tasks()
    assert engine.last_risk.var_at == revalued_at and engine.supervisor.revalue_now is False

    lower = engine.settings.model_copy(deep=True)
    lower.risk.max_var_99 = 0.5 * var99
    assert engine.apply_settings(lower, source="test") == []
    snap = engine.last_snapshot
    row = snap.index_of(cid)
    adds = engine.submit_order(cid, "BUY", 1, float(snap.ask[row]))
    assert not adds.sent and list(adds.decision.reasons) == [RiskCode.VAR_LIMIT], adds.message
    assert engine.supervisor.revalue_now                      # the what-if bound: revalue on the next run
    report = await _cycle(rig)                                # the same book: revalued for the flag alone
    await engine.settle_tasks()
    assert engine.last_risk.var_at == report.timestamp != revalued_at
    assert engine.supervisor.revalue_now is False
    assert engine.last_risk.var99 > engine.settings.risk.max_var_99
    snap = engine.last_snapshot
    reduces = engine.submit_order(cid, "SELL", 1, float(snap.bid[snap.index_of(cid)]))
    assert reduces.sent and RiskCode.VAR_LIMIT not in reduces.decision.reasons, reduces.message


async def test_greeks_include_a_fill_before_the_next_cycle(rig):
    for _ in range(3):
        await _cycle(rig)
    cid = _atm_calls(rig, 1)[0]
    snap = rig.engine.last_snapshot
    ask = float(snap.ask[snap.index_of(cid)])
    assert rig.engine.submit_order(cid, "BUY", 2, ask).sent
    for _ in range(20):                                   # the exchange answers; no engine cycle runs
        rig.world.clock.advance(0.2)
        rig.broker.pump()
        await asyncio.sleep(0)
        if rig.engine.book.quantity(cid) == 2:
            break
    assert rig.engine.book.quantity(cid) == 2
    expected = rig.engine.market_for(rig.engine.contract_by_id(cid)).greeks.scaled(2)
    assert rig.engine.book.greeks.gamma == pytest.approx(expected.gamma, rel=1e-9)
    assert rig.engine.book.greeks.delta == pytest.approx(expected.delta, rel=1e-9)


async def test_a_snapshot_with_every_quote_times_ten_is_skipped_and_nothing_trades(rig):
    rig.engine.auto_execute = True
    for _ in range(4):
        await _cycle(rig)
    orders_before = len(rig.engine.orders.records)
    snap = rig.feed.snapshot_now()
    garbage = replace(snap, bid=snap.bid * 10, ask=snap.ask * 10)
    report = await _cycle(rig, garbage, 0.0)
    assert report.filter_counts.get("SNAPSHOT_SKIPPED") == 1 and report.usable == 0
    assert rig.engine.alert_counts.get("DATA_REJECTED", 0) == 1
    assert len(rig.engine.orders.records) == orders_before
    assert rig.engine.last_snapshot is not garbage and float(np.nanmax(rig.engine.last_snapshot.ask)) < \
        float(np.nanmax(garbage.ask))
    assert rig.engine.sanity.counts["SNAPSHOT_SKIPPED"] == 1
    report = await _cycle(rig)                                  # the clean market: back to normal
    assert report.usable > 1000 and "SNAPSHOT_SKIPPED" not in report.filter_counts


async def test_one_quote_times_ten_is_blanked_and_cannot_signal(rig):
    rig.engine.settings.signals.min_history = 2
    for _ in range(4):
        await _cycle(rig)
    snap = rig.feed.snapshot_now()
    cid = _atm_calls(rig, 1)[0]
    row = snap.index_of(cid)
    bid, ask = snap.bid.copy(), snap.ask.copy()
    bid[row] *= 10
    ask[row] *= 10
    report = await _cycle(rig, replace(snap, bid=bid, ask=ask), 0.0)
    assert 1 <= report.filter_counts.get("JUMP", 0) <= 3          # the quote (and at most its parity pair)
    used = rig.engine.last_snapshot
    assert math.isnan(used.bid[used.index_of(cid)]) and math.isnan(used.ask[used.index_of(cid)])
    market = rig.engine.market_for(rig.engine.contract_by_id(cid))
    assert math.isnan(market.bid) and math.isnan(market.ask) and math.isnan(market.mid)   # no quote to act on
    assert all(s.contract.contract_id != cid for s in rig.engine.signals.new_signals())


async def test_an_index_far_from_the_options_forward_skips_the_snapshot(rig):
    """INDEX_BAD: the index 5 % off the nearest expiry's parity forward (max_index_basis 3 %): index or chain is
    bad, nothing acts on the snapshot."""
    rig.engine.auto_execute = True
    for _ in range(4):
        await _cycle(rig)
    orders_before = len(rig.engine.orders.records)
    snap = rig.feed.snapshot_now()
    report = await _cycle(rig, replace(snap, underlying_price=snap.underlying_price * 1.05), 0.0)
    assert report.filter_counts.get("SNAPSHOT_SKIPPED") == 1 and report.usable == 0
    assert rig.engine.sanity.counts["INDEX_BAD"] == 1 and rig.engine.sanity.counts["SNAPSHOT_SKIPPED"] == 1
    assert rig.engine.alert_counts.get("DATA_REJECTED", 0) == 1
    assert len(rig.engine.orders.records) == orders_before
    assert rig.engine.last_snapshot.underlying_price == pytest.approx(snap.underlying_price, rel=0.01)
    report = await _cycle(rig)                                  # the clean market: back to normal
    assert "SNAPSHOT_SKIPPED" not in report.filter_counts and rig.engine.sanity.counts["INDEX_BAD"] == 1


async def test_a_snapshot_whose_usable_quotes_collapse_is_skipped(rig):
    """max_usable_drop (0.5): two thirds of the quotes lose their prices at once; the snapshot is skipped
    rather than fitted and traded on a third of the chain."""
    rig.engine.auto_execute = True
    for _ in range(4):
        await _cycle(rig)
    orders_before = len(rig.engine.orders.records)
    snap = rig.feed.snapshot_now()
    gone = np.arange(len(snap)) % 3 != 0
    bid, ask = snap.bid.copy(), snap.ask.copy()
    bid[gone] = np.nan
    ask[gone] = np.nan
    report = await _cycle(rig, replace(snap, bid=bid, ask=ask), 0.0)
    assert report.filter_counts.get("SNAPSHOT_SKIPPED") == 1 and report.usable == 0
    assert rig.engine.sanity.counts["SNAPSHOT_SKIPPED"] == 1 and rig.engine.sanity.counts["INDEX_BAD"] == 0
    assert rig.engine.alert_counts.get("DATA_REJECTED", 0) == 1
    assert len(rig.engine.orders.records) == orders_before
    report = await _cycle(rig)
    assert report.usable > 1000 and "SNAPSHOT_SKIPPED" not in report.filter_counts


async def test_a_new_level_that_persists_is_accepted_after_confirm_snapshots(rig):
    """A real gap is not a bad print: a quote that jumped stays blanked until the same new level has been seen
    `market.sanity.confirm_snapshots` (3) snapshots in a row, then it is the market's again."""
    confirm = rig.engine.settings.market.sanity.confirm_snapshots
    assert confirm == 3
    for _ in range(4):
        await _cycle(rig)
    cid = _atm_calls(rig, 1)[0]
    snap = rig.feed.snapshot_now()
    row = snap.index_of(cid)
    bid, ask = snap.bid.copy(), snap.ask.copy()
    bid[row] *= 2                                                 # ATM: about twice the implied vol
    ask[row] *= 2
    gapped = replace(snap, bid=bid, ask=ask)
    seen = []
    for _ in range(confirm + 1):
        await _cycle(rig, gapped, 0.0)
        used = rig.engine.last_snapshot
        seen.append(float(used.bid[used.index_of(cid)]))
    assert all(math.isnan(b) for b in seen[:confirm - 1])          # blanked: the first sightings
    assert seen[confirm - 1:] == [bid[row]] * 2                    # the third in a row: the market's level
    assert rig.engine.sanity.counts["JUMP"] >= confirm - 1
    assert rig.engine.alert_counts.get("DATA_REJECTED", 0) == 0


async def test_a_garbage_future_quote_never_prices_a_hedge(tmp_path):
    """The incident: the future quoted 1.00/1.25 and the hedger bought 47 ES at 1.25. Now its quote is dropped
    (DATA_REJECTED), no hedge goes out at a price away from the clean market, and hedging resumes when clean."""
    s = fast_settings(hedging__band_delta=50.0, hedging__min_interval_s=0.0)
    s.market.simulator.mispricing_rate = 0.0
    rig = await SimRig(tmp_path, s).open()
    try:
        for _ in range(3):
            await _cycle(rig)
        cid = _atm_calls(rig, 1)[0]
        snap = rig.engine.last_snapshot
        rig.engine.settings.hedging.enabled = False
        assert rig.engine.submit_order(cid, "BUY", 2, float(snap.ask[snap.index_of(cid)])).sent
        for _ in range(3):
            await _cycle(rig)
        assert rig.engine.book.quantity(cid) == 2                     # delta about $110 a point: hedge 2
        rig.engine.settings.hedging.enabled = True
        for _ in range(5):
            clean = rig.feed.snapshot_now()
            bad = replace(clean, future=Quote(clean.future.contract_id, 1.00, 1.25, 10, 10, clean.timestamp))
            await _cycle(rig, bad)
        hedges = [r for r in rig.engine.orders.records.values() if r.order.purpose is OrderPurpose.HEDGE]
        assert not hedges
        assert rig.engine.sanity.counts["FUTURE_BAD"] == 5 and rig.engine.alert_counts["DATA_REJECTED"] >= 1
        await _cycle(rig)                                                   # a clean quote: hedge at ~the index
        hedges = [r for r in rig.engine.orders.records.values() if r.order.purpose is OrderPurpose.HEDGE]
        assert len(hedges) == 1 and hedges[0].order.side is Side.SELL
        assert abs(hedges[0].order.limit_price / rig.engine.last_snapshot.underlying_price - 1.0) < 0.03
    finally:
        await rig.close()


async def test_cycles_that_keep_failing_halt_trading(rig, monkeypatch):
    """The NaN-config incident: every cycle failed yet orders went out. Now `engine.max_failed_cycles` failures
    in a row HALT until the trader resumes (the real cycle loop, fed snapshots as the pump does)."""
    engine = rig.engine
    engine.settings.engine.max_failed_cycles = 3

    def broken(*args, **kwargs):
        raise ValueError("cannot convert float NaN to integer")
    monkeypatch.setattr(engine.hedger, "propose", broken)
    engine._running = True
    loop_task = asyncio.ensure_future(engine._cycle_loop())
    try:
        for i in range(4):
            rig.world.clock.advance(5.0)
            engine._latest = rig.feed.snapshot_now()
            engine._wake.set()
            for _ in range(6000):                            # only a bound for a hung cycle (60 s)
                await asyncio.sleep(0.01)
                if engine.failed_cycles > i or engine.state is TradingState.HALTED and i >= 3:
                    break
        assert engine.failed_cycles >= 3
        assert engine.state is TradingState.HALTED and "cycles failed" in engine.trading.reason
        assert engine.alert_counts.get("CYCLES_FAILING") == 1
        cid = _atm_calls(rig, 1)[0] if engine.last_surface is not None else None
        if cid is not None:
            assert RiskCode.TRADING_HALTED in engine.submit_order(cid, "BUY", 1, None).decision.reasons
        monkeypatch.undo()                                    # the cause is gone: cycles succeed again ...
        for _ in range(2):
            rig.world.clock.advance(5.0)
            engine._latest = rig.feed.snapshot_now()
            engine._wake.set()
            for _ in range(6000):                            # only a bound for a hung cycle (60 s)
                await asyncio.sleep(0.01)
                if engine.failed_cycles == 0 and engine._latest is None and engine.last_surface is not None:
                    break
        assert engine.failed_cycles == 0 and engine.last_surface is not None
        assert engine.state is TradingState.HALTED                  # ... and trading stays HALTED
        cid = _atm_calls(rig, 1)[0]
        assert RiskCode.TRADING_HALTED in engine.submit_order(cid, "BUY", 1, None).decision.reasons
        assert engine.resume_trading()                              # until the trader resumes
        assert engine.state is TradingState.ACTIVE
    finally:
        engine._running = False
        engine._wake.set()
        await asyncio.wait_for(loop_task, 5)


async def test_a_journal_that_cannot_write_halts_and_shutdown_still_cancels(rig, caplog):
    engine = rig.engine
    for _ in range(3):
        await _cycle(rig)
    cid = _atm_calls(rig, 1)[0]
    snap = engine.last_snapshot
    resting = round_to_tick(float(snap.bid[snap.index_of(cid)]) * 0.8, "down")
    pv = engine.submit_order(cid, "BUY", 1, resting)
    assert pv.sent
    await rig.settle()
    assert engine.orders.working()
    engine.journal.close()                                     # the disk is gone: every write now fails
    blocked = engine.submit_order(cid, "BUY", 1, resting)
    assert not blocked.sent and "journal" in blocked.message
    assert engine.state is TradingState.HALTED and engine.alert_counts.get("JOURNAL_WRITE_FAILED", 0) >= 1
    engine._running = True                                      # as if started: stop() must still cancel
    with caplog.at_level(logging.ERROR, logger="workstation.execution.orders"):
        await engine.stop()
    said = [r.getMessage() for r in caplog.records if r.name == "workstation.execution.orders"]
    assert f"cancel of {pv.order.client_order_id} not journaled" in " ".join(said)
    assert any("sending it anyway" in m for m in said), said     # and says so
    rig.broker.pump()
    rig.world.clock.advance(1.0)
    rig.world.sync()
    assert rig.world.exchange.open_orders() == []                # cancelled at the exchange


async def test_settings_that_break_a_rule_across_fields_are_refused_by_the_engine(rig):
    """Assignments check one field at a time; the engine re-checks the whole before taking new settings."""
    new = rig.engine.settings.model_copy(deep=True)
    new.risk.max_position = 1                              # below max_order_quantity: a broken pair
    problems = rig.engine.apply_settings(new, source="test")
    assert problems and any("max_position" in p for p in problems)
    assert rig.engine.settings.risk.max_position != 1      # nothing applied


# ------------------------------------------------------------------ the two garbage recordings, as backtests
BACKTEST_DAY = date(2025, 10, 1)          # a Wednesday: the simulated session opens 09:30 ET
GARBAGE_FROM = 39                         # the 40th snapshot (0-based)




@pytest.fixture(scope="module")
def clean_snaps() -> list[ChainSnapshot]:
    return asyncio.run(simulated_snapshots(60, BACKTEST_DAY))


def _record(snaps: list[ChainSnapshot], out: Path) -> Path:
    with SnapshotRecorder(out) as rec:
        for snap in snaps:
            rec.write(snap)
    return out


def _hedging_backtest_settings() -> Settings:
    """Signals that trade within half an hour (auto-execution is implied in backtests) and a tight hedge band. The
    planted mispricings are single quotes, which trade as `relative` signals (the `model` family measures the
    fair surface, which they do not move): half the default uncertainty margin lets enough of them trade."""
    s = Settings()
    s.risk.allow_uncovered_shorts = True
    s.risk.max_position = 50
    s.signals.min_zscore, s.signals.min_edge_dollars, s.signals.min_history = 2.0, 20.0, 4
    s.signals.relative_uncertainty = 1.0
    s.market.simulator.mispricing_max_spreads = 100.0
    s.hedging.enabled, s.hedging.band_delta, s.hedging.min_interval_s = True, 20.0, 0.0
    return s


def _fills_inside_the_clean_quotes(result, clean: list[ChainSnapshot]) -> None:
    """Every fill at a price the clean market quoted at that instant (slippage is 0); every future fill within
    3 % of the index."""
    by_time = {s.timestamp: s for s in clean}
    assert result.fills
    for f in result.fills:
        snap = by_time[f.timestamp]
        if f.contract.sec_type is SecType.FUTURE:
            bid, ask = snap.future.bid, snap.future.ask
            assert abs(f.price / snap.underlying_price - 1.0) < 0.03, f
        else:
            row = snap.index_of(f.contract.contract_id)
            bid, ask = float(snap.bid[row]), float(snap.ask[row])
        assert bid - 1e-9 <= f.price <= ask + 1e-9, (f, bid, ask)


@pytest.mark.parametrize("first_bad", [GARBAGE_FROM, 31], ids=["from-the-40th", "as-a-hedge-is-working"])
def test_a_recording_whose_future_turns_to_garbage_hedges_nothing_on_it(clean_snaps, tmp_path, first_bad):
    """The incident as it happened: a recording whose future quote became 1.00 / 1.25 from the 40th snapshot on;
    the backtest's hedger bought 47 ES at 1.25 and 1.00. Also from the 32nd snapshot, the one a hedge sent on the
    31st's clean quote reaches the exchange on (it filled at 1.25 until the backtest broker traded only on the
    quotes the sanity check kept)."""
    bad = [replace(s, future=Quote(s.future.contract_id, 1.00, 1.25, 10, 10, s.future.timestamp))
           if i >= first_bad else s for i, s in enumerate(clean_snaps)]
    settings = _hedging_backtest_settings()
    result = run(settings, _record(bad, tmp_path / "rec"))
    assert result.snapshots == 60 and result.cycle_failures == 0
    _fills_inside_the_clean_quotes(result, clean_snaps)
    start = clean_snaps[first_bad].timestamp
    assert not [f for f in result.fills if f.contract.sec_type is SecType.FUTURE and f.timestamp >= start]
    hedges = {coid: o for coid, o in result.orders.items() if o["purpose"] == "hedge"}
    assert hedges and all(o["created_at"] < start for o in hedges.values())     # hedging was on, until the garbage
    # the why: the future's quote dropped in every garbage cycle, each one alerted
    assert result.summary["quality"]["FUTURE_BAD"] == 60 - first_bad
    assert result.summary["alerts"]["DATA_REJECTED"] == 60 - first_bad
    # a hedge was due on the garbage: the book's delta left the band and only the dropped quote stopped it
    band = settings.hedging.band_delta
    due = [row for row in result.equity if row["timestamp"] >= start
           and abs(row["delta"] / (0.01 * clean_snaps[0].underlying_price)) > band]
    assert due


def test_a_recording_with_one_snapshot_times_ten_trades_nothing_on_it(clean_snaps, tmp_path):
    """The incident: every option quote x10 in one snapshot, and the engine sold a put at 650.0 (the real quote
    65.0 / 66.2). In a backtest a sell resting from the snapshot before also filled at the x10 bid."""
    bad = [replace(s, bid=s.bid * 10, ask=s.ask * 10) if i == GARBAGE_FROM else s
           for i, s in enumerate(clean_snaps)]
    result = run(_hedging_backtest_settings(), _record(bad, tmp_path / "rec"))
    assert result.snapshots == 60 and result.cycle_failures == 0
    _fills_inside_the_clean_quotes(result, clean_snaps)
    garbage_at = clean_snaps[GARBAGE_FROM].timestamp
    assert not [f for f in result.fills if f.timestamp == garbage_at]
    assert not [o for o in result.orders.values() if o["created_at"] == garbage_at]
    assert [f for f in result.fills if f.timestamp > garbage_at]                 # trading goes on after it
    assert result.summary["quality"]["SNAPSHOT_SKIPPED"] == 1
    assert result.summary["alerts"]["DATA_REJECTED"] == 1
