"""Delta hedger: keeps the portfolio's delta inside a band with the hedge future."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from ..config import HedgingConfig
from ..domain import Contract, Quote, Side


@dataclass(frozen=True)
class HedgeOrder:
    """What the hedger wants: side, quantity and a marketable limit on the future."""

    contract: Contract
    side: Side
    quantity: int
    limit_price: float
    delta_before: float     # index deltas (index points of P&L per index point)
    delta_after: float


class Hedger:
    """Decides when and how much to hedge; the engine routes the order through the risk checks."""

    def __init__(self, config: HedgingConfig) -> None:
        self.config = config
        self.last_hedge: datetime | None = None

    def propose(self, portfolio_delta: float, future: Contract | None, quote: Quote | None,
                now: datetime) -> HedgeOrder | None:
        """A hedge when |delta - target| exceeds the band and the minimum interval has passed.

        `portfolio_delta` is dollars of P&L per 1.0 index point, sum(qty x delta x multiplier);
        one future covers `future.multiplier` of it.
        """
        cfg = self.config
        if not cfg.enabled or future is None or quote is None or not math.isfinite(portfolio_delta):
            return None
        excess = portfolio_delta - cfg.target_delta
        if abs(excess) <= cfg.band_delta:
            return None
        if self.last_hedge is not None and (now - self.last_hedge).total_seconds() < cfg.min_interval_s:
            return None
        quantity = int(round(abs(excess) / future.multiplier))
        if quantity < 1:
            return None
        side = Side.SELL if excess > 0 else Side.BUY
        price = quote.ask if side is Side.BUY else quote.bid
        if not math.isfinite(price) or price <= 0:
            return None
        after = portfolio_delta + side.sign * quantity * future.multiplier
        return HedgeOrder(future, side, quantity, float(price), portfolio_delta, after)

    def hedged(self, now: datetime) -> None:
        """Record that a hedge was sent (starts the minimum interval)."""
        self.last_hedge = now
