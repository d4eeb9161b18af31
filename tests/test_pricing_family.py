"""Bates and time-dependent Heston: prices against QuantLib (BatesEngine; PiecewiseTimeDependentHestonModel with
AnalyticPTDHestonEngine, adaptive Gauss-Lobatto 1e-12) across regimes, reductions to Heston, Greeks and parameter
gradients against central finite differences."""
import numpy as np
import pytest

from workstation.domain import BatesParams, HestonParams, TimeDependentHestonParams
from workstation.pricing import heston_greeks, heston_price, heston_price_gradient
from workstation.pricing.family import family_greeks, family_price, family_price_gradient, model_code

BATES_REGIMES = [
    BatesParams(0.04, 1.5, 0.05, 0.6, -0.7, 0.5, -0.1, 0.15),      # index-like jumps
    BatesParams(0.09, 0.5, 0.04, 1.0, -0.9, 2.0, -0.05, 0.05),      # frequent small jumps, strong skew
    BatesParams(0.02, 3.0, 0.03, 0.3, -0.5, 0.1, -0.3, 0.3),        # rare crashes (narrow jump factor)
    BatesParams(0.25, 5.0, 0.05, 1.0, -0.8, 1.0, 0.05, 0.1),        # stressed short end, upward jumps
]
TD_REGIMES = [
    TimeDependentHestonParams(0.04, 1.5, -0.7, (0.03, 0.05, 0.06, 0.07), (0.5, 0.8, 1.0, 0.7)),
    TimeDependentHestonParams(0.09, 0.5, -0.9, (0.02, 0.04, 0.05, 0.04), (2.0, 1.5, 1.0, 0.6)),
    TimeDependentHestonParams(0.02, 3.0, 0.3, (0.06, 0.03, 0.05, 0.08), (0.3, 1.2, 0.4, 0.9)),
    TimeDependentHestonParams(0.25, 5.0, -0.8, (0.05, 0.06, 0.04, 0.05), (1.0, 0.5, 0.8, 1.5)),
]
DAYS = (1, 7, 30, 182, 400, 730, 3650)


def _ql_setup(ql):
    today = ql.Date(1, 1, 2020)
    ql.Settings.instance().evaluationDate = today
    curve = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.03, ql.Actual365Fixed(), ql.Continuous))
    return today, curve


def _ql_prices(ql, engine, today, strikes, days, calls):
    out = []
    for k, c in zip(strikes, calls):
        option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call if c else ql.Option.Put, float(k)),
                                  ql.EuropeanExercise(today + int(days)))
        option.setPricingEngine(engine)
        out.append(option.NPV())
    return np.array(out)


def _grid(sd_per_sqrt_year, days):
    """9 strikes from -6 to +6 standard deviations (deep ITM to deep OTM), OTM side priced plus ITM puts/calls."""
    t = days / 365.0
    strikes = 100.0 * np.exp(np.linspace(-6, 6, 9) * sd_per_sqrt_year * np.sqrt(t))
    return t, strikes, strikes >= 100.0


def _worst_vs_quantlib(ql, params, engine, today, sd):
    worst = 0.0
    for days in DAYS:
        t, strikes, calls = _grid(sd, days)
        ref = _ql_prices(ql, engine, today, strikes, days, calls)
        itm = _ql_prices(ql, engine, today, strikes, days, ~calls)    # deep in the money too
        ours = family_price(params, 100.0, strikes, t, np.exp(-0.03 * t), calls)
        ours_itm = family_price(params, 100.0, strikes, t, np.exp(-0.03 * t), ~calls)
        worst = max(worst, float(np.max(np.abs(ours - ref))), float(np.max(np.abs(ours_itm - itm))))
    return worst


@pytest.mark.quantlib
@pytest.mark.parametrize("params", BATES_REGIMES, ids=lambda p: f"lam{p.jump_rate}-mu{p.jump_mean}-d{p.jump_vol}")
def test_bates_matches_quantlib(params):
    ql = pytest.importorskip("QuantLib")
    today, curve = _ql_setup(ql)
    process = ql.BatesProcess(curve, curve, ql.QuoteHandle(ql.SimpleQuote(100.0)), params.v0, params.kappa,
                              params.theta, params.sigma, params.rho, params.jump_rate, params.jump_mean,
                              params.jump_vol)
    engine = ql.BatesEngine(ql.BatesModel(process), 1e-13, 10000000)  # at 1e-12 QuantLib errs by 5e-8 at 10 y
    sd = np.sqrt(max(params.v0, params.theta) + params.jump_rate * (params.jump_mean ** 2 + params.jump_vol ** 2))
    assert _worst_vs_quantlib(ql, params, engine, today, sd) < 1e-8


