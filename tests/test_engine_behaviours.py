"""Behaviours a trader relies on, end to end on the real engine, simulator, paper exchange and journal (a manual
clock, a pinned simulated day): a rejected fit keeps the last good one and raises FIT_FAILED; signal orders are
repriced toward the model, never past it, and cancelled at their timeout; signals expire at max_age_s and rest for
cooldown_s; positions are closed by the exit rules; auto-execution respects its limits; a limit breach or a day's
loss changes the trading state of the running engine."""
from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from engine_support import SimRig, fast_settings, step_until_tradable_signal, trade_until_held
from workstation import bus as topics
from workstation.config import Settings
from workstation.domain import OrderPurpose, OrderStatus, Side, SignalState, TradingState
from workstation.risk.limits import RiskCode
from workstation.engine import core

DAY = date(2025, 10, 1)                       # a Wednesday; the market is always open in these rigs anyway


def pinned(**changes) -> Settings:
    """fast_settings on a pinned day, no hedging (only the test's orders trade); `changes` as section__field."""
    s = fast_settings()
    s.market.simulator.start_date = DAY
    s.hedging.enabled = False
    for dotted, value in changes.items():
        section, field = dotted.split("__")
        setattr(getattr(s, section), field, value)
    return s


@pytest.fixture
async def open_rig(tmp_path, warm_numba):
    rigs = []

    async def make(settings: Settings | None = None) -> SimRig:
        rig = await SimRig(tmp_path / f"rig{len(rigs)}", settings or pinned()).open()
        rigs.append(rig)
        return rig
    yield make
    for rig in rigs:
        await rig.close()


def modest_option(rig: SimRig, premium: float = 20.0, min_days: float = 14) -> int:
    """A usable option with a mid near `premium`, at least `min_days` from expiry: its contract id."""
    snap, surface = rig.engine.chain(), rig.engine.last_surface
    row = int(np.nanargmin(np.where(surface.usable & (snap.maturity > min_days / 365), np.abs(snap.mid - premium),
                                    np.nan)))
    return int(snap.contract_id[row])


async def buy_and_hold(rig: SimRig, cid: int, quantity: int = 1) -> None:
    """Buy `quantity` limited at the ask, step until the book holds it, then one more cycle to mark it."""
    row = rig.engine.chain().index_of(cid)
    await trade_until_held(rig, cid, "BUY", quantity, float(rig.engine.chain().ask[row]), holding=quantity)
    await rig.step()
    await rig.engine.settle_tasks()


def alerts(rig: SimRig, code: str) -> list:
    return [a for a in rig.journal.alerts(10_000) if a.code == code]


# ------------------------------------------------------------------------------------------- calibration
async def test_a_rejected_fit_keeps_the_last_good_parameters_and_raises_fit_failed(open_rig):
    rig = await open_rig()
    await rig.step()
    good = rig.engine.calibrator.last_good
    assert rig.engine.last_fit.accepted and good is not None
    rig.engine.settings.calibration.max_rmse_iv = 1e-6          # no fit can pass now
    await rig.step()
    fit = rig.engine.last_fit
    assert not fit.accepted and fit.stale and "above the" in fit.message
    assert rig.engine.calibrator.last_good is good               # the last good fit stands
    assert [a.severity.name for a in alerts(rig, "FIT_FAILED")] == ["WARNING"]
    journaled = rig.journal.fits(limit=2)
    assert [f.accepted for f in journaled] == [False, True]
    # the model still prices the chain, with the last good parameters
    expected = rig.engine.calibrator.evaluate(good, rig.engine.last_surface).price
    np.testing.assert_array_equal(rig.engine.last_model.price, expected)
    rig.engine.settings.calibration.max_rmse_iv = 5.0
    await rig.step()
    assert rig.engine.last_fit.accepted and rig.engine.calibrator.last_good is not good
    assert len(alerts(rig, "FIT_FAILED")) == 1


async def test_a_fit_that_runs_out_of_iterations_is_judged_on_its_fit_not_its_iteration_count(open_rig):
    """One expiry leaves the Heston parameters a flat valley: Levenberg-Marquardt keeps improving past its cap
    while the prices already fit. Such a fit is accepted when its IV RMSE passes the limits (the message says
    so), and rejected like any other when it does not; a fit that failed outright (non-finite) never is."""
    rig = await open_rig(pinned(calibration__max_iterations=2, calibration__max_rmse_iv=50.0))
    await rig.step()
    fit = rig.engine.last_fit
    assert fit.iterations == 2 and fit.accepted, fit.message
    assert "maximum iterations reached; accepted on its IV RMSE" in fit.message
    assert rig.engine.calibrator.last_good is not None and not alerts(rig, "FIT_FAILED")
    rig.engine.settings.calibration.max_rmse_iv = 1e-6
    await rig.step()
    assert not rig.engine.last_fit.accepted and "above the" in rig.engine.last_fit.message


