"""Heston prices, Greeks and parameter gradients of a whole chain, one characteristic-function pass per expiry.
The same kernel serves the whole Heston family (`family_cf`: Bates, time-dependent Heston) through a model flag.

Lewis single-integral form with a Black-76 control variate:
    C = Black76(F, K, w) - sqrt(F K)/pi * Int_0^inf Re(e^{iux} [phi_H(u - i/2) - phi_B(u - i/2)]) / (u^2 + 1/4) du
with x = ln(F/K) and w the expected integrated variance (so phi_B removes the bulk of the integrand and
short expiries stay exact). Puts use the same correction added to the Black-76 put (parity holds for both).
The characteristic function and its derivatives are evaluated once per expiry at the quadrature nodes
(see `quadrature`); each strike then costs 8 sin/cos pairs and a few multiply-adds per node.

Greeks (all discounted, per option): delta = dP/dF per 1.0 of forward, gamma = d2P/dF2, vega = price change
per 1 vol point for a parallel shift of sqrt(v0) and sqrt(theta) by 0.01 (equals Black vega when the
variance curve is flat), theta = price change per calendar day, forward and rate r = -ln(discount)/T held.
Parameter derivatives hold the control-variate variance w fixed: the exact price does not depend on w.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from workstation.domain.heston import HestonParams

from ._inputs import broadcast_chain, shaped
from .black import DAYS_PER_YEAR, VOL_POINT, black_undiscounted, valid_contract
from .charfunc import heston_log_cf
from .family_cf import (
    HESTON, HESTON_TD, model_black_variance, model_log_cf, n_params, params_valid, scratch_size, vega_direction,
)
from .implied_vol import implied_vol
from .normal import norm_cdf, norm_pdf
from .quadrature import CF_TOL, GL_TAU, GL_WEIGHT, HALF_PANEL, expiry_layout
from .results import Greeks

MODE_PRICE, MODE_GREEKS, MODE_GRADIENT = 0, 1, 2
assert HALF_PANEL == 8, "_strike_sums writes out the 8 node pairs of a 16-node panel"


@njit(nogil=True, cache=True)
def _fill_channels(model, mode, prm, knots, vdir, t, w, u0, h, panels, gl_tau, gl_weight, sr, si, dr, di, grad):
    """Integrand weights per node and channel on panels [u0 + p h, u0 + (p + 1) h], folded into
    sums/differences of the symmetric node pairs.

    Channels: price mode (psi); greeks mode (psi, (1/2+iu) psi, (1/2+iu)^2 psi, dphi/dvol along `vdir`,
    dphi/dT); gradient mode (psi, dphi/d(each parameter)); psi = phi - phi_Black; all / (u^2+1/4).
    """
    n_par = vdir.size - 1
    v0, kappa, theta, sigma, rho = prm[0], prm[1], prm[2], prm[3], prm[4]
    want_grad = mode     # 1: the Greeks' derivatives, 2: the calibration's (see model_log_cf)
    n_ch = sr.shape[0]
    vals_p = np.empty(n_ch, dtype=np.complex128)
    for p in range(panels):
        centre = u0 + h * (p + 0.5)
        for j in range(HALF_PANEL):
            for side in range(2):
                u = centre + (0.5 * h * gl_tau[j] if side == 0 else -0.5 * h * gl_tau[j])
                q = u * u + 0.25
                if model == HESTON:     # the common case called directly: keeps it inlined in the node loop
                    log_cf = heston_log_cf(u, v0, kappa, theta, sigma, rho, t, grad, want_grad)
                else:
                    log_cf = model_log_cf(model, u, prm, knots, t, grad, want_grad)
                phi = np.exp(log_cf)
                base = 0.5 * h * gl_weight[j] / q
                psi = (phi - math.exp(-0.5 * w * q)) * base
                vals_p[0] = psi
                if mode == 1:
                    iz = complex(0.5, u)
                    vals_p[1] = iz * psi
                    vals_p[2] = iz * iz * psi
                    dvol = 0j
                    for k in range(n_par):
                        if vdir[k] != 0.0:
                            dvol += vdir[k] * grad[k]
                    vals_p[3] = phi * dvol * base
                    vals_p[4] = phi * grad[n_par] * base
                elif mode == 2:
                    for k in range(n_par):
                        vals_p[1 + k] = phi * grad[k] * base
                for c in range(n_ch):
                    v = vals_p[c]
                    if side == 0:
                        sr[c, p, j] = v.real
                        si[c, p, j] = v.imag
                        dr[c, p, j] = v.real
                        di[c, p, j] = v.imag
                    else:
                        sr[c, p, j] += v.real
                        si[c, p, j] += v.imag
                        dr[c, p, j] -= v.real
                        di[c, p, j] -= v.imag


_TWO_OVER_PI = 2.0 / math.pi
_PIO2_HI = 1.5707963267948966
_PIO2_LO = 6.123233995736766e-17


@njit(nogil=True, cache=True, inline="always")
def _sincos(a: float) -> tuple[float, float]:
    """sin and cos for the small angles of the strike loop (|a| < ~50): branch-free so loops vectorise. The
    quadrant stays a float (an int conversion kept the strike loop scalar: 11 ns a pair against 2.9 ns)."""
    n = math.floor(a * _TWO_OVER_PI + 0.5)
    r = (a - n * _PIO2_HI) - n * _PIO2_LO
    r2 = r * r
    s = r + r * r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (1.0 / 362880 + r2 * (
        -1.0 / 39916800 + r2 * (1.0 / 6227020800 + r2 * (-1.0 / 1307674368000 + r2 / 355687428096000)))))))
    c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (1.0 / 40320 + r2 * (
        -1.0 / 3628800 + r2 * (1.0 / 479001600 + r2 * (-1.0 / 87178291200 + r2 / 20922789888000)))))))
    quadrant = n - 4.0 * math.floor(0.25 * n)             # 0, 1, 2 or 3
    odd = (quadrant == 1.0) | (quadrant == 3.0)
    sin_a = (c if odd else s) * (-1.0 if quadrant >= 2.0 else 1.0)
    cos_a = (s if odd else c) * (-1.0 if (quadrant == 1.0) | (quadrant == 2.0) else 1.0)
    return sin_a, cos_a


@njit(nogil=True, cache=True, fastmath={"contract"})
def _strike_sums(x, u0, h, panels, gl_tau, sr, si, dr, di, out):
    """out[c, k] += Int_{u0}^{u0 + panels h} Re(e^{iu x_k} V_c(u)) du for all strikes k of one expiry.

    Vectorised across strikes; e^{iux} = e^{i c_p x} (cos + i sin)(half-offset), the panel centres' factor
    built by recurrence, the 8 half-offsets' cos/sin computed once per strike. Per panel and channel, the 8
    node pairs' weights sit in registers and each strike takes one pass (the 8 terms written out: a loop over
    them kept two running sums per strike in memory, 8 loads and stores more per strike; 1.5-2x slower).
    """
    n_ch = sr.shape[0]
    m = x.size
    cosj = np.empty((HALF_PANEL, m))
    sinj = np.empty((HALF_PANEL, m))
    er = np.empty(m)
    ei = np.empty(m)
    rr = np.empty(m)
    ri = np.empty(m)
    for j in range(HALF_PANEL):
        scale = 0.5 * h * gl_tau[j]
        for k in range(m):
            sinj[j, k], cosj[j, k] = _sincos(scale * x[k])
    for k in range(m):
        ei[k], er[k] = _sincos((u0 + 0.5 * h) * x[k])
        ri[k], rr[k] = _sincos(h * x[k])
    c0, c1, c2, c3, c4, c5, c6, c7 = cosj[0], cosj[1], cosj[2], cosj[3], cosj[4], cosj[5], cosj[6], cosj[7]
    s0, s1, s2, s3, s4, s5, s6, s7 = sinj[0], sinj[1], sinj[2], sinj[3], sinj[4], sinj[5], sinj[6], sinj[7]
    for p in range(panels):
        for c in range(n_ch):
            s_r0, s_r1, s_r2, s_r3 = sr[c, p, 0], sr[c, p, 1], sr[c, p, 2], sr[c, p, 3]
            s_r4, s_r5, s_r6, s_r7 = sr[c, p, 4], sr[c, p, 5], sr[c, p, 6], sr[c, p, 7]
            s_i0, s_i1, s_i2, s_i3 = si[c, p, 0], si[c, p, 1], si[c, p, 2], si[c, p, 3]
            s_i4, s_i5, s_i6, s_i7 = si[c, p, 4], si[c, p, 5], si[c, p, 6], si[c, p, 7]
            d_r0, d_r1, d_r2, d_r3 = dr[c, p, 0], dr[c, p, 1], dr[c, p, 2], dr[c, p, 3]
            d_r4, d_r5, d_r6, d_r7 = dr[c, p, 4], dr[c, p, 5], dr[c, p, 6], dr[c, p, 7]
            d_i0, d_i1, d_i2, d_i3 = di[c, p, 0], di[c, p, 1], di[c, p, 2], di[c, p, 3]
            d_i4, d_i5, d_i6, d_i7 = di[c, p, 4], di[c, p, 5], di[c, p, 6], di[c, p, 7]
            oc = out[c]
            for k in range(m):
                a_r = ((c0[k] * s_r0 - s0[k] * d_i0) + (c1[k] * s_r1 - s1[k] * d_i1)
                       + (c2[k] * s_r2 - s2[k] * d_i2) + (c3[k] * s_r3 - s3[k] * d_i3)
                       + (c4[k] * s_r4 - s4[k] * d_i4) + (c5[k] * s_r5 - s5[k] * d_i5)
                       + (c6[k] * s_r6 - s6[k] * d_i6) + (c7[k] * s_r7 - s7[k] * d_i7))
                a_i = ((c0[k] * s_i0 + s0[k] * d_r0) + (c1[k] * s_i1 + s1[k] * d_r1)
                       + (c2[k] * s_i2 + s2[k] * d_r2) + (c3[k] * s_i3 + s3[k] * d_r3)
                       + (c4[k] * s_i4 + s4[k] * d_r4) + (c5[k] * s_i5 + s5[k] * d_r5)
                       + (c6[k] * s_i6 + s6[k] * d_r6) + (c7[k] * s_i7 + s7[k] * d_r7))
                oc[k] += er[k] * a_r - ei[k] * a_i
        for k in range(m):
            e_r = er[k] * rr[k] - ei[k] * ri[k]
            ei[k] = er[k] * ri[k] + ei[k] * rr[k]
            er[k] = e_r


@njit(nogil=True, cache=True)
def _intrinsic_row(mode, f, k, d, call, row):
    """Expired option (T = 0): discounted intrinsic value, step delta, zero gamma/vega/theta/gradient."""
    itm = (f > k) if call else (f < k)
    row[:] = 0.0
    row[0] = d * (max(f - k, 0.0) if call else max(k - f, 0.0))
    if mode == 1 and itm:
        row[1] = d if call else -d


@njit(nogil=True, cache=True)
def chain_kernel(model, mode, prm, knots, vdir, forward, strike, maturity, discount, is_call, out, cf_tol):
    """Fill out[i, :] for every option under `model` (see `family_cf`): price mode (price); greeks mode (price,
    delta, gamma, vega, theta); gradient mode (price, dP/d(each parameter)). Bad rows are NaN. The integral is
    truncated where the characteristic function falls below `cf_tol` (see `quadrature`); `vdir` is the vega
    direction in parameter space (`family_cf.vega_direction`)."""
    n = forward.size
    n_par = n_params(model, knots)
    n_ch = 1 if mode == 0 else (5 if mode == 1 else 1 + n_par)
    grad = np.zeros(scratch_size(model, knots), dtype=np.complex128)
    params_ok = params_valid(model, prm, knots)
    live = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        if not params_ok or not valid_contract(forward[i], strike[i], maturity[i], discount[i]):
            out[i, :] = np.nan
        elif maturity[i] == 0.0:
            _intrinsic_row(mode, forward[i], strike[i], discount[i], is_call[i] != 0.0, out[i])
        else:
            live[i] = True
    idx = np.where(live)[0]
    order = idx[np.argsort(maturity[idx], kind="mergesort")]
    start = 0
    while start < order.size:
        t = maturity[order[start]]
        stop = start
        max_abs_x = 0.0
        while stop < order.size and maturity[order[stop]] == t:
            i = order[stop]
            max_abs_x = max(max_abs_x, abs(math.log(forward[i] / strike[i])))
            stop += 1
        w = model_black_variance(model, prm, knots, t)
        u_max, panels, zone, fine = expiry_layout(model, prm, knots, t, w, max_abs_x, grad, cf_tol)
        h = u_max / panels
        # the first `zone` panels are split into `fine` sub-panels (narrow analyticity strip, narrow jump factor)
        start_main = zone * h if fine > 1 else 0.0
        n_main = panels - zone if fine > 1 else panels
        sr = np.empty((n_ch, n_main, HALF_PANEL))
        si = np.empty_like(sr)
        dr = np.empty_like(sr)
        di = np.empty_like(sr)
        _fill_channels(model, mode, prm, knots, vdir, t, w, start_main, h, n_main, GL_TAU, GL_WEIGHT,
                       sr, si, dr, di, grad)
        if fine > 1:
            h_fine = zone * h / fine
            fsr = np.empty((n_ch, fine, HALF_PANEL))
            fsi = np.empty_like(fsr)
            fdr = np.empty_like(fsr)
            fdi = np.empty_like(fsr)
            _fill_channels(model, mode, prm, knots, vdir, t, w, 0.0, h_fine, fine, GL_TAU, GL_WEIGHT,
                           fsr, fsi, fdr, fdi, grad)
        sd = math.sqrt(max(w, 0.0))
        group = order[start:stop]
        xs = np.empty(group.size)
        for m in range(group.size):
            xs[m] = math.log(forward[group[m]] / strike[group[m]])
        sums = np.zeros((n_ch, group.size))
        _strike_sums(xs, start_main, h, n_main, GL_TAU, sr, si, dr, di, sums)
        if fine > 1:
            _strike_sums(xs, 0.0, h_fine, fine, GL_TAU, fsr, fsi, fdr, fdi, sums)
        for m in range(group.size):
            i = group[m]
            f, k, d = forward[i], strike[i], discount[i]
            call = is_call[i] != 0.0
            x = xs[m]
            scale = -math.sqrt(f * k) / math.pi
            undiscounted = black_undiscounted(f, k, sd, call) + scale * sums[0, m]
            out[i, 0] = d * undiscounted
            if mode == 1:
                d1 = x / sd + 0.5 * sd
                delta_b = norm_cdf(d1) if call else -norm_cdf(-d1)
                gamma_b = norm_pdf(d1) / (f * sd)
                cx = scale * sums[1, m]
                cxx = scale * sums[2, m]
                out[i, 1] = d * (delta_b + cx / f)
                out[i, 2] = d * (gamma_b + (cxx - cx) / (f * f))
                out[i, 3] = d * scale * sums[3, m] * VOL_POINT
                rate = -math.log(d) / t
                dprice_dt = -rate * d * undiscounted + d * scale * sums[4, m]
                out[i, 4] = -dprice_dt / DAYS_PER_YEAR
            elif mode == 2:
                for c in range(n_par):
                    out[i, 1 + c] = d * scale * sums[1 + c, m]
        start = stop


NO_KNOTS = np.zeros(0)


def family_chain(model: int, mode: int, prm: np.ndarray, knots: np.ndarray, forward, strike, maturity, discount,
                 is_call, tol: float = CF_TOL) -> tuple[tuple[int, ...], np.ndarray]:
    """Run the chain kernel for `model` in `mode`; returns the broadcast shape and the (n, columns) result."""
    shape, (f, k, t, d, c) = broadcast_chain(forward, strike, maturity, discount, is_call)
    prm = np.ascontiguousarray(prm, dtype=np.float64)
    knots = np.ascontiguousarray(knots, dtype=np.float64)
    n_par = int(n_params(model, knots))
    out = np.empty((f.size, 1 if mode == MODE_PRICE else (5 if mode == MODE_GREEKS else 1 + n_par)))
    kernel_knots = knots if model == HESTON_TD else NO_KNOTS
    chain_kernel(model, mode, prm, kernel_knots, vega_direction(model, prm, kernel_knots), f, k, t, d, c, out,
                 float(tol))
    return shape, out


def _params_vector(params: HestonParams | np.ndarray) -> np.ndarray:
    if isinstance(params, HestonParams):
        return params.as_array()
    return np.ascontiguousarray(params, dtype=np.float64).reshape(5)


def heston_chain(mode: int, params, forward, strike, maturity, discount, is_call, tol: float = CF_TOL
                 ) -> tuple[tuple[int, ...], np.ndarray]:
    """Run the chain kernel for Heston in `mode`; returns the broadcast shape and the (n, columns) result."""
    return family_chain(HESTON, mode, _params_vector(params), NO_KNOTS, forward, strike, maturity, discount,
                        is_call, tol)


def heston_price(params: HestonParams, forward, strike, maturity, discount, is_call, tol: float = CF_TOL
                 ) -> np.ndarray:
    """Heston (1993) price of European options on the forward of each expiry (discounted). NaN for bad elements.

    `tol`: truncation of the pricing integral; the default is reference accuracy, `FAST_CF_TOL` is ~30% faster on
    short expiries and within 1e-10 of the forward of the default (measured over a wide parameter grid)."""
    shape, out = heston_chain(MODE_PRICE, params, forward, strike, maturity, discount, is_call, tol)
    return shaped(out[:, 0], shape)


def heston_greeks(params: HestonParams, forward, strike, maturity, discount, is_call, tol: float = CF_TOL) -> Greeks:
    """Heston Greeks: delta per 1.0 of forward, gamma per 1.0 of forward squared, vega per vol point
    (parallel shift of sqrt(v0) and sqrt(theta) by 0.01), theta per calendar day (forward and rate held)."""
    shape, out = heston_chain(MODE_GREEKS, params, forward, strike, maturity, discount, is_call, tol)
    return Greeks(*(shaped(np.ascontiguousarray(out[:, c]), shape) for c in range(1, 5)))


def heston_price_gradient(params, forward, strike, maturity, discount, is_call, tol: float = CF_TOL
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Prices (n,) and their gradient (n, 5) in (v0, kappa, theta, sigma, rho), flattened over the chain."""
    _, out = heston_chain(MODE_GRADIENT, params, forward, strike, maturity, discount, is_call, tol)
    return out[:, 0].copy(), np.ascontiguousarray(out[:, 1:])


def heston_implied_vol(params: HestonParams, forward, strike, maturity, discount, is_call, tol: float = CF_TOL
                       ) -> np.ndarray:
    """Black-76 implied volatility of the Heston price (the model smile); NaN where it has none."""
    price = heston_price(params, forward, strike, maturity, discount, is_call, tol)
    return implied_vol(price, forward, strike, maturity, discount, is_call)
