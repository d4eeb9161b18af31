"""Property: whatever the limits, their changes mid-run and the stream of signals, manual orders and bursts of
orders in one step, the engine's own orders never breach the risk limits (the real engine, simulator, paper
exchange and journal).

A limit lowered below what the book already holds follows the pre-trade "no worse than now" rule
(`workstation.risk.pre_trade`): an order that does not increase the measure it limits passes, so a position
above a lowered limit may stay (it may shrink) but never grow."""
from __future__ import annotations

import asyncio
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from engine_support import SimRig, fast_settings
from workstation import bus as topics
from workstation.domain import SecType
from workstation.risk.pre_trade import GREEK_TOLERANCE


@st.composite
def limits(draw) -> dict:
    """Limits that keep the rules across fields (order quantity <= position <= total contracts): the engine
    refuses to apply settings that break them, so a lowered limit must keep them too."""
    position = draw(st.integers(1, 6))
    return {
        "max_order_quantity": draw(st.integers(1, min(position, 4))),
        "max_position": position,
        "max_total_contracts": draw(st.integers(max(position, 2), 15)),
        "max_open_orders": draw(st.integers(1, 25)),                   # room for a burst to reach the Greeks
        "max_orders_per_minute": draw(st.integers(2, 40)),
        "max_gamma_dollars": draw(st.floats(1_000.0, 30_000.0)),
    }


manual = st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["BUY", "SELL"]), st.integers(1, 12)),
                  max_size=12)
# (step, share of the gamma limit kept, how much lower max_position goes)
changes = st.lists(st.tuples(st.integers(1, 9), st.floats(0.1, 1.0), st.integers(0, 3)), max_size=2)
# (step, orders in it, side, quantity): the 2026 incident, 20 buy-call orders near the money in 0.2 s
bursts = st.tuples(st.integers(0, 9), st.integers(10, 20), st.sampled_from(["BUY", "SELL"]), st.integers(1, 4))


def _worst_case(engine) -> tuple[dict[int, int], int]:
    """|position| of every contract if its working orders on the side they push filled, and the option
    contracts in total so (what a lowered limit must not trap: the caps "no worse than now" allows)."""
    per: dict[int, int] = {}
    for cid, p in engine.book.positions.items():
        per[cid] = p.quantity
    buys: dict[int, int] = {}
    sells: dict[int, int] = {}
    for r in engine.orders.working():
        cid = r.order.contract.contract_id
        side = buys if r.order.side.sign > 0 else sells
        side[cid] = side.get(cid, 0) + r.remaining
    worst = {cid: max(abs(per.get(cid, 0) + buys.get(cid, 0)), abs(per.get(cid, 0) - sells.get(cid, 0)))
             for cid in set(per) | set(buys) | set(sells)}
    options = {cid for cid, p in engine.book.positions.items() if p.contract.sec_type is SecType.OPTION}
    options |= {r.order.contract.contract_id for r in engine.orders.working()
                if r.order.contract.sec_type is SecType.OPTION}
    return worst, sum(worst.get(cid, 0) for cid in options)


