"""Heston characteristic function ("little trap" form) on the Lewis contour, with analytic derivatives.

phi(u - i/2) is E[exp((iu + 1/2) X)] for X = ln(S_T / F), evaluated for real u >= 0. On this contour
z^2 + iz = u^2 + 1/4 =: q is real, which keeps the algebra short. Written without any 1/sigma^2 that
cancels: (xi - d)/sigma^2 = -q/(xi + d), and the log term goes through log1p of a quantity proportional
to sigma^2, so tiny vol-of-vol (1e-3 and below) keeps full precision without a separate expansion.

Derivatives of ln phi with respect to (v0, kappa, theta, sigma, rho, T) follow the chain rule through
the same intermediates (the analytic gradient of Cui, del Bano Rollin & Germano, 2017, in little-trap form).
"""
from __future__ import annotations

import cmath
import math

from numba import njit

# index of each derivative in the gradient vector
V0, KAPPA, THETA, SIGMA, RHO, MATURITY = 0, 1, 2, 3, 4, 5
N_GRAD = 6


@njit(nogil=True, cache=True)
def clog1p(z: complex) -> complex:
    """log(1 + z), accurate for small |z| (principal branch)."""
    a = z.real
    b = z.imag
    return complex(0.5 * math.log1p(a * (2.0 + a) + b * b), math.atan2(b, 1.0 + a))


@njit(nogil=True, cache=True)
def cexpm1(z: complex) -> complex:
    """exp(z) - 1, accurate for small |z|."""
    a = z.real
    sh = math.sin(0.5 * z.imag)
    ch = math.cos(0.5 * z.imag)
    em1 = math.expm1(a)
    return complex(em1 * (1.0 - 2.0 * sh * sh) - 2.0 * sh * sh, (em1 + 1.0) * 2.0 * sh * ch)


@njit(nogil=True, cache=True)
def _log1p_curvature(y: complex) -> complex:
    """G(y) = (y/(1+y) - log1p(y)) / y^2, by its series near 0."""
    if abs(y) < 0.1:
        total = 0j
        power = 1.0 + 0j
        for n in range(2, 20):
            sign = 1.0 if n % 2 == 1 else -1.0
            total += sign * (n - 1.0) / n * power
            power *= y
        return total
    return (y / (1.0 + y) - clog1p(y)) / (y * y)


@njit(nogil=True, cache=True)
def heston_log_cf(u: float, v0: float, kappa: float, theta: float, sigma: float, rho: float, t: float,
                  grad, want_grad: int) -> complex:
    """ln phi(u - i/2) of ln(S_T/F), and into grad[0:6] its derivatives d ln phi / d(v0, kappa, theta, sigma, rho, T)
    as `want_grad` asks: 0 none, 1 the Greeks' (v0, theta, T), 2 the calibration's (v0, kappa, theta, sigma, rho),
    3 all six. Entries not asked for are left as they were."""
    q = u * u + 0.25
    iz = complex(0.5, u)
    s2 = sigma * sigma
    xi = kappa - sigma * rho * iz
    d = cmath.sqrt(xi * xi + s2 * q)
    beta = xi + d
    om = -cexpm1(-d * t)                      # 1 - e^{-dT}
    e = 1.0 - om                              # only ever used beside 1, absolute precision suffices
    g = -s2 * q / (beta * beta)               # (xi - d)/(xi + d)
    den = 1.0 - g * e
    b_coef = -q * om / (beta * den)           # the v0 coefficient B(T)
    one_m_g = 1.0 - g
    yc = -q / (beta * beta * one_m_g)
    y_over_s2 = yc * om                       # Y = y / sigma^2, finite as sigma -> 0
    y = s2 * y_over_s2                        # ln((1 - g e)/(1 - g)) = log1p(y)
    m = clog1p(y) / s2
    phi_big = -q * t / beta - 2.0 * m
    log_cf = kappa * theta * phi_big + v0 * b_coef
    if not want_grad:
        return log_cf
    inv_1py = 1.0 / (1.0 + y)
    curv = _log1p_curvature(y)
    inv_d = 1.0 / d
    inv_beta = 1.0 / beta
    inv_omg = 1.0 / one_m_g
    bd = beta * den
    inv_bd2 = 1.0 / (bd * bd)
    for p in range(N_GRAD):
        if (want_grad == 1 and (p == KAPPA or p == SIGMA or p == RHO)) or (want_grad == 2 and p == MATURITY):
            continue
        xi_p = 0j
        d_num_extra = 0j
        if p == KAPPA:
            xi_p = 1.0 + 0j
        elif p == SIGMA:
            xi_p = -rho * iz
            d_num_extra = sigma * q + 0j
        elif p == RHO:
            xi_p = -sigma * iz
        d_p = (xi * xi_p + d_num_extra) * inv_d
        beta_p = xi_p + d_p
        e_p = -e * (d_p * t + (d if p == MATURITY else 0j))
        om_p = -e_p
        g_p = ((xi_p - d_p) - g * beta_p) * inv_beta
        den_p = -(g_p * e + g * e_p)
        b_p = -q * (om_p * bd - om * (beta_p * den + beta * den_p)) * inv_bd2
        beta_p_over_beta = beta_p * inv_beta
        y_p = yc * (om_p + om * (g_p * inv_omg - 2.0 * beta_p_over_beta))
        m_p = y_p * inv_1py
        if p == SIGMA:
            m_p += 2.0 * sigma * y_over_s2 * y_over_s2 * curv
        phi_p = q * t * beta_p_over_beta * inv_beta - 2.0 * m_p
        if p == MATURITY:
            phi_p -= q * inv_beta
        a_p = kappa * theta * phi_p
        if p == KAPPA:
            a_p += theta * phi_big
        elif p == THETA:
            a_p += kappa * phi_big
        total = a_p + v0 * b_p
        if p == V0:
            total += b_coef
        grad[p] = total
    return log_cf


@njit(nogil=True, cache=True)
def black_variance(v0: float, kappa: float, theta: float, t: float) -> float:
    """Expected integrated variance theta T + (v0 - theta)(1 - e^{-kappa T})/kappa: the control variate's w."""
    return theta * t + (v0 - theta) * (-math.expm1(-kappa * t)) / kappa
