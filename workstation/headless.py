"""`python main.py headless --duration SECONDS [--speed X] [--json FILE]`: the engine without a window."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections import Counter
import sys
from pathlib import Path

from .config import Settings
from .execution.recovery import BrokerUnreachable, connect_with_retry
from .storage.paths import data_dir_for

log = logging.getLogger(__name__)
EXIT_UNREACHABLE = 2


class QualityCounts:
    """Quotes the surface's quality filters dropped, by reason, summed over the run (read from the bus)."""

    def __init__(self, bus) -> None:
        from . import bus as topics
        self.snapshots = self.quotes = self.usable = 0
        self.filtered: Counter[str] = Counter()
        bus.subscribe(topics.SURFACE, self.on_surface)

    def on_surface(self, surface) -> None:
        counts = surface.filter_counts
        self.snapshots += 1
        self.quotes += sum(counts.values())
        self.usable += counts.get("OK", 0)
        self.filtered.update({reason.lower(): n for reason, n in counts.items() if reason != "OK" and n})

    def as_dict(self) -> dict:
        """The summary's `quality`: snapshots and quotes seen, usable quotes, filtered quotes by reason."""
        return {"snapshots": self.snapshots, "quotes": self.quotes, "usable": self.usable,
                "filtered": dict(self.filtered.most_common())}


def quality_line(quality: dict) -> str:
    """'quality: 123,456 quotes in 80 snapshots, 91.2% usable; filtered no_bid 9,000, too_wide 1,200'."""
    quotes = quality.get("quotes", 0)
    share = f"{100.0 * quality.get('usable', 0) / quotes:.1f}% usable" if quotes else "no quotes"
    filtered = ", ".join(f"{k} {v:,}" for k, v in quality.get("filtered", {}).items()) or "none"
    return f"quality: {quotes:,} quotes in {quality.get('snapshots', 0)} snapshots, {share}; filtered {filtered}"


async def run_for(settings: Settings, data_dir: Path, duration: float, speed: float | None = None,
                  metrics_port: int | None = None, console_alerts: bool = True, wait: bool = False) -> dict:
    """Start the engine, let it trade for `duration` wall-clock seconds, stop it cleanly, return the summary."""
    from .engine import build_engine
    from .storage.paths import default_log_dir
    engine = build_engine(settings, data_dir, speed, console_alerts=console_alerts, metrics_port=metrics_port,
                          log_dir=default_log_dir())
    engine.auto_execute = True   # nobody is there to approve: headless trades within the auto limits
    # no window shares the GIL here: the fair surface's cross-validation runs beside the cycle, not in it (in the
    # window a second busy thread made the worst event-loop stalls longer, so there it stays in the cycle)
    engine.numerics.relative.background = engine.executor
    quality = QualityCounts(engine.bus)
    try:
        await connect_with_retry(engine.feed, settings, wait,
                                 lambda line: print(line, file=sys.stderr, flush=True))
    except BrokerUnreachable:
        await engine.stop()
        raise
    await engine.start()
    log.info("headless run: %s feed, %s broker, %.0f s", settings.market.source, settings.execution.broker, duration)
    try:
        await asyncio.sleep(duration)
    finally:
        await engine.stop()
    summary = engine.summary()
    summary["quality"] = {**quality.as_dict(), **(summary.get("quality") or {})}   # the engine's own counts win
    log.info("%s", quality_line(summary["quality"]))
    return summary


def format_summary(summary: dict) -> str:
    """A few lines a trader can read at a glance."""
    fits, cyc, pnl = summary["fits"], summary["cycle_ms"], summary["pnl"]
    lines = [
        f"snapshots {summary['snapshots']} (skipped {summary.get('skipped_snapshots', 0)})",
        f"fits {fits['count']} (accepted {fits.get('accepted')}), median {fits['median_ms']} ms, "
        f"p95 {fits['p95_ms']} ms, median RMSE {fits['median_rmse_iv']} vol pts",
        "signals " + ", ".join(f"{k} {v}" for k, v in summary["signals"].items() if v),
        "orders " + ", ".join(f"{k} {v}" for k, v in summary["orders"].items() if v),
        f"fills {summary['fills']}, open positions {sum(1 for p in summary['positions'] if p['quantity'])}",
        f"P&L total {pnl['total']:,.2f} $ (realised {pnl['realized']:,.2f}, unrealised {pnl['unrealized']:,.2f}, "
        f"commissions {pnl['commissions']:,.2f}), day {pnl['day']:,.2f} $",
        "greeks $ " + ", ".join(f"{k} {v:,.0f}" for k, v in summary["greeks"].items()),
        f"trading state {summary['trading_state']}",
        *([quality_line(summary["quality"])] if summary.get("quality") else []),
        "alerts " + (", ".join(f"{k} {v}" for k, v in summary["alerts"].items()) or "none"),
        f"cycle ms p50 {cyc['p50']}, p95 {cyc['p95']}, max {cyc['max']}",
    ]
    return "\n".join(lines)


def run_headless(settings: Settings, args: argparse.Namespace) -> int:
    if args.duration <= 0:
        print("error: --duration must be > 0 seconds")
        return 2
    try:
        summary = asyncio.run(run_for(settings, data_dir_for(args), args.duration, args.speed,
                                      getattr(args, "metrics_port", None), wait=getattr(args, "wait", False)))
    except BrokerUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(format_summary(summary))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        print(f"summary written to {args.json}")
    return 0
