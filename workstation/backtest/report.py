"""The backtest report: trades.csv, metrics.json and a self-contained report.html (inline SVG charts).

A trade is one round trip of one contract: from flat to flat (a fill that flips the position closes one trade and
opens the next). Its gross P&L is its cash flows plus, while still open, the last mark; fees are the commissions
of its fills (split pro rata when a fill is shared). So the report reconciles with its own trades:
total P&L = sum of trades' gross P&L - fees, which is the book's realised + unrealised - commissions.
"""
from __future__ import annotations

import csv
import io
import json
import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from workstation.domain import Fill
from workstation.domain.snapshot import NEW_YORK

from . import charts
from .runner import ATTRIBUTION_PARTS, BacktestResult

REPORT_HTML, METRICS_JSON, TRADES_CSV = "report.html", "metrics.json", "trades.csv"
TRADING_DAYS = 252
MIN_RATIO_DAYS = 20            # Sharpe and Sortino need this many trading days of P&L, else "n/a"


@dataclass
class Trade:
    """One round trip of one contract."""

    trade_id: int
    contract_id: int
    symbol: str
    sec_type: str
    direction: str                 # "long" | "short"
    purpose: str                   # why it was opened: signal | hedge | exit | manual
    signal_id: str
    entry_time: datetime
    entry_price: float = 0.0       # average, index points
    quantity: int = 0              # largest |position| of the round trip
    exit_time: datetime | None = None
    exit_price: float = math.nan   # average of the closing fills
    exit_reason: str = ""          # purpose of the closing order, or "settlement"
    status: str = "open"           # open | closed
    edge_at_entry: float = 0.0     # (model at order - fill) x side x qty x multiplier, $ (signal entries)
    gross_pnl: float = 0.0
    fees: float = 0.0
    net_pnl: float = 0.0
    fills: int = 0
    _cash: float = field(default=0.0, repr=False)
    _open_qty: int = field(default=0, repr=False)
    _entry_qty: int = field(default=0, repr=False)
    _exit_qty: int = field(default=0, repr=False)
    _has_edge: bool = field(default=False, repr=False)
    _mult: float = field(default=100.0, repr=False)

    def holding_seconds(self, end: datetime | None) -> float:
        stop = self.exit_time or end
        return (stop - self.entry_time).total_seconds() if stop else math.nan


def _purpose(result: BacktestResult, fill: Fill) -> tuple[str, str, float | None]:
    order = result.orders.get(fill.client_order_id)
    if order is None:
        return ("settlement" if fill.liquidity == "settlement" else "unknown"), "", None
    return order["purpose"], order["signal_id"] or "", order["model_price"]


def build_trades(result: BacktestResult) -> list[Trade]:
    """Round trips from the fills, in the order they were opened; open ones valued at the last mark."""
    trades: list[Trade] = []
    current: dict[int, Trade] = {}
    for fill in result.fills:
        c = fill.contract
        cid, mult = c.contract_id, c.multiplier
        fee_unit = fill.commission / fill.quantity
        purpose, signal_id, model = _purpose(result, fill)
        left = fill.signed_quantity
        t = current.get(cid)
        if t is not None and (t._open_qty > 0) != (left > 0):                   # closing part
            n = min(abs(left), abs(t._open_qty))
            step = n if left > 0 else -n
            t._cash -= step * fill.price * mult
            t.fees += n * fee_unit
            t.exit_price = ((0 if math.isnan(t.exit_price) else t.exit_price) * t._exit_qty + n * fill.price) / \
                (t._exit_qty + n)
            t._exit_qty += n
            t._open_qty += step
            t.fills += 1
            t.exit_reason, t.exit_time = purpose, fill.timestamp
            left -= step
            if t._open_qty == 0:
                t.status = "closed"
                del current[cid]
        if left:                                                                 # opening part
            t = current.get(cid)
            if t is None:
                t = Trade(len(trades) + 1, cid, c.local_symbol, c.sec_type.value, "long" if left > 0 else "short",
                          purpose, signal_id, fill.timestamp, _mult=mult)
                trades.append(t)
                current[cid] = t
            n = abs(left)
            t._cash -= left * fill.price * mult
            t.fees += n * fee_unit
            t.entry_price = (t.entry_price * t._entry_qty + n * fill.price) / (t._entry_qty + n)
            t._entry_qty += n
            t._open_qty += left
            t.quantity = max(t.quantity, abs(t._open_qty))
            t.fills += 1
            if model is not None and math.isfinite(model):
                t.edge_at_entry += (model - fill.price) * fill.side.sign * n * mult
                t._has_edge = True
    for t in trades:
        mark = result.marks.get(t.contract_id, math.nan)
        open_value = t._open_qty * mark * t._mult if t._open_qty else 0.0
        t.gross_pnl = t._cash + open_value
        t.net_pnl = t.gross_pnl - t.fees
        if not t._has_edge:
            t.edge_at_entry = math.nan
    return trades


