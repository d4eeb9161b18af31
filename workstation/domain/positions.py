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


def trade(position: Position | None, contract: Contract, signed_quantity: int, price: float
          ) -> tuple[Position, float]:
    """Average-cost accounting, the one rule the book and the journal share: adding re-averages the cost,
    reducing realises (price - avg_cost) x closed x multiplier dollars, crossing zero opens the rest at the
    price. Returns the new position and the P&L this trade realised (commissions are kept apart)."""
    qty = position.quantity if position else 0
    avg = position.avg_cost if position else 0.0
    realized = position.realized_pnl if position else 0.0
    new_qty = qty + signed_quantity
    if qty == 0 or (qty > 0) == (signed_quantity > 0):              # open or add
        return Position(contract, new_qty, (qty * avg + signed_quantity * price) / new_qty, realized), 0.0
    closed = min(abs(qty), abs(signed_quantity))
    pnl = closed * (price - avg) * (1 if qty > 0 else -1) * contract.multiplier
    if new_qty == 0:
        new_avg = 0.0
    elif (new_qty > 0) == (qty > 0):                                # reduced: the cost stays
        new_avg = avg
    else:                                                           # flipped: the rest opens at the price
        new_avg = price
    return Position(contract, new_qty, new_avg, realized + pnl), pnl
