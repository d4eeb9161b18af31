"""Heston Greeks and parameter gradient against central finite differences of heston_price."""
import numpy as np

from workstation.pricing import HestonParams, heston_greeks, heston_price, heston_price_gradient

PARAMS = HestonParams(0.05, 2.0, 0.06, 0.9, -0.7)
F = 100.0
K = np.array([70.0, 85.0, 95.0, 100.0, 105.0, 115.0, 140.0])
T = 0.6
R = 0.03


def _price(params=PARAMS, f=F, t=T, call=True):
    return heston_price(params, f, K, t, np.exp(-R * t), call)


def test_delta_gamma_theta_vega():
    for call in (True, False):
        g = heston_greeks(PARAMS, F, K, T, np.exp(-R * T), call)
        h = 1e-4 * F
        up, mid, dn = _price(f=F + h, call=call), _price(call=call), _price(f=F - h, call=call)
        np.testing.assert_allclose(g.delta, (up - dn) / (2 * h), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(g.gamma, (up - 2 * mid + dn) / h**2, rtol=1e-5, atol=1e-8)
        ht = 1e-4
        theta_fd = -(_price(t=T + ht, call=call) - _price(t=T - ht, call=call)) / (2 * ht) / 365.0
        np.testing.assert_allclose(g.theta, theta_fd, rtol=1e-6, atol=1e-10)
        hv = 1e-5  # parallel shift of sqrt(v0) and sqrt(theta), per vol point
        def shifted(s):
            return HestonParams((np.sqrt(PARAMS.v0) + s) ** 2, PARAMS.kappa, (np.sqrt(PARAMS.theta) + s) ** 2,
                                PARAMS.sigma, PARAMS.rho)
        vega_fd = (_price(shifted(hv), call=call) - _price(shifted(-hv), call=call)) / (2 * hv) * 0.01
        np.testing.assert_allclose(g.vega, vega_fd, rtol=1e-6, atol=1e-10)


def test_parameter_gradient():
    for t in (7 / 365, 0.6, 3.0):
        d = np.exp(-R * t)
        _, grad = heston_price_gradient(PARAMS, F, K, t, d, K >= F)
        x = PARAMS.as_array()
        for p in range(5):
            h = 1e-5 * max(abs(x[p]), 0.01)
            up, dn = x.copy(), x.copy()
            up[p] += h
            dn[p] -= h
            fd = (heston_price(HestonParams.from_array(up), F, K, t, d, K >= F)
                  - heston_price(HestonParams.from_array(dn), F, K, t, d, K >= F)) / (2 * h)
            np.testing.assert_allclose(grad[:, p], fd, rtol=1e-6, atol=1e-8 * F)


def test_greeks_shapes_and_nan():
    g = heston_greeks(PARAMS, [F, -1.0], 100.0, 1.0, 1.0, True)
    assert np.isfinite(g.delta[0]) and np.isnan(g.delta[1]) and np.isnan(g.vega[1])
    assert heston_greeks(PARAMS, F, 100.0, 1.0, 1.0, True).gamma.shape == ()
