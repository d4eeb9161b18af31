"""Marking the book: marks and dollar Greeks of every position from each snapshot, each fill booked, and the
day's P&L explain (Greeks, new trades, fees, residual) — journaled and published on BOOK."""
from __future__ import annotations

import math
from datetime import datetime
from typing import Callable

import numpy as np

from .. import bus as topics
from .. import day_restore
from ..bus import EventBus
from ..domain import Fill, SecType
from ..portfolio.attribution import attribute
from ..portfolio.book import Book, trading_day_of
from ..portfolio.explain import DayExplain
from ..reports import BookSummary
from ..strategy.calibrator import ModelValues
from ..strategy.surface import Surface
from .market_view import MarketView

JournalFailed = Callable[[str, BaseException], None]


class Marking:
    """Marks the book to each snapshot and books each fill; keeps today's P&L explain."""

    def __init__(self, book: Book, market: MarketView, journal, bus: EventBus, journal_failed: JournalFailed) -> None:
        self.book, self.market, self.journal, self.bus = book, market, journal, bus
        self.journal_failed = journal_failed
        self.explain = DayExplain()        # today's P&L explain (Greeks, new trades, fees, residual)
        self.last_attribution: dict[str, float] = dict.fromkeys(
            ("delta", "gamma", "vega", "theta", "residual", "actual"), 0.0)   # this cycle's, held positions
        self._last_marks: dict[int, tuple] = {}
        self._last_marks_at: datetime | None = None

    @property
    def attribution_day(self) -> dict[str, float]:
        """Today's P&L explain: delta, gamma, vega, theta, new_trades, fees, residual (sum: day P&L), day."""
        return self.explain.lines(self.book.day_pnl)

    def book_summary(self) -> BookSummary:
        """The book (positions, fills, P&L, Greeks) with today's attribution: the BOOK payload."""
        return BookSummary.of(self.book, self.attribution_day)

    def publish(self) -> None:
        self.bus.publish(topics.BOOK, self.book_summary())

    def mark(self, surface: Surface, model: ModelValues | None) -> None:
        """Marks and dollar Greeks of every position from this snapshot and the model; P&L attribution."""
        snap = surface.snapshot
        self.book.mark_snapshot(snap, model.price if model is not None else None)
        marks = self.position_greeks(surface, model)
        self._attribute(marks, snap.timestamp)
        try:
            day_restore.save_explain(self.journal, self.explain)
        except Exception as exc:
            self.journal_failed("P&L explain", exc)
        self.publish()

    def book_fill(self, fill: Fill) -> None:
        """A new fill into the book and the day's explain; the position Greeks refreshed at once (the limits
        see the new position before the next snapshot)."""
        cid = fill.contract.contract_id
        last_mark = self.book.mark_of(cid)
        if self.book.apply_fill(fill):
            self.explain.roll(trading_day_of(fill.timestamp))
            mark = self.market.mark_now(fill.contract, last_mark if math.isfinite(last_mark) else fill.price)
            self.explain.add_fill(fill.signed_quantity, fill.price, fill.contract.multiplier, mark, fill.commission)
        if self.market.surface is not None:
            self.position_greeks(self.market.surface, self.market.model)

    def position_greeks(self, surface: Surface, model: ModelValues | None) -> dict[int, tuple]:
        """Dollar Greeks of every position (set on the book) from `surface` and the model; the marks they came
        from, per contract: (qty, multiplier, price, forward, vol, delta, gamma, vega, theta)."""
        snap = surface.snapshot
        marks: dict[int, tuple] = {}
        rows = [r for r in (snap.index_of(cid) for cid, p in self.book.positions.items() if p.quantity)
                if r is not None]
        unit = dict(zip(rows, self.market.unit_greeks(surface, model, rows))) if model is not None else {}
        for cid, pos in self.book.positions.items():
            if not pos.quantity:
                continue
            row = snap.index_of(cid)
            price = self.book.mark_of(cid)
            if pos.contract.sec_type is SecType.FUTURE:
                greeks = (price, math.nan, 1.0, 0.0, 0.0, 0.0)
            elif row is not None and model is not None:
                greeks = (surface.forward[row], surface.iv_mid[row], *unit[row])
            else:
                greeks = (math.nan,) * 6
            marks[cid] = (pos.quantity, pos.contract.multiplier, price, *greeks)
        ids = list(marks)
        cols = np.array([marks[c][3:] for c in ids], dtype=float).reshape(len(ids), 6)
        fwd, _, d, g, v, th = cols.T
        self.book.set_greeks(ids, d, g, v, th, fwd)
        return marks

    def _attribute(self, marks: dict[int, tuple], at: datetime) -> None:
        """Add this cycle's P&L, split by Greeks, to the day's attribution (positions held at both marks)."""
        prev, prev_at = self._last_marks, self._last_marks_at
        self._last_marks, self._last_marks_at = marks, at
        self.explain.roll(trading_day_of(at))
        self.last_attribution = dict.fromkeys(self.last_attribution, 0.0)
        held = [c for c in prev if c in marks and prev[c][0] == marks[c][0]]
        if not held or prev_at is None:
            return
        p0 = np.array([prev[c] for c in held], dtype=float)
        p1 = np.array([marks[c] for c in held], dtype=float)
        no_forward = ~(np.isfinite(p0[:, 3]) & np.isfinite(p1[:, 3]))    # unquoted: its move is residual
        p0[no_forward, 3] = p1[no_forward, 3] = 0.0
        days = (at - prev_at).total_seconds() / 86_400.0
        parts = attribute(p0[:, 0], p0[:, 1], p0[:, 2], p1[:, 2], p0[:, 3], p1[:, 3], p0[:, 4], p1[:, 4], days,
                          p0[:, 5], p0[:, 6], p0[:, 7], p0[:, 8]).totals()
        for name, value in parts.items():
            if math.isfinite(value):
                self.last_attribution[name] = value
        self.explain.add_greeks(parts)
