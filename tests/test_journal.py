"""Journal: round trips of every record, idempotent fills, migrations, refusal of newer schemas, threads."""
from __future__ import annotations

import math
import sqlite3
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workstation.domain import (Alert, Contract, Fill, HestonParams, Order, OrderEvent, OrderPurpose, OrderStatus,
                                OrderType, Position, Right, SecType, Settlement, Severity, Side, Signal, SignalState,
                                SignalStructure)
from workstation.domain.combos import vertical
from workstation.storage import (CURRENT_VERSION, Journal, JournalError, JournalVersionError, RiskCheckRecord,
                                 rebuild_positions)
from workstation.portfolio.book import Book
from workstation.storage import codec, paths
from workstation.storage.schema import MIGRATIONS

T0 = datetime(2025, 10, 1, 14, 30, tzinfo=timezone.utc)
CALL = Contract(101, "SPX", SecType.OPTION, "SPXW", date(2025, 10, 17), 6700.0, Right.CALL)
PUT = Contract(102, "XSP", SecType.OPTION, "XSP", date(2025, 11, 21), 650.0, Right.PUT, settlement=Settlement.AM)
FUT = Contract(900, "SPX", SecType.FUTURE, "MES", date(2025, 12, 19), multiplier=5.0, exchange="CME")


@pytest.fixture
def journal(tmp_path: Path):
    with Journal(tmp_path / "journal.sqlite") as j:
        yield j


def order(cid: str = "HW-1", contract: Contract = CALL, side: Side = Side.BUY, qty: int = 3) -> Order:
    return Order(cid, contract, side, qty, OrderType.LIMIT, 12.5, T0, OrderPurpose.SIGNAL, "sig-1", 12.8)


def fill(fid: str, side: Side, qty: int, price: float, contract: Contract = CALL, commission: float = 0.0,
         cid: str = "HW-1") -> Fill:
    return Fill(fid, cid, contract, side, qty, price, T0, commission, "add", {"venue": "paper"})


# ---- codec and paths ------------------------------------------------------------------------------

@pytest.mark.parametrize("contract", [CALL, PUT, FUT, Contract(1, "SPX", SecType.INDEX, exchange="CBOE")])
def test_contract_json_round_trip(contract: Contract) -> None:
    assert codec.contract_from_json(codec.contract_to_json(contract)) == contract


def test_codec_round_trips_nested_dataclasses_and_normalises_time_to_utc() -> None:
    ny = timezone(timedelta(hours=-4))
    o = Order("A", PUT, Side.SELL, 2, OrderType.MARKET, None, datetime(2025, 1, 2, 10, tzinfo=ny))
    back = codec.loads(Order, codec.dumps(o))
    assert back == o and back.created_at.utcoffset() == timedelta(0)
    assert codec.iso(T0) < codec.iso(T0 + timedelta(microseconds=1))


def test_paths_use_the_app_name() -> None:
    for p in (paths.default_data_dir(), paths.default_log_dir(), paths.default_config_dir()):
        assert "heston-workstation" in str(p)
    assert paths.overrides_path().parent == paths.default_config_dir()


def test_a_command_data_dir_is_its_data_dir_option_or_the_user_data_dir(tmp_path) -> None:
    """storage.paths.data_dir_for is the one home of the choice every command (gui, headless, doctor) makes."""
    from argparse import Namespace
    assert paths.data_dir_for(Namespace(data_dir=tmp_path / "d")) == tmp_path / "d"
    assert paths.data_dir_for(Namespace(data_dir=None)) == paths.default_data_dir()
    assert paths.data_dir_for(Namespace()) == paths.default_data_dir()


# ---- round trips ----------------------------------------------------------------------------------

def test_journal_is_wal_full_sync_and_current(journal: Journal) -> None:
    assert journal._rows("PRAGMA journal_mode")[0][0] == "wal"
    assert journal._rows("PRAGMA synchronous")[0][0] == 2  # FULL
    assert journal.schema_version == CURRENT_VERSION


