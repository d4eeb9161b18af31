"""Journal DDL as forward migrations: MIGRATIONS[n] takes a journal from schema version n to n + 1.

A fresh journal runs them all from version 0. Never edit a released step; append a new one instead
(the tests keep a frozen copy of version 1 and migrate it to the current version).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Sequence

# version 0 -> 1: the first released schema.
_V1: tuple[str, ...] = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE orders (
        client_order_id TEXT PRIMARY KEY,
        contract_id INTEGER NOT NULL,
        contract TEXT NOT NULL,
        side TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        order_type TEXT NOT NULL,
        limit_price REAL,
        created_at TEXT,
        purpose TEXT NOT NULL,
        signal_id TEXT,
        model_price REAL,
        recorded_at TEXT NOT NULL)""",
    """CREATE TABLE order_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        client_order_id TEXT NOT NULL REFERENCES orders(client_order_id),
        status TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        filled_quantity INTEGER NOT NULL,
        remaining_quantity INTEGER NOT NULL,
        avg_fill_price REAL,
        reason TEXT NOT NULL,
        broker_order_id TEXT NOT NULL,
        limit_price REAL,
        recorded_at TEXT NOT NULL)""",
    "CREATE INDEX order_events_by_order ON order_events(client_order_id, id)",
    """CREATE TABLE fills (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        fill_id TEXT NOT NULL UNIQUE,
        client_order_id TEXT NOT NULL,
        contract_id INTEGER NOT NULL,
        contract TEXT NOT NULL,
        side TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        price REAL NOT NULL,
        timestamp TEXT NOT NULL,
        commission REAL NOT NULL,
        liquidity TEXT NOT NULL,
        metadata TEXT NOT NULL,
        recorded_at TEXT NOT NULL)""",
    "CREATE INDEX fills_by_time ON fills(timestamp)",
    """CREATE TABLE positions (
        contract_id INTEGER PRIMARY KEY,
        contract TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        avg_cost REAL NOT NULL,
        realized_pnl REAL NOT NULL,
        updated_at TEXT NOT NULL)""",
    """CREATE TABLE signals (
        signal_id TEXT PRIMARY KEY,
        contract_id INTEGER NOT NULL,
        contract TEXT NOT NULL,
        side TEXT NOT NULL,
        created_at TEXT NOT NULL,
        bid REAL, ask REAL,
        model_price REAL NOT NULL,
        edge_dollars REAL NOT NULL,
        edge_vol REAL NOT NULL,
        zscore REAL, vega REAL,
        quantity INTEGER NOT NULL,
        state TEXT NOT NULL,
        reason TEXT NOT NULL,
        updated_at TEXT)""",
    """CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id TEXT NOT NULL,
        code TEXT NOT NULL,
        severity INTEGER NOT NULL,
        source TEXT NOT NULL,
        message TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        count INTEGER NOT NULL,
        acknowledged INTEGER NOT NULL)""",
    """CREATE TABLE fits (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        timestamp TEXT NOT NULL,
        v0 REAL, kappa REAL, theta REAL, sigma REAL, rho REAL,
        rmse REAL,
        elapsed_ms REAL NOT NULL,
        quotes_used INTEGER NOT NULL,
        accepted INTEGER NOT NULL)""",
    """CREATE TABLE settings_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        timestamp TEXT NOT NULL,
        path TEXT NOT NULL,
        old TEXT NOT NULL,
        new TEXT NOT NULL,
        source TEXT NOT NULL)""",
)

# version 1 -> 2: per-order risk-check results, durable id counters, stale fits, alert upserts.
_V2: tuple[str, ...] = (
    """CREATE TABLE risk_checks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        client_order_id TEXT NOT NULL,
        name TEXT NOT NULL,
        passed INTEGER NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        recorded_at TEXT NOT NULL)""",
    "CREATE INDEX risk_checks_by_order ON risk_checks(client_order_id, id)",
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "ALTER TABLE fits ADD COLUMN stale INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE fits ADD COLUMN underlying TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE fits ADD COLUMN detail TEXT NOT NULL DEFAULT ''",
    "CREATE UNIQUE INDEX alerts_by_id ON alerts(alert_id) WHERE alert_id <> ''",
)

# version 2 -> 3: combo orders (the package and its state); each leg's fills stay in `fills` under the combo's id.
_V3: tuple[str, ...] = (
    """CREATE TABLE combo_orders (
        client_order_id TEXT PRIMARY KEY,
        combo TEXT NOT NULL,
        side TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        limit_price REAL NOT NULL,
        created_at TEXT,
        purpose TEXT NOT NULL,
        recorded_at TEXT NOT NULL)""",
    """CREATE TABLE combo_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        client_order_id TEXT NOT NULL REFERENCES combo_orders(client_order_id),
        status TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        filled_quantity INTEGER NOT NULL,
        remaining_quantity INTEGER NOT NULL,
        avg_fill_price REAL,
        reason TEXT NOT NULL,
        broker_order_id TEXT NOT NULL,
        limit_price REAL,
        recorded_at TEXT NOT NULL)""",
    "CREATE INDEX combo_events_by_order ON combo_events(client_order_id, id)",
    "CREATE INDEX fills_by_order ON fills(client_order_id, id)",
)

# version 3 -> 4: each signal's family (model, relative, arbitrage); older signals were all `model`.
_V4: tuple[str, ...] = (
    "ALTER TABLE signals ADD COLUMN family TEXT NOT NULL DEFAULT 'model'",
)

# version 4 -> 5: the structure a signal proposed (a package instead of the naked option), as JSON; NULL for none.
_V5: tuple[str, ...] = (
    "ALTER TABLE signals ADD COLUMN structure TEXT",
)

MIGRATIONS: tuple[Sequence[str], ...] = (_V1, _V2, _V3, _V4, _V5)
CURRENT_VERSION = len(MIGRATIONS)


def read_version(conn: sqlite3.Connection) -> int | None:
    """Schema version in `meta`; 0 for an empty database; None when tables exist but no `meta` (not a journal)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "meta" not in tables:
        return 0 if not tables - {"sqlite_sequence"} else None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, from_version: int) -> None:
    """Apply MIGRATIONS[from_version:] and store the new version; the caller owns the transaction."""
    for step in MIGRATIONS[from_version:]:
        for statement in step:
            conn.execute(statement)
    conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(CURRENT_VERSION),))
