"""Signals as structures: the mispriced option traded against one hedge leg instead of naked.

For each `model` or `relative` candidate two kinds of hedge are tried, 1:1 on the opposite side:
  vertical  the nearest liquid strike of the same expiry and right, below and above (at most
            `signals.structure_max_strikes` listed strikes away);
  calendar  the same strike and right in the chain's next expiry, when it is listed there and liquid.
The hedge leg is paid for: package edge = the signal leg's edge - (the hedge's half-spread + fees + how far its
mid sits from its own value against us) - the rounding of the net limit to the combo tick. A proposal counts only
when its edge is positive and it holds less |delta| and less |vega| than the naked option; the best edge wins
(`signals.structures` narrows the kinds). Greeks are Black-76 at the family's vol (model IV or fair IV), in
dollars per package traded. Pure and per candidate (a few dozen), vectorised within one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..config import SignalsConfig
from ..domain import Side, SignalStructure
from ..domain.combos import COMBO_TICK, ComboError, calendar, vertical
from ..pricing import black_greeks
from .signals import Candidate
from .surface import Surface

PCT = 0.01


@dataclass(frozen=True, eq=False)
class Values:
    """What one family measures edges against, per row of the surface: a price, and the vol (decimal) its
    Greeks are taken at. NaN where the family has no value (such a row is no hedge)."""

    price: np.ndarray
    vol: np.ndarray


def liquid(surface: Surface, values: Values, side: Side, min_size: int) -> np.ndarray:
    """Rows a hedge leg may trade on `side`: usable two-sided quotes with a value, showing `min_size` there."""
    snap = surface.snapshot
    size = snap.ask_size if side is Side.BUY else snap.bid_size
    with np.errstate(invalid="ignore"):
        return (surface.usable & (snap.bid > 0) & (snap.ask > snap.bid) & np.isfinite(values.price)
                & np.isfinite(values.vol) & (size >= min_size))


def vertical_hedges(surface: Surface, row: int, ok: np.ndarray, max_strikes: int) -> list[int]:
    """The nearest `ok` strike below and above `row` in its expiry series, right and trading class."""
    snap = surface.snapshot
    same = np.flatnonzero((snap.series_key == snap.series_key[row]) & (snap.is_call == snap.is_call[row])
                          & (snap.trading_class == snap.trading_class[row]))
    same = same[np.argsort(snap.strike[same], kind="stable")]
    at = int(np.flatnonzero(same == row)[0])
    out = []
    for step in (-1, 1):
        for k in range(1, max_strikes + 1):
            i = at + step * k
            if not 0 <= i < len(same):
                break
            if ok[same[i]]:
                out.append(int(same[i]))
                break
    return out


def calendar_hedges(surface: Surface, row: int, ok: np.ndarray) -> list[int]:
    """The same strike and right in the chain's next expiry, when listed there and `ok`."""
    snap = surface.snapshot
    later = snap.expiry > snap.expiry[row]
    if not later.any():
        return []
    nxt = snap.expiry[later].min()
    return [int(r) for r in np.flatnonzero((snap.expiry == nxt) & (snap.strike == snap.strike[row])
                                            & (snap.is_call == snap.is_call[row]) & ok)][:1]


def _dollar_greeks(surface: Surface, values: Values, rows: list[int]) -> np.ndarray:
    """Per row: [delta$, gamma$, vega$, theta$] of one contract long (Black-76 at the family's vol)."""
    snap, r = surface.snapshot, np.asarray(rows)
    g = black_greeks(surface.forward[r], snap.strike[r], surface.maturity[r], surface.discount[r],
                     values.vol[r], snap.is_call[r])
    f, mult = surface.forward[r], snap.multiplier[r]
    return np.column_stack([g.delta * f * PCT * mult, g.gamma * (PCT * f) ** 2 * mult, g.vega * mult,
                            g.theta * mult])


def package(surface: Surface, values: Values, c: Candidate, hedge: int, kind: str, fee: float
            ) -> SignalStructure | None:
    """Candidate `c` against `hedge` as a `kind` package (None when the legs make no such combo)."""
    snap = surface.snapshot
    s, h = c.side.sign, -c.side.sign
    mine, theirs = snap.contract(c.row), snap.contract(hedge)
    try:
        if kind == "vertical":
            combo = vertical(mine, theirs) if s > 0 else vertical(theirs, mine)
            side = Side.BUY
        else:
            front, back = (mine, theirs) if mine.expiry < theirs.expiry else (theirs, mine)
            combo = calendar(front, back)               # bought: sell the front, buy the back
            side = Side.BUY if (back is mine) == (s > 0) else Side.SELL
    except ComboError:
        return None
    rows = [snap.index_of(leg.contract.contract_id) for leg in combo.legs]
    bid, ask = snap.bid[rows], snap.ask[rows]
    net = combo.net_quote(bid, ask)[0 if side is Side.SELL else 1]     # what the package trades at, at the quotes
    ticks = net / COMBO_TICK
    limit = round((math.ceil(round(ticks, 6)) if side is Side.BUY else math.floor(round(ticks, 6))) * COMBO_TICK, 2)
    half = 0.5 * (snap.ask[hedge] - snap.bid[hedge])
    mid = 0.5 * (snap.ask[hedge] + snap.bid[hedge])
    hedge_cost = float(half + fee + h * (mid - values.price[hedge]))
    edge = c.edge - hedge_cost - abs(limit - net)
    g = _dollar_greeks(surface, values, [c.row, hedge])
    net_g = s * g[0] + h * g[1]
    if not np.all(np.isfinite(net_g)):
        return None
    return SignalStructure(combo, side, limit, float(edge), hedge_cost, *map(float, net_g),
                           naked_delta=float(s * g[0, 0]), naked_vega=float(s * g[0, 2]), quantity=c.quantity)


def propose(surface: Surface, c: Candidate, values: Values, fee: float, cfg: SignalsConfig
            ) -> SignalStructure | None:
    """The best structure for candidate `c` under `cfg.structures` (None: none pays and hedges)."""
    mode = cfg.structures
    ok = liquid(surface, values, c.side.opposite, cfg.min_size)
    ok[c.row] = False
    tries = []
    if mode in ("vertical", "best"):
        tries += [("vertical", r) for r in vertical_hedges(surface, c.row, ok, cfg.structure_max_strikes)]
    if mode in ("calendar", "best"):
        tries += [("calendar", r) for r in calendar_hedges(surface, c.row, ok)]
    fee_units = fee / float(surface.snapshot.multiplier[c.row])
    found = [p for kind, r in tries if (p := package(surface, values, c, r, kind, fee_units)) is not None]
    found = [p for p in found if p.edge_points > 0 and abs(p.delta) < abs(p.naked_delta)
             and abs(p.vega) < abs(p.naked_vega)]
    return max(found, key=lambda p: (p.edge_points, -abs(p.vega)), default=None)


def with_structures(surface: Surface, candidates: list[Candidate], values: dict[str, Values], fee: float,
                    cfg: SignalsConfig) -> list[Candidate]:
    """`candidates` with their proposed structure (families in `values` only); `fee` is $ per contract and leg."""
    if cfg.structures == "none":
        return candidates
    return [replace(c, structure=propose(surface, c, values[c.family], fee, cfg)) if c.family in values else c
            for c in candidates]