# ---------------------------------------------------------------------------------------------- orders
async def test_signal_orders_are_repriced_toward_the_model_never_past_it_and_time_out(open_rig):
    """A BUY whose model value lies between mid and ask starts at mid and steps up every reprice_interval_s
    toward its bound (min(far side + slippage, model)); it never bids above the model; at order_timeout_s of
    market time it is cancelled."""
    rig = await open_rig(pinned(execution__aggressiveness=0.0, execution__reprice_interval_s=10.0,
                                execution__order_timeout_s=60.0, execution__max_slippage=0.5))
    await rig.step()
    snap, model = rig.engine.chain(), rig.engine.last_model.price
    tick = np.where(snap.mid < 3.0, 0.05, 0.10)
    usable = rig.engine.last_surface.usable & (snap.maturity > 14 / 365) & (snap.bid > 0.5) & (snap.ask < 100.0)
    room = np.where(usable & (model < snap.ask - 2 * tick), (model - snap.mid) / tick, -np.inf)   # in ticks
    row = int(np.argmax(room))
    assert room[row] >= 4, "no contract with the model between mid and ask"
    contract = snap.contract(row)
    order, market, why = rig.engine.build_order(contract, Side.BUY, 1, None, OrderPurpose.SIGNAL)
    assert order is not None, why
    model_at_order = market.model_price
    assert order.limit_price <= 0.5 * (market.bid + market.ask) + 1e-9          # starts at mid (aggressiveness 0)
    assert rig.engine.route(order, market).sent
    cid = order.client_order_id
    record = rig.engine.orders.records[cid]
    assert record.reprice_bound == pytest.approx(min(market.ask + 0.5 * (market.ask - market.bid), model_at_order))
    limits = [order.limit_price]
    for _ in range(14):                                                         # 70 s of market time
        await rig.step()
        if record.limit_price != limits[-1]:
            limits.append(record.limit_price)
        if not record.status.is_working:
            break
    assert len(limits) >= 3, f"repriced only {limits}"
    assert all(b > a for a, b in zip(limits, limits[1:]))                      # always toward the bound
    assert max(limits) <= model_at_order + 1e-9                                # never past the model
    if record.status is OrderStatus.FILLED:
        pytest.fail("the market came to the order; pick another contract")     # the timeout was not reached
    assert record.status is OrderStatus.CANCELLED
    cancelled_at = rig.journal.order_states()[cid].timestamp
    assert (cancelled_at - order.created_at).total_seconds() >= 60.0


# --------------------------------------------------------------------------------------------- signals
async def test_signals_expire_at_max_age_and_the_same_idea_rests_for_the_cooldown(open_rig):
    rig = await open_rig(pinned(signals__max_age_s=20.0, signals__cooldown_s=60.0, signals__min_zscore=0.5,
                                signals__min_edge_dollars=1.0, signals__min_edge_vol=0.05,
                                signals__spread_multiple=0.0, signals__min_history=3))
    engine = rig.engine
    candidates: list[tuple] = []                 # (time, set of (contract, side)) the model proposed each cycle
    update = engine.signals.update

    def spy(found, surface, now):
        candidates.append((now, {(c.contract_id, c.side) for c in found}))
        return update(found, surface, now)
    engine.signals.update = spy
    changes = []
    engine.bus.subscribe(topics.SIGNAL, changes.append)
    for _ in range(40):
        await rig.step(5.0)
    timed_out = [s for s in changes if s.state is SignalState.EXPIRED and s.reason == "timed out"]
    assert timed_out, "no signal lived to max_age_s"
    for s in timed_out:
        age = (s.updated_at - s.created_at).total_seconds()
        assert 20.0 < age <= 25.0 + 1e-9                    # expired on the first cycle past max_age_s
    created = [s for s in changes if s.state is SignalState.NEW and s.updated_at == s.created_at]
    closed = [s for s in changes if not s.state.is_open]
    rested = 0
    for s in closed:
        key = (s.contract.contract_id, s.side)
        again = [n for n in created if (n.contract.contract_id, n.side) == key and n.created_at > s.updated_at]
        if again:
            assert (again[0].created_at - s.updated_at).total_seconds() >= 60.0, "a signal came back in its cooldown"
        rested += sum(key in keys and 0 < (t - s.updated_at).total_seconds() < 60.0 for t, keys in candidates)
    assert rested, "no closed idea was proposed again during its cooldown: the rule was never exercised"


