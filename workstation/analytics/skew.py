"""Skew and term metrics of a smile, per expiry and at constant maturities, in vol points.

Deltas are Black-76 forward deltas at each strike's own vol (call delta N(d1); a 25-delta put is a call delta
of 0.75). Per expiry, from out-of-the-money vols (puts below the forward, calls above):
  atm_vol     vol at the forward (interpolated in log-moneyness)
  rr25, rr10  risk reversal: vol of the 25 (10) delta call minus the 25 (10) delta put
  bf25, bf10  butterfly: mean of the two wings minus the ATM vol
  slope, curvature  dσ/dΔ and d²σ/dΔ² at Δ = 0.5 of a quadratic fit of vol against call delta on
              0.05..0.95, vol points per unit of delta (slope > 0: puts richer than calls)
Constant maturities (7, 30, ... 365 days) interpolate each fixed-delta vol in total variance σ²T, linear in T
between the two expiries around it (NaN outside the listed range: never extrapolated). `term_slope` is the
30-to-90-day ATM slope, vol points per 30 days.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .smile_kernel import ATM, C10, C25, CURVATURE, P10, P25, SLOPE, smile_table

CONSTANT_MATURITIES = (7, 30, 60, 90, 180, 365)
FIELDS = ("atm_vol", "rr25", "bf25", "rr10", "bf10", "slope", "curvature")
WING_DELTAS = {"c25": 0.25, "p25": 0.75, "c10": 0.10, "p10": 0.90}


@dataclass(frozen=True)
class SmileMetrics:
    """Metrics of one smile (one expiry, or one constant maturity); vols in vol points, `days` calendar days."""

    days: float
    forward: float
    atm_vol: float = np.nan
    rr25: float = np.nan
    bf25: float = np.nan
    rr10: float = np.nan
    bf10: float = np.nan
    slope: float = np.nan
    curvature: float = np.nan
    wings: dict = field(default_factory=dict, repr=False)   # c25/p25/c10/p10 vols, vol points
    label: str = ""

    def as_dict(self) -> dict:
        out = {"days": _r(self.days), "forward": _r(self.forward)}
        out.update({name: _r(getattr(self, name)) for name in FIELDS})
        return out


def _r(x: float, nd: int = 4) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def smile_metrics(strike: np.ndarray, vol: np.ndarray, forward: float, maturity: float,
                  label: str = "") -> SmileMetrics:
    """Metrics of one expiry's smile from strikes and (decimal) vols; NaN where the smile does not reach."""
    strike, vol = np.ascontiguousarray(strike, float), np.ascontiguousarray(vol, float)
    one = np.array([0]), np.array([strike.size])
    row = smile_table(strike, vol, np.array([float(forward)]), np.array([float(maturity)]), *one)[0]
    return _from_row(row, maturity * 365.0, forward, label)


def _from_row(row: np.ndarray, days: float, forward: float, label: str) -> SmileMetrics:
    """SmileMetrics (vol points) from one row of `smile_table` (decimal vols)."""
    vp = 100.0 * row
    wings = {"c25": vp[C25], "p25": vp[P25], "c10": vp[C10], "p10": vp[P10]}
    return _metrics(days, forward, vp[ATM], wings, vp[SLOPE], vp[CURVATURE], label)


def _metrics(days: float, forward: float, atm: float, wings: dict, slope: float, curvature: float,
             label: str = "") -> SmileMetrics:
    """RR and BF from ATM and wing vols (vol points)."""
    return SmileMetrics(days, forward, atm,
                        wings["c25"] - wings["p25"], 0.5 * (wings["c25"] + wings["p25"]) - atm,
                        wings["c10"] - wings["p10"], 0.5 * (wings["c10"] + wings["p10"]) - atm,
                        slope, curvature, wings, label)


