"""Today's P&L explained, line by line, adding up to Day P&L to the cent.

delta, gamma, vega, theta: each cycle's move of the positions held through it, split by their Greeks
(`attribution.attribute`); new trades: the edge paid or earned at each fill against the mark of that moment,
(mark - fill price) x signed quantity x multiplier; fees: commissions and exchange fees, a cost; residual: what
the other lines leave of Day P&L (higher-order terms, the first move of a position opened mid-cycle, marks that
jumped). The residual is named, never hidden, so the lines always sum to the day.
"""
from __future__ import annotations

import math
from datetime import date

GREEK_LINES = ("delta", "gamma", "vega", "theta")
LINES = (*GREEK_LINES, "new_trades", "fees", "residual")


class DayExplain:
    """The running explain of one trading day; `lines(day_pnl)` closes it with the residual."""

    def __init__(self, day: date | None = None) -> None:
        self.day = day
        self.parts = dict.fromkeys((*GREEK_LINES, "new_trades", "fees"), 0.0)
        self.kept: tuple | None = None      # (day, parts) as last written to the journal

    def roll(self, day: date) -> None:
        """A new trading day starts every line at 0."""
        if self.day is None or day > self.day:
            self.day = day
            self.parts = dict.fromkeys(self.parts, 0.0)

    def add_greeks(self, parts: dict[str, float]) -> None:
        for name in GREEK_LINES:
            value = parts.get(name, 0.0)
            if math.isfinite(value):
                self.parts[name] += value

    def add_fill(self, signed_quantity: int, price: float, multiplier: float, mark: float, commission: float) -> None:
        """A fill: its edge against the mark of the moment (a new position's first mark is the fill itself,
        so no edge) and its fees."""
        if math.isfinite(mark):
            self.parts["new_trades"] += (mark - price) * signed_quantity * multiplier
        self.parts["fees"] -= commission

    def lines(self, day_pnl: float) -> dict[str, float]:
        """Every line and the residual; their sum is `day_pnl` (also given, as "day")."""
        out = dict(self.parts)
        out["residual"] = day_pnl - sum(out.values())
        out["day"] = day_pnl
        return out