# ----------------------------------------------------------------------------------------------- exits
@pytest.mark.parametrize("rule", ["stop_loss", "time_stop", "days_to_expiry"])
async def test_each_exit_rule_closes_the_position(open_rig, rule):
    s = pinned(signals__stop_loss_dollars=1e9, signals__time_stop_minutes=500_000.0, signals__close_days_before_expiry=0.0)
    rig = await open_rig(s)
    await rig.step()
    cid = modest_option(rig, min_days=14 if rule != "days_to_expiry" else 0.5)
    if rule == "days_to_expiry":
        contract = rig.engine.contract_by_id(cid)
        days_left = (contract.expiry - DAY).days
        assert days_left < 14
    await buy_and_hold(rig, cid)
    assert not [r for r in rig.engine.orders.records.values() if r.order.purpose is OrderPurpose.EXIT]
    cfg = rig.engine.settings.signals
    if rule == "stop_loss":                       # wait for the market to move against it, stop at half the loss
        book = rig.engine.book
        for _ in range(40):
            if book.position(cid).unrealized_pnl(book.mark_of(cid)) < -10.0:
                break
            await rig.step(15.0)
        loss = book.position(cid).unrealized_pnl(book.mark_of(cid))
        assert loss < -10.0, "the market never moved against the position"
        cfg.stop_loss_dollars = -loss / 2
    elif rule == "time_stop":
        cfg.time_stop_minutes = 1.0
    else:
        cfg.close_days_before_expiry = days_left + 1.0
    rig.engine.settings.execution.aggressiveness = 1.0
    for _ in range(20):
        await rig.step()
        if rig.engine.book.quantity(cid) == 0:
            break
    exits = [r for r in rig.engine.orders.records.values()
             if r.order.purpose is OrderPurpose.EXIT and r.order.contract.contract_id == cid]
    assert exits and exits[0].order.side is Side.SELL and exits[0].order.quantity == 1
    assert rig.engine.book.quantity(cid) == 0
    if rule == "time_stop":
        opened = rig.engine.journal.fills()[0].timestamp
        assert (exits[0].order.created_at - opened).total_seconds() > 60.0


async def test_a_signal_position_closes_once_its_mispricing_has_converged(open_rig):
    """The convergence exit (`signals.exit_converged_vol`) alone, every other rule off: a position opened from a
    signal is closed by one EXIT order once its residual is back within the threshold of its usual level (here a
    threshold no residual misses, raised after the fill), while a position bought by hand beside it is left alone:
    only a signal's position has a mispricing to converge. At 0 (nothing is within 0) neither closes."""
    rig = await open_rig(pinned(signals__min_zscore=0.5, signals__min_edge_dollars=1.0, signals__min_edge_vol=0.05,
                                signals__spread_multiple=0.0, signals__min_history=3, signals__stop_loss_dollars=1e9,
                                signals__time_stop_minutes=500_000.0, signals__close_days_before_expiry=0.0,
                                signals__exit_converged_vol=0.0, execution__aggressiveness=1.0))
    signal = await step_until_tradable_signal(rig, 40)
    assert signal is not None, "no tradable signal in 10 simulated minutes"
    cid = signal.contract.contract_id
    preview = rig.engine.approve_signal(signal.signal_id)
    assert preview.sent, preview.message
    for _ in range(20):
        await rig.step()
        if rig.engine.book.quantity(cid):
            break
    held = rig.engine.book.quantity(cid)
    assert held == signal.side.sign * preview.order.quantity, "the signal's order did not fill"
    manual = next(c for c in (modest_option(rig, premium=p) for p in (20.0, 30.0, 40.0)) if c != cid)
    await buy_and_hold(rig, manual)
    for _ in range(3):                                          # at 0 nothing has converged: both are held
        await rig.step()
    assert rig.engine.book.quantity(cid) == held and rig.engine.book.quantity(manual) == 1

    rig.engine.settings.signals.exit_converged_vol = 100.0
    for _ in range(20):
        await rig.step()
        if rig.engine.book.quantity(cid) == 0:
            break
    exits = [r.order for r in rig.engine.orders.records.values() if r.order.purpose is OrderPurpose.EXIT]
    assert [(o.contract.contract_id, o.side, o.quantity) for o in exits] == [
        (cid, Side.SELL if held > 0 else Side.BUY, abs(held))]
    assert rig.engine.book.quantity(cid) == 0 and rig.engine.book.quantity(manual) == 1


