"""Typed payloads of the RISK, BOOK and STATUS topics: what the window reads, by attribute.

Frozen dataclasses beside the fit and cycle events (`events.py`). Each has `to_dict()`, the JSON-ready form
with the keys the engine published before (the headless summary and the metrics keep their keys).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .config import RiskConfig
from .portfolio.greeks import DollarGreeks
from .risk.monitor import Breach, StressGrid


def _greeks(d: dict[str, float]) -> DollarGreeks:
    return DollarGreeks(d["delta"], d["gamma"], d["vega"], d["theta"])


# ------------------------------------------------------------------------------------ P&L explain
@dataclass(frozen=True)
class PnlExplain:
    """Today's P&L explained line by line (`portfolio.explain`); the lines sum to `day`."""

    delta: float
    gamma: float
    vega: float
    theta: float
    new_trades: float
    fees: float
    residual: float
    day: float

    @classmethod
    def of(cls, lines: dict[str, float]) -> "PnlExplain":
        """From `DayExplain.lines(day_pnl)`."""
        return cls(lines["delta"], lines["gamma"], lines["vega"], lines["theta"], lines["new_trades"],
                   lines["fees"], lines["residual"], lines["day"])

    def lines(self) -> tuple[tuple[str, float], ...]:
        """(name, $) in display order: the four Greeks, new trades, fees, residual, then the day."""
        return (("delta", self.delta), ("gamma", self.gamma), ("vega", self.vega), ("theta", self.theta),
                ("new_trades", self.new_trades), ("fees", self.fees), ("residual", self.residual),
                ("day", self.day))

    def to_dict(self) -> dict[str, float]:
        return dict(self.lines())


# ------------------------------------------------------------------------------------ RISK
@dataclass(frozen=True)
class RiskLimits:
    """The limits the report was measured against ($; daily loss as a positive number)."""

    delta: float
    gamma: float
    vega: float
    var99: float
    daily_loss: float

    @classmethod
    def of(cls, cfg: RiskConfig) -> "RiskLimits":
        return cls(cfg.max_delta_dollars, cfg.max_gamma_dollars, cfg.max_vega_dollars, cfg.max_var_99,
                   cfg.max_daily_loss)

    def to_dict(self) -> dict[str, float]:
        return {"delta": self.delta, "gamma": self.gamma, "vega": self.vega, "var99": self.var99,
                "daily_loss": self.daily_loss}


@dataclass(frozen=True, eq=False)
class RiskReport:
    """One risk-monitor cycle as published on the RISK topic: Greeks every cycle; VaR and the stress grid from
    the last full revaluation (at `var_at`)."""

    at: datetime
    greeks_from: str                    # risk.greeks_from: market | model
    forward: float                      # the snapshot's underlying price
    greeks: DollarGreeks                # revalued at `greeks_from`
    book_greeks: DollarGreeks           # the book's own marks
    limits: RiskLimits
    var95: float
    var99: float
    var_at: datetime
    stress: StressGrid
    breaches: tuple[Breach, ...]
    trading_state: str
    day_pnl: float
    attribution: PnlExplain

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "greeks_from": self.greeks_from, "forward": self.forward,
                "greeks": self.greeks.as_dict(), "book_greeks": self.book_greeks.as_dict(),
                "limits": self.limits.to_dict(), "var95": self.var95, "var99": self.var99,
                "var_at": self.var_at.isoformat(), "stress": self.stress.as_dict(),
                "breaches": [b.as_dict() for b in self.breaches], "trading_state": self.trading_state,
                "day_pnl": self.day_pnl, "attribution": self.attribution.to_dict()}


