"""Heston model parameters: the one value type shared by pricing, calibration, risk and the UI."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class HestonParams:
    """Heston (1993) parameters under the pricing measure.

    v0: initial variance, kappa: mean-reversion speed, theta: long-run variance,
    sigma: volatility of variance ("vol of vol"), rho: spot/variance correlation.
    """

    v0: float
    kappa: float
    theta: float
    sigma: float
    rho: float

    def __post_init__(self) -> None:
        for name in ("v0", "kappa", "theta", "sigma", "rho"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
                raise ValueError(f"HestonParams.{name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.v0 < 0 or self.theta < 0:
            raise ValueError(f"HestonParams: v0 and theta must be >= 0, got v0={self.v0}, theta={self.theta}")
        if self.kappa <= 0 or self.sigma <= 0:
            raise ValueError(f"HestonParams: kappa and sigma must be > 0, got kappa={self.kappa}, sigma={self.sigma}")
        if not -1.0 < self.rho < 1.0:
            raise ValueError(f"HestonParams.rho must be in (-1, 1), got {self.rho}")

    @property
    def heston(self) -> "HestonParams":
        """The Heston part of a Heston-family parameter set: for plain Heston, itself."""
        return self

    @property
    def feller_ok(self) -> bool:
        """True when 2*kappa*theta >= sigma^2 (variance stays strictly positive)."""
        return 2.0 * self.kappa * self.theta >= self.sigma**2

    @property
    def feller_ratio(self) -> float:
        """2*kappa*theta / sigma^2; below 1 the Feller condition is violated."""
        return 2.0 * self.kappa * self.theta / self.sigma**2

    def as_array(self) -> np.ndarray:
        """Parameters as a float64 vector in the order (v0, kappa, theta, sigma, rho)."""
        return np.array([self.v0, self.kappa, self.theta, self.sigma, self.rho], dtype=np.float64)

    @classmethod
    def from_array(cls, x: np.ndarray | list[float]) -> "HestonParams":
        """Inverse of `as_array`."""
        v0, kappa, theta, sigma, rho = (float(v) for v in x)
        return cls(v0, kappa, theta, sigma, rho)

    def as_dict(self) -> dict[str, float]:
        return {"v0": self.v0, "kappa": self.kappa, "theta": self.theta, "sigma": self.sigma, "rho": self.rho}
