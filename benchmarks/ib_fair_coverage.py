"""Does the fair-value surface fit on the IB feed? The engine on the IB code path (IBFeed + IBBroker, ib_async over
a real socket) against the practice gateway, in this process, for N seconds of wall time; per snapshot: fresh
quotes and fair-surface fit quotes per expiry, fair slices fitted / fallen back / failed / trusted, and the signals
raised per family.

Run: `.venv/bin/python benchmarks/ib_fair_coverage.py --seconds 120 [--config config/paper.yaml] [--seed 7]
[--mispricing-rate 2 --mispricing-size 0.05]` (without --config: the IB feed's defaults, `Settings()` with
market.source and execution.broker set to ib; the mispricing options plant as many mispricings as the soak does).
Prints a table; `--json FILE` writes the numbers.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workstation import bus as topics  # noqa: E402
from workstation.config import Settings, load_settings  # noqa: E402
from workstation.engine import build_engine  # noqa: E402
from workstation.sim.gateway import PracticeGateway  # noqa: E402
from workstation.strategy.fair_value import fit_rows  # noqa: E402
from workstation.strategy.surface import Filter  # noqa: E402

HOST = "127.0.0.1"


def gateway_settings(seed: int, speed: float, mispricing_rate: float | None,
                     mispricing_size: float | None = None) -> Settings:
    """The practice gateway's world: the simulator's defaults (its planted mispricings included), always open."""
    s = Settings()
    sim = s.market.simulator
    sim.always_open, sim.speed, sim.seed = True, speed, seed
    if mispricing_rate is not None:
        sim.mispricing_rate = mispricing_rate
    if mispricing_size is not None:
        sim.mispricing_size_vol = mispricing_size
    sim.mispricing_max_spreads = 100.0      # every planted mispricing in full, as the soak plants them
    s.execution.paper.latency_ms = 20
    return s


def workstation_settings(config: Path | None, port: int) -> Settings:
    s = load_settings(config) if config is not None else Settings()
    s.market.source, s.execution.broker = "ib", "ib"
    s.ib.host, s.ib.port, s.ib.client_id = HOST, port, 41
    s.ib.connect_timeout_s = 10
    return s


class Tally:
    """What every snapshot gave the fair surface, and the signals raised."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.snapshots = 0
        self.fresh_per_expiry: list[float] = []      # fresh option quotes per watched expiry, per snapshot
        self.fit_per_expiry: list[int] = []          # fair-surface fit quotes per expiry in its window
        self.slices: Counter = Counter()
        self.reasons: Counter = Counter()
        self.thin: list[dict] = []                   # the first thin expiries, with their quotes' filter reasons
        self.fit_min_by_snapshot: list[int] = []     # the thinnest fair expiry's fit quotes, per snapshot
        self.trusted = 0
        self.slice_count = 0
        self.fair_window_expiries: list[int] = []
        self.signals: dict[str, set] = defaultdict(set)
        self.arbitrage: set = set()
        engine.bus.subscribe(topics.SURFACE, self.on_surface)
        engine.bus.subscribe(topics.SIGNAL, lambda s: self.signals[s.family].add(s.signal_id))
        engine.bus.subscribe(topics.ARBITRAGE, lambda found: self.arbitrage.update(a.key for a in found))

    def on_surface(self, surface) -> None:
        fair = self.engine.market.fair
        snap = surface.snapshot
        self.snapshots += 1
        stale = self.engine.settings.market.stale_after_s
        at = np.datetime64(snap.timestamp.replace(tzinfo=None), "ms")
        fresh = (at - snap.quote_time).astype(np.float64) / 1e3 <= stale
        keys = snap.series_key
        for key in np.unique(keys):
            self.fresh_per_expiry.append(float(np.sum(fresh & (keys == key))))
        if fair is None:
            return
        st = self.engine.numerics.fair_value.settings
        rows = fit_rows(surface, st)
        days = surface.maturity * 365.0
        in_window = np.unique(keys[(days >= st.min_expiry_days) & (days <= st.max_expiry_days)])
        self.fair_window_expiries.append(len(in_window))
        counts = {key: int(np.sum(rows & (keys == key))) for key in in_window}
        self.fit_per_expiry += counts.values()
        self.fit_min_by_snapshot.append(min(counts.values(), default=0))
        for key, n in counts.items():
            if n < st.min_quotes and len(self.thin) < 20:       # why an expiry is thin: its quotes' filters
                codes, found = np.unique(surface.filter_reason[keys == key], return_counts=True)
                self.thin.append({"snapshot": self.snapshots, "expiry": str(key),
                                  "filters": {Filter(int(c)).name: int(m) for c, m in zip(codes, found)}})
        self.slices.update(s.status for s in fair.slices)
        self.reasons.update(f"{s.status}: {s.reason.split(' (')[0].split(':')[0]}" for s in fair.slices
                            if s.status != "ok")
        self.slice_count += len(fair.slices)
        self.trusted += int(fair.trusted()[:-1].sum())

    def result(self) -> dict:
        def dist(v: list[float]) -> dict:
            return {"median": statistics.median(v), "min": min(v), "max": max(v)} if v else {}
        return {
            "snapshots": self.snapshots,
            "fresh_quotes_per_expiry": dist(self.fresh_per_expiry),
            "fit_quotes_per_fair_expiry": dist(self.fit_per_expiry),
            "fair_window_expiries_median": statistics.median(self.fair_window_expiries)
            if self.fair_window_expiries else 0,
            "fit_quotes_thinnest_expiry_by_snapshot": self.fit_min_by_snapshot,
            "thin_expiries": self.thin,
            "slices": dict(self.slices), "not_ok_reasons": dict(self.reasons.most_common(8)),
            "slices_total": self.slice_count, "slices_trusted": self.trusted,
            "signals": {k: len(v) for k, v in self.signals.items()}, "arbitrage": len(self.arbitrage),
        }


