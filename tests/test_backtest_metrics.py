"""Backtest metrics a trader accepts: Sharpe and Sortino only from at least 20 trading days of daily P&L
(checked against the formulas written out here), "n/a" with the reason below that; a hit rate per closed
trade, never "None"."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np

from workstation.backtest.report import compute_metrics, hit_rate_text, ratios_text
from workstation.backtest.runner import BacktestResult


def _result(daily: list[float], snapshots_per_day: int = 12) -> BacktestResult:
    """Equity rows: `snapshots_per_day` snapshots an hour apart on consecutive weekdays, ending each day at the
    cumulative P&L (noise inside the day: it must not count)."""
    rng = np.random.default_rng(4)
    rows, total, day = [], 0.0, datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
    for pnl in daily:
        while day.weekday() >= 5:
            day += timedelta(days=1)
        start = total
        for i in range(snapshots_per_day):
            last = i == snapshots_per_day - 1
            value = start + pnl if last else start + float(rng.normal(0, 500))
            rows.append({"timestamp": day + timedelta(minutes=30 * i), "total": value, "realized": 0.0,
                         "unrealized": value, "fees": 0.0})
        total = start + pnl
        day += timedelta(days=1)
    return BacktestResult(settings={}, data="synthetic", equity=rows, snapshots=len(rows))


def test_fewer_than_20_days_gives_no_ratios_and_says_why():
    m = compute_metrics(_result([100.0, -50.0, 80.0, 20.0, -10.0]), [])
    assert m["sharpe"] is None and m["sortino"] is None and m["trading_days"] == 5
    assert ratios_text(m) == "n/a: fewer than 20 days (5)"
    assert m["hit_rate"] is None and hit_rate_text(m["hit_rate"], 0) == "n/a: no closed trades"


def test_sharpe_and_sortino_from_daily_pnl_with_20_days_or_more():
    daily = list(np.random.default_rng(9).normal(150.0, 900.0, 24).round(2))
    m = compute_metrics(_result(daily), [])
    x = np.array(daily)
    sharpe = x.mean() / x.std(ddof=1) * math.sqrt(252)
    sortino = x.mean() / math.sqrt(np.mean(np.minimum(x, 0.0) ** 2)) * math.sqrt(252)
    assert m["trading_days"] == 24 and m["ratio_basis"] == "daily"
    assert math.isclose(m["sharpe"], sharpe, rel_tol=1e-3) and math.isclose(m["sortino"], sortino, rel_tol=1e-3)
    assert ratios_text(m).startswith(f"Sharpe {m['sharpe']} / Sortino {m['sortino']}")


def test_hit_rate_is_per_closed_trade():
    assert hit_rate_text(0.625, 8) == "62.5% of 8 closed trades"
