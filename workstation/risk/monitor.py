"""The portfolio monitor, once per cycle: dollar Greeks, a stress grid, 1-day VaR, limit breaches, stops.

One revaluation path under one stated vol convention (`risk.greeks_from`):
- "market" (default): every option at its own market vol (the mid implied vol of its quote; the model's IV
  only where the quote has none). Greeks are Black-76 at that vol; the stress grid reprices with Black-76 at
  the shocked forward and vol; VaR takes the 1-day (forward, variance) paths of the fitted dynamics and moves
  each option's vol by the path's change of sqrt(variance), Black-76 at the aged maturity.
- "model": the fitted model prices everything, as below.
Under "model", greeks and VaR come from the fitted Heston-family model (`calibration.model`; full revaluation). VaR:
`var_scenarios` 1-day paths of (forward, variance) simulated from the Heston dynamics in force today (Bates:
plus its lognormal jumps; time-dependent Heston: its first bucket) with a fixed seed (full-truncation Euler,
8 steps, one trading day = 1/252 year of diffusion; options age one calendar day = 1/365, time buckets held),
every position revalued with the model's price at its scenario forward and variance. Prices are
linear-interpolated in v0 between a few nodes spanning the simulated variances (one vectorised call of
scenarios x positions per node), which keeps it fast and exact in the forward. The stress grid is simpler, and says so: each
option's model price is turned into its Black-76 implied vol, and forward and vol are shocked together.

By job: `book_greeks` (the book as columns, its Greeks), `stress` (the grid), `breaches` (limits, stops, state
changes); the VaR revaluation and the cycle stay here, and every old name stays importable from this module.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from workstation import pricing
from workstation.config import RiskConfig
from workstation.domain import BatesParams
from workstation.portfolio.greeks import DollarGreeks
from workstation.pricing.family import FamilyParams

from .breaches import LIMIT_CODES, Breach, apply_breaches, limit_breaches, stop_losses
from .book_greeks import MIN_VOL, Exposure, model_vols, option_vols, portfolio_greeks
from .state import StateChange, TradingStateMachine
from .stress import SPOT_SHOCKS, VOL_SHOCKS, StressGrid, stress_grid

__all__ = ["CALENDAR_DAYS", "EULER_STEPS", "LIMIT_CODES", "MIN_VOL", "RATIO_NODES", "SPOT_SHOCKS", "TRADING_DAYS",
           "V0_NODES", "VOL_SHOCKS", "Breach", "Exposure", "MonitorReport", "StressGrid", "VaR", "apply_breaches",
           "expected_shortfall", "limit_breaches", "model_vols", "option_vols", "portfolio_greeks", "run",
           "simulate_heston_day", "stop_losses", "stress_grid", "value_at_risk"]

TRADING_DAYS = 252.0
CALENDAR_DAYS = 365.0
EULER_STEPS = 8
RATIO_NODES = 61        # forward grid of the VaR revaluation (spacing ~0.2% of the forward for a 1-day range)
V0_NODES = 5


# ------------------------------------------------------------------------------------------ VaR
@dataclass(frozen=True)
class VaR:
    """1-day value at risk ($, a loss as a positive number, floored at 0) and the scenario P&L it came from."""

    var95: float
    var99: float
    pnl: np.ndarray = field(repr=False)

    def as_dict(self) -> dict:
        return {"var95": self.var95, "var99": self.var99, "scenarios": int(self.pnl.size),
                "expected_shortfall_99": expected_shortfall(self.pnl, 0.99)}


def expected_shortfall(pnl: np.ndarray, level: float) -> float:
    """Mean loss beyond the VaR at `level` (0 for an empty book)."""
    if not pnl.size:
        return 0.0
    cut = np.quantile(pnl, 1.0 - level)
    return float(max(0.0, -pnl[pnl <= cut].mean()))


def simulate_heston_day(params: FamilyParams, n: int, seed: int, days: float = 1.0
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(forward ratio F1/F0, variance v1) after `days` trading days, full-truncation Euler, fixed seed; Bates
    adds compensated lognormal jumps (drawn after the diffusion, so the diffusion paths match Heston's)."""
    jumps = params if isinstance(params, BatesParams) else None
    params = params.heston
    rng = np.random.default_rng(seed)
    dt = days / TRADING_DAYS / EULER_STEPS
    z1 = rng.standard_normal((EULER_STEPS, n))
    z2 = params.rho * z1 + np.sqrt(1.0 - params.rho**2) * rng.standard_normal((EULER_STEPS, n))
    v = np.full(n, params.v0)
    log_ratio = np.zeros(n)
    for step in range(EULER_STEPS):
        vp = np.maximum(v, 0.0)
        log_ratio += -0.5 * vp * dt + np.sqrt(vp * dt) * z1[step]
        v = v + params.kappa * (params.theta - vp) * dt + params.sigma * np.sqrt(vp * dt) * z2[step]
    if jumps is not None and jumps.jump_rate > 0.0:
        horizon = days / TRADING_DAYS
        count = rng.poisson(jumps.jump_rate * horizon, n)
        log_ratio += (count * jumps.jump_mean + np.sqrt(count) * jumps.jump_vol * rng.standard_normal(n)
                      - jumps.jump_rate * horizon * np.expm1(jumps.jump_mean + 0.5 * jumps.jump_vol ** 2))
    return np.exp(log_ratio), np.maximum(v, 0.0)


