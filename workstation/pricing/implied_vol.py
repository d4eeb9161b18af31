"""Black-76 implied volatility to machine precision.

The price is reduced to the normalised OTM call b(x, s) with x = -|ln(F/K)| <= 0 (in-the-money options
lose their intrinsic value by parity), then s = vol * sqrt(T) is found by safeguarded Halley steps:
on ln b below the inflection point s_c = sqrt(2|x|) (where b is convex and ln b nearly linear in 1/s^2)
and on ln(b_max - b) above it (where b flattens towards its bound e^{x/2}). Initial guesses come from the
leading asymptotics of each branch, so two to four steps reach double precision. Prices below intrinsic
or at/above the no-arbitrage bound have no volatility: NaN.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._inputs import broadcast_chain, shaped
from .black import valid_contract
from .normal import INV_SQRT_2PI, norm_cdf, normalised_black_otm

_MAX_STEPS = 30
_STEP_TOL = 1e-6


@njit(nogil=True, cache=True)
def _inverse_norm_cdf(p: float) -> float:
    """Acklam's rational approximation (|rel err| < 1.2e-9): only used for initial guesses."""
    a0, a1, a2, a3, a4, a5 = -3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, \
        1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00
    b0, b1, b2, b3, b4 = -5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, \
        6.680131188771972e01, -1.328068155288572e01
    c0, c1, c2, c3, c4, c5 = -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, \
        -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00
    d0, d1, d2, d3 = 7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        return (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1.0)
    if p > 1.0 - 0.02425:
        q = math.sqrt(-2.0 * math.log1p(-p))
        return -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1.0)
    q = p - 0.5
    r = q * q
    return (((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q / (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1.0)


@njit(nogil=True, cache=True)
def _upper_gap(x: float, s: float) -> float:
    """b_max - b(x, s) = e^{x/2} N(-d1) + e^{-x/2} N(d2), without cancellation."""
    h = x / s
    t = 0.5 * s
    return math.exp(0.5 * x) * norm_cdf(-(h + t)) + math.exp(-0.5 * x) * norm_cdf(h - t)


@njit(nogil=True, cache=True)
def _lower_objective(x: float, s: float, ln_beta: float) -> tuple[float, float, float]:
    """f = ln b(s) - ln beta and its first two derivatives in s (lower branch)."""
    b = normalised_black_otm(x, s)
    if b <= 0.0:
        return -np.inf, np.inf, 0.0
    h = x / s
    f1 = INV_SQRT_2PI * math.exp(-0.5 * h * h - 0.125 * s * s) / b
    f2 = f1 * (x * x / (s * s * s) - 0.25 * s) - f1 * f1
    return math.log(b) - ln_beta, f1, f2


@njit(nogil=True, cache=True)
def _upper_objective(x: float, s: float, ln_gap: float) -> tuple[float, float, float]:
    """f = ln(b_max - b(s)) - ln(b_max - beta) and its first two derivatives in s (upper branch)."""
    gap = _upper_gap(x, s)
    if gap <= 0.0:
        return -np.inf, -np.inf, 0.0
    h = x / s
    f1 = -INV_SQRT_2PI * math.exp(-0.5 * h * h - 0.125 * s * s) / gap
    f2 = f1 * (x * x / (s * s * s) - 0.25 * s) - f1 * f1
    return math.log(gap) - ln_gap, f1, f2


@njit(nogil=True, cache=True)
def _halley(x: float, target: float, s: float, lo: float, hi: float, upper: bool) -> float:
    """Safeguarded Halley iteration on the branch objective inside the bracket [lo, hi]."""
    for _ in range(_MAX_STEPS):
        if upper:
            f, f1, f2 = _upper_objective(x, s, target)
        else:
            f, f1, f2 = _lower_objective(x, s, target)
        if f == 0.0:
            return s
        if not math.isfinite(f) or not math.isfinite(f1):
            # underflow at the lower end: the root lies above s
            lo = s
            s = 0.5 * (lo + hi) if hi < np.inf else 2.0 * s
            continue
        # f is increasing in s on the lower branch and decreasing on the upper one
        if (f < 0.0) != upper:
            lo = s
        else:
            hi = s
        step = -f / f1
        denom = 1.0 + 0.5 * step * f2 / f1
        if denom > 0.5:
            step /= denom
        s_new = s + step
        # Halley converges cubically: once a step is below 1e-6 relative the next error is ~1e-18
        if abs(step) <= _STEP_TOL * s_new and lo <= s_new <= hi:
            return s_new
        if not (lo <= s_new <= hi):
            s_new = 0.5 * (lo + hi) if hi < np.inf else 2.0 * max(s, lo)
        s = s_new
    return s


@njit(nogil=True, cache=True)
def normalised_implied_sd(beta: float, x: float) -> float:
    """Total standard deviation s with b(x, s) = beta, for x <= 0 and 0 < beta < e^{x/2}."""
    ax = -x
    s_c = math.sqrt(2.0 * ax)
    b_c = normalised_black_otm(x, s_c) if ax > 0.0 else 0.0
    vega_c = INV_SQRT_2PI * math.exp(-0.5 * ax) if ax > 0.0 else INV_SQRT_2PI
    tangent = s_c + (beta - b_c) / vega_c  # Newton step on b from s_c: a bound by convexity/concavity
    if beta < b_c:
        ln_beta = math.log(beta)
        s = ax / math.sqrt(-2.0 * ln_beta)
        for _ in range(2):  # fixed point on ln beta ~ -x^2/(2 s^2) - s^2/8 + ln(n(0) s^3 / x^2)
            rhs = math.log(INV_SQRT_2PI * s * s * s / (ax * ax)) - 0.125 * s * s - ln_beta
            if rhs <= 0.0:
                break
            s = ax / math.sqrt(2.0 * rhs)
        s = min(s, s_c)
        if 0.0 < tangent < s_c:
            f_asym = _lower_objective(x, s, ln_beta)[0]
            f_tan = _lower_objective(x, tangent, ln_beta)[0]
            if abs(f_tan) < abs(f_asym):
                s = tangent
        return _halley(x, ln_beta, s, 0.0, s_c, False)
    bmax = math.exp(0.5 * x)
    gap_target = bmax - beta
    ln_gap = math.log(gap_target)
    s = max(-2.0 * _inverse_norm_cdf(0.5 * gap_target / bmax), s_c)  # exact when x = 0
    if tangent > s_c and ax > 0.0:
        f_guess = _upper_objective(x, s, ln_gap)[0]
        f_tan = _upper_objective(x, tangent, ln_gap)[0]
        if abs(f_tan) < abs(f_guess):
            s = tangent
    return _halley(x, ln_gap, s, s_c, np.inf, True)


@njit(nogil=True, cache=True)
def implied_vol_one(price: float, forward: float, strike: float, maturity: float, discount: float,
                    is_call: bool) -> float:
    """Black-76 implied vol of one option; NaN when the price is outside the no-arbitrage bounds."""
    if not valid_contract(forward, strike, maturity, discount) or maturity <= 0.0 or not math.isfinite(price):
        return np.nan
    p = price / discount
    intrinsic = max(forward - strike, 0.0) if is_call else max(strike - forward, 0.0)
    upper = forward if is_call else strike
    if p < intrinsic or p >= upper:
        return np.nan
    otm = p - intrinsic
    if otm <= 0.0:
        return 0.0
    x = -abs(math.log(forward / strike))
    beta = otm / math.sqrt(forward * strike)
    if beta >= math.exp(0.5 * x):
        return np.nan
    return normalised_implied_sd(beta, x) / math.sqrt(maturity)


@njit(nogil=True, cache=True)
def _implied_vol_kernel(price, forward, strike, maturity, discount, is_call, out):
    for i in range(out.size):
        out[i] = implied_vol_one(price[i], forward[i], strike[i], maturity[i], discount[i], is_call[i] != 0.0)


def implied_vol(price, forward, strike, maturity, discount, is_call) -> np.ndarray:
    """Black-76 implied volatility (annualised). NaN below intrinsic, at or above the bound
    (forward for calls, strike for puts, undiscounted) and for bad inputs; 0 exactly at intrinsic."""
    values = [np.asarray(v, dtype=np.float64) for v in (price, forward, strike, maturity, discount, is_call)]
    try:
        shape = np.broadcast_shapes(*(v.shape for v in values))
    except ValueError:
        shape = None
    if shape is not None and len(shape) == 1:
        # 1-d chains (the common case, e.g. a million prices against scalar forward/discount): stride-0 views
        # instead of materialised copies of the broadcast scalars
        p, f, k, t, d, c = (np.broadcast_to(v, shape) for v in values)
    else:
        shape, (p, f, k, t, d, c) = broadcast_chain(*values)
    out = np.empty(p.size)
    _implied_vol_kernel(p, f, k, t, d, c, out)
    return shaped(out, shape)
