"""Combos through the running engine on the paper exchange: a vertical and a butterfly checked as packages,
journaled, filled atomically, booked per leg in the engine's book (with the engine's marks and Greeks); a
combo over the max-loss limit denied with its reason and never sent; the combo ids survive a restart."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine_support import SimRig, fast_settings

from workstation.domain import OrderStatus, Side
from workstation.domain.combos import COMBO_TICK, butterfly, vertical
from workstation.risk.limits import RiskCode


def _calls_near_the_money(rig: SimRig, n: int):
    """`n` adjacent two-sided calls of the nearest expiry with enough strikes, around the forward."""
    snap = rig.engine.last_snapshot
    ok = snap.is_call & (snap.bid > 0.5) & (snap.ask > snap.bid)
    expiries = sorted(set(snap.expiry[ok].tolist()))
    for expiry in expiries:
        rows = np.flatnonzero(ok & (snap.expiry == expiry) & (snap.am_settled == snap.am_settled[ok][0]))
        rows = rows[np.argsort(np.abs(snap.strike[rows] - snap.underlying_price))][:max(n, 4)]
        rows = rows[np.argsort(snap.strike[rows])]
        if len(rows) >= n:
            return [snap.contract(int(r)) for r in rows[:n]]
    pytest.skip("no expiry with enough two-sided calls")


def _marketable_buy(rig: SimRig, combo) -> float:
    """A net limit at or above the package's ask, on the combo tick."""
    snap = rig.engine.last_snapshot
    rows = [snap.index_of(leg.contract.contract_id) for leg in combo.legs]
    _, ask = combo.net_quote(snap.bid[rows], snap.ask[rows])
    return math.ceil(ask / COMBO_TICK + 1) * COMBO_TICK


@pytest.fixture
async def rig(tmp_path, warm_numba):
    settings = fast_settings()
    settings.signals.auto_execute = False
    settings.hedging.enabled = False
    r = await SimRig(tmp_path, settings).open()
    for _ in range(3):
        await r.step()
    yield r
    await r.close()


@pytest.mark.parametrize("structure", ["vertical", "butterfly"])
async def test_a_combo_is_checked_filled_atomically_and_booked_per_leg(rig, structure):
    calls = _calls_near_the_money(rig, 3)
    combo = vertical(calls[0], calls[1]) if structure == "vertical" else butterfly(*calls)
    limit = _marketable_buy(rig, combo)
    decision = rig.engine.send_combo(combo, Side.BUY, 1, limit)
    assert not isinstance(decision, str) and decision.approved, decision
    for _ in range(3):
        await rig.step()
    journal, book = rig.journal, rig.engine.book
    (order,) = journal.combo_orders()
    assert journal.combo_states()[order.client_order_id].status is OrderStatus.FILLED
    fills = journal.fills_of(order.client_order_id)
    assert sorted((f.contract.contract_id, f.signed_quantity) for f in fills) == \
        sorted((leg.contract.contract_id, leg.weight) for leg in combo.legs)        # every leg, once, whole
    assert len({f.timestamp for f in fills}) == 1                                       # one atomic fill
    net_paid = sum(f.signed_quantity * f.price for f in fills)
    assert net_paid <= limit + 1e-9                                                     # at the limit or better
    assert all(f.commission > 0 for f in fills)                                         # fees per leg
    for leg in combo.legs:                                                              # booked per leg
        assert book.quantity(leg.contract.contract_id) == leg.weight
    assert rig.engine.summary()["fills"] == len(fills)


async def test_a_combo_over_the_max_loss_limit_is_denied_with_its_reason_and_not_sent(rig):
    calls = _calls_near_the_money(rig, 2)
    combo = vertical(calls[0], calls[1])
    settings = rig.engine.settings.model_copy(deep=True)
    settings.risk.max_combo_loss = 100.0                # a 1-lot vertical can lose its whole debit (> $100)
    assert rig.engine.apply_settings(settings) == []
    decision = rig.engine.send_combo(combo, Side.BUY, 1, _marketable_buy(rig, combo))
    assert not decision.approved and RiskCode.MAX_LOSS in decision.reasons
    for _ in range(2):
        await rig.step()
    (order,) = rig.journal.combo_orders()
    state = rig.journal.combo_states()[order.client_order_id]
    assert state.status is OrderStatus.REJECTED and "MAX_LOSS" in state.reason
    assert rig.journal.fills_of(order.client_order_id) == []
    assert all(rig.engine.book.quantity(leg.contract.contract_id) == 0 for leg in combo.legs)
    assert rig.engine.alert_counts.get("RISK_DENIED", 0) >= 1
    assert rig.engine.state.value == "ACTIVE"           # a denied package is no journal failure: no halt
