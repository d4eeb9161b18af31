"""Calibration: synthetic recovery from a poor start; real SPX chain no worse than QuantLib."""
import csv
from pathlib import Path

import numpy as np
import pytest

from workstation.pricing import HestonParams, calibrate_heston, heston_implied_vol, heston_price, implied_vol

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "spx_2022-06-10_cboe.csv"


def test_synthetic_recovery_cui_setup():
    true = HestonParams(0.08, 3.0, 0.10, 0.25, -0.8)
    t = np.repeat(np.array([30, 60, 91, 182, 273, 365, 547, 730]) / 365.0, 5)
    f = np.exp(0.02 * t)
    k = f * np.exp(np.tile(np.linspace(-0.3, 0.3, 5), 8) * np.sqrt(t) * 1.5)
    d = np.exp(-0.02 * t)
    call = np.ones_like(t, dtype=bool)
    price = heston_price(true, f, k, t, d, call)
    fit = calibrate_heston(f, k, t, d, call, price, initial=HestonParams(0.2, 1.2, 0.2, 0.3, -0.6))
    assert fit.converged, fit.message
    np.testing.assert_allclose(fit.params.as_array(), true.as_array(), rtol=1e-5)
    assert fit.rmse_iv < 1e-5 and fit.iterations < 50


def load_spx_otm(path: Path):
    """OTM quotes, 0.7 <= K/F <= 1.3, 7 days <= T <= 2 years, bid >= 0.5, spread < 20% of mid; PM (SPXW)
    series where an expiry has both roots."""
    rows = list(csv.DictReader(path.open()))
    weekly = {r["expiry_or_T"] for r in rows if r["root"] == "SPXW"}
    out = []
    for r in rows:
        if r["root"] == "SPX" and r["expiry_or_T"] in weekly:
            continue
        f, k, t, d = float(r["F_pcp"]), float(r["strike"]), float(r["T_act365"]), float(r["DF_pcp"])
        bid, ask = float(r["bid"]), float(r["ask"])
        mid = 0.5 * (bid + ask)
        call = r["type"] == "C"
        if call != (k >= f) or not (0.7 <= k / f <= 1.3 and 7 / 365 <= t <= 2.0 + 1e-9):
            continue
        if bid < 0.5 or (ask - bid) / mid >= 0.2:
            continue
        out.append((f, k, t, d, call, mid))
    a = np.array(out, dtype=float)
    return a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4].astype(bool), a[:, 5]


def quantlib_calibrate(ql, f, k, t, d, iv, initial):
    """QuantLib HestonModel + HestonModelHelper (ImpliedVolError), LM; curves reproduce each expiry's F and DF."""
    today = ql.Date(10, 6, 2022)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    days = np.rint(t * 365).astype(int)
    spot = float(f[0])
    uniq = sorted(set(days.tolist()))
    dates = [today] + [today + int(n) for n in uniq]
    dfs = [1.0] + [float(np.mean(d[days == n])) for n in uniq]
    divs = [1.0] + [float(np.mean(f[days == n] * d[days == n])) / spot for n in uniq]
    r_curve = ql.YieldTermStructureHandle(ql.DiscountCurve(dates, dfs, dc))
    q_curve = ql.YieldTermStructureHandle(ql.DiscountCurve(dates, divs, dc))
    v0, kappa, theta, sigma, rho = initial
    model = ql.HestonModel(ql.HestonProcess(r_curve, q_curve, ql.QuoteHandle(ql.SimpleQuote(spot)),
                                            v0, kappa, theta, sigma, rho))
    engine = ql.AnalyticHestonEngine(model)
    helpers = []
    for strike, n, vol in zip(k, days, iv):
        h = ql.HestonModelHelper(ql.Period(int(n), ql.Days), ql.NullCalendar(), spot, float(strike),
                                 ql.QuoteHandle(ql.SimpleQuote(float(vol))), r_curve, q_curve,
                                 ql.BlackCalibrationHelper.ImpliedVolError)
        h.setPricingEngine(engine)
        helpers.append(h)
    model.calibrate(helpers, ql.LevenbergMarquardt(1e-8, 1e-8, 1e-8), ql.EndCriteria(500, 100, 1e-8, 1e-8, 1e-8))
    theta_, kappa_, sigma_, rho_, v0_ = model.params()
    return HestonParams(v0_, kappa_, theta_, sigma_, rho_)


@pytest.mark.quantlib
@pytest.mark.skipif(not DATA.exists(), reason="real SPX chain not available")
def test_real_chain_no_worse_than_quantlib():
    ql = pytest.importorskip("QuantLib")
    f, k, t, d, call, mid = load_spx_otm(DATA)
    fit = calibrate_heston(f, k, t, d, call, mid)
    assert fit.converged, fit.message
    assert fit.rmse_iv < 2.5 and len(fit.per_expiry_rmse) == len(np.unique(t))
    warm = calibrate_heston(f, k, t, d, call, mid, initial=fit.params)
    assert warm.iterations <= 3 and warm.rmse_iv <= fit.rmse_iv + 1e-6
    # QuantLib on every 8th quote (its calibration takes seconds per thousand quotes); ours on the same subset
    sub = slice(None, None, 8)
    iv = implied_vol(mid[sub], f[sub], k[sub], t[sub], d[sub], call[sub])
    ql_params = quantlib_calibrate(ql, f[sub], k[sub], t[sub], d[sub], iv, (0.06, 2.0, 0.06, 1.0, -0.7))
    ql_rmse = np.sqrt(np.nanmean((heston_implied_vol(ql_params, f[sub], k[sub], t[sub], d[sub], call[sub]) - iv) ** 2)) * 100
    ours = calibrate_heston(f[sub], k[sub], t[sub], d[sub], call[sub], mid[sub])
    assert ours.converged
    assert ours.rmse_iv <= ql_rmse * (1 + 1e-3)


def test_bad_quotes_are_ignored_and_result_is_reported():
    true = HestonParams(0.04, 2.0, 0.05, 0.6, -0.6)
    t = np.repeat([0.25, 0.5, 1.0], 6)
    k = np.tile(np.linspace(85, 115, 6), 3)
    price = heston_price(true, 100.0, k, t, 1.0, k >= 100)
    price[0] = -1.0
    price[5] = np.nan
    fit = calibrate_heston(100.0, k, t, 1.0, k >= 100, price)
    assert fit.converged and fit.rmse_iv < 1e-4
    assert set(fit.per_expiry_rmse) == {0.25, 0.5, 1.0}
