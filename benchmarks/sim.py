"""Benchmark: time to produce one 2,000-option chain snapshot of the simulated market (target <= 5 ms).

Run: `.venv/bin/python benchmarks/sim.py` — prints a table and writes benchmarks/results/sim.json.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workstation.config import SimulatorConfig  # noqa: E402
from workstation.sim.clock import SimClock  # noqa: E402
from workstation.sim.market import SimMarket  # noqa: E402

TARGET_MS = 5.0


def timed(fn, repeat: int) -> np.ndarray:
    out = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out * 1000.0


def main() -> int:
    cfg = SimulatorConfig(start_date=date(2025, 10, 1))
    clock = SimClock.from_config(cfg, manual=True)
    market = SimMarket(cfg, clock.now())
    market.advance_to(clock.advance(1800))                      # warm up (numba) and create mispricings
    rows = market.select_rows("SPX", 0, 400, 0.35)[:2000]
    assert len(rows) == 2000, len(rows)
    market.snapshot(rows, "SPX")
    snap_ms = timed(lambda: market.snapshot(rows, "SPX"), 200)
    step_ms = timed(lambda: market.advance_to(clock.advance(150)), 50)   # 5 s of wall time at speed 30
    results = {
        "snapshot_2000_options_ms": {"median": float(np.median(snap_ms)), "p95": float(np.percentile(snap_ms, 95)),
                                     "min": float(snap_ms.min())},
        "advance_150_sim_seconds_ms": {"median": float(np.median(step_ms)),
                                       "p95": float(np.percentile(step_ms, 95))},
        "target_ms": TARGET_MS, "options": int(len(rows)), "active_mispricings": len(market.mispricings()),
        "python": platform.python_version(), "machine": platform.machine(),
    }
    print(f"{'measure':<34}{'median ms':>10}{'p95 ms':>10}")
    print(f"{'snapshot, 2000 options':<34}{np.median(snap_ms):>10.3f}{np.percentile(snap_ms, 95):>10.3f}")
    print(f"{'advance 150 simulated seconds':<34}{np.median(step_ms):>10.3f}{np.percentile(step_ms, 95):>10.3f}")
    ok = np.median(snap_ms) <= TARGET_MS
    print(f"target <= {TARGET_MS} ms: {'PASS' if ok else 'FAIL'}")
    out = Path(__file__).resolve().parent / "results" / "sim.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
