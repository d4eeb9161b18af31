"""The volatility views of one cycle, as a small sub-engine the engine composes: skew and term metrics (market
and model), realised vs implied, scenarios with time, risk by expiry. Numerics run in the worker thread; the
loop thread records the history and publishes one `VolViews` on the bus (topic `vol_views`).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..bus import VOL_VIEWS as TOPIC
from ..domain import SecType
from ..portfolio.greeks import DollarGreeks
from ..risk import buckets
from ..risk.monitor import Exposure
from ..risk.scenarios import TimeScenarios, smile_skew, time_grid
from .chain import expiry_labels
from .history import MetricHistory, percentile_of, trade_day
from .realised import RealisedReport, realised_report
from .skew import SkewReport, skew_report

SCENARIO_MODES = (("strike", False), ("strike", True), ("delta", False), ("delta", True))
HEADLESS_SKEW = ("atm_vol", "rr25", "bf25")


@dataclass(frozen=True)
class VolViews:
    """Everything the vol panels show for one snapshot."""

    at: datetime
    spot: float
    market: SkewReport
    model: SkewReport | None
    realised: RealisedReport
    scenarios: dict[tuple[str, bool], TimeScenarios]
    buckets: dict[str, dict]                         # bucket label -> delta/gamma/vega/theta/weighted_vega ($)
    expiries: dict[Any, dict]                        # expiry -> dollar Greeks, days, weighted vega
    regions: dict[str, dict]                         # strike region -> dollar Greeks
    history: MetricHistory = field(repr=False, compare=False, default=None)

    def percentile(self, column: str, value: float) -> float:
        """Today's `value` of a history column against its daily values on earlier days."""
        days, values = self.history.daily(column) if self.history is not None else ([], np.zeros(0))
        past = np.array([v for d, v in zip(days, values) if d != trade_day(self.at)])
        return percentile_of(value, past)


def book_items(book: Any) -> list[tuple[date | None, DollarGreeks]]:
    """(expiry, dollar Greeks) of every open position of `book` (the Greeks the portfolio totals come from)."""
    return [(p.contract.expiry, book.position_greeks(cid)) for cid, p in book.positions.items() if p.quantity]


