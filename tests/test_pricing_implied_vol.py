"""Implied volatility: round trip to 1e-10 over the trading domain, NaN outside the no-arbitrage bounds."""
import importlib
import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workstation.pricing import _iv_fast, black_price, implied_vol

iv_module = importlib.import_module("workstation.pricing.implied_vol")  # the package re-exports the function


@st.composite
def option_cases(draw):
    """(price, forward, strike, maturity, discount, is_call, vol) over the issue's domain: vol 1%..300%,
    maturity 1 day..10 years, strikes to 6 standard deviations either side, on either side of the money."""
    vol, maturity = draw(st.floats(0.01, 3.0)), draw(st.floats(1.0 / 365.0, 10.0))
    sds, rate, otm_side = draw(st.floats(-6.0, 6.0)), draw(st.floats(-0.01, 0.08)), draw(st.booleans())
    forward = 100.0
    strike = forward * np.exp(sds * vol * np.sqrt(maturity))
    discount = np.exp(-rate * maturity)
    is_call = (strike >= forward) if otm_side else (strike < forward)
    price = black_price(forward, strike, maturity, discount, vol, is_call)
    return price, forward, strike, maturity, discount, is_call, vol


@settings(max_examples=400, deadline=None)
@given(case=option_cases())
def test_round_trip(case):
    price, forward, strike, maturity, discount, is_call, vol = case
    # where the option's time value is below the price's rounding the vol is not identifiable: skip
    intrinsic = discount * max((forward - strike) if is_call else (strike - forward), 0.0)
    vega = forward * discount * np.sqrt(maturity) * np.exp(-0.5 * (np.log(forward / strike) / (vol * np.sqrt(maturity))
                                                                    + 0.5 * vol * np.sqrt(maturity)) ** 2) / np.sqrt(2 * np.pi)
    if vega < 1e-12 * max(price, 1e-300) * 1e6 or (price - intrinsic) < 1e-13 * max(price, 1.0) * 1e3 or price <= 0:
        return
    if np.spacing(price) / vega > 1e-12:      # the price's own rounding already moves the vol by more than this
        return
    assert abs(implied_vol(price, forward, strike, maturity, discount, is_call) - vol) < 1e-10


def test_vectorised_million_style_batch():
    rng = np.random.default_rng(7)
    n = 20000
    vol = rng.uniform(0.01, 3.0, n)
    t = np.exp(rng.uniform(np.log(1 / 365), np.log(10), n))
    z = rng.uniform(-6, 6, n)
    f = 100.0
    k = f * np.exp(z * vol * np.sqrt(t))
    call = k >= f
    price = black_price(f, k, t, 1.0, vol, call)
    iv = implied_vol(price, f, k, t, 1.0, call)
    assert np.nanmax(np.abs(iv - vol)) < 1e-10
    assert not np.isnan(iv).any()


def test_outside_bounds_is_nan_never_raises():
    f, k, t, d = 100.0, 90.0, 1.0, 0.98
    iv = implied_vol([d * 9.0, d * 100.0, d * 150.0, -1.0, np.nan], f, k, t, d, True)
    assert np.isnan(iv).all()  # below intrinsic, at the bound, above, negative, NaN
    assert implied_vol(10.0, f, k, t, 1.0, True) == 0.0  # exactly intrinsic
    assert np.isnan(implied_vol(5.0, f, k, 0.0, d, True))
    assert np.isnan(implied_vol(5.0, -f, k, 1.0, d, True))
    assert implied_vol(np.full((2, 3), 8.0), f, 100.0, 1.0, 1.0, True).shape == (2, 3)


