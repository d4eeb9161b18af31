"""A real Engine on the simulated market with a manual clock, the paper broker and a journal in tmp."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sim_day import SIM_DAY  # noqa: F401  (the pinned simulated trade date; HESTON_TEST_SIM_DAY picks another)
from workstation.config import Settings
from workstation.engine import Engine
from workstation.execution.paper import PaperBroker
from workstation.market.sim_feed import SimulatedFeed
from workstation.sim.clock import SimClock
from workstation.sim.world import SimWorld
from workstation.storage import Journal


def fast_settings(**sections) -> Settings:
    """Default settings on the pinned simulated day, an always-open market and signals that need little
    history."""
    s = Settings()
    s.market.simulator.start_date = SIM_DAY
    s.market.simulator.always_open = True
    s.market.simulator.mispricing_max_spreads = 100.0   # planted in full: signals to trade (arbitrage too)
    s.signals.min_history = 4
    s.risk.allow_uncovered_shorts = True
    for dotted, value in sections.items():
        section, field = dotted.split("__")
        setattr(getattr(s, section), field, value)
    return s


class SimRig:
    """Engine + world + feed + broker; `await rig.step()` advances market time and runs one cycle."""

    def __init__(self, tmp: Path, settings: Settings | None = None, start: datetime | None = None,
                 account: Path | None = None) -> None:
        """`start` (timezone-aware) starts the market at that instant instead of the configured day's open;
        `account`: the paper account on disk (a restart on the same file resumes it, ids keep counting)."""
        self.settings = settings or fast_settings()
        sim = self.settings.market.simulator
        clock = SimClock(start, always_open=sim.always_open, manual=True) if start is not None else None
        self.world = SimWorld(sim, self.settings.execution.paper, manual=True, clock=clock, account_path=account)
        self.feed = SimulatedFeed.from_settings(self.settings, world=self.world)
        self.broker = PaperBroker(self.world)
        self.journal = Journal(Path(tmp) / "journal.sqlite")
        self.engine = Engine(self.settings, self.feed, self.broker, self.journal, clock=self.world.clock.now)

    async def open(self) -> "SimRig":
        await self.feed.connect()
        await self.broker.connect()
        m = self.settings.market
        self.feed.select_chain(m.underlying, m.min_expiry_days, m.max_expiry_days, m.strike_window)
        return self

    async def step(self, seconds: float = 5.0):
        """Advance the market, let the exchange match, run one engine cycle, settle the broker events."""
        self.world.clock.advance(seconds)
        self.broker.pump()
        report = await self.engine.run_cycle(self.feed.snapshot_now())
        await self.settle()
        return report

    async def settle(self) -> None:
        """Let spawned order tasks run and deliver the exchange's answers."""
        import asyncio
        for _ in range(3):
            await asyncio.sleep(0)
            self.world.clock.advance(0.2)
            self.broker.pump()
            await asyncio.sleep(0)

    async def close(self) -> None:
        import asyncio
        await asyncio.gather(*self.engine._tasks, return_exceptions=True)
        self.engine.executor.shutdown(wait=True)
        self.journal.close()


def tradable_signal(engine):
    """The first NEW signal that passes every pre-trade check now (None when there is none): tests that want
    "a signal" to trade take one the limits allow, not whichever came first."""
    return next((s for s in engine.signals.new_signals() if engine.preview_signal(s.signal_id).approved), None)


async def trade_until_held(rig, cid: int, side: str, quantity: int, limit, holding: int) -> None:
    """Send an order (limit None: the engine's own price) and step the market until the book holds `holding` of
    `cid` (at most 10 cycles)."""
    preview = rig.engine.submit_order(cid, side, quantity, limit)
    assert preview.sent, preview.message
    for _ in range(10):
        await rig.step()
        if rig.engine.book.quantity(cid) == holding:
            break
    assert rig.engine.book.quantity(cid) == holding


async def step_until_tradable_signal(rig, steps: int, seconds: float = 15.0):
    """Step the simulated market `seconds` at a time, up to `steps` times, until `tradable_signal` finds one."""
    for _ in range(steps):
        await rig.step(seconds)
        if (signal := tradable_signal(rig.engine)) is not None:
            return signal
    return None


TRADABLE_EDGE_POINTS = 0.5     # value left against today's limit: a quote that drifts a few ticks still fills


def signal_in_table(window, engine, tradable: bool, found: list):
    """A wait predicate: true once the mispricings table shows a NEW signal; the signal is appended to `found`.

    `tradable`: one that passes the pre-trade checks now, and whose value still stands at least
    TRADABLE_EDGE_POINTS beyond the limit its order would get now. An older signal whose mispricing has mostly
    decayed is rightly never paid past its value (the order rests, then times out), and on a loaded machine the
    first NEW signal in the table can be such an old one."""
    def ready() -> bool:
        for sig in engine.open_signals():
            if sig.signal_id not in window.mispricings.model.keys() or sig.state.value != "NEW":
                continue
            if tradable:
                preview = engine.preview_signal(sig.signal_id)
                order = preview.order
                if not preview.approved or order is None or order.limit_price is None:
                    continue
                if sig.side.sign * (preview.model_price - order.limit_price) < TRADABLE_EDGE_POINTS:
                    continue
            found.append(sig)
            return True
        return False
    return ready
