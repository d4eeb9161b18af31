"""The numbers of the combo ticket (no Qt): a template's legs picked from the chain around the money, the
package's net quote, net dollar Greeks and payoff bounds, and its payoff curves at expiry and today.

Prices are per package in index points (debit > 0, credit < 0); dollars are per package (× multiplier). The
payoff today prices every leg with Black-76 at its own market vol (the mid IV of its quote), the leg's forward
moving one for one (in proportion) with the underlying level on the x axis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from ..domain import ChainSnapshot, Contract, Side
from ..domain.combos import COMBO_TICK, TEMPLATES, Combo, ComboLeg, PayoffBounds
from ..pricing import black_price

# template -> what its strikes are called, in the template's argument order
STRIKES: dict[str, tuple[str, ...]] = {
    "vertical": ("long", "short"),
    "calendar": ("strike",),
    "butterfly": ("low", "body", "high"),
    "condor": ("k1", "k2", "k3", "k4"),
    "risk_reversal": ("put", "call"),
    "straddle": ("strike",),
    "strangle": ("put", "call"),
}
ONE_RIGHT = {"vertical", "calendar", "butterfly", "condor"}      # the trader picks calls or puts
LABELS = {"vertical": "Vertical", "calendar": "Calendar", "butterfly": "Butterfly", "condor": "Condor",
          "risk_reversal": "Risk reversal", "straddle": "Straddle", "strangle": "Strangle"}


def on_tick(price: float) -> float:
    """`price` on the 0.05 complex-order tick."""
    return round(round(price / COMBO_TICK) * COMBO_TICK, 2) if math.isfinite(price) else price


def expiries(snap: ChainSnapshot) -> list[date]:
    """The chain's expiries, ascending."""
    return [d.astype(date) for d in np.unique(snap.expiry.astype("datetime64[D]"))]


def strikes_of(snap: ChainSnapshot, expiry: date) -> np.ndarray:
    """Strikes of `expiry` quoted on both sides (bid > 0) for calls and for puts."""
    on = (snap.expiry == np.datetime64(expiry, "D")) & (snap.bid > 0) & (snap.ask > snap.bid)
    calls, puts = snap.strike[on & snap.is_call], snap.strike[on & ~snap.is_call]
    return np.intersect1d(calls, puts)


def row_of(snap: ChainSnapshot, expiry: date, strike: float, is_call: bool) -> int | None:
    """The row of one option (the PM-settled weekly before the AM monthly on a shared date), else None."""
    hit = np.flatnonzero((snap.expiry == np.datetime64(expiry, "D")) & (snap.strike == strike)
                         & (snap.is_call == is_call))
    if not len(hit):
        return None
    pm = hit[~snap.am_settled[hit]]
    return int(pm[0]) if len(pm) else int(hit[0])


def default_strikes(structure: str, snap: ChainSnapshot, expiry: date, is_call: bool = True,
                    width: float | None = None) -> list[float]:
    """The template's strikes around the money: ATM (nearest the index) and wings `width` points away
    (default 0.5 % of the index), each snapped to a listed two-sided strike."""
    listed = strikes_of(snap, expiry)
    if not len(listed):
        return []
    spot = float(snap.underlying_price)
    w = width if width is not None else max(5.0, 0.005 * spot)

    def near(level: float) -> float:
        return float(listed[int(np.argmin(np.abs(listed - level)))])

    atm = near(spot)
    if structure == "vertical":                   # a debit spread: bull calls, bear puts
        return [atm, near(atm + w)] if is_call else [atm, near(atm - w)]
    if structure in ("calendar", "straddle"):
        return [atm]
    if structure == "butterfly":
        return [near(atm - w), atm, near(atm + w)]
    if structure == "condor":
        return [near(atm - 2 * w), near(atm - w), near(atm + w), near(atm + 2 * w)]
    return [near(atm - w), near(atm + w)]        # risk reversal, strangle: put below, call above


def build(structure: str, snap: ChainSnapshot, expiry: date, strikes: list[float], is_call: bool = True,
          back_expiry: date | None = None) -> Combo:
    """The template `structure` on the chain's contracts (ComboError when the legs break its rules, LookupError
    when a strike is not listed)."""

    def contract(k: float, call: bool, when: date = expiry) -> Contract:
        row = row_of(snap, when, float(k), call)
        if row is None:
            raise LookupError(f"no {'call' if call else 'put'} {k:g} on {when}")
        return snap.contract(row)

    make = TEMPLATES[structure]
    if structure == "calendar":
        if back_expiry is None:
            raise LookupError("a calendar needs a back expiry")
        return make(contract(strikes[0], is_call), contract(strikes[0], is_call, back_expiry))
    if structure == "straddle":
        return make(contract(strikes[0], True), contract(strikes[0], False))
    if structure in ("risk_reversal", "strangle"):
        return make(contract(strikes[0], False), contract(strikes[1], True))
    return make(*(contract(k, is_call) for k in strikes))


