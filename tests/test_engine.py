"""The trading engine on the real simulator, paper exchange and journal: what a trader relies on."""
from __future__ import annotations

from collections import Counter

import math
from datetime import date

import numpy as np
import pytest

from engine_support import SimRig, fast_settings, step_until_tradable_signal
from workstation.domain import OrderPurpose, OrderStatus, SignalState, TradingState
from workstation.reports import RiskReport
from workstation.risk.limits import RiskCode

DAY = date(2025, 10, 1)


@pytest.fixture
async def rig(tmp_path, warm_numba):
    r = await SimRig(tmp_path).open()
    yield r
    await r.close()


async def test_cycle_fits_the_surface_and_journals_the_fit(rig):
    report = await rig.step()
    fit = rig.engine.last_fit
    assert report.options >= 1500 and report.usable > 1000
    assert fit.accepted and fit.rmse_iv < 2.0 and fit.quotes_used >= 100
    assert set(report.timings_ms) >= {"surface", "calibration", "signals", "book", "orders"}
    assert rig.journal.fits(limit=1)[0].rmse == pytest.approx(fit.rmse_iv)


@pytest.mark.parametrize("name", ["heston", "bates", "heston_td"])
async def test_each_family_model_fits_the_cycle_and_feeds_the_model_values(tmp_path, name):
    """calibration.model selects the fitted model: the fit event carries it, the model values price with it."""
    from workstation.pricing.models import PARAMS_TYPE, price_model
    settings = fast_settings()
    settings.calibration.model = name
    r = await SimRig(tmp_path, settings).open()
    try:
        await r.step()
        fit = r.engine.last_fit
        assert fit.accepted, fit.message
        assert fit.model == name and isinstance(fit.model_params, PARAMS_TYPE[name])
        assert fit.rmse_iv < 2.0 and r.journal.fits(limit=1)[0].rmse == pytest.approx(fit.rmse_iv)
        surface = r.engine.last_surface
        values = r.engine.calibrator.evaluate(fit.model_params, surface)
        row = int(np.flatnonzero(np.isfinite(values.price))[0])
        assert values.price[row] == pytest.approx(float(price_model(
            name, fit.model_params, surface.forward[row], surface.snapshot.strike[row], surface.maturity[row],
            surface.discount[row], surface.snapshot.is_call[row], tol=settings.calibration.integration_tol)), rel=1e-12)
        # the pre-trade what-if reads the model too (its diffusion part)
        preview = r.engine.preview_order(surface.snapshot.contract(row).contract_id, "BUY", 1, None)
        assert preview.decision is not None, preview.message
    finally:
        await r.close()


async def test_signals_find_the_simulated_mispricings(rig):
    """The simulator's planted mispricings are quote mispricings: `relative` signals (quote vs the arbitrage-free
    fair surface, beyond fees and the surface's cross-validated uncertainty, lasting) land on contracts the
    simulator really mispriced, on the side that profits. (`model` measures the fair surface against the model,
    which a single mispriced quote does not move: `tests/test_model_signals.py`.) Every signal is journaled with
    its family."""
    hits, total = Counter(), Counter()
    family_of = {}
    for _ in range(40):
        await rig.step(15.0)
        mispriced = rig.world.market.mispricings()            # contract id -> vol offset
        for s in rig.engine.signals.new_signals():
            total[s.family] += 1
            family_of[s.signal_id] = s.family
            offset = mispriced.get(s.contract.contract_id, 0.0)
            hits[s.family] += (offset < 0 and s.side.value == "BUY") or (offset > 0 and s.side.value == "SELL")
    assert total["relative"] >= 5, "the engine found no relative signal in 10 simulated minutes"
    assert hits["relative"] / total["relative"] >= 0.8, f"only {hits['relative']} of {total['relative']} relative " \
                                                        "signals were on real mispricings"
    journaled = {s.signal_id: s.family for s in rig.journal.signals()}
    assert {sid: journaled.get(sid) for sid in family_of} == family_of     # the family is kept with the signal


async def test_approving_a_signal_sends_a_checked_order_that_fills_into_the_book(rig):
    rig.engine.settings.execution.aggressiveness = 1.0       # take the far side: fills at once
    signal = await step_until_tradable_signal(rig, 60)
    assert signal is not None, "no signal the limits allow in 15 simulated minutes"
    preview = rig.engine.approve_signal(signal.signal_id)
    assert preview.sent, preview.message
    assert all(r.passed for r in preview.decision.results)
    cid = preview.order.client_order_id
    checks = rig.journal.risk_checks(cid)                                   # journaled with the order, all passed
    assert checks and all(c.passed for c in checks)
    for _ in range(10):
        await rig.step(5.0)
        if rig.engine.orders.records[cid].status is OrderStatus.FILLED:
            break
    assert rig.engine.orders.records[cid].status is OrderStatus.FILLED
    held = rig.engine.book.quantity(signal.contract.contract_id)
    assert held == signal.side.sign * signal.quantity
    assert rig.journal.positions_from_fills()[signal.contract.contract_id].quantity == held
    assert {s.signal_id: s for s in rig.journal.signals()}[signal.signal_id].state is SignalState.ORDERED