def _prices_on_ratio_grid(params: FamilyParams, forward: np.ndarray, strike: np.ndarray, maturity: np.ndarray,
                          discount: np.ndarray, is_call: np.ndarray, ratio: np.ndarray, pricer: Any) -> np.ndarray:
    """Prices (scenarios x options) at forward*ratio, from a fine grid of ratios and linear interpolation.

    Revaluing every scenario directly costs scenarios x options prices; RATIO_NODES grid points spanning the
    scenarios' range cost a few percent of that, and with a spacing near 0.2% of the forward the
    interpolation error is a small fraction of a tick per contract."""
    lo, hi = float(ratio.min()), float(ratio.max())
    if hi - lo < 1e-12:
        return np.asarray(pricer.family_price(params, forward[None, :] * ratio[:, None], strike, maturity,
                                              discount, is_call), dtype=float)
    grid = np.linspace(lo, hi, RATIO_NODES)
    prices = np.asarray(pricer.family_price(params, forward[None, :] * grid[:, None], strike, maturity, discount,
                                            is_call), dtype=float)
    x = (ratio - lo) / (grid[1] - grid[0])
    i0 = np.clip(np.floor(x).astype(np.int64), 0, RATIO_NODES - 2)
    frac = (x - i0)[:, None]
    return prices[i0] * (1.0 - frac) + prices[i0 + 1] * frac


def _option_values(exp: Exposure, params: FamilyParams, ratio: np.ndarray, v1: np.ndarray,
                   age_years: float, pricer: Any) -> np.ndarray:
    """Option values (scenarios x options) at F*ratio, variance v1, maturity aged by `age_years`."""
    o = exp.is_option
    k, c, d = exp.strike[o], exp.is_call[o], exp.discount[o]
    t1 = exp.maturity[o] - age_years
    fwd = exp.forward[o][None, :] * ratio[:, None]
    live = t1 > 0
    values = d * np.where(c, np.maximum(fwd - k, 0.0), np.maximum(k - fwd, 0.0))   # expired: intrinsic
    if not live.any():
        return values
    lo, hi = float(v1.min()), float(v1.max())
    nodes = np.linspace(lo, hi, V0_NODES) if hi - lo > 1e-12 else np.array([lo])
    acc = np.zeros((len(ratio), int(live.sum())))
    for j, node in enumerate(nodes):
        if len(nodes) == 1:
            w = np.ones_like(v1)
        else:
            w = np.maximum(0.0, 1.0 - np.abs(v1 - node) / (nodes[1] - nodes[0]))
        rows = w > 0
        if not rows.any():
            continue
        acc[rows] += w[rows, None] * _prices_on_ratio_grid(
            replace(params, v0=max(node, 0.0)), exp.forward[o][live], k[live], t1[live], d[live], c[live],
            ratio[rows], pricer)
    values[:, live] = acc
    return values


