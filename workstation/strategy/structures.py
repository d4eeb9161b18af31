"""Signals as structures: the mispriced option traded against one hedge leg instead of naked.

For each `model` or `relative` candidate two kinds of hedge are tried, 1:1 on the opposite side:
  vertical  the nearest liquid strike of the same expiry and right, below and above (at most
            `signals.structure_max_strikes` listed strikes away);
  calendar  the same strike and right in the chain's next expiry, when it is listed there and liquid.
And one kind with two hedge legs:
  neutral   m of the mispriced option against whole ratios of two liquid out-of-the-money options of its expiry,
            one below and one above its strike (up to `NEUTRAL_NEIGHBOURS` each way), solved so that the package
            holds at most `NEUTRAL_LEFT` of the naked option's |delta| and |vega| (m <= 3, each ratio <= 5).
The hedge leg is paid for: package edge = the signal leg's edge - (the hedge's half-spread + fees + how far its
mid sits from its own value against us) - the rounding of the net limit to the combo tick. A proposal counts only
when its edge is positive and it holds less |delta| and less |vega| than the naked option; the best edge wins
(`signals.structures` narrows the kinds). Greeks are Black-76 at the family's vol (model IV or fair IV), in
dollars per package traded. Pure and per candidate (a few dozen), vectorised within one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import product

import numpy as np

from ..config import SignalsConfig
from ..domain import Side, SignalStructure
from ..domain.combos import Combo, ComboError, ComboLeg, calendar, marketable_limit, vertical
from ..portfolio.greeks import dollar_greeks
from ..pricing import black_greeks
from .signals import Candidate
from .surface import Surface

NEUTRAL_NEIGHBOURS = 3      # liquid out-of-the-money strikes tried on each side of the signal's for a neutral package
NEUTRAL_LEFT = 0.25         # a neutral package keeps at most this share of the naked option's |delta| and |vega|
NEUTRAL_MAX_SIGNAL = 3      # the most contracts of the signal's option per neutral package
NEUTRAL_MAX_RATIO = 5       # the most contracts of a hedge leg per neutral package


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
    return np.column_stack(dollar_greeks(g.delta, g.gamma, g.vega, g.theta, surface.forward[r], snap.multiplier[r],
                                         1))


def hedge_leg_cost(snap, values: Values, row: int, sign: int, fee: float) -> float:
    """What one contract of hedge leg `row` costs the package, in points, traded on `sign` (+1 buy): its
    half-spread, the fee, and how far its own mid sits from its value against us."""
    half, mid = 0.5 * float(snap.ask[row] - snap.bid[row]), 0.5 * float(snap.ask[row] + snap.bid[row])
    return half + fee / float(snap.multiplier[row]) + sign * (mid - float(values.price[row]))


def _package_side(snap, c: Candidate, hedge: int, kind: str) -> Side:
    """The side the package trades on so that the signal's leg is on the signal's side: a vertical is bought
    (long leg first); a calendar is bought when we buy its back leg (a bought calendar sells the front)."""
    if kind == "vertical":
        return Side.BUY
    mine_is_back = snap.expiry[c.row] > snap.expiry[hedge]
    return Side.BUY if mine_is_back == (c.side is Side.BUY) else Side.SELL


def _combo(snap, c: Candidate, hedge: int, kind: str):
    mine, theirs = snap.contract(c.row), snap.contract(hedge)
    try:
        if kind == "vertical":
            return vertical(mine, theirs) if c.side is Side.BUY else vertical(theirs, mine)
        front, back = (mine, theirs) if mine.expiry < theirs.expiry else (theirs, mine)
        return calendar(front, back)
    except ComboError:
        return None


def propose(surface: Surface, c: Candidate, values: Values, fee: float, cfg: SignalsConfig,
            ok: np.ndarray | None = None) -> SignalStructure | None:
    """The best structure for candidate `c` under `cfg.structures` (None: none pays and hedges). `fee` is $ per
    contract and leg; `ok`: the rows a hedge may trade on (`liquid` on the side opposite the signal's)."""
    mode, snap = cfg.structures, surface.snapshot
    ok = (liquid(surface, values, c.side.opposite, cfg.min_size) if ok is None else ok).copy()
    ok[c.row] = False
    tries = []
    if mode in ("vertical", "best"):
        tries += [("vertical", r) for r in vertical_hedges(surface, c.row, ok, cfg.structure_max_strikes)]
    if mode in ("calendar", "best"):
        tries += [("calendar", r) for r in calendar_hedges(surface, c.row, ok)]
    best, best_key = neutral(surface, c, values, fee) if mode in ("neutral", "best") else (None, None)
    if not tries:
        return best
    greeks = _dollar_greeks(surface, values, [c.row] + [r for _, r in tries])
    s, h = c.side.sign, -c.side.sign
    bid, ask, r = snap.bid, snap.ask, c.row
    mine_at = float(ask[r] if s > 0 else bid[r])
    for i, (kind, hedge) in enumerate(tries, 1):
        side = _package_side(snap, c, hedge, kind)
        net = side.sign * (s * mine_at + h * float(ask[hedge] if h > 0 else bid[hedge]))   # at the quotes
        limit = marketable_limit(net, side)
        hedge_cost = hedge_leg_cost(snap, values, hedge, h, fee)
        edge = c.edge - hedge_cost - abs(limit - net)
        net_g = s * greeks[0] + h * greeks[i]
        naked = s * greeks[0]
        if not (edge > 0 and np.all(np.isfinite(net_g)) and abs(net_g[0]) < abs(naked[0])
                and abs(net_g[2]) < abs(naked[2])):
            continue
        key = (edge, -abs(net_g[2]))
        if best_key is not None and key <= best_key:
            continue
        combo = _combo(snap, c, hedge, kind)
        if combo is None:
            continue
        best_key = key
        best = SignalStructure(combo, side, limit, float(edge), float(hedge_cost), *map(float, net_g),
                               naked_delta=float(naked[0]), naked_vega=float(naked[2]), quantity=c.quantity)
    return best


def neutral_hedges(surface: Surface, row: int, values: Values) -> tuple[np.ndarray, np.ndarray]:
    """Liquid (both sides, with a value) out-of-the-money options of `row`'s expiry series and trading class —
    puts below the forward, calls above — the nearest `NEUTRAL_NEIGHBOURS` strikes below and above `row`'s."""
    snap = surface.snapshot
    ok = liquid(surface, values, Side.BUY, 1) & liquid(surface, values, Side.SELL, 1)
    otm = np.where(snap.strike < surface.forward, ~snap.is_call, snap.is_call)
    rows = np.flatnonzero(ok & otm & (snap.series_key == snap.series_key[row])
                          & (snap.trading_class == snap.trading_class[row]) & (snap.strike != snap.strike[row]))
    below, above = rows[snap.strike[rows] < snap.strike[row]], rows[snap.strike[rows] > snap.strike[row]]
    return (below[np.argsort(-snap.strike[below], kind="stable")][:NEUTRAL_NEIGHBOURS],
            above[np.argsort(snap.strike[above], kind="stable")][:NEUTRAL_NEIGHBOURS])


def neutral(surface: Surface, c: Candidate, values: Values, fee: float) -> tuple[SignalStructure | None, tuple | None]:
    """The best delta- and vega-neutral package for `c` (by package edge; its ranking key), or (None, None)."""
    snap = surface.snapshot
    below, above = neutral_hedges(surface, c.row, values)
    if not (len(below) and len(above)):
        return None, None
    rows = [c.row, *below.tolist(), *above.tolist()]
    greeks = dict(zip(rows, _dollar_greeks(surface, values, rows)))
    s, r = c.side.sign, c.row
    naked = s * greeks[r]
    if not (np.all(np.isfinite(naked)) and abs(naked[0]) > 0 and abs(naked[2]) > 0):
        return None, None
    bid, ask = snap.bid, snap.ask
    best, best_key = None, None
    for lo, hi in product(below.tolist(), above.tolist()):
        a = np.array([[greeks[lo][0], greeks[hi][0]], [greeks[lo][2], greeks[hi][2]]])
        try:
            per_one = np.linalg.solve(a, -naked[[0, 2]])     # hedge contracts per signal contract
        except np.linalg.LinAlgError:
            continue
        for m in range(1, NEUTRAL_MAX_SIGNAL + 1):
            n = np.rint(m * per_one).astype(int)
            if (not np.all((np.abs(n) >= 1) & (np.abs(n) <= NEUTRAL_MAX_RATIO))
                    or math.gcd(m, abs(int(n[0])), abs(int(n[1]))) > 1):
                continue
            net_g = m * naked + n[0] * greeks[lo] + n[1] * greeks[hi]
            if abs(net_g[0]) > NEUTRAL_LEFT * m * abs(naked[0]) or abs(net_g[2]) > NEUTRAL_LEFT * m * abs(naked[2]):
                continue
            hedge_cost, net = 0.0, s * m * float(ask[r] if s > 0 else bid[r])
            for h, k in ((lo, int(n[0])), (hi, int(n[1]))):
                hedge_cost += abs(k) * hedge_leg_cost(snap, values, h, 1 if k > 0 else -1, fee)
                net += k * float(ask[h] if k > 0 else bid[h])
            limit = marketable_limit(net, Side.BUY)
            edge = m * c.edge - hedge_cost - abs(limit - net)
            key = (edge / m, -abs(net_g[2]) / m)          # per contract of the signal's option, as the 1:1 kinds
            if not (edge > 0 and np.all(np.isfinite(net_g))) or (best_key is not None and key <= best_key):
                continue
            legs = [ComboLeg(snap.contract(r), m, c.side)] + [
                ComboLeg(snap.contract(h), abs(k), Side.BUY if k > 0 else Side.SELL)
                for h, k in ((lo, int(n[0])), (hi, int(n[1])))]
            try:
                combo = Combo(tuple(legs), "neutral")
            except (ComboError, ValueError):
                continue
            if combo.problems():
                continue
            best_key = key
            best = SignalStructure(combo, Side.BUY, limit, float(edge), float(hedge_cost), *map(float, net_g),
                                   naked_delta=float(m * naked[0]), naked_vega=float(m * naked[2]),
                                   quantity=max(1, c.quantity // m))
    return best, best_key


def with_structures(surface: Surface, candidates: list[Candidate], values: dict[str, Values], fee: float,
                    cfg: SignalsConfig) -> list[Candidate]:
    """`candidates` with their proposed structure (families in `values` only); `fee` is $ per contract and leg."""
    if cfg.structures == "none":
        return candidates
    ok: dict[tuple[str, Side], np.ndarray] = {}       # hedge rows per family and side, computed once
    out = []
    for c in candidates:
        if c.family not in values:
            out.append(c)
            continue
        key = (c.family, c.side.opposite)
        if key not in ok:
            ok[key] = liquid(surface, values[c.family], c.side.opposite, cfg.min_size)
        out.append(replace(c, structure=propose(surface, c, values[c.family], fee, cfg, ok[key])))
    return out