async def test_var_is_revalued_when_the_book_changes_and_on_its_interval_otherwise(rig):
    """The full revaluation (VaR, stress) runs at once after a trade, then every risk.var_interval_s of market
    time; Greeks are measured every cycle in between."""
    rig.engine.settings.execution.aggressiveness = 1.0
    rig.engine.settings.risk.var_interval_s = 30.0

    async def step(seconds: float = 5.0) -> RiskReport:
        await rig.step(seconds)
        await rig.engine.settle_tasks()
        return rig.engine.last_risk

    first = await step()
    snap, usable = rig.engine.last_snapshot, rig.engine.last_surface.usable
    row = int(np.nanargmin(np.where(usable & (snap.maturity > 14 / 365), np.abs(snap.mid - 20.0), np.nan)))
    contract = snap.contract(row)                             # a modest premium, weeks from expiry
    for _ in range(4):          # buy one lot at the offer (the model may value it below the market)
        ask = float(rig.engine.last_snapshot.ask[rig.engine.last_snapshot.index_of(contract.contract_id)])
        preview = rig.engine.submit_order(contract.contract_id, "BUY", 1, ask)
        assert preview.sent, preview.message
        for _ in range(5):
            await step()
            if rig.engine.book.quantity(contract.contract_id):
                break
        if rig.engine.book.quantity(contract.contract_id):
            break
    assert rig.engine.book.quantity(contract.contract_id) == 1
    risk = await step()                                       # the first cycle that sees the new book
    assert risk.var_at == risk.at != first.var_at and risk.var99 > 0
    traded_at = risk.var_at
    seen = [await step() for _ in range(5)]                   # 25 s: the same VaR, fresh Greeks
    assert {r.var_at for r in seen} == {traded_at}
    assert len({r.at for r in seen}) == 5
    later = await step(10.0)                                  # 35 s after the trade: revalued
    assert later.var_at == later.at != traded_at


async def test_oversized_order_is_denied_with_its_reason_and_never_sent(rig):
    await rig.step()
    snap = rig.engine.chain()
    row = int(np.flatnonzero(rig.engine.last_surface.usable)[0])
    cid = int(snap.contract_id[row])
    preview = rig.engine.submit_order(cid, "BUY", rig.settings.risk.max_order_quantity + 1, None)
    assert not preview.sent and RiskCode.MAX_QUANTITY in preview.decision.reasons
    await rig.settle()
    order_id = preview.order.client_order_id
    assert rig.engine.orders.records[order_id].status is OrderStatus.REJECTED
    assert order_id not in {o.client_order_id for o in await rig.broker.open_orders()}
    assert rig.journal.order_states()[order_id].status is OrderStatus.REJECTED


async def test_kill_switch_cancels_working_orders_and_halts(rig):
    await rig.step()
    snap, surface = rig.engine.chain(), rig.engine.last_surface
    row = int(np.flatnonzero(surface.usable & (snap.bid > 5.0) & (snap.bid < 100.0))[0])
    # a resting bid well under the market: it works until cancelled
    preview = rig.engine.submit_order(int(snap.contract_id[row]), "BUY", 1, float(snap.bid[row]) - 0.5)
    assert preview.sent, preview.message
    await rig.settle()
    assert rig.engine.orders.working()
    rig.engine.kill_switch()
    await rig.settle()
    assert rig.engine.state is TradingState.HALTED
    assert not rig.engine.orders.working()
    again = rig.engine.submit_order(int(snap.contract_id[row]), "BUY", 1, float(snap.bid[row]) - 0.5)
    assert RiskCode.TRADING_HALTED in again.decision.reasons
    assert rig.engine.resume_trading()
    assert rig.engine.state is TradingState.ACTIVE


