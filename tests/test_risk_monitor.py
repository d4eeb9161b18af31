"""Monitor: Heston Greeks, stress grid, VaR, breaches -> trading state, stop-losses; the state machine."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from workstation.config import RiskConfig
from workstation import pricing
from workstation.domain import Contract, HestonParams, Position, SecType, TradingState
from workstation.portfolio.greeks import DollarGreeks
from workstation.pricing import heston
from workstation.risk import RiskCode
from workstation.risk import monitor
from workstation.risk.state import KILL_SWITCH, Lift, TradingStateMachine

PRICER = SimpleNamespace(family_price=pricing.family_price, family_greeks=pricing.family_greeks,
                         black_greeks=pricing.black_greeks,
                         black_price=pricing.black_price, implied_vol=pricing.implied_vol)

NY = ZoneInfo("America/New_York")
NOW = datetime(2025, 10, 1, 11, 0, tzinfo=NY)
PARAMS = HestonParams(v0=0.025, kappa=2.5, theta=0.035, sigma=0.6, rho=-0.75)
F = 6700.0


def option(cid: int, strike: float, right: str, days: int) -> Contract:
    return Contract(cid, "SPX", trading_class="SPXW", expiry=date(2025, 10, 1) + timedelta(days=days),
                    strike=strike, right=right)


def exposure(positions: list[Position]) -> monitor.Exposure:
    t = np.array([(p.contract.expiry - date(2025, 10, 1)).days / 365 for p in positions])
    fwd = np.array([F if p.contract.is_option else 6750.0 for p in positions])
    return monitor.Exposure.from_positions(positions, fwd, np.exp(-0.04 * t), t)


LONG_CALLS = [Position(option(1, 6700.0, "C", 30), 10, 100.0), Position(option(2, 6900.0, "C", 60), 5, 60.0)]


def test_long_call_book_loses_most_spot_down_vol_down():
    grid = monitor.stress_grid(exposure(LONG_CALLS), PARAMS, pricer=PRICER)
    assert grid.pnl.shape == (9, 5)
    assert grid.pnl[0, 0] == grid.pnl.min() < 0
    assert grid.pnl[-1, -1] == grid.pnl.max() > 0
    assert grid.pnl[4, 2] == pytest.approx(0.0, abs=1e-6)               # no shock, no P&L
    assert np.all(np.diff(grid.pnl, axis=0) > 0) and np.all(np.diff(grid.pnl, axis=1) > 0)


def test_var_is_ordered_positive_and_reproducible():
    book = LONG_CALLS + [Position(option(3, 6400.0, "P", 30), -8, 50.0),
                         Position(Contract(9, "SPX", sec_type=SecType.FUTURE, expiry=date(2025, 12, 19),
                                           multiplier=50.0), -3, 6750.0)]
    exp = exposure(book)
    var = monitor.value_at_risk(exp, PARAMS, n_scenarios=2000, seed=3, pricer=PRICER)
    assert var.var99 > var.var95 > 0.0
    assert var.pnl.shape == (2000,)
    assert var.var95 == pytest.approx(-np.quantile(var.pnl, 0.05)) and var.var99 == pytest.approx(
        -np.quantile(var.pnl, 0.01))
    again = monitor.value_at_risk(exp, PARAMS, n_scenarios=2000, seed=3, pricer=PRICER)
    assert again.var99 == var.var99                                      # fixed seed: reproducible
    assert monitor.value_at_risk(exposure([]), PARAMS, pricer=PRICER).var99 == 0.0


# Constant variance (vol of vol ~ 0, theta = v0): the Heston day is a Black-76 day at vol sqrt(v0), so the VaR has
# an independent answer by hand. The only error allowed is the sampling error of an empirical 1% quantile.
FLAT = HestonParams(v0=0.025, kappa=2.5, theta=0.025, sigma=1e-3, rho=-0.75)
N_SCEN = 20_000
Z01 = -2.3263478740408408                    # the standard normal 1% quantile
DT = 1 / 252                                 # one trading day of diffusion (the monitor's convention)


def _quantile_error_z(p: float = 0.01, n: int = N_SCEN) -> float:
    """3 standard errors of the empirical p-quantile of n normal draws, in units of z."""
    density = np.exp(-0.5 * Z01**2) / np.sqrt(2 * np.pi)
    return 3.0 * np.sqrt(p * (1 - p) / n) / density


def test_var99_equals_black76_revaluation_at_the_1pct_move_when_vol_is_constant():
    """A long-call book loses most when the forward falls: VaR99 = the book revalued by Black-76 at the 1% forward
    quantile F exp(-v dt/2 + z01 sqrt(v dt)), aged one calendar day, within the quantile's sampling error."""
    exp = exposure(LONG_CALLS)
    var = monitor.value_at_risk(exp, FLAT, n_scenarios=N_SCEN, seed=5, pricer=PRICER)
    vol = np.sqrt(FLAT.v0)
    ratio = np.exp(-0.5 * FLAT.v0 * DT + vol * np.sqrt(DT) * Z01)
    before = pricing.black_price(exp.forward, exp.strike, exp.maturity, exp.discount, vol, exp.is_call)
    after = pricing.black_price(exp.forward * ratio, exp.strike, exp.maturity - 1 / 365, exp.discount, vol,
                                exp.is_call)
    by_hand = -float(np.sum((after - before) * exp.size))
    greeks, _ = monitor.portfolio_greeks(exp, FLAT, pricer=PRICER)
    # a quantile off by dz moves the forward by F sqrt(v dt) dz, the book by delta$ (per 1%) x 100 x that fraction
    tolerance = abs(greeks.delta) * 100 * vol * np.sqrt(DT) * _quantile_error_z()
    assert tolerance < 0.05 * by_hand                                     # the check is tight
    assert var.var99 == pytest.approx(by_hand, abs=tolerance)