def test_order_and_events_round_trip(journal: Journal) -> None:
    o = order()
    assert journal.record_order(o) and not journal.record_order(o)
    events = [OrderEvent("HW-1", OrderStatus.SUBMITTED, T0, 0, 3, broker_order_id="B7", limit_price=12.5),
              OrderEvent("HW-1", OrderStatus.PARTIALLY_FILLED, T0 + timedelta(seconds=1), 1, 2, 12.5),
              OrderEvent("HW-1", OrderStatus.FILLED, T0 + timedelta(seconds=2), 3, 0, 12.45, "done", "B7")]
    for e in events:
        journal.record_order_event(e)
    assert journal.orders() == [o] and journal.order("HW-1") == o and journal.order("nope") is None
    stored = journal.order_events("HW-1")
    assert stored[1:] == events[1:]
    assert stored[0].client_order_id == "HW-1" and math.isnan(stored[0].avg_fill_price)  # NaN survives as NaN
    assert journal.order_states()["HW-1"] == events[-1]
    assert journal.working_orders() == []


def test_order_states_and_working_orders(journal: Journal) -> None:
    for cid in ("A", "B", "C"):
        journal.record_order(order(cid))
    journal.record_order_event(OrderEvent("B", OrderStatus.SUBMITTED, T0, 0, 3))
    journal.record_order_event(OrderEvent("C", OrderStatus.REJECTED, T0, 0, 0, reason="RISK_MAX_QTY"))
    states = journal.order_states()
    assert {k: v.status for k, v in states.items()} == {
        "A": OrderStatus.NEW, "B": OrderStatus.SUBMITTED, "C": OrderStatus.REJECTED}
    assert [o.client_order_id for o in journal.working_orders()] == ["A", "B"]


def test_event_without_its_order_is_refused(journal: Journal) -> None:
    with pytest.raises(JournalError):
        journal.record_order_event(OrderEvent("ghost", OrderStatus.SUBMITTED, T0))
    assert journal.order_events() == []


def test_fills_round_trip_and_are_idempotent(journal: Journal) -> None:
    f1 = fill("E1", Side.BUY, 2, 10.0, commission=1.3)
    f2 = Fill("E2", "HW-2", FUT, Side.SELL, 1, 6712.25, T0 + timedelta(minutes=5))
    assert journal.record_fill(f1) and journal.record_fill(f2)
    assert not journal.record_fill(f1)
    assert not journal.record_fill(fill("E1", Side.SELL, 9, 99.0))  # same exec id: ignored, first one kept
    got = journal.fills()
    assert got == [f1, f2] and got[0].metadata == {"venue": "paper"}
    assert journal.fills(since=T0 + timedelta(minutes=1)) == [f2]
    assert journal.has_fill("E2") and not journal.has_fill("E3")


def test_risk_checks_round_trip_objects_and_mappings(journal: Journal) -> None:
    class Result:
        def __init__(self, name: str, ok: bool, code: str = "", message: str = "") -> None:
            self.name, self.ok, self.code, self.message = name, ok, code, message

    journal.record_order(order())
    journal.record_risk_checks("HW-1", [
        Result("max_quantity", True), {"name": "price_band", "passed": False, "reason": OrderStatus.REJECTED,
                                       "detail": "limit 12.5 vs model 9.1"}])
    assert journal.risk_checks("HW-1") == [
        RiskCheckRecord("HW-1", "max_quantity", True, "", ""),
        RiskCheckRecord("HW-1", "price_band", False, "REJECTED", "limit 12.5 vs model 9.1")]
    with pytest.raises(JournalError):
        journal.record_risk_checks("HW-1", [{"name": "x"}])
    assert len(journal.risk_checks("HW-1")) == 2


def test_signals_round_trip_and_state_updates(journal: Journal) -> None:
    s = Signal("sig-1", CALL, Side.BUY, T0, 12.1, 12.5, 13.4, 90.0, 0.8, float("nan"), 4.2, 2)
    journal.record_signal(s)
    assert journal.signals()[0].signal_id == "sig-1" and math.isnan(journal.signals()[0].zscore)
    s2 = s.with_state(SignalState.APPROVED, T0 + timedelta(seconds=3), "auto")
    journal.record_signal(s2)
    later = Signal("sig-2", PUT, Side.SELL, T0 + timedelta(minutes=1), 3.0, 3.2, 2.5, -20.0, -1.0, 2.5, 0.7, 1)
    journal.record_signal(later)
    assert [x.signal_id for x in journal.signals()] == ["sig-2", "sig-1"]
    got = journal.signals(state=SignalState.APPROVED)
    assert len(got) == 1 and got[0].state is SignalState.APPROVED and got[0].reason == "auto"
    assert got[0].updated_at == s2.updated_at and got[0].contract == CALL
    assert journal.signals(since=T0 + timedelta(seconds=30)) == [later]
    assert journal.signals(limit=1) == [later]


