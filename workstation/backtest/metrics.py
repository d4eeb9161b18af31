"""The backtest's metrics (metrics.json): P&L, daily P&L, Sharpe/Sortino on enough days, drawdown, hit rates,
turnover, attribution, fit quality and the reconciliation of the total P&L with the trades; and their wording."""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np

from workstation.domain.snapshot import NEW_YORK

from .runner import ATTRIBUTION_PARTS, BacktestResult
from .trades import Trade

TRADING_DAYS = 252
MIN_RATIO_DAYS = 20            # Sharpe and Sortino need this many trading days of P&L, else "n/a"


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else round(float(x), nd)


def _stats(values: list[float]) -> dict[str, float | None]:
    a = np.array([v for v in values if v is not None and math.isfinite(v)], float)
    if not len(a):
        return {"count": 0, "mean": None, "median": None, "p95": None, "max": None, "min": None}
    return {"count": int(len(a)), "mean": _r(a.mean()), "median": _r(np.median(a)),
            "p95": _r(np.percentile(a, 95)), "max": _r(a.max()), "min": _r(a.min())}


def daily_pnl(result: BacktestResult) -> "OrderedDict[str, float]":
    """P&L per New York trade date: that day's last equity minus the previous day's."""
    out: OrderedDict[str, float] = OrderedDict()
    last_by_day: OrderedDict[str, float] = OrderedDict()
    for row in result.equity:
        last_by_day[row["timestamp"].astimezone(NEW_YORK).date().isoformat()] = row["total"]
    prev = 0.0
    for day, value in last_by_day.items():
        out[day] = value - prev
        prev = value
    return out