def test_var99_is_delta_normal_less_the_books_gamma_and_theta_terms():
    """Delta-normal VaR99 = -z01 x |delta$| x daily vol (%); the book's gamma$ (per 1% squared) gives back
    1/2 gamma$ x (z01 x daily vol %)^2 and a day of theta$ is lost. Left over: the quantile's sampling error and the
    third-order term (2% here)."""
    exp = exposure(LONG_CALLS)
    var = monitor.value_at_risk(exp, FLAT, n_scenarios=N_SCEN, seed=5, pricer=PRICER)
    greeks, _ = monitor.portfolio_greeks(exp, FLAT, pricer=PRICER)
    move_pct = Z01 * np.sqrt(FLAT.v0 * DT) * 100
    delta_normal = -greeks.delta * move_pct
    delta_gamma_theta = delta_normal - 0.5 * greeks.gamma * move_pct**2 - greeks.theta
    sampling = abs(greeks.delta) * np.sqrt(FLAT.v0 * DT) * 100 * _quantile_error_z()
    assert var.var99 == pytest.approx(delta_gamma_theta, abs=sampling + 0.02 * delta_gamma_theta)
    assert var.var99 < delta_normal - 0.5 * greeks.gamma * move_pct**2 * 0.5     # long gamma: under delta-normal


def test_var99_of_a_short_future_is_the_lognormal_up_move():
    fut = Position(Contract(9, "SPX", sec_type=SecType.FUTURE, expiry=date(2025, 12, 19), multiplier=50.0), -3, 6750.0)
    exp = exposure([fut])
    var = monitor.value_at_risk(exp, FLAT, n_scenarios=N_SCEN, seed=5, pricer=PRICER)
    vol_day = np.sqrt(FLAT.v0 * DT)
    up = np.exp(-0.5 * vol_day**2 - Z01 * vol_day) - 1.0
    by_hand = 3 * 50 * 6750.0 * up
    assert var.var99 == pytest.approx(by_hand, abs=3 * 50 * 6750.0 * vol_day * _quantile_error_z())


def test_var_interpolation_in_v0_matches_direct_pricing():
    exp = exposure(LONG_CALLS)
    ratio = np.array([0.98, 1.0, 1.015])
    v1 = np.array([0.02, 0.03, 0.041])
    values = monitor._option_values(exp, PARAMS, ratio, v1, 1 / 365, PRICER)
    for s in range(3):
        direct = heston.heston_price(replace(PARAMS, v0=v1[s]), exp.forward * ratio[s], exp.strike,
                                     exp.maturity - 1 / 365, exp.discount, exp.is_call)
        np.testing.assert_allclose(values[s], direct, rtol=2e-3)


def test_portfolio_greeks_dollar_conventions():
    fut = Position(Contract(9, "SPX", sec_type=SecType.FUTURE, expiry=date(2025, 12, 19), multiplier=50.0), -2, 6750.0)
    greeks, per = monitor.portfolio_greeks(exposure(LONG_CALLS + [fut]), PARAMS, pricer=PRICER)
    assert per[0][-1] == pytest.approx(-2 * 50 * 6750.0 * 0.01)
    assert greeks.gamma > 0 and greeks.vega > 0 and greeks.theta < 0
    g = heston.heston_greeks(PARAMS, F, 6700.0, 30 / 365, np.exp(-0.04 * 30 / 365), True)
    assert per[0][0] == pytest.approx(float(g.delta) * F * 0.01 * 100 * 10)


