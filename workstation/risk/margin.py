"""A Reg-T style margin estimate for cash-settled broad-based index options (and a flat rate for futures).

Per contract unit, in dollars (x multiplier), with U the underlying level:
  long option            premium (paid in full)
  short, paired          a short matched with a long of the same underlying and right expiring no earlier
                         (a spread or a calendar) needs the strike width max(0, K_long - K_short) for calls,
                         max(0, K_short - K_long) for puts
  short, naked           premium + max(15% U - out-of-the-money amount, 10% U for calls / 10% K for puts)
  future                 future_margin_rate x price (a stand-in for SPAN)
Shorts are paired greedily (latest expiry first, cheapest cover first). Premium received is not credited.
A defined-risk combo (`structure_margin`) needs its worst payoff at expiry plus any debit paid: a credit vertical
its strike width, a long butterfly or calendar its debit.
It is an estimate to keep the account inside its buying power, not the broker's number.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from workstation.domain import Contract, SecType, Side
from workstation.domain.combos import Combo

NAKED_RATE = 0.15
NAKED_MIN_RATE = 0.10


@dataclass(frozen=True, slots=True)
class Leg:
    """A signed holding (long > 0) of one contract at a premium `price` in index points."""

    contract: Contract
    quantity: int
    price: float


@dataclass(frozen=True, slots=True)
class MarginEstimate:
    """Margin of a set of legs ($) and how many short option units were left unpaired (naked)."""

    margin: float
    naked_shorts: int


def _width(short: Contract, long: Contract) -> float:
    assert short.strike is not None and long.strike is not None
    if short.is_call:
        return max(0.0, long.strike - short.strike)
    return max(0.0, short.strike - long.strike)


def _naked(leg: Contract, price: float, underlying: float) -> float:
    assert leg.strike is not None
    otm = max(0.0, leg.strike - underlying) if leg.is_call else max(0.0, underlying - leg.strike)
    floor = NAKED_MIN_RATE * (underlying if leg.is_call else leg.strike)
    return price + max(NAKED_RATE * underlying - otm, floor)


def estimate(legs: Iterable[Leg], underlying: float, future_margin_rate: float = 0.06) -> MarginEstimate:
    """Reg-T style margin of `legs`; options of one underlying level `underlying` (same symbol)."""
    margin, naked = 0.0, 0
    groups: dict[tuple, tuple[list[list], list[list]]] = {}
    for leg in legs:
        c = leg.contract
        if leg.quantity == 0:
            continue
        if c.sec_type is SecType.FUTURE:
            margin += abs(leg.quantity) * leg.price * c.multiplier * future_margin_rate
            continue
        if not c.is_option:
            continue
        longs, shorts = groups.setdefault((c.symbol, c.right, c.multiplier), ([], []))
        if leg.quantity > 0:
            margin += leg.quantity * leg.price * c.multiplier
            longs.append([c, leg.quantity])
        else:
            shorts.append([c, -leg.quantity, leg.price])
    for longs, shorts in groups.values():
        for c, units, price in sorted(shorts, key=lambda s: s[0].expiry, reverse=True):
            while units > 0:
                covers = [lg for lg in longs if lg[1] > 0 and lg[0].expiry >= c.expiry]
                if not covers:
                    break
                best = min(covers, key=lambda lg: (_width(c, lg[0]), lg[0].expiry))
                used = min(units, best[1])
                best[1] -= used
                units -= used
                margin += used * _width(c, best[0]) * c.multiplier
            if units:
                naked += units
                margin += units * _naked(c, price, underlying) * c.multiplier
    return MarginEstimate(margin, naked)


def structure_margin(combo: Combo, side: Side, net_price: float, quantity: int) -> float:
    """Margin ($) of `quantity` packages of a defined-risk `combo` traded on `side` at `net_price`: the worst
    payoff of its legs at the front expiry plus the debit paid (premium received not credited); inf when the
    loss is unbounded or not exactly known (a short later-expiry leg)."""
    bounds = combo.payoff_bounds(0.0, side)
    if not (bounds.exact and math.isfinite(bounds.max_loss)):
        return math.inf
    debit = max(Side(side).sign * net_price, 0.0) * combo.multiplier
    return quantity * (bounds.max_loss + debit)
