"""What the pre-trade checks read: the ordered contract's market (`ContractMarket`), the book, working orders,
limits and clock captured at one instant (`RiskContext`), and the index/vol daily moves for the VaR what-if."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from workstation.config import RiskConfig
from workstation.domain import Order, Position, TradingState
from workstation.portfolio.greeks import DollarGreeks

from .limits import CheckResult, RiskCode

GREEK_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class ContractMarket:
    """The ordered contract's market: prices in index points (NaN when missing), `greeks` in dollars per
    +1 contract, and the underlying index level (for margin; the XSP level for XSP options)."""

    bid: float = math.nan
    ask: float = math.nan
    model_price: float = math.nan
    greeks: DollarGreeks = field(default_factory=DollarGreeks)
    underlying_price: float = math.nan

    @property
    def mid(self) -> float:
        """Mid of a two-sided quote with a positive bid, else NaN."""
        if math.isfinite(self.bid) and math.isfinite(self.ask) and self.bid > 0:
            return 0.5 * (self.bid + self.ask)
        return math.nan


@dataclass(frozen=True)
class RiskContext:
    """Everything the checks read, captured at `now` (the injected clock: checks never read the time).

    positions: by contract id; open_orders: working orders, `filled` their filled quantity so far by
    client order id; recent_orders: orders sent lately (created_at set) for the throttle and duplicate
    guard; market: the ordered contract's market; portfolio_greeks: current dollar Greeks; day_pnl and
    buying_power_used in dollars; marks: prices of held contracts for the margin estimate (else avg cost).
    pending_greeks: the dollar Greeks of the working orders' unfilled quantity as if it filled (orders approved
    earlier in the same cycle included); the Greek limits count them. var99: the last full revaluation's 1-day
    99% VaR of the book ($, NaN before the first); daily_moves: one-day standard deviations of the index (in %)
    and of implied vol (in vol points) and their correlation, for the order's linearised VaR contribution.
    """

    settings: RiskConfig
    now: datetime
    trading_state: TradingState = TradingState.ACTIVE
    positions: Mapping[int, Position] = field(default_factory=dict)
    open_orders: Sequence[Order] = ()
    filled: Mapping[str, int] = field(default_factory=dict)
    recent_orders: Sequence[Order] = ()
    market: ContractMarket | None = None
    portfolio_greeks: DollarGreeks = field(default_factory=DollarGreeks)
    day_pnl: float = 0.0
    buying_power_used: float = 0.0
    marks: Mapping[int, float] = field(default_factory=dict)
    trading_enabled: bool = True
    pending_greeks: DollarGreeks = field(default_factory=DollarGreeks)
    var99: float = math.nan
    daily_moves: "DailyMoves | None" = None
    bucket_greeks: Mapping[str, DollarGreeks] = field(default_factory=dict)   # per expiry bucket, working incl.

    def remaining(self, order: Order) -> int:
        """Unfilled quantity of a working order."""
        return max(0, order.quantity - self.filled.get(order.client_order_id, 0))


@dataclass(frozen=True, slots=True)
class DailyMoves:
    """One-day standard deviations of the index (percent) and of implied vol (vol points), and their correlation:
    what turns dollar Greeks (delta$ per 1 %, vega$ per vol point) into a linear one-day P&L spread."""

    spot_pct: float
    vol_points: float
    correlation: float

    def sd(self, greeks: DollarGreeks) -> float:
        """Standard deviation ($) of the one-day P&L of `greeks`, linearised."""
        a, b = greeks.delta * self.spot_pct, greeks.vega * self.vol_points
        return math.sqrt(max(a * a + b * b + 2.0 * self.correlation * a * b, 0.0))


Z99 = 2.326347874     # one-sided 99% normal quantile


def _ok(name: str, code: RiskCode, passed: bool, detail: str) -> CheckResult:
    return CheckResult(name, bool(passed), code, detail)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
