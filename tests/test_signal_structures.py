"""Signals as structures through the running engine on the paper exchange: a model/relative signal proposes a
vertical whose package edge and net Greeks equal a hand computation from its legs (quotes, values, Black-76 by
hand), journaled with the signal; the engine sends it as one package that fills atomically; auto-execution takes
static arbitrage packages within its limits and refuses (journaled with the code, nothing sent) one a limit denies.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine_support import SimRig, fast_settings

from workstation.domain import OrderPurpose, OrderStatus, Side, SignalState
from workstation.domain.combos import COMBO_TICK
from workstation.pricing import black_greeks
from workstation.strategy.relative_signals import signal_fair


def _settings(**signals):
    s = fast_settings()
    s.signals.auto_execute = False
    s.hedging.enabled = False
    for name, value in signals.items():
        setattr(s.signals, name, value)
    return s


async def _rig(tmp_path, settings) -> SimRig:
    return await SimRig(tmp_path, settings).open()


async def _until(rig: SimRig, condition, steps: int = 60, seconds: float = 5.0):
    for _ in range(steps):
        await rig.step(seconds)
        found = condition()
        if found:
            return found
    return None


def _n(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _black76_dollars(f: float, k: float, t: float, df: float, vol: float, call: bool, mult: float) -> tuple[float, float]:
    """Delta $ (per 1 % of the forward) and vega $ (per vol point) of one contract long, Black-76 by hand."""
    s = vol * math.sqrt(t)
    d1 = math.log(f / k) / s + 0.5 * s
    delta = df * (_n(d1) if call else _n(d1) - 1.0)
    vega = df * f * math.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi) * math.sqrt(t) * 0.01
    return delta * f * 0.01 * mult, vega * mult


def _values(engine, family: str):
    """The price and vol a family measures a row against: the model's, or the trusted fair surface's."""
    if family == "model":
        return engine.last_model.price, engine.last_model.iv
    return signal_fair(engine.last_fair), engine.last_fair.fair_iv


async def test_a_signal_proposes_a_vertical_whose_edge_and_greeks_are_its_legs(tmp_path, warm_numba):
    rig = await _rig(tmp_path, _settings(structures="vertical"))
    try:
        sig = await _until(rig, lambda: next((s for s in rig.engine.open_signals() if s.structure is not None
                                              and s.family in ("model", "relative")), None))
        if sig is None:
            pytest.skip("no signal with a structure in this simulated morning")
        engine, st = rig.engine, sig.structure
        snap, surface = engine.last_snapshot, engine.last_surface
        price, vol = _values(engine, sig.family)
        mult = sig.contract.multiplier
        assert st.combo.structure == "vertical" and st.combo.problems() == []
        (mine,) = [leg for leg in st.combo.legs if leg.contract.contract_id == sig.contract.contract_id]
        (hedge,) = [leg for leg in st.combo.legs if leg is not mine]
        assert st.combo.leg_side(mine, st.side) is sig.side                   # the signal's leg on its side ...
        assert st.combo.leg_side(hedge, st.side) is sig.side.opposite          # ... the hedge 1:1 against it
        assert hedge.ratio == mine.ratio == 1
        assert (hedge.contract.expiry, hedge.contract.right) == (sig.contract.expiry, sig.contract.right)
        r, h = snap.index_of(sig.contract.contract_id), snap.index_of(hedge.contract.contract_id)
        # no liquid strike of the series lies between the signal's and the hedge's
        s, hs = sig.side.sign, -sig.side.sign
        lo, hi = sorted((snap.strike[r], snap.strike[h]))
        shown = snap.ask_size if hs > 0 else snap.bid_size
        between = ((snap.series_key == snap.series_key[r]) & (snap.is_call == snap.is_call[r])
                   & (snap.strike > lo) & (snap.strike < hi) & surface.usable & np.isfinite(price)
                   & (snap.bid > 0) & (snap.ask > snap.bid) & (shown >= engine.settings.signals.min_size))
        assert not between.any()

        # package edge by hand: the signal leg's edge, less the hedge's half-spread, fees, own deviation and tick
        paper = engine.settings.execution.paper
        fee = (paper.commission_per_contract + paper.fees_per_contract) / mult
        signal_edge = sig.edge_dollars / mult
        if sig.family == "model":
            assert signal_edge == pytest.approx(s * (price[r] - (snap.ask[r] if s > 0 else snap.bid[r])))
        mid_h = 0.5 * (snap.bid[h] + snap.ask[h])
        hedge_cost = 0.5 * (snap.ask[h] - snap.bid[h]) + fee + hs * (mid_h - price[h])
        at_quotes = {r: snap.ask[r] if s > 0 else snap.bid[r], h: snap.ask[h] if hs > 0 else snap.bid[h]}
        net = st.side.sign * (s * at_quotes[r] + hs * at_quotes[h])          # the package's net on its side
        limit = (math.ceil(net / COMBO_TICK - 1e-6) if st.side is Side.BUY else math.floor(net / COMBO_TICK + 1e-6)) \
            * COMBO_TICK
        assert st.limit_price == pytest.approx(limit, abs=1e-9)
        assert st.hedge_cost == pytest.approx(hedge_cost, abs=1e-12)
        assert st.edge_points == pytest.approx(signal_edge - hedge_cost - abs(limit - net), abs=1e-9)
        assert st.edge_dollars == pytest.approx(st.edge_points * mult) and st.edge_points > 0

        # net Greeks by hand (Black-76 at the family's vol), and gamma/theta from the leg Greeks
        legs = {}
        for row in (r, h):
            legs[row] = _black76_dollars(surface.forward[row], snap.strike[row], surface.maturity[row],
                                         surface.discount[row], vol[row], bool(snap.is_call[row]), mult)
        assert st.delta == pytest.approx(s * legs[r][0] + hs * legs[h][0], rel=1e-9, abs=1e-9)
        assert st.vega == pytest.approx(s * legs[r][1] + hs * legs[h][1], rel=1e-9, abs=1e-9)
        assert (st.naked_delta, st.naked_vega) == pytest.approx((s * legs[r][0], s * legs[r][1]), rel=1e-9)
        g = black_greeks(surface.forward[[r, h]], snap.strike[[r, h]], surface.maturity[[r, h]],
                         surface.discount[[r, h]], vol[[r, h]], snap.is_call[[r, h]])
        f = surface.forward[[r, h]]
        assert st.gamma == pytest.approx(float(np.dot([s, hs], g.gamma * (0.01 * f) ** 2 * mult)), rel=1e-9)
        assert st.theta == pytest.approx(float(np.dot([s, hs], g.theta * mult)), rel=1e-9)
        assert abs(st.delta) < abs(st.naked_delta) and abs(st.vega) < abs(st.naked_vega)

        # journaled with the signal (the structure it was created with: same package)
        (kept,) = [x for x in rig.journal.signals() if x.signal_id == sig.signal_id]
        assert kept.structure is not None and kept.structure.combo == st.combo and kept.structure.side is st.side

        # sent by the engine as one package: the signal is ORDERED, the legs fill atomically and are booked
        if st.quantity < 1:
            pytest.skip(f"the package cannot be sent now: {st.blocked}")
        decision = engine.approve_structure(sig.signal_id)
        assert not isinstance(decision, str) and decision.approved, decision
        (ordered,) = [x for x in rig.journal.signals() if x.signal_id == sig.signal_id]
        assert ordered.state is SignalState.ORDERED and ordered.reason == decision.client_order_id
        await engine.settle_tasks()
        (order,) = rig.journal.combo_orders()
        assert order.purpose is OrderPurpose.SIGNAL and order.combo == st.combo and order.quantity == st.quantity
        assert await _until(rig, lambda: rig.journal.combo_states()[order.client_order_id].status
                            is OrderStatus.FILLED, steps=10, seconds=1.0), "the package did not fill"
        fills = rig.journal.fills_of(order.client_order_id)
        assert len({f.timestamp for f in fills}) == 1                          # one atomic fill
        for leg in st.combo.legs:
            assert engine.book.quantity(leg.contract.contract_id) == st.side.sign * leg.weight * order.quantity
    finally:
        await rig.close()


async def test_a_neutral_package_takes_out_the_options_delta_and_vega_with_two_otm_legs(tmp_path, warm_numba):
    """`signals.structures: neutral`: m of the signal's option against whole ratios of two liquid out-of-the-money
    options of its expiry, one strike below and one above; the package's net delta and vega, by hand from Black-76
    at the family's vol, keep at most a quarter of the naked option's; its edge is the signal's m times less each
    hedge leg's cost; sent by the engine, it fills as one package."""
    from workstation.strategy.structures import NEUTRAL_LEFT

    rig = await _rig(tmp_path, _settings(structures="neutral"))
    try:
        sig = await _until(rig, lambda: next((s for s in rig.engine.open_signals() if s.structure is not None
                                              and s.family in ("model", "relative")), None))
        assert sig is not None, "no signal with a neutral package in a simulated morning"
        engine, st = rig.engine, sig.structure
        snap, surface = engine.last_snapshot, engine.last_surface
        price, vol = _values(engine, sig.family)
        mult = sig.contract.multiplier
        assert st.combo.structure == "neutral" and st.combo.problems() == [] and len(st.combo.legs) == 3
        assert st.side is Side.BUY
        mine, *hedges = st.combo.legs
        assert mine.contract.contract_id == sig.contract.contract_id and mine.side is sig.side
        m = mine.ratio
        right = "C" if sig.contract.is_call else "P"             # the panel's label names every leg with its ratio
        assert st.label.startswith(f"neutral {sig.side.sign * m:+d} {sig.contract.strike:g} {right}".replace("-", "−"))
        r = snap.index_of(sig.contract.contract_id)
        rows = [snap.index_of(h.contract.contract_id) for h in hedges]
        strikes = sorted(snap.strike[h] for h in rows)
        assert strikes[0] < snap.strike[r] < strikes[1]                      # one below, one above
        for h in rows:
            assert snap.expiry[h] == snap.expiry[r]
            assert bool(snap.is_call[h]) == (snap.strike[h] > surface.forward[h])   # out of the money
        legs = {row: _black76_dollars(surface.forward[row], snap.strike[row], surface.maturity[row],
                                      surface.discount[row], vol[row], bool(snap.is_call[row]), mult)
                for row in [r, *rows]}
        signed = [(r, sig.side.sign * m)] + [(h, leg.side.sign * leg.ratio) for h, leg in zip(rows, hedges)]
        delta = sum(n * legs[row][0] for row, n in signed)
        vega = sum(n * legs[row][1] for row, n in signed)
        assert st.delta == pytest.approx(delta, rel=1e-9, abs=1e-6) and st.vega == pytest.approx(vega, rel=1e-9, abs=1e-6)
        naked_delta, naked_vega = sig.side.sign * m * legs[r][0], sig.side.sign * m * legs[r][1]
        assert (st.naked_delta, st.naked_vega) == pytest.approx((naked_delta, naked_vega), rel=1e-9)
        assert abs(delta) <= NEUTRAL_LEFT * abs(naked_delta) + 1e-9 and abs(vega) <= NEUTRAL_LEFT * abs(naked_vega) + 1e-9

        paper = engine.settings.execution.paper
        fee = (paper.commission_per_contract + paper.fees_per_contract) / mult
        cost, net = 0.0, sig.side.sign * m * (snap.ask[r] if sig.side is Side.BUY else snap.bid[r])
        for h, leg in zip(rows, hedges):
            k = leg.side.sign * leg.ratio
            mid = 0.5 * (snap.bid[h] + snap.ask[h])
            cost += leg.ratio * (0.5 * (snap.ask[h] - snap.bid[h]) + fee + leg.side.sign * (mid - price[h]))
            net += k * (snap.ask[h] if k > 0 else snap.bid[h])
        limit = math.ceil(net / COMBO_TICK - 1e-6) * COMBO_TICK
        assert st.limit_price == pytest.approx(limit, abs=1e-9) and st.hedge_cost == pytest.approx(cost, abs=1e-9)
        assert st.edge_points == pytest.approx(m * sig.edge_dollars / mult - cost - abs(limit - net), abs=1e-9)
        assert st.edge_points > 0

        if st.quantity < 1:
            pytest.skip(f"the package cannot be sent now: {st.blocked}")
        decision = engine.approve_structure(sig.signal_id)
        assert not isinstance(decision, str) and decision.approved, decision
        await engine.settle_tasks()
        (order,) = rig.journal.combo_orders()
        assert await _until(rig, lambda: rig.journal.combo_states()[order.client_order_id].status
                            is OrderStatus.FILLED, steps=10, seconds=1.0), "the package did not fill"
        assert len({f.timestamp for f in rig.journal.fills_of(order.client_order_id)}) == 1     # one atomic fill
        for leg in st.combo.legs:
            assert engine.book.quantity(leg.contract.contract_id) == leg.weight * order.quantity
    finally:
        await rig.close()