async def measure(seconds: float, config: Path | None, seed: int, speed: float,
                  mispricing_rate: float | None = None, mispricing_size: float | None = None) -> dict:
    gw = PracticeGateway(gateway_settings(seed, speed, mispricing_rate, mispricing_size))
    port = await gw.start(HOST, 0)
    settings = workstation_settings(config, port)
    with tempfile.TemporaryDirectory(prefix="ibfair-") as tmp:
        engine = build_engine(settings, Path(tmp))
        tally = Tally(engine)
        try:
            await engine.start()
            t0 = time.monotonic()
            while tally.snapshots == 0 and time.monotonic() - t0 < 300:       # a cold numba cache compiles first
                await asyncio.sleep(0.2)
            await asyncio.sleep(seconds)
            feed = engine.feed
            out = tally.result()
            out.update(seconds=seconds, wanted=len(feed.wanted(feed.streams.index_price())),
                       expiries=len(feed._contracts), coverage=feed.coverage, rotation_s=feed.rotation_s,
                       market={k: getattr(settings.market, k) for k in
                               ("min_expiry_days", "max_expiry_days", "strike_window", "snapshot_interval_s",
                                "stale_after_s")}, line_budget=settings.ib.line_budget)
            plan = getattr(feed, "plan", None)        # the watch plan (absent before it existed)
            if plan is not None:
                out.update(watched_expiries=len(plan.watched), skipped_expiries=len(plan.skipped),
                           capacity=plan.capacity)
            return out
        finally:
            await engine.stop()
            await gw.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--mispricing-rate", type=float, default=None,
                   help="planted mispricings per simulated second (default: the simulator's; the soak's: 2)")
    p.add_argument("--mispricing-size", type=float, default=None,
                   help="typical planted mispricing, vol (default: the simulator's; the soak's: 0.05)")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    r = asyncio.run(measure(a.seconds, a.config, a.seed, a.speed, a.mispricing_rate, a.mispricing_size))
    print(json.dumps(r, indent=1, default=str))
    if a.json:
        a.json.write_text(json.dumps(r, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