CALL_6750 = Contract(103, "SPX", SecType.OPTION, "SPXW", date(2025, 10, 17), 6750.0, Right.CALL)


def _structured(signal_id: str) -> Signal:
    st = SignalStructure(vertical(CALL, CALL_6750), Side.BUY, 21.35, 0.85, 0.62, 1250.0, 12.5, 35.0, -48.0,
                         3400.0, 120.0, quantity=2, blocked="")
    return Signal(signal_id, CALL, Side.BUY, T0, 40.1, 40.5, 41.6, 110.0, 0.9, -2.4, 120.0, 2, structure=st)


def test_a_signals_structure_round_trips(journal: Journal) -> None:
    s = _structured("sig-9")
    journal.record_signal(s)
    (back,) = journal.signals()
    assert back.structure == s.structure and back.structure.label == "vertical 6700/6750 C"
    ordered = s.with_state(SignalState.ORDERED, T0 + timedelta(seconds=2), "HW-00000007")
    journal.record_signal(ordered)
    assert journal.signals()[0].structure == s.structure and journal.signals()[0].state is SignalState.ORDERED


def test_migrates_v4_to_v5_adding_the_signal_structure(tmp_path: Path) -> None:
    """Version 5 adds `signals.structure`: a v4 journal's signals read back with none; new ones keep theirs."""
    path = tmp_path / "v4.sqlite"
    conn = sqlite3.connect(path)
    for step in MIGRATIONS[:4]:
        for statement in step:
            conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '4')")
    conn.execute("INSERT INTO signals(signal_id, contract_id, contract, side, created_at, bid, ask, model_price,"
                 " edge_dollars, edge_vol, zscore, vega, quantity, state, reason, updated_at, family)"
                 " VALUES ('old-1', 101, ?, 'BUY', ?, 12.1, 12.5, 13.4, 90.0, 0.8, NULL, 4.2, 2, 'NEW', '', NULL,"
                 " 'relative')", (codec.contract_to_json(CALL), codec.iso(T0)))
    conn.commit()
    conn.close()
    with Journal(path) as j:
        assert j.schema_version == CURRENT_VERSION >= 5
        (old,) = j.signals()
        assert old.signal_id == "old-1" and old.family == "relative" and old.structure is None
        j.record_signal(_structured("new-1"))
        assert {x.signal_id: x.structure is not None for x in j.signals()} == {"old-1": False, "new-1": True}


def test_alerts_round_trip_and_fold_by_id(journal: Journal) -> None:
    a = Alert("RISK_DAILY_LOSS", Severity.CRITICAL, "risk", "daily loss 5200 > 5000", T0, alert_id="al-1")
    b = Alert("FIT_STALE", Severity.WARNING, "calibration", "fit rejected", T0 + timedelta(seconds=5))
    journal.record_alert(a)
    journal.record_alert(b)
    journal.record_alert(b)  # no id: two rows
    journal.record_alert(Alert("RISK_DAILY_LOSS", "CRITICAL", "risk", "again", T0 + timedelta(seconds=9),
                               count=2, acknowledged=True, alert_id="al-1"))
    got = journal.alerts()
    assert [x.code for x in got] == ["RISK_DAILY_LOSS", "FIT_STALE", "FIT_STALE"]
    assert got[0].count == 2 and got[0].acknowledged and got[0].message == "again"
    assert got[1] == b and journal.alerts(limit=1) == got[:1]


def test_fits_round_trip(journal: Journal) -> None:
    p = HestonParams(0.04, 2.0, 0.05, 0.6, -0.7)
    first = journal.record_fit(p, rmse=0.0021, elapsed_ms=31.5, quotes_used=812, timestamp=T0, underlying="SPX")
    second = journal.record_fit(None, rmse=float("nan"), elapsed_ms=120.0, quotes_used=40, accepted=False,
                                stale=True, timestamp=T0 + timedelta(seconds=5), detail="did not converge")
    got = journal.fits()
    assert [f.fit_id for f in got] == [second, first]
    assert got[1].params == p and got[1].rmse == 0.0021 and got[1].quotes_used == 812 and got[1].accepted
    assert got[0].params is None and math.isnan(got[0].rmse) and got[0].stale and not got[0].accepted
    assert got[0].detail == "did not converge" and journal.fits(limit=1) == got[:1]


