"""Heston prices against QuantLib (adaptive Gauss-Lobatto, 1e-10) on hard regimes and Lewis' reference prices."""
import numpy as np
import pytest

from workstation.pricing import HestonParams, heston_implied_vol, heston_price

LEWIS = {  # strike: (put, call); S=100, r=1%, q=2%, T=1, v0=0.04, kappa=4, theta=0.25, sigma=1, rho=-0.5
    80: (7.958878113256768285213263077598987193482161301733, 26.774758743998854221382195325726949201687074848341),
    90: (12.017966707346304987709573290236471654992071308187, 20.933349000596710388139445766564068085476194042256),
    100: (17.055270961270109413522653999411000974895436309183, 16.070154917028834278213466703938231827658768230714),
    110: (23.017825898442800538908781834822560777763225722188, 12.132211516709844867860534767549426052805766831181),
    120: (29.811026202682471843340682293165857439167301370697, 9.024913483457835636553375454092357136489051667150),
}


def test_lewis_reference_prices():
    params = HestonParams(0.04, 4.0, 0.25, 1.0, -0.5)
    strikes = np.array(sorted(LEWIS))
    forward, discount = 100.0 * np.exp(0.01 - 0.02), np.exp(-0.01)
    puts = heston_price(params, forward, strikes, 1.0, discount, False)
    calls = heston_price(params, forward, strikes, 1.0, discount, True)
    np.testing.assert_allclose(puts, [LEWIS[k][0] for k in strikes], rtol=1e-11)
    np.testing.assert_allclose(calls, [LEWIS[k][1] for k in strikes], rtol=1e-11)


def _quantlib_prices(ql, params, forward, strikes, days, discount, calls):
    today = ql.Date(1, 1, 2020)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    t = days / 365.0
    rate = -np.log(discount) / t
    curve = ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc, ql.Continuous))
    process = ql.HestonProcess(curve, curve, ql.QuoteHandle(ql.SimpleQuote(forward)), params.v0, params.kappa,
                               params.theta, params.sigma, params.rho)
    engine = ql.AnalyticHestonEngine(ql.HestonModel(process), 1e-10, 1000000)
    out = []
    for k, c in zip(strikes, calls):
        option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call if c else ql.Option.Put, float(k)),
                                  ql.EuropeanExercise(today + int(days)))
        option.setPricingEngine(engine)
        out.append(option.NPV())
    return np.array(out)


HARD_REGIMES = [
    HestonParams(0.04, 1.5, 0.04, 0.3, -0.7),        # ordinary equity index
    HestonParams(0.09, 0.5, 0.04, 2.0, -0.95),       # vol of vol 2, strong skew, Feller violated: narrow strip
    HestonParams(0.09, 0.5, 0.04, 1.0, -0.9),        # same, milder (needs the fine zone near u = 0)
    HestonParams(0.02, 3.0, 0.06, 1.5, 0.5),         # positive correlation
    HestonParams(0.04, 2.0, 0.04, 1e-3, -0.5),       # tiny sigma (near Black)
    HestonParams(0.25, 5.0, 0.05, 1.0, -0.8),        # stressed short end
]


@pytest.mark.quantlib
@pytest.mark.parametrize("params", HARD_REGIMES, ids=lambda p: f"s{p.sigma}-r{p.rho}-k{p.kappa}")
def test_matches_quantlib_gauss_lobatto(params):
    ql = pytest.importorskip("QuantLib")
    forward = 100.0
    worst = 0.0
    for days in (1, 7, 30, 182, 730, 3650):
        t = days / 365.0
        sd = np.sqrt(max(params.v0, params.theta) * t)
        strikes = forward * np.exp(np.linspace(-6, 6, 9) * sd)
        calls = strikes >= forward
        discount = np.exp(-0.03 * t)
        ours = heston_price(params, forward, strikes, t, discount, calls)
        ref = _quantlib_prices(ql, params, forward, strikes, days, discount, calls)
        worst = max(worst, float(np.max(np.abs(ours - ref))))
    assert worst < 1e-8


