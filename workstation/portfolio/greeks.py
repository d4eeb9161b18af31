"""Dollar Greeks: the one place that says what a "$ delta", "$ gamma", "$ vega" and "$ theta" mean.

Conventions (per position of `quantity` contracts, signed, long > 0; F is the forward of the expiry,
or the future's price for a future):
  delta$ = delta * F * 0.01 * multiplier * quantity        $ P&L of a +1% move of F (first order)
  gamma$ = gamma * (0.01 * F)**2 * multiplier * quantity    change of delta$ for a +1% move of F
  vega$  = vega * multiplier * quantity                     $ P&L of +1 vol point (vega is per 0.01)
  theta$ = theta * multiplier * quantity                    $ P&L of one calendar day passing
so a +x% move earns about delta$ * x + 0.5 * gamma$ * x**2. The delta-equivalent notional is 100 * delta$.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PCT = 0.01


@dataclass(frozen=True, slots=True)
class DollarGreeks:
    """Greeks in dollars (see the module docstring for the conventions); add and scale like vectors."""

    delta: float = 0.0
    gamma: float = 0.0
    vega: float = 0.0
    theta: float = 0.0

    def __add__(self, other: "DollarGreeks") -> "DollarGreeks":
        return DollarGreeks(self.delta + other.delta, self.gamma + other.gamma,
                            self.vega + other.vega, self.theta + other.theta)

    def scaled(self, factor: float) -> "DollarGreeks":
        """These Greeks times `factor` (e.g. the signed quantity of an order for per-contract Greeks)."""
        return DollarGreeks(self.delta * factor, self.gamma * factor, self.vega * factor, self.theta * factor)

    def as_dict(self) -> dict[str, float]:
        return {"delta": self.delta, "gamma": self.gamma, "vega": self.vega, "theta": self.theta}

    @classmethod
    def total(cls, delta: np.ndarray, gamma: np.ndarray, vega: np.ndarray, theta: np.ndarray) -> "DollarGreeks":
        """Sum of per-position dollar Greek arrays (NaN rows count as zero)."""
        return cls(*(float(np.nansum(a)) for a in (delta, gamma, vega, theta)))


def dollar_greeks(delta, gamma, vega, theta, forward, multiplier, quantity
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-unit Greeks (pricing conventions) to dollar Greeks per position; broadcasts over arrays."""
    f = np.asarray(forward, dtype=float)
    size = np.asarray(multiplier, dtype=float) * np.asarray(quantity, dtype=float)
    return (np.asarray(delta, dtype=float) * f * PCT * size,
            np.asarray(gamma, dtype=float) * (PCT * f) ** 2 * size,
            np.asarray(vega, dtype=float) * size,
            np.asarray(theta, dtype=float) * size)
