"""Integration layout per expiry: truncation of the Lewis integral and composite Gauss-Legendre panels.

[0, U] is cut into P equal panels of 16 Gauss-Legendre nodes. U is where both the Heston and the
Black-76 characteristic functions, divided by u, have decayed below 1e-13 (found by doubling and bisection, so it
follows slow decay at large vol-of-vol as well as the Gaussian decay of short expiries). P keeps the
phase e^{iux} plus the characteristic function's own phase under 20 radians per panel: 16-point
Gauss-Legendre integrates cos(omega tau) over [-1, 1] to 8e-16 at a 15-radian phase, 5e-15 at 18, 1.3e-13 at
20 and 1e-10 at 25; from 15 to 20 radians (a quarter fewer nodes) the benchmark chain's prices, Bates prices
and Greeks moved by at most 2e-15. Equal panels let the strike loop build e^{iux} by
recurrence across panels and only 8 cos/sin pairs per strike (nodes are symmetric in each panel).

Fine zone near u = 0: the integrand is analytic only in a strip |Im u| < delta, delta = min(p+ - 1/2,
1/2 - p-) set by the critical moments p-(T) < 0 < 1 < p+(T) (moment explosions; Andersen & Piterbarg 2007).
The singularities at +-i delta sit next to the end u = 0 of the first panel, and with e^{iux} growing like
e^{delta |x|} there, a 16-node panel much wider than delta loses accuracy (vol of vol >= 1, small kappa,
strong skew: up to 1e-6 on deep OTM calls). Panels further out see the singularity at a relative distance
>= 1 and are fine. So when h > FINE_RATIO * delta the first panel is split into equal sub-panels of width
<= FINE_RATIO * delta (Gauss-Legendre error ~ 2.35^-32 ~ 1e-12 relative); ordinary chains are untouched.

Bates: the jump factor adds a Gaussian exp(-delta_j^2 u^2 / 2) of width 1/delta_j to the integrand, narrow
beside a short expiry's (9e-6 price error at 1 day, delta_j = 0.3, on the ordinary panels). The fine zone then
covers the first panels up to u = JUMP_ZONE / delta_j on sub-panels no wider than JUMP_PANEL / delta_j.
The layout follows the model's own characteristic function (`family_cf.model_log_cf`) for every member.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .family_cf import BATES, HESTON_TD, TD_FIXED, model_log_cf

NODES_PER_PANEL = 16
HALF_PANEL = NODES_PER_PANEL // 2
_gl_nodes, _gl_weights = np.polynomial.legendre.leggauss(NODES_PER_PANEL)
# positive half of the symmetric rule on [-1, 1]: nodes tau_j > 0 and weights
GL_TAU = np.ascontiguousarray(_gl_nodes[HALF_PANEL:])
GL_WEIGHT = np.ascontiguousarray(_gl_weights[HALF_PANEL:])

CF_TOL = 1e-13          # reference accuracy (prices to ~1e-10 of the forward)
FAST_CF_TOL = 1e-9      # trading accuracy: ~30% fewer nodes on short expiries, prices within 1e-10 of the forward
PHASE_PER_PANEL = 20.0
MIN_PANELS = 6
MAX_PANELS = 4096
MAX_U = 1e6
FINE_RATIO = 3.0
MAX_FINE = 64
_BISECT_STEPS = 40
JUMP_ZONE = 9.0         # the jump factor's Gaussian is below 1e-17 beyond u = JUMP_ZONE / delta_j
JUMP_PANEL = 2.0        # ... and is integrated there on sub-panels no wider than JUMP_PANEL / delta_j


@njit(nogil=True, cache=True)
def _log_cf_magnitude(model, u, prm, knots, t, scratch) -> float:
    """ln(|phi(u - i/2)| / u): the integrands decay like |phi|/u or faster."""
    return model_log_cf(model, u, prm, knots, t, scratch, 0).real - math.log(max(u, 1.0))


@njit(nogil=True, cache=True)
def explosion_time(p: float, kappa: float, sigma: float, rho: float) -> float:
    """Time T* at which E[(S_T/F)^p] becomes infinite (inf: never), for p outside [0, 1].

    The moment is exp(A + B v0) with B' = p(p-1)/2 - k B + sigma^2 B^2 / 2, k = kappa - rho sigma p, B(0) = 0;
    T* is the time B takes to reach infinity (Delta = k^2 - sigma^2 p (p - 1) is the discriminant).
    """
    k = kappa - rho * sigma * p
    disc = k * k - sigma * sigma * p * (p - 1.0)
    if disc < 0.0:
        root = math.sqrt(-disc)
        return 2.0 / root * (0.5 * math.pi + math.atan(k / root))
    if k > 0.0:
        return math.inf  # B settles at the lower root of the quadratic
    root = math.sqrt(disc)
    if root == 0.0:
        return 2.0 / -k if k < 0.0 else math.inf
    return math.log((-k + root) / (-k - root)) / root if -k > root else math.inf


@njit(nogil=True, cache=True)
def analyticity_half_width(kappa: float, sigma: float, rho: float, t: float, cap: float) -> float:
    """delta = distance from the real u axis to the nearest singularity of phi(u - i/2), capped at `cap`.

    phi(u - i/2) = E[(S_T/F)^{1/2 + iu}] is singular at u = -i (p+ - 1/2) and u = i (1/2 - p-), with p+-
    the critical moments at maturity t. Bisection on the moment; the returned width errs on the small side.
    """
    delta = cap
    for side in range(2):
        sign = 1.0 if side == 0 else -1.0  # p = 1/2 + sign * distance
        if explosion_time(0.5 + sign * delta, kappa, sigma, rho) > t:
            continue  # moment at distance delta is finite: this side's singularity is further away
        lo, hi = 0.5, delta  # finite at distance 1/2 (p = 0 or 1), infinite at distance hi
        for _ in range(_BISECT_STEPS):
            mid = 0.5 * (lo + hi)
            if explosion_time(0.5 + sign * mid, kappa, sigma, rho) > t:
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-3 * lo:
                break
        delta = lo
    return delta


@njit(nogil=True, cache=True)
def model_half_width(model: int, prm, knots, t: float, cap: float) -> float:
    """Analyticity half-width for `model`: the Bates jump factor is entire, so Heston's; for time-dependent
    Heston the narrowest strip of any bucket's (kappa, sigma, rho) held over the whole maturity (errs small)."""
    if model != HESTON_TD:
        return analyticity_half_width(prm[1], prm[3], prm[4], t, cap)
    nb = knots.size + 1
    delta = cap
    for j in range(nb):
        if j > 0 and knots[j - 1] >= t:
            break
        delta = min(delta, analyticity_half_width(prm[1], prm[TD_FIXED + nb + j], prm[2], t, delta))
    return delta


