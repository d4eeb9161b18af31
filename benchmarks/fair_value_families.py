"""Which smile family and loss: the measurements behind docs/fair-value.md (out of sample, --cv 5, both chains).

Rows: raw SVI per expiry (5 parameters) fitted by least squares to mid IVs, and to the bid-ask band with the
fair-value loss; the natural-spline slices of `strategy.fair_value` fitted to mids only, and to the band at
several smoothing weights. SVI fits use scipy's least_squares (these are experiments, not the product path).
Violations: points of the no-arbitrage grid (K/F 0.5-1.6) with butterfly density g < 0, and with total variance
falling from one expiry to the next. Writes benchmarks/results/fair_value_families.json.

Run: .venv/bin/python benchmarks/fair_value_families.py
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fair_value import CHAINS  # noqa: E402
from workstation.config import Settings  # noqa: E402
from workstation.fit_command import fit_surface_for  # noqa: E402
from workstation.market.replay import read_cboe_csv  # noqa: E402
from workstation.pricing import black_price  # noqa: E402
from workstation.pricing.smile_spline import butterfly_density  # noqa: E402
from workstation.strategy.fair_value import FairValueSettings, FairValueSurface, cv_folds, quote_metrics  # noqa: E402

FOLDS = 5


def svi(p, k):
    a, b, rho, m, s = p
    x = k - m
    r = np.sqrt(x * x + s * s)
    return a + b * (rho * x + r), b * (rho + x / r), b * s * s / r ** 3


def fit_svi(k, wb, wm, wa, band: bool):
    """Raw SVI to one expiry: mid total variance (scaled by its half-spread), or the band loss."""
    h = np.maximum(0.5 * (wa - wb), 1e-12)
    theta = float(np.interp(0.0, np.sort(k), wm[np.argsort(k)]))

    def resid(p):
        w = svi(p, k)[0]
        if not band:
            return (w - wm) / h
        out = np.maximum(w - wa, 0) + np.maximum(wb - w, 0)
        return np.r_[np.sqrt(0.05) * (w - wm) / h, out / h]
    p0 = [0.5 * theta, 0.1, -0.5, 0.0, 0.1]
    lo, hi = [-1.0, 1e-6, -0.999, -1.0, 1e-4], [1.0, 5.0, 0.999, 1.0, 2.0]
    return least_squares(resid, p0, bounds=(lo, hi), loss="huber" if band else "linear", f_scale=2.0,
                         max_nfev=2000).x


def svi_surface(surface, rows, band, exclude=None):
    """Per-row fair IV/price from independent SVI slices, and the grid violations."""
    snap = surface.snapshot
    series = surface.expiry_index()
    k_all = np.log(snap.strike / surface.forward)
    t = surface.maturity
    wm, wb, wa = surface.iv_mid ** 2 * t, surface.iv_bid ** 2 * t, surface.iv_ask ** 2 * t
    use = rows if exclude is None else rows & ~exclude
    iv = np.full(len(snap), np.nan)
    grid = np.linspace(np.log(0.5), np.log(1.6), 401)
    slices = []
    for e in sorted(set(series[rows].tolist()), key=lambda e: surface.expiries[e].maturity):
        idx = np.flatnonzero(use & (series == e))
        p = fit_svi(k_all[idx], wb[idx], wm[idx], wa[idx], band)
        allr = np.flatnonzero(series == e)
        w = svi(p, k_all[allr])[0]
        iv[allr] = np.sqrt(np.maximum(w, 1e-12) / t[allr])
        slices.append(svi(p, grid))
    butterfly = sum(int(np.sum(butterfly_density(grid, *s) < 0)) for s in slices)
    calendar, prev = 0, None
    for s in slices:
        if prev is not None:
            calendar += int(np.sum(s[0] < prev))
        prev = s[0] if prev is None else np.maximum(prev, s[0])
    ok = np.isfinite(iv)
    price = np.full(len(snap), np.nan)
    price[ok] = black_price(surface.forward[ok], snap.strike[ok], t[ok], surface.discount[ok], iv[ok],
                            snap.is_call[ok])
    return iv, price, butterfly + calendar


def cv_values(fit_fn, surface, rows):
    fold = cv_folds(surface.expiry_index(), surface.snapshot.strike, rows, FOLDS)
    iv = np.full(len(rows), np.nan)
    price = np.full(len(rows), np.nan)
    for f in range(FOLDS):
        out = fold == f
        i, p, _ = fit_fn(out)
        iv[out], price[out] = i[out], p[out]
    return iv, price


def measure(surface, rows, fit_fn) -> dict:
    iv, price, violations = fit_fn(None)
    cv_iv, cv_price = cv_values(fit_fn, surface, rows)
    days = surface.maturity * 365
    m = quote_metrics(surface, rows, cv_iv, cv_price)
    return {"inside_pct_cv": m["inside_spread_pct"], "rmse_iv_cv": m["rmse_iv"],
            "short_inside_pct_cv": quote_metrics(surface, rows & (days <= 30), cv_iv, cv_price)["inside_spread_pct"],
            "long_inside_pct_cv": quote_metrics(surface, rows & (days > 180), cv_iv, cv_price)["inside_spread_pct"],
            "violations": violations}


def spline_fn(surface, settings):
    fv = FairValueSurface(settings)

    def fit(exclude):
        r = fv.fit(surface, exclude=exclude, fallback=False)
        return r.fair_iv, r.fair_price, r.arbitrage_violations
    return fit


def main() -> None:
    base = FairValueSettings()
    band_only = dataclasses.replace(base, mid_weight=0.05, smoothing=0.05)
    variants = {
        "SVI, least squares on mids": lambda s, r: (lambda ex: svi_surface(s, r, False, ex)),
        "SVI, bid-ask band loss": lambda s, r: (lambda ex: svi_surface(s, r, True, ex)),
        "spline, mids only (no band term)": lambda s, r: spline_fn(s, dataclasses.replace(base, outside_weight=0.0)),
        "spline, band only (mid weight 0.05, smoothing 0.05)": lambda s, r: spline_fn(s, band_only),
        "spline, band + mid, smoothing 0.05": lambda s, r: spline_fn(s, dataclasses.replace(base, smoothing=0.05)),
        f"spline, band + mid, smoothing {base.smoothing:g} (default)": lambda s, r: spline_fn(s, base),
        "spline, band + mid, smoothing 50": lambda s, r: spline_fn(s, dataclasses.replace(base, smoothing=50.0)),
    }
    results = {}
    for label, path in CHAINS.items():
        if not path.exists():
            continue
        surface = fit_surface_for(read_cboe_csv(path), Settings())
        rows = FairValueSurface().fit(surface).in_fit
        results[label] = {name: measure(surface, rows, make(surface, rows)) for name, make in variants.items()}
    (ROOT / "benchmarks" / "results" / "fair_value_families.json").write_text(json.dumps(results, indent=2))
    print("| chain | family and loss | inside % (cv) | RMSE vp (cv) | 7–30 d inside % | > 180 d inside % | "
          "violations |")
    print("|---|---|---|---|---|---|---|")
    for label, chain in results.items():
        for name, r in chain.items():
            fmt = lambda x: "–" if x is None or not np.isfinite(x) else f"{x:.1f}"
            print(f"| {label} | {name} | {fmt(r['inside_pct_cv'])} | {r['rmse_iv_cv']:.3f} | "
                  f"{fmt(r['short_inside_pct_cv'])} | {fmt(r['long_inside_pct_cv'])} | {r['violations']} |")


if __name__ == "__main__":
    main()
