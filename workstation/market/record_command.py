"""`python main.py record --duration SECONDS [--speed X] --out DIR`: record snapshots to Parquet.

`--duration` is wall-clock seconds; `--speed` multiplies simulated time (simulator only). The source is the
configured feed (`market.source`: sim or ib).
"""
from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path

from workstation.market.recorder import SnapshotRecorder


def _make_feed(settings, speed: float | None):
    source = settings.market.source
    if source == "sim":
        from workstation.market.sim_feed import SimulatedFeed
        if speed is not None:
            settings = settings.model_copy(deep=True)
            settings.market.simulator.speed = speed
        return SimulatedFeed.from_settings(settings)
    if source == "ib":
        from workstation.market.ib import IBFeed
        return IBFeed(settings)
    raise ValueError(f"cannot record from market.source={source!r} (use sim or ib)")


async def _record(settings, duration: float, speed: float | None, out: Path) -> SnapshotRecorder:
    feed = _make_feed(settings, speed)
    m = settings.market
    recorder = SnapshotRecorder(out)
    await feed.connect()
    feed.select_chain(m.underlying, m.min_expiry_days, m.max_expiry_days, m.strike_window)
    deadline = time.monotonic() + duration

    async def run() -> None:
        async for snap in feed.snapshots():
            recorder.write(snap)
            if time.monotonic() >= deadline:
                return

    try:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(run(), timeout=duration + 1.0)
    finally:
        recorder.close()
        await feed.close()
    return recorder


def run_record(settings, duration: float, speed: float | None, out: Path) -> int:
    """Record for `duration` wall seconds; print a one-line summary; return the exit code."""
    if duration <= 0:
        print(f"record: --duration must be > 0, got {duration}", file=sys.stderr)
        return 2
    if speed is not None and not 0 < speed <= 10_000:
        print(f"record: --speed must be in (0, 10000], got {speed}", file=sys.stderr)
        return 2
    try:
        rec = asyncio.run(_record(settings, duration, speed, Path(out)))
    except (ValueError, ConnectionError, ImportError, OSError) as exc:
        print(f"record: {exc}", file=sys.stderr)
        return 1
    per = rec.rows / rec.snapshots if rec.snapshots else 0
    print(f"recorded {rec.snapshots} snapshots, {per:.0f} options per snapshot, {len(rec.files)} file(s) "
          f"in {Path(out)}: {', '.join(str(f) for f in rec.files)}")
    return 0 if rec.snapshots else 1


def run_record_command(settings, args) -> int:
    """The CLI entry: `args` has .duration, .speed and .out."""
    return run_record(settings, args.duration, args.speed, Path(args.out))
