"""Combos: multi-leg option packages (verticals, calendars, butterflies...) traded at one net price.

A `Combo` is a frozen tuple of `ComboLeg`s (contract, ratio, side); buying the combo trades every leg on its own
side, selling it trades every leg on the opposite side. Prices are per package in index points: the net price is
sum(sign x ratio x leg price), positive for a debit (pay), negative for a credit (receive). `problems()` names
everything that makes a combo untradable (too many legs, ratios not in lowest terms or not the structure's,
legs in different underlyings, duplicate legs); the templates build the standard structures from contracts.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import reduce

import numpy as np

from .contracts import Contract, SecType
from .orders import OrderPurpose, Side

MAX_LEGS = 8            # the most legs any venue here accepts; `risk.max_combo_legs` is the trader's own limit
COMBO_TICK = 0.05       # complex-order tick for SPX/XSP packages


def on_combo_tick(price: float) -> bool:
    """A net price (debit or credit, zero allowed) on the complex-order tick."""
    return math.isfinite(price) and abs(price / COMBO_TICK - round(price / COMBO_TICK)) < 1e-6


def marketable_limit(net: float, side: Side) -> float:
    """The net limit on the complex-order tick that still trades at `net` (the quotes' net price): a buyer's
    rounded up to the tick, a seller's down (a credit, negative, rounds away from zero when buying it back)."""
    ticks = round(net / COMBO_TICK, 6)
    return round((math.ceil(ticks) if Side(side) is Side.BUY else math.floor(ticks)) * COMBO_TICK, 2)


class ComboReason(str, Enum):
    """Why a combo is malformed. Stable: the risk codes and the exchanges' rejections use the same names."""

    MAX_LEGS = "MAX_LEGS"                        # more legs than allowed
    UNBALANCED_RATIOS = "UNBALANCED_RATIOS"      # ratios with a common factor, or not the structure's ratios
    MIXED_UNDERLYINGS = "MIXED_UNDERLYINGS"      # legs on different underlyings (or multipliers)
    DUPLICATE_LEGS = "DUPLICATE_LEGS"            # the same contract twice
    BAD_LEG = "BAD_LEG"                          # not an option, or a ratio that is not a positive int
    BAD_STRUCTURE = "BAD_STRUCTURE"              # a template's legs in the wrong expiries, strikes or rights


class ComboError(ValueError):
    """A combo that cannot be built; `reason` says which rule it breaks."""

    def __init__(self, reason: ComboReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ComboLeg:
    """One leg: `ratio` contracts of `contract` per package, bought or sold when the package is bought."""

    contract: Contract
    ratio: int
    side: Side

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", Side(self.side))

    @property
    def weight(self) -> int:
        """Signed contracts of this leg per package bought (+ratio long, -ratio short)."""
        return self.side.sign * self.ratio


# the ratios (in leg order) and sides of the named structures; None: any side pattern
_STRUCTURES: dict[str, tuple[tuple[int, ...], tuple[int, ...] | None]] = {
    "vertical": ((1, 1), (1, -1)),
    "calendar": ((1, 1), (-1, 1)),
    "butterfly": ((1, 2, 1), (1, -1, 1)),
    "condor": ((1, 1, 1, 1), (1, -1, -1, 1)),
    "risk_reversal": ((1, 1), (-1, 1)),
    "straddle": ((1, 1), (1, 1)),
    "strangle": ((1, 1), (1, 1)),
}


@dataclass(frozen=True, slots=True)
class PayoffBounds:
    """Worst and best P&L of one package at the front expiry, in dollars (inf when unbounded). `exact` is
    False when a later-expiry leg is short: its time value at the front expiry is not counted."""

    max_loss: float
    max_gain: float
    exact: bool


@dataclass(frozen=True, slots=True)
class Combo:
    """A package of option legs; `structure` names the template it came from ("custom" otherwise)."""

    legs: tuple[ComboLeg, ...]
    structure: str = "custom"

    def __post_init__(self) -> None:
        object.__setattr__(self, "legs", tuple(self.legs))
        if not self.legs:
            raise ComboError(ComboReason.BAD_LEG, "a combo needs at least one leg")

    # ---- shape ------------------------------------------------------------------------------------
    @property
    def symbol(self) -> str:
        return self.legs[0].contract.symbol

    @property
    def multiplier(self) -> float:
        return self.legs[0].contract.multiplier

    @property
    def weights(self) -> np.ndarray:
        """Signed contracts per package bought, one per leg."""
        return np.array([leg.weight for leg in self.legs], dtype=float)

    @property
    def front_expiry(self):
        return min(leg.contract.expiry for leg in self.legs)

    @property
    def description(self) -> str:
        """A blotter line: 'vertical +1 SPXW 17Oct25 5900 C / -1 SPXW 17Oct25 5950 C'."""
        legs = " / ".join(f"{leg.weight:+d} {leg.contract.description}" for leg in self.legs)
        return f"{self.structure} {legs}"

    def problems(self, max_legs: int = MAX_LEGS) -> list[tuple[ComboReason, str]]:
        """Every rule the combo breaks, as (reason, detail); empty when it is tradable."""
        out: list[tuple[ComboReason, str]] = []
        if len(self.legs) > max_legs:
            out.append((ComboReason.MAX_LEGS, f"{len(self.legs)} legs vs limit {max_legs}"))
        bad = [leg for leg in self.legs if not (isinstance(leg.ratio, int) and not isinstance(leg.ratio, bool)
                                                and leg.ratio > 0 and leg.contract.sec_type is SecType.OPTION)]
        if bad:
            out.append((ComboReason.BAD_LEG, "legs must be options with positive int ratios: "
                        + ", ".join(f"{leg.contract.description} x{leg.ratio!r}" for leg in bad)))
            return out
        underlyings = {(leg.contract.symbol, leg.contract.multiplier) for leg in self.legs}
        if len(underlyings) > 1:
            out.append((ComboReason.MIXED_UNDERLYINGS, "legs on " + ", ".join(
                sorted(f"{s} x{m:g}" for s, m in underlyings))))
        ids = [leg.contract.contract_id for leg in self.legs]
        if len(set(ids)) < len(ids):
            out.append((ComboReason.DUPLICATE_LEGS, "contract " + ", ".join(
                str(i) for i in sorted({i for i in ids if ids.count(i) > 1})) + " appears twice"))
        ratios = tuple(leg.ratio for leg in self.legs)
        common = reduce(math.gcd, ratios)
        if common > 1:
            out.append((ComboReason.UNBALANCED_RATIOS, f"ratios {':'.join(map(str, ratios))} share the factor "
                        f"{common} (trade {common}x the reduced package)"))
        elif self.structure in _STRUCTURES:
            want, sides = _STRUCTURES[self.structure]
            got_sides = tuple(leg.side.sign for leg in self.legs)
            if ratios != want or (sides is not None and got_sides != sides):
                out.append((ComboReason.UNBALANCED_RATIOS, f"a {self.structure} is {':'.join(map(str, want))} "
                            f"with sides {sides}, got {':'.join(map(str, ratios))} with sides {got_sides}"))
        return out

    # ---- prices and Greeks ------------------------------------------------------------------------
    def net(self, values: Sequence[float] | np.ndarray) -> float:
        """Sum of per-leg `values` weighted by the legs' signed ratios (a net price, a net Greek...)."""
        return float(np.dot(self.weights, np.asarray(values, dtype=float)))

    def net_greeks(self, greeks: Mapping[str, Sequence[float] | np.ndarray]) -> dict[str, float]:
        """Net Greeks of one package bought, from per-leg arrays (e.g. {'delta': [...], 'vega': [...]})."""
        return {name: self.net(values) for name, values in greeks.items()}

    def net_quote(self, bid: Sequence[float], ask: Sequence[float]) -> tuple[float, float]:
        """Net bid and ask of the package from the legs' quotes: what it sells for and what it costs now."""
        w = self.weights
        b, a = np.asarray(bid, dtype=float), np.asarray(ask, dtype=float)
        return float(np.dot(w, np.where(w > 0, b, a))), float(np.dot(w, np.where(w > 0, a, b)))

    def net_mid(self, bid: Sequence[float], ask: Sequence[float]) -> float:
        return self.net(0.5 * (np.asarray(bid, dtype=float) + np.asarray(ask, dtype=float)))

    # ---- payoff at expiry -------------------------------------------------------------------------
    def expiry_value(self, level: float | np.ndarray) -> np.ndarray:
        """Value (index points) of one package at the front expiry for underlying `level`(s): every leg at
        intrinsic value (later expiries too: their time value is not counted)."""
        s = np.atleast_1d(np.asarray(level, dtype=float))
        total = np.zeros_like(s)
        for leg in self.legs:
            k = float(leg.contract.strike)
            intrinsic = np.maximum(s - k, 0.0) if leg.contract.is_call else np.maximum(k - s, 0.0)
            total += leg.weight * intrinsic
        return total

    def payoff_bounds(self, net_price: float, side: Side = Side.BUY) -> PayoffBounds:
        """Max loss and max gain ($, both >= 0 or inf) of one package traded at `net_price` on `side`.

        The payoff is piecewise linear with kinks at the strikes, so its extremes lie at a strike, at zero,
        or at infinity (slope of the calls past the highest strike)."""
        sign = Side(side).sign
        strikes = sorted({float(leg.contract.strike) for leg in self.legs})
        levels = np.array([0.0, *strikes])
        pnl = sign * (self.expiry_value(levels) - net_price) * self.multiplier
        slope = sign * sum(leg.weight for leg in self.legs if leg.contract.is_call)
        worst, best = float(pnl.min()), float(pnl.max())
        max_loss = math.inf if slope < 0 else max(-worst, 0.0)
        max_gain = math.inf if slope > 0 else max(best, 0.0)
        front = self.front_expiry
        exact = all(leg.contract.expiry == front or leg.weight * sign > 0 for leg in self.legs)
        return PayoffBounds(max_loss, max_gain, exact)

    def leg_side(self, leg: ComboLeg, side: Side) -> Side:
        """The side `leg` trades on when the package is traded on `side`."""
        return leg.side if Side(side) is Side.BUY else leg.side.opposite


@dataclass(frozen=True, slots=True)
class ComboOrder:
    """A limit order for `quantity` packages at the net `limit_price` (debit > 0, credit < 0) per package."""

    client_order_id: str
    combo: Combo
    side: Side
    quantity: int
    limit_price: float
    created_at: datetime | None = None
    purpose: OrderPurpose = OrderPurpose.MANUAL

    def __post_init__(self) -> None:
        if not self.client_order_id:
            raise ValueError("ComboOrder.client_order_id must not be empty")
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "purpose", OrderPurpose(self.purpose))
        if not isinstance(self.quantity, int) or isinstance(self.quantity, bool):
            raise ValueError(f"ComboOrder.quantity must be an int, got {self.quantity!r}")
        if not math.isfinite(self.limit_price):
            raise ValueError(f"combo order {self.client_order_id} needs a finite net limit price")
        if self.created_at is not None and self.created_at.tzinfo is None:
            raise ValueError("ComboOrder.created_at must be timezone-aware")

    def leg_quantities(self) -> list[tuple[ComboLeg, Side, int]]:
        """Each leg with the side it trades on and its contracts for the whole order."""
        return [(leg, self.combo.leg_side(leg, self.side), leg.ratio * self.quantity) for leg in self.combo.legs]


# ---- templates -------------------------------------------------------------------------------------

def _require(ok: bool, detail: str) -> None:
    if not ok:
        raise ComboError(ComboReason.BAD_STRUCTURE, detail)


def _same_expiry(*legs: Contract) -> None:
    _require(len({c.expiry for c in legs}) == 1, "legs must share one expiry")


def _same_right(*legs: Contract) -> None:
    _require(len({c.right for c in legs}) == 1, "legs must be all calls or all puts")


def _build(structure: str, legs: Sequence[tuple[Contract, int, Side]]) -> Combo:
    combo = Combo(tuple(ComboLeg(c, r, s) for c, r, s in legs), structure)
    for reason, detail in combo.problems():
        raise ComboError(reason, detail)
    return combo


def vertical(long: Contract, short: Contract) -> Combo:
    """Buy `long`, sell `short`: same expiry and right, different strikes (a bull call or bear put spread
    when `long` is the more expensive strike)."""
    _same_expiry(long, short)
    _same_right(long, short)
    _require(long.strike != short.strike, "a vertical needs two strikes")
    return _build("vertical", [(long, 1, Side.BUY), (short, 1, Side.SELL)])


def calendar(front: Contract, back: Contract) -> Combo:
    """Sell `front`, buy `back`: same strike and right, `back` expiring later (a long calendar)."""
    _same_right(front, back)
    _require(front.strike == back.strike, "a calendar has one strike")
    _require(front.expiry < back.expiry, "the back leg must expire after the front leg")
    return _build("calendar", [(front, 1, Side.SELL), (back, 1, Side.BUY)])


def butterfly(low: Contract, body: Contract, high: Contract) -> Combo:
    """Buy 1 `low`, sell 2 `body`, buy 1 `high`: one expiry and right, strikes ascending."""
    _same_expiry(low, body, high)
    _same_right(low, body, high)
    _require(low.strike < body.strike < high.strike, "butterfly strikes must ascend: low < body < high")
    return _build("butterfly", [(low, 1, Side.BUY), (body, 2, Side.SELL), (high, 1, Side.BUY)])


def condor(k1: Contract, k2: Contract, k3: Contract, k4: Contract) -> Combo:
    """Buy k1, sell k2 and k3, buy k4: one expiry, strikes ascending (all calls, all puts, or an iron condor
    of puts at k1, k2 and calls at k3, k4 bought as a package of long wings)."""
    _same_expiry(k1, k2, k3, k4)
    _require(k1.strike < k2.strike < k3.strike < k4.strike, "condor strikes must ascend")
    _require(k1.right == k2.right and k3.right == k4.right, "each wing is one right")
    return _build("condor", [(k1, 1, Side.BUY), (k2, 1, Side.SELL), (k3, 1, Side.SELL), (k4, 1, Side.BUY)])


def risk_reversal(put: Contract, call: Contract) -> Combo:
    """Sell `put`, buy `call` (bullish skew trade): one expiry, the put strike at or below the call's."""
    _same_expiry(put, call)
    _require(not put.is_call and call.is_call, "a risk reversal is a put and a call")
    _require(put.strike <= call.strike, "the put strike must not exceed the call strike")
    return _build("risk_reversal", [(put, 1, Side.SELL), (call, 1, Side.BUY)])


def straddle(call: Contract, put: Contract) -> Combo:
    """Buy `call` and `put` at one strike and expiry."""
    _same_expiry(call, put)
    _require(call.is_call and not put.is_call, "a straddle is a call and a put")
    _require(call.strike == put.strike, "a straddle has one strike")
    return _build("straddle", [(call, 1, Side.BUY), (put, 1, Side.BUY)])


def strangle(put: Contract, call: Contract) -> Combo:
    """Buy `put` and `call`, the put strike below the call strike, one expiry."""
    _same_expiry(put, call)
    _require(not put.is_call and call.is_call, "a strangle is a put and a call")
    _require(put.strike < call.strike, "the put strike must be below the call strike")
    return _build("strangle", [(put, 1, Side.BUY), (call, 1, Side.BUY)])


TEMPLATES = {"vertical": vertical, "calendar": calendar, "butterfly": butterfly, "condor": condor,
             "risk_reversal": risk_reversal, "straddle": straddle, "strangle": strangle}