class GammaAtApproval:
    """Checks every order the engine approves at the moment it is registered (before it is sent): gamma$ of the
    book with the order, and of the book with every working order and the order, within the limit in force or
    no worse than without the order (the pre-trade rule; GREEK_TOLERANCE is its only slack).

    Gamma is checked here and not at the end of a step: the market moves the Greeks of a book nobody traded
    (a limit breached by the market is the risk monitor's, RISK_LIMIT_BREACH), the engine's own orders may not."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.checked = 0
        self.breaches: list[tuple] = []         # collected: the bus keeps a subscriber's exception to itself
        engine.bus.subscribe(topics.ORDER, self.on_order)

    def gamma_of(self, record) -> float:
        market = self.engine.market_for(record.order.contract)
        return 0.0 if market is None else record.order.side.sign * record.remaining * market.greeks.gamma

    def on_order(self, order) -> None:
        record = self.engine.orders.records.get(getattr(order, "client_order_id", None))
        if record is None or record.risk_codes or not hasattr(order, "contract"):
            return                                                  # denied: never sent
        limit = self.engine.settings.risk.max_gamma_dollars
        book = self.engine.book.greeks.gamma
        working = sum(self.gamma_of(r) for r in self.engine.orders.working() if r is not record)
        mine = self.gamma_of(record)
        for before in (book, book + working):
            after = before + mine
            if not (abs(after) <= limit or abs(after) <= abs(before) + GREEK_TOLERANCE):
                self.breaches.append((order.client_order_id, before, after, limit))
        self.checked += 1


async def run(limit: dict, orders: list, lowered: list, burst: tuple, seed: int) -> None:
    s = fast_settings()
    s.market.simulator.seed = seed
    s.market.simulator.mispricing_rate = 0.3
    s.market.simulator.mispricing_max_spreads = 100.0
    s.signals.min_zscore, s.signals.min_edge_dollars = 1.0, 5.0
    s.execution.aggressiveness = 1.0
    s.hedging.band_delta = 100.0
    for key, value in limit.items():
        setattr(s.risk, key, value)
    s.signals.auto_max_quantity = min(s.signals.auto_max_quantity, limit["max_order_quantity"])
    with tempfile.TemporaryDirectory() as tmp:
        rig = await SimRig(tmp, s).open()
        engine = rig.engine
        engine.auto_execute = True
        gamma = GammaAtApproval(engine)
        caps: dict[int, int] = {}                   # what a lowered max_position may not trap
        gross_cap = 0
        quantity_limits = [(engine.clock(), limit["max_order_quantity"])]    # (from, max_order_quantity)

        def in_force(at) -> int:
            return [q for since, q in quantity_limits if since <= at][-1]
        try:
            for step in range(10):
                for at, keep, lower in lowered:
                    if at == step:
                        risk = engine.settings.risk
                        new = engine.settings.model_copy(deep=True)
                        new.risk.max_gamma_dollars = max(risk.max_gamma_dollars * keep, 1.0)
                        new.risk.max_position = max(risk.max_position - lower, 1)
                        new.risk.max_order_quantity = min(risk.max_order_quantity, new.risk.max_position)
                        new.signals.auto_max_quantity = min(new.signals.auto_max_quantity,
                                                            new.risk.max_order_quantity)
                        worst, gross = _worst_case(engine)
                        caps = {cid: max(q, caps.get(cid, 0)) for cid, q in worst.items()}
                        gross_cap = max(gross, gross_cap)
                        assert engine.apply_settings(new, source="property test") == []
                        quantity_limits.append((engine.clock(), new.risk.max_order_quantity))
                await rig.step(15.0)
                snap = engine.chain()
                for pick, side, qty in orders[step::10]:
                    row = pick % len(snap)
                    engine.submit_order(int(snap.contract_id[row]), side, qty, None)
                if step == burst[0]:                # one step, many orders: weeks-out contracts nearest the money
                    weeks = np.flatnonzero((snap.maturity * 365 > 7) & (snap.maturity * 365 < 60))
                    near = weeks[np.argsort(np.abs(snap.strike[weeks] / snap.underlying_price - 1.0))]
                    for row in near[:burst[1]]:
                        engine.submit_order(int(snap.contract_id[row]), burst[2], burst[3], None)
                await rig.settle()
                risk = engine.settings.risk
                book = engine.book
                options = [p for p in book.positions.values() if p.contract.sec_type is SecType.OPTION]
                assert all(abs(p.quantity) <= max(risk.max_position, caps.get(cid, 0))
                           for cid, p in book.positions.items())
                assert sum(abs(p.quantity) for p in options) <= max(risk.max_total_contracts, gross_cap)
                assert len(engine.orders.working()) <= risk.max_open_orders
                sent = [r for r in engine.orders.records.values() if not r.risk_codes]
                assert all(r.order.quantity <= in_force(r.order.created_at) for r in sent)
                assert not gamma.breaches, gamma.breaches
                times = sorted(r.order.created_at for r in sent)
                window = [t for t in times if (times[-1] - t).total_seconds() < 60] if times else []
                assert len(window) <= risk.max_orders_per_minute
            assert gamma.checked == len([r for r in engine.orders.records.values() if not r.risk_codes])
        finally:
            await rig.close()


@hyp_settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(limit=limits(), orders=manual, lowered=changes, burst=bursts, seed=st.integers(1, 50))
def test_limits_hold_for_any_limits_and_order_stream(warm_numba, limit, orders, lowered, burst, seed):
    asyncio.run(run(limit, orders, lowered, burst, seed))
