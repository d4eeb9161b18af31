"""Recovery: SIGKILL a headless run (the real CLI) at random moments, restart it on the same data dir, and check
after each restart that no fill is lost or doubled and that the book equals the broker's positions.

The paper account (workstation.sim.account_store) is the broker's truth: the exchange commits each execution
before reporting it, so a kill can leave executions the journal has not seen yet — never the reverse. The next
start must pick them up (`Engine.reconcile`). A final clean run must end with journal == account exactly.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from sim_day import pin_sim_day
from workstation.config import PaperConfig, Settings, SimulatorConfig
from workstation.domain import Fill, Order, OrderEvent, OrderPurpose, OrderStatus, OrderType, Side
from workstation.engine import Engine
from workstation.execution.paper import PaperBroker
from workstation.sim.account_store import AccountStore
from workstation.sim.world import SimWorld
from workstation.storage import Journal

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261122
KILLS = 8
READY = "headless run:"          # logged once Engine.start() (recovery + reconcile) has returned
MIN_FILLS_PER_KILL = 8           # a trading kill waits for 8-16 newly committed executions
STARTUP_BUDGET_S = 300.0         # bounds for a broken run only (a cold numba cache compiles for 30+ s)
PROGRESS_BUDGET_S = 300.0

# Trades a lot, quickly: a snapshot every 0.5 s wall (15 s of market time at speed 30), frequent mispricings,
# low signal thresholds, orders resting near mid (so some are working at each kill), wide risk limits.
CONFIG = """
market:
  source: sim
  snapshot_interval_s: 15
  strike_window: 0.1
  max_expiry_days: 120
  simulator: {seed: 7, always_open: true, mispricing_rate: 0.3, mispricing_size_vol: 0.05,
              mispricing_max_spreads: 100}
calibration: {max_expiry_days: 120, worse_factor: 100, max_rmse_iv: 10}
signals:
  min_edge_vol: 0.1
  min_edge_dollars: 5
  spread_multiple: 0.2
  min_zscore: 0.0
  min_history: 3
  auto_execute: true
  max_age_s: 30
  cooldown_s: 10
  exit_converged_vol: 0.5
  time_stop_minutes: 3
risk:
  max_var_99: 10000000
  max_delta_dollars: 10000000
  max_gamma_dollars: 10000000
  max_vega_dollars: 10000000
  max_daily_loss: 10000000
  buying_power: 100000000
  max_orders_per_minute: 200
  max_open_orders: 40
  duplicate_window_s: 0
  allow_uncovered_shorts: true
execution: {broker: paper, on_exit: cancel, aggressiveness: 0.3, reprice_interval_s: 5, order_timeout_s: 90}
hedging: {enabled: true, band_delta: 50, min_interval_s: 5}
"""


class Workstation:
    """Runs `python -u main.py headless` on one data dir, with user dirs (overrides, logs) inside tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.data = tmp_path / "data"
        self.config = tmp_path / "recovery.yaml"
        self.config.write_text(CONFIG, encoding="utf-8")
        user_dirs = {f"XDG_{k}_HOME": str(tmp_path / "xdg" / k.lower()) for k in ("CONFIG", "DATA", "STATE", "CACHE")}
        pin_sim_day(tmp_path / "xdg" / "config")        # every run starts on SIM_DAY (then resumes the account)
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT), **user_dirs}
        self.runs = 0

    def start(self, duration: float, json_out: Path | None = None) -> tuple[subprocess.Popen, Path]:
        self.runs += 1
        log = self.tmp / f"run{self.runs}.log"
        cmd = [sys.executable, "-u", str(ROOT / "main.py"), "headless", "--config", str(self.config),
               "--duration", str(duration), "--speed", "30", "--data-dir", str(self.data)]
        if json_out is not None:
            cmd += ["--json", str(json_out)]
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return proc, log