def test_setting_changes_round_trip(journal: Journal) -> None:
    journal.record_setting_change("risk.max_daily_loss", 5000.0, 2500.0, "settings-dialog", at=T0)
    journal.record_setting_change("alerts.channels", ["panel"], ["panel", "email"], "yaml")
    got = journal.settings_changes()
    assert (got[0].timestamp, got[0].path, got[0].old, got[0].new, got[0].source) == (
        T0, "risk.max_daily_loss", 5000.0, 2500.0, "settings-dialog")
    assert got[1].new == ["panel", "email"]


def test_positions_snapshot_round_trip(journal: Journal) -> None:
    book = {101: Position(CALL, 3, 12.5, -40.0), 900: Position(FUT, -1, 6700.0)}
    journal.record_positions(book.values())
    assert journal.positions() == book
    journal.record_positions([book[101]])
    assert journal.positions() == {101: book[101]}


# ---- client order ids -----------------------------------------------------------------------------

def test_client_order_ids_are_monotonic_and_survive_restart(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        ids = [j.next_client_order_id("HW") for _ in range(3)] + [j.next_client_order_id("HEDGE")]
    with Journal(path) as j:
        ids.append(j.next_client_order_id("HW"))
    assert ids == ["HW-00000001", "HW-00000002", "HW-00000003", "HEDGE-00000001", "HW-00000004"]


def test_client_order_ids_unique_across_threads(journal: Journal) -> None:
    out: list[str] = []

    def worker() -> None:
        out.extend(journal.next_client_order_id("T") for _ in range(50))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 200 and max(out) == "T-00000200"


# ---- transactions ---------------------------------------------------------------------------------

def test_transaction_is_all_or_nothing(journal: Journal) -> None:
    with pytest.raises(RuntimeError):
        with journal.transaction():
            journal.record_order(order("X"))
            journal.record_fill(fill("EX", Side.BUY, 1, 1.0, cid="X"))
            raise RuntimeError("crash before commit")
    assert journal.orders() == [] and journal.fills() == []


def test_nested_failure_rolls_back_only_the_inner_block(journal: Journal) -> None:
    with journal.transaction():
        journal.record_order(order("A"))
        with pytest.raises(JournalError):
            with journal.transaction():
                journal.record_order(order("B"))
                journal.record_order_event(OrderEvent("ghost", OrderStatus.SUBMITTED, T0))
    assert [o.client_order_id for o in journal.orders()] == ["A"]


def test_closed_journal_raises_journal_error(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    j.close()
    with pytest.raises(JournalError):
        j.record_order(order())


def test_reader_and_writer_threads_share_one_journal(journal: Journal) -> None:
    journal.record_order(order())
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(200):
                journal.record_fill(fill(f"W{i}", Side.BUY, 1, 10.0))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=writer)
    t.start()
    while t.is_alive():
        assert len(journal.fills()) <= 200
    t.join()
    assert not errors and len(journal.fills()) == 200


# ---- book from fills ------------------------------------------------------------------------------

def test_positions_from_fills_average_cost() -> None:
    fills = [fill("1", Side.BUY, 2, 10.0), fill("2", Side.BUY, 2, 12.0),      # long 4 @ 11
             fill("3", Side.SELL, 3, 15.0, commission=1.0),                   # realise 3*4*100 (fee apart)
             fill("4", Side.SELL, 3, 9.0),                                    # close 1 (-2*100), short 2 @ 9
             fill("5", Side.SELL, 1, 10.0, contract=FUT), fill("6", Side.BUY, 1, 8.0, contract=FUT)]
    book = rebuild_positions(fills)
    assert book[101] == Position(CALL, -2, 9.0, 1200.0 - 200.0)
    assert book[900] == Position(FUT, 0, 0.0, 10.0)


def test_journal_positions_from_fills(journal: Journal) -> None:
    for f in (fill("1", Side.BUY, 2, 10.0), fill("2", Side.SELL, 1, 11.0), fill("1", Side.BUY, 2, 10.0)):
        journal.record_fill(f)
    assert journal.positions_from_fills() == {101: Position(CALL, 1, 10.0, 100.0)}


trades = st.lists(st.tuples(st.sampled_from([CALL, PUT, FUT]), st.sampled_from(list(Side)),
                            st.integers(1, 20), st.floats(0.05, 500.0), st.floats(0.0, 3.0)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(trades)
def test_average_cost_conserves_cash(rows: list) -> None:
    """Realised P&L - cost of what is still held == premium cash flow, per contract (an accounting identity)."""
    fills = [fill(str(i), s, q, p, c, fee) for i, (c, s, q, p, fee) in enumerate(rows)]
    book = rebuild_positions(fills)
    for cid, pos in book.items():
        mine = [f for f in fills if f.contract.contract_id == cid]
        cash = -sum(f.notional for f in mine)
        assert pos.quantity == sum(f.signed_quantity for f in mine)
        held = pos.quantity * pos.avg_cost * pos.contract.multiplier
        assert math.isclose(pos.realized_pnl - held, cash, rel_tol=1e-9, abs_tol=1e-6)


@settings(max_examples=50, deadline=None)
@given(trades)
def test_rebuild_agrees_with_the_book(rows: list) -> None:
    """Two homes must not disagree: the journal's rebuild and portfolio.Book give the same positions."""
    fills = [fill(str(i), s, q, p, c, fee) for i, (c, s, q, p, fee) in enumerate(rows)]
    book = Book()
    book.apply_fills(fills)
    rebuilt = rebuild_positions(fills)
    assert {k for k, v in rebuilt.items() if v.quantity} == book.positions.keys()
    for cid, pos in rebuilt.items():
        other = book.position(cid)
        assert other.quantity == pos.quantity
        assert math.isclose(other.avg_cost, pos.avg_cost, rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(other.realized_pnl, pos.realized_pnl, rel_tol=1e-9, abs_tol=1e-6)


# ---- schema versions ------------------------------------------------------------------------------

V1_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE orders (client_order_id TEXT PRIMARY KEY, contract_id INTEGER NOT NULL, contract TEXT NOT NULL,
  side TEXT NOT NULL, quantity INTEGER NOT NULL, order_type TEXT NOT NULL, limit_price REAL, created_at TEXT,
  purpose TEXT NOT NULL, signal_id TEXT, model_price REAL, recorded_at TEXT NOT NULL);
CREATE TABLE order_events (id INTEGER PRIMARY KEY AUTOINCREMENT,
  client_order_id TEXT NOT NULL REFERENCES orders(client_order_id), status TEXT NOT NULL, timestamp TEXT NOT NULL,
  filled_quantity INTEGER NOT NULL, remaining_quantity INTEGER NOT NULL, avg_fill_price REAL,
  reason TEXT NOT NULL, broker_order_id TEXT NOT NULL, limit_price REAL, recorded_at TEXT NOT NULL);
CREATE INDEX order_events_by_order ON order_events(client_order_id, id);
CREATE TABLE fills (id INTEGER PRIMARY KEY AUTOINCREMENT, fill_id TEXT NOT NULL UNIQUE,
  client_order_id TEXT NOT NULL, contract_id INTEGER NOT NULL, contract TEXT NOT NULL, side TEXT NOT NULL,
  quantity INTEGER NOT NULL, price REAL NOT NULL, timestamp TEXT NOT NULL, commission REAL NOT NULL,
  liquidity TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at TEXT NOT NULL);
CREATE INDEX fills_by_time ON fills(timestamp);
CREATE TABLE positions (contract_id INTEGER PRIMARY KEY, contract TEXT NOT NULL, quantity INTEGER NOT NULL,
  avg_cost REAL NOT NULL, realized_pnl REAL NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE signals (signal_id TEXT PRIMARY KEY, contract_id INTEGER NOT NULL, contract TEXT NOT NULL,
  side TEXT NOT NULL, created_at TEXT NOT NULL, bid REAL, ask REAL, model_price REAL NOT NULL,
  edge_dollars REAL NOT NULL, edge_vol REAL NOT NULL, zscore REAL, vega REAL, quantity INTEGER NOT NULL,
  state TEXT NOT NULL, reason TEXT NOT NULL, updated_at TEXT);
CREATE TABLE alerts (id INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL, code TEXT NOT NULL,
  severity INTEGER NOT NULL, source TEXT NOT NULL, message TEXT NOT NULL, timestamp TEXT NOT NULL,
  count INTEGER NOT NULL, acknowledged INTEGER NOT NULL);
CREATE TABLE fits (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TEXT NOT NULL, v0 REAL, kappa REAL,
  theta REAL, sigma REAL, rho REAL, rmse REAL, elapsed_ms REAL NOT NULL, quotes_used INTEGER NOT NULL,
  accepted INTEGER NOT NULL);
CREATE TABLE settings_changes (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TEXT NOT NULL, path TEXT NOT NULL,
  old TEXT NOT NULL, new TEXT NOT NULL, source TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def make_v1(path: Path) -> None:
    """A version-1 journal written by hand (a frozen copy of the first release), with some history."""
    conn = sqlite3.connect(path)
    conn.executescript(V1_DDL)
    contract = codec.contract_to_json(CALL)
    conn.execute("INSERT INTO orders VALUES ('OLD-1', 101, ?, 'BUY', 2, 'LMT', 11.0, ?, 'signal', NULL, NULL, ?)",
                 (contract, codec.iso(T0), codec.iso(T0)))
    conn.execute("INSERT INTO order_events(client_order_id, status, timestamp, filled_quantity, remaining_quantity,"
                 " avg_fill_price, reason, broker_order_id, limit_price, recorded_at)"
                 " VALUES ('OLD-1', 'SUBMITTED', ?, 0, 2, NULL, '', 'B1', 11.0, ?)", (codec.iso(T0), codec.iso(T0)))
    conn.execute("INSERT INTO fills(fill_id, client_order_id, contract_id, contract, side, quantity, price, timestamp,"
                 " commission, liquidity, metadata, recorded_at)"
                 " VALUES ('OLD-E1', 'OLD-1', 101, ?, 'BUY', 2, 11.0, ?, 0.5, '', '{}', ?)",
                 (contract, codec.iso(T0), codec.iso(T0)))
    conn.execute("INSERT INTO fits(timestamp, v0, kappa, theta, sigma, rho, rmse, elapsed_ms, quotes_used, accepted)"
                 " VALUES (?, 0.04, 2, 0.05, 0.6, -0.7, 0.002, 30, 500, 1)", (codec.iso(T0),))
    conn.commit()
    conn.close()


def test_v1_ddl_matches_the_first_migration(tmp_path: Path) -> None:
    """Guards the rule 'never edit a released migration': the frozen v1 copy and MIGRATIONS[0] agree."""
    def tables(conn: sqlite3.Connection) -> dict[str, list]:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {n: conn.execute(f"PRAGMA table_info({n})").fetchall() for n in names}
    by_hand, migrated = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    by_hand.executescript(V1_DDL)
    for statement in MIGRATIONS[0]:
        migrated.execute(statement)
    assert tables(by_hand) == tables(migrated)


def test_migrates_v1_to_current_keeping_history(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    make_v1(path)
    with Journal(path) as j:
        assert j.schema_version == CURRENT_VERSION
        assert [o.client_order_id for o in j.orders()] == ["OLD-1"]
        assert j.order_states()["OLD-1"].status is OrderStatus.SUBMITTED
        assert j.positions_from_fills() == {101: Position(CALL, 2, 11.0, 0.0)}
        old_fit = j.fits()[0]
        assert old_fit.params == HestonParams(0.04, 2, 0.05, 0.6, -0.7) and not old_fit.stale
        assert j.next_client_order_id("HW") == "HW-00000001"  # v2 table works
        j.record_risk_checks("OLD-1", [{"name": "max_quantity", "passed": True}])
        assert j.integrity_check() == "ok"
    with Journal(path) as j:  # reopening a current journal is a no-op
        assert j.schema_version == CURRENT_VERSION and len(j.risk_checks("OLD-1")) == 1


def test_failed_migration_leaves_v1_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.sqlite"
    make_v1(path)
    broken = (*MIGRATIONS, ("CREATE TABLE risk_checks (x)",))  # fails: table already exists from v2
    monkeypatch.setattr("workstation.storage.schema.MIGRATIONS", broken)
    monkeypatch.setattr("workstation.storage.schema.CURRENT_VERSION", len(broken))
    monkeypatch.setattr("workstation.storage.journal_db.CURRENT_VERSION", len(broken))
    with pytest.raises(JournalError):
        Journal(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta").fetchone()[0] == "1"
    assert "risk_checks" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()


@pytest.mark.parametrize("wal", [False, True])
def test_newer_schema_is_refused_and_left_byte_identical(tmp_path: Path, wal: bool) -> None:
    path = tmp_path / "future.sqlite"
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                       f"INSERT INTO meta VALUES ('schema_version', '{CURRENT_VERSION + 1}');"
                       "CREATE TABLE orders (something_new BLOB);")
    conn.close()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(JournalVersionError, match=f"schema version {CURRENT_VERSION + 1}, newer"):
        Journal(path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE prices (x)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalVersionError, match="not a Heston Workstation journal"):
        Journal(path)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError):
        Journal(garbage)