def _arbitrage_rig_settings(**risk):
    s = _settings(families=["arbitrage"], auto_execute=True, auto_execute_packages=True)
    for name, value in risk.items():
        setattr(s.risk, name, value)
    return s


async def _taken(rig: SimRig):
    """Step until auto-execution has sent arbitrage packages; (orders, the arbitrage seen by key)."""
    seen = {}

    def sent():
        seen.update(rig.engine.signal_desk.arbitrage)
        return rig.journal.combo_orders()
    orders = await _until(rig, sent, steps=40, seconds=15.0)
    if not orders:
        pytest.skip("no tradable static arbitrage in this simulated morning")
    return orders, seen


async def test_auto_execution_takes_arbitrage_packages_within_its_limits(tmp_path, warm_numba):
    rig = await _rig(tmp_path, _arbitrage_rig_settings())
    try:
        orders, seen = await _taken(rig)
        await rig.engine.settle_tasks()
        await rig.settle()
        packages = {a.combo: a for a in seen.values() if a.combo is not None}
        states = rig.journal.combo_states()
        cfg = rig.engine.settings.signals
        for order in orders:
            found = packages[order.combo]                                   # one of the scan's packages ...
            assert (order.side, order.limit_price, order.purpose) == (found.side, found.limit_price, OrderPurpose.SIGNAL)
            assert order.quantity == cfg.base_quantity <= cfg.auto_max_quantity
            assert abs(order.limit_price) * order.quantity * order.combo.multiplier <= cfg.auto_max_premium
            checks = rig.journal.risk_checks(order.client_order_id)
            assert checks and all(c.passed for c in checks)                 # ... every check on the package passed
            assert states[order.client_order_id].status is not OrderStatus.REJECTED
            assert order.client_order_id in rig.world.exchange.combos                  # at the exchange
        timeout = rig.engine.settings.execution.order_timeout_s
        for _ in range(int(timeout // 15.0) + 2):                           # each opportunity once ...
            await rig.step(15.0)
        combos = [o.combo for o in rig.journal.combo_orders()]
        assert len(combos) == len(set(combos))
        states = rig.journal.combo_states()                                # ... and none left working past the
        old = [o for o in orders if not states[o.client_order_id].status.is_working]    # order timeout
        assert len(old) == len(orders), [states[o.client_order_id] for o in orders]
        assert {states[o.client_order_id].status for o in orders} <= {OrderStatus.FILLED, OrderStatus.CANCELLED}
        assert rig.engine.state.value == "ACTIVE"
    finally:
        await rig.close()


async def test_auto_execution_refuses_an_arbitrage_package_a_limit_denies_and_sends_nothing(tmp_path, warm_numba):
    rig = await _rig(tmp_path, _arbitrage_rig_settings(max_order_premium=1.0))   # any package costs > $1
    try:
        orders, _ = await _taken(rig)
        await rig.engine.settle_tasks()
        await rig.settle()
        states = rig.journal.combo_states()
        for order in orders:
            assert states[order.client_order_id].status is OrderStatus.REJECTED
            assert "MAX_PREMIUM" in states[order.client_order_id].reason
            failed = [c for c in rig.journal.risk_checks(order.client_order_id) if not c.passed]
            assert [c.reason for c in failed] == ["MAX_PREMIUM"]
            assert rig.journal.fills_of(order.client_order_id) == []
            assert not rig.engine.desk.combos.owns(order.client_order_id)   # never placed: not working ...
            assert order.client_order_id not in rig.world.exchange.combos      # ... the exchange never saw it
        assert rig.engine.alert_counts.get("RISK_DENIED", 0) >= 1
        assert all(p.quantity == 0 for p in rig.engine.book.positions.values())
        before = len(rig.journal.combo_orders())
        await rig.step(15.0)                                                # a denial is not retried
        assert len({o.combo for o in rig.journal.combo_orders()}) == len(rig.journal.combo_orders()) >= before
    finally:
        await rig.close()


async def test_auto_execution_sends_a_signals_structure_instead_of_the_naked_option(tmp_path, warm_numba):
    rig = await _rig(tmp_path, _settings(families=["model", "relative"], auto_execute=True,
                                         auto_execute_packages=True))
    try:
        def packaged():
            ids = {o.client_order_id for o in rig.journal.combo_orders()}
            return [s for s in rig.journal.signals(state=SignalState.ORDERED) if s.reason in ids]
        found = await _until(rig, packaged)
        if not found:
            pytest.skip("no signal with a sendable structure in this simulated morning")
        await rig.engine.settle_tasks()
        orders = {o.client_order_id: o for o in rig.journal.combo_orders()}
        cfg = rig.engine.settings.signals
        for sig in found:
            order, st = orders[sig.reason], sig.structure
            assert (order.combo, order.side, order.limit_price) == (st.combo, st.side, st.limit_price)
            assert order.purpose is OrderPurpose.SIGNAL and 0 < order.quantity <= cfg.auto_max_quantity
            assert abs(order.limit_price) * order.quantity * order.combo.multiplier <= cfg.auto_max_premium
            assert all(c.passed for c in rig.journal.risk_checks(order.client_order_id))
            assert not [o for o in rig.journal.orders() if o.signal_id == sig.signal_id]   # not also naked
    finally:
        await rig.close()
