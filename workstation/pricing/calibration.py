"""Heston-family calibration: Levenberg-Marquardt on vega-weighted price residuals with the analytic gradient.

Residual per quote: weight * (model implied vol - market implied vol), QuantLib's ImpliedVolError
objective; its Jacobian is the price gradient divided by the Black vega at the model vol (where a model
price has no implied vol, the price error over the market vega stands in). The Jacobian comes from the analytic
derivatives of the characteristic function (Cui, del Bano Rollin & Germano, 2017, and their extension to the
Bates jump factor and the time-dependent recursion in `family_cf`), one pass per expiry. Box bounds are enforced
by projecting each trial step; parameters the quotes do not see (a time bucket without expiries, jump shape at
zero intensity) are held where they are. A warm start (`initial` = last fit) typically converges in 2-4 iterations.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from workstation.domain.heston import HestonParams
from workstation.domain.heston_family import TD_BUCKET_ENDS, BatesParams, TimeDependentHestonParams

from ._inputs import broadcast_chain
from .black import black_greeks
from .family import family_price_gradient
from .family_cf import BATES, HESTON, HESTON_TD
from .heston import NO_KNOTS
from .quadrature import CF_TOL
from .implied_vol import implied_vol
from .results import CalibrationResult

VOL_POINT = 0.01
DEFAULT_BOUNDS = (
    np.array([1e-4, 1e-3, 1e-4, 1e-3, -0.999]),   # v0, kappa, theta, sigma, rho
    np.array([4.0, 50.0, 4.0, 10.0, 0.999]),
)
BATES_BOUNDS = (                                   # ... then jump_rate, jump_mean, jump_vol
    np.concatenate([DEFAULT_BOUNDS[0], [0.0, -1.0, 1e-3]]),
    np.concatenate([DEFAULT_BOUNDS[1], [20.0, 1.0, 1.0]]),
)
_MAX_ITERATIONS = 200
_XTOL = 1e-8
_GTOL = 1e-14
_FTOL = 1e-10

ITERATION_CAP = "maximum iterations reached"   # the message of a fit that ran out of iterations still improving


def td_bounds(buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of (v0, kappa, rho, theta_1..n, sigma_1..n), the Heston ones per parameter."""
    lo, hi = DEFAULT_BOUNDS
    return (np.concatenate([lo[[0, 1, 4]], np.full(buckets, lo[2]), np.full(buckets, lo[3])]),
            np.concatenate([hi[[0, 1, 4]], np.full(buckets, hi[2]), np.full(buckets, hi[3])]))


def _default_initial(iv: np.ndarray, maturity: np.ndarray) -> np.ndarray:
    """A neutral start: flat variance at the median implied vol, moderate mean reversion and skew."""
    var = float(np.median(iv)) ** 2
    return np.array([var, 2.0, var, 1.0, -0.7])


def _bates_initial(iv: np.ndarray, maturity: np.ndarray) -> np.ndarray:
    """Neutral Heston start plus occasional downward jumps (a 10% crash about every 5 years)."""
    return np.concatenate([_default_initial(iv, maturity), [0.2, -0.1, 0.1]])


