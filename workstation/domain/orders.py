"""Orders, their lifecycle events and fills."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from .contracts import Contract


class Side(str, Enum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> "Side":
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(str, Enum):
    LIMIT = "LMT"
    MARKET = "MKT"


class OrderStatus(str, Enum):
    """NEW -> SUBMITTED -> PARTIALLY_FILLED -> FILLED | CANCELLED | REJECTED."""

    NEW = "NEW"
    SUBMITTED = "SUBMITTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"

    @property
    def is_terminal(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)

    @property
    def is_working(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)


class OrderPurpose(str, Enum):
    """Why the order exists: it decides which risk checks apply (a hedge or an exit reduces risk)."""

    SIGNAL = "signal"
    EXIT = "exit"
    HEDGE = "hedge"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class Order:
    """An order as we intend it. `client_order_id` is ours, unique and idempotent across restarts."""

    client_order_id: str
    contract: Contract
    side: Side
    quantity: int
    order_type: OrderType = OrderType.LIMIT
    limit_price: float | None = None
    created_at: datetime | None = None
    purpose: OrderPurpose = OrderPurpose.MANUAL
    signal_id: str | None = None
    model_price: float | None = None

    def __post_init__(self) -> None:
        if not self.client_order_id:
            raise ValueError("Order.client_order_id must not be empty")
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "order_type", OrderType(self.order_type))
        object.__setattr__(self, "purpose", OrderPurpose(self.purpose))
        if not isinstance(self.quantity, int) or isinstance(self.quantity, bool):
            raise ValueError(f"Order.quantity must be an int, got {self.quantity!r}")
        if self.order_type is OrderType.LIMIT:
            if self.limit_price is None or not math.isfinite(self.limit_price):
                raise ValueError(f"limit order {self.client_order_id} needs a finite limit price, "
                                 f"got {self.limit_price!r}")
        if self.created_at is not None and self.created_at.tzinfo is None:
            raise ValueError("Order.created_at must be timezone-aware")

    @property
    def signed_quantity(self) -> int:
        return self.side.sign * self.quantity


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """A change of an order's state, as reported by the broker (or decided by us, e.g. a risk denial)."""

    client_order_id: str
    status: OrderStatus
    timestamp: datetime
    filled_quantity: int = 0
    remaining_quantity: int = 0
    avg_fill_price: float = math.nan
    reason: str = ""
    broker_order_id: str = ""
    limit_price: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", OrderStatus(self.status))
        if self.filled_quantity < 0 or self.remaining_quantity < 0:
            raise ValueError("OrderEvent quantities must be >= 0")


@dataclass(frozen=True, slots=True)
class Fill:
    """An execution. `fill_id` is the broker's execution id, unique: it makes fills idempotent."""

    fill_id: str
    client_order_id: str
    contract: Contract
    side: Side
    quantity: int
    price: float
    timestamp: datetime
    commission: float = 0.0
    liquidity: str = ""
    metadata: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", Side(self.side))
        if not self.fill_id:
            raise ValueError("Fill.fill_id must not be empty")
        if not isinstance(self.quantity, int) or self.quantity <= 0:
            raise ValueError(f"Fill.quantity must be a positive int, got {self.quantity!r}")
        if not math.isfinite(self.price) or self.price < 0:
            raise ValueError(f"Fill.price must be finite and >= 0, got {self.price!r}")
        if not math.isfinite(self.commission):
            raise ValueError("Fill.commission must be finite")

    @property
    def signed_quantity(self) -> int:
        return self.side.sign * self.quantity

    @property
    def notional(self) -> float:
        """Premium paid (+) or received (-) in dollars, before commission."""
        return self.signed_quantity * self.price * self.contract.multiplier
