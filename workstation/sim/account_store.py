"""The paper account on disk: what a real broker remembers across our restarts.

Executions, the orders resting at the exchange and the positions and cash they make live in a small SQLite
file (WAL, `synchronous=FULL`). The exchange writes each fact in one transaction at the moment it happens
(an acknowledged order, a fill with its order, position and cash, a cancel or modify) and reports it only
after the commit, as a broker does: a SIGKILL of our process may lose the report, never the execution, so
reconciliation has something true to reconcile against.

Ids. Broker order ids and execution ids come from one counter kept here (`meta.seq`), so they stay unique
across restarts. Requests still in flight (inside the simulated latency) are not stored: a process that
dies with one loses it, like a message lost on the wire, and the order was never acknowledged.
"""
from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from workstation.domain import Contract, Fill, Order, OrderStatus
from workstation.storage.codec import contract_from_json, contract_to_json, dumps, iso, loads, parse_iso
from workstation.storage.integrity import RESTORE_ACCOUNT, StorageError, damaged, describe_sqlite_error, quick_check

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS executions(
    id INTEGER PRIMARY KEY AUTOINCREMENT, exec_id TEXT NOT NULL UNIQUE, client_order_id TEXT NOT NULL,
    contract_id INTEGER NOT NULL, contract TEXT NOT NULL, side TEXT NOT NULL, quantity INTEGER NOT NULL,
    price REAL NOT NULL, timestamp TEXT NOT NULL, commission REAL NOT NULL, liquidity TEXT NOT NULL,
    booked_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders(
    client_order_id TEXT PRIMARY KEY, broker_id TEXT NOT NULL, contract_id INTEGER NOT NULL, "order" TEXT NOT NULL,
    limit_price REAL, quantity INTEGER NOT NULL, filled INTEGER NOT NULL, notional REAL NOT NULL,
    status TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions(
    contract_id INTEGER PRIMARY KEY, contract TEXT NOT NULL, quantity INTEGER NOT NULL);
"""


@dataclass
class StoredOrder:
    """An order as the exchange holds it (after modifications)."""

    order: Order
    broker_id: str
    limit: float | None
    quantity: int
    filled: int
    notional: float
    status: OrderStatus


@dataclass
class AccountState:
    """Everything `load` returns: the exchange starts from it."""

    orders: list[StoredOrder] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)
    contracts: dict[int, Contract] = field(default_factory=dict)
    cash: float = 0.0
    fills: list[Fill] = field(default_factory=list)
    booked_at: dict[str, datetime] = field(default_factory=dict)
    seq: int = 0


def _wall() -> datetime:
    return datetime.now(timezone.utc)


class AccountStoreError(StorageError):
    """The paper account file cannot be opened or read safely; the message says what to do."""


class AccountStore:
    """The SQLite file of one paper account (created when missing; refused when `PRAGMA quick_check` fails)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise AccountStoreError(f"cannot open paper account {self.path}: {reason} (use --data-dir to choose "
                                    "another directory)") from None
        try:
            self._open()
        except BaseException as exc:
            self._conn.close()
            if isinstance(exc, sqlite3.Error):
                raise AccountStoreError(str(describe_sqlite_error("paper account", self.path, exc,
                                                                  RESTORE_ACCOUNT))) from None
            raise

    def _open(self) -> None:
        problems = quick_check(self._conn)
        if problems:
            raise AccountStoreError(str(damaged("paper account", self.path, "; ".join(problems), RESTORE_ACCOUNT)))
        self._conn.row_factory = sqlite3.Row
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise AccountStoreError(f"paper account {self.path}: could not enable WAL mode (got {mode})")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)            # idempotent; executescript commits by itself
        with self.transaction():
            self._conn.execute("INSERT INTO meta(key, value) VALUES ('seq', 0), ('cash', 0.0)"
                               " ON CONFLICT(key) DO NOTHING")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic, durable write (nested calls join the outer transaction)."""
        with self._lock:
            if self._conn.in_transaction:
                yield
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # ---------------------------------------------------------------------------------------- reads
    def load(self) -> AccountState:
        """The whole account: orders (all, in acknowledgement order), positions, cash, executions, id counter.
        A row that cannot be read back (damaged despite the quick check) is an AccountStoreError."""
        try:
            return self._load()
        except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as exc:
            raise AccountStoreError(str(damaged("paper account", self.path, f"{type(exc).__name__}: {exc}",
                                                RESTORE_ACCOUNT))) from None

    def _load(self) -> AccountState:
        with self._lock:
            c = self._conn
            state = AccountState(seq=int(self._meta("seq")), cash=float(self._meta("cash")))
            for r in c.execute('SELECT * FROM orders ORDER BY rowid'):
                state.orders.append(StoredOrder(loads(Order, r["order"]), r["broker_id"], r["limit_price"],
                                                r["quantity"], r["filled"], r["notional"], OrderStatus(r["status"])))
            for r in c.execute("SELECT * FROM positions ORDER BY contract_id"):
                state.positions[r["contract_id"]] = r["quantity"]
                state.contracts[r["contract_id"]] = contract_from_json(r["contract"])
            for r in c.execute("SELECT * FROM executions ORDER BY id"):
                fill = Fill(r["exec_id"], r["client_order_id"], contract_from_json(r["contract"]), r["side"],
                            r["quantity"], r["price"], parse_iso(r["timestamp"]), r["commission"], r["liquidity"])
                state.fills.append(fill)
                state.booked_at[fill.fill_id] = parse_iso(r["booked_at"])
                state.contracts.setdefault(fill.contract.contract_id, fill.contract)
            for o in state.orders:
                state.contracts.setdefault(o.order.contract.contract_id, o.order.contract)
            return state

    def last_activity(self) -> datetime | None:
        """Simulated time of the latest execution or order acknowledgement (None for a new account)."""
        state = self.load()
        times = [f.timestamp for f in state.fills] + [o.order.created_at for o in state.orders
                                                         if o.order.created_at is not None]
        return max(times) if times else None

    def _meta(self, key: str):
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else 0

    # --------------------------------------------------------------------------------------- writes
    def save_order(self, o: StoredOrder, seq: int) -> None:
        """Insert or update an order (acknowledged, filled, modified, cancelled); `seq` = ids issued so far."""
        with self.transaction():
            self._conn.execute(
                'INSERT INTO orders(client_order_id, broker_id, contract_id, "order", limit_price, quantity, filled,'
                " notional, status, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(client_order_id) DO UPDATE"
                " SET limit_price = excluded.limit_price, quantity = excluded.quantity, filled = excluded.filled,"
                " notional = excluded.notional, status = excluded.status, updated_at = excluded.updated_at",
                (o.order.client_order_id, o.broker_id, o.order.contract.contract_id, dumps(o.order),
                 None if o.limit is None or not math.isfinite(o.limit) else float(o.limit), o.quantity, o.filled,
                 o.notional, o.status.value, iso(_wall())))
            self._set_seq(seq)

    def save_execution(self, fill: Fill, position: int, cash: float, seq: int, booked_at: datetime) -> None:
        """An execution with the position and cash it leaves (the caller's transaction adds its order)."""
        c = fill.contract
        with self.transaction():
            self._conn.execute(
                "INSERT INTO executions(exec_id, client_order_id, contract_id, contract, side, quantity, price,"
                " timestamp, commission, liquidity, booked_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (fill.fill_id, fill.client_order_id, c.contract_id, contract_to_json(c), fill.side.value,
                 fill.quantity, fill.price, iso(fill.timestamp), fill.commission, fill.liquidity, iso(booked_at)))
            if position:
                self._conn.execute("INSERT INTO positions(contract_id, contract, quantity) VALUES (?,?,?)"
                                   " ON CONFLICT(contract_id) DO UPDATE SET quantity = excluded.quantity",
                                   (c.contract_id, contract_to_json(c), position))
            else:
                self._conn.execute("DELETE FROM positions WHERE contract_id = ?", (c.contract_id,))
            self._conn.execute("UPDATE meta SET value = ? WHERE key = 'cash'", (float(cash),))
            self._set_seq(seq)

    def _set_seq(self, seq: int) -> None:
        self._conn.execute("UPDATE meta SET value = MAX(value, ?) WHERE key = 'seq'", (int(seq),))

    def integrity_check(self) -> str:
        with self._lock:
            return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])