class VolDesk:
    """Computes and publishes VolViews; keeps the metric history (Parquet beside the journal)."""

    def __init__(self, publish: Callable[[str, Any], None], history_dir: Path | None,
                 recordings_dir: Path | None = None) -> None:
        self.publish = publish
        self.history = MetricHistory(history_dir, recordings=recordings_dir)
        self.last: VolViews | None = None
        self._busy = False

    async def update(self, now: datetime, surface: Any, model_iv: np.ndarray | None, book: Any,
                     markets: tuple[np.ndarray, np.ndarray, np.ndarray], executor: Any,
                     positions: list | None = None) -> None:
        """One cycle's views (skipped while the last one still runs). `positions` are the ones `markets` were
        taken for (row for row): the book may have moved since (a fill between the cycle and this task)."""
        if self._busy:
            return
        self._busy = True
        try:
            if positions is None:
                positions = [p for p in book.positions.values() if p.quantity]
            greeks = [book.position_greeks(p.contract.contract_id) for p in positions]
            loop = asyncio.get_running_loop()
            market, model, scen, risk = await loop.run_in_executor(
                executor, self.compute, now, surface, model_iv, positions, greeks, markets)
            self.record(now, surface.snapshot.underlying_price, market, model, scen, risk)
        finally:
            self._busy = False

    # ------------------------------------------------------------------------------ worker thread
    @staticmethod
    def compute(now: datetime, surface: Any, model_iv: np.ndarray | None, positions: list, greeks: list,
                markets: tuple[np.ndarray, np.ndarray, np.ndarray]):
        snap = surface.snapshot
        series = surface.expiry_index()
        labels = expiry_labels(surface)
        args = (snap.strike, snap.is_call)
        market = skew_report("market", *args, surface.iv_mid, surface.forward, surface.maturity, series, labels,
                             usable=surface.usable)
        model = None
        if model_iv is not None and len(model_iv) == len(snap):
            model = skew_report("model", *args, model_iv, surface.forward, surface.maturity, series, labels,
                                usable=surface.usable)
        scen = scenario_grids(now, surface, model_iv, positions, markets, series)
        today = trade_day(now)
        items = [(p.contract.expiry, g) for p, g in zip(positions, greeks)]
        fwd = markets[0]
        money = [float(p.contract.strike / f) if p.contract.sec_type is SecType.OPTION and p.contract.strike
                 and np.isfinite(f) and f > 0 else np.nan for p, f in zip(positions, fwd)]
        expiries = {}
        for e, g in buckets.by_expiry(items).items():
            days = buckets.days_to(e, today)
            expiries[e] = {**g.as_dict(), "days": days,
                           "weighted_vega": float(g.vega * buckets.term_weight(days))}
        regions = {k: g.as_dict() for k, g in buckets.by_region(zip(money, greeks)).items()}
        return market, model, scen, (buckets.bucket_table(items, today), expiries, regions)

    # ------------------------------------------------------------------------------- loop thread
    def record(self, now: datetime, spot: float, market: SkewReport, model: SkewReport | None, scen: dict,
               risk: tuple) -> VolViews:
        today = self.history.count and self.history.day == trade_day(now)
        seconds = np.r_[self.history.column("timestamp") if today else np.zeros(0), now.timestamp()]
        prices = np.r_[self.history.column("spot") if today else np.zeros(0), spot]
        past_last, past_high, past_low = self.history.ranges("spot")
        closes, highs, lows = past_last, past_high, past_low
        if self.history.day == trade_day(now) and len(closes):       # today's entry: the live price
            closes, highs, lows = closes[:-1], highs[:-1], lows[:-1]
        closes = np.r_[closes, spot]             # Parkinson: completed days only (a partial day's range is short)
        realised = realised_report(seconds, prices, closes, highs, lows, market.constant[30].atm_vol
                                   if 30 in market.constant else np.nan)
        row = {"spot": spot, **market.flat(), **(model.flat() if model is not None else {}),
               "realised_intraday": realised.intraday, "realised": realised.value, "vrp": realised.vrp}
        self.history.append(now, row)
        bucket_table, expiries, regions = risk
        views = VolViews(now, spot, market, model, realised, scen, bucket_table, expiries, regions, self.history)
        self.last = views
        self.publish(TOPIC, views)
        return views

    def close(self) -> None:
        self.history.close()

    # -------------------------------------------------------------------------------- summaries
    def summary(self, book: Any, now: datetime) -> dict:
        """The headless keys: skew, realised_vol, risk_buckets, scenarios (see the README)."""
        v = self.last
        skew = None
        if v is not None:
            skew = {str(days): {name: _r(getattr(m, name)) for name in HEADLESS_SKEW}
                    for days, m in v.market.constant.items()}
        risk = {label: {k: g[k] for k in ("delta", "gamma", "vega", "theta")}
                for label, g in buckets.bucket_table(book_items(book), trade_day(now)).items()}
        scen = v.scenarios.get(("strike", False)) if v is not None else None
        return {"skew": skew, "realised_vol": v.realised.as_dict() if v is not None else None,
                "risk_buckets": risk, "scenarios": scen.as_dict() if scen is not None else None}


def _r(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def scenario_grids(now: datetime, surface: Any, model_iv: np.ndarray | None, positions: list,
                   markets: tuple[np.ndarray, np.ndarray, np.ndarray], series: np.ndarray
                   ) -> dict[tuple[str, bool], TimeScenarios]:
    """The time grid in each convention (sticky strike/delta, term-scaled or not) for the held positions,
    each option marked at its market mid vol (the model's where the quote has none)."""
    snap = surface.snapshot
    fwd, df, mat = markets
    exp = Exposure.from_positions(positions, fwd, df, mat)
    vol = np.full(len(positions), np.nan)
    skew = np.zeros(len(positions))
    smiles: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    otm = np.where(snap.is_call, snap.strike >= surface.forward, snap.strike < surface.forward) & surface.usable
    for i, p in enumerate(positions):
        row = snap.index_of(p.contract.contract_id)
        if row is None or p.contract.sec_type is not SecType.OPTION:
            continue
        v = surface.iv_mid[row]
        if not np.isfinite(v) and model_iv is not None:
            v = model_iv[row]
        vol[i] = v
        s = int(series[row])
        if s not in smiles:
            rows = np.flatnonzero(otm & (series == s))
            smiles[s] = smile_skew(snap.strike[rows], surface.iv_mid[rows], float(surface.forward[row]))
        x, slope = smiles[s]
        if len(x):
            skew[i] = float(np.interp(np.log(snap.strike[row] / surface.forward[row]), x, slope))
    unpriced = exp.is_option & ~np.isfinite(vol)             # no quote, no model: left out of the grid
    exp_ok = Exposure(exp.contract_id, np.where(unpriced, 0.0, exp.quantity), exp.multiplier, exp.is_option,
                      exp.strike, exp.is_call, exp.maturity, exp.forward, exp.discount)
    expiry = [p.contract.expiry for p in positions]
    return {(sticky, scaled): time_grid(exp_ok, np.nan_to_num(vol, nan=0.2), now, skew=skew, expiry=expiry,
                                        sticky=sticky, term_scaled=scaled)
            for sticky, scaled in SCENARIO_MODES}
