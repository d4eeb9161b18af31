"""Runs the Heston-family fit (`calibration.model`) on a surface, warm-started, and decides whether the new fit
replaces the model.

A failed or much worse fit keeps the last good parameters and marks the model stale. The engine calls
`fit` from its worker thread (the numba kernels release the GIL), so the event loop never waits on it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from ..config import CalibrationConfig
from ..domain import HestonParams
from ..domain.snapshot import series_label
from ..events import FitEvent
from ..pricing import CF_TOL, black_greeks, family_greeks, family_price, implied_vol
from ..pricing.calibration import ITERATION_CAP
from ..pricing.family import FamilyParams
from ..pricing.models import as_model, calibrate_model, model_name
from .surface import Surface

DEFAULT_START = HestonParams(v0=0.03, kappa=2.0, theta=0.04, sigma=0.8, rho=-0.7)


@dataclass(frozen=True, eq=False)
class ModelValues:
    """The fitted model on every row of a surface (NaN where the row has no forward).

    `vega` is the Black vega at the model's implied vol, per vol point and unit of premium: what one vol
    point of edge is worth in price, which is how signals convert vol edges. Model Greeks (delta, gamma,
    vega, theta under the fitted Heston-family model) are computed on demand for the rows that need them —
    positions and orders — rather than for the whole chain every cycle.
    """

    params: FamilyParams
    surface: Surface
    price: np.ndarray
    iv: np.ndarray
    vega: np.ndarray
    _greeks: dict = field(default_factory=dict, repr=False)

    def greeks(self, rows) -> np.ndarray:
        """Model (delta, gamma, vega, theta) per unit for `rows`, shape (len(rows), 4); NaN without a forward."""
        rows = [int(r) for r in np.atleast_1d(rows)]
        missing = [r for r in dict.fromkeys(rows) if r not in self._greeks]
        if missing:
            sur, snap = self.surface, self.surface.snapshot
            idx = np.array(missing)
            g = family_greeks(self.params, sur.forward[idx], snap.strike[idx], sur.maturity[idx], sur.discount[idx],
                              snap.is_call[idx])
            for i, r in enumerate(missing):
                self._greeks[r] = (float(g.delta[i]), float(g.gamma[i]), float(g.vega[i]), float(g.theta[i]))
        return np.array([self._greeks[r] for r in rows], dtype=float).reshape(len(rows), 4)


def thin_evenly(rows: np.ndarray, cap: int) -> np.ndarray:
    """At most `cap` of `rows`, spread evenly (keeps every expiry represented in order)."""
    if len(rows) <= cap:
        return rows
    return rows[np.linspace(0, len(rows) - 1, cap).round().astype(np.int64)]


def spread_expiries(rows: np.ndarray, maturity: np.ndarray, cap: int) -> np.ndarray:
    """The `rows` of at most `cap` expiries, every k-th in maturity order with the first and the last; all of them
    when there are no more. A Heston-family fit of 5-8 parameters is pinned by a score of expiries: the full SPX
    chain's 55 in the calibration window cost twice the time of 20 for the same error over all of them. Even in
    order, not in maturity: the dense short end holds most quotes and most of the error (spread evenly in sqrt(T)
    instead, the error over all quotes was 0.03 vol points worse)."""
    t = maturity[rows]
    present = np.unique(t)
    if present.size <= cap:
        return rows
    return rows[np.isin(t, present[np.linspace(0, present.size - 1, cap).round().astype(np.int64)])]


def evaluate_model(params: FamilyParams, surface: Surface, tol: float = CF_TOL) -> ModelValues:
    """Model prices, implied vols and Black vegas at those vols for the whole chain (vectorised); `tol` is the
    pricing integral's truncation (`heston_price`)."""
    snap = surface.snapshot
    ok = np.isfinite(surface.forward) & np.isfinite(surface.discount) & (surface.maturity > 0)
    price, iv, vega = (np.full(len(snap), np.nan) for _ in range(3))
    if ok.any():
        args = (surface.forward[ok], snap.strike[ok], surface.maturity[ok], surface.discount[ok], snap.is_call[ok])
        price[ok] = family_price(params, *args, tol=tol)
        iv[ok] = implied_vol(price[ok], *args)
        vega[ok] = black_greeks(*args[:4], iv[ok], args[4]).vega
    return ModelValues(params, surface, price, iv, vega)


