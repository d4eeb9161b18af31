"""Scenarios with time: the book's P&L over (days forward) x (forward shock) x (vol shock).

Each option is repriced with Black-76 at the shocked forward F(1+s), the shocked vol and the maturity left after
`days` trading days (calendar time elapsed between the trade days, from the calendar: a Friday-to-Monday step
costs three days of theta); an option that has expired by then is worth its intrinsic value at the shocked
forward (expiries roll off). The days axis is 0, 1, 5 trading days and the next expiry of the book.

Vol conventions: sticky-strike keeps each strike's vol; sticky-delta moves the smile with the forward, so a
strike's vol becomes the vol of the moneyness K / F(1+s), to first order σ(K) - skew x ln(1+s) with skew =
dσ/d ln K of the expiry's smile at that strike. `term_scaled` multiplies each vol shock by √(30 / days to
expiry) (floored at one day): short expiries move more.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from ..domain import calendar
from ..pricing import black_price
from .buckets import term_weight
from .monitor import MIN_VOL, SPOT_SHOCKS, VOL_SHOCKS, Exposure

DAYS_FORWARD = (0, 1, 5)
CALENDAR_DAYS = 365.0


@dataclass(frozen=True)
class TimeScenarios:
    """pnl[d, i, j]: P&L ($) after days[d] trading days at spot_shocks[i] and vol_shocks[j] (vol points)."""

    spot_shocks: np.ndarray
    vol_shocks: np.ndarray
    days: tuple[int, ...]
    labels: tuple[str, ...]
    pnl: np.ndarray
    sticky: str = "strike"
    term_scaled: bool = False

    def as_dict(self) -> dict:
        return {"spot_shocks": [round(float(s), 6) for s in self.spot_shocks],
                "vol_shocks": [float(v) for v in self.vol_shocks], "days": list(self.days),
                "day_labels": list(self.labels), "sticky": self.sticky, "term_scaled": self.term_scaled,
                "pnl": np.round(self.pnl, 2).tolist()}


def trading_days_ahead(today: date, n: int) -> date:
    """The trade day `n` trading days after `today` (today itself for 0)."""
    day = today
    for _ in range(n):
        day = calendar.next_trading_day(day)
    return day


def trading_days_between(today: date, later: date) -> int:
    """Trading days from `today` until `later` (0 when `later` is today or earlier)."""
    n, day = 0, today
    while day < later and n < 2000:
        day = calendar.next_trading_day(day)
        n += 1
    return n


def time_grid(exp: Exposure, vol: np.ndarray, now: datetime, *, skew: np.ndarray | None = None,
              expiry: list[date | None] | None = None, spot_shocks=SPOT_SHOCKS, vol_shocks=VOL_SHOCKS,
              days=DAYS_FORWARD, sticky: str = "strike", term_scaled: bool = False) -> TimeScenarios:
    """The grid for the book `exp` marked at Black vols `vol` (decimal, one per position; futures ignored).

    `skew` (dσ/d ln K per position) is needed for sticky-delta; `expiry` (per position) adds the "next expiry"
    day: the trading days until the book's nearest option expiry, at which that expiry is worth intrinsic."""
    spot_shocks, vol_shocks = np.asarray(spot_shocks, float), np.asarray(vol_shocks, float)
    today = now.astimezone(calendar.NEW_YORK).date()
    steps = [(int(d), f"{int(d)}d", (trading_days_ahead(today, int(d)) - today).days / CALENDAR_DAYS)
             for d in days]
    o = exp.is_option & np.isfinite(exp.maturity) & (exp.maturity > 0)
    if expiry is not None and o.any():
        nearest = int(np.argmin(np.where(o, exp.maturity, np.inf)))
        e = expiry[nearest]
        if e is not None:
            steps.append((trading_days_between(today, e), f"expiry {e:%d %b}", float(exp.maturity[nearest])))
    steps.sort(key=lambda step: step[2])                 # in time order: the next expiry may come before 5 days
    pnl = np.zeros((len(steps), len(spot_shocks), len(vol_shocks)))
    f = ~exp.is_option
    if f.any():
        pnl += spot_shocks[None, :, None] * np.sum(exp.size[f] * exp.forward[f])
    if o.any():
        fwd, k, t, d, c = exp.forward[o], exp.strike[o], exp.maturity[o], exp.discount[o], exp.is_call[o]
        size = exp.size[o]
        sigma = np.asarray(vol, float)[o]
        base = black_price(fwd, k, t, d, sigma, c)
        shocked_f = fwd[None, :] * (1.0 + spot_shocks[:, None])                       # spot x position
        sig = np.broadcast_to(sigma, shocked_f.shape)
        if sticky == "delta" and skew is not None:
            sig = sig - np.nan_to_num(np.asarray(skew, float)[o])[None, :] * np.log1p(spot_shocks)[:, None]
        scale = term_weight(t * CALENDAR_DAYS) if term_scaled else np.ones_like(t)
        for n, (_, _, elapsed) in enumerate(steps):
            left = t - elapsed
            vols = np.maximum(sig[:, None, :] + 0.01 * vol_shocks[None, :, None] * scale[None, None, :], MIN_VOL)
            ff = shocked_f[:, None, :]
            live = left > 1e-9
            value = np.where(c, np.maximum(ff - k, 0.0), np.maximum(k - ff, 0.0)) * np.ones_like(vols)
            if live.any():
                value[..., live] = black_price(ff[..., live], k[live], left[live], d[live], vols[..., live], c[live])
            pnl[n] += np.nansum((value - base) * size, axis=-1)
    return TimeScenarios(spot_shocks, vol_shocks, tuple(s[0] for s in steps), tuple(s[1] for s in steps), pnl,
                         sticky, term_scaled)


def smile_skew(strike: np.ndarray, vol: np.ndarray, forward: float) -> tuple[np.ndarray, np.ndarray]:
    """(log-moneyness grid, dσ/d ln K) of one expiry's smile by central differences (for sticky-delta)."""
    ok = np.isfinite(strike) & np.isfinite(vol)
    x = np.log(np.asarray(strike, float)[ok] / forward)
    v = np.asarray(vol, float)[ok]
    order = np.argsort(x)
    x, v = x[order], v[order]
    if len(x) < 2:
        return x, np.zeros_like(x)
    return x, np.gradient(v, x)
