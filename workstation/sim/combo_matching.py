"""Combo orders at an exchange (the simulated one, or the backtest's recorded-quote one): validation and
atomic matching across the legs.

A package fills only when every leg has a price on the side it trades and the net of those prices reaches the
limit (a buy: the net ask at or below it; a sell: the net bid at or above it); then every leg fills together,
each at its quoted price (plus slippage), in whole packages up to the smallest size shown. No legging: a leg
without a price means no fill at all.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from workstation.domain import Contract, OrderEvent, OrderStatus, Side
from workstation.domain.combos import COMBO_TICK, MAX_LEGS, ComboOrder, on_combo_tick
from workstation.sim.clearing import expired, taker_price
from workstation.sim.working import WorkingOrder

# the price on one side of a contract and the size still available there now, or None when there is none
SideQuote = Callable[[Contract, Side], "tuple[float, int] | None"]


@dataclass
class WorkingCombo(WorkingOrder):
    """A combo order resting at an exchange: quantities in packages, `notional` the sum of net fill prices."""

    order: ComboOrder


@dataclass(frozen=True, slots=True)
class LegFill:
    """What one leg of a package fill trades."""

    leg: int
    contract: Contract
    side: Side
    quantity: int
    price: float


def combo_rejection(order: ComboOrder, at: datetime, known: Callable[[Contract], bool], taken_ids: set[str]) -> str:
    """Why an exchange refuses a combo order, or '' when it accepts it (`taken_ids`: client ids in use)."""
    if order.client_order_id in taken_ids:
        return f"duplicate order id {order.client_order_id}"
    if order.quantity <= 0:
        return f"quantity must be > 0, got {order.quantity}"
    problems = order.combo.problems(MAX_LEGS)
    if problems:
        return "; ".join(f"{reason.value}: {detail}" for reason, detail in problems)
    for leg in order.combo.legs:
        if expired(leg.contract, at):
            return f"expired contract {leg.contract.description}"
        if not known(leg.contract):
            return f"unknown contract {leg.contract.contract_id} ({leg.contract.description})"
    if not on_combo_tick(order.limit_price):
        return f"bad tick: net {order.limit_price:g} is not a multiple of {COMBO_TICK:g}"
    return ""


def expire(combos: Iterable[WorkingCombo], at: datetime) -> list[OrderEvent]:
    """Cancel the working combos with a leg past its settlement instant; their events."""
    out = []
    for w in combos:
        if w.status.is_working and any(expired(leg.contract, at) for leg in w.order.combo.legs):
            w.status = OrderStatus.CANCELLED
            out.append(w.event(at, "contract expired"))
    return out


def match(w: WorkingCombo, quote: SideQuote, slippage_ticks: int) -> list[LegFill]:
    """Fill as many whole packages of `w` as every leg allows now, all legs together, or nothing."""
    combo, side = w.order.combo, w.order.side
    prices, packages = [], w.remaining
    for leg in combo.legs:
        q = quote(leg.contract, combo.leg_side(leg, side))
        if q is None or not (math.isfinite(q[0]) and q[0] > 0) or q[1] <= 0:
            return []
        prices.append(q[0])
        packages = min(packages, q[1] // leg.ratio)
    net = combo.net(prices)           # the net ask for a buy, the net bid for a sell
    if (net > w.limit + 1e-9) if side is Side.BUY else (net < w.limit - 1e-9):
        return []
    if packages <= 0:
        return []
    fills = [LegFill(i, leg.contract, combo.leg_side(leg, side), leg.ratio * packages,
                     taker_price(leg.contract, combo.leg_side(leg, side), price, slippage_ticks))
             for i, (leg, price) in enumerate(zip(combo.legs, prices))]
    w.filled += packages
    w.notional += packages * combo.net([f.price for f in fills])
    w.status = OrderStatus.FILLED if w.remaining == 0 else OrderStatus.PARTIALLY_FILLED
    return fills
