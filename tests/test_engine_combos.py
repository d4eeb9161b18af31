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
from workstation.engine.wiring import held_contracts
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


async def test_static_arbitrage_in_the_quotes_is_alerted_once_and_traded_as_a_package(rig):
    """The `arbitrage` family: each vertical/butterfly the scan reports is a real credit package whose payoff at
    expiry is never negative (checked by hand over every strike), alerted once while it lasts; one of them,
    sent through the engine, fills atomically as a package and locks the credit."""
    found = {}
    for _ in range(30):
        await rig.step(15.0)
        found.update(rig.engine.signal_desk.arbitrage)
        if any(a.combo is not None for a in found.values()):
            break
    packages = [a for a in rig.engine.signal_desk.arbitrage.values() if a.combo is not None]
    if not packages:
        pytest.skip("no tradable static arbitrage in this simulated half hour")
    snap = rig.engine.last_snapshot
    levels = np.concatenate([[0.0], np.unique(snap.strike), [snap.strike.max() * 2]])
    fee = (rig.engine.settings.execution.paper.commission_per_contract
           + rig.engine.settings.execution.paper.fees_per_contract) / 100.0
    for a in packages:
        rows = [snap.index_of(leg.contract.contract_id) for leg in a.combo.legs]
        net = sum(leg.weight * (snap.ask[r] if leg.weight > 0 else snap.bid[r]) for leg, r in zip(a.combo.legs, rows))
        legs = sum(abs(leg.weight) for leg in a.combo.legs)
        assert net + legs * fee < 0                                   # a credit after fees ...
        assert (a.combo.expiry_value(levels) >= -1e-9).all()          # ... for a package that never pays out
        assert a.limit_price >= net - 1e-9 and abs(a.limit_price / COMBO_TICK - round(a.limit_price / COMBO_TICK)) < 1e-9
    alerts = [al for al in rig.journal.alerts(limit=10_000) if al.code == "ARBITRAGE"]
    told = sum(int(al.message.split(" new static")[0]) for al in alerts)             # each one told once
    assert alerts and told == len(rig.engine.signal_desk._arbitrage_seen) >= len(packages)

    best = max(packages, key=lambda a: a.edge_dollars)
    limit = min(best.limit_price + 0.25, -COMBO_TICK)                # room for the quotes' jitter
    decision = rig.engine.send_combo(best.combo, best.side, 1, round(limit / COMBO_TICK) * COMBO_TICK)
    assert not isinstance(decision, str) and decision.approved, [r for r in decision.results if not r.passed]
    await rig.engine.settle_tasks()                                  # checked, journaled and sent by the combo desk
    (order,) = rig.journal.combo_orders()
    for _ in range(10):
        await rig.settle()
        if rig.journal.combo_states()[order.client_order_id].status is OrderStatus.FILLED:
            break
    assert rig.journal.combo_states()[order.client_order_id].status is OrderStatus.FILLED
    fills = rig.journal.fills_of(order.client_order_id)
    assert sum(f.signed_quantity * f.price for f in fills) <= order.limit_price + 1e-9 < 0       # a credit
    for leg in best.combo.legs:
        assert rig.engine.book.quantity(leg.contract.contract_id) == leg.weight


async def test_the_kill_switch_cancels_working_combos_too(rig):
    """A package resting at the exchange is cancelled by the kill switch like a single order (a package left working
    after the trader pulled the plug could still fill)."""
    combo = vertical(*_calls_near_the_money(rig, 2))
    snap = rig.engine.last_snapshot
    rows = [snap.index_of(leg.contract.contract_id) for leg in combo.legs]
    bid, ask = combo.net_quote(snap.bid[rows], snap.ask[rows])
    limit = math.floor(0.85 * (bid + ask) / 2 / COMBO_TICK) * COMBO_TICK     # inside the price band, under the bid
    assert 0 < limit < bid
    decision = rig.engine.send_combo(combo, Side.BUY, 1, limit)                   # it rests
    assert not isinstance(decision, str) and decision.approved, [r for r in decision.results if not r.passed]
    await rig.step()
    (order,) = rig.journal.combo_orders()
    assert rig.journal.combo_states()[order.client_order_id].status is OrderStatus.SUBMITTED
    assert order.client_order_id in rig.engine.desk.combos.working
    legs = {leg.contract.contract_id for leg in combo.legs}
    assert legs <= held_contracts(rig.engine)        # an IB feed keeps a resting package's legs quoted
    rig.engine.kill_switch()
    await rig.step()
    assert rig.journal.combo_states()[order.client_order_id].status is OrderStatus.CANCELLED
    assert rig.world.exchange.open_combos() == [] and not rig.engine.desk.combos.working
    assert not legs & held_contracts(rig.engine)     # ... and lets them go once it is cancelled (none is held)