def _td_initial(buckets: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def start(iv: np.ndarray, maturity: np.ndarray) -> np.ndarray:
        v0, kappa, theta, sigma, rho = _default_initial(iv, maturity)
        return np.concatenate([[v0, kappa, rho], np.full(buckets, theta), np.full(buckets, sigma)])
    return start


def calibrate_heston(forward, strike, maturity, discount, is_call, price, *, weights=None,
                     initial: HestonParams | None = None, bounds=None,
                     max_iterations: int = _MAX_ITERATIONS, ftol: float = _FTOL, tol: float = CF_TOL
                     ) -> CalibrationResult:
    """Fit HestonParams to option prices (one Heston model for all expiries).

    Quotes without an implied vol (outside no-arbitrage bounds, bad inputs) are ignored. `weights` scale
    each residual (default 1); `bounds` = (lower[5], upper[5]) in (v0, kappa, theta, sigma, rho) order.
    The result's IV errors are exact (model prices re-inverted), in vol points. `ftol` stops the search when
    an accepted step lowers the cost by less than this fraction (a live fit every few seconds can stop at
    1e-5: quote noise is far larger than what the last iterations gain). `tol` is the pricing integral's truncation
    (`heston_price`).
    """
    return _calibrate(HESTON, NO_KNOTS, HestonParams.from_array, _default_initial,
                      HestonParams(0.04, 1.0, 0.04, 0.5, -0.5), DEFAULT_BOUNDS if bounds is None else bounds,
                      forward, strike, maturity, discount, is_call, price, weights, initial,
                      max_iterations, ftol, tol)


def calibrate_bates(forward, strike, maturity, discount, is_call, price, *, weights=None,
                    initial: BatesParams | None = None, bounds=None,
                    max_iterations: int = _MAX_ITERATIONS, ftol: float = _FTOL, tol: float = CF_TOL
                    ) -> CalibrationResult:
    """Fit BatesParams (Heston + lognormal jumps) to option prices; arguments as `calibrate_heston`, bounds in
    (v0, kappa, theta, sigma, rho, jump_rate, jump_mean, jump_vol) order."""
    return _calibrate(BATES, NO_KNOTS, BatesParams.from_array, _bates_initial,
                      BatesParams(0.04, 1.0, 0.04, 0.5, -0.5, 0.0, 0.0, 0.0),
                      BATES_BOUNDS if bounds is None else bounds,
                      forward, strike, maturity, discount, is_call, price, weights, initial,
                      max_iterations, ftol, tol)


def calibrate_heston_td(forward, strike, maturity, discount, is_call, price, *, weights=None,
                        initial: TimeDependentHestonParams | None = None, bounds=None,
                        bucket_ends: tuple[float, ...] | None = None,
                        max_iterations: int = _MAX_ITERATIONS, ftol: float = _FTOL, tol: float = CF_TOL
                        ) -> CalibrationResult:
    """Fit TimeDependentHestonParams (theta, sigma per maturity bucket) to option prices; arguments as
    `calibrate_heston`, bounds in (v0, kappa, rho, theta_1..n, sigma_1..n) order. The buckets are the
    initial's, else `bucket_ends`, else `TD_BUCKET_ENDS`."""
    ends = tuple(initial.bucket_ends if initial is not None else (bucket_ends or TD_BUCKET_ENDS))
    n = len(ends) + 1
    return _calibrate(HESTON_TD, np.asarray(ends, dtype=np.float64),
                      lambda x: TimeDependentHestonParams.from_array(x, ends), _td_initial(n),
                      TimeDependentHestonParams.from_heston(HestonParams(0.04, 1.0, 0.04, 0.5, -0.5), ends),
                      td_bounds(n) if bounds is None else bounds,
                      forward, strike, maturity, discount, is_call, price, weights, initial,
                      max_iterations, ftol, tol)


def _calibrate(model: int, knots: np.ndarray, to_params: Callable, neutral_start: Callable, fallback,
               bounds, forward, strike, maturity, discount, is_call, price, weights, initial,
               max_iterations: int, ftol: float, tol: float) -> CalibrationResult:
    """Levenberg-Marquardt on IV residuals for one model of the family (see the module doc)."""
    started = time.perf_counter()
    _, (f, k, t, d, c, p) = broadcast_chain(forward, strike, maturity, discount, is_call, price)
    w_all = np.ones_like(f) if weights is None else broadcast_chain(weights, f)[1][0]
    market_iv = implied_vol(p, f, k, t, d, c)
    vega = black_greeks(f, k, t, d, market_iv, c).vega / VOL_POINT      # dP/dvol
    use = np.isfinite(market_iv) & (t > 0) & np.isfinite(w_all) & (w_all > 0) & (vega > 0)
    if use.sum() < 5:
        return CalibrationResult(initial or fallback, np.nan, np.nan, {}, 0,
                                 time.perf_counter() - started, False, "fewer than 5 usable quotes")
    f, k, t, d, c, p, iv_mkt = f[use], k[use], t[use], d[use], c[use], p[use], market_iv[use]
    # floor vega so a far wing quote cannot dominate through a vanishing denominator
    weight = w_all[use]
    scale = weight / np.maximum(vega[use], 1e-6 * f * d * np.sqrt(t))
    lower, upper = (np.asarray(bounds[0], float), np.asarray(bounds[1], float))
    x = neutral_start(iv_mkt, t) if initial is None else np.asarray(
        initial if isinstance(initial, np.ndarray) else initial.as_array(), dtype=np.float64)
    x = np.clip(x, lower, upper)

    def evaluate(params: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        # exact IV residuals (model IV - market IV) with Jacobian dP/dp / vega(model IV); where the model
        # price has no IV, the vega-weighted price residual stands in
        model_price, grad = family_price_gradient(model, params, knots, f, k, t, d, c, tol)
        model_iv = implied_vol(model_price, f, k, t, d, c)
        model_vega = black_greeks(f, k, t, d, model_iv, c).vega / VOL_POINT
        exact = np.isfinite(model_iv) & (model_vega > 1e-6 * f * d * np.sqrt(t))
        inv_vega = np.where(exact, weight / np.where(exact, model_vega, 1.0), scale)
        resid = np.where(exact, weight * (model_iv - iv_mkt), (model_price - p) * scale)
        return resid, grad * inv_vega[:, None], 0.5 * float(resid @ resid), model_iv

    resid, jac, cost, model_iv = evaluate(x)
    mu, nu = -1.0, 2.0
    converged, message, iterations = False, ITERATION_CAP, 0
    for iterations in range(1, max_iterations + 1):
        if not np.isfinite(cost):
            message = "non-finite residuals"
            break
        jtj = jac.T @ jac
        g = jac.T @ resid
        # parameters the quotes do not see, and those held at a bound the descent pushes against, stay where they
        # are (the projected step would otherwise shrink the trust region to a crawl along the bound)
        seen = np.any(jac != 0.0, axis=0) & ~((x <= lower) & (g > 0.0)) & ~((x >= upper) & (g < 0.0))
        if not seen.any():
            converged, message = True, "every parameter held at a bound"
            break
        if np.max(np.abs(g)) <= _GTOL:
            converged, message = True, "gradient below tolerance"
            break
        diag = np.maximum(np.diag(jtj), 1e-300)
        if mu < 0.0:
            mu = 1e-6 * float(np.max(diag))
        accepted = False
        while not accepted:
            step = np.zeros_like(x)
            a_s = jtj[np.ix_(seen, seen)] + mu * np.diag(diag[seen])
            try:
                step[seen] = np.linalg.solve(a_s, -g[seen])
            except np.linalg.LinAlgError:
                step[seen] = -g[seen] / (mu * diag[seen])
            x_new = np.clip(x + step, lower, upper)
            step = x_new - x
            predicted = -(g @ step + 0.5 * step @ jtj @ step)
            if np.all(np.abs(step) <= _XTOL * (np.abs(x) + _XTOL)):
                converged, message = True, "step below tolerance"
                break
            resid_new, jac_new, cost_new, iv_new = evaluate(x_new)
            ratio = (cost - cost_new) / predicted if predicted > 0 else -1.0
            if np.isfinite(cost_new) and ratio > 0:
                accepted = True
                small_gain = cost - cost_new <= ftol * cost
                x, resid, jac, cost, model_iv = x_new, resid_new, jac_new, cost_new, iv_new
                mu *= max(1.0 / 3.0, 1.0 - (2.0 * ratio - 1.0) ** 3)
                nu = 2.0
                if small_gain:
                    converged, message = True, "cost reduction below tolerance"
            else:
                mu *= nu
                nu *= 2.0
                if mu > 1e20 * float(np.max(diag)):
                    converged, message = True, "no further reduction possible"
                    break
        if converged:
            break

    params = to_params(x)
    err = (model_iv - iv_mkt) / VOL_POINT        # the model IVs of the accepted point (exact re-inversions)
    finite = np.isfinite(err)
    per_expiry = {}
    for maturity_value in np.unique(t):
        sel = (t == maturity_value) & finite
        if sel.any():
            per_expiry[float(maturity_value)] = float(np.sqrt(np.mean(err[sel] ** 2)))
    rmse = float(np.sqrt(np.mean(err[finite] ** 2))) if finite.any() else np.nan
    max_err = float(np.max(np.abs(err[finite]))) if finite.any() else np.nan
    if not finite.all():
        message += f"; {int((~finite).sum())} model prices without implied vol"
    return CalibrationResult(params, rmse, max_err, per_expiry, iterations, time.perf_counter() - started,
                             converged, message)
