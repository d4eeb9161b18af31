"""Combo (BAG) fills accounted for on the IB path, over a real socket against the practice gateway: the soak's
comparison of the journal with the gateway's executions (a BAG's legs are its fills, the BAG's own execution is its
package: a 3-of-3 leg journal is complete, not "1 fill lost"), across a dropped connection the package filled
through; and no package left working at the broker when the workstation stops or the gateway cancels everything
(a package working after the workstation has gone fills with no one to journal it)."""
from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

pytest.importorskip("ib_async")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import soak  # noqa: E402

from workstation.domain import OrderStatus, Side  # noqa: E402
from workstation.domain.combos import COMBO_TICK, ComboOrder, butterfly, vertical  # noqa: E402
from workstation.risk.limits import RiskDecision  # noqa: E402
from workstation.storage import Journal  # noqa: E402

from gateway_support import HOST, decoder_errors, gateway, wait_for  # noqa: E402,F401
from test_ib_combos import Rig, calls_near_the_money, engine_on_a_gateway, marketable_buy  # noqa: E402


async def test_the_soak_counts_a_bags_legs_as_fills_and_its_own_execution_as_the_package(gateway, tmp_path,
                                                                                         decoder_errors,
                                                                                         monkeypatch):
    rig = Rig(gateway, tmp_path)
    monkeypatch.setattr(soak, "CLIENT_ID", rig.broker.settings.ib.client_id)
    try:
        snap = await rig.open()
        c0, c1, c2 = calls_near_the_money(snap, 3)
        fly = butterfly(c0, c1, c2)                  # fills while the connection is down: delivered by the reconcile
        gateway.drop_after_next_order()
        await rig.desk.send(ComboOrder("fly-away", fly, Side.BUY, 2, marketable_buy(snap, fly)))
        assert await wait_for(lambda: False in rig.links, 60)
        assert await wait_for(lambda: rig.broker.connected
                              and sum(f.quantity for f in rig.journal.fills_of("fly-away")) == 8, 60)
        v = vertical(c0, c1)                         # fills live
        await rig.desk.send(ComboOrder("v-live", v, Side.BUY, 1, marketable_buy(snap, v)))
        for coid in ("fly-away", "v-live"):
            assert await wait_for(lambda c=coid: rig.state(c).status is OrderStatus.FILLED, 60), coid
        assert await wait_for(lambda: sum(f.quantity for f in rig.journal.fills_of("v-live")) == 2, 60)
    finally:
        await rig.close()
    # at the gateway: one execution per leg and one BAG execution per package fill (a fill may be one package of
    # two when the quoted size is smaller)
    ours = [e for e in gateway.executions if e.order_ref in ("fly-away", "v-live")]
    bags, legs = (sum(1 for e in ours if e.contract.sec_type == kind) for kind in ("BAG", "OPT"))
    assert bags >= 2 and legs == 3 * sum(1 for e in ours if e.contract.sec_type == "BAG"
                                         and e.order_ref == "fly-away") + 2
    r = soak.compare(tmp_path, gateway)
    assert (r["fills_lost"], r["fills_doubled"], r["position_mismatches"]) == (0, 0, 0), r   # the journal is whole
    assert (r["executions"], r["bag_executions"], r["journal_fills"], r["package_mismatches"]) == (legs, bags, legs, 0), r

    # the comparison still sees a leg the journal lost (its fill, its position) and a package it never journaled
    leg = next(e for e in ours if e.contract.sec_type == "OPT" and e.order_ref == "v-live")
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    with db:
        db.execute("DELETE FROM fills WHERE fill_id = ?", (leg.exec_id,))
        db.execute("DELETE FROM combo_events WHERE client_order_id = 'fly-away' AND status = 'FILLED'")
    db.close()
    r = soak.compare(tmp_path, gateway)
    assert (r["fills_lost"], r["fills_doubled"], r["package_mismatches"]) == (1, 0, 1), r
    assert r["position_mismatches"] == 1, r


async def test_a_global_cancel_at_the_gateway_cancels_working_bag_orders_too(gateway, tmp_path, decoder_errors):
    rig = Rig(gateway, tmp_path)
    try:
        snap = await rig.open()
        c0, c1 = calls_near_the_money(snap, 2)
        await rig.desk.send(ComboOrder("v-rest", vertical(c0, c1), Side.BUY, 1, COMBO_TICK))    # far under the ask
        assert await wait_for(lambda: rig.state("v-rest").status is OrderStatus.SUBMITTED, 60)
        assert gateway.cancel_all_orders() == 1
        assert await wait_for(lambda: rig.state("v-rest").status is OrderStatus.CANCELLED, 60)
        (bag,) = gateway.combos.bags.values()
        assert bag.view.status == "Cancelled" and gateway.world.exchange.open_combos() == []
        assert "v-rest" not in rig.desk.working
    finally:
        await rig.close()


async def test_the_engine_cancels_its_working_combos_when_it_stops(tmp_path, warm_numba, decoder_errors):
    async with engine_on_a_gateway(tmp_path, on_exit="cancel") as (gw, engine):
        assert await wait_for(lambda: engine.last_snapshot is not None, 60)
        combos = engine.desk.combos
        combos.checker = lambda o: RiskDecision(o.client_order_id, True, ())     # its checks are not tested here
        c0, c1 = calls_near_the_money(engine.last_snapshot, 2)
        order = ComboOrder("v-rest", vertical(c0, c1), Side.BUY, 1, COMBO_TICK)   # far under the ask: it rests
        assert (await combos.send(order)).approved
        assert await wait_for(lambda: engine.journal.combo_states()["v-rest"].status is OrderStatus.SUBMITTED, 60)
        await engine.stop()
        (bag,) = gw.combos.bags.values()
        assert bag.view.status == "Cancelled"              # nothing left working to fill unseen
        assert gw.world.exchange.open_combos() == []
        journal = Journal(tmp_path / "journal.sqlite")       # the engine closed its own
        try:
            assert journal.combo_states()["v-rest"].status is OrderStatus.CANCELLED      # and journaled as such
        finally:
            journal.close()
