"""Arbitrage-free smile slices: a natural cubic spline in total variance, fitted to the bid-ask band.

One expiry's smile is total implied variance w(k) = sigma^2 T as a function of log-moneyness k = ln(K/F),
written in the scaled coordinate z = k / s (s = sqrt of the ATM total variance, so every expiry has a smile of
similar width in z). w(z) is the natural cubic spline through its values y at fixed knots, continued linearly
beyond the end knots. It is linear in y, so the value, slope and curvature at any point are rows of a matrix
times y, and the fit is a sequence of small weighted least-squares solves:

- quotes: a small pull towards the mid (weight `alpha`) and, outside [bid, ask], a Huber loss of the distance to
  the nearer side in half-spreads (weight `beta`, quadratic up to `delta` half-spreads, linear beyond: one
  outlier cannot drag the slice);
- smoothness: `lam` * integral of (d2(w/theta)/dz2)^2 dz;
- no-arbitrage on a grid of k (active-set penalties, re-linearised every iteration): the butterfly density
  g(k) = (1 - k w'/2w)^2 - w'^2/4 (1/w + 1/4) + w''/2 >= `g_floor` (Gatheral & Jacquier 2014), w >= `lower`
  (the previous expiry's total variance: no calendar arbitrage; a last constant lift makes it exact), and
  linear wings that neither fall (left wing slope <= 0, right >= 0) nor exceed Lee's bound 2.

Everything here is numba, `nogil=True`, `cache=True`: called from a worker thread once per snapshot.
"""
from __future__ import annotations


import numpy as np
from numba import njit

_PENALTY = 1e4          # weight of an active no-arbitrage row (the objective is O(number of quotes))
_LEE_SLOPE = 1.9        # wing slopes of w in k are kept inside Lee's bound 2
_CAL_BAND = 1e-4        # calendar rows engage within this fraction of theta above the previous expiry


@njit(nogil=True, cache=True)
def second_derivative_map(knots: np.ndarray) -> np.ndarray:
    """The (n, n) matrix taking knot values y to the spline's second derivatives M at the knots (M_0 = M_n-1 = 0)."""
    n = knots.size
    out = np.zeros((n, n))
    if n < 3:
        return out
    m = n - 2
    a = np.zeros((m, m))
    rhs = np.zeros((m, n))
    for j in range(1, n - 1):
        h0 = knots[j] - knots[j - 1]
        h1 = knots[j + 1] - knots[j]
        r = j - 1
        a[r, r] = (h0 + h1) / 3.0
        if r > 0:
            a[r, r - 1] = h0 / 6.0
        if r < m - 1:
            a[r, r + 1] = h1 / 6.0
        rhs[r, j - 1] += 1.0 / h0
        rhs[r, j] += -1.0 / h0 - 1.0 / h1
        rhs[r, j + 1] += 1.0 / h1
    sol = np.linalg.solve(a, rhs)
    out[1:n - 1, :] = sol
    return out


