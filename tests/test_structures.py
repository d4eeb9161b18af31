"""Which structure a signal proposes (`strategy.structures`), on a hand-built arbitrage-free chain whose values
are known (Black-76 off a known forward and smile, quoted symmetrically around them): the vertical's hedge is the
nearest liquid strike, the calendar's the same strike in the next expiry only when it is listed and liquid there;
the package edge is the signal's edge less the hedge's half-spread, fee and tick; a package holding more vega
than the naked option is never proposed; `signals.structures` narrows the kinds (none: nothing)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from chain_support import clean_chain, forward_discount, row, smile, wide_settings, with_quotes
from workstation.config import SignalsConfig
from workstation.domain import Side
from workstation.domain.combos import COMBO_TICK
from workstation.pricing import black_price
from workstation.strategy.signals import Candidate
from workstation.strategy.structures import Values, propose, with_structures
from workstation.strategy.surface import build_surface

FEE = 1.30          # $ per contract and leg


def _market(snap):
    s = wide_settings()
    surface = build_surface(snap, s.market, s.calibration)
    t = snap.maturity
    f, d = forward_discount(t)
    vol = smile(np.log(snap.strike / f))
    return surface, Values(black_price(f, snap.strike, t, d, vol, snap.is_call), vol)


def _candidate(snap, r: int, side: Side, edge: float = 2.0) -> Candidate:
    return Candidate(r, int(snap.contract_id[r]), side, edge, edge * 100, 1.0, 3.0, 50.0, math.nan, 2)


def _cfg(mode: str) -> SignalsConfig:
    return SignalsConfig(structures=mode, structure_max_strikes=3)


def _tick(net: float, side: Side) -> float:
    return (math.ceil(net / COMBO_TICK - 1e-6) if side is Side.BUY else math.floor(net / COMBO_TICK + 1e-6)) * COMBO_TICK


def test_the_vertical_hedges_with_the_nearest_liquid_strike_and_pays_its_costs():
    snap = clean_chain()
    bid, ask = snap.bid.copy(), snap.ask.copy()
    r = row(snap, "2025-02-21", 6000.0, False)
    below = row(snap, "2025-02-21", 5975.0, False)
    bid[below] = ask[below] = 0.0                      # the strike below is not quoted: the next one is the hedge
    snap = with_quotes(snap, bid, ask)
    surface, values = _market(snap)
    st = propose(surface, _candidate(snap, r, Side.BUY), values, FEE, _cfg("vertical"))
    assert st is not None and st.combo.structure == "vertical" and st.side is Side.BUY
    (mine, hedge) = st.combo.legs
    assert mine.contract.contract_id == snap.contract_id[r] and mine.side is Side.BUY and hedge.side is Side.SELL
    h = snap.index_of(hedge.contract.contract_id)
    assert snap.strike[h] in (5950.0, 6025.0)          # nearest liquid below (5975 is dark) or above
    half = 0.5 * (snap.ask[h] - snap.bid[h])
    mid = 0.5 * (snap.ask[h] + snap.bid[h])
    cost = half + FEE / 100 - (mid - values.price[h])  # sold: a mid above its value is in our favour
    net = snap.ask[r] - snap.bid[h]
    assert st.hedge_cost == pytest.approx(cost, abs=1e-12)
    assert st.limit_price == pytest.approx(_tick(net, Side.BUY), abs=1e-9)
    assert st.edge_points == pytest.approx(2.0 - cost - abs(st.limit_price - net), abs=1e-9)
    # of the two neighbours, the one with the better package edge
    other = row(snap, "2025-02-21", 6025.0 if snap.strike[h] == 5950.0 else 5950.0, False)
    o_half, o_mid = 0.5 * (snap.ask[other] - snap.bid[other]), 0.5 * (snap.ask[other] + snap.bid[other])
    o_net = snap.ask[r] - snap.bid[other]
    o_edge = 2.0 - (o_half + FEE / 100 - (o_mid - values.price[other])) - abs(_tick(o_net, Side.BUY) - o_net)
    assert st.edge_points >= o_edge - 1e-12
    assert abs(st.delta) < abs(st.naked_delta) and abs(st.vega) < abs(st.naked_vega)


def test_the_calendar_takes_the_same_strike_in_the_next_expiry_only_when_it_is_liquid_there():
    snap = clean_chain()
    surface, values = _market(snap)
    r = row(snap, "2025-02-21", 6000.0, True)
    back = row(snap, "2025-03-21", 6000.0, True)
    st = propose(surface, _candidate(snap, r, Side.BUY), values, FEE, _cfg("calendar"))
    assert st is not None and st.combo.structure == "calendar"
    assert [leg.contract.contract_id for leg in st.combo.legs] == [snap.contract_id[r], snap.contract_id[back]]
    assert st.side is Side.SELL                         # buying the front, selling the back: the calendar sold
    net = snap.ask[r] - snap.bid[back]                  # ... for the net bid, a credit
    assert st.limit_price == pytest.approx(_tick(-net, Side.SELL), abs=1e-9)
    assert st.label == "calendar 6000 C 21Feb/21Mar"
    assert abs(st.vega) < abs(st.naked_vega) and abs(st.delta) < abs(st.naked_delta)

    bid, ask = snap.bid.copy(), snap.ask.copy()
    bid[back] = ask[back] = 0.0                         # the next expiry's strike is dark: no calendar, even
    dark = with_quotes(snap, bid, ask)                  # though April lists it
    surface, values = _market(dark)
    assert propose(surface, _candidate(dark, r, Side.BUY), values, FEE, _cfg("calendar")) is None


def test_a_package_holding_more_vega_than_the_naked_option_or_no_edge_is_not_proposed():
    snap = clean_chain(expiries=("2025-01-10", "2025-03-21"))     # 8 days against 78: the back has ~3x the vega
    surface, values = _market(snap)
    r = row(snap, "2025-01-10", 6000.0, False)
    assert propose(surface, _candidate(snap, r, Side.SELL), values, FEE, _cfg("calendar")) is None
    best = propose(surface, _candidate(snap, r, Side.SELL), values, FEE, _cfg("best"))
    assert best is not None and best.combo.structure == "vertical"
    assert propose(surface, _candidate(snap, r, Side.SELL, edge=0.01), values, FEE, _cfg("best")) is None


def test_structures_none_proposes_nothing_and_other_families_are_left_alone():
    snap = clean_chain()
    surface, values = _market(snap)
    r = row(snap, "2025-02-21", 6000.0, False)
    c = _candidate(snap, r, Side.BUY)
    assert with_structures(surface, [c], {"model": values}, FEE, _cfg("none"))[0].structure is None
    (got,) = with_structures(surface, [c], {"model": values}, FEE, _cfg("best"))
    assert got.structure is not None and got.structure.quantity == c.quantity
    assert with_structures(surface, [c], {"relative": values}, FEE, _cfg("best"))[0].structure is None
