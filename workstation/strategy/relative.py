"""`relative` candidates: quotes that stray from the arbitrage-free fair-value surface beyond their costs.

A quote is a candidate to buy when fair - ask, or to sell when bid - fair, exceeds the fee plus the surface's own
uncertainty at that strike (how far the fair value moves when the strike's neighbours, not the strike itself, are
used to fit it: the cross-validated error). The spread is paid by construction (ask to buy, bid to sell).
Persistence (a departure that lasts) is the signal layer's job; this module is pure and vectorised.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..pricing import black_greeks
from .fair_value import FairValueFit


@dataclass(frozen=True, eq=False)
class RelativeCandidates:
    """Rows that pay more than their costs against fair value: side +1 buy (at the ask), -1 sell (at the bid);
    edge in index points per unit after fee and uncertainty; gross = before them."""

    rows: np.ndarray
    side: np.ndarray
    edge: np.ndarray
    gross: np.ndarray

    def __len__(self) -> int:
        return int(self.rows.size)


def relative_candidates(bid: np.ndarray, ask: np.ndarray, fair: np.ndarray, uncertainty: np.ndarray,
                        fee: float = 0.0, min_edge: float = 0.0) -> RelativeCandidates:
    """Quotes whose edge against `fair` beats fee + uncertainty + min_edge (all in index points per unit)."""
    bid, ask, fair = np.asarray(bid, float), np.asarray(ask, float), np.asarray(fair, float)
    cost = fee + np.asarray(uncertainty, float) + min_edge
    with np.errstate(invalid="ignore"):
        buy = fair - ask
        sell = bid - fair
        side = np.where(np.nan_to_num(buy, nan=-np.inf) >= np.nan_to_num(sell, nan=-np.inf), 1, -1)
        gross = np.where(side > 0, buy, sell)
        edge = gross - cost
        hit = np.isfinite(edge) & (edge > 0)
    rows = np.flatnonzero(hit)
    return RelativeCandidates(rows, side[rows].astype(np.int8), edge[rows], gross[rows])


def slice_errors(fit: FairValueFit, cv_iv: np.ndarray) -> np.ndarray:
    """Per slice of `fit`, the out-of-sample RMS change of fair IV over its fit quotes (cross-validated minus
    full fit), NaN where the slice has none; one extra NaN entry at the end for rows in no slice."""
    slice_of = fit.slice_of_row()
    diff = cv_iv - fit.fair_iv
    rms = np.full(len(fit.slices) + 1, np.nan)
    for i in range(len(fit.slices)):
        d = diff[fit.in_fit & (slice_of == i)]
        d = d[np.isfinite(d)]
        if d.size:
            rms[i] = float(np.sqrt(np.mean(d * d)))
    return rms


def uncertainty_from_errors(fit: FairValueFit, rms: np.ndarray, multiple: float = 2.0,
                            floor_vol: float = 0.0) -> np.ndarray:
    """Per-row price uncertainty: `multiple` x the row's slice error `rms` (vol, as `slice_errors` gives it) x
    the Black vega at the fair IV; at least `floor_vol` x vega. NaN where the row has no fair value."""
    surface, snap = fit.surface, fit.surface.snapshot
    vol_err = np.maximum(multiple * rms[fit.slice_of_row()], floor_vol)
    ok = np.isfinite(fit.fair_iv)
    vega = np.full(len(snap), np.nan)
    vega[ok] = black_greeks(surface.forward[ok], snap.strike[ok], surface.maturity[ok], surface.discount[ok],
                            fit.fair_iv[ok], snap.is_call[ok]).vega / 0.01          # per unit of vol
    return vol_err * vega


def fair_uncertainty(fit: FairValueFit, cv_iv: np.ndarray, multiple: float = 2.0,
                     floor_vol: float = 0.0) -> np.ndarray:
    """Per-row price uncertainty of the fair value: `multiple` x the expiry's out-of-sample RMS change of fair IV
    (cross-validated minus full fit, over its fit quotes) x the Black vega at the fair IV; at least `floor_vol`
    (vol, e.g. 0.001) x vega. NaN where the row has no fair value."""
    return uncertainty_from_errors(fit, slice_errors(fit, cv_iv), multiple, floor_vol)


def trusted_fair(fit: FairValueFit) -> np.ndarray:
    """The fair price where the surface is trusted (NaN elsewhere): the liquid out-of-the-money quotes it was
    fitted to, in expiries whose slice was fitted now (a fallback or failed expiry never signals)."""
    slice_of = fit.slice_of_row()
    fresh = np.array([s.status == "ok" for s in fit.slices] + [False])
    return np.where(fit.in_fit & fresh[slice_of], fit.fair_price, np.nan)


def scan_relative(fit: FairValueFit, cv_iv: np.ndarray, fee: float = 0.0, multiple: float = 2.0,
                  min_edge: float = 0.0) -> RelativeCandidates:
    """`relative` candidates of one snapshot where the surface is trusted (`trusted_fair`)."""
    snap = fit.surface.snapshot
    return relative_candidates(snap.bid, snap.ask, trusted_fair(fit), fair_uncertainty(fit, cv_iv, multiple),
                               fee, min_edge)
