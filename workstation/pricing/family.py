"""Prices, Greeks and parameter gradients for any Heston-family parameter set (Heston, Bates, time-dependent
Heston), through the one chain kernel of `heston` (same quadrature, control variate and strike loop).

Greeks follow `heston_greeks`: vega is a parallel shift of sqrt(v0) and of every sqrt(theta) by one vol point
(jumps held); theta holds the forward, the rate and, for time-dependent Heston, the calendar bucket ends.
"""
from __future__ import annotations

import numpy as np

from workstation.domain.heston import HestonParams
from workstation.domain.heston_family import BatesParams, TimeDependentHestonParams

from ._inputs import shaped
from .family_cf import BATES, HESTON, HESTON_TD
from .heston import MODE_GRADIENT, MODE_GREEKS, MODE_PRICE, NO_KNOTS, family_chain
from .implied_vol import implied_vol
from .quadrature import CF_TOL
from .results import Greeks

FamilyParams = HestonParams | BatesParams | TimeDependentHestonParams


def model_code(params: FamilyParams) -> tuple[int, np.ndarray, np.ndarray]:
    """(kernel model flag, parameter vector, bucket ends) of a parameter set."""
    if isinstance(params, BatesParams):
        return BATES, params.as_array(), NO_KNOTS
    if isinstance(params, TimeDependentHestonParams):
        return HESTON_TD, params.as_array(), np.asarray(params.bucket_ends, dtype=np.float64)
    if isinstance(params, HestonParams):
        return HESTON, params.as_array(), NO_KNOTS
    raise TypeError(f"not a Heston-family parameter set: {type(params).__name__}")


def family_price(params: FamilyParams, forward, strike, maturity, discount, is_call, tol: float = CF_TOL
                 ) -> np.ndarray:
    """Discounted European prices on the forward of each expiry; NaN for bad elements."""
    model, prm, knots = model_code(params)
    shape, out = family_chain(model, MODE_PRICE, prm, knots, forward, strike, maturity, discount, is_call, tol)
    return shaped(out[:, 0], shape)


def family_greeks(params: FamilyParams, forward, strike, maturity, discount, is_call, tol: float = CF_TOL
                  ) -> Greeks:
    """Delta, gamma, vega (per vol point, see module doc), theta (per calendar day)."""
    model, prm, knots = model_code(params)
    shape, out = family_chain(model, MODE_GREEKS, prm, knots, forward, strike, maturity, discount, is_call, tol)
    return Greeks(*(shaped(np.ascontiguousarray(out[:, c]), shape) for c in range(1, 5)))


def family_price_gradient(model: int, prm: np.ndarray, knots: np.ndarray, forward, strike, maturity, discount,
                          is_call, tol: float = CF_TOL) -> tuple[np.ndarray, np.ndarray]:
    """Prices (n,) and their gradient (n, parameters) in as_array order, flattened over the chain."""
    _, out = family_chain(model, MODE_GRADIENT, prm, knots, forward, strike, maturity, discount, is_call, tol)
    return out[:, 0].copy(), np.ascontiguousarray(out[:, 1:])


def family_implied_vol(params: FamilyParams, forward, strike, maturity, discount, is_call, tol: float = CF_TOL
                       ) -> np.ndarray:
    """Black-76 implied vol of the model price (the model smile); NaN where it has none."""
    price = family_price(params, forward, strike, maturity, discount, is_call, tol)
    return implied_vol(price, forward, strike, maturity, discount, is_call)
