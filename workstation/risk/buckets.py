"""Dollar Greeks by expiry, by expiry bucket and by strike region; vega by tenor, weighted by √(30/days).

Buckets by calendar days to expiry (from the New York trade day): <=7d, 8-30d, 31-90d, 91-365d, >1y. Every
position lands in exactly one bucket (a contract without an expiry in the first), so the buckets sum to the
portfolio's Greeks. Weighted vega = vega$ x √(30 / max(days, 1)): short expiries move more per vol point of the
30-day vol (Risk Navigator's term factor).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date

import numpy as np

from ..portfolio.greeks import DollarGreeks

BUCKETS: tuple[tuple[str, int, float], ...] = (
    ("<=7d", 0, 7), ("8-30d", 8, 30), ("31-90d", 31, 90), ("91-365d", 91, 365), (">1y", 366, math.inf))
LABELS = tuple(b[0] for b in BUCKETS)
REGIONS: tuple[tuple[str, float, float], ...] = (
    ("<90%", 0.0, 0.90), ("90-97%", 0.90, 0.97), ("97-103%", 0.97, 1.03), ("103-110%", 1.03, 1.10),
    (">110%", 1.10, math.inf))
TERM_DAYS = 30.0


def days_to(expiry: date | None, today: date) -> float:
    """Calendar days from `today` to `expiry` (0 without an expiry)."""
    return float((expiry - today).days) if expiry is not None else 0.0


def bucket_of(days: float) -> str:
    """The bucket label of an expiry `days` calendar days away."""
    for label, lo, hi in BUCKETS:
        if days <= hi:
            return label
    return LABELS[-1]


def term_weight(days) -> np.ndarray:
    """√(30 / max(days, 1)): the vega weight of an expiry."""
    return np.sqrt(TERM_DAYS / np.maximum(np.asarray(days, float), 1.0))


def by_bucket(items: Iterable[tuple[date | None, DollarGreeks]], today: date) -> dict[str, DollarGreeks]:
    """Sum of (expiry, dollar Greeks) per bucket; every bucket present (zero when empty)."""
    out = {label: DollarGreeks() for label in LABELS}
    for expiry, greeks in items:
        label = bucket_of(days_to(expiry, today))
        out[label] = out[label] + greeks
    return out


def by_expiry(items: Iterable[tuple[date | None, DollarGreeks]]) -> dict[date | None, DollarGreeks]:
    """Sum of dollar Greeks per expiry date."""
    out: dict[date | None, DollarGreeks] = {}
    for expiry, greeks in items:
        out[expiry] = out.get(expiry, DollarGreeks()) + greeks
    return out


def weighted_vega(items: Iterable[tuple[date | None, DollarGreeks]], today: date) -> float:
    """Σ vega$ x √(30 / days): the book's vega to a move of the 30-day vol that shorter expiries amplify."""
    return float(sum(g.vega * term_weight(days_to(e, today)) for e, g in items))


def region_of(moneyness: float) -> str:
    """Strike region of strike / forward (NaN, e.g. a future: "future")."""
    if not math.isfinite(moneyness):
        return "future"
    for label, lo, hi in REGIONS:
        if lo <= moneyness < hi:
            return label
    return REGIONS[-1][0]


def by_region(items: Iterable[tuple[float, DollarGreeks]]) -> dict[str, DollarGreeks]:
    """Sum of (strike / forward, dollar Greeks) per strike region."""
    out = {label: DollarGreeks() for label, _, _ in REGIONS}
    for money, greeks in items:
        label = region_of(money)
        out[label] = out.get(label, DollarGreeks()) + greeks
    return out


def bucket_table(items: list[tuple[date | None, DollarGreeks]], today: date) -> dict:
    """Per bucket label: delta, gamma, vega, theta and weighted vega ($), for reports and the headless summary."""
    out = {}
    for label, g in by_bucket(items, today).items():
        out[label] = g.as_dict()
    weights: dict[str, float] = dict.fromkeys(LABELS, 0.0)
    for expiry, g in items:
        days = days_to(expiry, today)
        weights[bucket_of(days)] += float(g.vega * term_weight(days))
    for label in out:
        out[label]["weighted_vega"] = weights[label]
    return out


CONFIG_FIELDS = dict(zip(("upto_7d", "d8_30", "d31_90", "d91_365", "over_1y"), LABELS))   # risk.bucket_limits


def bucket_limits(cfg) -> dict[str, dict[str, float]]:
    """`risk.bucket_limits` as {bucket label: {greek: limit}} (only the limits that are set)."""
    out = {}
    for name, label in CONFIG_FIELDS.items():
        limit = getattr(cfg, name, None)
        set_ = {g: float(v) for g in ("delta", "gamma", "vega", "theta")
                if (v := getattr(limit, g, None)) is not None}
        if set_:
            out[label] = set_
    return out