def test_chain_grouping_is_order_independent_and_bad_rows_nan():
    params = HestonParams(0.04, 1.5, 0.05, 0.8, -0.7)
    rng = np.random.default_rng(3)
    t = rng.choice([0.05, 0.5, 2.0], 60)
    k = 100 * np.exp(rng.uniform(-0.5, 0.5, 60))
    c = rng.random(60) < 0.5
    a = heston_price(params, 100.0, k, t, 0.99, c)
    perm = rng.permutation(60)
    np.testing.assert_array_equal(heston_price(params, 100.0, k[perm], t[perm], 0.99, c[perm]), a[perm])
    # parity on the same expiry
    np.testing.assert_allclose(heston_price(params, 100.0, k, t, 0.99, True) - heston_price(params, 100.0, k, t, 0.99, False),
                               0.99 * (100.0 - k), atol=1e-11)
    bad = heston_price(params, [100.0, -5.0, 100.0], [100.0, 100.0, np.nan], [1.0, 1.0, 1.0], 1.0, True)
    assert np.isfinite(bad[0]) and np.isnan(bad[1:]).all()
    assert heston_price(params, 100.0, 90.0, 0.0, 0.5, True) == pytest.approx(5.0)
    assert heston_price(params, 100.0, 100.0, 1.0, 1.0, True).shape == ()


def test_tiny_sigma_converges_to_black_with_integrated_variance():
    from workstation.pricing import implied_vol
    params = HestonParams(0.04, 2.0, 0.04, 1e-9, -0.5)  # skew effects are O(sigma)
    k = np.array([70.0, 100.0, 140.0])
    iv = heston_implied_vol(params, 100.0, k, 1.0, 1.0, k >= 100)
    np.testing.assert_allclose(iv, 0.2, atol=1e-9)
    assert implied_vol is not None


@pytest.mark.parametrize("p", [-0.5, -2.0, 1.5, 4.0])
def test_moment_explosion_time_matches_riccati(p):
    """The fine zone near u = 0 is sized from the critical moments: check T*(p) against the Riccati ODE."""
    from workstation.pricing.quadrature import analyticity_half_width, explosion_time
    kappa, sigma, rho = 0.5, 2.0, -0.95
    k = kappa - rho * sigma * p
    rhs = lambda b: 0.5 * p * (p - 1.0) - k * b + 0.5 * sigma * sigma * b * b  # noqa: E731
    b, t, dt = 0.0, 0.0, 1e-4
    while b < 1e4 and t < 50.0:
        k1 = rhs(b); k2 = rhs(b + 0.5 * dt * k1); k3 = rhs(b + 0.5 * dt * k2); k4 = rhs(b + dt * k3)  # noqa: E702
        b += dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6.0
        t += dt
    expected = t if b >= 1e4 else np.inf
    got = explosion_time(p, kappa, sigma, rho)
    if np.isinf(expected):
        assert got > 50.0
    else:
        assert got == pytest.approx(expected, rel=2e-3)
        # at maturity T*(p) the singularity of phi(u - i/2) sits at distance |p - 1/2| (or closer)
        assert analyticity_half_width(kappa, sigma, rho, got, 100.0) <= abs(p - 0.5) * (1 + 1e-2)
        assert analyticity_half_width(kappa, sigma, rho, got, 100.0) >= 0.5


@pytest.mark.parametrize("params", HARD_REGIMES, ids=lambda p: f"s{p.sigma}-r{p.rho}-k{p.kappa}")
def test_trading_tolerance_stays_within_a_billionth_of_the_forward(params):
    """The engine prices at FAST_CF_TOL (shorter integration range): prices within 1e-9 of the forward and OTM
    implied vols within a thousandth of a vol point of the reference accuracy, short and long expiries alike."""
    from workstation.pricing import FAST_CF_TOL, implied_vol
    forward = 100.0
    for days in (1, 7, 30, 182, 730):
        t = days / 365.0
        sd = np.sqrt(max(params.v0, params.theta) * t)
        strikes = forward * np.exp(np.linspace(-4, 4, 17) * sd)
        calls = strikes >= forward
        ref = heston_price(params, forward, strikes, t, 1.0, calls)
        fast = heston_price(params, forward, strikes, t, 1.0, calls, tol=FAST_CF_TOL)
        assert np.max(np.abs(fast - ref)) < 1e-9 * forward
        priced = ref > 1e-6 * forward
        iv_ref = implied_vol(ref[priced], forward, strikes[priced], t, 1.0, calls[priced])
        iv_fast = implied_vol(fast[priced], forward, strikes[priced], t, 1.0, calls[priced])
        assert np.nanmax(np.abs(iv_fast - iv_ref)) < 1e-5
