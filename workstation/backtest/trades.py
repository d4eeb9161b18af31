"""The backtest's trades: round trips of one contract built from the fills, and trades.csv.

A trade is one round trip of one contract: from flat to flat (a fill that flips the position closes one trade and
opens the next). Its gross P&L is its cash flows plus, while still open, the last mark; fees are the commissions
of its fills (split pro rata when a fill is shared).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime

from workstation.domain import Fill

from .runner import BacktestResult


@dataclass
class Trade:
    """One round trip of one contract."""

    trade_id: int
    contract_id: int
    symbol: str
    sec_type: str
    direction: str                 # "long" | "short"
    purpose: str                   # why it was opened: signal | hedge | exit | manual
    signal_id: str
    entry_time: datetime
    entry_price: float = 0.0       # average, index points
    quantity: int = 0              # largest |position| of the round trip
    exit_time: datetime | None = None
    exit_price: float = math.nan   # average of the closing fills
    exit_reason: str = ""          # purpose of the closing order, or "settlement"
    status: str = "open"           # open | closed
    edge_at_entry: float = 0.0     # (model at order - fill) x side x qty x multiplier, $ (signal entries)
    gross_pnl: float = 0.0
    fees: float = 0.0
    net_pnl: float = 0.0
    fills: int = 0
    _cash: float = field(default=0.0, repr=False)
    _open_qty: int = field(default=0, repr=False)
    _entry_qty: int = field(default=0, repr=False)
    _exit_qty: int = field(default=0, repr=False)
    _has_edge: bool = field(default=False, repr=False)
    _mult: float = field(default=100.0, repr=False)

    def holding_seconds(self, end: datetime | None) -> float:
        stop = self.exit_time or end
        return (stop - self.entry_time).total_seconds() if stop else math.nan


def _purpose(result: BacktestResult, fill: Fill) -> tuple[str, str, float | None]:
    order = result.orders.get(fill.client_order_id)
    if order is None:
        return ("settlement" if fill.liquidity == "settlement" else "unknown"), "", None
    return order["purpose"], order["signal_id"] or "", order["model_price"]


def build_trades(result: BacktestResult) -> list[Trade]:
    """Round trips from the fills, in the order they were opened; open ones valued at the last mark."""
    trades: list[Trade] = []
    current: dict[int, Trade] = {}
    for fill in result.fills:
        c = fill.contract
        cid, mult = c.contract_id, c.multiplier
        fee_unit = fill.commission / fill.quantity
        purpose, signal_id, model = _purpose(result, fill)
        left = fill.signed_quantity
        t = current.get(cid)
        if t is not None and (t._open_qty > 0) != (left > 0):                   # closing part
            n = min(abs(left), abs(t._open_qty))
            step = n if left > 0 else -n
            t._cash -= step * fill.price * mult
            t.fees += n * fee_unit
            t.exit_price = ((0 if math.isnan(t.exit_price) else t.exit_price) * t._exit_qty + n * fill.price) / \
                (t._exit_qty + n)
            t._exit_qty += n
            t._open_qty += step
            t.fills += 1
            t.exit_reason, t.exit_time = purpose, fill.timestamp
            left -= step
            if t._open_qty == 0:
                t.status = "closed"
                del current[cid]
        if left:                                                                 # opening part
            t = current.get(cid)
            if t is None:
                t = Trade(len(trades) + 1, cid, c.local_symbol, c.sec_type.value, "long" if left > 0 else "short",
                          purpose, signal_id, fill.timestamp, _mult=mult)
                trades.append(t)
                current[cid] = t
            n = abs(left)
            t._cash -= left * fill.price * mult
            t.fees += n * fee_unit
            t.entry_price = (t.entry_price * t._entry_qty + n * fill.price) / (t._entry_qty + n)
            t._entry_qty += n
            t._open_qty += left
            t.quantity = max(t.quantity, abs(t._open_qty))
            t.fills += 1
            if model is not None and math.isfinite(model):
                t.edge_at_entry += (model - fill.price) * fill.side.sign * n * mult
                t._has_edge = True
    for t in trades:
        mark = result.marks.get(t.contract_id, math.nan)
        open_value = t._open_qty * mark * t._mult if t._open_qty else 0.0
        t.gross_pnl = t._cash + open_value
        t.net_pnl = t.gross_pnl - t.fees
        if not t._has_edge:
            t.edge_at_entry = math.nan
    return trades


TRADE_COLUMNS = ("trade_id", "symbol", "contract_id", "sec_type", "purpose", "signal_id", "direction", "quantity",
                 "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason", "status", "holding_s",
                 "edge_at_entry", "gross_pnl", "fees", "net_pnl", "fills")


def trades_csv(trades: list[Trade], end: datetime | None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(TRADE_COLUMNS)
    for t in trades:
        d = asdict(t)
        d["holding_s"] = t.holding_seconds(end)
        row = []
        for col in TRADE_COLUMNS:
            v = d[col]
            if isinstance(v, datetime):
                v = v.isoformat()
            elif isinstance(v, float):
                v = "" if not math.isfinite(v) else round(v, 6)
            elif v is None:
                v = ""
            row.append(v)
        w.writerow(row)
    return buf.getvalue()
