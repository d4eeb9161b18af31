"""Realised volatility of the index, annualised, in vol points, and the vol cone.

close_to_close: zero-mean estimator sqrt(252/n Σ r²) of daily log returns (the convention of variance swaps).
intraday: the last index price in each 5-minute bar, log returns between bars, annualised with 78 bars a
session and 252 sessions a year. parkinson: sqrt(252/(4 ln 2 n) Σ ln(H/L)²) over daily highs and lows.
The variance risk premium is shown as implied minus realised, in vol points.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TRADING_DAYS = 252.0
BARS_PER_DAY = 78.0                 # 6.5-hour session / 5 minutes
BAR_SECONDS = 300.0
CONE_WINDOWS = (10, 21, 63)
CONE_PERCENTILES = (0, 25, 50, 75, 100)


def close_to_close(closes: np.ndarray, window: int | None = None) -> float:
    """Realised vol (vol points) of the last `window` daily log returns (all when None); NaN under 2 closes."""
    closes = np.asarray(closes, float)
    closes = closes[np.isfinite(closes) & (closes > 0)]
    r = np.diff(np.log(closes))
    if window is not None:
        r = r[-window:]
    if not len(r):
        return np.nan
    return 100.0 * float(np.sqrt(TRADING_DAYS * np.mean(r * r)))


def bar_closes(seconds: np.ndarray, prices: np.ndarray, bar_s: float = BAR_SECONDS) -> np.ndarray:
    """The last price in each `bar_s` bar (seconds since any origin, ascending), empty bars skipped."""
    seconds, prices = np.asarray(seconds, float), np.asarray(prices, float)
    ok = np.isfinite(seconds) & np.isfinite(prices) & (prices > 0)
    seconds, prices = seconds[ok], prices[ok]
    if not len(seconds):
        return prices
    bar = np.floor((seconds - seconds[0]) / bar_s).astype(np.int64)
    last = np.r_[bar[1:] != bar[:-1], True]
    return prices[last]


def intraday(seconds: np.ndarray, prices: np.ndarray, bar_s: float = BAR_SECONDS) -> tuple[float, int]:
    """(realised vol in vol points, number of returns) from bar-to-bar log returns of one session."""
    closes = bar_closes(seconds, prices, bar_s)
    r = np.diff(np.log(closes))
    if not len(r):
        return np.nan, 0
    per_year = TRADING_DAYS * BARS_PER_DAY * BAR_SECONDS / bar_s
    return 100.0 * float(np.sqrt(per_year * np.mean(r * r))), len(r)


def parkinson(highs: np.ndarray, lows: np.ndarray) -> float:
    """Parkinson's range estimator over daily highs and lows (vol points)."""
    h, lo = np.asarray(highs, float), np.asarray(lows, float)
    ok = np.isfinite(h) & np.isfinite(lo) & (lo > 0) & (h >= lo)
    if not ok.any():
        return np.nan
    hl = np.log(h[ok] / lo[ok])
    return 100.0 * float(np.sqrt(TRADING_DAYS * np.mean(hl * hl) / (4.0 * np.log(2.0))))


@dataclass(frozen=True)
class VolCone:
    """Realised vol over each window, by percentile of its history, and today's value (vol points)."""

    windows: tuple[int, ...]
    percentiles: tuple[int, ...]
    levels: np.ndarray               # len(windows) x len(percentiles), NaN where history is too short
    current: np.ndarray              # len(windows)

    def as_dict(self) -> dict:
        return {str(w): {"current": _r(self.current[i]),
                         **{f"p{p}": _r(self.levels[i, j]) for j, p in enumerate(self.percentiles)}}
                for i, w in enumerate(self.windows)}


def vol_cone(closes: np.ndarray, windows=CONE_WINDOWS, percentiles=CONE_PERCENTILES) -> VolCone:
    """Rolling close-to-close realised vol for each window; percentiles need two full windows of history."""
    closes = np.asarray(closes, float)
    r = np.diff(np.log(closes[np.isfinite(closes) & (closes > 0)]))
    levels = np.full((len(windows), len(percentiles)), np.nan)
    current = np.full(len(windows), np.nan)
    for i, w in enumerate(windows):
        if len(r) < w:
            continue
        sq = np.convolve(r * r, np.ones(w), mode="valid") / w
        rolling = 100.0 * np.sqrt(TRADING_DAYS * sq)
        current[i] = rolling[-1]
        if len(rolling) >= w:
            levels[i] = np.percentile(rolling, percentiles)
    return VolCone(tuple(windows), tuple(percentiles), levels, current)


def _r(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


@dataclass(frozen=True)
class RealisedReport:
    """Realised vs implied at one instant; vols in vol points, `window` says what `value` is measured over."""

    value: float
    window: str
    observations: int
    intraday: float
    close_to_close: float
    parkinson: float
    implied_30d: float
    cone: VolCone | None = field(default=None, repr=False)

    @property
    def vrp(self) -> float:
        """Variance risk premium, as implied (30-day ATM) minus realised, vol points."""
        return self.implied_30d - self.value

    def as_dict(self) -> dict:
        return {"value": _r(self.value), "window": self.window, "observations": self.observations,
                "intraday_5min": _r(self.intraday), "close_to_close": _r(self.close_to_close),
                "parkinson": _r(self.parkinson), "implied_30d": _r(self.implied_30d), "vrp": _r(self.vrp),
                "cone": self.cone.as_dict() if self.cone is not None else None}


def realised_report(day_seconds: np.ndarray, day_prices: np.ndarray, closes: np.ndarray, highs: np.ndarray,
                    lows: np.ndarray, implied_30d: float, window: int = 21) -> RealisedReport:
    """Today's intraday 5-min vol, close-to-close over `window` days of recorded closes (today's last price
    counts as today's close), Parkinson over the recorded days' ranges; the headline is close-to-close when
    `window` days exist, else intraday."""
    iv, n_intraday = intraday(day_seconds, day_prices)
    closes = np.asarray(closes, float)
    ctc = close_to_close(closes, window)
    n_days = max(len(closes) - 1, 0)
    cone = vol_cone(closes) if n_days >= CONE_WINDOWS[0] else None
    if n_days >= window:
        value, label, n = ctc, f"close-to-close {window}d", min(n_days, window)
    else:
        value, label, n = iv, "intraday 5-min", n_intraday
    return RealisedReport(value, label, n, iv, ctc, parkinson(highs, lows), implied_30d, cone)