# ---- fast path (table guess + one Householder(3) step) against the reference solver -------------------------------
def reference_vol(price, forward, strike, maturity, discount, is_call) -> np.ndarray:
    """The safeguarded reference solver (``implied_vol_one``), element by element."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in
                                   (price, forward, strike, maturity, discount, is_call)))
    flat = [a.ravel() for a in arrays]
    out = [iv_module.implied_vol_one(flat[0][i], flat[1][i], flat[2][i], flat[3][i], flat[4][i], bool(flat[5][i]))
           for i in range(flat[0].size)]
    return np.array(out).reshape(arrays[0].shape)


def domain_sample(rng, n, sd_lo=-6.0, sd_hi=6.0, vol=(0.01, 3.0), maturity=(1.0 / 365.0, 10.0), forward=100.0):
    vol = rng.uniform(*vol, n)
    t = np.exp(rng.uniform(np.log(maturity[0]), np.log(maturity[1]), n))
    k = forward * np.exp(rng.uniform(sd_lo, sd_hi, n) * vol * np.sqrt(t))
    return vol, t, k


@settings(max_examples=400, deadline=None)
@given(case=option_cases())
def test_fast_path_matches_reference_solver(case):
    price, forward, strike, maturity, discount, is_call, vol = case
    fast = implied_vol(price, forward, strike, maturity, discount, is_call)
    ref = reference_vol(price, forward, strike, maturity, discount, is_call)
    assert np.isnan(fast) == np.isnan(ref)
    assert np.isnan(fast) or abs(fast - ref) <= 1e-12


@pytest.mark.parametrize("case", ["domain", "itm_side", "wings", "huge_vol", "tiny_vol", "at_the_money"])
def test_fast_path_matches_reference_batch(case):
    """Inside the benchmark domain and well beyond it (where the tables end and the reference solver takes over)
    the fast path returns the reference solver's vol, NaNs included."""
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    n = 4000
    if case == "wings":
        vol, t, k = domain_sample(rng, n, -15.0, 15.0)
    elif case == "huge_vol":
        vol, t, k = domain_sample(rng, n, vol=(3.0, 20.0), maturity=(1e-3, 30.0))
    elif case == "tiny_vol":
        vol, t, k = domain_sample(rng, n, vol=(1e-5, 0.01), maturity=(1e-4, 10.0))
    elif case == "at_the_money":
        vol, t, k = domain_sample(rng, n, -1e-7, 1e-7)
        k[::4] = 100.0
    else:
        vol, t, k = domain_sample(rng, n)
    call = k >= 100.0 if case != "itm_side" else rng.random(n) < 0.5
    d = np.exp(-0.03 * t)
    price = black_price(100.0, k, t, d, vol, call)
    fast = implied_vol(price, 100.0, k, t, d, call)
    ref = reference_vol(price, 100.0, k, t, d, call)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(ref))
    np.testing.assert_allclose(fast, ref, rtol=1e-8, atol=1e-12)


def test_table_guess_needs_one_householder_step_over_the_domain():
    """The speed claim: over the benchmark domain (and to 9 sd) the table guess is within 5e-5 of the solution and
    the first Householder(3) step is accepted, so no option needs a second step or the reference solver."""
    small, large = iv_module.guess_tables()
    rng = np.random.default_rng(3)
    vol, t, k = domain_sample(rng, 20000, -9.0, 9.0)
    worst_guess = worst_step = 0.0
    for v, tt, kk in zip(vol, t, k):
        s = v * math.sqrt(tt)
        x = -abs(math.log(100.0 / kk))
        beta = float(black_price(100.0, kk, tt, 1.0, v, kk >= 100.0)) / math.sqrt(100.0 * kk)  # OTM side
        gap = math.exp(0.5 * x) - beta
        guess = _iv_fast.initial_guess(x, beta, gap, small, large)
        step = _iv_fast.householder_step(x, guess, beta, gap)
        worst_guess = max(worst_guess, abs(guess / s - 1.0))
        worst_step = max(worst_step, abs(step / guess - 1.0))
    assert worst_guess < 5e-5
    assert worst_step < iv_module._FAST_ACCEPT


def test_erfcx_fast_is_accurate_to_two_ulp():
    rng = np.random.default_rng(5)
    zs = np.concatenate([[0.0, 1e-300, 0.5, 1.0, 1e10, 1e300], rng.uniform(0.0, 1.0, 150), rng.uniform(0.0, 12.0, 150),
                         np.exp(rng.uniform(0.0, 40.0, 50)), 10.0 ** rng.uniform(-15.0, 0.0, 50)])
    rel = [abs(_iv_fast.erfcx_fast(z) / _iv_fast.erfcx_reference(z) - 1.0) for z in zs]
    assert max(rel) <= 2.5 * np.finfo(float).eps
    assert _iv_fast.erfcx_fast(np.inf) == 0.0