async def test_a_settings_change_is_enforced_on_the_next_order_and_journaled(rig):
    await rig.step()
    snap = rig.engine.chain()
    cid = int(snap.contract_id[int(np.flatnonzero(rig.engine.last_surface.usable)[0])])
    assert RiskCode.MAX_QUANTITY not in rig.engine.preview_order(cid, "BUY", 3, None).decision.reasons
    new = rig.engine.settings.model_copy(deep=True)
    new.signals.auto_max_quantity = 2               # the auto limit stays within the order limit (a rule)
    new.risk.max_order_quantity = 2
    assert rig.engine.apply_settings(new, source="test") == []
    assert RiskCode.MAX_QUANTITY in rig.engine.preview_order(cid, "BUY", 3, None).decision.reasons
    change = [c for c in rig.journal.settings_changes() if c.path == "risk.max_order_quantity"]
    assert change and change[-1].new == 2


async def test_delta_is_hedged_with_the_future(tmp_path, warm_numba):
    """The hedge sells round(delta / multiplier) futures: what is left is at most half a future's delta."""
    from workstation import bus as topics

    settings = fast_settings(hedging__band_delta=50.0, hedging__min_interval_s=0.0)
    settings.market.simulator.start_date = DAY
    rig = await SimRig(tmp_path, settings).open()
    seen = []                     # (order, book delta in $ per index point when the hedger sized it)
    rig.engine.bus.subscribe(topics.ORDER, lambda o: seen.append(
        (o, rig.engine.book.greeks.delta / (0.01 * rig.engine.chain().underlying_price))))
    try:
        await rig.step()
        snap, surface = rig.engine.chain(), rig.engine.last_surface
        money = snap.strike / surface.forward
        near = surface.usable & snap.is_call & (np.abs(money - 1) < 0.01) & (surface.maturity < 0.08)
        row = int(np.flatnonzero(near)[0])
        preview = rig.engine.submit_order(int(snap.contract_id[row]), "BUY", 3, float(snap.ask[row]))
        assert preview.sent, preview.message
        for _ in range(6):
            await rig.step()
        hedges = [(o, delta) for o, delta in seen if o.purpose is OrderPurpose.HEDGE]
        assert hedges, "no hedge"
        order, delta = hedges[0]
        multiplier = order.contract.multiplier
        assert abs(delta) > settings.hedging.band_delta                         # outside the band: hedged
        assert order.side.value == ("SELL" if delta > 0 else "BUY")
        assert order.quantity == round(abs(delta) / multiplier)                 # the rounding rule, exactly
        left = delta + order.side.sign * order.quantity * multiplier          # the hedger's delta_after
        assert abs(left) <= multiplier / 2 + 1e-9                               # at most half a future left over
        record = rig.engine.orders.records[order.client_order_id]
        assert record.status is OrderStatus.FILLED
        assert rig.engine.book.quantity(order.contract.contract_id) == order.side.sign * order.quantity
    finally:
        await rig.close()


async def test_only_the_newest_snapshot_is_processed_when_cycles_fall_behind(tmp_path, warm_numba):
    """The real pump and cycle loop (Engine.start) on the simulated feed with a manual clock, which yields
    snapshots as fast as the loop turns: while the first cycle is held in the worker thread the pump keeps only the
    newest snapshot and counts the others as skipped; the next cycle runs on the newest."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from gateway_support import wait_for

    settings = fast_settings()
    settings.market.simulator.start_date = DAY
    rig = SimRig(tmp_path, settings)
    engine = rig.engine
    engine.executor.shutdown(wait=True)
    engine.executor = ThreadPoolExecutor(1, thread_name_prefix="numerics")
    gate = threading.Event()
    engine.executor.submit(gate.wait)                     # the worker is busy: the first cycle waits its turn
    cycled = []                                           # the snapshot each cycle was given
    run_cycle = engine.run_cycle

    async def recording(snapshot):
        cycled.append(snapshot)
        return await run_cycle(snapshot)
    engine.run_cycle = recording
    try:
        await engine.start()
        assert await wait_for(lambda: engine.snapshots == 1 and engine.skipped >= 5, 60)
        await rig.feed.close()                            # no more snapshots: the pump ends
        pump = [t for t in engine._tasks if "_pump" in repr(t.get_coro())]
        assert await wait_for(lambda: all(t.done() for t in pump), 30)
        first, newest = cycled[0], engine._latest
        produced = newest.sequence - first.sequence + 1
        gate.set()
        assert await wait_for(lambda: engine.snapshots == 2, 300)
        assert cycled[1].sequence == newest.sequence                         # the newest, not the next
        assert engine.skipped == produced - 2                                 # every other one counted
        assert engine._latest is None
    finally:
        gate.set()
        await engine.stop()
        rig.journal.close()


async def test_headless_summary_has_the_documented_keys(rig):
    for _ in range(3):
        await rig.step()
    summary = rig.engine.summary()
    for key in ("snapshots", "fits", "signals", "orders", "fills", "positions", "pnl", "greeks", "trading_state",
                "alerts", "cycle_ms"):
        assert key in summary
    assert set(summary["fits"]) >= {"count", "median_ms", "p95_ms", "median_rmse_iv"}
    assert set(summary["cycle_ms"]) == {"p50", "p95", "max"}
    assert 0 < summary["cycle_ms"]["p50"] <= summary["cycle_ms"]["max"]        # every cycle timed
    assert summary["snapshots"] == 3 and summary["chain"]["options"] > 500
    assert summary["fits"]["count"] == 3 and math.isfinite(summary["fits"]["median_rmse_iv"])


def test_every_alert_code_the_engine_raises_is_documented():
    """The README's alert table is generated from the catalogue: an engine code missing there is a bug."""
    import re
    from pathlib import Path

    from workstation.alerts.codes import CATALOGUE
    package = Path(__file__).resolve().parents[1] / "workstation" / "engine"
    source = "\n".join(p.read_text() for p in sorted(package.glob("*.py")))
    raised = set(re.findall(r'\balert\("([A-Z_]+)"', source))
    assert raised and raised <= set(CATALOGUE), raised - set(CATALOGUE)


