"""Wiring: the engine with the feed, broker, journal, alert router and metrics that the settings ask for."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from ..config import Settings
from ..kernels import preload
from .core import Engine, utcnow


def connection_label(settings: Settings) -> str:
    """'simulated', 'ib-paper' or 'ib-live' (the status bar colours live unmistakably)."""
    if settings.market.source != "ib" and settings.execution.broker != "ib":
        return "simulated" if settings.market.source == "sim" else settings.market.source
    return "ib-live" if settings.ib.live else "ib-paper"


def build_engine(settings: Settings, data_dir: Path, speed: float | None = None, *, console_alerts: bool = False,
                 metrics_port: int | None = None, log_dir: Path | None = None) -> Engine:
    """The engine with the feed, broker, journal, alert router and metrics that `settings` ask for."""
    from ..alerts import AlertRouter, HealthChecks, Metrics
    from ..storage import Journal
    from ..storage.paths import overrides_path

    if speed is not None:
        sim = settings.market.simulator.model_copy(update={"speed": float(speed)})
        settings = settings.model_copy(update={"market": settings.market.model_copy(update={"simulator": sim})})
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(data_dir / settings.storage.journal_file)
    feed, broker, clock = _feed_and_broker(settings, data_dir)
    engine = Engine(settings, feed, broker, journal, clock=clock, connection=connection_label(settings),
                    overrides_path=overrides_path())
    engine.executor.submit(preload)         # numba's kernels load in a worker while the window is built
    router = AlertRouter.from_settings(settings, engine.bus, log_dir=log_dir, console=console_alerts)
    router.start()
    engine.alert_router = router
    if hasattr(feed, "keep_quoted"):        # the IB feed watches what its budget allows, never less than we hold
        feed.keep_quoted = lambda: held_contracts(engine)
    engine.housekeeping.health = HealthChecks.from_settings(engine, settings, data_dir)
    closers: list[Callable[[], Any]] = [router.stop, journal.close]
    if getattr(broker, "world", None) is not None:
        closers.append(broker.world.close)          # the persistent paper account
    port = metrics_port or settings.alerts.metrics_port
    if port:
        metrics = Metrics()
        metrics.attach(engine.bus)
        metrics.start(port)
        engine.housekeeping.metrics = metrics
        closers.insert(0, metrics.stop)
    engine.closers = closers
    return engine


def _feed_and_broker(settings: Settings, data_dir: Path | None = None) -> tuple[Any, Any, Callable[[], datetime]]:
    """Feed and broker per settings; in the simulator both share one world and its clock."""
    source, route = settings.market.source, settings.execution.broker
    world = None
    if source == "sim" or route == "paper":
        from ..sim.world import SimWorld
        world = SimWorld.from_settings(settings, account_path=data_dir / "paper_account.sqlite" if data_dir else None)
    ib = None
    if source == "ib" or route == "ib":
        from ..market.ib import IBConnection
        ib = IBConnection(settings)
    if source == "sim":
        from ..market.sim_feed import SimulatedFeed
        feed = SimulatedFeed.from_settings(settings, world=world)
    elif source == "ib":
        from ..market.ib import IBFeed
        feed = IBFeed(settings, ib, slice_needs())
    else:
        from ..market.replay import ReplayFeed
        feed = ReplayFeed.from_settings(settings)
    if route == "paper":
        from ..execution.paper import PaperBroker
        broker = PaperBroker(world)
    else:
        from ..execution.ib import IBBroker
        broker = IBBroker(settings, ib)
    if world is not None and source == "sim":
        clock = world.clock.now
    elif ib is not None:
        clock = ib.now          # the server's clock: TWS real time, the practice gateway simulated time
    else:
        clock = utcnow
    return feed, broker, clock


def slice_needs():
    """What the engine's fair-value surface needs of an expiry, for the IB feed's watch plan (one home: the
    surface's settings)."""
    from ..market.ib_watch import SliceNeeds
    from ..strategy.fair_value import FairValueSettings
    fs = FairValueSettings()
    return SliceNeeds(fs.min_expiry_days, fs.max_expiry_days, fs.min_quotes, fs.max_moneyness_distance)


def held_contracts(engine: Engine) -> set[int]:
    """Contract ids the book holds or has working orders in, the legs of working packages included: the IB feed
    keeps them quoted whatever its plan (a package's legs are marked, checked and repriced from their quotes)."""
    held = set(engine.book.positions) | {r.order.contract.contract_id for r in engine.orders.working()}
    combos = engine.desk.combos
    if combos is not None:
        held |= {leg.contract.contract_id for order in combos.working.values() for leg in order.combo.legs}
    return held