class Calibrator:
    """Keeps the last good fit and produces a FitEvent per surface."""

    def __init__(self, config: CalibrationConfig) -> None:
        self.config = config
        self.last_good: FamilyParams | None = None
        self.last_good_rmse: float = math.nan
        self.worse_in_a_row = 0

    def fit(self, surface: Surface, now: datetime) -> tuple[FitEvent, ModelValues | None]:
        """Calibrate to the surface's calibration quotes, accept or reject, and evaluate the model."""
        rows = thin_evenly(spread_expiries(np.flatnonzero(surface.calibration_mask), surface.maturity,
                                           self.config.max_expiries), self.config.max_quotes)
        snap = surface.snapshot
        if len(rows) < 10:
            return self._rejected(now, f"only {len(rows)} usable quotes", len(rows), surface)
        try:
            result = calibrate_model(
                self.config.model, surface.forward[rows], snap.strike[rows], surface.maturity[rows],
                surface.discount[rows], snap.is_call[rows], snap.mid[rows], initial=self.last_good or DEFAULT_START,
                max_iterations=self.config.max_iterations, ftol=self.config.ftol, tol=self.config.integration_tol)
        except Exception as exc:  # the numerics must not take the engine down
            return self._rejected(now, f"calibration error: {exc}", len(rows), surface)
        rmse = float(result.rmse_iv)
        reason = ""
        worse = False
        capped = not result.converged and result.message == ITERATION_CAP
        if not result.converged and not capped:
            reason = f"did not converge: {result.message}"
        elif not math.isfinite(rmse) or rmse > self.config.max_rmse_iv:
            reason = f"IV RMSE {rmse:.2f} above the {self.config.max_rmse_iv:.2f} limit"
        elif (math.isfinite(self.last_good_rmse)
              and rmse > self.config.worse_factor * max(self.last_good_rmse, self.config.rmse_floor)):
            if self.worse_in_a_row + 1 < self.config.max_rejections:
                worse = True
                reason = f"IV RMSE {rmse:.2f} much worse than the last good {self.last_good_rmse:.2f}"
            else:   # the market has moved on (or the last good fit saw a partial chain): take the new level
                result = replace(result, message=f"{result.message}; accepted after {self.worse_in_a_row} "
                                                 f"worse fits in a row (new RMSE level)")
        if reason:
            self.worse_in_a_row = self.worse_in_a_row + 1 if worse else 0
            return self._rejected(now, reason, len(rows), surface, result, self._per_expiry(result, surface, rows))
        if capped:      # e.g. one expiry: the prices fit, the parameters drift along a flat valley
            result = replace(result, message=f"{ITERATION_CAP}; accepted on its IV RMSE {rmse:.2f}")
        self.worse_in_a_row = 0
        self.last_good, self.last_good_rmse = result.params, rmse
        values = self.evaluate(result.params, surface)
        event = FitEvent(now, _heston_part(result.params), rmse, float(result.max_abs_iv_error),
                         per_expiry_of(values, surface) or self._per_expiry(result, surface, rows),
                         int(result.iterations),
                         float(result.elapsed_s) * 1e3, len(rows), True, False, result.message,
                         result.params.feller_ok, self.config.model, result.params)
        return event, values

    def evaluate(self, params: FamilyParams, surface: Surface) -> ModelValues:
        """The model on the whole surface at the configured integration accuracy."""
        return evaluate_model(params, surface, self.config.integration_tol)

    def _rejected(self, now: datetime, reason: str, quotes: int, surface: Surface, result=None,
                  per_expiry: dict[str, float] | None = None) -> tuple[FitEvent, ModelValues | None]:
        params = self.last_good or as_model(self.config.model, DEFAULT_START)
        event = FitEvent(now, _heston_part(params), float(result.rmse_iv) if result else math.nan,
                         float(result.max_abs_iv_error) if result else math.nan, per_expiry or {},
                         int(result.iterations) if result else 0,
                         float(result.elapsed_s) * 1e3 if result else 0.0, quotes, False, True, reason,
                         params.feller_ok, model_name(params), params)
        values = self.evaluate(self.last_good, surface) if self.last_good else None
        return event, values

    @staticmethod
    def _per_expiry(result, surface: Surface, rows: np.ndarray) -> dict[str, float]:
        """RMSE per expiry label ('2025-10-17 PM'); the pricing layer keys it by maturity in years."""
        snap = surface.snapshot
        maturities, first = np.unique(surface.maturity[rows], return_index=True)
        labels = {round(float(t), 10): series_label(snap.expiry[rows[i]], snap.am_settled[rows[i]])
                  for t, i in zip(maturities, first)}
        return {labels.get(round(float(t), 10), str(t)): float(v) for t, v in result.per_expiry_rmse.items()}


def per_expiry_of(values: ModelValues, surface: Surface) -> dict[str, float]:
    """The model's IV RMSE (vol points) per expiry label ('2025-10-17 PM') over every calibration quote of the
    expiry, fitted or not (the fit spreads itself over some of the expiries: `spread_expiries`)."""
    rows = np.flatnonzero(surface.calibration_mask)
    err = (values.iv[rows] - surface.iv_mid[rows]) * 100.0
    rows, err = rows[np.isfinite(err)], err[np.isfinite(err)]
    if not rows.size:
        return {}
    _, first, group = np.unique(surface.maturity[rows], return_index=True, return_inverse=True)
    rmse = np.sqrt(np.bincount(group, err * err) / np.bincount(group))
    snap = surface.snapshot
    return {series_label(snap.expiry[rows[i]], snap.am_settled[rows[i]]): float(v) for i, v in zip(first, rmse)}


def _heston_part(params: FamilyParams) -> HestonParams:
    """What the Heston-shaped views (calibration panel, journal) show: Bates' diffusion, the first time bucket."""
    return params.heston