# ------------------------------------------------------------------------------------ BOOK
@dataclass(frozen=True)
class PositionLine:
    """One position of the book summary; `description` is the trader's name of the contract (not in JSON)."""

    contract_id: int
    symbol: str
    sec_type: str
    quantity: int
    avg_cost: float
    mark: float
    mark_source: str
    multiplier: float
    market_value: float
    unrealized_pnl: float
    realized_pnl: float
    greeks: DollarGreeks
    description: str = ""

    @classmethod
    def of(cls, row: dict[str, Any], description: str = "") -> "PositionLine":
        """From one row of `Book.to_summary()["positions"]`."""
        return cls(row["contract_id"], row["symbol"], row["sec_type"], row["quantity"], row["avg_cost"],
                   row["mark"], row["mark_source"], row["multiplier"], row["market_value"], row["unrealized_pnl"],
                   row["realized_pnl"], _greeks(row["greeks"]), description or row["symbol"])

    def to_dict(self) -> dict[str, Any]:
        return {"contract_id": self.contract_id, "symbol": self.symbol, "sec_type": self.sec_type,
                "quantity": self.quantity, "avg_cost": self.avg_cost, "mark": self.mark,
                "mark_source": self.mark_source, "multiplier": self.multiplier, "market_value": self.market_value,
                "unrealized_pnl": self.unrealized_pnl, "realized_pnl": self.realized_pnl,
                "greeks": self.greeks.as_dict()}


@dataclass(frozen=True)
class BookPnl:
    """The book's P&L, $: total = realized + unrealized - commissions; day = since the day's open."""

    realized: float
    unrealized: float
    commissions: float
    total: float
    day: float

    def to_dict(self) -> dict[str, float]:
        return {"realized": self.realized, "unrealized": self.unrealized, "commissions": self.commissions,
                "total": self.total, "day": self.day}


@dataclass(frozen=True)
class BookSummary:
    """The book as published on the BOOK topic: positions, P&L, dollar Greeks and today's explain."""

    trading_day: date | None
    fills: int
    positions: tuple[PositionLine, ...]
    total_option_contracts: int
    pnl: BookPnl
    greeks: DollarGreeks
    attribution: PnlExplain

    @classmethod
    def of(cls, book: Any, attribution: dict[str, float]) -> "BookSummary":
        """From a `portfolio.Book` (its `to_summary()`) and the day's explain lines."""
        d = book.to_summary()
        names = {cid: p.contract.description for cid, p in book.positions.items()}
        return cls(date.fromisoformat(d["trading_day"]) if d["trading_day"] else None, d["fills"],
                   tuple(PositionLine.of(r, names.get(r["contract_id"], "")) for r in d["positions"]),
                   d["total_option_contracts"], BookPnl(**d["pnl"]), _greeks(d["greeks"]), PnlExplain.of(attribution))

    def to_dict(self) -> dict[str, Any]:
        """`Book.to_summary()` with the explain under "attribution" (the headless summary's source)."""
        return {"trading_day": self.trading_day.isoformat() if self.trading_day else None, "fills": self.fills,
                "positions": [p.to_dict() for p in self.positions],
                "total_option_contracts": self.total_option_contracts, "pnl": self.pnl.to_dict(),
                "greeks": self.greeks.as_dict(), "attribution": self.attribution.to_dict()}


# ------------------------------------------------------------------------------------ STATUS
@dataclass(frozen=True)
class EngineStatus:
    """Connections, data age, clock and trading state for the status bar (published on the STATUS topic)."""

    connection: str                     # simulated | ib-paper | ib-live
    connected: bool                     # the broker
    feed: str                           # the feed's state, "unknown" when it reports none
    data_age_s: float | None            # market-time age of the last snapshot (None before the first)
    sim_time: datetime                  # the engine's clock
    clock_label: str                    # "sim ×30", "replay" or "" for a live feed
    trading_state: str
    trading_reason: str
    stale_data: tuple[str, ...]         # e.g. ('index 42s', 'options 12/80')
    auto_execute: bool
    read_only: bool
    day_pnl: float
    loop_lag_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"connection": self.connection, "connected": self.connected, "feed": self.feed,
                "data_age_s": self.data_age_s, "sim_time": self.sim_time.isoformat(),
                "clock_label": self.clock_label, "trading_state": self.trading_state,
                "trading_reason": self.trading_reason, "stale_data": list(self.stale_data),
                "auto_execute": self.auto_execute, "read_only": self.read_only, "day_pnl": self.day_pnl,
                "loop_lag_ms": self.loop_lag_ms}


__all__ = ["PnlExplain", "RiskLimits", "RiskReport", "PositionLine", "BookPnl", "BookSummary", "EngineStatus"]