def _ql_td_engine(ql, curve, p: TimeDependentHestonParams, days):
    ends = list(p.bucket_ends)

    def piecewise(values):
        par = ql.PiecewiseConstantParameter(ends, ql.NoConstraint())
        for i, v in enumerate(values):
            par.setParam(i, v)
        return par

    grid = ql.TimeGrid(sorted(set(ends + [d / 365.0 for d in days])))
    model = ql.PiecewiseTimeDependentHestonModel(
        curve, curve, ql.QuoteHandle(ql.SimpleQuote(100.0)), p.v0, piecewise(p.theta),
        ql.ConstantParameter(p.kappa, ql.NoConstraint()), piecewise(p.sigma),
        ql.ConstantParameter(p.rho, ql.NoConstraint()), grid)
    return ql.AnalyticPTDHestonEngine(model, 1e-12, 1000000)


@pytest.mark.quantlib
@pytest.mark.parametrize("params", TD_REGIMES, ids=lambda p: f"s{p.sigma[0]}-r{p.rho}-k{p.kappa}")
def test_heston_td_matches_quantlib(params):
    ql = pytest.importorskip("QuantLib")
    today, curve = _ql_setup(ql)
    engine = _ql_td_engine(ql, curve, params, DAYS)
    sd = np.sqrt(max(params.v0, *params.theta))
    assert _worst_vs_quantlib(ql, params, engine, today, sd) < 1e-8


@pytest.mark.parametrize("heston", [HestonParams(0.05, 2.0, 0.06, 0.9, -0.7), HestonParams(0.09, 0.5, 0.04, 2.0, -0.95),
                                    HestonParams(0.04, 2.0, 0.04, 1e-3, -0.5)], ids=["equity", "wild", "tiny-sigma"])
def test_bates_without_jumps_is_heston_and_one_bucket_is_heston(heston):
    k = np.array([60.0, 80.0, 95.0, 100.0, 105.0, 120.0, 160.0])
    for t in (1 / 365, 30 / 365, 0.6, 3.0):
        d = np.exp(-0.02 * t)
        ref = heston_price(heston, 100.0, k, t, d, k >= 100)
        # lambda = 0: the same kernel path with a zero jump exponent, bit for bit
        np.testing.assert_array_equal(family_price(BatesParams.from_heston(heston, 0.0, -0.1, 0.2), 100.0, k, t, d,
                                                   k >= 100), ref)
        # one theta and sigma in every bucket (and a single bucket): the recursion collapses to Heston
        for ends in ((), (1 / 12, 0.25, 1.0), (5.0,)):
            td = TimeDependentHestonParams.from_heston(heston, ends)
            np.testing.assert_allclose(family_price(td, 100.0, k, t, d, k >= 100), ref, rtol=0, atol=1e-12)
        g_ref = heston_greeks(heston, 100.0, k, t, d, k >= 100)
        g_td = family_greeks(TimeDependentHestonParams.from_heston(heston), 100.0, k, t, d, k >= 100)
        for name in ("delta", "gamma", "vega", "theta"):
            np.testing.assert_allclose(getattr(g_td, name), getattr(g_ref, name), rtol=1e-9, atol=1e-12)


def test_one_bucket_gradient_sums_to_heston_gradient():
    heston = HestonParams(0.05, 2.0, 0.06, 0.9, -0.7)
    k = np.array([80.0, 100.0, 120.0])
    _, ref = heston_price_gradient(heston, 100.0, k, 0.6, 1.0, k >= 100)
    td = TimeDependentHestonParams.from_heston(heston)
    _, grad = family_price_gradient(*model_code(td), 100.0, k, 0.6, 1.0, k >= 100)
    # (v0, kappa, rho) direct; theta and sigma are the sums over the four buckets
    np.testing.assert_allclose(grad[:, [0, 1]], ref[:, [0, 1]], rtol=1e-9)
    np.testing.assert_allclose(grad[:, 2], ref[:, 4], rtol=1e-9)
    np.testing.assert_allclose(grad[:, 3:7].sum(axis=1), ref[:, 2], rtol=1e-9)
    np.testing.assert_allclose(grad[:, 7:11].sum(axis=1), ref[:, 3], rtol=1e-9)