@njit(nogil=True, cache=True)
def spline_rows(knots: np.ndarray, gmap: np.ndarray, x: np.ndarray):
    """Rows (len(x), n) giving the spline's value, first and second derivative at `x` as linear maps of y."""
    n = knots.size
    m = x.size
    val = np.zeros((m, n))
    d1 = np.zeros((m, n))
    d2 = np.zeros((m, n))
    # end slopes of the natural spline: (y1-y0)/h - M1 h/6 on the left, (yn-1 - yn-2)/h + Mn-2 h/6 on the right
    h0 = knots[1] - knots[0]
    hn = knots[n - 1] - knots[n - 2]
    left = -gmap[1] * h0 / 6.0
    left[0] -= 1.0 / h0
    left[1] += 1.0 / h0
    right = gmap[n - 2] * hn / 6.0
    right[n - 2] -= 1.0 / hn
    right[n - 1] += 1.0 / hn
    for i in range(m):
        xi = x[i]
        if xi <= knots[0] or xi >= knots[n - 1]:
            slope = left if xi <= knots[0] else right
            end = 0 if xi <= knots[0] else n - 1
            dx = xi - knots[end]
            for p in range(n):
                val[i, p] = slope[p] * dx
                d1[i, p] = slope[p]
            val[i, end] += 1.0
            continue
        lo, hi = 0, n - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if knots[mid] <= xi:
                lo = mid
            else:
                hi = mid
        j = lo
        h = knots[j + 1] - knots[j]
        a = (knots[j + 1] - xi) / h
        b = (xi - knots[j]) / h
        ca = (a * a * a - a) * h * h / 6.0
        cb = (b * b * b - b) * h * h / 6.0
        da = (1.0 - 3.0 * a * a) * h / 6.0
        db = (3.0 * b * b - 1.0) * h / 6.0
        for p in range(n):
            g0 = gmap[j, p]
            g1 = gmap[j + 1, p]
            val[i, p] = ca * g0 + cb * g1
            d1[i, p] = da * g0 + db * g1
            d2[i, p] = a * g0 + b * g1
        val[i, j] += a
        val[i, j + 1] += b
        d1[i, j] -= 1.0 / h
        d1[i, j + 1] += 1.0 / h
    return val, d1, d2


@njit(nogil=True, cache=True)
def roughness_matrix(knots: np.ndarray, gmap: np.ndarray) -> np.ndarray:
    """K with y' K y = integral of the spline's squared second derivative (linear wings add nothing)."""
    n = knots.size
    a = np.zeros((n, n))
    for j in range(n - 1):
        h = knots[j + 1] - knots[j]
        a[j, j] += h / 3.0
        a[j + 1, j + 1] += h / 3.0
        a[j, j + 1] += h / 6.0
        a[j + 1, j] += h / 6.0
    return gmap.T @ a @ gmap