# ------------------------------------------------------------------------------------------ auto-execute
async def test_auto_execute_approves_only_signals_within_its_limits(open_rig):
    rig = await open_rig(pinned(signals__min_zscore=0.5, signals__min_edge_dollars=1.0, signals__min_edge_vol=0.05,
                                signals__spread_multiple=0.0, signals__min_history=3, signals__max_quantity=4,
                                signals__auto_max_quantity=1, signals__auto_max_premium=1_500.0,
                                execution__aggressiveness=1.0))
    engine = rig.engine
    engine.auto_execute = True
    seen: dict[str, object] = {}     # each signal as last published: a signal is re-sized to what the checks pass
    engine.bus.subscribe(topics.SIGNAL, lambda s: seen.__setitem__(s.signal_id, s))    # (2 -> 1), then approved
    for _ in range(30):
        await rig.step(15.0)
    cfg = engine.settings.signals
    within, beyond = [], []
    for s in seen.values():
        premium = s.limit_reference * s.quantity * s.contract.multiplier
        (within if s.quantity <= cfg.auto_max_quantity and premium <= cfg.auto_max_premium else beyond).append(s)
    auto = [r for r in engine.orders.records.values() if r.order.purpose is OrderPurpose.SIGNAL]
    assert within and beyond, f"{len(within)} signals within the auto limits, {len(beyond)} beyond: not exercised"
    assert auto, "no signal was auto-executed"
    ordered = {r.order.signal_id for r in auto}
    assert ordered <= {s.signal_id for s in within}
    assert not ordered & {s.signal_id for s in beyond}
    assert all(r.order.quantity <= cfg.auto_max_quantity for r in auto)
    engine.auto_execute = False                               # off: nothing more is approved
    before = len(auto)
    for _ in range(5):
        await rig.step(15.0)
    assert len([r for r in engine.orders.records.values() if r.order.purpose is OrderPurpose.SIGNAL]) == before


async def test_auto_execution_hands_the_loop_back_after_each_order(open_rig, monkeypatch):
    """Several signals auto-executed in one cycle go out one at a time, the window's thread getting the loop
    back after each (checked, journaled and published in one go, six orders held it 20-30 ms)."""
    rig = await open_rig(pinned(signals__min_zscore=0.5, signals__min_edge_dollars=1.0, signals__min_edge_vol=0.05,
                                signals__spread_multiple=0.0, signals__min_history=3,
                                signals__auto_max_quantity=100, signals__auto_max_premium=1e8,
                                execution__aggressiveness=1.0))
    engine = rig.engine
    engine.auto_execute = True
    handed_back = []            # auto orders sent so far, each time the cycle hands the loop to the window
    hand_back = core._let_the_window_paint

    async def counted(e):
        handed_back.append(sum(r.order.purpose is OrderPurpose.SIGNAL for r in e.orders.records.values()))
        await hand_back(e)
    monkeypatch.setattr(core, "_let_the_window_paint", counted)
    per_cycle = []
    for _ in range(30):
        before = len(handed_back)
        await rig.step(15.0)
        sent = handed_back[before:]
        per_cycle.append(sent[-1] - sent[0] if sent else 0)
        if max(per_cycle) >= 2:
            break
    assert max(per_cycle) >= 2, f"no cycle auto-executed two orders: not exercised ({per_cycle})"
    assert max(b - a for a, b in zip(handed_back, handed_back[1:])) == 1