# ---------------------------------------------------------------------------------------------- metrics
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


# ---------------------------------------------------------------------------------------------- files
TRADE_COLUMNS = ("trade_id", "symbol", "contract_id", "sec_type", "purpose", "signal_id", "direction", "quantity",
                 "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason", "status", "holding_s",
                 "edge_at_entry", "gross_pnl", "fees", "net_pnl", "fills")


def trades_csv(trades: list[Trade], end: datetime | None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(TRADE_COLUMNS)
    for t in trades:
        d = asdict(t)
        d["holding_s"] = t.holding_seconds(end)
        row = []
        for col in TRADE_COLUMNS:
            v = d[col]
            if isinstance(v, datetime):
                v = v.isoformat()
            elif isinstance(v, float):
                v = "" if not math.isfinite(v) else round(v, 6)
            elif v is None:
                v = ""
            row.append(v)
        w.writerow(row)
    return buf.getvalue()


def _money(v: Any) -> str:
    return "–" if v is None else f"{v:,.2f}"


def _table(rows: list[tuple[str, str]]) -> str:
    return "<table class='kv'>" + "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def report_charts(result: BacktestResult, metrics: dict, trades: list[Trade]) -> dict[str, str]:
    """The report's charts as SVG strings by name (the HTML page and the GUI's Backtest window show them)."""
    eq = result.equity
    ts = [r["timestamp"] for r in eq]
    equity = [r["total"] for r in eq]
    dd = drawdown(np.array(equity, float)).tolist()
    days = daily_pnl(result)
    attr = metrics["attribution"]
    parts = [*ATTRIBUTION_PARTS, "trading", "fees"]
    attr_values = [(attr[k] or 0.0) if k != "fees" else -(attr[k] or 0.0) for k in parts]
    edge_groups: dict[str, tuple[list, list]] = {}
    for t in trades:
        if t.status == "closed" and math.isfinite(t.edge_at_entry):
            xs, ys = edge_groups.setdefault(t.direction, ([], []))
            xs.append(t.edge_at_entry)
            ys.append(t.net_pnl)
    fits = result.fits
    ft = [f["timestamp"] for f in fits]
    out = {
        "equity": charts.line_chart([("P&L", ts, equity)], "Equity curve: total P&L after fees ($)", "$"),
        "drawdown": charts.line_chart([("drawdown", ts, dd)], "Drawdown from the running peak ($)", "$",
                                      fill_below=True, colors=(charts.NEG,), height=200),
        "daily": charts.bar_chart(list(days), list(days.values()), "Daily P&L ($)", "$"),
        "attribution": charts.bar_chart(
            ["delta", "gamma", "vega", "theta", "residual", "new trades", "fees"], attr_values,
            "P&L attribution by Greeks ($): held positions between marks; new trades = fill to first mark", "$"),
        "attribution_cumulative": charts.line_chart(
            [(k, ts, [r[f"attr_{k}"] for r in eq]) for k in ("delta", "gamma", "vega", "theta", "trading")],
            "Cumulative attribution ($)", "$", height=240),
        "edge": charts.scatter([(f"{d} trades", *xy) for d, xy in sorted(edge_groups.items())],
                               "Edge at entry vs realised P&L per closed trade ($)", "edge at entry ($)",
                               "realised net P&L ($)", diagonal=True),
    }
    for i, p in enumerate(("v0", "kappa", "theta", "sigma", "rho")):
        out[f"param_{p}"] = charts.line_chart([(p, ft, [f[p] for f in fits])], f"Heston {p}", width=430, height=180,
                                              colors=(charts.PALETTE[i],))
    out["param_rmse"] = charts.line_chart([("RMSE", ft, [f["rmse_iv"] if f["accepted"] else math.nan for f in fits])],
                                          "Fit IV RMSE (vol points)", width=430, height=180,
                                          colors=(charts.PALETTE[5],))
    return out


def render_html(result: BacktestResult, metrics: dict, trades: list[Trade], title: str = "Backtest report",
                changed: dict[str, Any] | None = None, svg: dict[str, str] | None = None) -> str:
    """The self-contained report page."""
    svg = svg or report_charts(result, metrics, trades)
    params = "".join(v for k, v in svg.items() if k.startswith("param_"))
    pnl = metrics["pnl"]
    headline = [
        ("Data", escape(metrics["data"])),
        ("Period", f"{escape(str(metrics['period']['first']))} → {escape(str(metrics['period']['last']))}"),
        ("Snapshots", f"{metrics['snapshots']}" + (" <b class='neg'>(interrupted: partial report)</b>"
                                                   if metrics["interrupted"] else "")
         + (" (skipped: " + escape(", ".join(f"{k} {v:,}" for k, v in sorted(metrics["skipped"].items())))
            + ")" if metrics.get("skipped") else "")),
        ("Total P&L", f"<b class='{'pos' if (pnl['total'] or 0) >= 0 else 'neg'}'>{_money(pnl['total'])} $</b> "
                      f"(realised {_money(pnl['realized'])}, unrealised {_money(pnl['unrealized'])}, "
                      f"fees {_money(pnl['fees'])})"),
        ("Sharpe / Sortino", escape(ratios_text(metrics))),
        ("Max drawdown", f"{_money(metrics['max_drawdown'])} $"),
        ("Trades", f"{metrics['trades']['total']} ({metrics['trades']['closed']} closed), hit rate "
                   f"{hit_rate_text(metrics['hit_rate'], metrics['trades']['closed'])}, signals' hit rate "
                   f"{_or_na(metrics['hit_rate_signals'])}"),
        ("Turnover", f"{_money(metrics['turnover']['premium'])} $ premium, {metrics['turnover']['contracts']} contracts"),
        ("Fit RMSE (vol pts)", f"median {metrics['fit_rmse_iv']['median']}, p95 {metrics['fit_rmse_iv']['p95']}, "
                               f"{metrics['fit_rmse_iv']['accepted']}/{metrics['fit_rmse_iv']['fits']} fits accepted"),
        ("Reconciliation", f"total P&L − (Σ trades' gross P&L − Σ fees) = "
                           f"{abs(metrics['reconciliation']['difference'] or 0.0):.2f} $"),
    ]
    if changed:
        headline.append(("Settings swept", escape(", ".join(f"{k}={v}" for k, v in changed.items()))))
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in (
            t.trade_id, t.symbol, t.purpose, t.direction, t.quantity,
            t.entry_time.astimezone(NEW_YORK).strftime("%m-%d %H:%M:%S"), f"{t.entry_price:.2f}",
            t.exit_time.astimezone(NEW_YORK).strftime("%m-%d %H:%M:%S") if t.exit_time else "open",
            "" if math.isnan(t.exit_price) else f"{t.exit_price:.2f}", t.exit_reason,
            "" if math.isnan(t.edge_at_entry) else f"{t.edge_at_entry:,.0f}", f"{t.fees:,.2f}")) +
        f"<td class='{'pos' if t.net_pnl >= 0 else 'neg'}'>{t.net_pnl:,.2f}</td></tr>"
        for t in trades[:500])
    more = f"<p>… {len(trades) - 500} more in trades.csv</p>" if len(trades) > 500 else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body {{ font-family: 'DejaVu Sans', Arial, sans-serif; margin: 24px; color: #222; max-width: 920px; }}
h1 {{ font-size: 22px; margin-bottom: 4px; }} h2 {{ font-size: 16px; margin-top: 28px; border-bottom: 1px solid #ddd; }}
table {{ border-collapse: collapse; font-size: 12px; }} td, th {{ padding: 3px 8px; text-align: left; }}
table.kv th {{ color: #555; font-weight: normal; }} table.trades td {{ border-bottom: 1px solid #eee; }}
table.trades th {{ border-bottom: 2px solid #ccc; }}
.pos {{ color: #1e7f45; }} .neg {{ color: #c0313f; }} .grid {{ display: flex; flex-wrap: wrap; gap: 8px; }}
.note {{ color: #666; font-size: 12px; }} svg {{ display: block; margin: 6px 0; }}
</style></head><body>
<h1>{escape(title)}</h1>
<p class="note">Heston Workstation backtest: recorded snapshots replayed through the trading engine, filled against the
recorded quotes (slippage {result.settings['execution']['paper']['slippage_ticks']} tick(s), commissions and fees
{result.settings['execution']['paper']['commission_per_contract'] + result.settings['execution']['paper']['fees_per_contract']:.2f} $
per contract), one snapshot of latency.</p>
{_table(headline)}
<h2>Equity</h2>
{svg["equity"]}
{svg["drawdown"]}
{svg["daily"]}
<h2>Where the P&amp;L came from</h2>
{svg["attribution"]}
{svg["attribution_cumulative"]}
{svg["edge"]}
<h2>Heston parameters</h2>
<div class="grid">{params}</div>
<h2>Trades</h2>
<table class="trades"><tr><th>#</th><th>contract</th><th>purpose</th><th>dir</th><th>qty</th><th>entry (ET)</th>
<th>price</th><th>exit (ET)</th><th>price</th><th>exit by</th><th>edge $</th><th>fees $</th><th>net P&amp;L $</th></tr>
{rows}</table>{more}
</body></html>
"""


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
