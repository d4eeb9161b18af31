"""What the engine reports: the STATUS payload, the headless summary (its JSON keys are an interface: see the
README) and the settings changes it journals."""
from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from ..reports import EngineStatus
from ..strategy.fair_value import FairValueFit

if TYPE_CHECKING:
    from .core import Engine


def status(engine: Engine) -> EngineStatus:
    """The status bar's payload: connection, feed, data age, market time, trading state, switches, P&L, lag."""
    snap = engine.market.snapshot
    now = engine.clock()
    feed_status = getattr(engine.feed, "status", None)
    freshness = engine.market.freshness
    return EngineStatus(
        connection=engine.connection,
        connected=bool(getattr(engine.broker, "connected", False)),
        feed=getattr(getattr(feed_status, "state", None), "value", "unknown"),
        data_age_s=(now - snap.timestamp).total_seconds() if snap else None,
        sim_time=now,
        clock_label=getattr(engine.feed, "clock_label", ""),
        trading_state=engine.state.value,
        trading_reason=engine.trading.reason,
        stale_data=tuple(freshness.stale()) if freshness is not None else (),
        auto_execute=engine.auto_execute,
        read_only=engine.read_only,
        day_pnl=engine.book.day_pnl,
        loop_lag_ms=engine.loop_lag_ms,
    )


def summary(engine: Engine) -> dict:
    """The headless summary."""
    numerics = engine.numerics
    cyc = np.array(engine.cycle_ms) if engine.cycle_ms else np.array([np.nan])
    fits = np.array(numerics.fit_ms) if numerics.fit_ms else np.array([np.nan])
    book = engine.book_summary().to_dict()
    snap = engine.market.snapshot
    risk = engine.supervisor.last_risk
    good = numerics.calibrator.last_good
    return {
        "snapshots": engine.snapshots,
        "chain": {"options": len(snap) if snap is not None else 0,
                  "expiries": int(len(np.unique(snap.series_key)))
                  if snap is not None else 0},
        "quality": dict(numerics.sanity.counts),
        "fair_value": _fair_summary(engine.market.fair, numerics.fair_ms),
        "skipped_snapshots": engine.skipped,
        "fits": {"count": len(numerics.fit_ms), "accepted": len(numerics.fit_rmse),
                 "median_ms": _r(np.nanmedian(fits)), "p95_ms": _r(np.nanpercentile(fits, 95)),
                 "median_rmse_iv": _r(np.median(numerics.fit_rmse)) if numerics.fit_rmse else None,
                 "params": good.as_dict() if good else None},
        "signals": dict(engine.signals.counts),
        "orders": engine.orders.counts(),
        "orders_by_purpose": dict(Counter(r.order.purpose.value for r in engine.orders.records.values())),
        "fills": book["fills"],
        "positions": book["positions"],
        "pnl": book["pnl"],
        "greeks": book["greeks"],
        "risk": {"var95": risk.var95, "var99": risk.var99} if risk else None,
        "trading_state": engine.state.value,
        "alerts": dict(engine.alert_counts),
        "cycle_ms": {"p50": _r(np.nanpercentile(cyc, 50)), "p95": _r(np.nanpercentile(cyc, 95)),
                     "max": _r(np.nanmax(cyc))},
        **engine.vol_views.summary(engine.book, engine.clock()),
    }


def _fair_summary(fair: FairValueFit | None, fit_ms: list[float]) -> dict | None:
    """Inside-spread share, IV RMSE, violations, slice states and fit times of the fair-value surface."""
    if fair is None:
        return None
    m = fair.metrics()
    states = Counter(s.status for s in fair.slices)
    ms = np.array(fit_ms)
    return {"inside_spread_pct": _r(m.get("inside_spread_pct")), "rmse_iv": _r(m.get("rmse_iv")),
            "arbitrage_violations": fair.arbitrage_violations, "expiries": dict(states),
            "fit_ms": {"p50": _r(np.percentile(ms, 50)), "p95": _r(np.percentile(ms, 95))}}


def _r(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else round(float(x), 3)


def changed_fields(old: dict, new: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted path, old, new) of every setting that differs."""
    out = []
    for key, value in new.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            out += changed_fields(old[key], value, path + ".")
        elif old.get(key) != value:
            out.append((path, old.get(key), value))
    return out
