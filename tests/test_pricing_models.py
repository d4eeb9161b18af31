"""The Heston family by name (pricing.models): synthetic recovery, warm starts, dispatch, and the fit on real chains."""
import sys
from pathlib import Path

import numpy as np
import pytest

from workstation.domain import BatesParams, HestonParams, TimeDependentHestonParams
from workstation.pricing import heston_greeks, heston_price, implied_vol
from workstation.pricing.models import (
    MODELS, as_model, calibrate_model, greeks_model, implied_vol_model, model_name, price_model,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from family_fit import CHAINS, DATA, load_liquid_otm  # noqa: E402

TRUE = {
    "heston": HestonParams(0.05, 2.0, 0.06, 0.7, -0.7),
    "bates": BatesParams(0.03, 2.0, 0.05, 0.5, -0.6, 0.6, -0.12, 0.1),
    "heston_td": TimeDependentHestonParams(0.04, 2.5, -0.7, (0.05, 0.06, 0.045, 0.07), (0.6, 0.9, 0.7, 1.1)),
}
POOR = {
    "heston": HestonParams(0.1, 1.0, 0.1, 0.3, -0.3),
    "bates": BatesParams(0.06, 1.0, 0.08, 0.8, -0.4, 0.2, -0.05, 0.2),
    "heston_td": TimeDependentHestonParams(0.06, 1.2, -0.4, (0.08,) * 4, (0.5,) * 4),
}


def synthetic_chain(params):
    """12 expiries from 1 week to 3 years (every time bucket sees quotes), 11 strikes each, OTM side."""
    days = np.array([7, 14, 21, 30, 45, 60, 91, 150, 240, 365, 730, 1095])
    t = np.repeat(days / 365.0, 11)
    f = 100.0 * np.exp(0.02 * t)
    d = np.exp(-0.03 * t)
    k = f * np.exp(np.tile(np.linspace(-2.5, 1.5, 11), days.size) * 0.25 * np.sqrt(t))
    call = k >= f
    return f, k, t, d, call, price_model(model_name(params), params, f, k, t, d, call)


@pytest.mark.parametrize("name", MODELS)
def test_synthetic_recovery_from_a_poor_start(name):
    chain = synthetic_chain(TRUE[name])
    fit = calibrate_model(name, *chain, initial=POOR[name])
    assert fit.converged, fit.message
    assert isinstance(fit.params, type(TRUE[name]))
    np.testing.assert_allclose(fit.params.as_array(), TRUE[name].as_array(), rtol=1e-4, atol=1e-6)
    assert fit.rmse_iv < 1e-4


@pytest.mark.parametrize("name", MODELS)
def test_warm_start_converges_in_fewer_iterations(name):
    chain = synthetic_chain(TRUE[name])
    cold = calibrate_model(name, *chain)                       # bates / heston_td: seeded by a Heston fit
    x = TRUE[name].as_array() * 1.01                           # last fit, the market moved a little
    warm = calibrate_model(name, *chain, initial=type(TRUE[name]).from_array(x) if name != "heston_td"
                           else TimeDependentHestonParams.from_array(x))
    assert cold.converged and warm.converged
    assert warm.iterations < cold.iterations
    assert warm.rmse_iv < 1e-3


def test_dispatch_prices_greeks_and_vols_match_the_family_functions():
    p = TRUE["heston"]
    k = np.array([80.0, 100.0, 120.0])
    np.testing.assert_array_equal(price_model("heston", p, 100.0, k, 0.5, 0.99, k >= 100),
                                  heston_price(p, 100.0, k, 0.5, 0.99, k >= 100))
    assert greeks_model("heston", p, 100.0, k, 0.5, 0.99, True).vega == pytest.approx(
        heston_greeks(p, 100.0, k, 0.5, 0.99, True).vega, rel=1e-12)
    b = TRUE["bates"]
    iv = implied_vol_model("bates", b, 100.0, k, 0.5, 0.99, k >= 100)
    np.testing.assert_allclose(iv, implied_vol(price_model("bates", b, 100.0, k, 0.5, 0.99, k >= 100), 100.0, k, 0.5,
                                                0.99, k >= 100), rtol=1e-14)
    with pytest.raises(TypeError):
        price_model("bates", p, 100.0, k, 0.5, 0.99, True)
    with pytest.raises(ValueError):
        price_model("sabr", p, 100.0, k, 0.5, 0.99, True)
    assert MODELS == ("heston", "bates", "heston_td")


def test_warm_starts_carry_over_between_models():
    h = TRUE["heston"]
    assert as_model("heston", TRUE["bates"]) == TRUE["bates"].heston
    td = as_model("heston_td", h)
    k = np.array([90.0, 100.0, 110.0])
    np.testing.assert_allclose(price_model("heston_td", td, 100.0, k, 0.7, 1.0, True),
                               heston_price(h, 100.0, k, 0.7, 1.0, True), atol=1e-12)
    assert as_model("bates", h).heston == h and as_model("bates", h).jump_rate > 0
    assert as_model("heston", td) == h


@pytest.mark.parametrize("chain", CHAINS)
def test_real_chain_best_family_member_fits_within_six_tenths_of_heston(chain):
    """Liquid OTM quotes (bid >= 0.05, 7 d - 2 y, |K/F - 1| <= 0.2): the issue's target, measured on both chains."""
    path = DATA / chain
    if not path.exists():
        pytest.skip("real SPX chain not available")
    quotes = load_liquid_otm(path)
    fits = {name: calibrate_model(name, *quotes, tol=1e-9, ftol=1e-5, max_iterations=100) for name in MODELS}
    rmse = {name: fit.rmse_iv for name, fit in fits.items()}
    assert all(np.isfinite(v) for v in rmse.values()), rmse
    assert min(rmse["bates"], rmse["heston_td"]) <= 0.6 * rmse["heston"], rmse
    assert rmse["bates"] < rmse["heston"], rmse       # the default model beats Heston on every chain
