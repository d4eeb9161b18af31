"""Black-76 prices and Greeks on the forward of each expiry.

Conventions: price = discount * E[payoff] with the forward as the underlying; delta is per 1.0 of
forward (dP/dF, discounted), gamma d2P/dF2, vega per 1 vol point (dP/dvol * 0.01), theta per calendar
day (-dP/dT / 365 holding forward, vol and the rate r = -ln(discount)/T fixed). Bad elements give NaN;
a zero maturity or zero vol gives the discounted intrinsic value.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._inputs import broadcast_chain, shaped
from .normal import norm_cdf, norm_pdf, normalised_black_otm
from .results import Greeks

DAYS_PER_YEAR = 365.0
VOL_POINT = 0.01


@njit(nogil=True, cache=True)
def valid_contract(forward: float, strike: float, maturity: float, discount: float) -> bool:
    """True when the contract terms are usable (finite, positive forward/strike/discount, T >= 0)."""
    return (
        forward > 0.0 and strike > 0.0 and maturity >= 0.0 and discount > 0.0
        and math.isfinite(forward) and math.isfinite(strike) and math.isfinite(maturity) and math.isfinite(discount)
    )


@njit(nogil=True, cache=True)
def black_undiscounted(forward: float, strike: float, total_sd: float, is_call: bool) -> float:
    """Undiscounted Black-76 price for total standard deviation s = vol * sqrt(T)."""
    x = math.log(forward / strike)
    intrinsic = max(forward - strike, 0.0) if is_call else max(strike - forward, 0.0)
    # the OTM side of the pair (call if K >= F, put otherwise) through the normalised function
    return intrinsic + math.sqrt(forward * strike) * normalised_black_otm(-abs(x), total_sd)


@njit(nogil=True, cache=True)
def _black_price_kernel(forward, strike, maturity, discount, vol, is_call, out):
    for i in range(out.size):
        f, k, t, d, v = forward[i], strike[i], maturity[i], discount[i], vol[i]
        if not valid_contract(f, k, t, d) or not (v >= 0.0) or not math.isfinite(v):
            out[i] = np.nan
            continue
        out[i] = d * black_undiscounted(f, k, v * math.sqrt(t), is_call[i] != 0.0)


@njit(nogil=True, cache=True)
def _black_greeks_kernel(forward, strike, maturity, discount, vol, is_call, delta, gamma, vega, theta):
    for i in range(delta.size):
        f, k, t, d, v = forward[i], strike[i], maturity[i], discount[i], vol[i]
        call = is_call[i] != 0.0
        if not valid_contract(f, k, t, d) or not (v >= 0.0) or not math.isfinite(v):
            delta[i] = gamma[i] = vega[i] = theta[i] = np.nan
            continue
        s = v * math.sqrt(t)
        if s <= 0.0:
            itm = (f > k) if call else (f < k)
            delta[i] = (d if call else -d) if itm else 0.0
            gamma[i] = vega[i] = 0.0
            rate = -math.log(d) / t if t > 0.0 else 0.0
            theta[i] = rate * d * black_undiscounted(f, k, 0.0, call) / DAYS_PER_YEAR
            continue
        d1 = math.log(f / k) / s + 0.5 * s
        pdf = norm_pdf(d1)
        delta[i] = d * (norm_cdf(d1) if call else -norm_cdf(-d1))
        gamma[i] = d * pdf / (f * s)
        vega[i] = d * f * pdf * math.sqrt(t) * VOL_POINT
        price = d * black_undiscounted(f, k, s, call)
        rate = -math.log(d) / t
        dprice_dt = -rate * price + d * f * pdf * v / (2.0 * math.sqrt(t))
        theta[i] = -dprice_dt / DAYS_PER_YEAR


def black_price(forward, strike, maturity, discount, vol, is_call) -> np.ndarray:
    """Black-76 price: discount * (F N(d1) - K N(d2)) for calls, parity for puts. NaN for bad elements."""
    shape, (f, k, t, d, v, c) = broadcast_chain(forward, strike, maturity, discount, vol, is_call)
    out = np.empty(f.size)
    _black_price_kernel(f, k, t, d, v, c, out)
    return shaped(out, shape)


def black_greeks(forward, strike, maturity, discount, vol, is_call) -> Greeks:
    """Black-76 Greeks: delta per 1.0 of forward, gamma per 1.0 of forward squared,
    vega per vol point (0.01), theta per calendar day (forward and rate held)."""
    shape, (f, k, t, d, v, c) = broadcast_chain(forward, strike, maturity, discount, vol, is_call)
    n = f.size
    delta, gamma, vega, theta = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    _black_greeks_kernel(f, k, t, d, v, c, delta, gamma, vega, theta)
    return Greeks(shaped(delta, shape), shaped(gamma, shape), shaped(vega, shape), shaped(theta, shape))
