"""The engine core: lifecycle, the snapshot pump and one cycle, composing the sub-engines.

Each sub-engine is built here with its collaborators (the bus, the clock, the book, the order manager, a task
spawner) and holds no reference back to the engine:

    numerics    surface, fair value, fit, signal scan (worker thread)       engine/numerics.py
    market      the last cycle's market: prices, Greeks, freshness            engine/market_view.py
    marking     marks, position Greeks, fills booked, the day's P&L explain   engine/marking.py
    supervisor  trading state, risk monitor, halts, the room under limits     engine/supervisor.py
    desk        build, price, check and route every order; manual tickets     engine/order_desk.py
    signal_desk sizing, approval and rejection of signals                     engine/signal_desk.py
    exits       the exit rules; hedging: the delta hedge                      engine/exits.py, hedging.py
    news        broker and feed callbacks                                     engine/news.py
    reconciler  journal -> book at start; book <-> broker                     execution/reconcile.py

The engine's public methods are those sub-engines' (listed in `_commands`), so the window, headless mode and
backtests drive one object.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from .. import bus as topics
from .. import day_restore
from ..analytics.views import VolDesk
from ..bus import EventBus
from ..config import Settings, problems_of, save_overrides
from ..domain import ChainSnapshot, Severity, TradingState
from ..events import CycleReport
from ..execution.combo_desk import ComboDesk
from ..execution.hedger import Hedger
from ..execution.orders import OrderManager
from ..execution.reconcile import Reconciler
from ..execution.recovery import Recovery
from ..portfolio.book import Book, trading_day_of
from ..strategy.surface import Surface
from ..workers import numerics_executor
from . import reporting
from .alerting import Alerts
from .exits import ExitDesk
from .face import EngineFace
from .hedging import HedgeDesk
from .housekeeping import Housekeeping
from .market_view import MarketView
from .marking import Marking
from .news import BrokerNews
from .numerics import CycleNumerics
from .order_desk import OrderDesk
from .signal_desk import SignalDesk
from .supervisor import RiskSupervisor
from .tasks import Tasks

log = logging.getLogger(__name__)

STOP_CANCEL_WAIT_S = 10.0     # at stop, the longest wait for the broker to acknowledge our cancels


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Engine(EngineFace):
    """One cycle per snapshot over the composed sub-engines, around one bus."""

    def __init__(self, settings: Settings, feed: Any, broker: Any, journal: Any, *, bus: EventBus | None = None,
                 clock: Callable[[], datetime] = utcnow, connection: str = "simulated",
                 overrides_path: Path | None = None, executor: ThreadPoolExecutor | None = None) -> None:
        self.settings = settings
        self._base_settings = settings
        self.feed, self.broker, self.journal = feed, broker, journal
        self.bus = bus or EventBus()
        self.clock = clock
        self.connection = connection
        self.overrides_path = overrides_path
        self.executor = executor or numerics_executor()
        self.run_id = journal.next_client_order_id("RUN")
        self.alerts = Alerts(journal, self.bus, clock, self.run_id)
        self.alert, self.raise_alert = self.alerts.alert, self.alerts.raise_alert
        self.tasks = Tasks(self.alert)
        self._spawn = self.tasks.spawn
        self.book = Book()
        current = lambda: self.settings     # noqa: E731  (sub-engines read the settings in force)

        self.numerics = CycleNumerics(settings, journal, self.bus, self.alert, self.journal_failed)
        self.market = MarketView(current, clock, self.book)
        self.marking = Marking(self.book, self.market, journal, self.bus, self.journal_failed)
        self.supervisor = RiskSupervisor(current, clock, self.book, self.market, self.bus, self.alert,
                                         self.executor, lambda: self.marking.attribution_day)
        self.orders = OrderManager(broker, journal, settings.execution, lambda e: self.news.order_event_applied(e),
                                   lambda f: self.news.fill_applied(f), lambda o: self.bus.publish(topics.ORDER, o),
                                   clock)
        self.orders.on_journal_error = self.supervisor.journal_failed
        self.desk = OrderDesk(current, clock, self.market, self.book, self.orders, self.supervisor, self.bus,
                              self.alert, self._spawn, connection, lambda: self.numerics.calibrator.last_good)
        self.signal_desk = SignalDesk(current, clock, self.desk, self.supervisor, journal, self.bus, self.alert)
        self.exits = ExitDesk(current, self.book, self.orders, self.desk, self.numerics.signal_model)
        self.hedging = HedgeDesk(Hedger(settings.hedging), self.book, self.orders, self.desk)
        self.reconciler = Reconciler(journal, broker, self.orders, self.book, clock, self.alert, self.run_id,
                                     self.market.contract_by_id)
        self.recovery = Recovery(
            self.supervisor.trading, clock, self.reconciler.reconcile, self.supervisor.state_changed,
            lambda code, severity, message: self.alert(code, severity, message, source="ib"), self._spawn,
            lambda: bool(getattr(self.broker, "connected", True)),
            lambda: self.settings.ib.daily_restart if self.settings.execution.broker == "ib" else None)
        self.news = BrokerNews(current, self.orders, self.marking, self.exits, self.recovery, self.bus, self.alert,
                               self.journal_failed, lambda: self._running, self.publish_status)
        self.news.listen(broker, feed)
        if hasattr(broker, "place_combo"):     # after the news: leg fills are journaled and booked by the engine
            self.desk.combos = ComboDesk(broker, journal, self.desk.check_combo, self.book, clock)
            self.news.combo_ids = lambda client_order_id: client_order_id in self.desk.combos.sent
            self.desk.combos.on_booked.append(self.exits.package_filled)     # packages are closed as packages
        self.housekeeping = Housekeeping(self.recovery, clock, lambda: self.market.snapshot)
        data_dir = Path(journal.path).parent if isinstance(getattr(journal, "path", None), (str, Path)) else None
        self.vol_views = VolDesk(self.bus.publish, data_dir / "vol-metrics" if data_dir else None,
                                 data_dir / settings.storage.recordings_dir if data_dir else None)

        self.cycle_ms: deque[float] = deque(maxlen=10_000)
        self.snapshots = self.skipped = self._cycle_seq = 0
        self._latest: ChainSnapshot | None = None
        self._wake = asyncio.Event()
        self._running = False
        self.stopping = False                 # stop() began: a cycle in flight acts no further
        self.stopped = asyncio.Event()
        self.closers: list[Callable[[], Any]] = []   # run at stop (journal, alert router, metrics)
        self.alert_router: Any = None

    # ================================================================== lifecycle
    async def start(self) -> None:
        """Recover from the journal, connect, reconcile with the broker, then run cycles in the background."""
        self.recover()
        await self.feed.connect()
        await self.broker.connect()
        await self.recovery.reconcile("start")
        m = self.settings.market
        self.feed.select_chain(m.underlying, m.min_expiry_days, m.max_expiry_days, m.strike_window)
        self._running = True
        self._spawn(self._pump(), "feed pump", long_running=True)
        self._spawn(self._cycle_loop(), "cycle loop", long_running=True)
        self.housekeeping.start(self.tasks)
        self.publish_status()

    def recover(self) -> None:
        """Before connecting: the book and working orders from the journal, and today back on screen (the
        blotter, alerts, P&L explain; signals a crash left open closed with the reason)."""
        fills = self.reconciler.recover_from_journal()
        if self.desk.combos is not None:
            self.desk.combos.recover()
        self.exits.recovered(fills, self.desk.combos.sent.values() if self.desk.combos is not None else ())
        self.marking.explain = day_restore.restore_day(
            self.journal, trading_day_of(self.clock()), self.clock(), self.orders.records.values(),
            lambda record: self.bus.publish(topics.ORDER, record), self.alert_router)
        self.marking.publish()

    async def stop(self) -> None:
        """Stop cycling; cancel working orders if the config says so; close the feed and the broker."""
        if not self._running and self.stopped.is_set():
            return
        self._running, self.stopping = False, True
        self._wake.set()
        try:                            # the day as the next start will find it
            day_restore.close_open_signals(self.journal, self.signals.open.values(), self.clock(),
                                           day_restore.SHUTDOWN_REASON)
            day_restore.save_explain(self.journal, self.marking.explain)
        except Exception:
            log.exception("the day's signals and P&L explain were not journaled at shutdown")
        await self.housekeeping.stop()
        if self.settings.execution.on_exit == "cancel" and self.broker.connected:
            try:
                n = await self.desk.cancel_all()       # sent even when the journal cannot record them
                deadline = time.monotonic() + STOP_CANCEL_WAIT_S
                while n and self.desk.any_working() and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)          # until every cancel is acknowledged and journaled (bounded)
            except Exception:
                log.exception("cancelling the working orders at shutdown failed: check them at the broker")
        await self.tasks.cancel_all()
        self.vol_views.close()
        for closer in (self.feed.close, self.broker.close):
            try:
                await closer()
            except Exception:
                log.exception("closing %s failed", closer)
        self.executor.shutdown(wait=False, cancel_futures=True)
        for close in self.closers:
            try:
                close()
            except Exception:
                log.exception("closing %s failed", close)
        self.stopped.set()

    async def settle_tasks(self) -> None:
        """Wait for every task the cycle spawned (order sends, cancels, the monitor): backtests call this
        between snapshots so each cycle sees the effects of the last one (the live loop lets them overlap)."""
        await self.tasks.settle()

    async def _pump(self) -> None:
        """Keep only the newest snapshot; count the ones a slow cycle made us skip."""
        async for snapshot in self.feed.snapshots():
            if not self._running:
                break
            if self._latest is not None:
                self.skipped += 1
            self._latest = snapshot
            self._wake.set()

    async def _cycle_loop(self) -> None:
        while self._running:
            await self._wake.wait()
            self._wake.clear()
            snapshot, self._latest = self._latest, None
            if snapshot is None:
                continue
            try:
                await self.run_cycle(snapshot)
            except CycleStopped:
                break
            except Exception as exc:   # one bad snapshot must not stop the engine, failing ones stop trading
                log.exception("cycle failed")
                self.alert("ENGINE_ERROR", Severity.ERROR, f"cycle failed: {exc}")
                self.supervisor.cycle_failed(exc)
            else:
                self.supervisor.cycle_ok()

    def cycle_failed(self, exc: BaseException) -> None:
        self.supervisor.cycle_failed(exc)

    def journal_failed(self, what: str, exc: BaseException) -> None:
        """A journal write failed: HALTED until resumed (nothing trades on a record that was not kept)."""
        self.supervisor.journal_failed(what, exc)

    # ================================================================== one cycle
    async def run_cycle(self, snapshot: ChainSnapshot) -> CycleReport:
        """One full cycle on `snapshot` (also called directly by backtests, deterministically).

        The numerics (surface, fit, model values, signal scan) run in the worker thread; the loop thread
        only publishes, journals and routes, so the GUI sharing the loop never waits on a calculation.
        """
        now = snapshot.timestamp
        self.snapshots += 1
        room = self.supervisor.room({r.order.contract.contract_id for r in self.orders.working()})
        loop = asyncio.get_running_loop()
        done = await loop.run_in_executor(self.executor, self.numerics.compute, snapshot, now, room.for_signal,
                                          self.market.fair)
        _stop_if_stopping(self)
        surface, fit, model, timings = done.surface, done.fit, done.model, done.timings
        if done.verdict.skip:
            return self._rejected_snapshot(snapshot, surface, done.verdict.skip_reason, timings)
        if done.verdict.future_dropped:
            self.alert("DATA_REJECTED", Severity.WARNING, done.verdict.future_dropped, source="sanity")
        snapshot = surface.snapshot                  # jumped quotes blanked: nothing downstream sees them
        self.numerics.after_fair(done.fair, self.market.fair)
        self.market.snapshot, self.market.fair = snapshot, done.fair
        self.bus.publish(topics.SNAPSHOT, snapshot)
        self.supervisor.new_day_if_needed(trading_day_of(now), now)
        t = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal t
            now_t = time.perf_counter()
            timings[name] = timings.get(name, 0.0) + (now_t - t) * 1e3
            t = now_t

        self.market.surface = surface
        self.bus.publish(topics.SURFACE, surface)
        self.numerics.after_fit(fit, surface, now)
        if model is not None:
            self.market.model = model
        with self.journal.transaction():      # one commit for the cycle's signal changes
            self.signals.update(done.candidates, surface, now)
        self.signal_desk.size_signals()
        await _let_the_window_paint(self)
        self.signal_desk.arbitrage_found(done.arbitrage)
        fresh = self.market.check_freshness(snapshot, self.alert)
        if model is not None and not fresh.index_stale:
            await _auto_execute(self)
        lap("signals")
        await _let_the_window_paint(self)

        if not fresh.index_stale:             # a frozen index marks nothing
            self.marking.mark(surface, model)
        lap("book")
        await _let_the_window_paint(self)

        if not fresh.index_stale:
            self.exits.run(now)
            if not fresh.future_stale:
                self.hedging.run(self.market.snapshot, now)
        if not self.recovery.link_held:       # working orders are left alone while the link is not trusted
            await self.desk.work_orders(now)
        lap("orders")

        if model is not None and not self.supervisor.busy:
            self._spawn(self.supervisor.monitor(now, surface, fit.model_params or fit.params), "monitor")
        _update_vol_views(self, now, surface)
        self.publish_status()
        report = self._report(now, len(snapshot), int(surface.usable.sum()), timings, surface.filter_counts)
        self.cycle_ms.append(report.total_ms)
        return report

    def _report(self, now: datetime, options: int, usable: int, timings: dict[str, float],
                counts: dict[str, int]) -> CycleReport:
        self._cycle_seq += 1
        report = CycleReport(self._cycle_seq, now, options, usable, timings, self.skipped, len(self.signals.open),
                             counts)
        self.bus.publish(topics.CYCLE, report)
        return report

    def _rejected_snapshot(self, snapshot: ChainSnapshot, surface: Surface, reason: str,
                           timings: dict[str, float]) -> CycleReport:
        """A snapshot that failed the sanity check as a whole: nothing acts on it (no fit, signal, mark, hedge
        or order); the last good snapshot stays the engine's market; an alert says why."""
        self.alert("DATA_REJECTED", Severity.ERROR, f"snapshot {snapshot.timestamp:%H:%M:%S} UTC skipped: {reason}",
                   source="sanity")
        log.warning("snapshot skipped: %s", reason)
        self.publish_status()
        return self._report(snapshot.timestamp, len(snapshot), 0, timings,
                            dict(surface.filter_counts, SNAPSHOT_SKIPPED=1))

    # ================================================================== the trader's switches
    def set_auto_execute(self, on: bool) -> None:
        self.signal_desk.set_auto_execute(on)
        self.publish_status()

    def kill_switch(self, by: str = "trader") -> None:
        """Cancel every working order and HALT (only the trader can resume)."""
        self.supervisor.kill_switch(by, self.desk.cancel_all, self._spawn)
        self.publish_status()

    def resume_trading(self, override: bool = False) -> bool:
        resumed = self.supervisor.resume(override)
        self.publish_status()
        return resumed

    async def accept_broker_positions(self, by: str = "trader") -> dict[int, tuple[int, int]]:
        """The trader takes the broker's positions as the truth (journaled adjustment fills) and the
        RECONCILE_MISMATCH hold is lifted by a reconcile that passes."""
        adjusted = await self.reconciler.accept_broker_positions(by)
        await self.recovery.reconcile(f"broker positions accepted by {by}")
        self.publish_status()
        return adjusted

    def apply_settings(self, new: Settings, source: str = "settings dialog") -> list[str]:
        """Take new settings from the next cycle on; journal every changed field and write the overrides file."""
        if not isinstance(new, Settings):
            return [f"expected Settings, got {type(new).__name__}"]
        problems = problems_of(new)        # the rules across fields, which assignments alone do not check
        if problems:
            return problems
        new = new.model_copy(deep=True)
        for path, old, value in reporting.changed_fields(self.settings.model_dump(mode="json"),
                                                         new.model_dump(mode="json")):
            self.journal.record_setting_change(path, old, value, source)
        self.settings = new
        self.numerics.configure(new)
        self.signals.config = new.signals
        self.hedger.config = new.hedging
        self.orders.config = new.execution
        if self.overrides_path is not None:
            try:
                save_overrides(new, self._base_settings, self.overrides_path)
            except OSError as exc:
                return [f"settings applied but not saved to {self.overrides_path}: {exc}"]
        self.bus.publish(topics.SETTINGS, new)
        return []

    # ================================================================== reporting
    def publish_status(self) -> None:
        self.bus.publish(topics.STATUS, reporting.status(self))

    def summary(self) -> dict:
        """The headless summary (JSON keys are an interface: see the README)."""
        return reporting.summary(self)


