"""Characteristic functions of the Heston family on the Lewis contour, one dispatcher for the chain kernel.

Models (an integer flag, so one compiled kernel serves all three):
- HESTON: `charfunc.heston_log_cf`, parameters (v0, kappa, theta, sigma, rho).
- BATES: Heston times a lognormal jump factor (forward measure), parameters (..., lam, mu_j, delta_j):
  ln phi += lam T (E - 1 - iz c), E = exp(iz mu_j + (iz)^2 delta_j^2 / 2), c = exp(mu_j + delta_j^2/2) - 1.
- HESTON_TD: Heston with piecewise-constant theta and sigma over maturity buckets (v0, kappa, rho global);
  parameters (v0, kappa, rho, theta_1..n, sigma_1..n), bucket ends in `knots` (n - 1 increasing times).
  The Riccati solution is carried backwards in time over the buckets (Mikhailov & Noegel 2003, Elices 2008),
  each step in the little-trap form started from the B of the later bucket and written without 1/sigma^2.

Gradients: grad[0:n] = d ln phi / d(parameters in as_array order), grad[n] = d ln phi / dT (n = parameter count).
"""
from __future__ import annotations

import cmath
import math

import numpy as np
from numba import njit

from .charfunc import _log1p_curvature, black_variance, cexpm1, clog1p, heston_log_cf

HESTON, BATES, HESTON_TD = 0, 1, 2
N_HESTON = 5
N_BATES = 8
TD_FIXED = 3          # v0, kappa, rho before the per-bucket thetas and sigmas


@njit(nogil=True, cache=True)
def n_params(model: int, knots) -> int:
    """Number of model parameters (the gradient's length without the maturity entry)."""
    if model == HESTON:
        return N_HESTON
    if model == BATES:
        return N_BATES
    return TD_FIXED + 2 * (knots.size + 1)


@njit(nogil=True, cache=True)
def scratch_size(model: int, knots) -> int:
    """Length of the complex work array `model_log_cf` needs for its gradient."""
    return 2 * (n_params(model, knots) + 1) + 12


@njit(nogil=True, cache=True)
def params_valid(model: int, prm, knots) -> bool:
    """Finite parameters inside the model's domain."""
    n = n_params(model, knots)
    if prm.size < n:
        return False
    for k in range(n):
        if not math.isfinite(prm[k]):
            return False
    if model == HESTON_TD:
        nb = knots.size + 1
        if not (prm[0] >= 0.0 and prm[1] > 0.0 and -1.0 < prm[2] < 1.0):
            return False
        for j in range(nb):
            if not (prm[TD_FIXED + j] >= 0.0 and prm[TD_FIXED + nb + j] > 0.0):
                return False
        last = 0.0
        for j in range(knots.size):
            if not (knots[j] > last and math.isfinite(knots[j])):
                return False
            last = knots[j]
        return True
    if not (prm[0] >= 0.0 and prm[1] > 0.0 and prm[2] >= 0.0 and prm[3] > 0.0 and -1.0 < prm[4] < 1.0):
        return False
    if model == BATES and not (prm[5] >= 0.0 and prm[7] >= 0.0):
        return False
    return True


@njit(nogil=True, cache=True)
def jump_log_cf(u: float, lam: float, mu: float, delta: float, t: float, grad, at: int, want_grad: int) -> complex:
    """The Bates jump exponent lam T (E - 1 - iz c) at z = u - i/2; with want_grad its derivatives in
    (lam, mu_j, delta_j) go to grad[at:at+3] (want_grad 2, 3) and d/dT is added to grad[at+3] (want_grad 1, 3)."""
    iz = complex(0.5, u)
    em1 = cexpm1(iz * mu + 0.5 * iz * iz * delta * delta)     # E - 1
    c = math.expm1(mu + 0.5 * delta * delta)
    core = em1 - iz * c
    if want_grad:
        big_e = 1.0 + em1
        c1 = c + 1.0
        if want_grad != 1:
            grad[at] = t * core
            grad[at + 1] = lam * t * iz * (big_e - c1)
            grad[at + 2] = lam * t * delta * (iz * iz * big_e - iz * c1)
        if want_grad != 2:
            grad[at + 3] += lam * core
    return lam * t * core


