"""A package bought as a combo is closed as a combo (issue 22): on the running engine and the paper exchange, an
exit rule that fires on a vertical sends ONE reversing combo order (purpose EXIT) that flattens every leg at once
— never a single-leg exit that would leave the other leg naked; a package the trader broke by hand (one leg sold)
leaves its other leg to the single-option rules; after a restart the package is rebuilt from the journal and still
closed as a package. The package's P&L (the stop-loss reads it) is checked against the fills and marks by hand."""
from __future__ import annotations

import pytest

from engine_support import SimRig, fast_settings
from test_engine_combos import _calls_near_the_money, _marketable_buy

from workstation.domain import OrderPurpose, OrderStatus, Side
from workstation.domain.combos import COMBO_TICK, marketable_limit, vertical
from workstation.engine.package_exits import package_key


def _settings():
    s = fast_settings()
    s.signals.auto_execute = False
    s.hedging.enabled = False
    s.signals.stop_loss_dollars, s.signals.time_stop_minutes = 1e9, 500_000.0     # no rule fires until a test says
    s.signals.close_days_before_expiry = 0.0
    s.execution.aggressiveness = 1.0
    return s


async def _rig(path, settings=None) -> SimRig:
    r = await SimRig(path, settings or _settings(), account=path / "paper-account.sqlite").open()
    for _ in range(3):
        await r.step()
    return r


async def _hold_vertical(rig: SimRig, purpose=OrderPurpose.SIGNAL):
    """BUY one call vertical near the money as a combo; step until both legs are in the book."""
    long, short = _calls_near_the_money(rig, 2)
    combo = vertical(long, short)
    decision = rig.engine.send_combo(combo, Side.BUY, 1, _marketable_buy(rig, combo), purpose)
    assert not isinstance(decision, str) and decision.approved, decision
    for _ in range(5):
        await rig.step()
        if rig.engine.book.quantity(long.contract_id) == 1:
            break
    assert (rig.engine.book.quantity(long.contract_id), rig.engine.book.quantity(short.contract_id)) == (1, -1)
    return combo


def _exit_orders(rig: SimRig):
    singles = [r.order for r in rig.engine.orders.records.values() if r.order.purpose is OrderPurpose.EXIT]
    combos = [o for o in rig.journal.combo_orders() if o.purpose is OrderPurpose.EXIT]
    return singles, combos


async def _step_until_flat(rig: SimRig, cids, steps: int = 12) -> None:
    for _ in range(steps):
        await rig.step()
        if all(rig.engine.book.quantity(c) == 0 for c in cids):
            return


def test_a_marketable_combo_limit_never_trades_worse_than_rounding_to_the_tick():
    assert marketable_limit(1.01, Side.BUY) == 1.05 and marketable_limit(1.01, Side.SELL) == 1.0
    assert marketable_limit(-0.51, Side.BUY) == -0.5 and marketable_limit(-0.51, Side.SELL) == -0.55
    assert marketable_limit(2.35, Side.BUY) == marketable_limit(2.35, Side.SELL) == 2.35    # on the tick already
    for net in (0.07, -3.33, 12.49):
        limit = marketable_limit(net, Side.BUY)
        assert abs(limit / COMBO_TICK - round(limit / COMBO_TICK)) < 1e-9 and limit >= net


@pytest.mark.parametrize("rule", ["days_to_expiry", "time_stop", "stop_loss"])
async def test_an_exit_rule_on_a_vertical_closes_it_with_one_combo_never_leg_by_leg(tmp_path, warm_numba, rule):
    rig = await _rig(tmp_path)
    try:
        combo = await _hold_vertical(rig)
        engine, cids = rig.engine, [leg.contract.contract_id for leg in combo.legs]
        (held,) = engine.exits.packages.held.values()
        fills = rig.journal.fills()
        paid = sum(f.signed_quantity * f.price for f in fills) * combo.multiplier
        assert held.quantity == 1 and held.from_signal and held.cost == pytest.approx(paid)
        marks = {c: engine.book.mark_of(c) for c in cids}
        by_hand = (marks[cids[0]] - marks[cids[1]]) * combo.multiplier - paid
        assert held.pnl(engine.book.mark_of) == pytest.approx(by_hand)
        await rig.step()
        assert _exit_orders(rig) == ([], [])                    # nothing fires before a rule says so
        cfg = engine.settings.signals
        if rule == "days_to_expiry":
            cfg.close_days_before_expiry = 365.0
        elif rule == "time_stop":
            cfg.time_stop_minutes = 1e-3
        else:                                                   # book it $500 over its worth: a $500 loss
            held.cost += 500.0 + held.pnl(engine.book.mark_of)
            cfg.stop_loss_dollars = 100.0
        await _step_until_flat(rig, cids)
        singles, combos = _exit_orders(rig)
        assert singles == []                                    # never leg by leg
        assert len(combos) == 1 and combos[0].side is Side.SELL and combos[0].quantity == 1
        assert package_key(combos[0].combo) == package_key(combo)
        assert rig.journal.combo_states()[combos[0].client_order_id].status is OrderStatus.FILLED
        closing = rig.journal.fills_of(combos[0].client_order_id)
        assert len({f.timestamp for f in closing}) == 1         # both legs in one atomic fill
        assert all(engine.book.quantity(c) == 0 for c in cids) and not engine.exits.packages.held
    finally:
        await rig.close()


