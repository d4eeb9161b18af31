"""The backtest report: trades.csv, metrics.json and a self-contained report.html (inline SVG charts).

A trade is one round trip of one contract: from flat to flat (a fill that flips the position closes one trade and
opens the next). Its gross P&L is its cash flows plus, while still open, the last mark; fees are the commissions
of its fills (split pro rata when a fill is shared). So the report reconciles with its own trades:
total P&L = sum of trades' gross P&L - fees, which is the book's realised + unrealised - commissions.

The parts live by job: `trades` (round trips, trades.csv), `metrics` (metrics.json and its wording) and
`report_html` (charts and page); this module builds and writes the three files and keeps the old names importable.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import (MIN_RATIO_DAYS, TRADING_DAYS, _or_na, _r, _ratios, _stats, compute_metrics, daily_pnl,
                      drawdown, hit_rate_text, ratios_text)
from .report_html import _money, _table, render_html, report_charts
from .runner import BacktestResult
from .trades import TRADE_COLUMNS, Trade, _purpose, build_trades, trades_csv

__all__ = ["METRICS_JSON", "MIN_RATIO_DAYS", "REPORT_HTML", "TRADES_CSV", "TRADE_COLUMNS", "TRADING_DAYS", "Report",
           "Trade", "build_report", "build_trades", "compute_metrics", "daily_pnl", "drawdown", "hit_rate_text",
           "ratios_text", "render_html", "report_charts", "trades_csv"]
_REEXPORTED = (_or_na, _r, _ratios, _stats, _money, _table, _purpose)   # old private names, still importable here

REPORT_HTML, METRICS_JSON, TRADES_CSV = "report.html", "metrics.json", "trades.csv"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


@dataclass(frozen=True)
class Report:
    """The three files' contents (sweeps build them in workers and write them where the client is)."""

    metrics: dict
    metrics_json: str
    trades_csv: str
    html: str
    charts: dict = field(default_factory=dict)     # SVG by name (not written: they are inside report.html)

    def write(self, out: Path) -> list[Path]:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, text in ((METRICS_JSON, self.metrics_json), (TRADES_CSV, self.trades_csv), (REPORT_HTML, self.html)):
            tmp = out / (name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(out / name)
            paths.append(out / name)
        return paths


def build_report(result: BacktestResult, title: str = "Backtest report",
                 changed: dict[str, Any] | None = None) -> Report:
    trades = build_trades(result)
    metrics = compute_metrics(result, trades)
    if changed:
        metrics["swept"] = changed
    svg = report_charts(result, metrics, trades)
    return Report(metrics, json.dumps(_jsonable(metrics), indent=2), trades_csv(trades, result.last),
                  render_html(result, metrics, trades, title, changed, svg), svg)