@njit(nogil=True, cache=True)
def _td_step(b0: complex, kappa: float, theta: float, sigma: float, rho: float, s: float, q: float, iz: complex,
             part, at: int, want_part: bool) -> tuple[complex, complex]:
    """One bucket of length s: (B, increment of A) from the later bucket's B = b0. With want_part,
    part[at + 2k], part[at + 2k + 1] = dB, dA / d(b0, kappa, theta, sigma, rho, s)[k]."""
    s2 = sigma * sigma
    kt = kappa * theta
    xi = kappa - sigma * rho * iz
    d = cmath.sqrt(xi * xi + s2 * q)
    beta = xi + d
    em = cexpm1(-d * s)
    om = -em                                  # 1 - e^{-ds}
    e = 1.0 + em
    c0 = b0 + q / beta                        # distance from the stable root -q/beta
    den0 = beta - s2 * b0
    g = -s2 * c0 / den0
    omg = 1.0 - g
    yos = -c0 * om / (den0 * omg)             # y / sigma^2, finite as sigma -> 0
    y = s2 * yos                              # ln((1 - g e)/(1 - g)) = log1p(y)
    big_l = clog1p(y) / y if y != 0 else 1.0 + 0j
    den1 = 1.0 - g * e
    r = omg / den1
    b = -q / beta + c0 * e * r
    da = kt * (-q * s / beta - 2.0 * yos * big_l)
    if not want_part:
        return b, da
    curv = _log1p_curvature(y)
    inv_beta2 = 1.0 / (beta * beta)
    for k in range(6):
        b0d = 1.0 + 0j if k == 0 else 0j
        xid = 0j
        s2d = 0.0
        ktd = 0.0
        sd = 0.0
        if k == 1:
            xid = 1.0 + 0j
            ktd = theta
        elif k == 2:
            ktd = kappa
        elif k == 3:
            xid = -rho * iz
            s2d = 2.0 * sigma
        elif k == 4:
            xid = -sigma * iz
        elif k == 5:
            sd = 1.0
        dd = (xi * xid + 0.5 * s2d * q) / d
        betad = xid + dd
        ed = -e * (dd * s + d * sd)
        omd = -ed
        c0d = b0d - q * betad * inv_beta2
        den0d = betad - s2d * b0 - s2 * b0d
        gd = (-(s2d * c0 + s2 * c0d) - g * den0d) / den0
        omgd = -gd
        yosd = -(c0d * om + c0 * omd) / (den0 * omg) - yos * (den0d / den0 + omgd / omg)
        yd = s2d * yos + s2 * yosd
        den1d = -(gd * e + g * ed)
        rd = (omgd - r * den1d) / den1
        part[at + 2 * k] = q * betad * inv_beta2 + c0d * e * r + c0 * ed * r + c0 * e * rd
        part[at + 2 * k + 1] = (ktd * (-q * s / beta - 2.0 * yos * big_l)
                      + kt * (q * s * betad * inv_beta2 - q * sd / beta - 2.0 * (yosd * big_l + yos * curv * yd)))
    return b, da


