"""The backtest report's page: its SVG charts (equity, drawdown, daily P&L, attribution, edge, Heston parameters)
and the self-contained report.html around them."""
from __future__ import annotations

import math
from html import escape
from typing import Any

import numpy as np

from workstation.domain.snapshot import NEW_YORK

from . import charts
from .metrics import _or_na, daily_pnl, drawdown, hit_rate_text, ratios_text
from .runner import ATTRIBUTION_PARTS, BacktestResult
from .trades import Trade


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
