"""Property: whatever the limits and whatever the stream of signals and manual orders, the engine's book and
working orders never breach the risk limits (the real engine, simulator, paper exchange and journal)."""
from __future__ import annotations

import asyncio
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from engine_support import SimRig, fast_settings
from workstation.domain import SecType

limits = st.fixed_dictionaries({
    "max_order_quantity": st.integers(1, 4),
    "max_position": st.integers(1, 6),
    "max_total_contracts": st.integers(2, 15),
    "max_open_orders": st.integers(1, 5),
    "max_orders_per_minute": st.integers(2, 30),
    "max_gamma_dollars": st.floats(1_000.0, 30_000.0),
})
manual = st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["BUY", "SELL"]), st.integers(1, 12)),
                  max_size=12)


async def run(limit: dict, orders: list, seed: int) -> None:
    s = fast_settings()
    s.market.simulator.seed = seed
    s.market.simulator.mispricing_rate = 0.3
    s.signals.min_zscore, s.signals.min_edge_dollars = 1.0, 5.0
    s.execution.aggressiveness = 1.0
    s.hedging.band_delta = 100.0
    for key, value in limit.items():
        setattr(s.risk, key, value)
    with tempfile.TemporaryDirectory() as tmp:
        rig = await SimRig(tmp, s).open()
        rig.engine.auto_execute = True
        try:
            for step in range(10):
                await rig.step(15.0)
                snap = rig.engine.chain()
                for pick, side, qty in orders[step::10]:
                    row = pick % len(snap)
                    rig.engine.submit_order(int(snap.contract_id[row]), side, qty, None)
                await rig.settle()
                book = rig.engine.book
                options = [p for p in book.positions.values() if p.contract.sec_type is SecType.OPTION]
                assert all(abs(p.quantity) <= limit["max_position"] for p in book.positions.values())
                assert sum(abs(p.quantity) for p in options) <= limit["max_total_contracts"]
                assert len(rig.engine.orders.working()) <= limit["max_open_orders"]
                sent = [r for r in rig.engine.orders.records.values() if not r.risk_codes]
                assert all(r.order.quantity <= limit["max_order_quantity"] for r in sent)
                times = sorted(r.order.created_at for r in sent)
                window = [t for t in times if (times[-1] - t).total_seconds() < 60] if times else []
                assert len(window) <= limit["max_orders_per_minute"]
                # gamma$ of the book with the working orders as if filled: within the limit (the market's own
                # drift between two 15-second steps aside: a fifth of the limit at most); the 2026 incident
                # reached 1.6x the limit through orders that each saw gamma$ 0
                rig.engine.marking.position_greeks(rig.engine.last_surface, rig.engine.last_model)
                ctx = rig.engine.risk_context(None)
                gamma = abs(ctx.portfolio_greeks.gamma + ctx.pending_greeks.gamma)
                assert gamma <= 1.2 * limit["max_gamma_dollars"], (gamma, limit["max_gamma_dollars"])
        finally:
            await rig.close()


@hyp_settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(limit=limits, orders=manual, seed=st.integers(1, 50))
def test_limits_hold_for_any_limits_and_order_stream(warm_numba, limit, orders, seed):
    asyncio.run(run(limit, orders, seed))
