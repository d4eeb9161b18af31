"""Result types of the pricing core: Greeks of a chain and the outcome of a Heston-family calibration."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workstation.domain.heston import HestonParams
from workstation.domain.heston_family import BatesParams, TimeDependentHestonParams


@dataclass(frozen=True, slots=True)
class Greeks:
    """Per-option sensitivities, each an array shaped like the broadcast inputs.

    delta: dP/dF per 1.0 of forward; gamma: d2P/dF2; vega: price change per 1 vol point (0.01);
    theta: price change per calendar day (forward and rate held).
    """

    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """Outcome of a Heston-family calibration (`calibrate_heston`, `calibrate_bates`, `calibrate_heston_td`).

    rmse_iv and max_abs_iv_error are in vol points (1 vol point = 0.01 of implied vol);
    per_expiry_rmse maps each maturity (years) to the IV RMSE of its quotes, in vol points.
    """

    params: HestonParams | BatesParams | TimeDependentHestonParams
    rmse_iv: float
    max_abs_iv_error: float
    per_expiry_rmse: dict[float, float] = field(default_factory=dict)
    iterations: int = 0
    elapsed_s: float = 0.0
    converged: bool = False
    message: str = ""
