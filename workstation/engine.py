"""The trading engine: one cycle per snapshot, from quotes to risk-checked, hedged orders. Qt-free.

snapshot -> surface (forwards, IVs, filters) -> Heston fit (worker thread, warm start) -> model values
-> signals (edge + z-score) -> auto-approve / exits / hedge, each through risk.pre_trade -> orders
-> broker events -> fills -> book -> journal; the monitor (Greeks, stress, VaR) runs beside the cycle.

Every step publishes on the bus; the GUI, the journal, the alert router and the metrics subscribe. If a
cycle is still running when newer snapshots arrive, only the newest is processed and the rest are counted
as skipped. The GUI, headless mode and backtests drive this same class; only feed, broker and clock differ.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from . import bus as topics
from . import day_restore
from .bus import EventBus
from .config import Settings, problems_of, save_overrides
from .domain import (Alert, ChainSnapshot, Contract, Fill, Order, OrderEvent, OrderPurpose, OrderStatus, OrderType,
                     SecType, Severity, Side, Signal, SignalState, TradingState)
from .events import CycleReport, FitEvent, OrderPreview
from .reports import BookSummary, EngineStatus, PnlExplain, RiskLimits, RiskReport
from .execution.hedger import Hedger
from .execution.orders import OrderManager, OrderRecord
from .execution.pricing_rules import initial_limit, reprice_bound
from .execution.recovery import Recovery
from .market.freshness import Freshness, freshness
from .market.ib_codes import QUIET_CODES
from .portfolio.attribution import attribute
from .portfolio.book import Book, trading_day_of
from .portfolio.explain import DayExplain
from .portfolio.greeks import DollarGreeks, dollar_greeks
from .risk import margin, monitor, revaluation
from .risk.limits import RiskCode
from .risk.pre_trade import ContractMarket, DailyMoves, RiskContext, check
from .risk.state import StateChange, TradingStateMachine
from .sizing import PREVIEW_ID, largest_sendable
from .strategy.calibrator import Calibrator, ModelValues
from .strategy.fair_value import FairValueFit, FairValueSurface
from .strategy.sanity import SanityGuard, SanityVerdict
from .strategy.signals import SignalBook, SignalModel
from .strategy.surface import Surface, build_surface
from .workers import numerics_executor
from .analytics.views import VolDesk, book_items
from .risk import buckets

log = logging.getLogger(__name__)

RECENT_ORDERS_S = 60.0
STOP_CANCEL_WAIT_S = 10.0     # at stop, the longest wait for the broker to acknowledge our cancels


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Entry:
    """When and why we got into a position (for the exit rules)."""

    opened_at: datetime
    from_signal: bool
    usual_residual: float = math.nan    # the contract's usual IV residual when we entered (vol points)


class Revaluation(NamedTuple):
    """A full revaluation of the book by the risk monitor: when, of which positions, and its results."""

    at: datetime
    book: tuple                 # sorted (contract id, quantity) of the positions revalued
    stress: monitor.StressGrid
    var: monitor.VaR
    convention: str = "market"  # risk.greeks_from it was revalued under


class Engine:
    """Composes surface, calibration, signals, risk, orders, book, hedger and monitor around one bus."""

    def __init__(self, settings: Settings, feed: Any, broker: Any, journal: Any, *, bus: EventBus | None = None,
                 clock: Callable[[], datetime] = utcnow, connection: str = "simulated",
                 overrides_path: Path | None = None, executor: ThreadPoolExecutor | None = None) -> None:
        self.settings = settings
        self.feed, self.broker, self.journal = feed, broker, journal
        self.bus = bus or EventBus()
        self.clock = clock
        self.connection = connection
        self.overrides_path = overrides_path
        self._base_settings = settings
        self.executor = executor or numerics_executor()
        self.calibrator = Calibrator(settings.calibration)
        self.sanity = SanityGuard(settings.market.sanity)
        self.fair_value = FairValueSurface()
        self.last_fair: FairValueFit | None = None      # the fair surface of the last used snapshot (warm start)
        self.fair_ms: list[float] = []
        self.signal_model = SignalModel(settings.signals)
        # ids unique across restarts (journal counters), and the same in two runs of a backtest
        self.signals = SignalBook(settings.signals, self._on_signal, lambda: journal.next_client_order_id("S"))
        self.run_id = journal.next_client_order_id("RUN")
        self.book = Book()
        self.trading = TradingStateMachine()
        self.hedger = Hedger(settings.hedging)
        data_dir = Path(journal.path).parent if isinstance(getattr(journal, "path", None), (str, Path)) else None
        self.vol_views = VolDesk(self.bus.publish, data_dir / "vol-metrics" if data_dir else None,
                                 data_dir / settings.storage.recordings_dir if data_dir else None)
        self.orders = OrderManager(broker, journal, settings.execution, self._on_order_event_applied,
                                   self._on_fill_applied, lambda o: self.bus.publish(topics.ORDER, o), self.clock)
        self.orders.on_journal_error = self.journal_failed
        self.auto_execute = settings.signals.auto_execute
        self.read_only = not settings.execution.trading_enabled
        self.recovery = Recovery(
            self.trading, self.clock, self.reconcile, self._state_changed,
            lambda code, severity, message: self.alert(code, severity, message, source="ib"), self._spawn,
            lambda: bool(getattr(self.broker, "connected", True)),
            lambda: self.settings.ib.daily_restart if self.settings.execution.broker == "ib" else None)
        self.freshness: Freshness | None = None
        self.last_snapshot: ChainSnapshot | None = None
        self.last_surface: Surface | None = None
        self.last_model: ModelValues | None = None
        self.last_fit: FitEvent | None = None
        self.last_risk: RiskReport | None = None
        self.fit_history: deque[FitEvent] = deque(maxlen=500)
        self.cycle_ms: deque[float] = deque(maxlen=10_000)
        self.fit_ms: list[float] = []
        self.fit_rmse: list[float] = []
        self.snapshots = 0
        self.skipped = 0
        self.failed_cycles = 0
        self.alert_counts: dict[str, int] = {}
        self.entries: dict[int, Entry] = {}
        self._denied_until: dict[tuple, datetime] = {}
        self._last_marks: dict[int, tuple] = {}
        self._last_marks_at: datetime | None = None
        self.explain = DayExplain()        # today's P&L explain (Greeks, new trades, fees, residual)
        self.last_attribution: dict[str, float] = dict.fromkeys(
            ("delta", "gamma", "vega", "theta", "residual", "actual"), 0.0)   # this cycle's, held positions
        self._latest: ChainSnapshot | None = None
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._running = False
        self._monitor_busy = False
        self._revalued: Revaluation | None = None      # the last full revaluation (VaR, stress grid)
        self._revalue_now = False                      # a VaR what-if bound: revalue on the next monitor run
        self._cycle_seq = 0
        self._alert_seq = 0
        self.stopped = asyncio.Event()
        self.closers: list[Callable[[], Any]] = []   # run at stop (journal, alert router, metrics)
        self.alert_router: Any = None
        self.health: Any = None
        self.metrics: Any = None
        self._lag_monitor: Any = None
        self.loop_lag_ms = 0.0
        broker.on_order_event.append(self._broker_event)
        broker.on_fill.append(self._broker_fill)
        for hook, handler in (("on_connection", self._broker_connection), ("on_error", self._broker_error),
                              ("on_reconcile", self._broker_reconciled)):
            if isinstance(getattr(broker, hook, None), list):     # optional hooks (the IB broker has them)
                getattr(broker, hook).append(handler)
        if hasattr(feed, "on_status"):
            feed.on_status.append(self._feed_status)

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
        for task in (self._spawn(self._pump(), "feed pump"), self._spawn(self._cycle_loop(), "cycle loop"),
                     self._spawn(self._recovery_loop(), "recovery")):
            task.long_running = True
        if self.health is not None:
            self._lag_monitor = self.health.lag_monitor()
            self._lag_monitor.on_sample = self._loop_lag_sample
            self._lag_monitor.start()
            self._spawn(self._health_loop(), "health checks").long_running = True
        self.publish_status()

    async def _recovery_loop(self, every_s: float = 1.0) -> None:
        """The nightly-restart guard, once a second."""
        while self._running:
            self.recovery.tick(self.clock())
            await asyncio.sleep(every_s)

    def _loop_lag_sample(self, lag_ms: float) -> None:
        self.loop_lag_ms = lag_ms
        self.health.loop_lag(lag_ms)
        if self.metrics is not None:
            self.metrics.set_loop_lag(lag_ms)

    async def _health_loop(self, every_s: float = 1.0) -> None:
        """Stale data every second, free disk every minute (the other checks live where the news is)."""
        ticks = 0
        while self._running:
            await asyncio.sleep(every_s)
            if self.last_snapshot is not None:
                self.health.data(self.last_snapshot.timestamp, self.clock())
            if ticks % 60 == 0:
                self.health.disk()
            ticks += 1

    def raise_alert(self, code: str, severity: Any = None, source: str = "health", message: str = "") -> None:
        """The alert sink of the health checks: journaled and published like every engine alert."""
        from .alerts.codes import default_severity
        self.alert(code, Severity.parse(severity) if severity is not None else default_severity(code), message,
                   source)

    async def stop(self) -> None:
        """Stop cycling; cancel working orders if the config says so; close the feed and the broker."""
        if not self._running and self.stopped.is_set():
            return
        self._running = False
        self._wake.set()
        try:                            # the day as the next start will find it
            day_restore.close_open_signals(self.journal, self.signals.open.values(), self.clock(),
                                           day_restore.SHUTDOWN_REASON)
            day_restore.save_explain(self.journal, self.explain)
        except Exception:
            log.exception("the day's signals and P&L explain were not journaled at shutdown")
        if self._lag_monitor is not None:
            await self._lag_monitor.stop()
        if self.settings.execution.on_exit == "cancel" and self.broker.connected:
            try:
                n = await self.orders.cancel_all()     # sent even when the journal cannot record them
                deadline = time.monotonic() + STOP_CANCEL_WAIT_S
                while n and self.orders.working() and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)          # until every cancel is acknowledged and journaled (bounded)
            except Exception:
                log.exception("cancelling the working orders at shutdown failed: check them at the broker")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
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
        while True:
            pending = [t for t in self._tasks if not t.done()
                       and getattr(t, "long_running", False) is False]
            if not pending:
                return
            await asyncio.gather(*pending, return_exceptions=True)

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", name, exc_info=t.exception())
                self.alert("ENGINE_ERROR", Severity.ERROR, f"{name} failed: {t.exception()}")
        task.add_done_callback(done)
        return task

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
            except Exception as exc:   # one bad snapshot must not stop the engine, failing ones stop trading
                log.exception("cycle failed")
                self.alert("ENGINE_ERROR", Severity.ERROR, f"cycle failed: {exc}")
                self.cycle_failed(exc)
            else:
                self.failed_cycles = 0

    def cycle_failed(self, exc: BaseException) -> None:
        """Count a failed cycle; `engine.max_failed_cycles` in a row HALT trading until the trader resumes (a
        cycle that keeps failing has no hedging, repricing or risk monitor behind its orders)."""
        self.failed_cycles += 1
        limit = self.settings.engine.max_failed_cycles
        if self.failed_cycles == limit:
            self.alert("CYCLES_FAILING", Severity.CRITICAL, f"{limit} cycles failed in a row (last: {exc}): "
                       "trading HALTED until you resume")
            self._state_changed(self.trading.hold("CYCLES_FAILING", TradingState.HALTED,
                                                  f"{limit} cycles failed in a row", self.clock()))

    def journal_failed(self, what: str, exc: BaseException) -> None:
        """A journal write failed: nothing may trade on a record that was not kept. HALTED until resumed."""
        self.alert("JOURNAL_WRITE_FAILED", Severity.CRITICAL, f"{what} not journaled: {exc}")
        self._state_changed(self.trading.hold("JOURNAL_WRITE_FAILED", TradingState.HALTED,
                                              f"journal write failed ({what})", self.clock()))

    # ================================================================== the cycle
    async def run_cycle(self, snapshot: ChainSnapshot) -> CycleReport:
        """One full cycle on `snapshot` (also called directly by backtests, deterministically).

        The numerics (surface, fit, model values, signal scan) run in the worker thread; the loop thread
        only publishes, journals and routes, so the GUI sharing the loop never waits on a calculation.
        """
        now = snapshot.timestamp
        self.snapshots += 1
        budget = self._signal_budget_now()
        loop = asyncio.get_running_loop()
        surface, fit, model, candidates, timings, verdict, fair = await loop.run_in_executor(
            self.executor, self._compute, snapshot, now, budget)
        if verdict.skip:
            return self._rejected_snapshot(snapshot, surface, verdict, timings)
        if verdict.future_dropped:
            self.alert("DATA_REJECTED", Severity.WARNING, verdict.future_dropped, source="sanity")
        snapshot = surface.snapshot                  # jumped quotes blanked: nothing downstream sees them
        self.last_snapshot = snapshot
        self.last_fair = fair
        self.bus.publish(topics.SNAPSHOT, snapshot)
        self._new_day_if_needed(now)
        t = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal t
            now_t = time.perf_counter()
            timings[name] = timings.get(name, 0.0) + (now_t - t) * 1e3
            t = now_t

        self.last_surface = surface
        self.bus.publish(topics.SURFACE, surface)
        self._after_fit(fit, surface, now)
        if model is not None:
            self.last_model = model
        with self.journal.transaction():      # one commit for the cycle's signal changes
            self.signals.update(candidates, surface, now)
        self._size_signals()
        fresh = self._check_freshness(snapshot)
        if model is not None and self.auto_execute and self.state is TradingState.ACTIVE and not fresh.index_stale:
            self._auto_approve(now)
        lap("signals")

        if not fresh.index_stale:             # a frozen index marks nothing
            self._mark_book(surface, model)
        lap("book")

        if not fresh.index_stale:
            self._exits(now)
            if not fresh.future_stale:
                self._hedge(now)
        if not self.recovery.link_held:       # working orders are left alone while the link is not trusted
            await self.orders.work_orders(now)
        lap("orders")

        if model is not None and not self._monitor_busy:
            self._spawn(self._monitor(now, surface, fit.model_params or fit.params), "monitor")
        positions = [p for p in self.book.positions.values() if p.quantity]
        self._spawn(self.vol_views.update(now, surface, model.iv if model is not None else None, self.book,
                                          self._position_markets(positions, surface)[:3], self.executor), "vol views")
        self.publish_status()
        self._cycle_seq += 1
        report = CycleReport(self._cycle_seq, now, len(snapshot), int(surface.usable.sum()), timings, self.skipped,
                             len(self.signals.open), surface.filter_counts)
        self.cycle_ms.append(report.total_ms)
        self.bus.publish(topics.CYCLE, report)
        return report

    def _check_freshness(self, snapshot: ChainSnapshot) -> Freshness:
        """The age of the index, the future and each option of this snapshot; alert when the index or the future
        turns stale (each transition once)."""
        before = self.freshness
        fresh = freshness(snapshot, self.settings.market.stale_after_s)
        self.freshness = fresh
        for name, now_stale, was_stale in (
                ("index", fresh.index_stale, before is not None and before.index_stale),
                ("future", fresh.future_stale and snapshot.future_contract is not None,
                 before is not None and before.future_stale)):
            if now_stale and not was_stale:
                self.alert("DATA_STALE", Severity.WARNING, f"{name} price stale ({', '.join(fresh.stale())}): "
                                                           f"not used for signals, hedges or marks")
        return fresh

    def _compute(self, snapshot: ChainSnapshot, now: datetime, budget: Callable[[int, Side, float], int]
                 ) -> tuple[Surface, FitEvent, ModelValues | None, list, dict[str, float], SanityVerdict,
                            FairValueFit | None]:
        """The numerical part of a cycle (worker thread): touches no shared state but the calibrator, the
        residual history and the sanity guard, which only the (sequential) cycles use."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        surface = build_surface(snapshot, self.settings.market, self.settings.calibration)
        surface, verdict = self.sanity.check(surface)
        t1 = time.perf_counter()
        timings["surface"] = (t1 - t0) * 1e3
        if verdict.skip:
            return surface, self.last_fit, None, [], timings, verdict, None
        fair = self._fit_fair_value(surface)
        t_fair = time.perf_counter()
        timings["fair_value"] = (t_fair - t1) * 1e3
        t1 = t_fair
        if self.settings.calibration.enabled or self.calibrator.last_good is None:
            fit, model = self.calibrator.fit(surface, now)
        else:
            fit, model = self.last_fit, self.calibrator.evaluate(self.calibrator.last_good, surface)
        t2 = time.perf_counter()
        candidates = self.signal_model.scan(surface, model, budget) if model is not None else []
        t3 = time.perf_counter()
        timings.update(calibration=(t2 - t1) * 1e3, signals=(t3 - t2) * 1e3)
        return surface, fit, model, candidates, timings, verdict, fair

    def _fit_fair_value(self, surface: Surface) -> FairValueFit | None:
        """The arbitrage-free fair-value surface of this snapshot (worker thread), warm-started from the last;
        an expiry that cannot be fitted keeps its last good slice (marked `fallback`) or is marked `failed`."""
        started = time.perf_counter()
        try:
            fair = self.fair_value.fit(surface, self.last_fair)     # cycles run one at a time
        except Exception:           # the fair surface informs; it must never stop the cycle
            log.exception("fair-value fit failed")
            return None
        self.fair_ms.append((time.perf_counter() - started) * 1e3)
        return fair

    def _rejected_snapshot(self, snapshot: ChainSnapshot, surface: Surface, verdict: SanityVerdict,
                           timings: dict[str, float]) -> CycleReport:
        """A snapshot that failed the sanity check as a whole: nothing acts on it (no fit, signal, mark, hedge
        or order); the last good snapshot stays the engine's market; an alert says why."""
        self.alert("DATA_REJECTED", Severity.ERROR, f"snapshot {snapshot.timestamp:%H:%M:%S} UTC skipped: "
                   f"{verdict.skip_reason}", source="sanity")
        log.warning("snapshot skipped: %s", verdict.skip_reason)
        self.publish_status()
        self._cycle_seq += 1
        counts = dict(surface.filter_counts, SNAPSHOT_SKIPPED=1)
        report = CycleReport(self._cycle_seq, snapshot.timestamp, len(snapshot), 0, timings, self.skipped,
                             len(self.signals.open), counts)
        self.bus.publish(topics.CYCLE, report)
        return report

    def _after_fit(self, fit: FitEvent, surface: Surface, now: datetime) -> None:
        """Journal, publish and alert on a fit (loop thread)."""
        if fit is self.last_fit:
            return
        self.last_fit = fit
        self.fit_history.append(fit)
        self.fit_ms.append(fit.elapsed_ms)
        if fit.accepted:
            self.fit_rmse.append(fit.rmse_iv)
        try:
            self.journal.record_fit(fit.params, rmse=fit.rmse_iv, elapsed_ms=fit.elapsed_ms,
                                    quotes_used=fit.quotes_used, accepted=fit.accepted, stale=fit.stale,
                                    timestamp=now, underlying=surface.snapshot.underlying, detail=fit.message)
        except Exception as exc:
            self.journal_failed("fit", exc)
        self.bus.publish(topics.FIT, fit)
        if not fit.accepted:
            self.alert("FIT_FAILED", Severity.WARNING,
                       f"fit rejected ({fit.message}); model stale, keeping the last good parameters")
        elif fit.elapsed_ms > self.settings.calibration.timeout_s * 1e3:
            self.alert("FIT_SLOW", Severity.WARNING, f"fit took {fit.elapsed_ms:.0f} ms")

    def _mark_book(self, surface: Surface, model: ModelValues | None) -> None:
        """Marks and dollar Greeks of every position from this snapshot and the model; P&L attribution."""
        snap = surface.snapshot
        self.book.mark_snapshot(snap, model.price if model is not None else None)
        marks = self._position_greeks(surface, model)
        self._attribute(marks, snap.timestamp)
        try:
            day_restore.save_explain(self.journal, self.explain)
        except Exception as exc:
            self.journal_failed("P&L explain", exc)
        self.bus.publish(topics.BOOK, self.book_summary())

    def _position_greeks(self, surface: Surface, model: ModelValues | None) -> dict[int, tuple]:
        """Dollar Greeks of every position (set on the book) from `surface` and the model; the marks they came
        from, per contract: (qty, multiplier, price, forward, vol, delta, gamma, vega, theta)."""
        snap = surface.snapshot
        marks: dict[int, tuple] = {}   # cid -> (qty, multiplier, price, forward, vol, delta, gamma, vega, theta)
        rows = [r for r in (snap.index_of(cid) for cid, p in self.book.positions.items() if p.quantity)
                if r is not None]
        unit = dict(zip(rows, self._unit_greeks(surface, model, rows))) if model is not None else {}
        for cid, pos in self.book.positions.items():
            if not pos.quantity:
                continue
            row = snap.index_of(cid)
            price = self.book.mark_of(cid)
            if pos.contract.sec_type is SecType.FUTURE:
                greeks = (price, math.nan, 1.0, 0.0, 0.0, 0.0)
            elif row is not None and model is not None:
                greeks = (surface.forward[row], surface.iv_mid[row], *unit[row])
            else:
                greeks = (math.nan,) * 6
            marks[cid] = (pos.quantity, pos.contract.multiplier, price, *greeks)
        ids = list(marks)
        cols = np.array([marks[c][3:] for c in ids], dtype=float).reshape(len(ids), 6)
        fwd, _, d, g, v, th = cols.T
        self.book.set_greeks(ids, d, g, v, th, fwd)
        return marks

    def _unit_greeks(self, surface: Surface, model: ModelValues | None, rows: list[int]) -> np.ndarray:
        """Per-unit Greeks of chain `rows` under `risk.greeks_from` (one path: book, what-if and monitor)."""
        idx = np.asarray(rows, dtype=np.int64)
        snap = surface.snapshot
        vol = revaluation.market_vols(surface.iv_mid[idx], model.iv[idx] if model is not None else None)
        return revaluation.unit_greeks(self.settings.risk.greeks_from, surface.forward[idx], snap.strike[idx],
                                       surface.maturity[idx], surface.discount[idx], snap.is_call[idx], vol,
                                       (lambda: model.greeks(idx)) if model is not None else None)

    def _attribute(self, marks: dict[int, tuple], at: datetime) -> None:
        """Add this cycle's P&L, split by Greeks, to the day's attribution (positions held at both marks)."""
        prev, prev_at = self._last_marks, self._last_marks_at
        self._last_marks, self._last_marks_at = marks, at
        self.explain.roll(trading_day_of(at))
        self.last_attribution = dict.fromkeys(self.last_attribution, 0.0)
        held = [c for c in prev if c in marks and prev[c][0] == marks[c][0]]
        if not held or prev_at is None:
            return
        p0 = np.array([prev[c] for c in held], dtype=float)
        p1 = np.array([marks[c] for c in held], dtype=float)
        no_forward = ~(np.isfinite(p0[:, 3]) & np.isfinite(p1[:, 3]))    # unquoted: its move is residual
        p0[no_forward, 3] = p1[no_forward, 3] = 0.0
        days = (at - prev_at).total_seconds() / 86_400.0
        parts = attribute(p0[:, 0], p0[:, 1], p0[:, 2], p1[:, 2], p0[:, 3], p1[:, 3], p0[:, 4], p1[:, 4], days,
                          p0[:, 5], p0[:, 6], p0[:, 7], p0[:, 8]).totals()
        for name, value in parts.items():
            if math.isfinite(value):
                self.last_attribution[name] = value
        self.explain.add_greeks(parts)

    @property
    def attribution_day(self) -> dict[str, float]:
        """Today's P&L explain: delta, gamma, vega, theta, new_trades, fees, residual (sum: day P&L), day."""
        return self.explain.lines(self.book.day_pnl)

    async def _monitor(self, now: datetime, surface: Surface, params) -> None:
        """Greeks, stress grid and VaR in the worker thread; breaches change the state on the loop thread.

        Greeks are measured every cycle; the full revaluations (stress grid, VaR) when the book changed, else
        every `risk.var_interval_s` of market time (the last ones stand in between)."""
        self._monitor_busy = True
        try:
            positions = [p for p in self.book.positions.values() if p.quantity]
            fwd, df, mat, vol = self._position_markets(positions, surface)
            exposure = monitor.Exposure.from_positions(positions, fwd, df, mat, vol)
            cfg = self.settings.risk
            how = cfg.greeks_from
            book_key = tuple(sorted((p.contract.contract_id, p.quantity) for p in positions))
            last = self._revalued
            revalue = (last is None or last.book != book_key or cfg.var_interval_s <= 0 or self._revalue_now
                       or (now - last.at).total_seconds() >= cfg.var_interval_s or last.convention != how)
            self._revalue_now = False

            def measure():
                greeks, _ = monitor.portfolio_greeks(exposure, params, convention=how)
                if not revalue:
                    return greeks, last.stress, last.var
                return greeks, monitor.stress_grid(exposure, params, convention=how), \
                    monitor.value_at_risk(exposure, params, cfg.var_scenarios, cfg.var_seed, convention=how)

            loop = asyncio.get_running_loop()
            greeks, stress, var = await loop.run_in_executor(self.executor, measure)
            if revalue:
                self._revalued = Revaluation(now, book_key, stress, var, how)
            breaches = monitor.limit_breaches(greeks, var.var99, self.book.day_pnl, cfg)
            changes = monitor.apply_breaches(self.trading, breaches, cfg, now)
            for change in changes:
                self._state_changed(change)
            for b in breaches:
                code = "RISK_DAILY_LOSS" if b.code.value == "DAILY_LOSS" else "RISK_LIMIT_BREACH"
                self.alert(code, Severity.CRITICAL if code == "RISK_DAILY_LOSS" else Severity.ERROR, b.message)
            self.last_risk = RiskReport(
                at=now, greeks_from=how, forward=surface.snapshot.underlying_price, greeks=greeks,
                book_greeks=self.book.greeks, limits=RiskLimits.of(cfg), var95=var.var95, var99=var.var99,
                var_at=self._revalued.at, stress=stress, breaches=tuple(breaches), trading_state=self.state.value,
                day_pnl=self.book.day_pnl, attribution=PnlExplain.of(self.attribution_day))
            self.bus.publish(topics.RISK, self.last_risk)
        finally:
            self._monitor_busy = False

    def _position_markets(self, positions, surface: Surface
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Forward, discount, maturity and market vol per position (futures: their mark; unquoted: NaN)."""
        snap = surface.snapshot
        model = self.last_model
        fwd, df, mat, vol = [], [], [], []
        for p in positions:
            row = snap.index_of(p.contract.contract_id)
            if row is not None:
                fwd.append(surface.forward[row]), df.append(surface.discount[row]), mat.append(surface.maturity[row])
                vol.append(revaluation.market_vols(surface.iv_mid[row:row + 1], None if model is None
                                                   or len(model.iv) != len(surface.iv_mid)
                                                   else model.iv[row:row + 1])[0])
            else:
                fwd.append(self.book.mark_of(p.contract.contract_id)), df.append(1.0), mat.append(0.0)
                vol.append(math.nan)
        return np.array(fwd, float), np.array(df, float), np.array(mat, float), np.array(vol, float)

    # ================================================================== orders: build, check, route
    def market_for(self, contract: Contract) -> ContractMarket | None:
        """Bid, ask, model value and per-contract dollar Greeks of `contract` from the last cycle."""
        snap, surface, model = self.last_snapshot, self.last_surface, self.last_model
        if snap is None:
            return None
        if contract.sec_type is SecType.FUTURE:
            q = snap.future
            if q is None or not (self.clock() - q.timestamp).total_seconds() <= self.settings.market.stale_after_s:
                return None                 # no price, or a frozen one
            mid = 0.5 * (q.bid + q.ask)
            return ContractMarket(q.bid, q.ask, mid, DollarGreeks(mid * 0.01 * contract.multiplier, 0, 0, 0),
                                  snap.underlying_price)
        row = snap.index_of(contract.contract_id)
        if row is None or surface is None:
            return None
        price = float(model.price[row]) if model is not None else math.nan
        if model is not None:
            d, g, v, th = dollar_greeks(*self._unit_greeks(surface, model, [row])[0], surface.forward[row],
                                        contract.multiplier, 1)
            greeks = DollarGreeks(float(d), float(g), float(v), float(th))
        else:
            greeks = DollarGreeks()
        return ContractMarket(float(snap.bid[row]), float(snap.ask[row]), price, greeks, snap.underlying_price)

    def contract_by_id(self, contract_id: int) -> Contract | None:
        snap = self.last_snapshot
        if snap is not None:
            row = snap.index_of(contract_id)
            if row is not None:
                return snap.contract(row)
            if snap.future_contract is not None and snap.future_contract.contract_id == contract_id:
                return snap.future_contract
        pos = self.book.position(contract_id)
        return pos.contract if pos else None

    def risk_context(self, market: ContractMarket | None) -> RiskContext:
        now = self.clock()
        working = self.orders.working()
        cutoff = now - timedelta(seconds=max(RECENT_ORDERS_S, self.settings.risk.duplicate_window_s))
        recent = [r.order for r in self.orders.records.values()      # sent lately (risk denials never left)
                  if r.order.created_at is not None and r.order.created_at >= cutoff and not r.risk_codes]
        risk_cfg = self.settings.risk
        if self.connection == "simulated" and self.settings.market.simulator.always_open:
            risk_cfg = risk_cfg.model_copy(update={"enforce_trading_hours": False})
        pending = DollarGreeks()            # working orders (approved this cycle included) as if they filled
        pending_items = []
        for r in working:
            m = self.market_for(r.order.contract)
            if m is not None and r.remaining > 0:
                pending = pending + m.greeks.scaled(r.order.side.sign * r.remaining)
                pending_items.append((r.order.contract.expiry, m.greeks.scaled(r.order.side.sign * r.remaining)))
        return RiskContext(
            settings=risk_cfg, now=now, trading_state=self.state, positions=self.book.positions,
            open_orders=[r.order for r in working], filled={r.order.client_order_id: r.filled for r in working},
            recent_orders=recent, market=market, portfolio_greeks=self.book.greeks, day_pnl=self.book.day_pnl,
            buying_power_used=self._margin_used(), marks=self.book.marks,
            trading_enabled=not self.read_only, pending_greeks=pending,
            var99=self._revalued.var.var99 if self._revalued is not None else math.nan,
            daily_moves=self._daily_moves(),
            bucket_greeks=buckets.by_bucket(book_items(self.book) + pending_items, trading_day_of(now)))

    def _daily_moves(self) -> DailyMoves | None:
        """One-day spreads of the index and of implied vol from the fitted model (for the VaR what-if)."""
        if self.calibrator.last_good is None:
            return None
        params = self.calibrator.last_good.heston      # the diffusion in force today (any calibration.model)
        v0, sigma, rho = float(params.v0), float(params.sigma), float(params.rho)
        day = 1.0 / 252.0
        return DailyMoves(spot_pct=100.0 * math.sqrt(max(v0, 0.0) * day), vol_points=100.0 * 0.5 * sigma * math.sqrt(day),
                          correlation=rho)

    def _margin_used(self) -> float:
        legs = [margin.Leg(p.contract, p.quantity, self.book.mark_of(cid))
                for cid, p in self.book.positions.items() if p.quantity]
        if not legs or self.last_snapshot is None:
            return 0.0
        return margin.estimate(legs, self.last_snapshot.underlying_price, self.settings.risk.future_margin_rate).margin

    def build_order(self, contract: Contract, side: Side, quantity: int, limit_price: float | None,
                    purpose: OrderPurpose, signal_id: str | None = None, preview: bool = False
                    ) -> tuple[Order | None, ContractMarket | None, str]:
        """An order with our next client id (PREVIEW_ID for a preview: no id is used up); limit from
        mid/model when `limit_price` is None."""
        market = self.market_for(contract)
        if limit_price is None:
            if market is None:
                return None, None, "no market for this contract"
            limit_price = initial_limit(side, market.bid, market.ask, self._price_cap(purpose, market),
                                        self.settings.execution.aggressiveness,
                                        tick=0.25 if contract.sec_type is SecType.FUTURE else None)
        try:
            client_order_id = PREVIEW_ID if preview else self.orders.new_client_order_id()
        except Exception as exc:        # ids come from the journal: no record, no order
            self.journal_failed("client order id", exc)
            return None, market, f"not sent: the journal could not give an order id ({exc})"
        try:
            order = Order(client_order_id, contract, side, int(quantity), OrderType.LIMIT,
                          float(limit_price), self.clock(), purpose, signal_id,
                          market.model_price if market else None)
        except (ValueError, TypeError) as exc:
            return None, market, f"bad order: {exc}"
        return order, market, ""

    @staticmethod
    def _price_cap(purpose: OrderPurpose, market: ContractMarket) -> float:
        """Entries never pay past the model (that is the edge); exits and hedges must get done: no cap."""
        return market.model_price if purpose in (OrderPurpose.SIGNAL, OrderPurpose.MANUAL) else math.nan

    def preview(self, order: Order, market: ContractMarket | None) -> OrderPreview:
        """The pre-trade decision for `order` (nothing is sent, nothing journaled)."""
        decision = check(order, self.risk_context(market))
        mid = market.mid if market else math.nan
        model = market.model_price if market else math.nan
        edge = (model - order.limit_price) * order.side.sign * order.contract.multiplier * order.quantity \
            if order.limit_price is not None and math.isfinite(model) else math.nan     # per order
        return OrderPreview(order, decision, model, mid, edge)

    def route(self, order: Order, market: ContractMarket | None) -> OrderPreview:
        """Check `order` and, when approved, journal it and send it (the send runs as a task)."""
        pv = self.preview(order, market)
        self.bus.publish(topics.RISK_DECISION, pv.decision)
        if RiskCode.VAR_LIMIT in pv.decision.reasons:
            self._revalue_now = True       # the linearised what-if bound: a full revaluation next, at once
        if not pv.approved:
            try:
                self.orders.record_denied(order, pv.decision)
            except Exception as exc:
                self.journal_failed(f"denied order {order.client_order_id}", exc)
            codes = ", ".join(c.value for c in pv.decision.reasons)
            self.alert("RISK_DENIED", Severity.WARNING,
                       f"{order.purpose.value} order {order.side.value} {order.quantity} "
                       f"{order.contract.description} denied: {codes}")
            return replace(pv, message=f"denied: {codes}")
        bound = math.nan
        if market is not None:
            bound = reprice_bound(order.side, market.bid, market.ask, self._price_cap(order.purpose, market),
                                  self.settings.execution.max_slippage)
        try:
            self.orders.register(order, pv.decision, bound)     # journaled before it is sent, or not sent
        except Exception as exc:
            self.journal_failed(f"order {order.client_order_id}", exc)
            return replace(pv, message=f"not sent: the journal could not record it ({exc})")
        self._spawn(self.orders.place(order), f"place {order.client_order_id}")
        return replace(pv, sent=True, message="sent")

    # ================================================================== signals
    def _on_signal(self, signal: Signal, state_changed: bool) -> None:
        if state_changed:
            try:
                self.journal.record_signal(signal)
            except Exception as exc:
                self.journal_failed("signal", exc)
        self.bus.publish(topics.SIGNAL, signal)

    def _signal_budget_now(self) -> Callable[[int, Side, float], int]:
        """A budget function over a copy of the book (it runs in the worker thread while fills may arrive)."""
        cfg = self.settings.risk
        held = {cid: p.quantity for cid, p in self.book.positions.items() if p.quantity}
        busy = {r.order.contract.contract_id for r in self.orders.working()}
        vega_room = cfg.max_vega_dollars - abs(self.book.greeks.vega)

        def budget(contract_id: int, side: Side, vega_per_contract: float) -> int:
            """Contracts a new signal may still add: position room, vega room, nothing while an order works."""
            if contract_id in busy:
                return 0
            have = held.get(contract_id, 0)
            room = cfg.max_position - max(have * side.sign, 0)
            if side is Side.SELL and not cfg.allow_uncovered_shorts:
                room = min(room, max(have, 0))          # only sell what we hold
            if vega_per_contract > 0:
                room = min(room, int(max(vega_room, 0) // vega_per_contract))
            return max(room, 0)
        return budget

    def _auto_approve(self, now: datetime) -> None:
        cfg = self.settings.signals
        for signal in self.signals.new_signals():
            premium = signal.limit_reference * signal.quantity * signal.contract.multiplier
            if 0 < signal.quantity <= cfg.auto_max_quantity and premium <= cfg.auto_max_premium:
                self.approve_signal(signal.signal_id, by="auto")

    def open_signals(self) -> list[Signal]:
        return list(self.signals.open.values())

    def _size_signals(self) -> None:
        """Cap every NEW signal at the largest quantity the pre-trade checks pass now (quantity, premium,
        position, Greek and VaR what-ifs); 0 with the reason when no size passes (shown greyed)."""
        signals = self.signals.new_signals()
        if not signals:
            return
        base = self.risk_context(None)          # one context per cycle: only the contract's market differs
        for signal in signals:
            order, market, why = self.build_order(signal.contract, signal.side, max(signal.quantity, 1), None,
                                                  OrderPurpose.SIGNAL, signal.signal_id, preview=True)
            if order is None:
                quantity = 0
            else:
                ctx = replace(base, market=market)

                def approved(q: int, order=order, ctx=ctx) -> tuple[bool, str]:
                    decision = check(replace(order, quantity=q), ctx)
                    return decision.approved, _denial(OrderPreview(order, decision, math.nan, math.nan, math.nan))
                quantity, why = largest_sendable(signal.quantity, approved)
            if (quantity, why) != (signal.quantity, signal.blocked):
                self.signals.open[signal.signal_id] = replace(signal, quantity=quantity, blocked=why)
                self.bus.publish(topics.SIGNAL, self.signals.open[signal.signal_id])

    def preview_signal(self, signal_id: str, quantity: int | None = None, capped: bool = True) -> OrderPreview:
        """The what-if of a signal's order, at `quantity` (at most the signal's size when `capped`)."""
        signal = self.signals.get(signal_id)
        if signal is None:
            return OrderPreview(None, None, math.nan, math.nan, math.nan,
                                message=f"signal {signal_id} is no longer open")
        qty = signal.quantity if quantity is None else int(quantity)
        if capped:
            qty = min(qty, signal.quantity)
        if qty < 1:
            return OrderPreview(None, None, math.nan, math.nan, math.nan,
                                message=f"no size can be sent: {signal.blocked}" if signal.blocked else "quantity 0")
        order, market, why = self.build_order(signal.contract, signal.side, qty, None,
                                              OrderPurpose.SIGNAL, signal.signal_id, preview=True)
        if order is None:
            return OrderPreview(None, None, math.nan, math.nan, math.nan, message=why)
        return self.preview(order, market)

    def approve_signal(self, signal_id: str, by: str = "trader", quantity: int | None = None) -> OrderPreview:
        """APPROVED, then an order (of `quantity`, at most the signal's size) through the risk checks; ORDERED
        when it was sent, else back to REJECTED."""
        signal = self.signals.get(signal_id)
        now = self.clock()
        if signal is None or signal.state is not SignalState.NEW:
            return OrderPreview(None, None, math.nan, math.nan, math.nan,
                                message=f"signal {signal_id} is not open for approval")
        qty = signal.quantity if quantity is None else min(int(quantity), signal.quantity)
        if qty < 1:
            return OrderPreview(None, None, math.nan, math.nan, math.nan,
                                message=f"no size can be sent: {signal.blocked or 'quantity 0'}")
        self.signals.transition(signal_id, SignalState.APPROVED, now, f"approved by {by}")
        order, market, why = self.build_order(signal.contract, signal.side, qty, None,
                                              OrderPurpose.SIGNAL, signal_id)
        if order is None:
            self.signals.transition(signal_id, SignalState.REJECTED, now, why)
            return OrderPreview(None, None, math.nan, math.nan, math.nan, message=why)
        pv = self.route(order, market)
        if pv.sent:
            self.signals.transition(signal_id, SignalState.ORDERED, now, order.client_order_id)
        else:
            self.signals.transition(signal_id, SignalState.REJECTED, now, pv.message)
        return pv

    def reject_signal(self, signal_id: str, reason: str = "") -> bool:
        return self.signals.transition(signal_id, SignalState.REJECTED, self.clock(),
                                       reason or "rejected by trader") is not None

    def set_auto_execute(self, on: bool) -> None:
        self.auto_execute = bool(on)
        self.alert("AUTO_EXECUTE", Severity.INFO, f"auto-execute {'on' if on else 'off'}")
        self.publish_status()

    # ================================================================== manual orders
    def preview_order(self, contract_id: int, side: Side | str, quantity: int, limit_price: float | None,
                      preview: bool = True) -> OrderPreview:
        contract = self.contract_by_id(contract_id)
        if contract is None:
            return OrderPreview(None, None, math.nan, math.nan, math.nan, message=f"unknown contract {contract_id}")
        try:
            side = Side(side)
        except ValueError:
            return OrderPreview(None, None, math.nan, math.nan, math.nan, message=f"bad side {side!r}")
        order, market, why = self.build_order(contract, side, quantity, limit_price, OrderPurpose.MANUAL,
                                              preview=preview)
        if order is None:
            return OrderPreview(None, None, math.nan, math.nan, math.nan, message=why)
        return self.preview(order, market)

    def submit_order(self, contract_id: int, side: Side | str, quantity: int, limit_price: float | None) -> OrderPreview:
        pv = self.preview_order(contract_id, side, quantity, limit_price, preview=False)
        if pv.order is None:
            return pv
        return self.route(pv.order, self.market_for(pv.order.contract))

    def close_position(self, contract_id: int, quantity: int | None = None) -> OrderPreview:
        pos = self.book.position(contract_id)
        if pos is None or not pos.quantity:
            return OrderPreview(None, None, math.nan, math.nan, math.nan, message="no position to close")
        qty = min(abs(pos.quantity), quantity or abs(pos.quantity))
        qty = self._within_order_limits(pos.contract, qty, self.book.mark_of(contract_id))
        side = Side.SELL if pos.quantity > 0 else Side.BUY
        order, market, why = self.build_order(pos.contract, side, qty, None, OrderPurpose.EXIT)
        if order is None:
            return OrderPreview(None, None, math.nan, math.nan, math.nan, message=why)
        return self.route(order, market)

    def cancel_order(self, client_order_id: str) -> None:
        self._spawn(self.orders.cancel(client_order_id), f"cancel {client_order_id}")

    def modify_order(self, client_order_id: str, limit_price: float | None = None, quantity: int | None = None) -> None:
        self._spawn(self.orders.modify(client_order_id, limit_price, quantity), f"modify {client_order_id}")

    def order_records(self) -> list[OrderRecord]:
        return list(self.orders.records.values())

    # ================================================================== exits and hedging
    def _may_retry(self, key: tuple, now: datetime) -> bool:
        """False while an exit/hedge for `key` was denied less than risk.retry_denied_s ago."""
        until = self._denied_until.get(key)
        return until is None or now >= until

    def _denied(self, key: tuple, now: datetime) -> None:
        self._denied_until[key] = now + timedelta(seconds=self.settings.risk.retry_denied_s)

    def _exits(self, now: datetime) -> None:
        """Close positions on convergence, stop-loss, time stop or the days-before-expiry rule."""
        cfg = self.settings.signals
        snap = self.last_snapshot
        for cid, pos in list(self.book.positions.items()):
            if not pos.quantity or pos.contract.sec_type is not SecType.OPTION or self.orders.working_for(cid):
                continue
            entry = self.entries.get(cid)
            reason = ""
            days_left = (pos.contract.expiry - trading_day_of(now)).days if pos.contract.expiry else 99
            unrealized = pos.unrealized_pnl(self.book.mark_of(cid))
            if days_left < cfg.close_days_before_expiry:
                reason = f"{days_left} day(s) to expiry"
            elif unrealized < -cfg.stop_loss_dollars:
                reason = f"stop-loss: {unrealized:,.0f} $"
            elif entry and (now - entry.opened_at).total_seconds() > cfg.time_stop_minutes * 60:
                reason = "time stop"
            elif entry and entry.from_signal and (now - entry.opened_at).total_seconds() > 0:
                gap = self.signal_model.residual(cid) - entry.usual_residual
                if math.isfinite(gap) and abs(gap) < cfg.exit_converged_vol:
                    reason = f"converged ({gap:+.2f} vol pts from its usual level)"
            if not reason or snap is None or not self._may_retry(("exit", cid), now):
                continue
            side = Side.SELL if pos.quantity > 0 else Side.BUY
            quantity = self._within_order_limits(pos.contract, abs(pos.quantity), self.book.mark_of(cid))
            order, market, why = self.build_order(pos.contract, side, quantity, None, OrderPurpose.EXIT)
            if order is not None:
                log.info("exit %s: %s", pos.contract.description, reason)
                if not self.route(order, market).sent:
                    self._denied(("exit", cid), now)

    def _within_order_limits(self, contract: Contract, quantity: int, price: float) -> int:
        """The largest slice of `quantity` one order may carry (max quantity and premium); the rest of an
        exit follows in later cycles, as a trader would work a large close."""
        cfg = self.settings.risk
        quantity = min(quantity, cfg.max_order_quantity)
        if contract.sec_type is SecType.OPTION and math.isfinite(price) and price > 0:
            quantity = min(quantity, int(cfg.max_order_premium // (price * contract.multiplier)))
        return max(quantity, 1)

    def _hedge(self, now: datetime) -> None:
        snap = self.last_snapshot
        if snap is None or snap.future_contract is None:
            return
        delta_points = self.book.greeks.delta / (0.01 * snap.underlying_price)   # $ per index point
        if any(r.order.purpose is OrderPurpose.HEDGE for r in self.orders.working()) \
                or not self._may_retry(("hedge",), now):
            return
        proposal = self.hedger.propose(delta_points, snap.future_contract, snap.future, now)
        if proposal is None:
            return
        quantity = self._within_order_limits(proposal.contract, proposal.quantity, proposal.limit_price)
        order, market, why = self.build_order(proposal.contract, proposal.side, quantity,
                                              proposal.limit_price, OrderPurpose.HEDGE)
        if order is None:
            return
        pv = self.route(order, market)
        if pv.sent:
            self.hedger.hedged(now)
        else:
            self._denied(("hedge",), now)

    # ================================================================== broker events
    def _broker_event(self, event: OrderEvent) -> None:
        try:
            self.orders.apply_event(event)
        except Exception as exc:
            log.exception("order event not applied")
            self.journal_failed("order event", exc)

    def _broker_fill(self, fill: Fill) -> None:
        try:
            self.orders.apply_fill(fill)
        except Exception as exc:
            log.exception("fill not applied")
            self.journal_failed(f"fill {fill.fill_id}", exc)

    def _on_order_event_applied(self, event: OrderEvent) -> None:
        self.bus.publish(topics.ORDER_EVENT, event)
        if event.status is OrderStatus.REJECTED and not event.reason.startswith("risk:"):
            self.alert("ORDER_REJECTED", Severity.WARNING, f"order {event.client_order_id} rejected: {event.reason}")

    def _on_fill_applied(self, fill: Fill) -> None:
        """A new fill: book it, remember the entry, publish."""
        cid = fill.contract.contract_id
        before = self.book.quantity(cid)
        last_mark = self.book.mark_of(cid)
        if self.book.apply_fill(fill):
            self.explain.roll(trading_day_of(fill.timestamp))
            mark = self._mark_now(fill.contract, last_mark if math.isfinite(last_mark) else fill.price)
            self.explain.add_fill(fill.signed_quantity, fill.price, fill.contract.multiplier, mark, fill.commission)
        if self.last_surface is not None:      # the limits see the new position's Greeks at once
            self._position_greeks(self.last_surface, self.last_model)
        after = self.book.quantity(cid)
        record = self.orders.records.get(fill.client_order_id)
        if after == 0:
            self.entries.pop(cid, None)
        elif before == 0 or (before > 0) != (after > 0):
            from_signal = record is not None and record.order.purpose is OrderPurpose.SIGNAL
            self.entries[cid] = Entry(fill.timestamp, from_signal, self.signal_model.usual_residual(cid))
        self.bus.publish(topics.FILL, fill)
        self.bus.publish(topics.BOOK, self.book_summary())

    def _mark_now(self, contract: Contract, fallback: float) -> float:
        """The contract's mark at this moment: the last snapshot's mid, else its last mark, else `fallback`."""
        snap = self.last_snapshot
        if snap is not None:
            row = snap.index_of(contract.contract_id)
            if row is not None and math.isfinite(snap.mid[row]):
                return float(snap.mid[row])
            if snap.future_contract is not None and snap.future_contract.contract_id == contract.contract_id \
                    and snap.future is not None:
                return 0.5 * (snap.future.bid + snap.future.ask)
        return fallback

    def _broker_connection(self, up: bool, message: str) -> None:
        """HALTED while the broker is away (config); when it returns, HALTED until a reconcile has passed."""
        if not self._running:
            return                      # our own connect/close, not news
        if up:
            self.alert("BROKER_RECONNECTED", Severity.INFO, f"broker connected: {message}; reconciling")
            self.recovery.broker_up(message)
        else:
            self.alert("BROKER_DISCONNECTED", Severity.CRITICAL, f"broker disconnected: {message}")
            if self.settings.ib.halt_on_disconnect:
                self.recovery.broker_down(message)
        self.publish_status()

    async def accept_broker_positions(self, by: str = "trader") -> dict[int, tuple[int, int]]:
        """The trader takes the broker's positions as the truth: one adjustment fill per differing contract is
        journaled (at the current mark, no commission) and the RECONCILE_MISMATCH hold is lifted.
        Returns {contract id: (journal quantity, broker quantity)} of what was adjusted."""
        broker_positions = await self.broker.positions()
        contracts = getattr(self.broker, "position_contracts", {})
        mine = {cid: p.quantity for cid, p in self.book.positions.items() if p.quantity}
        now = self.clock()
        adjusted: dict[int, tuple[int, int]] = {}
        for cid in sorted(set(mine) | set(broker_positions)):
            have, want = mine.get(cid, 0), broker_positions.get(cid, 0)
            if have == want:
                continue
            contract = self.contract_by_id(cid) or contracts.get(cid)
            if contract is None:
                self.alert("RECONCILE_MISMATCH", Severity.ERROR, f"cannot adjust {cid}: contract unknown")
                continue
            price = self.book.mark_of(cid)
            fill = Fill(f"{self.run_id}/ADJ{cid}-{len(self.journal.fills())}", f"ACCEPT-BROKER-{self.run_id}",
                        contract, Side.BUY if want > have else Side.SELL, abs(want - have),
                        price if math.isfinite(price) else 0.0, now, 0.0, "",
                        {"adjustment": f"broker positions accepted by {by}"})
            self.orders.apply_fill(fill)
            adjusted[cid] = (have, want)
        self.alert("RECONCILE_MISMATCH", Severity.WARNING,
                   f"broker positions accepted by {by}: {len(adjusted)} contract(s) adjusted")
        await self.recovery.reconcile(f"broker positions accepted by {by}")
        self.publish_status()
        return adjusted

    def _broker_error(self, info: Any) -> None:
        if getattr(info, "code", None) in QUIET_CODES:
            log.info("IB %s: %s", info.code, info.message)
            return
        severity = Severity.WARNING if getattr(info, "warning", False) else Severity.ERROR
        self.alert("IB_ERROR", severity, f"IB {getattr(info, 'code', '?')}: {getattr(info, 'message', info)}",
                   source="ib")

    def _broker_reconciled(self, report: Any) -> None:
        if not getattr(report, "clean", True):
            self.alert("RECONCILE_MISMATCH", Severity.WARNING,
                       f"broker reconcile: {len(report.missed_fills)} missed fill(s) delivered, "
                       f"{len(report.closed_while_away)} order(s) closed while away, "
                       f"{len(report.foreign_orders)} working order(s) without our id", source="ib")

    def _feed_status(self, status: Any) -> None:
        state = getattr(status, "state", None)
        value = getattr(state, "value", str(state))
        if value in ("disconnected", "stale") and self._running:
            self.alert("DATA_STALE" if value == "stale" else "FEED_DISCONNECTED", Severity.WARNING,
                       f"market data {value}: {getattr(status, 'message', '')}")
        self.publish_status()

    # ================================================================== recovery
    def recover(self) -> None:
        """Before connecting: the book and working orders from the journal, and today back on screen (the
        blotter, alerts, P&L explain; signals a crash left open closed with the reason)."""
        self._recover_from_journal()
        self.explain = day_restore.restore_day(
            self.journal, trading_day_of(self.clock()), self.clock(), self.orders.records.values(),
            lambda record: self.bus.publish(topics.ORDER, record), self.alert_router)
        self.bus.publish(topics.BOOK, self.book_summary())

    def _recover_from_journal(self) -> None:
        """Rebuild the book from journaled fills and adopt working orders (before connecting)."""
        fills = self.journal.fills()
        self.book.apply_fills(fills)
        for fill in fills:
            cid = fill.contract.contract_id
            if self.book.quantity(cid) and cid not in self.entries:
                self.entries[cid] = Entry(fill.timestamp, False)
        states = self.journal.order_states()
        for order in self.journal.working_orders():
            self.orders.adopt(order, states.get(order.client_order_id))
        for order in self.journal.orders():
            if order.client_order_id not in self.orders.records:
                ev = states.get(order.client_order_id)
                record = self.orders.adopt(order, ev)
                if ev is not None:
                    record.status = ev.status
        for fill in fills:      # each order's journaled fills: reconcile tells FILLED from CANCELLED by them
            record = self.orders.records.get(fill.client_order_id)
            if record is not None:
                paid = record.fill_quantity * record.avg_price if record.fill_quantity else 0.0
                record.fill_quantity += fill.quantity
                record.avg_price = (paid + fill.quantity * fill.price) / record.fill_quantity
                record.filled = max(record.filled, record.fill_quantity)
        log.info("recovered %d fills, %d working orders from the journal", len(fills), len(self.orders.working()))

    async def reconcile(self) -> dict:
        """Bring the journal and book in line with the broker's truth: missing fills, orphan orders, positions."""
        since = self.clock() - timedelta(days=7)
        report = {"missing_fills": 0, "closed_orders": 0, "position_mismatches": 0}
        broker_fills = await self.broker.fills_since(since)     # unreadable: the reconcile fails (and is retried)
        for fill in broker_fills:
            if not self.journal.has_fill(fill.fill_id):
                if fill.client_order_id not in self.orders.records and self.journal.order(fill.client_order_id) is None:
                    log.warning("fill %s for an order we never journaled", fill.fill_id)
                self.orders.apply_fill(fill)
                report["missing_fills"] += 1
        open_at_broker = {o.client_order_id for o in await self.broker.open_orders()}
        for record in self.orders.working():
            cid = record.order.client_order_id
            if cid not in open_at_broker:
                status = OrderStatus.FILLED if record.fill_quantity >= record.order.quantity else OrderStatus.CANCELLED
                self.orders.apply_event(OrderEvent(cid, status, self.clock(), record.filled,
                                                   record.remaining if status is OrderStatus.CANCELLED else 0,
                                                   reason="reconciled: not working at the broker"))
                report["closed_orders"] += 1
        broker_positions = await self.broker.positions()
        mine = {cid: p.quantity for cid, p in self.book.positions.items() if p.quantity}
        for cid in set(mine) | set(broker_positions):
            if mine.get(cid, 0) != broker_positions.get(cid, 0):
                report["position_mismatches"] += 1
                self.alert("RECONCILE_MISMATCH", Severity.ERROR,
                           f"position {cid}: journal {mine.get(cid, 0)} vs broker {broker_positions.get(cid, 0)}")
        if any(report.values()):
            self.alert("RECONCILE_MISMATCH", Severity.WARNING, f"reconciled with the broker: {report}")
        return report

    # ================================================================== state, kill switch, settings
    @property
    def state(self) -> TradingState:
        return self.trading.state

    def _state_changed(self, change: StateChange | None) -> None:
        if change is None:
            return
        self.alert("TRADING_STATE_CHANGED", Severity.CRITICAL if change.state is TradingState.HALTED else Severity.WARNING,
                   f"{change.previous.value} -> {change.state.value}: {change.reason} ({change.by})")
        self.bus.publish(topics.TRADING_STATE, change.state)

    def kill_switch(self, by: str = "trader") -> None:
        """Cancel every working order and HALT (only the trader can resume)."""
        self._state_changed(self.trading.kill_switch(self.clock(), by=by))
        self.alert("KILL_SWITCH", Severity.CRITICAL, f"kill switch by {by}: cancelling all working orders")
        self._spawn(self.orders.cancel_all(), "kill switch cancel")
        self.publish_status()

    def resume_trading(self, override: bool = False) -> bool:
        change = self.trading.resume(self.clock(), by="trader", override=override)
        self._state_changed(change)
        self.publish_status()
        return change is not None

    def _new_day_if_needed(self, now: datetime) -> None:
        day = trading_day_of(now)
        if self.book.trading_day is not None and day > self.book.trading_day:
            self._state_changed(self.trading.new_trading_day(day, now))

    def apply_settings(self, new: Settings, source: str = "settings dialog") -> list[str]:
        """Take new settings from the next cycle on; journal every changed field and write the overrides file."""
        if not isinstance(new, Settings):
            return [f"expected Settings, got {type(new).__name__}"]
        problems = problems_of(new)        # the rules across fields, which assignments alone do not check
        if problems:
            return problems
        new = new.model_copy(deep=True)
        changes = _changed_fields(self.settings.model_dump(mode="json"), new.model_dump(mode="json"))
        for path, old, value in changes:
            self.journal.record_setting_change(path, old, value, source)
        self.settings = new
        self.calibrator.config = new.calibration
        self.sanity.config = new.market.sanity
        self.signal_model.config = new.signals
        self.signals.config = new.signals
        self.hedger.config = new.hedging
        self.orders.config = new.execution
        self.read_only = not new.execution.trading_enabled
        if self.overrides_path is not None:
            try:
                save_overrides(new, self._base_settings, self.overrides_path)
            except OSError as exc:
                return [f"settings applied but not saved to {self.overrides_path}: {exc}"]
        self.bus.publish(topics.SETTINGS, new)
        return []

    # ================================================================== reporting
    def alert(self, code: str, severity: Severity, message: str, source: str = "engine") -> None:
        """Publish an alert (the router folds and routes it; the journal keeps it)."""
        self.alert_counts[code] = self.alert_counts.get(code, 0) + 1
        self._alert_seq += 1
        alert = Alert(code, severity, source, message, self.clock(), alert_id=f"{self.run_id}/A{self._alert_seq}")
        try:
            self.journal.record_alert(alert)
        except Exception:
            log.exception("alert not journaled")
        self.bus.publish(topics.ALERT, alert)

    def publish_status(self) -> None:
        snap = self.last_snapshot
        feed_status = getattr(self.feed, "status", None)
        self.bus.publish(topics.STATUS, EngineStatus(
            connection=self.connection,
            connected=bool(getattr(self.broker, "connected", False)),
            feed=getattr(getattr(feed_status, "state", None), "value", "unknown"),
            data_age_s=(self.clock() - snap.timestamp).total_seconds() if snap else None,
            sim_time=self.clock(),
            clock_label=getattr(self.feed, "clock_label", ""),
            trading_state=self.state.value,
            trading_reason=self.trading.reason,
            stale_data=tuple(self.freshness.stale()) if self.freshness is not None else (),
            auto_execute=self.auto_execute,
            read_only=self.read_only,
            day_pnl=self.book.day_pnl,
            loop_lag_ms=self.loop_lag_ms,
        ))

    def book_summary(self) -> BookSummary:
        return BookSummary.of(self.book, self.attribution_day)

    def positions(self) -> list[dict]:
        return self.book_summary().to_dict()["positions"]

    def chain(self) -> ChainSnapshot | None:
        return self.last_snapshot

    def _fair_summary(self) -> dict | None:
        if self.last_fair is None:
            return None
        ms = np.array(self.fair_ms)
        return {**_fair_quality(self.last_fair), "fit_ms": {"p50": _r(np.percentile(ms, 50)),
                                                             "p95": _r(np.percentile(ms, 95))}}

    def summary(self) -> dict:
        """The headless summary (JSON keys are an interface: see the README)."""
        cyc = np.array(self.cycle_ms) if self.cycle_ms else np.array([np.nan])
        fits = np.array(self.fit_ms) if self.fit_ms else np.array([np.nan])
        book = self.book_summary().to_dict()
        snap = self.last_snapshot
        return {
            "snapshots": self.snapshots,
            "chain": {"options": len(snap) if snap is not None else 0,
                      "expiries": int(len(np.unique(snap.expiry.astype(np.int64) * 2 + snap.am_settled)))
                      if snap is not None else 0},
            "quality": dict(self.sanity.counts),
            "fair_value": self._fair_summary(),
            "skipped_snapshots": self.skipped,
            "fits": {"count": len(self.fit_ms), "accepted": len(self.fit_rmse),
                     "median_ms": _r(np.nanmedian(fits)), "p95_ms": _r(np.nanpercentile(fits, 95)),
                     "median_rmse_iv": _r(np.median(self.fit_rmse)) if self.fit_rmse else None,
                     "params": self.calibrator.last_good.as_dict() if self.calibrator.last_good else None},
            "signals": dict(self.signals.counts),
            "orders": self.orders.counts(),
            "orders_by_purpose": dict(Counter(r.order.purpose.value for r in self.orders.records.values())),
            "fills": book["fills"],
            "positions": book["positions"],
            "pnl": book["pnl"],
            "greeks": book["greeks"],
            "risk": {"var95": self.last_risk.var95, "var99": self.last_risk.var99} if self.last_risk else None,
            "trading_state": self.state.value,
            "alerts": dict(self.alert_counts),
            "cycle_ms": {"p50": _r(np.nanpercentile(cyc, 50)), "p95": _r(np.nanpercentile(cyc, 95)),
                         "max": _r(np.nanmax(cyc))},
            **self.vol_views.summary(self.book, self.clock()),
        }


def _fair_quality(fair: FairValueFit) -> dict:
    """Inside-spread share, IV RMSE, violations and slice states of a fair-value fit (the headless summary)."""
    m = fair.metrics()
    states = Counter(s.status for s in fair.slices)
    return {"inside_spread_pct": _r(m.get("inside_spread_pct")), "rmse_iv": _r(m.get("rmse_iv")),
            "arbitrage_violations": fair.arbitrage_violations, "expiries": dict(states)}


def _denial(pv: OrderPreview) -> str:
    """The failed checks of a preview, named with their details."""
    if pv.decision is None:
        return pv.message
    failed = [f"{r.code.value}: {r.detail}" if r.detail else r.code.value for r in pv.decision.results if not r.passed]
    return "; ".join(failed) or "denied"


def _r(x: float) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else round(float(x), 3)


def _changed_fields(old: dict, new: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    out = []
    for key, value in new.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            out += _changed_fields(old[key], value, path + ".")
        elif old.get(key) != value:
            out.append((path, old.get(key), value))
    return out


# ====================================================================== wiring
def connection_label(settings: Settings) -> str:
    """'simulated', 'ib-paper' or 'ib-live' (the status bar colours live unmistakably)."""
    if settings.market.source != "ib" and settings.execution.broker != "ib":
        return "simulated" if settings.market.source == "sim" else settings.market.source
    return "ib-live" if settings.ib.live else "ib-paper"


def build_engine(settings: Settings, data_dir: Path, speed: float | None = None, *, console_alerts: bool = False,
                 metrics_port: int | None = None, log_dir: Path | None = None) -> Engine:
    """The engine with the feed, broker, journal, alert router and metrics that `settings` ask for."""
    from .alerts import AlertRouter, HealthChecks, Metrics
    from .storage import Journal
    from .storage.paths import overrides_path

    if speed is not None:
        sim = settings.market.simulator.model_copy(update={"speed": float(speed)})
        settings = settings.model_copy(update={"market": settings.market.model_copy(update={"simulator": sim})})
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(data_dir / settings.storage.journal_file)
    feed, broker, clock = _feed_and_broker(settings, data_dir)
    engine = Engine(settings, feed, broker, journal, clock=clock, connection=connection_label(settings),
                    overrides_path=overrides_path())
    router = AlertRouter.from_settings(settings, engine.bus, log_dir=log_dir, console=console_alerts)
    router.start()
    engine.alert_router = router
    engine.health = HealthChecks.from_settings(engine, settings, data_dir)
    closers: list[Callable[[], Any]] = [router.stop, journal.close]
    if getattr(broker, "world", None) is not None:
        closers.append(broker.world.close)          # the persistent paper account
    port = metrics_port or settings.alerts.metrics_port
    if port:
        metrics = Metrics()
        metrics.attach(engine.bus)
        metrics.start(port)
        engine.metrics = metrics
        closers.insert(0, metrics.stop)
    engine.closers = closers
    return engine


def _feed_and_broker(settings: Settings, data_dir: Path | None = None) -> tuple[Any, Any, Callable[[], datetime]]:
    """Feed and broker per settings; in the simulator both share one world and its clock."""
    source, route = settings.market.source, settings.execution.broker
    world = None
    if source == "sim" or route == "paper":
        from .sim.world import SimWorld
        world = SimWorld.from_settings(settings, account_path=data_dir / "paper_account.sqlite" if data_dir else None)
    ib = None
    if source == "ib" or route == "ib":
        from .market.ib import IBConnection
        ib = IBConnection(settings)
    if source == "sim":
        from .market.sim_feed import SimulatedFeed
        feed = SimulatedFeed.from_settings(settings, world=world)
    elif source == "ib":
        from .market.ib import IBFeed
        feed = IBFeed(settings, ib)
    else:
        from .market.replay import ReplayFeed
        feed = ReplayFeed.from_settings(settings)
    if route == "paper":
        from .execution.paper import PaperBroker
        broker = PaperBroker(world)
    else:
        from .execution.ib import IBBroker
        broker = IBBroker(settings, ib)
    if world is not None and source == "sim":
        clock = world.clock.now
    elif ib is not None:
        clock = ib.now          # the server's clock: TWS real time, the practice gateway simulated time
    else:
        clock = utcnow
    return feed, broker, clock