async def test_a_package_broken_by_hand_leaves_its_other_leg_to_the_single_option_rules(tmp_path, warm_numba):
    rig = await _rig(tmp_path)
    try:
        combo = await _hold_vertical(rig)
        engine = rig.engine
        long, short = (leg.contract for leg in combo.legs)
        row = engine.chain().index_of(long.contract_id)
        pv = engine.submit_order(long.contract_id, "SELL", 1, float(engine.chain().bid[row]))   # the trader's hand
        assert pv.sent, pv.message
        for _ in range(5):
            await rig.step()
            if engine.book.quantity(long.contract_id) == 0:
                break
        await rig.step()                                        # the exit rules look at the book once more
        assert engine.book.quantity(long.contract_id) == 0 and not engine.exits.packages.held
        engine.settings.signals.time_stop_minutes = 1e-3
        await _step_until_flat(rig, [short.contract_id])
        singles, combos = _exit_orders(rig)
        assert combos == [] and [(o.contract.contract_id, o.side) for o in singles] == [(short.contract_id, Side.BUY)]
        assert engine.book.quantity(short.contract_id) == 0
    finally:
        await rig.close()


async def test_after_a_restart_the_package_is_rebuilt_from_the_journal_and_closed_as_one(tmp_path, warm_numba):
    rig = await _rig(tmp_path)
    combo = await _hold_vertical(rig)
    await rig.close()
    again = SimRig(tmp_path, _settings(), account=tmp_path / "paper-account.sqlite")   # the same paper account
    again.engine.recover()
    await again.open()
    try:
        (held,) = again.engine.exits.packages.held.values()
        assert held.quantity == 1 and package_key(held.combo) == package_key(combo)
        assert not held.from_signal                             # why it was entered is not journaled: no convergence
        again.engine.settings.signals.close_days_before_expiry = 365.0
        await _step_until_flat(again, [leg.contract.contract_id for leg in combo.legs])
        singles, combos = _exit_orders(again)
        assert singles == [] and len(combos) == 1 and combos[0].side is Side.SELL
    finally:
        await again.close()


def test_a_signal_package_converges_only_when_every_leg_is_back_at_its_usual_level():
    """The convergence rule on the package: the mispriced leg back within exit_converged_vol is not enough while
    another leg has moved off its own level; a package not from a signal never exits on convergence."""
    from datetime import date, datetime, timedelta, timezone

    from workstation.config import Settings
    from workstation.domain import Contract, Right, SecType
    from workstation.engine.package_exits import HeldPackage, package_exit_reason
    from workstation.portfolio.book import Book

    def call(strike: float, cid: int) -> Contract:
        return Contract(cid, "SPX", SecType.OPTION, "SPXW", date(2026, 12, 31), strike, Right.CALL, 100.0)
    combo = vertical(call(5900, 1), call(5950, 2))
    opened = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)
    held = HeldPackage(combo, 1, opened, True, 1_000.0, usual={1: 2.0, 2: -1.0})
    cfg = Settings().signals.model_copy(update={"exit_converged_vol": 0.2, "stop_loss_dollars": 1e9,
                                                "time_stop_minutes": 500_000.0, "close_days_before_expiry": 0.0})
    book, now = Book(), opened + timedelta(minutes=5)
    residuals = {1: 2.1, 2: -0.5}                          # leg 1 back (0.1), leg 2 still 0.5 off its level
    assert package_exit_reason(held, book, cfg, now, residuals.get) == ""
    residuals[2] = -1.15                                   # now both within 0.2
    assert package_exit_reason(held, book, cfg, now, residuals.get).startswith("converged")
    held.from_signal = False
    assert package_exit_reason(held, book, cfg, now, residuals.get) == ""
