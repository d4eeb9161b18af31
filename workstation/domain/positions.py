"""A position in one contract."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .contracts import Contract


@dataclass(frozen=True, slots=True)
class Position:
    """Signed quantity (long > 0) at an average cost in price points; realised P&L in dollars."""

    contract: Contract
    quantity: int
    avg_cost: float
    realized_pnl: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.quantity, int):
            raise ValueError(f"Position.quantity must be an int, got {self.quantity!r}")
        if not math.isfinite(self.avg_cost):
            raise ValueError(f"Position.avg_cost must be finite, got {self.avg_cost!r}")

    @property
    def is_flat(self) -> bool:
        return self.quantity == 0

    def market_value(self, mark: float) -> float:
        return self.quantity * mark * self.contract.multiplier

    def unrealized_pnl(self, mark: float) -> float:
        return self.quantity * (mark - self.avg_cost) * self.contract.multiplier