async def test_each_cycle_fits_the_arbitrage_free_fair_surface_to_the_quotes(rig):
    """The fair-value surface rides every cycle: aligned with the snapshot's rows, free of static arbitrage,
    inside the quoted spread for most of the quotes it was fitted to, and in the headless summary."""
    for _ in range(3):
        report = await rig.step()
    fair, snap = rig.engine.last_fair, rig.engine.last_snapshot
    assert fair is not None and fair.surface.snapshot is snap and len(fair.fair_iv) == len(snap)
    assert fair.arbitrage_violations == 0 and all(s.status == "ok" for s in fair.slices)
    rows = np.flatnonzero(fair.in_fit)
    inside = (fair.fair_price[rows] >= snap.bid[rows] - 1e-9) & (fair.fair_price[rows] <= snap.ask[rows] + 1e-9)
    assert rows.size > 500 and inside.mean() > 0.8
    assert "fair_value" in report.timings_ms
    summary = rig.engine.summary()["fair_value"]
    assert summary["arbitrage_violations"] == 0 and summary["inside_spread_pct"] == pytest.approx(
        100 * inside.mean(), abs=0.01)


async def test_a_fair_value_expiry_that_cannot_be_fitted_is_alerted_with_its_reason(rig):
    """An expiry whose quotes thin out keeps its last good fair slice (no relative signal from it), one whose
    quotes vanish leaves the surface; the trader is told once each, with the reason, and the alert is journaled."""
    from dataclasses import replace

    for _ in range(3):
        await rig.step()
    fitted = rig.engine.last_fair.slices
    thin, empty = fitted[2], fitted[3]                      # two short PM expiries the surface fitted
    rig.world.clock.advance(5.0)
    snap = rig.feed.snapshot_now()
    rank = np.argsort(np.argsort(np.abs(snap.strike - snap.underlying_price)))   # nearest the money first
    thin_rows = snap.expiry == thin.expiry
    near = rank <= np.sort(rank[thin_rows])[9]
    blank = (thin_rows & ~near) | (snap.expiry == empty.expiry)
    bid, ask = np.where(blank, np.nan, snap.bid), np.where(blank, np.nan, snap.ask)
    await rig.engine.run_cycle(replace(snap, bid=bid, ask=ask))
    after = {s.key: s for s in rig.engine.last_fair.slices}
    assert after[thin.key].status == "fallback" and "quotes" in after[thin.key].reason
    assert empty.key not in after
    alerts = [a.message for a in rig.journal.alerts() if a.code == "FAIR_VALUE_FALLBACK"]
    assert len(alerts) == 2
    assert any("fallback" in m and after[thin.key].reason in m for m in alerts)
    assert any("dropped" in m and "no quotes left" in m for m in alerts)
    assert not any(s.family == "relative" and s.contract.expiry == thin.expiry.astype(object)
                   for s in rig.engine.signals.new_signals())
    rig.world.clock.advance(5.0)
    snap = rig.feed.snapshot_now()
    blank = (snap.expiry == thin.expiry) & ~near | (snap.expiry == empty.expiry)
    await rig.engine.run_cycle(replace(snap, bid=np.where(blank, np.nan, snap.bid),
                                       ask=np.where(blank, np.nan, snap.ask)))      # still down: told once
    assert len([a for a in rig.journal.alerts() if a.code == "FAIR_VALUE_FALLBACK"]) == 2
