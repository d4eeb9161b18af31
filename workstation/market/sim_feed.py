"""SimulatedFeed: the MarketFeed of the built-in simulator.

Real-time clock: a snapshot every `interval_s` wall seconds (the market moves `interval_s * speed` simulated
seconds in between). Manual clock ("as fast as possible", backtests): each snapshot first advances the clock by
`interval_s * speed` simulated seconds, with no waiting. Outside the session the feed reports STALE ("market
closed") and keeps sending the last quotes.

In real time the world advances on the event loop's thread (the paper exchange fills against it there), and the
snapshot is computed from the market's frozen state in a thread of its own: quoting the full chain (26,000 options)
is ~10 ms of numpy the window's thread need not wait for.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from workstation.domain import ChainSnapshot
from workstation.market.feed import FeedState, StatusMixin, closed_within
from workstation.sim.market import MarketState
from workstation.sim.world import SimWorld


class SimulatedFeed(StatusMixin):
    """Chain snapshots of the simulated market of `world`."""

    source = "sim"

    def __init__(self, world: SimWorld, interval_s: float = 5.0, underlying: str = "SPX",
                 min_expiry_days: float = 0.0, max_expiry_days: float = 400.0, strike_window: float = 0.25,
                 min_wall_interval_s: float = 0.5) -> None:
        self.world = world
        self.interval_s = interval_s                     # market time between snapshots
        self.min_wall_interval_s = min_wall_interval_s
        self._chain = (underlying, min_expiry_days, max_expiry_days, strike_window)
        self._closed = asyncio.Event()
        self._sequence = 0
        self._quoter: ThreadPoolExecutor | None = None       # real time only: snapshots off the loop's thread
        self._init_status()

    @classmethod
    def from_settings(cls, settings, world: SimWorld | None = None, manual: bool = False) -> SimulatedFeed:
        m = settings.market
        return cls(world or SimWorld.from_settings(settings, manual=manual), m.snapshot_interval_s, m.underlying,
                   m.min_expiry_days, m.max_expiry_days, m.strike_window, m.simulator.min_wall_interval_s)

    @property
    def clock_label(self) -> str:
        """"sim ×N": the market clock is simulated, N times the wall clock (or "sim, stepped" when manual)."""
        clock = self.world.clock
        return "sim, stepped" if clock.manual else f"sim ×{clock.speed:,g}"

    async def connect(self) -> None:
        self._closed.clear()
        self._update_status()

    async def close(self) -> None:
        self._closed.set()
        if self._quoter is not None:
            self._quoter.shutdown(wait=False)
            self._quoter = None
        self._set_status(FeedState.DISCONNECTED, self.world.market.now, "closed")

    def select_chain(self, underlying: str, min_expiry_days: float, max_expiry_days: float,
                     strike_window: float) -> None:
        if underlying not in self.world.market.underlyings:
            raise ValueError(f"the simulator lists {list(self.world.market.underlyings)}, not {underlying!r}")
        self._chain = (underlying, float(min_expiry_days), float(max_expiry_days), float(strike_window))

    def _update_status(self) -> None:
        market = self.world.market
        if market.is_open:
            self._set_status(FeedState.CONNECTED, market.now, "simulated market open")
        else:
            self._set_status(FeedState.STALE, market.now, "market closed")

    @property
    def wall_interval_s(self) -> float:
        """Wall-clock seconds between snapshots: the market-time interval compressed by the clock's speed,
        but never under `min_wall_interval_s` (so a fast simulation does not outrun the engine)."""
        return max(self.interval_s / self.world.clock.speed, self.min_wall_interval_s)

    def snapshot_now(self) -> ChainSnapshot:
        """Sync the world and take one snapshot of the chosen chain."""
        snap = self._quote(*self._advance())
        self._update_status()
        return snap

    def _advance(self) -> tuple[MarketState, int]:
        """Sync the world (the exchange's events go out here) and freeze the market: the loop's part."""
        self.world.sync()
        self._sequence += 1
        return self.world.market.state(), self._sequence

    def _quote(self, state: MarketState, sequence: int) -> ChainSnapshot:
        """The chosen chain's snapshot at `state` (a pure function of it: any thread)."""
        market = self.world.market
        rows = market.select_rows(*self._chain, state=state)
        return market.snapshot(rows, self._chain[0], sequence, state=state)

    async def _snapshot_off_the_loop(self) -> ChainSnapshot:
        if self._quoter is None:
            self._quoter = ThreadPoolExecutor(1, thread_name_prefix="sim-quotes")
        state, sequence = self._advance()
        snap = await asyncio.get_running_loop().run_in_executor(self._quoter, self._quote, state, sequence)
        self._update_status()
        return snap

    async def snapshots(self) -> AsyncIterator[ChainSnapshot]:
        clock = self.world.clock
        if self.status.state is FeedState.DISCONNECTED:
            await self.connect()
        next_at = time.monotonic()
        first = True
        while not self._closed.is_set():
            if clock.manual:
                if not first:
                    clock.advance(self.interval_s)     # as fast as possible: one market interval each
                await asyncio.sleep(0)
            else:
                delay = next_at - time.monotonic()
                if delay > 0:
                    if await closed_within(self._closed, delay):
                        return
                next_at += self.wall_interval_s
            first = False
            yield self.snapshot_now() if clock.manual else await self._snapshot_off_the_loop()