class Books:
    """The journal and the paper account read at rest (no process running)."""

    def __init__(self, data: Path) -> None:
        journal, store = Journal(data / "journal.sqlite"), AccountStore(data / "paper_account.sqlite")
        try:
            self.integrity = (journal.integrity_check(), store.integrity_check())
            self.fills = journal.fills()
            self.states = journal.order_states()
            self.mismatch_alerts = [a.message for a in journal.alerts(100_000) if a.code.startswith("RECONCILE")
                                    and not _clean_report(a.message)]
            self.account = store.load()
        finally:
            journal.close()
            store.close()
        self.executions = {f.fill_id: f for f in self.account.fills}

    def journal_book(self) -> dict[int, int]:
        return _net(self.fills)

    def check_consistent(self) -> None:
        """What must hold at any kill: sound files, no doubled or phantom fill, the account adds up."""
        assert self.integrity == ("ok", "ok")
        ids = [f.fill_id for f in self.fills]
        assert len(ids) == len(set(ids)), f"doubled fills in the journal: {Counter(ids).most_common(3)}"
        assert len(self.executions) == len(self.account.fills), "execution ids repeat in the account"
        for f in self.fills:       # every journaled fill is an execution of the account, the same one
            e = self.executions.get(f.fill_id)
            assert e is not None, f"journal fill {f.fill_id} unknown to the broker"
            assert (e.client_order_id, e.contract.contract_id, e.side, e.quantity, e.price) == \
                (f.client_order_id, f.contract.contract_id, f.side, f.quantity, f.price)
        assert self.account.positions == _net(self.account.fills), "account positions != its executions"
        assert not self.mismatch_alerts, f"book != broker after a restart: {self.mismatch_alerts[:3]}"


def _clean_report(message: str) -> bool:
    """The engine's summary of a reconciliation that fixed things (missing fills, closed orders) but found the
    book equal to the broker; every other reconcile alert is a mismatch or a failure."""
    return message.startswith("reconciled with the broker") and "'position_mismatches': 0" in message


def _net(fills) -> dict[int, int]:
    out: Counter = Counter()
    for f in fills:
        out[f.contract.contract_id] += f.signed_quantity
    return {cid: q for cid, q in out.items() if q}


def _wait_ready(proc: subprocess.Popen, log: Path, timeout: float) -> bool:
    return _poll(lambda: READY in log.read_text(encoding="utf-8", errors="replace"), proc, timeout)


def _poll(condition, proc: subprocess.Popen, timeout: float) -> bool:
    """Poll `condition` while `proc` runs, at most `timeout` seconds (a bound for a broken run, not a schedule)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def committed_executions(data: Path) -> int:
    """Executions the paper account has committed so far, read while the run writes (WAL readers see commits)."""
    path = data / "paper_account.sqlite"
    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            return int(db.execute("SELECT COUNT(*) FROM executions").fetchone()[0])
    except sqlite3.Error:           # created but not migrated yet
        return 0


@pytest.mark.slow
def test_sigkill_loop_loses_and_doubles_no_fill_and_the_book_equals_the_broker(tmp_path, warm_numba):
    """Kills land on progress, not on the wall clock: a trading kill waits for its run to commit a random number of
    new executions (so a loaded machine only makes the loop slower, never vacuous); every third kill lands during
    start-up (recovery, reconciliation), at a random moment before the run says it is ready."""
    rng = random.Random(SEED)
    ws = Workstation(tmp_path)
    resting_at_kills = 0
    required = 0                 # executions the trading kills waited for: the loop cannot pass on fewer
    owed: set[str] = set()       # executions the account had when the last run started: the journal must get them
    for kill in range(KILLS):
        proc, log = ws.start(duration=3600)               # ended by the kill; the duration only bounds a stray run
        before = committed_executions(ws.data)
        if kill % 3 == 2:                                 # start-up: kill before (or just as) it reports ready
            ready = _wait_ready(proc, log, rng.uniform(0.05, 1.5))
        else:
            more = rng.randint(MIN_FILLS_PER_KILL, 2 * MIN_FILLS_PER_KILL)
            ready = _wait_ready(proc, log, STARTUP_BUDGET_S)
            assert ready, f"run {ws.runs} never became ready:\n{log.read_text()[-3000:]}"
            assert _poll(lambda: committed_executions(ws.data) >= before + more, proc, PROGRESS_BUDGET_S), \
                f"run {ws.runs} committed {committed_executions(ws.data) - before} of {more} executions:\n" \
                f"{log.read_text()[-3000:]}"
            required += more
        assert proc.poll() is None, f"run {ws.runs} ended early:\n{log.read_text()[-3000:]}"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        books = Books(ws.data)
        unreported = set(books.executions) - {f.fill_id for f in books.fills}
        print(f"kill {kill + 1}: ready={ready} executions={len(books.executions)} unreported={len(unreported)} "
              f"working at the broker={sum(o.status.is_working for o in books.account.orders)} "
              f"working in the journal={sum(s.status.is_working for s in books.states.values())}")
        books.check_consistent()
        resting_at_kills += sum(o.status.is_working for o in books.account.orders)
        if ready:            # this run recovered and reconciled: what the broker had at its start is journaled now
            missing = owed - {f.fill_id for f in books.fills}
            assert not missing, f"run {ws.runs} lost fills {sorted(missing)[:5]}"
            owed = set()
        owed |= set(books.executions)
    assert len(books.executions) >= required >= 5 * MIN_FILLS_PER_KILL
    assert resting_at_kills, "expected orders resting at the broker at some kill"

    # a final clean run: recovery, reconciliation, trading, a clean stop
    summary_path = tmp_path / "final.json"
    proc, log = ws.start(duration=6, json_out=summary_path)
    assert proc.wait(timeout=STARTUP_BUDGET_S + 60) == 0, log.read_text()[-3000:]
    books = Books(ws.data)
    books.check_consistent()
    assert {f.fill_id for f in books.fills} == set(books.executions), "journal fills != broker executions"
    assert books.journal_book() == books.account.positions
    summary = json.loads(summary_path.read_text())
    assert {p["contract_id"]: p["quantity"] for p in summary["positions"] if p["quantity"]} == books.account.positions
    assert summary["fills"] == len(books.executions)
    # orders: nothing left working on either side (on_exit: cancel); the same final state and fill count
    assert not [o for o in books.account.orders if o.status.is_working]
    assert not [s for s in books.states.values() if s.status.is_working]
    filled = Counter()
    for f in books.fills:
        filled[f.client_order_id] += f.quantity
    for o in books.account.orders:
        state = books.states[o.order.client_order_id]
        assert (state.status, filled[o.order.client_order_id]) == (o.status, o.filled), \
            f"{o.order.client_order_id}: journal {state.status.value}/{filled[o.order.client_order_id]} " \
            f"vs broker {o.status.value}/{o.filled} ({state.reason})"


# ---------------------------------------------------------------------------------------------------------------
# The same recovery path in-process, with the crash placed exactly where a random kill rarely lands.

DAY = date(2025, 10, 1)


class _Feed:
    """The engine only subscribes to the feed's status here; nothing is fed."""

    def __init__(self) -> None:
        self.on_status: list = []


