"""P&L attribution by Greeks between two marks: what moved the book, and what the Greeks do not explain.

actual = q*m*(P1 - P0) is split into delta*dF + 1/2 gamma*dF^2 + vega*dvol + theta*dt (Greeks taken at
the first mark, per-unit pricing conventions) and a residual = actual - explained, so the parts always
sum to the actual P&L. Positions traded between the marks belong to the next cycle's attribution.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VOL_POINT = 0.01


@dataclass(frozen=True, slots=True)
class Attribution:
    """Per-position P&L parts in dollars (arrays aligned with the inputs); `totals()` sums them."""

    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray
    residual: np.ndarray
    actual: np.ndarray

    def totals(self) -> dict[str, float]:
        """Book-level parts; delta+gamma+vega+theta+residual == actual."""
        return {name: float(np.sum(getattr(self, name)))
                for name in ("delta", "gamma", "vega", "theta", "residual", "actual")}


def attribute(quantity, multiplier, price0, price1, forward0, forward1, vol0, vol1, days,
              delta, gamma, vega, theta) -> Attribution:
    """Attribute each position's P&L between marks 0 and 1.

    Prices and forwards in index points, vols as decimals (NaN for futures: no vega part), `days` the
    calendar days between the marks; delta/gamma/vega/theta per unit at mark 0 (vega per vol point,
    theta per day), as `workstation.pricing` returns them.
    """
    size = np.asarray(quantity, dtype=float) * np.asarray(multiplier, dtype=float)
    d_fwd = np.asarray(forward1, dtype=float) - np.asarray(forward0, dtype=float)
    d_vol = np.nan_to_num(np.asarray(vol1, dtype=float) - np.asarray(vol0, dtype=float)) / VOL_POINT
    g = [np.nan_to_num(np.asarray(x, dtype=float)) for x in (delta, gamma, vega, theta)]
    actual = size * (np.asarray(price1, dtype=float) - np.asarray(price0, dtype=float))
    parts = (size * g[0] * d_fwd, size * 0.5 * g[1] * d_fwd**2, size * g[2] * d_vol,
             size * g[3] * np.asarray(days, dtype=float))
    parts = tuple(np.broadcast_to(p, actual.shape).astype(float) for p in parts)
    residual = actual - (parts[0] + parts[1] + parts[2] + parts[3])
    return Attribution(*parts, residual=residual, actual=actual)