def test_erfcx_coefficients_are_reproducible():
    np.testing.assert_array_equal(_iv_fast.fit_erfcx_coefficients(), _iv_fast._ERFCX_COEF)


def test_guess_tables_are_finite_and_the_sigma_zero_column_is_the_limit():
    small, large = iv_module.guess_tables()
    assert np.isfinite(small).all() and np.isfinite(large).all()
    # column 0 (sigma = 0) against the reference solver at sigma = 1e-3 (the limit is approached as O(sigma^2))
    a = np.linspace(0.0, _iv_fast.SMALL_A_MAX, small.shape[0])
    theta = (1.0 + a) ** 2 - 1.0
    sigma = 1e-3
    ax = sigma * theta / np.sqrt(2.0 * np.pi + 0.5 * theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(theta > 0.0, ax / np.expm1(theta), sigma / np.sqrt(2.0 * np.pi))
    s = np.array([iv_module.normalised_implied_sd(b, -v) for b, v in zip(beta, ax)])
    np.testing.assert_allclose(small[:, 0], s / sigma, rtol=1e-6)


def test_tiny_prices_at_the_money_never_raise():
    # the reference solver used to divide by zero when b_max - beta rounds to b_max (x = 0)
    for price in (1e-12, 1e-17, 1e-22, 1e-300):
        expected = price / 100.0 * math.sqrt(2.0 * math.pi) / math.sqrt(0.5)
        assert implied_vol(price, 100.0, 100.0, 0.5, 1.0, True) == pytest.approx(expected, rel=1e-12)
        assert iv_module.implied_vol_one(price, 100.0, 100.0, 0.5, 1.0, True) == pytest.approx(expected, rel=1e-12)
    assert implied_vol(5e-324, 100.0, 100.0, 0.5, 1.0, True) >= 0.0


def test_broadcasting_shapes_and_layouts():
    f, t = 100.0, 0.5
    k = np.array([[90.0, 100.0, 110.0], [95.0, 105.0, 120.0]])
    vol = np.array([[0.2, 0.25, 0.3], [0.22, 0.27, 0.35]])
    p = black_price(f, k, t, 0.99, vol, k >= f)
    iv = implied_vol(p, f, k, t, 0.99, k >= f)
    assert iv.shape == (2, 3)
    np.testing.assert_allclose(iv, vol, atol=1e-12)
    # 2-d against 1-d rows
    assert implied_vol(p, f, k, np.array([0.5, 0.5, 0.5]), 0.99, k >= f).shape == (2, 3)
    # scalars give a 0-d array
    scalar = implied_vol(float(p[0, 0]), f, 90.0, t, 0.99, False)
    assert scalar.shape == () and abs(float(scalar) - 0.2) < 1e-12
    # 1-d against size-1 arrays, strided views, empty chains
    flat_p, flat_k, flat_vol = p.ravel(), k.ravel(), vol.ravel()
    np.testing.assert_allclose(implied_vol(flat_p, np.array([f]), flat_k, [t], np.array([0.99]), flat_k >= f),
                               flat_vol, atol=1e-12)
    np.testing.assert_allclose(implied_vol(p[:, ::2], f, k[:, ::2], t, 0.99, k[:, ::2] >= f), vol[:, ::2], atol=1e-12)
    np.testing.assert_allclose(implied_vol(flat_p[::2], f, flat_k[::2], t, 0.99, flat_k[::2] >= f), flat_vol[::2],
                               atol=1e-12)
    assert implied_vol(np.array([]), f, np.array([]), t, 0.99, True).shape == (0,)


def test_engine_chain_of_2000_options():
    days = np.array([7, 14, 30, 60, 91, 182, 273, 365, 547, 730])
    t = np.repeat(days / 365.0, 200)
    k = 100.0 * np.exp(np.tile(np.linspace(-4, 4, 200), 10) * 0.22 * np.sqrt(t))
    d = np.exp(-0.03 * t)
    call = k >= 100.0
    price = black_price(100.0, k, t, d, 0.22, call)
    iv = implied_vol(price, 100.0, k, t, d, call)
    assert np.max(np.abs(iv - 0.22)) < 1e-12