GRAD_CASES = [BATES_REGIMES[0], BATES_REGIMES[2], TD_REGIMES[0], TD_REGIMES[2]]
F = 100.0
K = np.array([60.0, 85.0, 95.0, 100.0, 105.0, 115.0, 150.0])


def _with(params, x):
    return type(params).from_array(x) if isinstance(params, BatesParams) else \
        TimeDependentHestonParams.from_array(x, params.bucket_ends)


@pytest.mark.parametrize("params", GRAD_CASES, ids=["bates-index", "bates-crash", "td-equity", "td-posrho"])
def test_parameter_gradient_vs_finite_differences(params):
    x = params.as_array()
    for t in (7 / 365, 0.2, 0.6, 3.0):      # inside the first, second, third and last bucket
        d = np.exp(-0.03 * t)
        calls = K >= F
        _, grad = family_price_gradient(*model_code(params), F, K, t, d, calls)
        for p in range(x.size):
            h = 1e-5 * max(abs(x[p]), 0.01)
            up, dn = x.copy(), x.copy()
            up[p] += h
            dn[p] -= h
            fd = (family_price(_with(params, up), F, K, t, d, calls)
                  - family_price(_with(params, dn), F, K, t, d, calls)) / (2 * h)
            np.testing.assert_allclose(grad[:, p], fd, rtol=1e-6, atol=1e-8 * F, err_msg=f"parameter {p}, T={t}")


@pytest.mark.parametrize("params", GRAD_CASES, ids=["bates-index", "bates-crash", "td-equity", "td-posrho"])
def test_greeks_vs_finite_differences(params):
    def price(p=params, f=F, t=0.6, call=True):
        return family_price(p, f, K, t, np.exp(-0.03 * t), call)

    def shifted(s):  # parallel shift of sqrt(v0) and every sqrt(theta)
        x = params.as_array()
        idx = [0, 2] if isinstance(params, BatesParams) else [0] + list(range(3, 3 + params.buckets))
        x[idx] = (np.sqrt(x[idx]) + s) ** 2
        return _with(params, x)

    for t in (0.2, 0.6):
        for call in (True, False):
            g = family_greeks(params, F, K, t, np.exp(-0.03 * t), call)
            h = 1e-5 * F      # small: the difference quotient's own error (h^2 f'''/6) limits the check
            up, mid, dn = price(f=F + h, t=t, call=call), price(t=t, call=call), price(f=F - h, t=t, call=call)
            np.testing.assert_allclose(g.delta, (up - dn) / (2 * h), rtol=1e-6, atol=1e-9)
            h = 3e-5 * F
            up, dn = price(f=F + h, t=t, call=call), price(f=F - h, t=t, call=call)
            np.testing.assert_allclose(g.gamma, (up - 2 * mid + dn) / h ** 2, rtol=1e-5, atol=1e-8)
            ht = 1e-5
            theta_fd = -(price(t=t + ht, call=call) - price(t=t - ht, call=call)) / (2 * ht) / 365.0
            np.testing.assert_allclose(g.theta, theta_fd, rtol=1e-6, atol=1e-10)
            hv = 1e-5
            vega_fd = (price(shifted(hv), t=t, call=call) - price(shifted(-hv), t=t, call=call)) / (2 * hv) * 0.01
            np.testing.assert_allclose(g.vega, vega_fd, rtol=1e-6, atol=1e-10)


def test_bad_parameters_and_rows_are_nan():
    good = BATES_REGIMES[0]
    x = good.as_array()
    x[5] = -1.0                                    # negative jump rate: the kernel refuses it
    _, out = family_price_gradient(1, x, np.zeros(0), F, K, 0.5, 1.0, True)
    assert np.isnan(out).all()
    p = family_price(TD_REGIMES[0], [F, -1.0], 100.0, [1.0, 1.0], 1.0, True)
    assert np.isfinite(p[0]) and np.isnan(p[1])
    assert family_price(TD_REGIMES[0], F, 90.0, 0.0, 0.5, True) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        TimeDependentHestonParams(0.04, 1.0, -0.5, (0.04, 0.04), (0.5, 0.5), (1.0, 0.5))
