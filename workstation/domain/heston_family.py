"""Parameters of the Heston family beyond plain Heston: Bates (jumps) and time-dependent Heston (buckets)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .heston import HestonParams

# bucket ends (years) of time-dependent Heston: up to 1 month, 1-3 months, 3-12 months, beyond a year
TD_BUCKET_ENDS = (1.0 / 12.0, 0.25, 1.0)


def _finite(owner: str, name: str, value: object) -> float:
    if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
        raise ValueError(f"{owner}.{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class BatesParams:
    """Bates (1996): Heston plus lognormal jumps in the index under the pricing measure.

    v0, kappa, theta, sigma, rho as in `HestonParams`; jump_rate: jumps per year (lambda);
    jump_mean: mean log jump size (mu_J); jump_vol: standard deviation of the log jump size (delta).
    """

    v0: float
    kappa: float
    theta: float
    sigma: float
    rho: float
    jump_rate: float
    jump_mean: float
    jump_vol: float

    NAMES = ("v0", "kappa", "theta", "sigma", "rho", "jump_rate", "jump_mean", "jump_vol")

    def __post_init__(self) -> None:
        for name in self.NAMES:
            object.__setattr__(self, name, _finite("BatesParams", name, getattr(self, name)))
        HestonParams(self.v0, self.kappa, self.theta, self.sigma, self.rho)   # same Heston domain checks
        if self.jump_rate < 0 or self.jump_vol < 0:
            raise ValueError(f"BatesParams: jump_rate and jump_vol must be >= 0, got {self.jump_rate}, {self.jump_vol}")

    @property
    def heston(self) -> HestonParams:
        """The diffusion part (the model with jumps switched off)."""
        return HestonParams(self.v0, self.kappa, self.theta, self.sigma, self.rho)

    @property
    def feller_ok(self) -> bool:
        return self.heston.feller_ok

    @property
    def feller_ratio(self) -> float:
        return self.heston.feller_ratio

    def as_array(self) -> np.ndarray:
        """(v0, kappa, theta, sigma, rho, jump_rate, jump_mean, jump_vol) as float64."""
        return np.array([getattr(self, n) for n in self.NAMES], dtype=np.float64)

    @classmethod
    def from_array(cls, x) -> "BatesParams":
        return cls(*(float(v) for v in x))

    @classmethod
    def from_heston(cls, p: HestonParams, jump_rate: float = 0.0, jump_mean: float = 0.0,
                    jump_vol: float = 0.0) -> "BatesParams":
        return cls(p.v0, p.kappa, p.theta, p.sigma, p.rho, jump_rate, jump_mean, jump_vol)

    def as_dict(self) -> dict[str, float]:
        return {n: getattr(self, n) for n in self.NAMES}


@dataclass(frozen=True, slots=True)
class TimeDependentHestonParams:
    """Heston with theta and sigma piecewise constant over maturity buckets; v0, kappa, rho global.

    Bucket j covers [bucket_ends[j-1], bucket_ends[j]) in years from now (the first starts at 0, the last runs
    on), so theta and sigma have len(bucket_ends) + 1 entries.
    """

    v0: float
    kappa: float
    rho: float
    theta: tuple[float, ...]
    sigma: tuple[float, ...]
    bucket_ends: tuple[float, ...] = TD_BUCKET_ENDS

    def __post_init__(self) -> None:
        owner = "TimeDependentHestonParams"
        for name in ("v0", "kappa", "rho"):
            object.__setattr__(self, name, _finite(owner, name, getattr(self, name)))
        for name in ("theta", "sigma", "bucket_ends"):
            object.__setattr__(self, name, tuple(_finite(owner, name, v) for v in np.atleast_1d(getattr(self, name))))
        n = len(self.bucket_ends) + 1
        if len(self.theta) != n or len(self.sigma) != n:
            raise ValueError(f"{owner}: {n} buckets need {n} thetas and sigmas, "
                             f"got {len(self.theta)}, {len(self.sigma)}")
        if any(b <= a for a, b in zip((0.0,) + self.bucket_ends, self.bucket_ends)):
            raise ValueError(f"{owner}.bucket_ends must be positive and increasing, got {self.bucket_ends}")
        for th, sg in zip(self.theta, self.sigma):
            HestonParams(self.v0, self.kappa, th, sg, self.rho)

    @property
    def buckets(self) -> int:
        return len(self.theta)

    @property
    def heston(self) -> HestonParams:
        """The Heston dynamics in force now (the first bucket): what the next day's risk scenarios follow."""
        return HestonParams(self.v0, self.kappa, self.theta[0], self.sigma[0], self.rho)

    @property
    def feller_ok(self) -> bool:
        return all(2.0 * self.kappa * th >= sg * sg for th, sg in zip(self.theta, self.sigma))

    @property
    def feller_ratio(self) -> float:
        """The smallest 2 kappa theta / sigma^2 over the buckets."""
        return min(2.0 * self.kappa * th / (sg * sg) for th, sg in zip(self.theta, self.sigma))

    def as_array(self) -> np.ndarray:
        """(v0, kappa, rho, theta_1..n, sigma_1..n) as float64 (the bucket ends are not fitted)."""
        return np.array([self.v0, self.kappa, self.rho, *self.theta, *self.sigma], dtype=np.float64)

    @classmethod
    def from_array(cls, x, bucket_ends: tuple[float, ...] = TD_BUCKET_ENDS) -> "TimeDependentHestonParams":
        x = [float(v) for v in x]
        n = (len(x) - 3) // 2
        return cls(x[0], x[1], x[2], tuple(x[3:3 + n]), tuple(x[3 + n:3 + 2 * n]), tuple(bucket_ends))

    @classmethod
    def from_heston(cls, p: HestonParams, bucket_ends: tuple[float, ...] = TD_BUCKET_ENDS
                    ) -> "TimeDependentHestonParams":
        n = len(bucket_ends) + 1
        return cls(p.v0, p.kappa, p.rho, (p.theta,) * n, (p.sigma,) * n, tuple(bucket_ends))

    def as_dict(self) -> dict[str, float]:
        out = {"v0": self.v0, "kappa": self.kappa, "rho": self.rho}
        out.update({f"theta_{j + 1}": v for j, v in enumerate(self.theta)})
        out.update({f"sigma_{j + 1}": v for j, v in enumerate(self.sigma)})
        return out