def _world(path: Path) -> SimWorld:
    return SimWorld(SimulatorConfig(start_date=DAY, mispricing_rate=0, always_open=True), PaperConfig(latency_ms=0),
                    manual=True, account_path=path)


def _option(world: SimWorld, strike: float = 5900.0):
    lst = world.market.listing
    rows = np.flatnonzero((lst.expiry == np.datetime64("2025-10-17")) & (lst.strike == strike) & lst.is_call &
                          (lst.trading_class == "SPXW"))
    return lst.contract(int(rows[0]))


def _step(world: SimWorld) -> list:
    """The world moves on, but its events reach nobody (the process is about to die, or its reports are lost)."""
    world.market.advance_to(world.clock.now())
    return world.exchange.step()


def _journal_order(journal: Journal, order: Order) -> None:
    """What OrderManager.register writes before sending."""
    with journal.transaction():
        journal.record_order(order)
        journal.record_order_event(OrderEvent(order.client_order_id, OrderStatus.NEW, order.created_at, 0,
                                              order.quantity, limit_price=order.limit_price))


def _journal_events(journal: Journal, events) -> None:
    """What the engine journals when the broker reports (fill before its order event)."""
    for e in events:
        if isinstance(e, Fill):
            journal.record_fill(e)
        else:
            journal.record_order_event(e)


async def _restart(tmp_path: Path) -> tuple[Engine, PaperBroker, dict]:
    """A new process: world and broker on the account file, engine on the journal; recover, connect, reconcile."""
    world = _world(tmp_path / "paper_account.sqlite")
    broker = PaperBroker(world)
    engine = Engine(Settings(), _Feed(), broker, Journal(tmp_path / "journal.sqlite"), clock=world.clock.now)
    engine.reconciler.recover_from_journal()
    await broker.connect()
    return engine, broker, await engine.reconcile()


