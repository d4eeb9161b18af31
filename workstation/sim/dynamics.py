"""Index dynamics: Heston by full-truncation Euler on a one-second grid, frozen while the market is closed."""
from __future__ import annotations

import math

import numpy as np
from numba import njit

GRID_SECONDS = 1.0
SECONDS_PER_YEAR = 365.0 * 24 * 3600


@njit(nogil=True, cache=True)
def heston_path(spot: float, var: float, z1: np.ndarray, z2: np.ndarray, moving: np.ndarray, dt: float,
                mu: float, kappa: float, theta: float, sigma: float, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """Spot and variance after each step; steps where `moving` is false leave both unchanged."""
    n = z1.shape[0]
    s_out = np.empty(n)
    v_out = np.empty(n)
    log_s = math.log(spot)
    v = var
    rho_bar = math.sqrt(1.0 - rho * rho)
    for i in range(n):
        if moving[i]:
            vp = v if v > 0.0 else 0.0
            sq = math.sqrt(vp * dt)
            log_s += (mu - 0.5 * vp) * dt + sq * z1[i]
            v += kappa * (theta - vp) * dt + sigma * sq * (rho * z1[i] + rho_bar * z2[i])
        s_out[i] = math.exp(log_s)
        v_out[i] = v
    return s_out, v_out


def open_mask(step_epochs: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """True where a step starts inside a session; `boundaries` = sorted [open0, close0, open1, close1, ...]."""
    return (np.searchsorted(boundaries, step_epochs, side="right") % 2) == 1