@njit(nogil=True, cache=True)
def butterfly_density(k: np.ndarray, w: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """Gatheral's g(k) from total variance and its k-derivatives; g < 0 is butterfly arbitrage (or w <= 0)."""
    g = np.empty(k.size)
    for i in range(k.size):
        if w[i] <= 0.0:
            g[i] = -1.0
            continue
        a = 1.0 - k[i] * w1[i] / (2.0 * w[i])
        g[i] = a * a - 0.25 * w1[i] * w1[i] * (1.0 / w[i] + 0.25) + 0.5 * w2[i]
    return g


@njit(nogil=True, cache=True)
def _huber(d: float, delta: float) -> float:
    return 0.5 * d * d if d <= delta else delta * (d - 0.5 * delta)


@njit(nogil=True, cache=True)
def _merit(y, vq, w_mid, w_bid, w_ask, half, weight, rough, vg, dg1, dg2, kg, lower, ends1, scale, theta,
           alpha, beta, delta, g_floor):
    """The objective the fit minimises: quote loss + smoothness + squared no-arbitrage shortfalls."""
    wq = vq @ y
    total = 0.5 * (y @ (rough @ y))
    for i in range(wq.size):
        if weight[i] <= 0.0:
            continue
        u = (wq[i] - w_mid[i]) / half[i]
        total += 0.5 * alpha * weight[i] * u * u
        if wq[i] > w_ask[i]:
            total += beta * weight[i] * _huber((wq[i] - w_ask[i]) / half[i], delta)
        elif wq[i] < w_bid[i]:
            total += beta * weight[i] * _huber((w_bid[i] - wq[i]) / half[i], delta)
    wg = vg @ y
    g = butterfly_density(kg, wg, (dg1 @ y) / scale, (dg2 @ y) / (scale * scale))
    pen = _PENALTY / (theta * theta)
    for i in range(kg.size):
        short = lower[i] + 0.5 * _CAL_BAND * theta - wg[i]
        if short > 0.0:
            total += 0.5 * pen * short * short
        if g[i] < 2.0 * g_floor:
            gap = 2.0 * g_floor - g[i]
            total += 0.5 * _PENALTY * gap * gap
    for e in range(2):
        slope = (-1.0 if e == 0 else 1.0) * (ends1[e] @ y) / scale
        over = -slope if slope < 0.0 else (slope - _LEE_SLOPE if slope > _LEE_SLOPE else 0.0)
        total += 0.5 * pen * theta * theta * over * over
    return total


@njit(nogil=True, cache=True)
def fit_slice(knots, zq, w_mid, w_bid, w_ask, weight, scale, theta, z_grid, lower, y0,
              lam, alpha, beta, delta, g_floor, max_iter):
    """Fit one expiry's knot values y (total variance at `knots`, z units) to its quotes' total-variance band.

    zq, w_mid, w_bid, w_ask, weight: the quotes (weight 0 leaves a quote out, e.g. its cross-validation fold);
    scale = s (k = s z), theta normalises w; z_grid, lower: the no-arbitrage grid and the total variance the
    slice must not fall below there (the previous expiry; 0 for the first). Each iteration solves the
    majorised (IRLS) problem with the no-arbitrage rows linearised at the current y, and backtracks on the
    true objective, so the objective never rises. Returns (y, iterations, converged, w at the quotes).
    """
    n = knots.size
    gmap = second_derivative_map(knots)
    vq, _, _ = spline_rows(knots, gmap, zq)
    vg, dg1, dg2 = spline_rows(knots, gmap, z_grid)
    rough = roughness_matrix(knots, gmap) * (lam / (theta * theta))
    kg = z_grid * scale
    half = np.maximum(0.5 * (w_ask - w_bid), 1e-12)
    # end-slope rows (z units): left wing slope <= 0, right >= 0, both within Lee's bound (in k units)
    _, ends1, _ = spline_rows(knots, gmap, np.array([knots[0] - 1.0, knots[n - 1] + 1.0]))
    y = y0.copy()
    converged = False
    it = 0
    pen = _PENALTY / (theta * theta)
    merit = _merit(y, vq, w_mid, w_bid, w_ask, half, weight, rough, vg, dg1, dg2, kg, lower, ends1, scale, theta,
                   alpha, beta, delta, g_floor)
    for it in range(1, max_iter + 1):
        wq = vq @ y
        wi = np.zeros(zq.size)
        target = np.zeros(zq.size)
        for i in range(zq.size):
            if weight[i] <= 0.0:
                continue
            h2 = half[i] * half[i]
            wi[i] = alpha * weight[i] / h2
            target[i] = w_mid[i] * wi[i]
            if wq[i] > w_ask[i] or wq[i] < w_bid[i]:
                edge = w_ask[i] if wq[i] > w_ask[i] else w_bid[i]
                d = abs(wq[i] - edge) / half[i]
                wo = beta * weight[i] / h2 * (1.0 if d <= delta else delta / d)
                wi[i] += wo
                target[i] += wo * edge
        weighted = vq * wi.reshape(-1, 1)
        a_mat = rough + vq.T @ weighted
        rhs = vq.T @ target
        # active no-arbitrage rows, linearised at the current y
        wg = vg @ y
        w1 = (dg1 @ y) / scale
        w2 = (dg2 @ y) / (scale * scale)
        g = butterfly_density(kg, wg, w1, w2)
        for i in range(z_grid.size):
            if wg[i] < lower[i] + _CAL_BAND * theta:   # calendar: w >= previous expiry's w (and w > 0)
                row = vg[i]                           # held at the middle of a thin band: no zig-zag
                b = lower[i] + 0.5 * _CAL_BAND * theta
                for p in range(n):
                    rhs[p] += pen * b * row[p]
                    for q in range(n):
                        a_mat[p, q] += pen * row[p] * row[q]
            if g[i] < 4.0 * g_floor and wg[i] > 0.0:
                aa = 1.0 - kg[i] * w1[i] / (2.0 * wg[i])
                dw = aa * kg[i] * w1[i] / (wg[i] * wg[i]) + 0.25 * w1[i] * w1[i] / (wg[i] * wg[i])
                dw1 = -aa * kg[i] / wg[i] - 0.5 * w1[i] * (1.0 / wg[i] + 0.25)
                row = dw * vg[i] + dw1 * dg1[i] / scale + 0.5 * dg2[i] / (scale * scale)
                b = 4.0 * g_floor - g[i] + row @ y
                for p in range(n):
                    rhs[p] += _PENALTY * b * row[p]
                    for q in range(n):
                        a_mat[p, q] += _PENALTY * row[p] * row[q]
        for e in range(2):
            slope = (ends1[e] @ y) / scale
            sign = -1.0 if e == 0 else 1.0
            if sign * slope < 0.0 or sign * slope > _LEE_SLOPE:
                bound = 0.0 if sign * slope < 0.0 else _LEE_SLOPE
                row = ends1[e] / scale
                b = sign * bound
                for p in range(n):
                    rhs[p] += pen * theta * theta * b * row[p]
                    for q in range(n):
                        a_mat[p, q] += pen * theta * theta * row[p] * row[q]
        y_sol = np.linalg.solve(a_mat, rhs)
        direction = y_sol - y
        t = 1.0
        accepted = False
        for _ in range(12):
            y_try = y + t * direction
            m_try = _merit(y_try, vq, w_mid, w_bid, w_ask, half, weight, rough, vg, dg1, dg2, kg, lower, ends1,
                           scale, theta, alpha, beta, delta, g_floor)
            if m_try <= merit:
                accepted = True
                break
            t *= 0.5
        step = t * np.max(np.abs(direction)) / theta
        if not accepted:
            converged = step < 1e-4
            break
        y = y_try
        gain = merit - m_try
        merit = m_try
        if step < 1e-5 or (t == 1.0 and gain <= 1e-8 * (1.0 + merit)):
            converged = True
            break
    # exact calendar: lift the slice by the largest remaining shortfall (a constant is a spline too)
    shortfall = np.max(lower - vg @ y)
    if shortfall > 0.0:
        y = y + shortfall + 1e-9 * theta
    return y, it, converged, vq @ y


@njit(nogil=True, cache=True)
def evaluate_slice(knots, y, m2, scale, k):
    """Total variance and its first two k-derivatives of a fitted slice at log-moneyness `k` (O(log n) a point);
    m2 = the spline's second derivatives at the knots (`second_derivative_map(knots) @ y`)."""
    n = knots.size
    w = np.empty(k.size)
    w1 = np.empty(k.size)
    w2 = np.empty(k.size)
    h0 = knots[1] - knots[0]
    hn = knots[n - 1] - knots[n - 2]
    left_slope = (y[1] - y[0]) / h0 - m2[1] * h0 / 6.0
    right_slope = (y[n - 1] - y[n - 2]) / hn + m2[n - 2] * hn / 6.0
    for i in range(k.size):
        z = k[i] / scale
        if z <= knots[0]:
            w[i] = y[0] + left_slope * (z - knots[0])
            w1[i] = left_slope / scale
            w2[i] = 0.0
            continue
        if z >= knots[n - 1]:
            w[i] = y[n - 1] + right_slope * (z - knots[n - 1])
            w1[i] = right_slope / scale
            w2[i] = 0.0
            continue
        lo, hi = 0, n - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if knots[mid] <= z:
                lo = mid
            else:
                hi = mid
        h = knots[lo + 1] - knots[lo]
        a = (knots[lo + 1] - z) / h
        b = (z - knots[lo]) / h
        w[i] = a * y[lo] + b * y[lo + 1] + ((a ** 3 - a) * m2[lo] + (b ** 3 - b) * m2[lo + 1]) * h * h / 6.0
        w1[i] = ((y[lo + 1] - y[lo]) / h + ((1.0 - 3.0 * a * a) * m2[lo] + (3.0 * b * b - 1.0) * m2[lo + 1]) * h / 6.0
                 ) / scale
        w2[i] = (a * m2[lo] + b * m2[lo + 1]) / (scale * scale)
    return w, w1, w2
