"""The Prometheus endpoint serves the expected series, fed by explicit calls and by the bus."""
from __future__ import annotations

import urllib.request
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from workstation import bus as topics
from workstation.alerts import AlertRouter, Metrics
from workstation.bus import EventBus
from workstation.domain import OrderEvent, OrderStatus, Severity, TradingState


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        return response.read().decode()


def value(text: str, series: str) -> float:
    """The value of one exact series line, e.g. 'heston_fills_total'."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} not in scrape:\n{text}")


@pytest.fixture
def metrics():
    m = Metrics()
    yield m
    m.stop()


def test_explicit_methods_are_served_over_http(metrics):
    port = metrics.start(0)
    assert port > 0 and metrics._server.server_address[0] == "127.0.0.1"
    metrics.observe_snapshot(datetime.now(timezone.utc) - timedelta(seconds=3))
    metrics.observe_fit(120.0, 0.8)
    metrics.observe_fit(2500.0, 9.0, ok=False)
    metrics.inc_signals("NEW")
    metrics.inc_orders("SUBMITTED")
    metrics.inc_orders("FILLED")
    metrics.inc_fills(3)
    metrics.inc_rejects("risk")
    metrics.set_pnl(realised=1500.0, unrealised=-250.0)
    metrics.set_greeks(delta=12.5, gamma=-3.0, vega=840.0, theta=-120.0)
    metrics.set_trading_state("REDUCING")
    metrics.set_loop_lag(40.0)
    metrics.set_loop_lag(10.0)
    text = scrape(port)
    assert 3 <= value(text, "heston_snapshot_age_seconds") < 10
    assert value(text, "heston_fit_seconds_count") == 2
    assert value(text, 'heston_fit_seconds_bucket{le="0.25"}') == 1
    assert value(text, "heston_fit_rmse_vol") == 0.8                    # a failed fit does not overwrite
    assert value(text, 'heston_fits_total{result="failed"}') == 1
    assert value(text, 'heston_signals_total{state="NEW"}') == 1
    assert value(text, 'heston_orders_total{state="FILLED"}') == 1
    assert value(text, "heston_fills_total") == 1 and value(text, "heston_filled_contracts_total") == 3
    assert value(text, 'heston_rejects_total{by="risk"}') == 1
    assert value(text, 'heston_pnl_dollars{kind="total"}') == 1250.0
    assert value(text, 'heston_portfolio_greek{greek="vega"}') == 840.0
    assert value(text, 'heston_trading_state{heston_trading_state="REDUCING"}') == 1
    assert value(text, 'heston_trading_state{heston_trading_state="ACTIVE"}') == 0
    assert value(text, "heston_loop_lag_seconds") == 0.01 and value(text, "heston_loop_lag_max_seconds") == 0.04


def test_bus_feeding_from_hand_made_payloads(metrics):
    """The bus topics drive the series; odd payloads are skipped, never raised. (The BOOK and RISK payloads are
    checked on the real engine below: a hand-made stand-in once hid that the P&L was never read.)"""
    bus = EventBus()
    metrics.attach(bus)
    router = AlertRouter(bus)
    port = metrics.start(0)
    now = datetime.now(timezone.utc)
    for cycle in range(3):
        bus.publish(topics.SNAPSHOT, SimpleNamespace(timestamp=now))
        bus.publish(topics.FIT, SimpleNamespace(elapsed_ms=80.0 + cycle, rmse_iv=0.6, ok=True))
    bus.publish(topics.FIT, {"duration_s": 3.0, "ok": False})
    bus.publish(topics.SIGNAL, SimpleNamespace(state=SimpleNamespace(value="APPROVED")))
    bus.publish(topics.ORDER_EVENT, OrderEvent("o-1", OrderStatus.SUBMITTED, now))
    bus.publish(topics.ORDER_EVENT, OrderEvent("o-2", OrderStatus.REJECTED, now, reason="margin"))
    bus.publish(topics.RISK_DECISION, SimpleNamespace(approved=False, reason="max_position"))
    bus.publish(topics.FILL, SimpleNamespace(quantity=-2))
    bus.publish(topics.BOOK, {"positions": []})                      # no "pnl": skipped, never raised
    bus.publish(topics.TRADING_STATE, TradingState.HALTED)
    bus.publish(topics.FIT, "nonsense")                               # skipped, never raised
    router.raise_alert("DATA_STALE", Severity.WARNING, "feed", "old")
    text = scrape(port)
    assert value(text, "heston_snapshots_total") == 3 and value(text, "heston_snapshot_age_seconds") < 5
    assert value(text, "heston_fit_seconds_count") == 4 and value(text, "heston_fit_rmse_vol") == 0.6
    assert value(text, 'heston_signals_total{state="APPROVED"}') == 1
    assert value(text, 'heston_orders_total{state="REJECTED"}') == 1
    assert value(text, 'heston_rejects_total{by="broker"}') == 1 and value(text, 'heston_rejects_total{by="risk"}') == 1
    assert value(text, "heston_filled_contracts_total") == 2
    assert "heston_pnl_dollars{" not in text
    assert value(text, 'heston_trading_state{heston_trading_state="HALTED"}') == 1
    assert value(text, 'heston_alerts_total{code="DATA_STALE",severity="WARNING"}') == 1
    router.stop()


def test_two_instances_have_separate_registries_and_stop_frees_the_port():
    a, b = Metrics(), Metrics()
    try:
        pa, pb = a.start(0), b.start(0)
        a.inc_fills(1)
        assert value(scrape(pa), "heston_fills_total") == 1 and value(scrape(pb), "heston_fills_total") == 0
        assert "heston_snapshot_age_seconds NaN" in scrape(pb)           # no snapshot yet
    finally:
        a.stop()
        b.stop()
    with pytest.raises(OSError):
        scrape(pa)


# ------------------------------------------------------------------------------------ on the real engine
async def test_series_equal_the_real_engines_book_after_a_fill(tmp_path, metrics, warm_numba):
    """The engine's own payloads (BookSummary with its P&L, the RiskReport, FitEvent, Fill)
    drive the series: after a real fill every P&L kind, the Greeks and the counters equal the engine's values."""
    from datetime import date

    import numpy as np

    from engine_support import SimRig, fast_settings, trade_until_held

    settings = fast_settings()
    settings.market.simulator.start_date = date(2025, 10, 1)
    settings.execution.aggressiveness = 1.0                # take the far side: fills on the next match
    settings.hedging.enabled = False
    rig = await SimRig(tmp_path, settings).open()
    metrics.attach(rig.engine.bus)
    port = metrics.start(0)
    try:
        await rig.step()
        snap, surface = rig.engine.chain(), rig.engine.last_surface
        row = int(np.nanargmin(np.where(surface.usable & (snap.maturity > 14 / 365), np.abs(snap.mid - 20.0),
                                        np.nan)))
        cid = int(snap.contract_id[row])
        await trade_until_held(rig, cid, "BUY", 2, None, holding=2)
        for _ in range(2):                                     # the mark moves: unrealised P&L is not zero
            await rig.step()
        await rig.engine.settle_tasks()                        # the monitor's report is published
        text = scrape(port)
        pnl = rig.engine.book_summary().to_dict()["pnl"]
        assert pnl["unrealized"] != 0.0 and pnl["commissions"] > 0
        for kind, key in (("realised", "realized"), ("unrealised", "unrealized"), ("commissions", "commissions"),
                          ("total", "total"), ("day", "day")):
            assert value(text, f'heston_pnl_dollars{{kind="{kind}"}}') == pnl[key], kind
        assert value(text, 'heston_pnl_dollars{kind="total"}') == pytest.approx(
            pnl["realized"] + pnl["unrealized"] - pnl["commissions"], abs=1e-9)
        greeks = rig.engine.last_risk.greeks.as_dict()
        for g in ("delta", "gamma", "vega", "theta"):
            assert value(text, f'heston_portfolio_greek{{greek="{g}"}}') == greeks[g], g
        assert value(text, "heston_fills_total") == rig.engine.book.fill_count >= 1
        assert value(text, "heston_filled_contracts_total") == 2
        assert value(text, "heston_snapshots_total") == rig.engine.snapshots
        accepted = sum(f.accepted for f in rig.engine.fit_history)
        assert value(text, 'heston_fits_total{result="ok"}') == accepted == len(rig.engine.fit_rmse)
        assert value(text, "heston_fit_rmse_vol") == rig.engine.fit_rmse[-1]
        assert value(text, 'heston_orders_total{state="FILLED"}') == 1
        state = rig.engine.state.value
        assert value(text, f'heston_trading_state{{heston_trading_state="{state}"}}') == 1

        # close one of the two: realised P&L, from the raw fills by hand, in the series as in the book
        now = rig.engine.chain()
        bid = float(now.bid[now.index_of(cid)])            # a marketable sell (our own limit never sells below model)
        await trade_until_held(rig, cid, "SELL", 1, bid, holding=1)
        await rig.engine.settle_tasks()
        fills = [f for f in rig.journal.fills() if f.contract.contract_id == cid]
        bought = [f for f in fills if f.side.value == "BUY"]
        [sold] = [f for f in fills if f.side.value == "SELL"]
        cost = sum(f.price * f.quantity for f in bought) / sum(f.quantity for f in bought)
        realised_by_hand = (sold.price - cost) * 1 * 100
        text = scrape(port)
        pnl = rig.engine.book_summary().to_dict()["pnl"]
        assert realised_by_hand != 0.0
        assert value(text, 'heston_pnl_dollars{kind="realised"}') == pnl["realized"] == pytest.approx(
            realised_by_hand, abs=1e-6)
        for kind, key in (("unrealised", "unrealized"), ("commissions", "commissions"), ("total", "total")):
            assert value(text, f'heston_pnl_dollars{{kind="{kind}"}}') == pnl[key], kind
        assert value(text, "heston_filled_contracts_total") == 3
    finally:
        await rig.close()