def _market_option_values(exp: Exposure, params: FamilyParams, ratio: np.ndarray, v1: np.ndarray,
                          age_years: float, pricer: Any) -> tuple[np.ndarray, np.ndarray]:
    """(today's values, scenario values (scenarios x options)) at market vol: Black-76 at F*ratio and each
    option's vol moved by the path's change of sqrt(variance), maturity aged by `age_years`."""
    o = exp.is_option
    k, c, d, t = exp.strike[o], exp.is_call[o], exp.discount[o], exp.maturity[o]
    vol = option_vols(exp, params, pricer)
    base = pricer.black_price(exp.forward[o], k, t, d, vol, c)
    fwd = exp.forward[o][None, :] * ratio[:, None]
    v0 = max(params.heston.v0, 0.0)                   # the variance the day's paths start from
    shifted = np.maximum(vol[None, :] + (np.sqrt(v1) - np.sqrt(v0))[:, None], MIN_VOL)
    t1 = np.broadcast_to(t - age_years, fwd.shape)
    values = d * np.where(c, np.maximum(fwd - k, 0.0), np.maximum(k - fwd, 0.0))   # expired: intrinsic
    live = t1 > 0
    priced = pricer.black_price(fwd[live], np.broadcast_to(k, fwd.shape)[live], t1[live],
                                np.broadcast_to(d, fwd.shape)[live], shifted[live],
                                np.broadcast_to(c, fwd.shape)[live])
    values[live] = priced
    return base, values


def value_at_risk(exp: Exposure, params: FamilyParams, n_scenarios: int = 2000, seed: int = 11,
                  days: float = 1.0, pricer: Any = pricing, convention: str = "model") -> VaR:
    """1-day VaR at 95% and 99% by full revaluation of every position in every scenario (model prices under
    "model"; Black-76 at the market vol moved with the path's variance under "market")."""
    if not len(exp):
        return VaR(0.0, 0.0, np.zeros(0))
    ratio, v1 = simulate_heston_day(params, n_scenarios, seed, days)
    pnl = np.zeros(n_scenarios)
    f = ~exp.is_option
    if f.any():
        pnl += (ratio - 1.0) * np.sum(exp.size[f] * exp.forward[f])
    o = exp.is_option
    if o.any() and convention == "market":
        base, values = _market_option_values(exp, params, ratio, v1, days / CALENDAR_DAYS, pricer)
        pnl += np.nansum((values - base[None, :]) * exp.size[o][None, :], axis=1)
    elif o.any():
        base = pricer.family_price(params, exp.forward[o], exp.strike[o], exp.maturity[o], exp.discount[o],
                                   exp.is_call[o])
        values = _option_values(exp, params, ratio, v1, days / CALENDAR_DAYS, pricer)
        pnl += np.nansum((values - base[None, :]) * exp.size[o][None, :], axis=1)
    var95 = max(0.0, -float(np.quantile(pnl, 0.05)))
    var99 = max(var95, -float(np.quantile(pnl, 0.01)))
    return VaR(var95, var99, pnl)


# ------------------------------------------------------------------------------------ one cycle
@dataclass(frozen=True)
class MonitorReport:
    """What the monitor found this cycle (published on the bus as the RISK topic)."""

    at: datetime
    greeks: DollarGreeks
    stress: StressGrid
    var: VaR
    breaches: list[Breach]
    stops: list[Breach]
    state_changes: list[StateChange]
    trading_state: str

    def as_dict(self) -> dict:
        return {"at": self.at.isoformat(), "greeks": self.greeks.as_dict(), "stress": self.stress.as_dict(),
                "var": self.var.as_dict(), "breaches": [b.as_dict() for b in self.breaches],
                "stops": [b.as_dict() for b in self.stops],
                "state_changes": [c.as_dict() for c in self.state_changes], "trading_state": self.trading_state}


def run(exp: Exposure, params: FamilyParams, cfg: RiskConfig, machine: TradingStateMachine, at: datetime,
        day_pnl: float, unrealized=None, stop_loss: float | None = None, pricer: Any = pricing) -> MonitorReport:
    """One monitor cycle: Greeks, stress grid, VaR, breaches and the state changes they cause, stops."""
    how = cfg.greeks_from
    greeks, _ = portfolio_greeks(exp, params, pricer, how)
    stress = stress_grid(exp, params, pricer=pricer, convention=how)
    var = value_at_risk(exp, params, cfg.var_scenarios, cfg.var_seed, pricer=pricer, convention=how)
    breaches = limit_breaches(greeks, var.var99, day_pnl, cfg)
    changes = apply_breaches(machine, breaches, cfg, at)
    stops = ([] if unrealized is None or stop_loss is None
             else stop_losses(exp.contract_id, unrealized, stop_loss))
    return MonitorReport(at, greeks, stress, var, breaches, stops, changes, machine.state.value)
