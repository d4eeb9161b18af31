"""Forwards and discount factors per expiry series from put-call parity, all series at once.

For each series (expiry x AM/PM settlement): least squares of C_mid - P_mid = D*F - D*K over the near-the-money
strikes quoted on both sides, then pairs further than 3 robust sigmas (1.4826 x MAD, at least PARITY_FLOOR
points) from the median residual are set aside and the fit repeated (closing quotes carry a few stale pairs). Grouped sums and grouped medians
keep it vectorised over the whole chain: no Python loop per expiry.

The slope is the discount factor D only where the strikes' spread constrains it: on a short expiry a slope
error of 0.2 % (D = 0.998 twenty minutes before a close, an implied rate of thousands of percent) is within the
quotes' noise, and it moves the bounds every check built on D (a vertical's D x strike gap: false arbitrage of
half a point on a 0DTE's deep in-the-money calls). So the implied rate -ln(D)/T is held within
[RATE_MIN, RATE_MAX] a year, and where it is held the forward is refit with D fixed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PARITY_FLOOR = 0.05        # index points: robust sigma never below a tick
MIN_PAIRS = 3
RATE_MIN, RATE_MAX = -0.02, 0.15    # plausible implied (box) rates, a year


@dataclass(frozen=True)
class ExpiryForward:
    """Forward and discount factor of one expiry series, with how well parity held."""

    expiry: np.datetime64
    am_settled: bool
    maturity: float
    forward: float
    discount: float
    pairs: int
    max_residual: float
    reliable: bool


def grouped_median(group: np.ndarray, values: np.ndarray, groups: int) -> np.ndarray:
    """Median of `values` per group id in [0, groups) (NaN for empty groups)."""
    order = np.lexsort((values, group))
    g, v = group[order], values[order]
    counts = np.bincount(g, minlength=groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out = np.full(groups, np.nan)
    has = counts > 0
    lo, hi = starts + (counts - 1) // 2, starts + counts // 2
    out[has] = 0.5 * (v[lo[has]] + v[hi[has]])
    return out


def grouped_line_fit(group: np.ndarray, x: np.ndarray, y: np.ndarray, groups: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares slope, intercept and point count of y on x per group (NaN where under two points)."""
    n = np.bincount(group, minlength=groups).astype(float)
    sx, sy = np.bincount(group, x, groups), np.bincount(group, y, groups)
    sxx, sxy = np.bincount(group, x * x, groups), np.bincount(group, x * y, groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
        intercept = (sy - slope * sx) / n
    return slope, intercept, n


def series_forwards(series: np.ndarray, groups: int, strike: np.ndarray, is_call: np.ndarray, mid: np.ndarray,
                    near: np.ndarray, maturity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per series id: (forward, discount, pairs used, max |parity residual|); NaN where parity failed.

    `series` is each row's series id in [0, groups); `near` marks the rows close enough to the money; `maturity`
    (years, per series id) holds each discount factor within the plausible rates."""
    usable = near & np.isfinite(mid)
    calls, puts = np.flatnonzero(usable & is_call), np.flatnonzero(usable & ~is_call)
    code = series.astype(np.int64) * 100_000_000 + np.round(strike * 100).astype(np.int64)
    _, ci, pi = np.intersect1d(code[calls], code[puts], assume_unique=False, return_indices=True)
    g = series[calls[ci]].astype(np.int64)
    k = strike[calls[ci]].astype(float)
    y = mid[calls[ci]] - mid[puts[pi]]
    keep = np.ones(len(g), dtype=bool)
    slope = intercept = np.full(groups, np.nan)
    resid = np.zeros(len(g))
    for _ in range(3):
        slope, intercept, n = grouped_line_fit(g[keep], k[keep], y[keep], groups)
        resid = y - (intercept[g] + slope[g] * k)
        center = grouped_median(g[keep], resid[keep], groups)
        mad = grouped_median(g[keep], np.abs(resid[keep] - center[g[keep]]), groups)
        scale = np.maximum(1.4826 * np.nan_to_num(mad), PARITY_FLOOR)
        # distance from the robust centre, so an outlier that shifted the whole line cannot push the good
        # pairs out; every pair is judged again each round (one dropped early can come back)
        new_keep = np.abs(resid - np.nan_to_num(center[g])) <= 3.0 * scale[g]
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    pairs = np.bincount(g[keep], minlength=groups)
    discount = -slope
    with np.errstate(invalid="ignore", divide="ignore"):
        forward = intercept / discount
    discount, forward, resid = _within_plausible_rates(discount, forward, resid, maturity, g, k, y, keep, pairs)
    max_resid = np.full(groups, np.nan)
    if keep.any():
        np.fmax.at(max_resid, g[keep], np.abs(resid[keep]))
    bad = (pairs < MIN_PAIRS) | ~(discount > 0.5) | ~(discount < 1.2) | ~np.isfinite(forward)
    forward[bad], discount[bad] = np.nan, np.nan
    return forward, discount, pairs, max_resid


def _within_plausible_rates(discount: np.ndarray, forward: np.ndarray, resid: np.ndarray, maturity: np.ndarray,
                            g: np.ndarray, k: np.ndarray, y: np.ndarray, keep: np.ndarray, pairs: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Discount factors held within [exp(-RATE_MAX T), exp(-RATE_MIN T)]; where one is held, the forward is the
    mean of K + (C - P) / D over the kept pairs and the residuals are taken against that line."""
    t = np.maximum(np.asarray(maturity, dtype=float), 0.0)
    lowest, highest = np.exp(-RATE_MAX * t), np.exp(-RATE_MIN * t)
    held = np.isfinite(discount) & ((discount < lowest) | (discount > highest))
    if not held.any():
        return discount, forward, resid
    discount = np.where(held, np.clip(discount, lowest, highest), discount)
    refit = np.bincount(g[keep], (k + y / discount[g])[keep], len(discount))
    with np.errstate(invalid="ignore", divide="ignore"):
        forward = np.where(held, refit / pairs, forward)
    on_held = held[g]
    resid = np.where(on_held, y - discount[g] * (forward[g] - k), resid)
    return discount, forward, resid
