"""The `arbitrage` family: static arbitrage in the quotes themselves (`strategy.arbitrage`), as opportunities a
trader can read and, where the legs are options in whole ratios, trade as one combo package at the quoted prices.

Verticals (1 : -1) and butterflies on evenly spaced strikes (1 : -2 : 1) become packages; calendars with an
interpolated far leg, uneven butterflies and parity (its forward leg is the future) are shown and alerted only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..domain import Side
from ..domain.combos import Combo, ComboError, ComboLeg, marketable_limit
from .arbitrage import QuoteArbitrage, find_arbitrage
from .surface import Surface

MAX_SHOWN = 50


@dataclass(frozen=True)
class Arbitrage:
    """One static arbitrage of one snapshot: what it is, the edge it locks in, and the package that trades it."""

    key: tuple                  # (kind, leg contract ids): the same opportunity across snapshots
    kind: str                   # vertical, butterfly, calendar, parity
    description: str            # 'butterfly +0.5 C5900 -1 C5925 +0.5 C5950 2026-12-18: edge 0.35'
    edge_points: float          # locked in per unit, index points, after fees
    edge_dollars: float         # per package (x multiplier x the package's whole-ratio scale)
    combo: Combo | None         # None: not tradable as one options package with whole ratios
    side: Side = Side.BUY       # the package's side (its legs' signs are in the combo)
    limit_price: float = math.nan   # net price of one package at the quotes (a credit is negative), on the tick


def _whole(quantities: np.ndarray) -> tuple[list[int], float] | None:
    """Whole ratios for leg quantities (e.g. 0.5, -1, 0.5 -> 1, -2, 1; scale 2), or None."""
    fractions = [Fraction(float(q)).limit_denominator(8) for q in quantities]
    if any(abs(float(f) - float(q)) > 1e-9 for f, q in zip(fractions, quantities)):
        return None
    scale = math.lcm(*[f.denominator for f in fractions])
    return [int(f * scale) for f in fractions], float(scale)


def _package(surface: Surface, found: QuoteArbitrage, i: int) -> tuple[Combo | None, float, float]:
    """The combo (bought: each leg's sign in its side), its scale and its net price at the quotes, on the tick."""
    snap = surface.snapshot
    rows = [int(r) for r in found.legs[i] if r >= 0]
    quantities = np.array([q for r, q in zip(found.legs[i], found.quantity[i]) if r >= 0])
    if found.forward[i] or found.kind not in ("vertical", "butterfly"):
        return None, 1.0, math.nan
    whole = _whole(quantities)
    if whole is None:
        return None, 1.0, math.nan
    ratios, scale = whole
    try:
        combo = Combo(tuple(ComboLeg(snap.contract(r), abs(n), Side.BUY if n > 0 else Side.SELL)
                            for r, n in zip(rows, ratios)), found.kind)
    except (ComboError, ValueError):
        return None, 1.0, math.nan
    net = sum(n * (snap.ask[r] if n > 0 else snap.bid[r]) for r, n in zip(rows, ratios))
    return combo, scale, marketable_limit(net, Side.BUY)        # pay at most the quotes


def arbitrage_in(surface: Surface, fee: float) -> list[Arbitrage]:
    """Every static arbitrage of the snapshot after `fee` per option contract and leg, best edge first."""
    out: list[Arbitrage] = []
    snap = surface.snapshot
    for kind, found in find_arbitrage(surface, fee).items():
        for i in range(len(found)):
            rows = [int(r) for r in found.legs[i] if r >= 0]
            combo, scale, limit = _package(surface, found, i)
            mult = float(snap.multiplier[rows[0]])
            key = (kind, tuple(int(snap.contract_id[r]) for r in rows))
            out.append(Arbitrage(key, kind, found.describe(surface, i), float(found.edge[i]),
                                 float(found.edge[i]) * mult * scale, combo, Side.BUY, limit))
    out.sort(key=lambda a: -a.edge_dollars)
    return out[:MAX_SHOWN]