# ------------------------------------------------------------------------------------------ risk states
async def test_a_vega_breach_puts_the_running_engine_in_reducing_and_clearing_it_resumes(open_rig):
    rig = await open_rig()
    await rig.step()
    cid = modest_option(rig)
    await buy_and_hold(rig, cid, 2)
    await rig.engine.settle_tasks()
    vega = abs(rig.engine.book.greeks.vega)
    assert vega > 10.0
    rig.engine.settings.risk.max_vega_dollars = vega / 4          # the book is now 4x over the limit
    for _ in range(3):
        await rig.step()
        await rig.engine.settle_tasks()
        if rig.engine.state is TradingState.REDUCING:
            break
    assert rig.engine.state is TradingState.REDUCING
    assert [b.code.value for b in rig.engine.last_risk.breaches] == ["VEGA_LIMIT"]
    assert alerts(rig, "RISK_LIMIT_BREACH") and alerts(rig, "TRADING_STATE_CHANGED")
    more = rig.engine.preview_order(cid, "BUY", 1, None)
    assert RiskCode.REDUCING_ONLY in more.decision.reasons          # adds risk: denied
    less = rig.engine.preview_order(cid, "SELL", 1, None)
    assert RiskCode.REDUCING_ONLY not in less.decision.reasons      # reduces it: allowed
    rig.engine.settings.risk.max_vega_dollars = vega * 100          # back inside: lifted by itself
    for _ in range(3):
        await rig.step()
        await rig.engine.settle_tasks()
        if rig.engine.state is TradingState.ACTIVE:
            break
    assert rig.engine.state is TradingState.ACTIVE


async def test_a_days_loss_beyond_the_limit_halts_the_running_engine_until_the_trader_overrides(open_rig):
    rig = await open_rig()
    await rig.step()
    cid = modest_option(rig)
    await buy_and_hold(rig, cid, 2)                 # bought at the ask, marked at mid, commissions: a loss
    await rig.engine.settle_tasks()
    loss = rig.engine.book.day_pnl
    assert loss < 0
    rig.engine.settings.risk.max_daily_loss = -loss / 2
    for _ in range(3):
        await rig.step()
        await rig.engine.settle_tasks()
        if rig.engine.state is TradingState.HALTED:
            break
    assert rig.engine.state is TradingState.HALTED
    assert [a.severity.name for a in alerts(rig, "RISK_DAILY_LOSS")][:1] == ["CRITICAL"]
    assert RiskCode.TRADING_HALTED in rig.engine.preview_order(cid, "SELL", 1, None).decision.reasons
    assert not rig.engine.resume_trading()                         # held until the next day...
    assert rig.engine.state is TradingState.HALTED
    assert rig.engine.resume_trading(override=True)                # ...unless the trader overrides
    assert rig.engine.state is TradingState.ACTIVE


# --------------------------------------------------------------------------------------------- approval
async def test_approving_a_tradable_signal_journals_every_check_passed_and_the_signal_ordered(open_rig):
    """The signal the limits allow (not merely the first): every pre-trade check is journaled with the order, each
    passed, the same checks the decision ran; the journal ends with the signal ORDERED, not any other state."""
    rig = await open_rig(pinned(signals__min_zscore=0.5, signals__min_edge_dollars=1.0, signals__min_edge_vol=0.05,
                                signals__spread_multiple=0.0, signals__min_history=3))
    signal = await step_until_tradable_signal(rig, 40)
    assert signal is not None, "no tradable signal in 10 simulated minutes"
    preview = rig.engine.approve_signal(signal.signal_id)
    assert preview.sent, preview.message
    cid = preview.order.client_order_id
    checks = rig.journal.risk_checks(cid)
    assert checks and all(c.passed for c in checks)
    assert [c.name for c in checks] == [r.name for r in preview.decision.results]
    journaled = {s.signal_id: s for s in rig.journal.signals()}[signal.signal_id]
    assert journaled.state is SignalState.ORDERED and journaled.reason == cid
    assert rig.journal.order_states()[cid].status is OrderStatus.NEW         # journaled before it is sent


async def test_a_cycle_in_flight_when_stop_begins_acts_no_further(tmp_path):
    """stop() cancels the working orders; a cycle that was in flight (in the worker, or between its steps on the
    loop thread) must not then approve, exit, hedge or reprice: an order sent after the cancels would be left
    working at the broker (seen once in the SIGKILL loop's final clean run)."""
    from workstation.engine.core import CycleStopped

    rig = await SimRig(tmp_path, fast_settings(signals__auto_execute=True)).open()
    try:
        for _ in range(6):                                    # history for signals, a fit, auto-executed orders
            await rig.step()
        sent = len(rig.engine.order_records())
        cycles = rig.engine.snapshots
        rig.engine.stopping = True                            # as stop() sets it before anything else
        with pytest.raises(CycleStopped):
            await rig.engine.run_cycle(rig.feed.snapshot_now())
        await rig.engine.settle_tasks()
        assert len(rig.engine.order_records()) == sent and rig.engine.snapshots == cycles + 1
    finally:
        rig.engine.stopping = False
        await rig.close()
