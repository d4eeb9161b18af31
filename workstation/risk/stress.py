"""The stress grid: instantaneous full revaluation of the book for each (spot shock, vol shock)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workstation import pricing
from workstation.pricing.family import FamilyParams

from .book_greeks import MIN_VOL, Exposure, model_vols, option_vols

SPOT_SHOCKS = np.linspace(-0.10, 0.10, 9)          # relative forward moves
VOL_SHOCKS = np.array([-10.0, -5.0, 0.0, 5.0, 10.0])  # vol points


@dataclass(frozen=True)
class StressGrid:
    """P&L ($) of the book for each (spot shock, vol shock): pnl[i, j] at spot_shocks[i], vol_shocks[j]."""

    spot_shocks: np.ndarray
    vol_shocks: np.ndarray
    pnl: np.ndarray

    @property
    def worst(self) -> float:
        return float(self.pnl.min()) if self.pnl.size else 0.0

    def as_dict(self) -> dict:
        return {"spot_shocks": self.spot_shocks.tolist(), "vol_shocks": self.vol_shocks.tolist(),
                "pnl": self.pnl.tolist(), "worst": self.worst}


def stress_grid(exp: Exposure, params: FamilyParams, spot_shocks: np.ndarray = SPOT_SHOCKS,
                vol_shocks: np.ndarray = VOL_SHOCKS, pricer: Any = pricing, convention: str = "model") -> StressGrid:
    """Instantaneous full revaluation at F(1+s) and Black vol (market or model IV + dv points, floored at 1%)."""
    spot_shocks, vol_shocks = np.asarray(spot_shocks, float), np.asarray(vol_shocks, float)
    pnl = np.zeros((len(spot_shocks), len(vol_shocks)))
    f = ~exp.is_option
    if f.any():
        pnl += (spot_shocks[:, None] * np.sum(exp.size[f] * exp.forward[f]))
    o = exp.is_option
    if o.any():
        fwd, k, t, d, c = exp.forward[o], exp.strike[o], exp.maturity[o], exp.discount[o], exp.is_call[o]
        iv = option_vols(exp, params, pricer) if convention == "market" else model_vols(exp, params, pricer)
        base = pricer.black_price(fwd, k, t, d, iv, c)
        shocked = pricer.black_price(fwd * (1.0 + spot_shocks[:, None, None]), k, t, d,
                                     np.maximum(iv + vol_shocks[None, :, None] * 0.01, MIN_VOL), c)
        pnl += np.nansum((shocked - base) * exp.size[o], axis=-1)
    return StressGrid(spot_shocks, vol_shocks, pnl)
