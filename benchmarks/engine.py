"""Engine cycle benchmark: a full cycle on a ~2,000-option simulated snapshot, broken down by step.

Runs the real Engine on the simulated market with a manual clock (5 s of market time per snapshot),
the paper broker and a journal in a temporary directory; reports p50/p95/max per step and in total.
Target (issue 5): total p95 <= 50 ms on this machine. Writes benchmarks/results/engine.json.

    python benchmarks/engine.py [--cycles 200] [--full]

`--full`: the real-size chain (`market.simulator.listing: full`, expiries to three years, strikes within
±40 %): about 20,000 options a snapshot; target (issue 23) p95 <= 50 ms on one core. Writes engine_full.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workstation.config import Settings  # noqa: E402
from workstation.engine import Engine  # noqa: E402
from workstation.execution.paper import PaperBroker  # noqa: E402
from workstation.market.sim_feed import SimulatedFeed  # noqa: E402
from workstation.sim.world import SimWorld  # noqa: E402
from workstation.storage import Journal  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "engine.json"


def full_chain(settings: Settings) -> Settings:
    """The real-size chain: the full listing to three years, strikes within +-40 %."""
    settings.market.simulator.listing = "full"
    settings.market.simulator.max_expiry_days = 1100
    settings.market.max_expiry_days = 1100
    settings.market.strike_window = 0.4
    return settings


async def measure(cycles: int, warmup: int, full: bool = False) -> tuple[dict[str, list[float]], int]:
    settings = Settings()
    settings.market.simulator.always_open = True
    if full:
        full_chain(settings)
    world = SimWorld.from_settings(settings, manual=True)
    feed = SimulatedFeed.from_settings(settings, world=world)
    broker = PaperBroker(world)
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "journal.sqlite")
        engine = Engine(settings, feed, broker, journal, clock=world.clock.now)
        engine.auto_execute = True
        await feed.connect()
        await broker.connect()
        m = settings.market
        feed.select_chain(m.underlying, m.min_expiry_days, m.max_expiry_days, m.strike_window)
        steps: dict[str, list[float]] = {}
        options = 0
        for i in range(warmup + cycles):
            world.clock.advance(m.snapshot_interval_s)
            snapshot = feed.snapshot_now()
            options = len(snapshot)
            t0 = time.perf_counter()
            report = await engine.run_cycle(snapshot)
            total = (time.perf_counter() - t0) * 1e3
            broker.pump()
            if i < warmup:
                continue
            for name, ms in report.timings_ms.items():
                steps.setdefault(name, []).append(ms)
            steps.setdefault("total (wall)", []).append(total)
        summary = engine.summary()
        await asyncio.gather(*engine._tasks, return_exceptions=True)   # let the last monitor run finish
        engine.executor.shutdown(wait=True)
        journal.close()
    print(f"signals {summary['signals']}, orders {summary['orders']}, fills {summary['fills']}", file=sys.stderr)
    return steps, options


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--full", action="store_true", help="the real-size chain (~20,000 options)")
    args = parser.parse_args()
    steps, options = asyncio.run(measure(args.cycles, args.warmup, args.full))
    rows = {name: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95)),
                   "max": float(np.max(v))} for name, v in steps.items()}
    print(f"engine cycle on {options} options, {args.cycles} cycles (ms)")
    print(f"{'step':<16}{'p50':>9}{'p95':>9}{'max':>9}")
    for name, r in rows.items():
        print(f"{name:<16}{r['p50']:>9.2f}{r['p95']:>9.2f}{r['max']:>9.2f}")
    p95 = rows["total (wall)"]["p95"]
    print(f"target: total p95 <= 50 ms -> {'met' if p95 <= 50 else f'missed by {p95 - 50:.1f} ms'}")
    out = RESULTS.with_name("engine_full.json") if args.full else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"options": options, "cycles": args.cycles, "steps_ms": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
