"""Compile the numerical kernels once, ahead of the first launch (`make run` / `make test` call this).

numba compiles a kernel the first time it runs and caches the machine code beside the source (`cache=True`);
without this step the first window would wait half a minute for its first surface. Runs a few engine cycles
on the simulator with a manual clock and a throw-away journal, so every kernel a cycle uses (implied vols,
the Heston pricer and its gradient, calibration, residuals, the simulator's paths) is compiled and cached.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path


async def _cycles(n: int) -> int:
    from workstation.config import Settings
    from workstation.engine import Engine
    from workstation.execution.paper import PaperBroker
    from workstation.market.sim_feed import SimulatedFeed
    from workstation.sim.world import SimWorld
    from workstation.storage import Journal

    settings = Settings()
    settings.market.simulator.always_open = True
    world = SimWorld.from_settings(settings, manual=True)
    feed = SimulatedFeed.from_settings(settings, world=world)
    broker = PaperBroker(world)
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "warmup.sqlite", durable=False)
        engine = Engine(settings, feed, broker, journal, clock=world.clock.now)
        await feed.connect()
        await broker.connect()
        m = settings.market
        feed.select_chain(m.underlying, m.min_expiry_days, m.max_expiry_days, m.strike_window)
        fits = 0
        for _ in range(n):
            world.clock.advance(m.snapshot_interval_s)
            broker.pump()
            await engine.run_cycle(feed.snapshot_now())
            fits += engine.last_fit is not None
        await asyncio.gather(*engine._tasks, return_exceptions=True)
        engine.executor.shutdown(wait=True)
        journal.close()
    return fits


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    print("compiling the numerical kernels once (numba cache; a minute on a fresh install)...", flush=True)
    fits = asyncio.run(_cycles(3))
    from workstation.kernels import record
    kernels = record()                  # what the engine preloads at start, while the window is built
    print(f"kernels ready in {time.perf_counter() - started:.1f} s ({kernels} kernels, {fits} fits)", flush=True)
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main())
