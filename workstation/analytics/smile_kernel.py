"""The per-expiry smile numbers of `skew.py` as one numba kernel over every expiry of a chain.

A full SPX chain has 60+ expiries and the views compute their metrics twice a snapshot (quotes and model) in a
worker thread. In numpy each expiry is a dozen small-array calls (~150 µs of Python holding the GIL, ~20 ms a
snapshot that the window's thread waits behind); here the whole chain is one call that releases the GIL.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

# columns of the kernel's output, decimal vols and vol per unit of call delta
ATM, C25, P25, C10, P10, SLOPE, CURVATURE = range(7)
WING_TARGETS = np.array([0.25, 0.75, 0.10, 0.90])      # call deltas of the c25, p25, c10, p10 wings
FIT_LO, FIT_HI, FIT_MIN_POINTS, FIT_MIN_RANGE = 0.05, 0.95, 5, 0.3


@njit(nogil=True, cache=True)
def _interp_inside(x0: float, x: np.ndarray, y: np.ndarray) -> float:
    """y at x0, linear between the points of sorted x; NaN outside [x[0], x[-1]]."""
    if not (x[0] <= x0 <= x[-1]):
        return np.nan
    return np.interp(x0, x, y)


@njit(nogil=True, cache=True)
def _quadratic(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(c2, c1) of the least-squares y ~ c2 x² + c1 x + c0 by the normal equations (|x| <= 0.45, so they are
    well conditioned) solved by Cramer's rule."""
    s0 = s1 = s2 = s3 = s4 = t0 = t1 = t2 = 0.0
    for i in range(x.size):
        xi, yi = x[i], y[i]
        x2 = xi * xi
        s0 += 1.0
        s1 += xi
        s2 += x2
        s3 += x2 * xi
        s4 += x2 * x2
        t0 += yi
        t1 += xi * yi
        t2 += x2 * yi
    # | s4 s3 s2 | |c2|   |t2|
    # | s3 s2 s1 | |c1| = |t1|
    # | s2 s1 s0 | |c0|   |t0|
    det = s4 * (s2 * s0 - s1 * s1) - s3 * (s3 * s0 - s1 * s2) + s2 * (s3 * s1 - s2 * s2)
    if det == 0.0:
        return np.nan, np.nan
    c2 = (t2 * (s2 * s0 - s1 * s1) - s3 * (t1 * s0 - s1 * t0) + s2 * (t1 * s1 - s2 * t0)) / det
    c1 = (s4 * (t1 * s0 - s1 * t0) - t2 * (s3 * s0 - s1 * s2) + s2 * (s3 * t0 - t1 * s2)) / det
    return c2, c1


@njit(nogil=True, cache=True)
def smile_table(strike: np.ndarray, vol: np.ndarray, forward: np.ndarray, maturity: np.ndarray,
                starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """One row per smile j (the options starts[j]:ends[j], forward[j], maturity[j] in years): ATM vol at the
    forward (linear in log-moneyness), the c25/p25/c10/p10 wing vols (linear in Black-76 call delta N(d1) at
    each strike's own vol), and dσ/dΔ, d²σ/dΔ² at Δ = 0.5 of a quadratic in call delta fitted on 0.05..0.95
    (at least 5 points spanning 0.3). NaN where the smile does not reach or has fewer than 3 usable quotes."""
    out = np.full((starts.size, 7), np.nan)
    for j in range(starts.size):
        a, b = starts[j], ends[j]
        f, t = forward[j], maturity[j]
        if not (f > 0.0 and t > 0.0 and math.isfinite(f)):
            continue
        k = np.empty(b - a)
        v = np.empty(b - a)
        m = 0
        for i in range(a, b):
            if math.isfinite(strike[i]) and math.isfinite(vol[i]) and vol[i] > 0.0 and strike[i] > 0.0:
                k[m] = strike[i]
                v[m] = vol[i]
                m += 1
        if m < 3:
            continue
        order = np.argsort(k[:m])
        ks, vs = k[:m][order], v[:m][order]
        x = np.log(ks / f)
        out[j, ATM] = _interp_inside(0.0, x, vs)
        root_t = math.sqrt(t)
        delta = np.empty(m)
        for i in range(m):
            sd = vs[i] * root_t
            delta[i] = 0.5 * math.erfc(-((-x[i] + 0.5 * sd * sd) / sd) / math.sqrt(2.0))
        by_delta = np.argsort(delta)
        dd, dv = delta[by_delta], vs[by_delta]
        for w in range(WING_TARGETS.size):
            out[j, C25 + w] = _interp_inside(WING_TARGETS[w], dd, dv)
        fit = (dd >= FIT_LO) & (dd <= FIT_HI)
        n_fit = fit.sum()
        if n_fit >= FIT_MIN_POINTS:
            fx, fy = dd[fit], dv[fit]
            if fx.max() - fx.min() > FIT_MIN_RANGE:
                c2, c1 = _quadratic(fx - 0.5, fy)
                out[j, SLOPE] = c1
                out[j, CURVATURE] = 2.0 * c2
    return out
