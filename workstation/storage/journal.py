"""The journal: a crash-safe SQLite record of orders, combo orders, their events, fills, signals, alerts, fits,
risk-check results and settings changes, from which the book and working orders are rebuilt on start.

Durability. The database runs in WAL mode with `synchronous=FULL`: every COMMIT appends to the WAL and
fsyncs it before returning. `synchronous=NORMAL` would already keep a committed transaction across a
SIGKILL of our process (the WAL write has reached the OS once COMMIT returns), but not across a power
cut or kernel crash; FULL keeps it across those too, and the journal writes a few rows a second, so the
fsync per commit is cheap insurance for the one record the trader cannot lose: a fill. Reads never
block writes in WAL mode, so the GUI can read while the engine writes.

Write-ahead. Callers record a fact *before* acting on it (an order before it is sent, a transition
before it is applied); each `record_*` call is one transaction, and `transaction()` groups several
(e.g. an order, its risk checks and its first event) so a crash leaves all or none.

Threads. One connection shared behind a re-entrant lock (`check_same_thread=False`): the asyncio
thread and a worker thread may both call any method; a transaction holds the lock until it ends.
Every SQLite failure surfaces as `JournalError`, which the engine turns into an alert.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..domain import Alert, Fill, HestonParams, Order, OrderEvent, OrderStatus, Position, Signal
from ..domain.combos import ComboOrder
from .codec import contract_from_json, contract_to_json, dumps, iso, parse_iso, to_jsonable


from .journal_db import JournalDatabase, JournalError, JournalVersionError  # noqa: F401  (re-exported)
from .records import (FitRecord, RiskCheckRecord, SettingChange, apply_fill, rebuild_positions,  # noqa: F401
                      _combo_order, _field, _fill, _finite_or_none, _fit, _iso_or_none, _nan_if_none, _order,
                      _order_event, _risk_row, _signal, _ts_or_none, _EPOCH)


class Journal(JournalDatabase):
    """The record: orders, combo orders and their events, fills, positions, signals, alerts, fits, risk checks,
    settings changes and counters; each `record_*` one transaction (see `transaction()` to group several)."""

    # ---- orders ----------------------------------------------------------------------------------

    def record_order(self, order: Order) -> bool:
        """Store an order before it is sent; False when its client order id was already stored."""
        cur = self._write(
            "INSERT INTO orders(client_order_id, contract_id, contract, side, quantity, order_type, limit_price,"
            " created_at, purpose, signal_id, model_price, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(client_order_id) DO NOTHING",
            (order.client_order_id, order.contract.contract_id, contract_to_json(order.contract),
             order.side.value, order.quantity, order.order_type.value, order.limit_price,
             _iso_or_none(order.created_at), order.purpose.value, order.signal_id, order.model_price,
             self._now()))
        return cur.rowcount == 1

    def record_order_event(self, event: OrderEvent) -> None:
        """Store a transition before it is acted on; the order must already be journaled."""
        self._record_event("order_events", event)

    def _record_event(self, table: str, event: OrderEvent) -> None:
        self._write(
            f"INSERT INTO {table}(client_order_id, status, timestamp, filled_quantity, remaining_quantity,"
            " avg_fill_price, reason, broker_order_id, limit_price, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (event.client_order_id, event.status.value, iso(event.timestamp), event.filled_quantity,
             event.remaining_quantity, _finite_or_none(event.avg_fill_price), event.reason,
             event.broker_order_id, event.limit_price, self._now()))

    def record_risk_checks(self, client_order_id: str, results: Iterable[Any]) -> None:
        """Store each pre-trade check's result for an order, all in one transaction.

        A result is any object or mapping with `name` (or `check`), `passed` (or `ok`), and optionally
        `reason` (or `code`, an enum is stored by value) and `detail` (or `message`)."""
        rows = [_risk_row(client_order_id, r) for r in results]
        with self.transaction():
            for row in rows:
                self._run(self._connection(),
                          "INSERT INTO risk_checks(client_order_id, name, passed, reason, detail, recorded_at)"
                          " VALUES (?,?,?,?,?,?)", (*row, self._now()))

    def set_value(self, key: str, value: Any) -> None:
        """Keep one JSON value under `key` (state a restart picks up, e.g. the day's P&L explain)."""
        self._write("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (f"value:{key}", json.dumps(to_jsonable(value), default=str)))

    def value(self, key: str, default: Any = None) -> Any:
        """The JSON value kept under `key`, or `default`."""
        raw = self._scalar("SELECT value FROM meta WHERE key = ?", (f"value:{key}",))
        return default if raw is None else json.loads(raw)

    def next_client_order_id(self, prefix: str = "HW") -> str:
        """A client order id never issued before by this journal: `prefix-00000042`, monotonic per prefix."""
        with self.transaction():
            value = self._run(self._connection(), "INSERT INTO counters(name, value) VALUES (?, 1)"
                              " ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
                              (f"client_order_id:{prefix}",)).fetchone()[0]
        return f"{prefix}-{value:08d}"

    def orders(self) -> list[Order]:
        """Every journaled order, in the order they were recorded."""
        return [_order(r) for r in self._rows("SELECT * FROM orders ORDER BY rowid")]

    def order(self, client_order_id: str) -> Order | None:
        rows = self._rows("SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,))
        return _order(rows[0]) if rows else None

    def order_events(self, client_order_id: str | None = None) -> list[OrderEvent]:
        """Transitions in journal order, of one order or of all."""
        if client_order_id is None:
            rows = self._rows("SELECT * FROM order_events ORDER BY id")
        else:
            rows = self._rows("SELECT * FROM order_events WHERE client_order_id = ? ORDER BY id",
                              (client_order_id,))
        return [_order_event(r) for r in rows]

    def order_states(self) -> dict[str, OrderEvent]:
        """Latest event of every order; an order with no event yet gets a synthetic NEW event
        (it was journaled but may or may not have reached the broker: reconcile it)."""
        return self._states("order_events", self.orders())

    def _states(self, table: str, orders: Iterable[Order | ComboOrder]) -> dict[str, OrderEvent]:
        states = {o.client_order_id: OrderEvent(o.client_order_id, OrderStatus.NEW,
                                                o.created_at or _EPOCH, 0, o.quantity) for o in orders}
        rows = self._rows(f"SELECT e.* FROM {table} e JOIN (SELECT MAX(id) AS id FROM {table}"
                          " GROUP BY client_order_id) last ON e.id = last.id ORDER BY e.id")
        states.update((r["client_order_id"], _order_event(r)) for r in rows)
        return states

    def working_orders(self) -> list[Order]:
        """Orders whose latest status is NEW, SUBMITTED or PARTIALLY_FILLED, in recorded order."""
        states = self.order_states()
        return [o for o in self.orders() if states[o.client_order_id].status.is_working]

    def risk_checks(self, client_order_id: str) -> list[RiskCheckRecord]:
        rows = self._rows("SELECT * FROM risk_checks WHERE client_order_id = ? ORDER BY id", (client_order_id,))
        return [RiskCheckRecord(r["client_order_id"], r["name"], bool(r["passed"]), r["reason"], r["detail"])
                for r in rows]

    # ---- combo orders ------------------------------------------------------------------------------

    def record_combo_order(self, order: ComboOrder) -> bool:
        """Store a combo order (its legs and net limit) before it is sent; False when its id was stored."""
        cur = self._write(
            "INSERT INTO combo_orders(client_order_id, combo, side, quantity, limit_price, created_at, purpose,"
            " recorded_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(client_order_id) DO NOTHING",
            (order.client_order_id, dumps(order.combo), order.side.value, order.quantity, order.limit_price,
             _iso_or_none(order.created_at), order.purpose.value, self._now()))
        return cur.rowcount == 1

    def record_combo_event(self, event: OrderEvent) -> None:
        """Store a transition of a package (quantities in packages, the average net price)."""
        self._record_event("combo_events", event)

    def combo_orders(self) -> list[ComboOrder]:
        """Every journaled combo order, in recorded order."""
        return [_combo_order(r) for r in self._rows("SELECT * FROM combo_orders ORDER BY rowid")]

    def combo_order(self, client_order_id: str) -> ComboOrder | None:
        rows = self._rows("SELECT * FROM combo_orders WHERE client_order_id = ?", (client_order_id,))
        return _combo_order(rows[0]) if rows else None

    def combo_events(self, client_order_id: str) -> list[OrderEvent]:
        rows = self._rows("SELECT * FROM combo_events WHERE client_order_id = ? ORDER BY id", (client_order_id,))
        return [_order_event(r) for r in rows]

    def combo_states(self) -> dict[str, OrderEvent]:
        """Latest state of every combo order (a synthetic NEW one before its first event: reconcile it)."""
        return self._states("combo_events", self.combo_orders())

    def fills_of(self, client_order_id: str) -> list[Fill]:
        """The fills of one order, or every leg's fills of one combo order, in journal order."""
        rows = self._rows("SELECT * FROM fills WHERE client_order_id = ? ORDER BY id", (client_order_id,))
        return [_fill(r) for r in rows]

    # ---- fills and positions ---------------------------------------------------------------------

    def record_fill(self, fill: Fill) -> bool:
        """Store a fill before the book applies it; False (and nothing changes) when its fill_id is known."""
        cur = self._write(
            "INSERT INTO fills(fill_id, client_order_id, contract_id, contract, side, quantity, price, timestamp,"
            " commission, liquidity, metadata, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(fill_id) DO NOTHING",
            (fill.fill_id, fill.client_order_id, fill.contract.contract_id, contract_to_json(fill.contract),
             fill.side.value, fill.quantity, fill.price, iso(fill.timestamp), fill.commission, fill.liquidity,
             json.dumps(to_jsonable(fill.metadata), default=str), self._now()))
        return cur.rowcount == 1

    def has_fill(self, fill_id: str) -> bool:
        return self._scalar("SELECT 1 FROM fills WHERE fill_id = ?", (fill_id,)) is not None

    def fills(self, since: datetime | None = None) -> list[Fill]:
        """Fills in the order they were journaled (the order the book applied them), optionally from `since`."""
        if since is None:
            rows = self._rows("SELECT * FROM fills ORDER BY id")
        else:
            rows = self._rows("SELECT * FROM fills WHERE timestamp >= ? ORDER BY id", (iso(since),))
        return [_fill(r) for r in rows]

    def positions_from_fills(self) -> dict[int, Position]:
        """The book rebuilt from the journaled fills alone (average cost, realised P&L in dollars)."""
        return rebuild_positions(self.fills())

    def record_positions(self, positions: Iterable[Position]) -> None:
        """Replace the stored book snapshot (a convenience for display; the fills are the truth)."""
        now = self._now()
        with self.transaction():
            conn = self._connection()
            self._run(conn, "DELETE FROM positions")
            for p in positions:
                self._run(conn, "INSERT INTO positions(contract_id, contract, quantity, avg_cost, realized_pnl,"
                                " updated_at) VALUES (?,?,?,?,?,?)",
                          (p.contract.contract_id, contract_to_json(p.contract), p.quantity, p.avg_cost,
                           p.realized_pnl, now))

    def positions(self) -> dict[int, Position]:
        """The last stored book snapshot."""
        rows = self._rows("SELECT * FROM positions ORDER BY contract_id")
        return {r["contract_id"]: Position(contract_from_json(r["contract"]), r["quantity"], r["avg_cost"],
                                           r["realized_pnl"]) for r in rows}

    # ---- signals, alerts, fits, settings ---------------------------------------------------------

    def record_signal(self, signal: Signal) -> None:
        """Store a signal, or its new state when it is already stored."""
        self._write(
            "INSERT INTO signals(signal_id, contract_id, contract, side, created_at, bid, ask, model_price,"
            " edge_dollars, edge_vol, zscore, vega, quantity, state, reason, updated_at, family, structure)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(signal_id) DO UPDATE SET"
            " state = excluded.state, reason = excluded.reason, updated_at = excluded.updated_at,"
            " quantity = excluded.quantity, structure = excluded.structure",
            (signal.signal_id, signal.contract.contract_id, contract_to_json(signal.contract), signal.side.value,
             iso(signal.created_at), _finite_or_none(signal.bid), _finite_or_none(signal.ask), signal.model_price,
             signal.edge_dollars, signal.edge_vol, _finite_or_none(signal.zscore), _finite_or_none(signal.vega),
             signal.quantity, signal.state.value, signal.reason, _iso_or_none(signal.updated_at), signal.family,
             None if signal.structure is None else dumps(signal.structure)))

    def signals(self, state: str | None = None, since: datetime | None = None,
                limit: int | None = None) -> list[Signal]:
        """Signals, newest first, optionally of one state and created at or after `since`."""
        sql, params = "SELECT * FROM signals WHERE 1=1", []
        if state is not None:
            sql, params = sql + " AND state = ?", [*params, getattr(state, "value", state)]
        if since is not None:
            sql, params = sql + " AND created_at >= ?", [*params, iso(since)]
        sql += " ORDER BY created_at DESC, rowid DESC" + (" LIMIT ?" if limit is not None else "")
        return [_signal(r) for r in self._rows(sql, params + ([limit] if limit is not None else []))]

    def record_alert(self, alert: Alert) -> None:
        """Store an alert; one with an alert_id already stored is updated (count, acknowledgement, message)."""
        self._write(
            "INSERT INTO alerts(alert_id, code, severity, source, message, timestamp, count, acknowledged)"
            " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(alert_id) WHERE alert_id <> '' DO UPDATE SET"
            " message = excluded.message, timestamp = excluded.timestamp, count = excluded.count,"
            " acknowledged = excluded.acknowledged, severity = excluded.severity",
            (alert.alert_id, alert.code, int(alert.severity), alert.source, alert.message, iso(alert.timestamp),
             alert.count, int(alert.acknowledged)))

    def alerts(self, limit: int = 100) -> list[Alert]:
        """The latest `limit` alerts, newest first."""
        rows = self._rows("SELECT * FROM alerts ORDER BY timestamp DESC, id DESC LIMIT ?", (limit,))
        return [Alert(r["code"], r["severity"], r["source"], r["message"], parse_iso(r["timestamp"]), r["count"],
                      bool(r["acknowledged"]), r["alert_id"]) for r in rows]

    def record_fit(self, params: HestonParams | None, *, rmse: float, elapsed_ms: float, quotes_used: int,
                   accepted: bool = True, stale: bool = False, timestamp: datetime | None = None,
                   underlying: str = "", detail: str = "") -> int:
        """Store one calibration attempt (params None when it failed); returns its fit id."""
        values = [None] * 5 if params is None else list(params.as_array())
        cur = self._write(
            "INSERT INTO fits(timestamp, v0, kappa, theta, sigma, rho, rmse, elapsed_ms, quotes_used, accepted,"
            " stale, underlying, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (iso(timestamp or self._clock()), *values, _finite_or_none(rmse), elapsed_ms, quotes_used,
             int(accepted), int(stale), underlying, detail))
        return int(cur.lastrowid)

    def fits(self, limit: int = 100) -> list[FitRecord]:
        """The latest `limit` fits, newest first."""
        rows = self._rows("SELECT * FROM fits ORDER BY id DESC LIMIT ?", (limit,))
        return [_fit(r) for r in rows]

    def record_setting_change(self, path: str, old: Any, new: Any, source: str,
                              at: datetime | None = None) -> None:
        """Store who (`source`, e.g. 'settings-dialog') changed the setting at dotted `path`, and how."""
        self._write("INSERT INTO settings_changes(timestamp, path, old, new, source) VALUES (?,?,?,?,?)",
                    (iso(at or self._clock()), path, dumps(old), dumps(new), source))

    def settings_changes(self) -> list[SettingChange]:
        """Every settings change, oldest first."""
        rows = self._rows("SELECT * FROM settings_changes ORDER BY id")
        return [SettingChange(parse_iso(r["timestamp"]), r["path"], json.loads(r["old"]), json.loads(r["new"]),
                              r["source"]) for r in rows]