@njit(nogil=True, cache=True)
def td_log_cf(u: float, prm, knots, t: float, grad, want_grad: int) -> complex:
    """ln phi(u - i/2) of time-dependent Heston; with want_grad all of grad[0:n+1] (n parameters, then T).
    grad must hold 2 (n + 1) + 12 entries (`scratch_size`): the rest is scratch for dB and one step's partials."""
    nb = knots.size + 1
    n = TD_FIXED + 2 * nb
    v0, kappa, rho = prm[0], prm[1], prm[2]
    q = u * u + 0.25
    iz = complex(0.5, u)
    want = want_grad != 0
    pa = 2 * (n + 1)                              # one step's partials live at grad[pa:pa + 12]
    if want:
        for p in range(2 * (n + 1)):
            grad[p] = 0j
    b = 0j
    a = 0j
    first = True
    for j in range(nb - 1, -1, -1):
        start = 0.0 if j == 0 else knots[j - 1]
        if start >= t:
            continue
        end = t if j == nb - 1 else min(knots[j], t)
        s = end - start
        if s <= 0.0:
            continue
        th_i = TD_FIXED + j
        sg_i = TD_FIXED + nb + j
        b_new, da = _td_step(b, kappa, prm[th_i], prm[sg_i], rho, s, q, iz, grad, pa, want)
        if want:
            db0, da0 = grad[pa], grad[pa + 1]
            # chain the earlier dependence through b0, then add this bucket's own partials
            for p in range(n + 1):
                dbp = grad[n + 1 + p]
                grad[p] += da0 * dbp
                grad[n + 1 + p] = db0 * dbp
            for k, p in ((1, 1), (4, 2), (2, th_i), (3, sg_i)):
                grad[p] += grad[pa + 2 * k + 1]
                grad[n + 1 + p] += grad[pa + 2 * k]
            if first:        # the bucket holding T grows with T
                grad[n] += grad[pa + 11]
                grad[n + 1 + n] += grad[pa + 10]
        b = b_new
        a += da
        first = False
    if want:
        for p in range(n + 1):
            grad[p] += v0 * grad[n + 1 + p]
        grad[0] += b
    return a + v0 * b


@njit(nogil=True, cache=True)
def model_log_cf(model: int, u: float, prm, knots, t: float, grad, want_grad: int) -> complex:
    """ln phi(u - i/2) of `model`; want_grad: 0 none, 1 the Greeks' entries (v0, thetas, T), 2 the parameters,
    3 all (models other than Heston fill every entry whenever asked)."""
    if model == HESTON_TD:
        return td_log_cf(u, prm, knots, t, grad, want_grad)
    log_cf = heston_log_cf(u, prm[0], prm[1], prm[2], prm[3], prm[4], t, grad, want_grad)
    if model == BATES:
        if want_grad:
            grad[N_BATES] = grad[5]  # the maturity entry moves behind the jump parameters
        log_cf += jump_log_cf(u, prm[5], prm[6], prm[7], t, grad, 5, want_grad)
    return log_cf


@njit(nogil=True, cache=True)
def model_black_variance(model: int, prm, knots, t: float) -> float:
    """Total variance of the Black-76 control variate: expected integrated variance (plus the jumps' variance)."""
    if model == HESTON_TD:
        nb = knots.size + 1
        kappa = prm[1]
        ev = prm[0]
        total = 0.0
        for j in range(nb):
            start = 0.0 if j == 0 else knots[j - 1]
            if start >= t:
                break
            end = t if j == nb - 1 else min(knots[j], t)
            theta = prm[TD_FIXED + j]
            total += black_variance(ev, kappa, theta, end - start)
            ev = theta + (ev - theta) * math.exp(-kappa * (end - start))
        return total
    w = black_variance(prm[0], prm[1], prm[2], t)
    if model == BATES:
        w += prm[5] * t * (prm[6] * prm[6] + prm[7] * prm[7])
    return w


def vega_direction(model: int, prm: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """d(parameters)/d(vol) for a parallel shift of sqrt(v0) and every sqrt(theta): the Greeks' vega direction."""
    n = int(n_params(model, knots))
    out = np.zeros(n + 1)
    out[0] = 2.0 * math.sqrt(max(prm[0], 0.0))
    if model == HESTON_TD:
        nb = knots.size + 1
        out[TD_FIXED:TD_FIXED + nb] = 2.0 * np.sqrt(np.maximum(prm[TD_FIXED:TD_FIXED + nb], 0.0))
    else:
        out[2] = 2.0 * math.sqrt(max(prm[2], 0.0))
    return out
