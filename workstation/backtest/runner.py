"""Replay snapshots through the same Engine the GUI runs, as fast as the machine allows, deterministically.

Per snapshot: the clock is set to the snapshot's timestamp, the backtest broker delivers last cycle's requests and
fills against the recorded quotes, `engine.run_cycle(snapshot)` runs the whole cycle, and every task the cycle
spawned (order sends, the risk monitor) is awaited before the next snapshot. No wall clock and no unseeded
randomness reach the results, so two runs on the same data and settings are identical.
"""
from __future__ import annotations

import asyncio
import logging
import math
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from workstation import bus as topics
from workstation.config import Settings
from workstation.domain import ChainSnapshot, Fill, SecType, Severity
from workstation.engine import Engine
from workstation.portfolio.attribution import attribute
from workstation.storage import Journal

from .broker import BacktestBroker
from .source import SnapshotSource

log = logging.getLogger(__name__)

ATTRIBUTION_PARTS = ("delta", "gamma", "vega", "theta", "residual")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class BacktestResult:
    """Everything the report needs, as plain values (picklable: sweeps ship it between processes)."""

    settings: dict
    data: str
    equity: list[dict] = field(default_factory=list)         # one row per snapshot, after its cycle
    fits: list[dict] = field(default_factory=list)           # one row per calibration
    fills: list[Fill] = field(default_factory=list)          # every execution the engine booked, in order
    orders: dict[str, dict] = field(default_factory=dict)    # client order id -> purpose, signal, model price
    marks: dict[int, float] = field(default_factory=dict)    # last mark of every contract ever held
    attribution: dict[str, float] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)              # Engine.summary() at the end
    snapshots: int = 0
    expected_snapshots: int = 0
    cycle_failures: int = 0
    step_ms: dict[str, float] = field(default_factory=dict)  # summed wall-clock ms per engine step (not deterministic)
    interrupted: bool = False
    elapsed_s: float = 0.0
    first: datetime | None = None
    last: datetime | None = None


class _Clock:
    """The engine's clock: the timestamp of the snapshot being replayed."""

    def __init__(self) -> None:
        self.now = EPOCH

    def __call__(self) -> datetime:
        return self.now


def backtest_settings(settings: Settings) -> Settings:
    """The settings a backtest runs with: replay feed, auto-execution on (nobody approves signals)."""
    s = settings.model_copy(deep=True)
    s.signals.auto_execute = True
    s.market.source = "replay"
    s.execution.trading_enabled = True
    return s


def _fast_journal(path: Path, clock: Callable[[], datetime]) -> Journal:
    """A throw-away journal: durability buys nothing in a backtest, so skip the fsync per commit."""
    journal = Journal(path, clock=clock)
    journal._conn.execute("PRAGMA synchronous=OFF")   # noqa: SLF001 - a temp file we delete after the run
    return journal


async def _drain(engine: Engine) -> None:
    """Await every task the cycle spawned (order sends, the monitor) so the next cycle sees their effects.

    The engine keeps its background tasks in `_tasks`; backtests must finish them before the next snapshot to be
    deterministic (the live loop lets them run concurrently)."""
    while True:
        pending = [t for t in engine._tasks if not t.done()]   # noqa: SLF001 - see docstring
        if not pending:
            return
        await asyncio.gather(*pending, return_exceptions=True)