async def test_a_fill_the_broker_booked_but_the_journal_never_saw_is_recovered_and_its_order_ends_filled(tmp_path):
    world, journal = _world(tmp_path / "paper_account.sqlite"), Journal(tmp_path / "journal.sqlite")
    c = _option(world)
    world.clock.advance(1)
    world.sync()
    _, ask, _, ask_size = world.exchange._touch(c)
    qty = ask_size + 1                  # fills in two pieces: the displayed size now, 1 more a second later
    order = Order("HW-00000001", c, Side.BUY, qty, OrderType.LIMIT, round(ask + 1.0, 2), world.clock.now(),
                  OrderPurpose.SIGNAL)
    _journal_order(journal, order)
    world.exchange.submit(order)
    first = _step(world)                     # ack + first fill: reported and journaled
    _journal_events(journal, first)
    world.clock.advance(1)
    second = _step(world)                    # the rest: committed by the broker, then the process dies
    assert [e.quantity for e in second if isinstance(e, Fill)] == [1]
    journal.close()
    world.close()

    engine, broker, report = await _restart(tmp_path)
    try:
        assert report == {"missing_fills": 1, "closed_orders": 1, "position_mismatches": 0}
        assert engine.book.quantity(c.contract_id) == qty == (await broker.positions())[c.contract_id]
        record = engine.orders.records[order.client_order_id]
        assert record.status is OrderStatus.FILLED, record.reason
        assert record.fill_quantity == qty
        fills = [f for f in engine.journal.fills() if f.client_order_id == order.client_order_id]
        vwap = sum(f.quantity * f.price for f in fills) / qty
        assert math.isclose(record.avg_price, vwap)
        assert engine.journal.order_states()[order.client_order_id].status is OrderStatus.FILLED
    finally:
        engine.executor.shutdown()
        engine.journal.close()
        broker.world.close()


async def test_orders_lost_in_flight_are_closed_and_orders_resting_at_the_broker_keep_working(tmp_path):
    world, journal = _world(tmp_path / "paper_account.sqlite"), Journal(tmp_path / "journal.sqlite")
    c = _option(world)
    world.clock.advance(1)
    world.sync()
    bid, ask, _, _ = world.exchange._touch(c)
    now = world.clock.now()
    lost = Order("HW-00000001", c, Side.BUY, 1, OrderType.LIMIT, 0.05, now, OrderPurpose.SIGNAL)
    resting = Order("HW-00000002", c, Side.BUY, 2, OrderType.LIMIT, 0.05, now, OrderPurpose.SIGNAL)
    for o in (lost, resting):
        _journal_order(journal, o)
    world.exchange.submit(resting)
    assert _step(world)[0].status is OrderStatus.SUBMITTED    # acked at the broker; the report is lost
    journal.close()
    world.close()

    engine, broker, report = await _restart(tmp_path)
    try:
        assert report == {"missing_fills": 0, "closed_orders": 1, "position_mismatches": 0}
        assert engine.orders.records[lost.client_order_id].status is OrderStatus.CANCELLED
        assert [r.order.client_order_id for r in engine.orders.working()] == [resting.client_order_id]
        await broker.modify(resting.client_order_id, limit_price=round(ask + 1.0, 2))    # still works there
        broker.world.clock.advance(1)
        broker.pump()
        assert engine.orders.records[resting.client_order_id].status is OrderStatus.FILLED
        assert engine.book.quantity(c.contract_id) == 2 == (await broker.positions())[c.contract_id]
    finally:
        engine.executor.shutdown()
        engine.journal.close()
        broker.world.close()


async def test_a_position_the_broker_does_not_hold_raises_reconcile_mismatch(tmp_path):
    """The journal says 2 lots, the broker none (e.g. the account was reset): reconciliation reports the mismatch
    and raises RECONCILE_MISMATCH (ERROR) naming both quantities; it does not invent a fill to hide it."""
    world, journal = _world(tmp_path / "paper_account.sqlite"), Journal(tmp_path / "journal.sqlite")
    c = _option(world)
    world.clock.advance(1)
    order = Order("HW-00000001", c, Side.BUY, 2, OrderType.LIMIT, 20.0, world.clock.now(), OrderPurpose.SIGNAL)
    _journal_order(journal, order)
    _journal_events(journal, [Fill("PHANTOM-1", order.client_order_id, c, Side.BUY, 2, 20.0, world.clock.now()),
                              OrderEvent(order.client_order_id, OrderStatus.FILLED, world.clock.now(), 2, 0, 20.0)])
    journal.close()
    world.close()

    engine, broker, report = await _restart(tmp_path)
    try:
        assert report == {"missing_fills": 0, "closed_orders": 0, "position_mismatches": 1}
        assert engine.book.quantity(c.contract_id) == 2 and (await broker.positions()).get(c.contract_id, 0) == 0
        mismatches = [a for a in engine.journal.alerts(100) if a.code == "RECONCILE_MISMATCH"]
        assert [a.severity.name for a in mismatches if "journal 2 vs broker 0" in a.message] == ["ERROR"]
        assert any("'position_mismatches': 1" in a.message for a in mismatches)
        assert [f.fill_id for f in engine.journal.fills()] == ["PHANTOM-1"]              # nothing invented
    finally:
        engine.executor.shutdown()
        engine.journal.close()
        broker.world.close()
