"""The book: one home for positions. Built from fills (idempotent on fill_id), marked from snapshots.

P&L in dollars: realised (closed quantity x (exit - average cost) x multiplier), unrealised against the
latest mark, commissions apart; total = realised + unrealised - commissions. Day P&L is total P&L now
minus total P&L at the start of the trading day (the New York calendar date of the fill or mark), so it
stays right when positions change intraday.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime

import numpy as np

from workstation.domain import ChainSnapshot, Fill, Position
from workstation.domain.calendar import NEW_YORK
from workstation.domain.positions import trade

from .attribution import Attribution, attribute
from .greeks import DollarGreeks, dollar_greeks



def trading_day_of(at: datetime) -> date:
    """The trading day an instant belongs to: its New York calendar date."""
    return at.astimezone(NEW_YORK).date()


class Book:
    """Positions, marks, P&L and dollar Greeks of the account. Flat positions keep their realised P&L."""

    def __init__(self, trading_day: date | None = None) -> None:
        self._positions: dict[int, Position] = {}
        self._marks: dict[int, float] = {}
        self._mark_source: dict[int, str] = {}
        self._fill_ids: set[str] = set()
        self._greeks: dict[int, DollarGreeks] = {}
        self.commissions = 0.0
        self.trading_day = trading_day
        self._day_start_pnl = 0.0
        self.fill_count = 0

    # ---------------------------------------------------------------------------------- fills
    def apply_fill(self, fill: Fill) -> bool:
        """Book a fill; False (and nothing changes) when this fill_id was booked before."""
        if fill.fill_id in self._fill_ids:
            return False
        self.roll_day(trading_day_of(fill.timestamp))
        self._fill_ids.add(fill.fill_id)
        cid = fill.contract.contract_id
        self._positions[cid], _ = trade(self._positions.get(cid), fill.contract, fill.signed_quantity, fill.price)
        self.commissions += fill.commission
        self.fill_count += 1
        if cid not in self._marks:
            self._marks[cid], self._mark_source[cid] = fill.price, "fill"
        return True

    def apply_fills(self, fills: Iterable[Fill]) -> int:
        """Book many fills; returns how many were new."""
        return sum(self.apply_fill(f) for f in fills)

    # ------------------------------------------------------------------------------ positions
    @property
    def positions(self) -> dict[int, Position]:
        """Open (non-flat) positions by contract id."""
        return {cid: p for cid, p in self._positions.items() if p.quantity != 0}

    def position(self, contract_id: int) -> Position | None:
        return self._positions.get(contract_id)

    def quantity(self, contract_id: int) -> int:
        p = self._positions.get(contract_id)
        return p.quantity if p else 0

    @property
    def total_option_contracts(self) -> int:
        """Sum of |position| over options (what max_total_contracts limits)."""
        return sum(abs(p.quantity) for p in self._positions.values() if p.contract.is_option)

    # ---------------------------------------------------------------------------------- marks
    def mark(self, marks: Mapping[int, float], at: datetime | None = None, source: str = "mark") -> None:
        """Set marks (price points) for contracts; non-finite marks are ignored (the last mark stays)."""
        if at is not None:
            self.roll_day(trading_day_of(at))
        for cid, price in marks.items():
            if price is not None and math.isfinite(price):
                self._marks[int(cid)], self._mark_source[int(cid)] = float(price), source

    def mark_snapshot(self, snapshot: ChainSnapshot, model_price: np.ndarray | None = None) -> None:
        """Mark held contracts at the snapshot's mid, else the model price (aligned with its rows), and
        the hedge future at its quote's mid; unquoted contracts keep their last mark."""
        self.roll_day(trading_day_of(snapshot.timestamp))
        mid = snapshot.mid
        for cid, pos in self._positions.items():
            row = snapshot.index_of(cid)
            if row is not None:
                if math.isfinite(mid[row]):
                    self._marks[cid], self._mark_source[cid] = float(mid[row]), "mid"
                elif model_price is not None and math.isfinite(model_price[row]):
                    self._marks[cid], self._mark_source[cid] = float(model_price[row]), "model"
            elif (snapshot.future is not None and snapshot.future_contract is not None
                  and snapshot.future_contract.contract_id == cid):
                q = snapshot.future
                if math.isfinite(q.bid) and math.isfinite(q.ask):
                    self._marks[cid], self._mark_source[cid] = 0.5 * (q.bid + q.ask), "mid"

    @property
    def marks(self) -> dict[int, float]:
        """Latest mark of every open position (average cost when never marked), e.g. for the margin check."""
        return {cid: self.mark_of(cid) for cid in self.positions}

    def mark_of(self, contract_id: int) -> float:
        """Latest mark; the average cost when the contract was never marked."""
        if contract_id in self._marks:
            return self._marks[contract_id]
        p = self._positions.get(contract_id)
        return p.avg_cost if p else math.nan

    # ------------------------------------------------------------------------------------ P&L
    @property
    def realized_pnl(self) -> float:
        return sum(p.realized_pnl for p in self._positions.values())

    @property
    def unrealized_pnl(self) -> float:
        return sum(p.unrealized_pnl(self.mark_of(cid)) for cid, p in self._positions.items() if p.quantity)

    @property
    def total_pnl(self) -> float:
        """Realised + unrealised - commissions, since the book began."""
        return self.realized_pnl + self.unrealized_pnl - self.commissions

    @property
    def day_pnl(self) -> float:
        """Total P&L since the start of the current trading day."""
        return self.total_pnl - self._day_start_pnl

    def roll_day(self, day: date) -> bool:
        """Start a new trading day when `day` is later than the current one (day P&L restarts at 0)."""
        if self.trading_day is not None and day <= self.trading_day:
            return False
        self.trading_day = day
        self._day_start_pnl = self.total_pnl
        return True

    # --------------------------------------------------------------------------------- Greeks
    def set_greeks(self, contract_ids, delta, gamma, vega, theta, forward) -> DollarGreeks:
        """Store dollar Greeks per position from per-unit Greek arrays aligned with `contract_ids`
        (pricing conventions; a future is delta 1, the rest 0, with its price as `forward`); return the total."""
        ids = [int(c) for c in np.asarray(contract_ids).reshape(-1)]
        qty = np.array([self.quantity(c) for c in ids], dtype=float)
        mult = np.array([self._positions[c].contract.multiplier if c in self._positions else 0.0 for c in ids])
        d, g, v, t = dollar_greeks(delta, gamma, vega, theta, forward, mult, qty)
        d, g, v, t = (np.nan_to_num(np.broadcast_to(x, qty.shape)) for x in (d, g, v, t))
        self._greeks = {c: DollarGreeks(float(d[i]), float(g[i]), float(v[i]), float(t[i]))
                        for i, c in enumerate(ids) if qty[i] != 0}
        return self.greeks

    @property
    def greeks(self) -> DollarGreeks:
        """Portfolio dollar Greeks from the last `set_greeks` (positions opened since count as zero)."""
        total = DollarGreeks()
        for cid, g in self._greeks.items():
            if self.quantity(cid):
                total = total + g
        return total

    def position_greeks(self, contract_id: int) -> DollarGreeks:
        return self._greeks.get(contract_id, DollarGreeks())

    def attribute_pnl(self, contract_ids, price0, price1, forward0, forward1, vol0, vol1, days,
                      delta, gamma, vega, theta) -> Attribution:
        """P&L attribution of the current positions between two marks (see `attribution.attribute`)."""
        ids = [int(c) for c in np.asarray(contract_ids).reshape(-1)]
        qty = np.array([self.quantity(c) for c in ids], dtype=float)
        mult = np.array([self._positions[c].contract.multiplier if c in self._positions else 0.0 for c in ids])
        return attribute(qty, mult, price0, price1, forward0, forward1, vol0, vol1, days, delta, gamma, vega, theta)

    # ------------------------------------------------------------------------------- summary
    def to_summary(self) -> dict:
        """Plain, JSON-ready view of the book for headless mode and the journal."""
        rows = []
        for cid, p in sorted(self.positions.items()):
            mark = self.mark_of(cid)
            rows.append({
                "contract_id": cid, "symbol": p.contract.local_symbol, "sec_type": p.contract.sec_type.value,
                "quantity": p.quantity, "avg_cost": p.avg_cost, "mark": mark,
                "mark_source": self._mark_source.get(cid, "cost"), "multiplier": p.contract.multiplier,
                "market_value": p.market_value(mark), "unrealized_pnl": p.unrealized_pnl(mark),
                "realized_pnl": p.realized_pnl, "greeks": self.position_greeks(cid).as_dict(),
            })
        return {
            "trading_day": self.trading_day.isoformat() if self.trading_day else None,
            "fills": self.fill_count,
            "positions": rows,
            "total_option_contracts": self.total_option_contracts,
            "pnl": {"realized": self.realized_pnl, "unrealized": self.unrealized_pnl,
                    "commissions": self.commissions, "total": self.total_pnl, "day": self.day_pnl},
            "greeks": self.greeks.as_dict(),
        }
