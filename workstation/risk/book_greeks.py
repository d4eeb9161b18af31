"""The book as columns (`Exposure`: one row per position with the market it is revalued off) and its dollar
Greeks, Black-76 at market vol or from the fitted model."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workstation import pricing
from workstation.domain import Position, SecType
from workstation.portfolio.greeks import DollarGreeks, dollar_greeks
from workstation.pricing.family import FamilyParams

MIN_VOL = 0.01


@dataclass(frozen=True)
class Exposure:
    """The book as columns, one row per position, with the market each is revalued off.

    quantity signed; strike/is_call/maturity are ignored for futures; `forward` is the expiry's forward
    (put-call parity) for options and the future's price for futures; maturity in years (ACT/365).
    """

    contract_id: np.ndarray
    quantity: np.ndarray
    multiplier: np.ndarray
    is_option: np.ndarray
    strike: np.ndarray
    is_call: np.ndarray
    maturity: np.ndarray
    forward: np.ndarray
    discount: np.ndarray
    vol: np.ndarray | None = None   # market vol of each option (mid IV); NaN/None: the model's IV stands in

    @classmethod
    def from_positions(cls, positions: Sequence[Position], forward, discount, maturity, vol=np.nan
                       ) -> "Exposure":
        """Columns from positions plus per-position forward, discount, maturity (and market vol) arrays."""
        n = len(positions)

        def column(x) -> np.ndarray:
            return np.broadcast_to(np.asarray(x, dtype=float), (n,)).copy()

        return cls(
            contract_id=np.array([p.contract.contract_id for p in positions], dtype=np.int64),
            quantity=np.array([p.quantity for p in positions], dtype=float),
            multiplier=np.array([p.contract.multiplier for p in positions], dtype=float),
            is_option=np.array([p.contract.sec_type is SecType.OPTION for p in positions], dtype=bool),
            strike=np.array([p.contract.strike or np.nan for p in positions], dtype=float),
            is_call=np.array([bool(p.contract.is_call) for p in positions], dtype=bool),
            maturity=column(maturity), forward=column(forward), discount=column(discount), vol=column(vol))

    def __len__(self) -> int:
        return len(self.contract_id)

    @property
    def size(self) -> np.ndarray:
        """quantity x multiplier: dollars per point of each position's price."""
        return self.quantity * self.multiplier


def option_vols(exp: Exposure, params: FamilyParams, pricer: Any = pricing) -> np.ndarray:
    """The vol each option is revalued at under "market": its market vol, the model's IV where it has none."""
    o = exp.is_option
    if exp.vol is None:
        return model_vols(exp, params, pricer)
    vol = exp.vol[o].copy()
    missing = ~(np.isfinite(vol) & (vol > 0))
    if missing.any():
        vol[missing] = model_vols(exp, params, pricer)[missing]
    return vol


def model_vols(exp: Exposure, params: FamilyParams, pricer: Any = pricing) -> np.ndarray:
    """Each option's model price as a Black-76 implied vol (floored: never NaN)."""
    o = exp.is_option
    fwd, k, t, d, c = exp.forward[o], exp.strike[o], exp.maturity[o], exp.discount[o], exp.is_call[o]
    model = pricer.family_price(params, fwd, k, t, d, c)
    iv = np.asarray(pricer.implied_vol(model, fwd, k, t, d, c), dtype=float)
    return np.where(np.isfinite(iv) & (iv > 0), iv, np.sqrt(max(params.v0, MIN_VOL**2)))


def portfolio_greeks(exp: Exposure, params: FamilyParams, pricer: Any = pricing, convention: str = "model"
                     ) -> tuple[DollarGreeks, tuple[np.ndarray, ...]]:
    """Portfolio dollar Greeks (Black-76 at market vol, or the fitted model), and the per-position dollar
    arrays."""
    n = len(exp)
    delta, gamma, vega, theta = np.ones(n), np.zeros(n), np.zeros(n), np.zeros(n)   # futures
    o = exp.is_option
    if o.any() and convention == "market":
        g = pricer.black_greeks(exp.forward[o], exp.strike[o], exp.maturity[o], exp.discount[o],
                                option_vols(exp, params, pricer), exp.is_call[o])
        delta[o], gamma[o], vega[o], theta[o] = g.delta, g.gamma, g.vega, g.theta
    elif o.any():
        g = pricer.family_greeks(params, exp.forward[o], exp.strike[o], exp.maturity[o], exp.discount[o],
                                 exp.is_call[o])
        delta[o], gamma[o], vega[o], theta[o] = g.delta, g.gamma, g.vega, g.theta
    per = dollar_greeks(delta, gamma, vega, theta, exp.forward, exp.multiplier, exp.quantity)
    return DollarGreeks.total(*per), per