def add_leg(legs: list[ComboLeg], contract: Contract, side: Side) -> list[ComboLeg]:
    """`legs` with one more contract of `contract` on `side` (a leg on the other side shrinks; at zero it goes)."""
    side = Side(side)
    out = list(legs)
    for i, leg in enumerate(out):
        if leg.contract.contract_id == contract.contract_id:
            weight = leg.weight + side.sign
            if weight == 0:
                del out[i]
            else:
                out[i] = ComboLeg(contract, abs(weight), Side.BUY if weight > 0 else Side.SELL)
            return out
    out.append(ComboLeg(contract, 1, side))
    return out


@dataclass(frozen=True)
class LegLine:
    """One leg as the ticket shows it: its quote, mid IV and dollar Greeks per +1 contract."""

    leg: ComboLeg
    bid: float
    ask: float
    iv: float                   # mid implied vol (fraction), NaN when unknown
    greeks: dict[str, float]    # delta/gamma/vega/theta, $ per +1 contract

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask) if self.bid > 0 and self.ask > 0 else math.nan


@dataclass(frozen=True)
class ComboNumbers:
    """The package's net quote (index points per package), net dollar Greeks per package bought, and the
    payoff bounds of `quantity` packages traded at `limit` on `side`."""

    combo: Combo
    legs: tuple[LegLine, ...]
    net_bid: float
    net_ask: float
    net_mid: float
    greeks: dict[str, float]
    bounds: PayoffBounds

    @property
    def multiplier(self) -> float:
        return self.combo.multiplier


def numbers(combo: Combo, legs: list[LegLine], side: Side, limit: float) -> ComboNumbers:
    """Net quote, Greeks and bounds from the legs' lines (in the combo's leg order)."""
    bid = [line.bid for line in legs]
    ask = [line.ask for line in legs]
    net_bid, net_ask = combo.net_quote(bid, ask)
    net_mid = combo.net_mid(bid, ask)
    greeks = combo.net_greeks({name: [line.greeks[name] for line in legs]
                               for name in ("delta", "gamma", "vega", "theta")})
    price = limit if math.isfinite(limit) else net_mid
    return ComboNumbers(combo, tuple(legs), net_bid, net_ask, net_mid, greeks, combo.payoff_bounds(price, side))


@dataclass(frozen=True)
class Payoff:
    """P&L ($) of the order over underlying `levels`: at the front expiry and today (Black-76 per leg)."""

    levels: np.ndarray
    at_expiry: np.ndarray
    today: np.ndarray
    spot: float


def payoff(combo: Combo, side: Side, quantity: int, limit: float, spot: float, forwards: list[float],
           maturities: list[float], vols: list[float], span: float = 0.02, points: int = 241) -> Payoff:
    """The order's P&L curves over the strikes and the index, padded by the wider of `span` × spot and the
    strikes' range on each side (every strike is a point of the grid: the kinks are drawn exactly). Each leg's
    forward scales with the level (F × level / spot); a leg with no vol or forward is valued at intrinsic on the
    'today' curve. At expiry, later-expiry legs count at intrinsic (as `payoff_bounds`)."""
    sign = Side(side).sign
    strikes = [float(leg.contract.strike) for leg in combo.legs]
    lo, hi = min(*strikes, spot), max(*strikes, spot)
    pad = max(span * spot, hi - lo)
    levels = np.union1d(np.linspace(lo - pad, hi + pad, points), strikes)
    scale = sign * quantity * combo.multiplier
    at_expiry = scale * (combo.expiry_value(levels) - limit)
    today = np.zeros_like(levels)
    for leg, f, t, vol in zip(combo.legs, forwards, maturities, vols):
        k = float(leg.contract.strike)
        if all(math.isfinite(x) and x > 0 for x in (f, t, vol)):
            fwd = f * levels / spot
            value = black_price(fwd, np.full_like(levels, k), np.full_like(levels, t), np.ones_like(levels),
                                np.full_like(levels, vol), np.full(len(levels), leg.contract.is_call))
        else:
            value = np.maximum(levels - k, 0.0) if leg.contract.is_call else np.maximum(k - levels, 0.0)
        today += leg.weight * np.asarray(value, dtype=float)
    return Payoff(levels, at_expiry, scale * (today - limit), spot)