class CycleStopped(Exception):
    """stop() began while a cycle was in flight: the cycle sends, marks and hedges nothing more."""


def _stop_if_stopping(engine: Engine) -> None:
    if engine.stopping:
        raise CycleStopped


async def _auto_execute(engine: Engine) -> None:
    """The cycle's auto-execution (when on and trading is ACTIVE), handing the loop back to the window after each
    order; it stops if the trader switches auto-execution off, or trading stops, meanwhile."""
    if not engine.auto_execute or engine.state is not TradingState.ACTIVE:
        return
    for _ in engine.signal_desk.auto_approve_steps():
        await _let_the_window_paint(engine)
        if not engine.auto_execute or engine.state is not TradingState.ACTIVE:
            break


async def _let_the_window_paint(engine: Engine) -> None:
    """Hand the loop back between the cycle's steps on the window's thread: each step takes a few ms, but run
    back to back on the full chain (and on a loaded machine) they held the loop for 60-100 ms, and the window
    froze for that long. Only the engine's own cycle runs these steps, one cycle at a time; if stop() came in
    meanwhile, the cycle ends here (an order sent after the shutdown's cancels would be left working)."""
    await asyncio.sleep(0)
    _stop_if_stopping(engine)


def _update_vol_views(engine: Engine, now: datetime, surface: Surface) -> None:
    """The skew/term, realised-vol and risk-by-expiry views, brought up to this cycle in a task."""
    model = engine.market.model
    positions = [p for p in engine.book.positions.values() if p.quantity]
    engine._spawn(engine.vol_views.update(now, surface, model.iv if model is not None else None, engine.book,
                                          engine.market.position_markets(positions, surface)[:3], engine.executor,
                                          positions), "vol views")