def _ratios(increments: np.ndarray, periods_per_year: float) -> tuple[float | None, float | None]:
    """Annualised Sharpe and Sortino of P&L increments (zero risk-free rate)."""
    if len(increments) < 2:
        return None, None
    mean, sd = increments.mean(), increments.std(ddof=1)
    downside = math.sqrt(float(np.mean(np.minimum(increments, 0.0) ** 2)))
    scale = math.sqrt(periods_per_year)
    sharpe = mean / sd * scale if sd > 0 else None
    sortino = mean / downside * scale if downside > 0 else None
    return sharpe, sortino


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Dollar drawdown from the running peak (<= 0) at each point; the peak starts at 0 (flat book)."""
    peak = np.maximum.accumulate(np.maximum(equity, 0.0)) if len(equity) else equity
    return equity - peak


def compute_metrics(result: BacktestResult, trades: list[Trade]) -> dict[str, Any]:
    eq = np.array([r["total"] for r in result.equity], float)
    times = [r["timestamp"] for r in result.equity]
    total = float(eq[-1]) if len(eq) else 0.0
    fees = float(sum(f.commission for f in result.fills))
    days = daily_pnl(result)
    # annualised from daily P&L only, and only with enough days: an hour of snapshot P&L annualised is noise
    basis = "daily" if len(days) >= MIN_RATIO_DAYS else f"n/a: fewer than {MIN_RATIO_DAYS} days"
    sharpe, sortino = (_ratios(np.array(list(days.values())), TRADING_DAYS) if len(days) >= MIN_RATIO_DAYS
                       else (None, None))
    dd = drawdown(eq)
    worst = int(np.argmin(dd)) if len(dd) else 0
    closed = [t for t in trades if t.status == "closed"]
    signal_closed = [t for t in closed if t.purpose == "signal"]
    sum_gross = float(sum(t.gross_pnl for t in trades))
    sum_fees = float(sum(t.fees for t in trades))
    fits = result.fits
    accepted = [f for f in fits if f["accepted"]]
    by_purpose: dict[str, int] = {}
    for t in trades:
        by_purpose[t.purpose] = by_purpose.get(t.purpose, 0) + 1
    attr = result.attribution
    return {
        "data": result.data,
        "period": {"first": times[0].isoformat() if times else None, "last": times[-1].isoformat() if times else None},
        "snapshots": result.snapshots,
        "interrupted": result.interrupted,
        "cycle_failures": result.cycle_failures,
        "skipped": dict(result.skipped),                # data rows / snapshots skipped while reading, by reason
        "pnl": {"total": _r(total, 2), "realized": _r(result.equity[-1]["realized"], 2) if result.equity else 0.0,
                "unrealized": _r(result.equity[-1]["unrealized"], 2) if result.equity else 0.0,
                "fees": _r(fees, 2), "gross": _r(total + fees, 2),
                "daily": {d: _r(v, 2) for d, v in days.items()}},
        "sharpe": _r(sharpe), "sortino": _r(sortino), "ratio_basis": basis, "trading_days": len(days),
        "max_drawdown": _r(float(-dd.min()) if len(dd) else 0.0, 2),
        "max_drawdown_at": times[worst].isoformat() if len(dd) and dd.min() < 0 else None,
        "hit_rate": _r(sum(t.net_pnl > 0 for t in closed) / len(closed)) if closed else None,
        "hit_rate_signals": _r(sum(t.net_pnl > 0 for t in signal_closed) / len(signal_closed)) if signal_closed else None,
        "trades": {"total": len(trades), "closed": len(closed), "open": len(trades) - len(closed),
                   "by_purpose": by_purpose,
                   "avg_net_pnl": _r(float(np.mean([t.net_pnl for t in closed])), 2) if closed else None},
        "fills": len(result.fills),
        "turnover": {"premium": _r(sum(abs(f.notional) for f in result.fills if f.liquidity != "settlement"), 2),
                     "contracts": int(sum(f.quantity for f in result.fills if f.liquidity != "settlement"))},
        "fees": _r(fees, 2),
        "attribution": {k: _r(attr.get(k, 0.0), 2) for k in (*ATTRIBUTION_PARTS, "trading", "fees")},
        "fit_rmse_iv": {**_stats([f["rmse_iv"] for f in accepted]), "fits": len(fits), "accepted": len(accepted)},
        "signals": result.summary.get("signals", {}),
        "orders": result.summary.get("orders", {}),
        "order_ids": sorted(result.orders),
        "final_trading_state": result.summary.get("trading_state"),
        "reconciliation": {"total_pnl": _r(total, 6), "sum_trade_gross_pnl": _r(sum_gross, 6),
                           "sum_trade_fees": _r(sum_fees, 6),
                           "difference": _r(total - (sum_gross - sum_fees), 9)},
        "settings": result.settings,
        # the only wall-clock numbers: they differ between runs, everything above does not
        "run": {"elapsed_s": _r(result.elapsed_s, 3),
                "snapshots_per_s": _r(result.snapshots / result.elapsed_s, 2) if result.elapsed_s else None,
                "fit_ms": _stats([f["elapsed_ms"] for f in fits]),
                "cycle_step_ms_mean": {k: _r(v / max(result.snapshots, 1), 2) for k, v in result.step_ms.items()},
                "alerts": result.summary.get("alerts", {})},
    }


def ratios_text(metrics: dict) -> str:
    """'Sharpe 1.23 / Sortino 2.01 (annualised, 24 trading days)' or 'n/a: fewer than 20 days (3)'."""
    days = metrics.get("trading_days", 0)
    if metrics.get("sharpe") is None and metrics.get("sortino") is None:
        if days < MIN_RATIO_DAYS:
            return f"n/a: fewer than {MIN_RATIO_DAYS} days ({days})"
        return f"n/a: no variation in {days} days of P&L"
    return f"Sharpe {_or_na(metrics['sharpe'])} / Sortino {_or_na(metrics['sortino'])} (annualised, {days} trading days)"


def hit_rate_text(rate: float | None, closed: int) -> str:
    """'62.5 % of 8 closed trades' or 'n/a: no closed trades' (never 'None')."""
    return f"{rate:.1%} of {closed} closed trades" if rate is not None else "n/a: no closed trades"


def _or_na(value: Any) -> str:
    return "n/a" if value is None else f"{value}"
