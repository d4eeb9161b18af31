"""The vol convention every risk number shares (`risk.greeks_from`), per contract.

"market": Black-76 Greeks at the option's own market vol (its mid implied vol; the model's IV only where the
quote has none). "model": the fitted Heston model's Greeks. The book's position Greeks, the pre-trade what-if
and the monitor's portfolio Greeks, stress grid and VaR (`risk.monitor`, same convention) all go through here,
so the Greek bars, the grid and the what-if never disagree about which vol a leg is worth.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from workstation import pricing

CONVENTIONS = ("market", "model")


def market_vols(iv_mid: np.ndarray, model_iv: np.ndarray | None = None) -> np.ndarray:
    """Each option's market vol: the mid IV, the model's IV where the mid has none (NaN when neither)."""
    vol = np.asarray(iv_mid, dtype=float).copy()
    missing = ~(np.isfinite(vol) & (vol > 0))
    if model_iv is not None and missing.any():
        vol[missing] = np.asarray(model_iv, dtype=float)[missing]
    return vol


def unit_greeks(convention: str, forward, strike, maturity, discount, is_call, vol,
                model_greeks: Callable[[], np.ndarray] | None) -> np.ndarray:
    """(delta, gamma, vega, theta) per unit, shape (n, 4), in the pricing conventions (vega per vol point,
    theta per calendar day); NaN rows where the convention has nothing to price with."""
    n = np.size(forward)
    if convention == "model":
        return model_greeks() if model_greeks is not None else np.full((n, 4), np.nan)
    g = pricing.black_greeks(np.asarray(forward, float), np.asarray(strike, float), np.asarray(maturity, float),
                             np.asarray(discount, float), np.asarray(vol, float), np.asarray(is_call, bool))
    return np.column_stack([g.delta, g.gamma, g.vega, g.theta]).reshape(n, 4)
