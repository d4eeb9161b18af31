"""The Heston family by name: one entry point each for calibration, prices, Greeks and model implied vols.

`heston` (Heston 1993), `bates` (Heston + lognormal jumps, Bates 1996) and `heston_td` (theta and sigma piecewise
constant over maturity buckets). A warm start may come from any member of the family: it is carried over to the
named model (Heston -> Bates with the jumps off, Heston -> time-dependent with equal buckets, and back through
the Heston part). A cold Bates or time-dependent fit starts from a cold Heston fit (included in its time and
iterations), which is both faster and more robust than a neutral start in 8 or 11 dimensions.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from workstation.domain.heston import HestonParams
from workstation.domain.heston_family import BatesParams, TimeDependentHestonParams

from .calibration import calibrate_bates, calibrate_heston, calibrate_heston_td
from .family import FamilyParams, family_greeks, family_implied_vol, family_price
from .quadrature import CF_TOL
from .results import CalibrationResult, Greeks

MODELS = ("heston", "bates", "heston_td")
PARAMS_TYPE = {"heston": HestonParams, "bates": BatesParams, "heston_td": TimeDependentHestonParams}
_CALIBRATE = {"heston": calibrate_heston, "bates": calibrate_bates, "heston_td": calibrate_heston_td}
# jumps switched on when a Heston fit seeds a Bates fit: a 10% crash about every 10 years
_SEED_JUMPS = (0.1, -0.1, 0.1)


def _check(name: str) -> None:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(MODELS)}")


def as_model(name: str, params: FamilyParams) -> FamilyParams:
    """`params` carried over to model `name` (unchanged when it already is one)."""
    _check(name)
    if isinstance(params, PARAMS_TYPE[name]):
        return params
    heston = params.heston
    if name == "heston":
        return heston
    if name == "bates":
        return BatesParams.from_heston(heston, *_SEED_JUMPS)
    return TimeDependentHestonParams.from_heston(heston)


def calibrate_model(name: str, forward, strike, maturity, discount, is_call, price, *, weights=None,
                    initial: FamilyParams | None = None, tol: float = CF_TOL, max_iterations: int = 200,
                    ftol: float = 1e-10) -> CalibrationResult:
    """Fit model `name` to option prices (LM on IV residuals, analytic gradient, box bounds; see `calibration`).
    `initial`: the last fit (any family member) for a warm start; None for a cold start."""
    _check(name)
    args = (forward, strike, maturity, discount, is_call, price)
    opts = dict(weights=weights, max_iterations=max_iterations, ftol=ftol, tol=tol)
    if initial is not None or name == "heston":
        return _CALIBRATE[name](*args, initial=None if initial is None else as_model(name, initial), **opts)
    started = time.perf_counter()
    seed = calibrate_heston(*args, **opts)
    result = _CALIBRATE[name](*args, initial=as_model(name, seed.params), **opts)
    return replace(result, iterations=seed.iterations + result.iterations,
                   elapsed_s=time.perf_counter() - started)


def _typed(name: str, params: FamilyParams) -> FamilyParams:
    _check(name)
    if not isinstance(params, PARAMS_TYPE[name]):
        raise TypeError(f"model {name!r} takes {PARAMS_TYPE[name].__name__}, got {type(params).__name__}")
    return params


def price_model(name: str, params: FamilyParams, forward, strike, maturity, discount, is_call,
                tol: float = CF_TOL) -> np.ndarray:
    """Discounted prices under model `name` (NaN for bad elements)."""
    return family_price(_typed(name, params), forward, strike, maturity, discount, is_call, tol)


def greeks_model(name: str, params: FamilyParams, forward, strike, maturity, discount, is_call,
                 tol: float = CF_TOL) -> Greeks:
    """Delta, gamma, vega (parallel shift of sqrt(v0) and every sqrt(theta), per vol point), theta per day."""
    return family_greeks(_typed(name, params), forward, strike, maturity, discount, is_call, tol)


def implied_vol_model(name: str, params: FamilyParams, forward, strike, maturity, discount, is_call,
                      tol: float = CF_TOL) -> np.ndarray:
    """Black-76 implied vols of the model prices (the model smile); NaN where a price has none."""
    return family_implied_vol(_typed(name, params), forward, strike, maturity, discount, is_call, tol)


def model_name(params: FamilyParams) -> str:
    """The model a parameter set belongs to."""
    for name, kind in PARAMS_TYPE.items():
        if isinstance(params, kind):
            return name
    raise TypeError(f"not a Heston-family parameter set: {type(params).__name__}")
