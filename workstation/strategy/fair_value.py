"""The arbitrage-free fair-value surface of one snapshot, fitted to the quoted bid-ask band.

Per expiry (in maturity order) a smile slice from `pricing.smile_spline` is fitted to the liquid out-of-the-money
quotes, constrained to lie above the previous expiry's total variance (no calendar arbitrage) and to keep a
non-negative butterfly density. A slice with too few quotes, or whose fit fails its own arbitrage check, is
marked with the reason and falls back to the last good slice of that expiry (the previous snapshot's).

Call `FairValueSurface().fit(surface, previous)` once per snapshot from a worker thread; the result carries
per-row fair IVs and prices aligned with the Surface rows and a status per expiry.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from ..domain.snapshot import rows_by_series
from ..pricing import black_price
from ..pricing.smile_spline import butterfly_density, evaluate_slice, fit_slice, second_derivative_map
from .surface import Surface

VOL_POINT = 0.01
MIN_INSIDE_PCT = 75.0      # a slice whose fair values sit inside fewer of its own quotes' spreads is not trusted
RETRY_DROP_PCT = 10.0      # a warm fit this far behind the last slice on the same quotes is refitted cold too


@dataclass(frozen=True)
class FairValueSettings:
    """Which quotes the surface is fitted to, the loss, and the no-arbitrage grid."""

    min_bid: float = 0.05                  # liquid quotes only (index points)
    min_expiry_days: float = 7.0
    max_expiry_days: float = 730.0
    max_moneyness_distance: float = 0.2    # |K/F - 1|
    min_quotes: int = 8                    # fewer quotes in an expiry: no fit, fall back
    grid_moneyness: tuple[float, float] = (0.5, 1.6)   # K/F range of the no-arbitrage grid
    grid_points: int = 401                 # the fit keeps, and the check counts, no-arbitrage on this grid
    knot_spacing: float = 0.35             # in z = k / sqrt(ATM total variance), at most
    quotes_per_knot: float = 4.0           # at least one knot per this many quotes
    max_knots: int = 30
    smoothing: float = 5.0                 # lam: weight of the curvature penalty (benchmarks/fair_value_families.py)
    mid_weight: float = 1.0                # alpha: pull towards the mid, in half-spreads (<= 1 inside the spread)
    outside_weight: float = 1.0            # beta: weight of the distance outside the spread
    huber_delta: float = 2.0               # half-spreads; beyond this the loss grows linearly
    outlier_half_spreads: float = 5.0      # quotes this far outside after a first fit are dropped and it is redone
    g_floor: float = 1e-3                  # butterfly density margin kept by the fit
    max_iterations: int = 60


@dataclass(frozen=True, eq=False)
class SliceFit:
    """One expiry's fitted smile (total variance w(k), k = ln K/F) and how well it fits its quotes."""

    expiry: np.datetime64
    am_settled: bool
    maturity: float
    series: int                  # index into Surface.expiries
    status: str                  # "ok", "fallback" (previous snapshot's slice) or "failed" (no values)
    reason: str = ""
    knots: np.ndarray = field(default_factory=lambda: np.zeros(0))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: float = np.nan        # sqrt of the ATM total variance (z = k / scale)
    quotes: int = 0
    outliers: int = 0            # fit quotes dropped as outliers (far outside their spread after a first fit)
    rmse_iv: float = np.nan      # vol points, fair IV vs mid IV of the fit quotes
    inside_pct: float = np.nan   # share of fit quotes whose fair price is within [bid, ask]
    iterations: int = 0

    @property
    def key(self) -> tuple[np.datetime64, bool]:
        return self.expiry, self.am_settled

    @property
    def has_values(self) -> bool:
        return self.knots.size > 0

    @cached_property
    def _curvature(self) -> np.ndarray:
        return second_derivative_map(self.knots) @ self.values

    def total_variance(self, k: np.ndarray) -> np.ndarray:
        """w(k); NaN when the slice has no values."""
        k = np.ascontiguousarray(k, dtype=np.float64)
        if not self.has_values:
            return np.full(k.shape, np.nan)
        return evaluate_slice(self.knots, self.values, self._curvature, self.scale, k)[0]

    def on_grid(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Total variance and butterfly density at `k` in one pass."""
        k = np.ascontiguousarray(k, dtype=np.float64)
        w, w1, w2 = evaluate_slice(self.knots, self.values, self._curvature, self.scale, k)
        return w, butterfly_density(k, w, w1, w2)

    def density(self, k: np.ndarray) -> np.ndarray:
        """Gatheral's butterfly density g(k) (>= 0 where the slice is free of butterfly arbitrage)."""
        k = np.ascontiguousarray(k, dtype=np.float64)
        w, w1, w2 = evaluate_slice(self.knots, self.values, self._curvature, self.scale, k)
        return butterfly_density(k, w, w1, w2)


@dataclass(frozen=True, eq=False)
class FairValueFit:
    """Fair IV and price per Surface row (NaN outside the fitted expiries), the slices, and the fit's quality."""

    surface: Surface
    slices: list[SliceFit]
    fair_iv: np.ndarray
    fair_price: np.ndarray
    in_fit: np.ndarray           # the rows the slices were fitted to
    series: np.ndarray           # per row, its index into Surface.expiries (-1: none)
    fit_ms: float
    butterfly_violations: int
    calendar_violations: int

    @property
    def arbitrage_violations(self) -> int:
        return self.butterfly_violations + self.calendar_violations

    def metrics(self, rows: np.ndarray | None = None, fair_iv: np.ndarray | None = None,
                fair_price: np.ndarray | None = None) -> dict[str, float]:
        """IV RMSE to mids (vol points) and share inside [bid, ask] over `rows` (default: the fit quotes)."""
        rows = self.in_fit if rows is None else rows
        return quote_metrics(self.surface, rows, self.fair_iv if fair_iv is None else fair_iv,
                             self.fair_price if fair_price is None else fair_price)

    def trusted(self) -> np.ndarray:
        """Per slice, whether signals may be measured against it: fitted this snapshot (status ok, not a fallback
        or failure) and inside the spread of at least MIN_INSIDE_PCT % of its own quotes; one extra False entry
        at the end, for rows in no slice (index with `slice_of_row()`)."""
        return np.array([s.status == "ok" and s.inside_pct >= MIN_INSIDE_PCT for s in self.slices] + [False])

    def trusted_rows(self) -> np.ndarray:
        """The rows signals may be measured against the surface at: the liquid out-of-the-money quotes the
        slices were fitted to, in trusted slices (`trusted`)."""
        return self.in_fit & self.trusted()[self.slice_of_row()]

    def slice_of_row(self) -> np.ndarray:
        """For each Surface row, the index into `slices` of its expiry (-1: not fitted)."""
        per_series = np.full(len(self.surface.expiries) + 1, -1, dtype=np.int64)
        for i, sl in enumerate(self.slices):
            per_series[sl.series] = i
        return per_series[self.series]


def quote_metrics(surface: Surface, rows: np.ndarray, fair_iv: np.ndarray, fair_price: np.ndarray) -> dict:
    """rmse_iv (vol points, fair IV vs mid IV), inside_spread_pct (bid <= fair <= ask) and quotes over `rows`."""
    snap = surface.snapshot
    ok = rows & np.isfinite(fair_iv) & np.isfinite(surface.iv_mid)
    n = int(ok.sum())
    if n == 0:
        return {"rmse_iv": float("nan"), "inside_spread_pct": float("nan"), "quotes": 0}
    err = (fair_iv[ok] - surface.iv_mid[ok]) / VOL_POINT
    inside = (fair_price[ok] >= snap.bid[ok]) & (fair_price[ok] <= snap.ask[ok])
    return {"rmse_iv": float(np.sqrt(np.mean(err ** 2))), "inside_spread_pct": float(100.0 * inside.mean()),
            "quotes": n}


def fit_rows(surface: Surface, settings: FairValueSettings) -> np.ndarray:
    """Liquid out-of-the-money quotes the surface is fitted to (after the Surface's own quality filters)."""
    snap = surface.snapshot
    with np.errstate(invalid="ignore"):
        money = snap.strike / surface.forward
        days = surface.maturity * 365.0
        otm = np.where(snap.is_call, money >= 1.0, money < 1.0)
        return (surface.usable & otm & (snap.bid >= settings.min_bid) & (days >= settings.min_expiry_days)
                & (days <= settings.max_expiry_days) & (np.abs(money - 1.0) <= settings.max_moneyness_distance)
                & np.isfinite(surface.iv_bid) & np.isfinite(surface.iv_ask))


def cv_folds(series: np.ndarray, strike: np.ndarray, rows: np.ndarray, folds: int) -> np.ndarray:
    """Fold of each fit row: within each expiry, its strike rank mod `folds` (-1 for rows not in the fit)."""
    fold = np.full(len(rows), -1, dtype=np.int64)
    for e in np.unique(series[rows]):
        idx = np.flatnonzero(rows & (series == e))
        idx = idx[np.argsort(strike[idx], kind="stable")]
        fold[idx] = np.arange(idx.size) % folds
    return fold


def _count_violations(on_grid: list[tuple[np.ndarray, np.ndarray]]) -> tuple[int, int]:
    """(butterfly, calendar) violation counts from each slice's (w, g) on the grid, in maturity order."""
    butterfly = calendar = 0
    prev = None
    for w, g in on_grid:
        butterfly += int(np.sum(g < 0))
        if prev is not None:
            calendar += int(np.sum(w < prev * (1 - 1e-12)))
        prev = w if prev is None else np.maximum(prev, w)
    return butterfly, calendar


def _atm_total_variance(k: np.ndarray, w: np.ndarray) -> float:
    """Total variance at k = 0 from the quotes nearest the money (linear between the two that straddle it)."""
    order = np.argsort(k)
    k, w = k[order], w[order]
    j = np.searchsorted(k, 0.0)
    if j == 0:
        return float(w[0])
    if j == k.size:
        return float(w[-1])
    t = -k[j - 1] / (k[j] - k[j - 1])
    return float(w[j - 1] + t * (w[j] - w[j - 1]))


def _cold_start(knots: np.ndarray, zq: np.ndarray, w_mid: np.ndarray) -> np.ndarray:
    """Knot values of a cold start: the mids' total variance, linear between quotes."""
    o = np.argsort(zq)
    return np.interp(knots, zq[o], w_mid[o])


def _inside_pct(w: np.ndarray, w_bid: np.ndarray, w_ask: np.ndarray) -> float:
    """Share of quotes (%) whose fitted total variance lies within their bid-ask band."""
    return float(100.0 * np.mean((w >= w_bid) & (w <= w_ask))) if w.size else float("nan")


def _collapsed(inside_pct: float, last_pct: float) -> bool:
    """A fit inside fewer than MIN_INSIDE_PCT % of its quotes' spreads and fewer than half of those the last slice
    of the expiry covers on the same quotes has gone wrong: it is never passed as `ok` (NaN last: no verdict)."""
    return inside_pct < MIN_INSIDE_PCT and inside_pct < 0.5 * last_pct


class FairValueSurface:
    """Fits the arbitrage-free fair-value surface to a Surface, expiry by expiry, warm-started from the last fit."""

    def __init__(self, settings: FairValueSettings | None = None) -> None:
        self.settings = settings or FairValueSettings()

    def fit(self, surface: Surface, previous: FairValueFit | None = None,
            exclude: np.ndarray | None = None, fallback: bool = True) -> FairValueFit:
        """Fit every expiry that has fit quotes, warm-started from `previous` (whose slices are also the fallback
        when `fallback`); `exclude` (bool per row) leaves quotes out (cross-validation)."""
        started = time.perf_counter()
        st = self.settings
        snap = surface.snapshot
        rows = fit_rows(surface, st)
        use = rows if exclude is None else rows & ~exclude
        series = surface.expiry_index()
        last = {s.key: s for s in previous.slices if s.has_values} if previous else {}
        fallback_ok = fallback
        k_all = np.log(snap.strike / surface.forward)
        w_mid = surface.iv_mid ** 2 * surface.maturity
        w_bid = surface.iv_bid ** 2 * surface.maturity
        w_ask = surface.iv_ask ** 2 * surface.maturity
        k_grid = self.grid()
        lower = np.zeros(st.grid_points)
        groups = rows_by_series(series, len(surface.expiries))
        order = sorted({int(e) for e in np.unique(series[rows])}, key=lambda e: surface.expiries[e].maturity)
        slices: list[SliceFit] = []
        on_grid: list[tuple[np.ndarray, np.ndarray]] = []      # (w, g) of each slice with values, in order
        for e in order:
            ex = surface.expiries[e]
            members = groups[e]
            in_slice = members[rows[members]]
            fit_idx = members[use[members]]
            base = dict(expiry=ex.expiry, am_settled=ex.am_settled, maturity=ex.maturity, series=e)
            warm = last.get((ex.expiry, ex.am_settled))
            fallback = warm if fallback_ok else None
            if fit_idx.size < st.min_quotes:
                sl = self._fallback(base, fallback, f"{fit_idx.size} quotes (< {st.min_quotes})")
            else:
                sl = self._fit_slice(base, k_all, w_mid, w_bid, w_ask, in_slice, fit_idx, k_grid, lower, warm)
                if sl.status != "ok":
                    sl = self._fallback(base, fallback, sl.reason)
            slices.append(sl)
            if sl.has_values:
                w, g = sl.on_grid(k_grid)
                on_grid.append((w, g))
                lower = np.maximum(lower, w)
        fair_iv, fair_price = self._values(surface, slices, k_all, groups)
        butterfly, calendar = _count_violations(on_grid)
        slices = self._with_metrics(slices, surface, rows, series, fair_iv, fair_price)
        return FairValueFit(surface, slices, fair_iv, fair_price, rows, series,
                            (time.perf_counter() - started) * 1e3, butterfly, calendar)

    def grid(self) -> np.ndarray:
        """The log-moneyness grid on which the fit keeps, and the check counts, no static arbitrage."""
        st = self.settings
        return np.linspace(np.log(st.grid_moneyness[0]), np.log(st.grid_moneyness[1]), st.grid_points)

    def _fit_slice(self, base: dict, k_all, w_mid, w_bid, w_ask, slice_idx, fit_idx, k_grid, lower,
                   previous: SliceFit | None) -> SliceFit:
        st = self.settings
        theta = _atm_total_variance(k_all[fit_idx], w_mid[fit_idx])
        if not np.isfinite(theta) or theta <= 0:
            return SliceFit(**base, status="failed", reason="no ATM variance")
        scale = float(np.sqrt(theta))
        z_all = k_all[slice_idx] / scale                    # knots span every fit quote of the expiry (all folds)
        lo, hi = float(z_all.min()), float(z_all.max())
        n_knots = int(np.clip(max(np.ceil((hi - lo) / st.knot_spacing) + 1, slice_idx.size / st.quotes_per_knot),
                              4, st.max_knots))
        knots = np.linspace(lo, hi, n_knots)
        zq = k_all[fit_idx] / scale
        wq_mid, wq_bid, wq_ask = w_mid[fit_idx], w_bid[fit_idx], w_ask[fit_idx]

        def run(start: np.ndarray, weight: np.ndarray):
            return fit_slice(knots, zq, wq_mid, wq_bid, wq_ask, weight, scale, theta, k_grid / scale, lower, start,
                             st.smoothing, st.mid_weight, st.outside_weight, st.huber_delta, st.g_floor,
                             st.max_iterations)

        cold_start = _cold_start(knots, zq, wq_mid)
        weight = np.ones(fit_idx.size)
        y, iterations, converged, w_fit = run(cold_start if previous is None
                                              else previous.total_variance(knots * scale), weight)
        # the last slice of the expiry on these quotes: what the new fit must not fall far behind
        last = _inside_pct(previous.total_variance(k_all[fit_idx]), wq_bid, wq_ask) if previous else np.nan
        inside = _inside_pct(w_fit, wq_bid, wq_ask)
        if inside < MIN_INSIDE_PCT and inside < last - RETRY_DROP_PCT:
            # the objective is not convex (the butterfly and calendar rows): a warm start the earlier expiry's
            # new slice now cuts through can end in a basin far from the quotes; keep the better of warm and cold
            cy, more, cconv, cw = run(cold_start, weight)
            iterations += more
            if _inside_pct(cw, wq_bid, wq_ask) > inside:
                y, converged, w_fit = cy, cconv, cw
        if not np.all(np.isfinite(y)):
            return SliceFit(**base, status="failed", reason="fit diverged")
        # quotes far outside their spread after the first fit are outliers: refit without them
        half = 0.5 * (wq_ask - wq_bid)
        outside = np.maximum(w_fit - wq_ask, wq_bid - w_fit) / half
        outliers = outside > st.outlier_half_spreads
        if outliers.any():
            weight[outliers] = 0.0
            y, more, converged, w_fit = run(y, weight)
            iterations += more
        inside = _inside_pct(w_fit, wq_bid, wq_ask)
        if _collapsed(inside, last):
            return SliceFit(**base, status="failed", reason=f"fit collapsed: {inside:.0f}% of its quotes inside "
                            f"their spread (the last slice {last:.0f}%)")
        sl = SliceFit(**base, status="ok", knots=knots, values=y, scale=scale, quotes=int(fit_idx.size),
                      outliers=int(outliers.sum()), iterations=int(iterations))
        g = sl.on_grid(k_grid)[1]
        if np.min(g) < 0:
            return SliceFit(**base, status="failed", reason=f"butterfly density {np.min(g):.2g} < 0"
                            + ("" if converged else " (not converged)"))
        return sl

    @staticmethod
    def _fallback(base: dict, previous: SliceFit | None, reason: str) -> SliceFit:
        if previous is None:
            return SliceFit(**base, status="failed", reason=reason)
        return SliceFit(**base, status="fallback", reason=reason, knots=previous.knots, values=previous.values,
                        scale=previous.scale, quotes=0)

    @staticmethod
    def _values(surface: Surface, slices: list[SliceFit], k_all: np.ndarray,
                groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        snap = surface.snapshot
        fair_iv = np.full(len(snap), np.nan)
        for sl in slices:
            if not sl.has_values:
                continue
            idx = groups[sl.series]
            idx = idx[np.isfinite(k_all[idx])]
            w = sl.total_variance(k_all[idx])
            with np.errstate(invalid="ignore"):
                fair_iv[idx] = np.sqrt(np.where(w > 0, w, np.nan) / surface.maturity[idx])
        ok = np.isfinite(fair_iv)
        fair_price = np.full(len(snap), np.nan)
        fair_price[ok] = black_price(surface.forward[ok], snap.strike[ok], surface.maturity[ok],
                                     surface.discount[ok], fair_iv[ok], snap.is_call[ok])
        return fair_iv, fair_price

    @staticmethod
    def _with_metrics(slices: list[SliceFit], surface: Surface, rows: np.ndarray, series: np.ndarray,
                      fair_iv: np.ndarray, fair_price: np.ndarray) -> list[SliceFit]:
        """Per-slice IV RMSE to mids and share inside the spread over its fit quotes (one pass over the chain)."""
        snap = surface.snapshot
        ok = rows & np.isfinite(fair_iv) & np.isfinite(surface.iv_mid)
        nseries = len(surface.expiries)
        idx = series[ok]
        err2 = ((fair_iv[ok] - surface.iv_mid[ok]) / VOL_POINT) ** 2
        inside = ((fair_price[ok] >= snap.bid[ok]) & (fair_price[ok] <= snap.ask[ok])).astype(float)
        n = np.bincount(idx, minlength=nseries)
        sse = np.bincount(idx, err2, minlength=nseries)
        hits = np.bincount(idx, inside, minlength=nseries)
        out = []
        for sl in slices:
            m = n[sl.series]
            if not sl.has_values or m == 0:
                out.append(sl)
                continue
            out.append(replace(sl, rmse_iv=float(np.sqrt(sse[sl.series] / m)),
                               inside_pct=float(100.0 * hits[sl.series] / m)))
        return out

    def violations(self, slices: list[SliceFit]) -> tuple[int, int]:
        """Static arbitrage of fitted slices on the grid: points with butterfly density g < 0, and points where
        total variance falls from one expiry to the next (in maturity order)."""
        k = self.grid()
        ordered = sorted((s for s in slices if s.has_values), key=lambda s: s.maturity)
        return _count_violations([s.on_grid(k) for s in ordered])

    def cross_validate(self, surface: Surface, full: FairValueFit, folds: int) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-sample fair IV and price per row: each fit quote valued by the fit without its fold (strike
        rank mod `folds` within its expiry); other rows keep the full fit's values. The fold fits start cold:
        a start from the full fit would carry the left-out quotes into a fit that stops short of exact
        convergence."""
        fold = cv_folds(full.series, surface.snapshot.strike, full.in_fit, folds)
        iv, price = full.fair_iv.copy(), full.fair_price.copy()
        for f in range(folds):
            out = fold == f
            part = self.fit(surface, None, exclude=out, fallback=False)
            iv[out], price[out] = part.fair_iv[out], part.fair_price[out]
        return iv, price