def test_breaches_change_the_state_per_config():
    cfg = RiskConfig(max_daily_loss=10_000.0, max_delta_dollars=1_000.0)
    m = TradingStateMachine()
    breaches = monitor.limit_breaches(DollarGreeks(delta=5_000.0), 0.0, -500.0, cfg)
    assert [b.code for b in breaches] == [RiskCode.DELTA_LIMIT]
    assert breaches[0].value == 5_000.0 and breaches[0].limit == 1_000.0
    changes = monitor.apply_breaches(m, breaches, cfg, NOW)
    assert m.state is TradingState.REDUCING and changes[0].code == "DELTA_LIMIT"
    # back inside: lifted by itself (auto_resume_limits)
    monitor.apply_breaches(m, monitor.limit_breaches(DollarGreeks(), 0.0, 0.0, cfg), cfg, NOW)
    assert m.state is TradingState.ACTIVE
    # daily loss halts until the next day, even when the loss recovers
    monitor.apply_breaches(m, monitor.limit_breaches(DollarGreeks(), 0.0, -12_000.0, cfg), cfg, NOW)
    assert m.state is TradingState.HALTED
    monitor.apply_breaches(m, monitor.limit_breaches(DollarGreeks(), 0.0, 0.0, cfg), cfg, NOW)
    assert m.state is TradingState.HALTED
    assert m.resume(NOW) is None and m.state is TradingState.HALTED      # no override: stays
    assert m.new_trading_day(date(2025, 10, 2), NOW + timedelta(days=1)).state is TradingState.ACTIVE


def test_breach_actions_are_configurable():
    cfg = RiskConfig(max_var_99=1.0, limit_breach_action="NONE", daily_loss_action="REDUCING", max_daily_loss=1.0)
    m = TradingStateMachine()
    monitor.apply_breaches(m, monitor.limit_breaches(DollarGreeks(), 5.0, 0.0, cfg), cfg, NOW)
    assert m.state is TradingState.ACTIVE
    monitor.apply_breaches(m, monitor.limit_breaches(DollarGreeks(), 0.0, -5.0, cfg), cfg, NOW)
    assert m.state is TradingState.REDUCING
    sticky = RiskConfig(max_vega_dollars=1.0, limit_breach_action="HALTED", auto_resume_limits=False)
    m2 = TradingStateMachine()
    monitor.apply_breaches(m2, monitor.limit_breaches(DollarGreeks(vega=2.0), 0.0, 0.0, sticky), sticky, NOW)
    monitor.apply_breaches(m2, monitor.limit_breaches(DollarGreeks(), 0.0, 0.0, sticky), sticky, NOW)
    assert m2.state is TradingState.HALTED                               # needs the trader
    assert m2.resume(NOW).state is TradingState.ACTIVE


def test_run_reports_everything_and_halts_on_var():
    cfg = RiskConfig(max_var_99=10.0, limit_breach_action="HALTED", var_scenarios=500)
    m = TradingStateMachine()
    exp = exposure(LONG_CALLS)
    report = monitor.run(exp, PARAMS, cfg, m, NOW, day_pnl=0.0, unrealized=np.array([-3_000.0, 100.0]),
                         stop_loss=2_000.0, pricer=PRICER)
    assert RiskCode.VAR_LIMIT in [b.code for b in report.breaches]
    assert report.trading_state == "HALTED" and m.state is TradingState.HALTED
    assert [s.contract_id for s in report.stops] == [1]
    d = report.as_dict()
    assert set(d) >= {"greeks", "stress", "var", "breaches", "stops", "state_changes", "trading_state"}


def test_stop_loss_per_position():
    stops = monitor.stop_losses([1, 2, 3], [-2_500.0, -1_999.0, 500.0], 2_000.0)
    assert [(s.contract_id, s.code) for s in stops] == [(1, RiskCode.STOP_LOSS)]


def test_default_pricer_is_the_pricing_package():
    var = monitor.value_at_risk(exposure(LONG_CALLS), PARAMS, n_scenarios=300)
    assert var.var99 >= var.var95 > 0


