"""Integration layout per expiry: truncation of the Lewis integral and composite Gauss-Legendre panels.

[0, U] is cut into P equal panels of 16 Gauss-Legendre nodes. U is where both the Heston and the
Black-76 characteristic functions, divided by u, have decayed below 1e-13 (found by doubling and bisection, so it
follows slow decay at large vol-of-vol as well as the Gaussian decay of short expiries). P keeps the
phase e^{iux} plus the characteristic function's own phase under 15 radians per panel (16-point
Gauss-Legendre is exact to 1e-14 up to 18). Equal panels let the strike loop build e^{iux} by
recurrence across panels and only 8 cos/sin pairs per strike (nodes are symmetric in each panel).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .charfunc import heston_log_cf

NODES_PER_PANEL = 16
HALF_PANEL = NODES_PER_PANEL // 2
_gl_nodes, _gl_weights = np.polynomial.legendre.leggauss(NODES_PER_PANEL)
# positive half of the symmetric rule on [-1, 1]: nodes tau_j > 0 and weights
GL_TAU = np.ascontiguousarray(_gl_nodes[HALF_PANEL:])
GL_WEIGHT = np.ascontiguousarray(_gl_weights[HALF_PANEL:])

CF_TOL = 1e-13
PHASE_PER_PANEL = 15.0
MIN_PANELS = 6
MAX_PANELS = 4096
MAX_U = 1e6


@njit(nogil=True, cache=True)
def _log_cf_magnitude(u, v0, kappa, theta, sigma, rho, t, scratch) -> float:
    """ln(|phi(u - i/2)| / u): the integrands decay like |phi|/u or faster."""
    return heston_log_cf(u, v0, kappa, theta, sigma, rho, t, scratch, False).real - math.log(max(u, 1.0))


@njit(nogil=True, cache=True)
def expiry_layout(v0: float, kappa: float, theta: float, sigma: float, rho: float, t: float,
                  w: float, max_abs_x: float, scratch) -> tuple[float, int]:
    """Truncation U and panel count P for one expiry (max_abs_x = largest |ln(F/K)| among its strikes)."""
    log_tol = math.log(CF_TOL)
    # Black-76 part: exp(-w (u^2 + 1/4) / 2) <= tol
    u_black = math.sqrt(max(-2.0 * log_tol / max(w, 1e-300) - 0.25, 0.0))
    # Heston part: double, then bisect (in log u) to the first u where |phi| <= tol
    hi = 1.0
    while _log_cf_magnitude(hi, v0, kappa, theta, sigma, rho, t, scratch) > log_tol and hi < MAX_U:
        hi *= 2.0
    lo = 0.5 * hi
    for _ in range(8):
        mid = math.sqrt(lo * hi)
        if _log_cf_magnitude(mid, v0, kappa, theta, sigma, rho, t, scratch) > log_tol:
            lo = mid
        else:
            hi = mid
    u_max = min(max(hi, u_black, 1.0), MAX_U)
    # mean phase rate of the characteristic function over [0, U]
    cf_phase = abs(heston_log_cf(u_max, v0, kappa, theta, sigma, rho, t, scratch, False).imag) / u_max
    omega = max_abs_x + 1.5 * cf_phase
    panels = int(math.ceil(u_max * omega / PHASE_PER_PANEL))
    panels = min(max(panels, MIN_PANELS), MAX_PANELS)
    return u_max, panels
