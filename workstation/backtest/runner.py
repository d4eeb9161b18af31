"""Replay snapshots through the same Engine the GUI runs, as fast as the machine allows, deterministically.

Per snapshot: the clock is set to the snapshot's timestamp, the backtest broker delivers last cycle's requests,
`engine.run_cycle(snapshot)` runs the whole cycle, and every task the cycle spawned (order sends, the risk
monitor) is awaited before the next snapshot. The broker fills against the snapshot the cycle's data sanity
accepted (published on the bus before anything acts on it): no fill on a quote the engine refused to trust. No wall clock and no unseeded
randomness reach the results, so two runs on the same data and settings are identical.
"""
from __future__ import annotations

import asyncio
import logging
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable


from workstation import bus as topics
from workstation.config import Settings
from workstation.domain import ChainSnapshot, Fill, Severity
from workstation.engine import Engine
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
    skipped: dict[str, int] = field(default_factory=dict)   # data rows / snapshots skipped while reading, by reason
    skipped_examples: list[str] = field(default_factory=list)
    step_ms: dict[str, float] = field(default_factory=dict)  # summed wall-clock ms per engine step (not deterministic)
    interrupted: bool = False
    elapsed_s: float = 0.0
    first: datetime | None = None
    last: datetime | None = None


BACKTEST_ID_PREFIX = "BT"     # backtest order ids (BT-00000001): their own id space, apart from live HW-…
BACKTEST_THREAD = "backtest"  # log records from threads named so belong to a backtest, not the live Log panel


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


class _Collector:
    """Equity curve, fits, fills and P&L attribution by Greeks, gathered from the bus and the book."""

    def __init__(self, engine: Engine, result: BacktestResult) -> None:
        self.engine, self.result = engine, result
        self.totals = {k: 0.0 for k in (*ATTRIBUTION_PARTS, "actual", "trading", "fees")}
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

    def after_cycle(self, snap: ChainSnapshot) -> None:
        e, book = self.engine, self.engine.book
        at = snap.timestamp
        total, fees = book.total_pnl, book.commissions
        parts = e.last_attribution          # this cycle's P&L of positions held since the last one, by Greeks
        for k in (*ATTRIBUTION_PARTS, "actual"):
            self.totals[k] += parts.get(k, 0.0)
        held_pnl = parts.get("actual", 0.0)
        self.totals["fees"] += fees - self._last_fees
        self.totals["trading"] += (total - self._last_total) - held_pnl + (fees - self._last_fees)
        self._last_total, self._last_fees, self._last_at = total, fees, at
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
    log.info("backtest of %s: %d snapshots, order ids %s-…", source.path, result.expected_snapshots,
             BACKTEST_ID_PREFIX)
    clock = _Clock()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="backtest-", dir=workdir) as tmp:
        journal = Journal(Path(tmp) / "journal.sqlite", clock=clock, durable=False)   # throw-away
        broker = BacktestBroker(settings.execution.paper)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{BACKTEST_THREAD}-numerics")
        # the runner drives the snapshots itself: no feed object, no background pump
        engine = Engine(settings, None, broker, journal, clock=clock, connection="backtest", executor=executor)
        engine.orders.id_prefix = BACKTEST_ID_PREFIX        # never mistaken for a live order id
        engine.auto_execute = True
        collector = _Collector(engine, result)
        engine.bus.subscribe(topics.SNAPSHOT, broker.match)     # fills only on the quotes the sanity check kept
        await broker.connect()
        try:
            async for snap in source.snapshots():
                if should_stop is not None and should_stop():
                    result.interrupted = True
                    break
                clock.now = snap.timestamp
                result.first = result.first or snap.timestamp
                result.last = snap.timestamp
                broker.deliver(snap)
                try:
                    await engine.run_cycle(snap)
                except Exception as exc:   # as in the live loop: one bad snapshot must not end the run
                    log.exception("cycle failed at %s", snap.timestamp)
                    result.cycle_failures += 1
                    engine.alert("ENGINE_ERROR", Severity.ERROR, f"cycle failed: {exc}")
                await engine.settle_tasks()
                collector.after_cycle(snap)
                result.snapshots += 1
                if progress is not None:
                    progress(result.snapshots, max(result.expected_snapshots, result.snapshots))
        finally:
            result.skipped = dict(source.report.skipped)
            result.skipped_examples = list(source.report.examples)
            await engine.settle_tasks()
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