def _interp_total_variance(t: np.ndarray, vol: np.ndarray, target: float) -> float:
    """Vol (same units) at `target` years, linear in total variance σ²T between the expiries around it."""
    ok = np.isfinite(vol) & (t > 0)
    t, vol = t[ok], vol[ok]
    if not len(t) or target < t[0] - 1e-9 or target > t[-1] + 1e-9:
        return np.nan
    w = np.interp(target, t, vol * vol * t)
    return float(np.sqrt(max(w, 0.0) / target))


def constant_maturities(per_expiry: list[SmileMetrics], targets=CONSTANT_MATURITIES) -> dict[int, SmileMetrics]:
    """Metrics at fixed days to expiry, each fixed-delta vol interpolated in total variance (per column, over
    the expiries where that vol exists); forward, slope and curvature linearly in T."""
    rows = sorted((m for m in per_expiry if np.isfinite(m.days) and m.days > 0), key=lambda m: m.days)
    if not rows:
        return {days: SmileMetrics(float(days), np.nan, label=f"{days}d") for days in targets}
    t = np.array([m.days / 365.0 for m in rows])
    vols = np.array([[m.atm_vol, *(m.wings.get(name, np.nan) for name in WING_DELTAS)] for m in rows], float)
    linear = np.array([[m.forward, m.slope, m.curvature] for m in rows], float)
    out: dict[int, SmileMetrics] = {}
    for days in targets:
        target = days / 365.0
        inside = t[0] - 1e-9 <= target <= t[-1] + 1e-9
        vol = [_interp_total_variance(t, vols[:, j], target) for j in range(vols.shape[1])]
        forward, slope, curvature = (np.interp(target, t, linear[:, j]) if inside else np.nan for j in range(3))
        out[days] = _metrics(float(days), float(forward), vol[0], dict(zip(WING_DELTAS, vol[1:])),
                             float(slope), float(curvature), f"{days}d")
    return out


def term_slope(cm: dict[int, SmileMetrics]) -> float:
    """ATM vol at 90 days minus at 30 days, per 30 days (vol points)."""
    a, b = cm.get(30), cm.get(90)
    if a is None or b is None:
        return np.nan
    return (b.atm_vol - a.atm_vol) / 2.0


@dataclass(frozen=True)
class SkewReport:
    """Per expiry and constant-maturity metrics of one source ("market" quotes or the "model")."""

    source: str
    per_expiry: list[SmileMetrics]
    constant: dict[int, SmileMetrics]

    @property
    def term_slope(self) -> float:
        return term_slope(self.constant)

    def flat(self) -> dict[str, float]:
        """One history row: `<source>_<days>_<field>` for each constant maturity, plus the term slope."""
        row = {f"{self.source}_term_slope": float(self.term_slope)}
        for days, m in self.constant.items():
            for name in (*FIELDS, "forward"):
                row[f"{self.source}_{days}_{name}"] = float(getattr(m, name))
        return row


def skew_report(source: str, strike: np.ndarray, is_call: np.ndarray, vol: np.ndarray, forward: np.ndarray,
                maturity: np.ndarray, series: np.ndarray, labels: list[str], usable: np.ndarray | None = None
                ) -> SkewReport:
    """Metrics per expiry series (rows grouped by `series`, -1 = none) from out-of-the-money vols."""
    otm = np.where(is_call, strike >= forward, strike < forward)
    keep = otm & np.isfinite(vol) & (series >= 0)
    if usable is not None:
        keep &= usable
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(series[idx], kind="stable")]      # grouped by series, each in the input's order
    bounds = np.searchsorted(series[idx], np.arange(len(labels) + 1))
    present = np.flatnonzero(np.diff(bounds) >= 3)
    starts, ends = bounds[present], bounds[present + 1]
    first = idx[starts]
    table = smile_table(np.ascontiguousarray(strike[idx], float), np.ascontiguousarray(vol[idx], float),
                        forward[first].astype(float), maturity[first].astype(float), starts, ends)
    per = [_from_row(row, float(maturity[i]) * 365.0, float(forward[i]), labels[s])
           for row, i, s in zip(table, first, present)]
    return SkewReport(source, per, constant_maturities(per))
