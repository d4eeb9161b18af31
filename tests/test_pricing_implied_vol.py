"""Implied volatility: round trip to 1e-10 over the trading domain, NaN outside the no-arbitrage bounds."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from workstation.pricing import black_price, implied_vol


@settings(max_examples=400, deadline=None)
@given(
    vol=st.floats(0.01, 3.0),
    maturity=st.floats(1.0 / 365.0, 10.0),
    sds=st.floats(-6.0, 6.0),
    rate=st.floats(-0.01, 0.08),
    otm_side=st.booleans(),
)
def test_round_trip(vol, maturity, sds, rate, otm_side):
    forward = 100.0
    strike = forward * np.exp(sds * vol * np.sqrt(maturity))
    discount = np.exp(-rate * maturity)
    is_call = (strike >= forward) if otm_side else (strike < forward)
    price = black_price(forward, strike, maturity, discount, vol, is_call)
    # where the option's time value is below the price's rounding the vol is not identifiable: skip
    intrinsic = discount * max((forward - strike) if is_call else (strike - forward), 0.0)
    vega = forward * discount * np.sqrt(maturity) * np.exp(-0.5 * (np.log(forward / strike) / (vol * np.sqrt(maturity))
                                                                    + 0.5 * vol * np.sqrt(maturity)) ** 2) / np.sqrt(2 * np.pi)
    if vega < 1e-12 * max(price, 1e-300) * 1e6 or (price - intrinsic) < 1e-13 * max(price, 1.0) * 1e3 or price <= 0:
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
