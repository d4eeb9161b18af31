"""The combo ticket's numbers without Qt: every template built around the money on a hand-built chain, legs added
and removed from the chain board, and the payoff curves agreeing with the domain's bounds."""
from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from chain_support import SPOT, clean_chain

from workstation.analytics import combo_ticket as ct
from workstation.domain import Side
from workstation.domain.combos import TEMPLATES


@pytest.fixture(scope="module")
def snap():
    return clean_chain()


@pytest.mark.parametrize("structure", sorted(TEMPLATES))
def test_every_template_builds_around_the_money(snap, structure):
    expiry = date(2025, 2, 21)
    strikes = ct.default_strikes(structure, snap, expiry, is_call=True)
    assert len(strikes) == len(ct.STRIKES[structure]) and min(abs(k - SPOT) for k in strikes) <= 25
    combo = ct.build(structure, snap, expiry, strikes, True, back_expiry=date(2025, 3, 21))
    assert combo.structure == structure and combo.problems() == []
    assert {leg.contract.expiry for leg in combo.legs} <= {expiry, date(2025, 3, 21)}


def test_legs_from_the_chain_add_shrink_and_go(snap):
    a, b = snap.contract(ct.row_of(snap, date(2025, 2, 21), 6000.0, True)), \
        snap.contract(ct.row_of(snap, date(2025, 2, 21), 6050.0, True))
    legs = ct.add_leg([], a, Side.BUY)
    legs = ct.add_leg(legs, b, Side.SELL)
    legs = ct.add_leg(legs, b, Side.SELL)
    assert [(leg.contract.strike, leg.weight) for leg in legs] == [(6000.0, 1), (6050.0, -2)]
    legs = ct.add_leg(legs, a, Side.SELL)
    assert [(leg.contract.strike, leg.weight) for leg in legs] == [(6050.0, -2)]


def test_the_payoff_at_expiry_floors_at_the_max_loss_and_caps_at_the_max_gain(snap):
    expiry = date(2025, 2, 21)
    combo = ct.build("butterfly", snap, expiry, [5950.0, 6000.0, 6050.0])
    rows = [snap.index_of(leg.contract.contract_id) for leg in combo.legs]
    lines = [ct.LegLine(leg, float(snap.bid[r]), float(snap.ask[r]), 0.18, dict.fromkeys(
        ("delta", "gamma", "vega", "theta"), 1.0)) for leg, r in zip(combo.legs, rows)]
    limit = ct.on_tick(combo.net_mid(snap.bid[rows], snap.ask[rows]))
    n = ct.numbers(combo, lines, Side.BUY, limit)
    assert n.greeks["delta"] == pytest.approx(0.0) and n.bounds == combo.payoff_bounds(limit, Side.BUY)
    t = float(snap.maturity[rows[0]])
    p = ct.payoff(combo, Side.BUY, 3, limit, SPOT, [SPOT] * 3, [t] * 3, [0.18] * 3)
    assert p.at_expiry.min() == pytest.approx(-3 * n.bounds.max_loss)
    assert p.at_expiry.max() == pytest.approx(3 * n.bounds.max_gain)
    assert np.all(np.isfinite(p.today)) and p.today.max() < p.at_expiry.max()
