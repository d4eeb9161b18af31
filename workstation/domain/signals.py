"""Trade signals: a mispricing worth acting on, and its lifecycle."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from .combos import Combo
from .contracts import Contract
from .orders import Side


FAMILIES = ("model", "relative", "arbitrage")
"""model: quote vs the fitted Heston-family model, confirmed by the residual's history; relative: quote vs the
arbitrage-free fair-value surface beyond fees and the surface's own uncertainty, lasting; arbitrage: a static
arbitrage in the quotes themselves (a package)."""


class SignalState(str, Enum):
    """NEW -> APPROVED | REJECTED | EXPIRED; APPROVED -> ORDERED."""

    NEW = "NEW"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    ORDERED = "ORDERED"

    @property
    def is_open(self) -> bool:
        return self in (SignalState.NEW, SignalState.APPROVED)


@dataclass(frozen=True, slots=True)
class SignalStructure:
    """A signal proposed as a package: the mispriced option against one hedge leg (the nearest liquid strike of
    its expiry: a vertical; the same strike in the next expiry: a calendar), traded 1:1 on the opposite side, or
    against two (a neutral package: whole ratios of two out-of-the-money options that take out its delta and vega).

    `side` trades `combo` so that the signal's leg is on the signal's side; `limit_price` is the net price of one
    package at the quotes (debit > 0, credit < 0) on the combo tick. `edge_points` is per package: the signal
    leg's edge (times its ratio) minus the hedge legs' cost (half-spread + fees + how far each one's mid sits from
    its value against us, times its ratio) minus the tick rounding of the limit. Greeks are dollars per package traded (delta and gamma per 1 % of
    the forward, vega per vol point, theta per day); `naked_*` are the signal leg's alone. `quantity` is what the
    package checks pass now (0 with `blocked` naming why)."""

    combo: Combo
    side: Side
    limit_price: float
    edge_points: float
    hedge_cost: float
    delta: float
    gamma: float
    vega: float
    theta: float
    naked_delta: float
    naked_vega: float
    quantity: int = 0
    blocked: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", Side(self.side))

    @property
    def edge_dollars(self) -> float:
        """Package edge per package, dollars."""
        return self.edge_points * self.combo.multiplier

    @property
    def label(self) -> str:
        """'vertical 4500/4510 P', 'calendar 4500 P 17Oct/21Nov', 'neutral −3 6075 C +1 6050 P +3 6100 C'."""
        legs = [leg.contract for leg in self.combo.legs]
        right = "C" if legs[0].is_call else "P"
        if self.combo.structure == "neutral":      # the ratios and rights are the point: show each leg
            return "neutral " + " ".join(
                f"{self.side.sign * leg.weight:+d} {leg.contract.strike:g} {'C' if leg.contract.is_call else 'P'}"
                .replace("-", "−") for leg in self.combo.legs)
        if self.combo.structure == "calendar":
            dates = "/".join(c.expiry.strftime("%d%b") for c in legs)
            return f"calendar {legs[0].strike:g} {right} {dates}"
        strikes = "/".join(f"{k:g}" for k in sorted(c.strike for c in legs))
        return f"{self.combo.structure} {strikes} {right}"


@dataclass(frozen=True, slots=True)
class Signal:
    """A contract whose market price strays from the model by more than its costs, persistently.

    edge_dollars is per contract (x multiplier); edge_vol in vol points; zscore of the IV residual
    against that contract's own history; quantity is the suggested size, capped by every per-order limit
(0 with `blocked` naming the reason when no size passes the pre-trade checks).
    """

    signal_id: str
    contract: Contract
    side: Side
    created_at: datetime
    bid: float
    ask: float
    model_price: float
    edge_dollars: float
    edge_vol: float
    zscore: float
    vega: float
    quantity: int
    state: SignalState = SignalState.NEW
    reason: str = ""
    updated_at: datetime | None = None
    blocked: str = ""           # why no size of it can be sent now ("" when `quantity` passes every check)
    family: str = "model"       # one of FAMILIES: what the edge is measured against
    structure: SignalStructure | None = None    # the package proposed instead of the naked option (None: none)

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "state", SignalState(self.state))
        for name in ("model_price", "edge_dollars", "edge_vol"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"Signal.{name} must be finite, got {getattr(self, name)!r}")
        if self.quantity < 0:
            raise ValueError("Signal.quantity must be >= 0")
        if self.family not in FAMILIES:
            raise ValueError(f"Signal.family must be one of {FAMILIES}, got {self.family!r}")

    def with_state(self, state: SignalState, at: datetime, reason: str = "") -> "Signal":
        return replace(self, state=SignalState(state), updated_at=at, reason=reason or self.reason)

    @property
    def limit_reference(self) -> float:
        """The side of the market the signal would trade against (ask to buy, bid to sell)."""
        return self.ask if self.side is Side.BUY else self.bid
