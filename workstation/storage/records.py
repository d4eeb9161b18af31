"""What the journal stores, as values: fit, risk-check and settings-change records, positions rebuilt from fills,
and the conversions between table rows and domain values."""
from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..domain import Fill, HestonParams, Order, OrderEvent, Position, Signal, SignalStructure
from ..domain.combos import Combo, ComboOrder
from ..domain.positions import trade
from .codec import contract_from_json, iso, loads, parse_iso
from .journal_db import JournalError


@dataclass(frozen=True, slots=True)
class FitRecord:
    """One calibration attempt: params (None when it failed), IV RMSE, time, quotes used, outcome."""

    timestamp: datetime
    params: HestonParams | None
    rmse: float
    elapsed_ms: float
    quotes_used: int
    accepted: bool = True
    stale: bool = False
    underlying: str = ""
    detail: str = ""
    fit_id: int = 0


@dataclass(frozen=True, slots=True)
class RiskCheckRecord:
    """The result of one pre-trade check for one order: reason is the named code when it failed."""

    client_order_id: str
    name: str
    passed: bool
    reason: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SettingChange:
    """Who (`source`) changed which setting (dotted `path`) when, from `old` to `new` (plain JSON values)."""

    timestamp: datetime
    path: str
    old: Any
    new: Any
    source: str


def apply_fill(position: Position | None, fill: Fill) -> Position:
    """The position after `fill`, by the book's average-cost rule (`domain.positions.trade`)."""
    return trade(position, fill.contract, fill.signed_quantity, fill.price)[0]


def rebuild_positions(fills: Iterable[Fill]) -> dict[int, Position]:
    """The book from fills alone, in the order given; flat positions stay (they carry realised P&L)."""
    book: dict[int, Position] = {}
    for fill in fills:
        cid = fill.contract.contract_id
        book[cid] = apply_fill(book.get(cid), fill)
    return book


# ---- row <-> value helpers -----------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _iso_or_none(ts: datetime | None) -> str | None:
    return None if ts is None else iso(ts)


def _ts_or_none(text: str | None) -> datetime | None:
    return None if text is None else parse_iso(text)


def _finite_or_none(x: float | None) -> float | None:
    """SQLite stores NaN as NULL anyway; say so explicitly."""
    return None if x is None or not math.isfinite(x) else float(x)


def _nan_if_none(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _field(result: Any, *names: str) -> Any:
    for name in names:
        value = result.get(name) if isinstance(result, Mapping) else getattr(result, name, None)
        if value is not None:
            return value
    return None


def _risk_row(client_order_id: str, result: Any) -> tuple[str, str, int, str, str]:
    name, passed = _field(result, "name", "check"), _field(result, "passed", "ok")
    if name is None or passed is None:
        raise JournalError(f"risk check result for {client_order_id} needs a name and passed/ok: {result!r}")
    reason = _field(result, "reason", "code", "reason_code")
    detail = _field(result, "detail", "message")
    return (client_order_id, str(getattr(name, "value", name)), int(bool(passed)),
            "" if reason is None else str(getattr(reason, "value", reason)), "" if detail is None else str(detail))


def _order(r: sqlite3.Row) -> Order:
    return Order(r["client_order_id"], contract_from_json(r["contract"]), r["side"], r["quantity"], r["order_type"],
                 r["limit_price"], _ts_or_none(r["created_at"]), r["purpose"], r["signal_id"], r["model_price"])


def _combo_order(r: sqlite3.Row) -> ComboOrder:
    return ComboOrder(r["client_order_id"], loads(Combo, r["combo"]), r["side"], r["quantity"], r["limit_price"],
                      _ts_or_none(r["created_at"]), r["purpose"])


def _order_event(r: sqlite3.Row) -> OrderEvent:
    return OrderEvent(r["client_order_id"], r["status"], parse_iso(r["timestamp"]), r["filled_quantity"],
                      r["remaining_quantity"], _nan_if_none(r["avg_fill_price"]), r["reason"],
                      r["broker_order_id"], r["limit_price"])


def _fill(r: sqlite3.Row) -> Fill:
    return Fill(r["fill_id"], r["client_order_id"], contract_from_json(r["contract"]), r["side"], r["quantity"],
                r["price"], parse_iso(r["timestamp"]), r["commission"], r["liquidity"], json.loads(r["metadata"]))


def _signal(r: sqlite3.Row) -> Signal:
    return Signal(r["signal_id"], contract_from_json(r["contract"]), r["side"], parse_iso(r["created_at"]),
                  _nan_if_none(r["bid"]), _nan_if_none(r["ask"]), r["model_price"], r["edge_dollars"],
                  r["edge_vol"], _nan_if_none(r["zscore"]), _nan_if_none(r["vega"]), r["quantity"], r["state"],
                  r["reason"], _ts_or_none(r["updated_at"]), family=r["family"],
                  structure=None if r["structure"] is None else loads(SignalStructure, r["structure"]))


def _fit(r: sqlite3.Row) -> FitRecord:
    values = [r[k] for k in ("v0", "kappa", "theta", "sigma", "rho")]
    params = None if any(v is None for v in values) else HestonParams.from_array(values)
    return FitRecord(parse_iso(r["timestamp"]), params, _nan_if_none(r["rmse"]), r["elapsed_ms"], r["quotes_used"],
                     bool(r["accepted"]), bool(r["stale"]), r["underlying"], r["detail"], r["id"])