class _Collector:
    """Equity curve, fits, fills and P&L attribution by Greeks, gathered from the bus and the book."""

    def __init__(self, engine: Engine, result: BacktestResult) -> None:
        self.engine, self.result = engine, result
        self.totals = {k: 0.0 for k in (*ATTRIBUTION_PARTS, "actual", "trading", "fees")}
        self._held: dict[int, tuple] = {}      # contract -> (qty, mult, mark, forward, vol, d, g, v, th) at last cycle
        self._last_total = 0.0
        self._last_fees = 0.0
        self._last_at: datetime | None = None
        engine.bus.subscribe(topics.FIT, self._on_fit)
        engine.bus.subscribe(topics.FILL, result.fills.append)
        engine.bus.subscribe(topics.CYCLE, self._on_cycle)

    def _on_cycle(self, report) -> None:
        for step, ms in report.timings_ms.items():
            self.result.step_ms[step] = self.result.step_ms.get(step, 0.0) + ms

    def _on_fit(self, fit) -> None:
        p = fit.params
        self.result.fits.append({
            "timestamp": fit.timestamp, "v0": p.v0, "kappa": p.kappa, "theta": p.theta, "sigma": p.sigma,
            "rho": p.rho, "rmse_iv": fit.rmse_iv, "accepted": fit.accepted, "iterations": fit.iterations,
            "quotes_used": fit.quotes_used, "elapsed_ms": fit.elapsed_ms})

    def _market_of(self, cid: int) -> tuple[float, float, float, float, float, float]:
        """Forward, vol and per-unit model Greeks (delta, gamma, vega, theta) of `cid` in the last cycle."""
        e = self.engine
        snap, surface, model = e.last_snapshot, e.last_surface, e.last_model
        pos = e.book.position(cid)
        if pos is not None and pos.contract.sec_type is SecType.FUTURE:
            return e.book.mark_of(cid), math.nan, 1.0, 0.0, 0.0, 0.0
        row = snap.index_of(cid) if snap is not None else None
        if row is None or surface is None:
            return math.nan, math.nan, 0.0, 0.0, 0.0, 0.0
        vol = float(surface.iv_mid[row])
        if not math.isfinite(vol) and model is not None:
            vol = float(model.iv[row])
        if model is None:
            return float(surface.forward[row]), vol, 0.0, 0.0, 0.0, 0.0
        return (float(surface.forward[row]), vol, float(model.delta[row]), float(model.gamma[row]),
                float(model.vega[row]), float(model.theta[row]))

    def after_cycle(self, snap: ChainSnapshot) -> None:
        e, book = self.engine, self.engine.book
        at = snap.timestamp
        total, fees = book.total_pnl, book.commissions
        # attribution of the positions held since the last cycle, from their marks then to their marks now
        if self._held and self._last_at is not None:
            ids = list(self._held)
            cols = np.array([self._held[c] for c in ids], dtype=float).T
            qty, mult, price0, fwd0, vol0, d, g, v, th = cols
            now = [self._market_of(c) for c in ids]
            fwd1 = np.array([m[0] if math.isfinite(m[0]) else f for m, f in zip(now, fwd0)])
            vol1 = np.array([m[1] if math.isfinite(m[1]) else s for m, s in zip(now, vol0)])
            price1 = np.array([book.mark_of(c) for c in ids])
            no_fwd = ~(np.isfinite(fwd0) & np.isfinite(fwd1))    # unquoted: its move lands in the residual
            fwd0, fwd1 = np.where(no_fwd, 0.0, fwd0), np.where(no_fwd, 0.0, fwd1)
            days = (at - self._last_at).total_seconds() / 86_400.0
            parts = attribute(qty, mult, price0, price1, fwd0, fwd1, vol0, vol1, days, d, g, v, th).totals()
            for k in (*ATTRIBUTION_PARTS, "actual"):
                self.totals[k] += parts[k]
            held_pnl = parts["actual"]
        else:
            held_pnl = 0.0
        self.totals["fees"] += fees - self._last_fees
        self.totals["trading"] += (total - self._last_total) - held_pnl + (fees - self._last_fees)
        self._last_total, self._last_fees, self._last_at = total, fees, at
        self._held = {}
        for cid, pos in book.positions.items():
            fwd, vol, d, g, v, th = self._market_of(cid)
            self._held[cid] = (pos.quantity, pos.contract.multiplier, book.mark_of(cid), fwd, vol, d, g, v, th)
        greeks = book.greeks
        self.result.equity.append({
            "timestamp": at, "total": total, "realized": book.realized_pnl, "unrealized": book.unrealized_pnl,
            "fees": fees, "positions": len(book.positions), "contracts": book.total_option_contracts,
            "delta": greeks.delta, "vega": greeks.vega, "state": e.state.value,
            **{f"attr_{k}": self.totals[k] for k in (*ATTRIBUTION_PARTS, "trading", "fees")},
        })


ProgressFn = Callable[[int, int], None]


async def replay(settings: Settings, source: SnapshotSource, *, progress: ProgressFn | None = None,
                 should_stop: Callable[[], bool] | None = None, workdir: Path | None = None) -> BacktestResult:
    """Run the backtest; `progress(done, total)` after each snapshot; stops early (result.interrupted) when
    `should_stop()` turns true. The journal lives in a temporary directory (under `workdir` if given)."""
    settings = backtest_settings(settings)
    result = BacktestResult(settings=settings.model_dump(mode="json"), data=str(source.path))
    result.expected_snapshots = source.count()
    clock = _Clock()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="backtest-", dir=workdir) as tmp:
        journal = _fast_journal(Path(tmp) / "journal.sqlite", clock)
        broker = BacktestBroker(settings.execution.paper)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backtest-numerics")
        # the runner drives the snapshots itself: no feed object, no background pump
        engine = Engine(settings, None, broker, journal, clock=clock, connection="backtest", executor=executor)
        engine.signals.prefix = "S-"       # the live engine stamps signal ids with the wall clock
        engine.auto_execute = True
        collector = _Collector(engine, result)
        await broker.connect()
        try:
            async for snap in source.snapshots():
                if should_stop is not None and should_stop():
                    result.interrupted = True
                    break
                clock.now = snap.timestamp
                result.first = result.first or snap.timestamp
                result.last = snap.timestamp
                broker.on_snapshot(snap)
                try:
                    await engine.run_cycle(snap)
                except Exception as exc:   # as in the live loop: one bad snapshot must not end the run
                    log.exception("cycle failed at %s", snap.timestamp)
                    result.cycle_failures += 1
                    engine.alert("CYCLE_FAILED", Severity.ERROR, f"cycle failed: {exc}")
                await _drain(engine)
                collector.after_cycle(snap)
                result.snapshots += 1
                if progress is not None:
                    progress(result.snapshots, max(result.expected_snapshots, result.snapshots))
        finally:
            await _drain(engine)
            result.orders = {coid: {"purpose": r.order.purpose.value, "signal_id": r.order.signal_id,
                                    "model_price": r.order.model_price, "status": r.status.value,
                                    "created_at": r.order.created_at}
                             for coid, r in engine.orders.records.items()}
            result.marks = {cid: engine.book.mark_of(cid) for cid in {f.contract.contract_id for f in result.fills}}
            result.attribution = dict(collector.totals)
            with warnings.catch_warnings():          # an empty run: the summary's medians of nothing
                warnings.simplefilter("ignore", RuntimeWarning)
                result.summary = engine.summary()
            executor.shutdown(wait=True)
            journal.close()
            await broker.close()
    result.elapsed_s = time.perf_counter() - started
    return result


def run(settings: Settings, data: Path, date_from: str | None = None, date_to: str | None = None,
        **kwargs: Any) -> BacktestResult:
    """Synchronous `replay` on its own event loop (for the CLI, worker processes and the GUI's thread)."""
    source = SnapshotSource.from_settings(Path(data), backtest_settings(settings), date_from, date_to)
    return asyncio.run(replay(settings, source, **kwargs))
