"""Normal distribution pieces accurate in the far tails, and the normalised Black function.

The normalised Black call b(x, s) = e^{x/2} N(x/s + s/2) - e^{-x/2} N(x/s - s/2), with x = ln(F/K) <= 0
(out of the money) and s = vol * sqrt(T) total standard deviation, is the price of an OTM call in units
of sqrt(F K). Black-76 pricing and implied volatility both go through it, so a price and its inversion
agree to rounding. Deep out of the money it is evaluated through Mills' ratio (scaled erfc) to avoid the
subtraction of two nearly equal tail probabilities.
"""
from __future__ import annotations

import math

from numba import njit

SQRT2 = math.sqrt(2.0)
SQRT_PI = math.sqrt(math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
SQRT_HALF_PI = math.sqrt(0.5 * math.pi)


@njit(nogil=True, cache=True)
def norm_cdf(z: float) -> float:
    """Standard normal CDF, relatively accurate in both tails (erfc based)."""
    return 0.5 * math.erfc(-z / SQRT2)


@njit(nogil=True, cache=True)
def norm_pdf(z: float) -> float:
    return INV_SQRT_2PI * math.exp(-0.5 * z * z)


@njit(nogil=True, cache=True)
def erfcx(z: float) -> float:
    """Scaled complementary error function exp(z^2) erfc(z) for z >= 0."""
    if z < 26.0:
        zz = z * z
        # exact error of z*z (Dekker split) so exp(z^2) keeps full relative precision
        c = 134217729.0 * z
        hi = c - (c - z)
        lo = z - hi
        err = ((hi * hi - zz) + 2.0 * hi * lo) + lo * lo
        return math.exp(zz) * (1.0 + err) * math.erfc(z)
    # asymptotic series, converges to double precision for z >= 26 within a few terms
    w = 1.0 / (2.0 * z * z)
    term = 1.0
    total = 1.0
    for n in range(1, 12):
        term *= -(2.0 * n - 1.0) * w
        total += term
    return total / (z * SQRT_PI)


@njit(nogil=True, cache=True)
def mills(z: float) -> float:
    """Mills' ratio N(-z) / n(z) for z >= 0."""
    return SQRT_HALF_PI * erfcx(z / SQRT2)


@njit(nogil=True, cache=True)
def normalised_black_otm(x: float, s: float) -> float:
    """b(x, s) for x <= 0 (OTM call in units of sqrt(F K)); s >= 0 total standard deviation."""
    if s <= 0.0:
        return 0.0
    h = x / s
    t = 0.5 * s
    d1 = h + t
    d2 = h - t
    if d1 > -1.0:
        return math.exp(0.5 * x) * norm_cdf(d1) - math.exp(-0.5 * x) * norm_cdf(d2)
    # both tails: b = n(0) exp(-x^2/(2 s^2) - s^2/8) [M(-d1) - M(-d2)]
    pref = INV_SQRT_2PI * math.exp(-0.5 * h * h - 0.5 * t * t)
    if pref == 0.0:
        return 0.0
    return pref * (mills(-d1) - mills(-d2))


@njit(nogil=True, cache=True)
def normalised_vega(x: float, s: float) -> float:
    """d b(x, s) / d s = n(0) exp(-x^2/(2 s^2) - s^2/8)."""
    if s <= 0.0:
        return 0.0
    h = x / s
    t = 0.5 * s
    return INV_SQRT_2PI * math.exp(-0.5 * h * h - 0.5 * t * t)