# --------------------------------------------------------------------------------- state machine
def test_kill_switch_needs_the_trader_and_holds_do_not_mask_each_other():
    m = TradingStateMachine()
    m.hold("DAILY_LOSS", TradingState.HALTED, "day loss", NOW, Lift.NEXT_DAY)
    change = m.kill_switch(NOW, by="trader")
    assert change is None and m.state is TradingState.HALTED and KILL_SWITCH in m.holds
    assert m.release(KILL_SWITCH, NOW) is None                         # the system cannot lift it
    m.resume(NOW)
    assert m.state is TradingState.HALTED and set(m.holds) == {"DAILY_LOSS"}
    assert not m.may_resume() and m.may_resume(override=True)
    change = m.resume(NOW, override=True)
    assert change.state is TradingState.ACTIVE and change.code == "OVERRIDE"
    assert [c.state for c in m.history] == [TradingState.HALTED, TradingState.ACTIVE]


def test_holds_only_tighten_and_new_day_keeps_todays_halt():
    m = TradingStateMachine()
    m.hold("DELTA_LIMIT", "REDUCING", "delta", NOW, Lift.WHEN_CLEAR)
    m.hold("DELTA_LIMIT", "REDUCING", "again", NOW, Lift.WHEN_CLEAR)
    assert len(m.history) == 1 and m.reason == "delta"
    m.hold("DAILY_LOSS", "HALTED", "loss", NOW, Lift.NEXT_DAY)
    assert m.new_trading_day(date(2025, 10, 1), NOW) is None           # same day: stays
    assert m.state is TradingState.HALTED
    change = m.new_trading_day(date(2025, 10, 2), NOW + timedelta(days=1))
    assert change.state is TradingState.REDUCING                        # the delta hold remains
    assert m.release("DELTA_LIMIT", NOW).state is TradingState.ACTIVE


def test_var_forward_grid_matches_scenario_by_scenario_revaluation(monkeypatch):
    """The ratio grid (RATIO_NODES prices per option instead of one per scenario) moves no scenario's P&L by
    more than a few dollars on a 60-option book worth ~$100k of VaR."""
    import numpy as np

    from workstation.domain import HestonParams
    from workstation.risk import monitor
    rng = np.random.default_rng(1)
    n = 60
    params = HestonParams(0.03, 2.0, 0.04, 0.8, -0.7)
    book = monitor.Exposure(contract_id=np.arange(n), quantity=rng.integers(-5, 6, n).astype(float),
                            multiplier=np.full(n, 100.0), is_option=np.ones(n, bool),
                            strike=rng.uniform(5500, 6500, n), is_call=rng.random(n) < 0.5,
                            maturity=rng.uniform(0.01, 0.5, n), forward=np.full(n, 6000.0),
                            discount=np.full(n, 0.99))
    fast = monitor.value_at_risk(book, params)

    def scenario_by_scenario(params, forward, strike, maturity, discount, is_call, ratio, pricer):
        return np.asarray(pricer.family_price(params, forward[None, :] * ratio[:, None], strike, maturity,
                                              discount, is_call), dtype=float)

    monkeypatch.setattr(monitor, "_prices_on_ratio_grid", scenario_by_scenario)
    direct = monitor.value_at_risk(book, params)
    assert np.max(np.abs(fast.pnl - direct.pnl)) < 5.0
    assert abs(fast.var99 - direct.var99) < 5.0 and fast.var99 > 10_000


def test_family_models_reprice_greeks_stress_and_var():
    """Bates without jumps is Heston in every scenario; crash jumps fatten a short-put book's loss tail;
    time-dependent Heston runs through the same revaluation."""
    from workstation.domain import BatesParams, TimeDependentHestonParams
    short_puts = [Position(option(1, 6300.0, "P", 30), -10, 40.0), Position(option(2, 6000.0, "P", 60), -10, 35.0)]
    exp = exposure(short_puts)
    heston_var = monitor.value_at_risk(exp, PARAMS, n_scenarios=2000, seed=3)
    no_jumps = BatesParams.from_heston(PARAMS, 0.0, -0.1, 0.1)
    assert np.array_equal(monitor.value_at_risk(exp, no_jumps, n_scenarios=2000, seed=3).pnl, heston_var.pnl)
    crashes = BatesParams.from_heston(PARAMS, 8.0, -0.08, 0.05)      # a crash every ~6 weeks: visible in 1 day
    assert monitor.value_at_risk(exp, crashes, n_scenarios=2000, seed=3).var99 > 1.2 * heston_var.var99
    greeks, _ = monitor.portfolio_greeks(exp, crashes)
    assert greeks.delta > 0                                          # short puts are long delta
    td = TimeDependentHestonParams.from_heston(PARAMS)
    np.testing.assert_allclose(monitor.stress_grid(exp, td).pnl, monitor.stress_grid(exp, PARAMS).pnl, atol=1e-6)
    np.testing.assert_allclose(monitor.value_at_risk(exp, td, n_scenarios=2000, seed=3).pnl, heston_var.pnl, atol=1e-4)
