"""A two-sided quote for one contract."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Quote:
    """Best bid/ask with displayed sizes; NaN prices mean 'no quote on that side'."""

    contract_id: int
    bid: float
    ask: float
    bid_size: int
    ask_size: int
    timestamp: datetime

    def __post_init__(self) -> None:
        if self.timestamp.tzinfo is None:
            raise ValueError("Quote.timestamp must be timezone-aware")
        if self.bid_size < 0 or self.ask_size < 0:
            raise ValueError(f"Quote sizes must be >= 0, got {self.bid_size}/{self.ask_size}")
        if math.isfinite(self.bid) and math.isfinite(self.ask) and self.bid > self.ask:
            raise ValueError(f"crossed quote for {self.contract_id}: bid {self.bid} > ask {self.ask}")

    @property
    def mid(self) -> float:
        """Mid price, NaN when either side is missing."""
        if math.isfinite(self.bid) and math.isfinite(self.ask) and self.bid > 0:
            return 0.5 * (self.bid + self.ask)
        return math.nan

    @property
    def spread(self) -> float:
        return self.ask - self.bid
