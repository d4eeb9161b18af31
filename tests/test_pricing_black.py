"""Black-76 prices and Greeks: parity, known values, finite differences, NaN on bad input, broadcasting."""
import numpy as np
import pytest

from workstation.pricing import black_greeks, black_price


def test_known_value_and_parity():
    f, k, t, d, v = 100.0, 110.0, 0.5, np.exp(-0.03 * 0.5), 0.25
    call = black_price(f, k, t, d, v, True)
    put = black_price(f, k, t, d, v, False)
    # closed form reference
    from math import erf, log, sqrt
    n = lambda z: 0.5 * (1 + erf(z / sqrt(2)))  # noqa: E731
    d1 = (log(f / k) + 0.5 * v * v * t) / (v * sqrt(t))
    assert call == pytest.approx(d * (f * n(d1) - k * n(d1 - v * sqrt(t))), rel=1e-13)
    assert call - put == pytest.approx(d * (f - k), abs=1e-12)


def test_greeks_match_finite_differences():
    f = 100.0
    k = np.array([60.0, 90.0, 100.0, 110.0, 150.0])
    t, r, v = 0.75, 0.02, 0.3
    d = np.exp(-r * t)
    for is_call in (True, False):
        g = black_greeks(f, k, t, d, v, is_call)
        h = 1e-3
        up, dn = black_price(f + h, k, t, d, v, is_call), black_price(f - h, k, t, d, v, is_call)
        mid = black_price(f, k, t, d, v, is_call)
        np.testing.assert_allclose(g.delta, (up - dn) / (2 * h), rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(g.gamma, (up - 2 * mid + dn) / h**2, rtol=1e-5, atol=1e-9)
        hv = 1e-5
        vega = (black_price(f, k, t, d, v + hv, is_call) - black_price(f, k, t, d, v - hv, is_call)) / (2 * hv) * 0.01
        np.testing.assert_allclose(g.vega, vega, rtol=1e-7, atol=1e-12)
        ht = 1e-5  # rate held: discount moves with T
        p_up = black_price(f, k, t + ht, np.exp(-r * (t + ht)), v, is_call)
        p_dn = black_price(f, k, t - ht, np.exp(-r * (t - ht)), v, is_call)
        np.testing.assert_allclose(g.theta, -(p_up - p_dn) / (2 * ht) / 365.0, rtol=1e-6, atol=1e-12)


def test_bad_elements_are_nan_and_inputs_broadcast():
    out = black_price([100.0, -1.0, 100.0, np.nan], 100.0, [1.0, 1.0, -1.0, 1.0], 1.0, 0.2, True)
    assert np.isfinite(out[0]) and np.isnan(out[1:]).all()
    assert black_price(100.0, 100.0, 1.0, 1.0, -0.1, True).shape == ()
    assert np.isnan(black_price(100.0, 100.0, 1.0, 1.0, -0.1, True))
    grid = black_price(100.0, np.array([[90.0], [110.0]]), np.array([0.5, 1.0, 2.0]), 1.0, 0.2, [True, False, True])
    assert grid.shape == (2, 3)
    assert black_price(100.0, 90.0, 0.0, 0.99, 0.2, True) == pytest.approx(0.99 * 10.0)


def test_deep_otm_prices_keep_relative_precision():
    # 8 standard deviations out: tail through Mills' ratio, no cancellation
    p = black_price(100.0, 100.0 * np.exp(8 * 0.2), 1.0, 1.0, 0.2, True)
    assert 0 < p < 1e-10
    pp = black_price(100.0, 100.0 * np.exp(8 * 0.2), 1.0, 1.0, 0.2 * (1 + 1e-9), True)
    assert pp > p
