"""Engine cycle benchmark: a full cycle on a ~2,000-option simulated snapshot, broken down by step.

Runs the real Engine on the simulated market with a manual clock (5 s of market time per snapshot),
the paper broker and a journal in a temporary directory; reports p50/p95/max per step and in total.
Target (issue 5): total p95 <= 50 ms on this machine. Writes benchmarks/results/engine.json.

    python benchmarks/engine.py [--cycles 200] [--full]

`--compare-with REF`: the same cycles through the engine of git revision REF (e.g. the commit before a
refactor) and through today's, interleaved in one run (two rounds each, same seed), printed side by side with
the ratio today/REF; both scan the `model` signal family only (the one REF knows), so the same work is timed.

`--full`: the real-size chain (`market.simulator.listing: full`, expiries to three years, strikes within
±40 %): about 20,000 options a snapshot; target (issue 23) p95 <= 50 ms on one core. Writes engine_full.json.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import subprocess
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


def engine_at(ref: str) -> type:
    """The Engine class of git revision `ref` (its engine module loaded inside today's package)."""
    root = Path(__file__).resolve().parents[1]
    for path in ("workstation/engine.py", "workstation/engine/core.py"):
        shown = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=root, capture_output=True, text=True)
        if shown.returncode == 0:
            break
    else:
        raise SystemExit(f"no engine module at {ref}")
    if path.endswith("core.py"):
        raise SystemExit(f"{ref} already has the engine package: compare two checkouts instead")
    tmp = Path(tempfile.mkdtemp()) / "engine_ref.py"
    tmp.write_text(shown.stdout)
    spec = importlib.util.spec_from_file_location("workstation._engine_ref", tmp)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.Engine


async def measure(cycles: int, warmup: int, full: bool = False, engine_cls: type = Engine,
                  families: list[str] | None = None, cv_beside: bool = False, max_expiries: int | None = None,
                  max_spreads: float = 100.0) -> tuple[dict[str, list[float]], int]:
    settings = Settings()
    if max_expiries is not None:
        settings.calibration.max_expiries = max_expiries
    if families is not None:
        settings.signals.families = families
    settings.market.simulator.always_open = True
    settings.market.simulator.mispricing_max_spreads = max_spreads   # 100: the busy market every earlier row measured
    if full:
        full_chain(settings)
    world = SimWorld.from_settings(settings, manual=True)
    feed = SimulatedFeed.from_settings(settings, world=world)
    broker = PaperBroker(world)
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "journal.sqlite")
        engine = engine_cls(settings, feed, broker, journal, clock=world.clock.now)
        engine.auto_execute = True
        if cv_beside:                   # as headless mode runs it: cross-validations in the pool
            engine.numerics.relative.background = engine.executor
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
    parser.add_argument("--compare-with", metavar="REF", help="also time the engine of git revision REF")
    parser.add_argument("--cv-beside", action="store_true",
                        help="the fair surface's cross-validation beside the cycle, as headless mode runs it "
                             "(default: in the cycle, as the window and backtests run it)")
    parser.add_argument("--max-spreads", type=float, default=100.0,
                        help="market.simulator.mispricing_max_spreads (default 100, the busy market of the earlier "
                             "rows: every planted mispricing in full; 0.5 is the arbitrage-free default market)")
    parser.add_argument("--max-expiries", type=int, default=None,
                        help="calibration.max_expiries (default: the setting's; 1000 fits every expiry)")
    args = parser.parse_args()
    if args.compare_with:
        return compare(args.compare_with, args.cycles, args.warmup, args.full)
    steps, options = asyncio.run(measure(args.cycles, args.warmup, args.full, cv_beside=args.cv_beside,
                                         max_expiries=args.max_expiries, max_spreads=args.max_spreads))
    rows = {name: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95)),
                   "max": float(np.max(v))} for name, v in steps.items()}
    print(f"engine cycle on {options} options, {args.cycles} cycles (ms)")
    print(f"{'step':<16}{'p50':>9}{'p95':>9}{'max':>9}")
    for name, r in rows.items():
        print(f"{name:<16}{r['p50']:>9.2f}{r['p95']:>9.2f}{r['max']:>9.2f}")
    p95 = rows["total (wall)"]["p95"]
    print(f"target: total p95 <= 50 ms -> {'met' if p95 <= 50 else f'missed by {p95 - 50:.1f} ms'}")
    out = RESULTS.with_name(("engine_full" if args.full else "engine") + ("_cv_beside" if args.cv_beside else "")
                            + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"options": options, "cycles": args.cycles, "cv_beside": args.cv_beside,
                               "max_expiries": args.max_expiries, "max_spreads": args.max_spreads,
                               "steps_ms": rows}, indent=2))
    return 0


def compare(ref: str, cycles: int, warmup: int, full: bool) -> int:
    """Both engines, interleaved (REF, today, REF, today) so a drifting machine loads both alike."""
    engines = {ref: engine_at(ref), "today": Engine}
    steps: dict[str, dict[str, list[float]]] = {name: {} for name in engines}
    options = 0
    for _ in range(2):
        for name, cls in engines.items():
            got, options = asyncio.run(measure(cycles // 2, warmup, full, cls, families=["model"]))
            for step, values in got.items():
                steps[name].setdefault(step, []).extend(values)
    print(f"engine cycle on {options} options, {cycles} cycles each (ms)")
    print(f"{'step':<16}{'p50 ' + ref[:8]:>14}{'p50 today':>12}{'ratio':>8}{'p95 ' + ref[:8]:>14}{'p95 today':>12}"
          f"{'ratio':>8}")
    for step in steps["today"]:
        a, b = steps[ref].get(step, [np.nan]), steps["today"][step]
        pa, pb = np.percentile(a, 50), np.percentile(b, 50)
        qa, qb = np.percentile(a, 95), np.percentile(b, 95)
        print(f"{step:<16}{pa:>14.2f}{pb:>12.2f}{pb / pa:>8.2f}{qa:>14.2f}{qb:>12.2f}{qb / qa:>8.2f}")
    out = RESULTS.with_name("engine_compare.json")
    out.write_text(json.dumps({"options": options, "cycles": cycles, "ref": ref, "steps_ms": {
        name: {step: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95))}
               for step, v in got.items()} for name, got in steps.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
