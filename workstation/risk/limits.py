"""Named reason codes, the outcome of the pre-trade checks (every check reports, failed or not), and the limits
as read from `risk.*` settings: the one place that says which setting limits what."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from workstation.config import RiskConfig
from workstation.domain import Contract, SecType
from workstation.portfolio.greeks import DollarGreeks


class RiskCode(str, Enum):
    """Why a check failed (or, for the monitor, which limit was breached). Stable: journaled and shown."""

    TRADING_DISABLED = "TRADING_DISABLED"        # execution.trading_enabled is off (read-only)
    TRADING_HALTED = "TRADING_HALTED"            # state HALTED: every order denied
    REDUCING_ONLY = "REDUCING_ONLY"              # state REDUCING: the order does not reduce risk
    BAD_ORDER = "BAD_ORDER"                      # qty <= 0, non-finite or non-positive price, not tradable
    NO_MARKET = "NO_MARKET"                      # no usable quote or model price for the contract
    MAX_QUANTITY = "MAX_QUANTITY"                # order larger than max_order_quantity
    MAX_PREMIUM = "MAX_PREMIUM"                  # option premium of the order above max_order_premium
    MAX_POSITION = "MAX_POSITION"                # |position| in the contract would exceed max_position
    MAX_TOTAL_CONTRACTS = "MAX_TOTAL_CONTRACTS"  # sum of |option positions| would exceed the limit
    MAX_OPEN_ORDERS = "MAX_OPEN_ORDERS"          # too many working orders
    RATE_THROTTLE = "RATE_THROTTLE"              # too many orders in the last minute
    PRICE_BAND = "PRICE_BAND"                    # limit price too far from mid or model (fat finger)
    DUPLICATE_ORDER = "DUPLICATE_ORDER"          # same id, or same contract/side/qty just sent
    DAILY_LOSS = "DAILY_LOSS"                    # day P&L beyond the daily loss limit
    DELTA_LIMIT = "DELTA_LIMIT"                  # portfolio |delta$| after the trade above the limit
    GAMMA_LIMIT = "GAMMA_LIMIT"                  # portfolio |gamma$| after the trade above the limit
    VEGA_LIMIT = "VEGA_LIMIT"                    # portfolio |vega$| after the trade above the limit
    VAR_LIMIT = "VAR_LIMIT"                      # 1-day 99% VaR above the limit (pre-trade what-if; monitor)
    STOP_LOSS = "STOP_LOSS"                      # a position lost more than its stop (monitor only)
    TRADING_HOURS = "TRADING_HOURS"              # outside the contract's regular trading hours
    RESTRICTED_UNDERLYING = "RESTRICTED_UNDERLYING"
    RESTRICTED_EXPIRY = "RESTRICTED_EXPIRY"
    RESTRICTED_STRIKE = "RESTRICTED_STRIKE"
    MIN_DAYS_TO_EXPIRY = "MIN_DAYS_TO_EXPIRY"    # too close to expiry (0-day guard)
    UNCOVERED_SHORT = "UNCOVERED_SHORT"          # would leave short options not covered by longs
    MARGIN = "MARGIN"                            # margin needed above the buying power left
    BUCKET_LIMIT = "BUCKET_LIMIT"                # an expiry bucket's |Greek$| after the trade above its limit
    MAX_LEGS = "MAX_LEGS"                        # a combo with more legs than risk.max_combo_legs
    UNBALANCED_RATIOS = "UNBALANCED_RATIOS"      # combo ratios with a common factor, or not the structure's
    MIXED_UNDERLYINGS = "MIXED_UNDERLYINGS"      # combo legs on different underlyings
    DUPLICATE_LEGS = "DUPLICATE_LEGS"            # the same contract twice in one combo
    MAX_LOSS = "MAX_LOSS"                        # a combo's max loss at expiry above risk.max_combo_loss


COMBO_CODES = frozenset({RiskCode.MAX_LEGS, RiskCode.UNBALANCED_RATIOS, RiskCode.MIXED_UNDERLYINGS,
                         RiskCode.DUPLICATE_LEGS, RiskCode.MAX_LOSS})      # checked on combo orders only


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check on one order: its name, whether it passed, the code it fails with, and a line of why."""

    name: str
    passed: bool
    code: RiskCode
    detail: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "code": self.code.value, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The verdict on an order: approved only when every check passed; `what_if` is the portfolio's
    dollar Greeks if the order fills in full; `margin` the estimated margin it needs ($)."""

    client_order_id: str
    approved: bool
    results: tuple[CheckResult, ...]
    what_if: DollarGreeks = field(default_factory=DollarGreeks)
    margin: float = 0.0
    reduces_risk: bool = False

    @property
    def reasons(self) -> list[RiskCode]:
        """Codes of the failed checks, in check order."""
        return [r.code for r in self.results if not r.passed]

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def denial(self) -> str:
        """Every failed check, 'CODE: detail; ...' ('' when approved)."""
        return "; ".join(f"{r.code.value}: {r.detail}" if r.detail else r.code.value for r in self.failures)

    def as_dict(self) -> dict:
        """JSON-ready record for the journal and the GUI."""
        return {"client_order_id": self.client_order_id, "approved": self.approved,
                "reasons": [c.value for c in self.reasons], "results": [r.as_dict() for r in self.results],
                "what_if": self.what_if.as_dict(), "margin": self.margin, "reduces_risk": self.reduces_risk}


# The portfolio Greek limits: the DollarGreeks field, the code a breach reports, the `risk.*` setting (|limit| in $).
GREEK_LIMITS: tuple[tuple[str, RiskCode, str], ...] = (
    ("delta", RiskCode.DELTA_LIMIT, "max_delta_dollars"),
    ("gamma", RiskCode.GAMMA_LIMIT, "max_gamma_dollars"),
    ("vega", RiskCode.VEGA_LIMIT, "max_vega_dollars"),
)


def greek_limits(cfg: RiskConfig) -> list[tuple[str, RiskCode, float]]:
    """(greek, code, |limit| in $) of each portfolio Greek limit, for the pre-trade check and the monitor."""
    return [(name, code, float(getattr(cfg, setting))) for name, code, setting in GREEK_LIMITS]


def order_size_cap(cfg: RiskConfig, contract: Contract, quantity: int, price: float) -> int:
    """The largest slice of `quantity` one order may carry under `max_order_quantity` and, for an option at
    `price`, `max_order_premium` (the limits the pre-trade check applies); at least 1."""
    quantity = min(quantity, cfg.max_order_quantity)
    if contract.sec_type is SecType.OPTION and math.isfinite(price) and price > 0:
        quantity = min(quantity, int(cfg.max_order_premium // (price * contract.multiplier)))
    return max(quantity, 1)
