"""Pricing core (pure numerics, numpy + numba): Black-76, implied volatility, Heston-family (Heston, Bates,
time-dependent Heston) pricing, Greeks, calibration; `models` selects a family member by name.

Every function works per option on the forward of its expiry (Black-76 convention: spot users pass
forward = S exp((r - q) T) and discount = exp(-r T)), takes arrays or scalars that broadcast, returns NaN
for a bad element instead of raising, and is vectorised over the whole chain with nogil numba kernels.
"""
from workstation.domain.heston import HestonParams
from workstation.domain.heston_family import BatesParams, TimeDependentHestonParams

from .black import black_greeks, black_price
from .calibration import calibrate_bates, calibrate_heston, calibrate_heston_td
from .family import family_greeks, family_implied_vol, family_price
from .heston import heston_greeks, heston_implied_vol, heston_price, heston_price_gradient
from .implied_vol import implied_vol
from .quadrature import CF_TOL, FAST_CF_TOL
from .results import CalibrationResult, Greeks

__all__ = [
    "HestonParams", "Greeks", "CalibrationResult",
    "black_price", "black_greeks", "implied_vol",
    "heston_price", "heston_greeks", "heston_implied_vol", "heston_price_gradient",
    "calibrate_heston", "CF_TOL", "FAST_CF_TOL",
    "BatesParams", "TimeDependentHestonParams", "calibrate_bates", "calibrate_heston_td",
    "family_price", "family_greeks", "family_implied_vol",
]