@njit(nogil=True, cache=True)
def expiry_layout(model: int, prm, knots, t: float, w: float, max_abs_x: float, scratch,
                  cf_tol: float = CF_TOL) -> tuple[float, int, int, int]:
    """Truncation U, panel count P, and the fine zone: its first `zone` panels are integrated on `fine` equal
    sub-panels instead (fine = 1: none), for one expiry of `model` (max_abs_x = largest |ln(F/K)| among its
    strikes; cf_tol = where the integrand is cut off)."""
    log_tol = math.log(cf_tol)
    # Black-76 part: exp(-w (u^2 + 1/4) / 2) <= tol
    u_black = math.sqrt(max(-2.0 * log_tol / max(w, 1e-300) - 0.25, 0.0))
    # model part: double, then bisect (in log u) to the first u where |phi| <= tol
    hi = 1.0
    while _log_cf_magnitude(model, hi, prm, knots, t, scratch) > log_tol and hi < MAX_U:
        hi *= 2.0
    lo = 0.5 * hi
    for _ in range(8):
        mid = math.sqrt(lo * hi)
        if _log_cf_magnitude(model, mid, prm, knots, t, scratch) > log_tol:
            lo = mid
        else:
            hi = mid
    u_max = min(max(hi, u_black, 1.0), MAX_U)
    # mean phase rate of the characteristic function over [0, U] (plus the Bates jump factor's own oscillation)
    cf_phase = abs(model_log_cf(model, u_max, prm, knots, t, scratch, 0).imag) / u_max
    omega = max_abs_x + 1.5 * cf_phase + (abs(prm[6]) if model == BATES and prm[5] > 0.0 else 0.0)
    panels = int(math.ceil(u_max * omega / PHASE_PER_PANEL))
    panels = min(max(panels, MIN_PANELS), MAX_PANELS)
    h = u_max / panels
    zone, fine = 1, 1
    if h > FINE_RATIO * 0.5:  # delta >= 1/2 always (moments 0 and 1 are finite)
        delta = model_half_width(model, prm, knots, t, h / FINE_RATIO)
        fine = min(int(math.ceil(h / (FINE_RATIO * delta))), MAX_FINE)
    if model == BATES and prm[5] > 0.0 and prm[7] > 0.0 and h > JUMP_PANEL / prm[7]:
        # the jump factor's Gaussian exp(-delta_j^2 u^2 / 2) is narrow beside a short expiry's integrand
        zone = min(int(math.ceil(JUMP_ZONE / prm[7] / h)), panels)
        fine = max(fine * zone, min(int(math.ceil(zone * h * prm[7] / JUMP_PANEL)), MAX_FINE))
    return u_max, panels, zone, fine
