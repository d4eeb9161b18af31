"""Heston calibration: Levenberg-Marquardt on vega-weighted price residuals with the analytic gradient.

Residual per quote: weight * (model implied vol - market implied vol), QuantLib's ImpliedVolError
objective; its Jacobian is the price gradient divided by the Black vega at the model vol (where a model
price has no implied vol, the price error over the market vega stands in). The Jacobian comes from the analytic derivatives of the characteristic function (Cui, del
Bano Rollin & Germano, 2017), one pass per expiry. Box bounds are enforced by projecting each trial step;
a warm start (`initial` = last fit) typically converges in 2-4 iterations.
"""
from __future__ import annotations

import time

import numpy as np

from workstation.domain.heston import HestonParams

from ._inputs import broadcast_chain
from .black import black_greeks
from .heston import heston_price_gradient
from .quadrature import CF_TOL
from .implied_vol import implied_vol
from .results import CalibrationResult

VOL_POINT = 0.01
DEFAULT_BOUNDS = (
    np.array([1e-4, 1e-3, 1e-4, 1e-3, -0.999]),   # v0, kappa, theta, sigma, rho
    np.array([4.0, 50.0, 4.0, 10.0, 0.999]),
)
_MAX_ITERATIONS = 200
_XTOL = 1e-8
_GTOL = 1e-14
_FTOL = 1e-10


def _default_initial(iv: np.ndarray, maturity: np.ndarray) -> np.ndarray:
    """A neutral start: flat variance at the median implied vol, moderate mean reversion and skew."""
    var = float(np.median(iv)) ** 2
    return np.array([var, 2.0, var, 1.0, -0.7])


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
    started = time.perf_counter()
    _, (f, k, t, d, c, p) = broadcast_chain(forward, strike, maturity, discount, is_call, price)
    w_all = np.ones_like(f) if weights is None else broadcast_chain(weights, f)[1][0]
    market_iv = implied_vol(p, f, k, t, d, c)
    vega = black_greeks(f, k, t, d, market_iv, c).vega / VOL_POINT      # dP/dvol
    use = np.isfinite(market_iv) & (t > 0) & np.isfinite(w_all) & (w_all > 0) & (vega > 0)
    if use.sum() < 5:
        return CalibrationResult(initial or HestonParams(0.04, 1.0, 0.04, 0.5, -0.5), np.nan, np.nan, {}, 0,
                                 time.perf_counter() - started, False, "fewer than 5 usable quotes")
    f, k, t, d, c, p, iv_mkt = f[use], k[use], t[use], d[use], c[use], p[use], market_iv[use]
    # floor vega so a far wing quote cannot dominate through a vanishing denominator
    weight = w_all[use]
    scale = weight / np.maximum(vega[use], 1e-6 * f * d * np.sqrt(t))
    lower, upper = (DEFAULT_BOUNDS if bounds is None else (np.asarray(bounds[0], float), np.asarray(bounds[1], float)))
    x = _default_initial(iv_mkt, t) if initial is None else np.asarray(
        initial.as_array() if isinstance(initial, HestonParams) else initial, dtype=np.float64)
    x = np.clip(x, lower, upper)

    def evaluate(params: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        # exact IV residuals (model IV - market IV) with Jacobian dP/dp / vega(model IV); where the model
        # price has no IV, the vega-weighted price residual stands in
        model, grad = heston_price_gradient(params, f, k, t, d, c, tol)
        model_iv = implied_vol(model, f, k, t, d, c)
        model_vega = black_greeks(f, k, t, d, model_iv, c).vega / VOL_POINT
        exact = np.isfinite(model_iv) & (model_vega > 1e-6 * f * d * np.sqrt(t))
        inv_vega = np.where(exact, weight / np.where(exact, model_vega, 1.0), scale)
        resid = np.where(exact, weight * (model_iv - iv_mkt), (model - p) * scale)
        return resid, grad * inv_vega[:, None], 0.5 * float(resid @ resid), model_iv

    resid, jac, cost, model_iv = evaluate(x)
    mu, nu = -1.0, 2.0
    converged, message, iterations = False, "maximum iterations reached", 0
    for iterations in range(1, max_iterations + 1):
        if not np.isfinite(cost):
            message = "non-finite residuals"
            break
        jtj = jac.T @ jac
        g = jac.T @ resid
        if np.max(np.abs(g)) <= _GTOL:
            converged, message = True, "gradient below tolerance"
            break
        diag = np.maximum(np.diag(jtj), 1e-300)
        if mu < 0.0:
            mu = 1e-6 * float(np.max(diag))
        accepted = False
        while not accepted:
            try:
                step = np.linalg.solve(jtj + mu * np.diag(diag), -g)
            except np.linalg.LinAlgError:
                step = -g / (mu * diag)
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

    params = HestonParams.from_array(x)
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

