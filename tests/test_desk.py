"""The trader's desk tells the truth (issue 19), on the real engine, simulator, paper broker and journal with a
manual clock (`engine_support.SimRig`), the window offscreen. Risk numbers are checked against Black-76 written
out here by hand at the market's own vol; the stress grid's labels against the shock vector itself."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from test_ui_panels import Desk, app, desk, desk_settings, store  # noqa: E402,F401  (shared fixtures)

from workstation.reports import RiskReport  # noqa: E402
from workstation.risk import monitor  # noqa: E402


# ------------------------------------------------------------------------------ Black-76 by hand
def _ncdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black76(f: float, k: float, t: float, df: float, vol: float, call: bool) -> float:
    s = vol * math.sqrt(t)
    d1 = math.log(f / k) / s + 0.5 * s
    d2 = d1 - s
    return df * (f * _ncdf(d1) - k * _ncdf(d2)) if call else df * (k * _ncdf(-d2) - f * _ncdf(-d1))


def hand_dollar_greeks(f, k, t, df, vol, call, size) -> dict:
    """delta$ per 1 %, gamma$ per 1 %, vega$ per vol point by central finite differences of black76."""
    h = 1e-4 * f
    p0, up, dn = black76(f, k, t, df, vol, call), black76(f + h, k, t, df, vol, call), black76(f - h, k, t, df, vol, call)
    delta = (up - dn) / (2 * h)
    gamma = (up - 2 * p0 + dn) / h**2
    vega = (black76(f, k, t, df, vol + 1e-4, call) - black76(f, k, t, df, vol - 1e-4, call)) / 2e-4 * 0.01
    return {"delta": delta * f * 0.01 * size, "gamma": gamma * (0.01 * f) ** 2 * size, "vega": vega * size}


# --------------------------------------------------------------------------------------- helpers
def _put_position(desk: Desk, quantity: int = 2):
    """BUY `quantity` of an out-of-the-money put about a month out, at the ask (fills), through the engine."""
    engine = desk.engine
    desk.until(lambda: engine.last_model is not None, what="a fit")
    snap, surface = engine.last_snapshot, engine.last_surface
    days = (snap.expiry - np.datetime64(snap.timestamp.date(), "D")).astype(int)
    rows = np.flatnonzero(~snap.is_call & (days > 10) & (snap.strike < 0.97 * snap.underlying_price)
                          & np.isfinite(surface.iv_mid) & (snap.bid > 1.0))
    row = int(rows[np.argmax(snap.strike[rows])])
    pv = engine.submit_order(int(snap.contract_id[row]), "BUY", quantity, float(snap.ask[row]) + 0.5)
    assert pv.sent, pv.message
    cid = int(snap.contract_id[row])
    desk.until(lambda: engine.book.quantity(cid) == quantity, what="fill")
    return cid


def _revalued_now(desk: Desk, cid: int) -> RiskReport:
    """Step until the risk report is of the current surface and the book holding `cid`."""
    engine = desk.engine

    def ready():
        r = engine.last_risk
        return (r is not None and engine.supervisor.revalued is not None and engine.supervisor.revalued.book
                and any(c == cid for c, _ in engine.supervisor.revalued.book)
                and engine.supervisor.revalued.at == engine.last_surface.snapshot.timestamp
                and r.at == engine.last_surface.snapshot.timestamp)
    desk.until(ready, what="a revaluation of the book on this snapshot")
    desk.window.flush()
    return engine.last_risk


# ------------------------------------------------------------------------------------------ tests
def test_stress_grid_labels_are_the_exact_shocks_with_units(desk):
    w = desk.window
    desk.until(lambda: w.risk.stress.rowCount() > 0, what="stress grid")
    rows = [w.risk.stress.verticalHeaderItem(i).text() for i in range(w.risk.stress.rowCount())]
    cols = [w.risk.stress.horizontalHeaderItem(j).text() for j in range(w.risk.stress.columnCount())]

    def number(label: str, prefix: str, unit: str) -> float:
        assert label.startswith(prefix) and label.endswith(unit), label
        return float(label[len(prefix):-len(unit)].replace("−", "-"))
    assert [number(r, "", " %") / 100 for r in rows] == pytest.approx(list(monitor.SPOT_SHOCKS), abs=1e-12)
    assert [number(c, "", " pts") for c in cols] == pytest.approx(list(monitor.VOL_SHOCKS), abs=1e-12)
    assert "−7.5 %" in rows and "+2.5 %" in rows                    # not rounded to −8 % / +2 %
    assert "$" in w.risk.stress.item(0, 0).toolTip() and "vol points" in w.risk.stress.item(0, 0).toolTip()
    assert w.risk.bar_labels["delta"].text() == "Delta $/1%" and "1 % move" in w.risk.bars["delta"].toolTip()
    assert w.risk.bar_labels["vega"].text() == "Vega $/vol pt" and w.risk.bar_labels["theta"].text() == "Theta $/day"
    assert "per index point" in w.risk.hedge_band.text()


def test_dollar_zero_is_never_signed():
    from workstation.ui import theme
    assert theme.fmt(-0.3, 0, dollars=True) == "$0"
    assert theme.fmt(-0.001, 2) == "0.00"
    assert theme.fmt(-12.0, 0, dollars=True) == "-$12"


def test_panel_greeks_and_a_stress_cell_are_black76_at_market_vol(desk):
    """One path: the Greek bars are Black-76 Greeks at each option's market mid IV (within 1 %), the stress cell
    a Black-76 full repricing at the shocked forward and vol; the header names the convention."""
    w, engine = desk.window, desk.engine
    assert engine.settings.risk.greeks_from == "market"
    cid = _put_position(desk, 2)
    risk = _revalued_now(desk, cid)
    surface = engine.last_surface
    snap = surface.snapshot
    row = snap.index_of(cid)
    f, k, t, df = (float(surface.forward[row]), float(snap.strike[row]), float(surface.maturity[row]),
                   float(surface.discount[row]))
    vol = float(surface.iv_mid[row])
    size = 2 * snap.contract(row).multiplier
    hand = hand_dollar_greeks(f, k, t, df, vol, False, size)
    for g in ("delta", "gamma", "vega"):
        assert w.risk.bars[g].number == pytest.approx(hand[g], rel=0.01), g
        assert engine.book.greeks.as_dict()[g] == pytest.approx(hand[g], rel=0.01), g      # position Greeks too
    assert "market vol" in w.risk.convention.text()
    i, j = 2, 3                                             # forward −5 %, vol +5 points
    s, dv = monitor.SPOT_SHOCKS[i], monitor.VOL_SHOCKS[j]
    cell = (black76(f * (1 + s), k, t, df, vol + dv / 100, False) - black76(f, k, t, df, vol, False)) * size
    assert risk.stress.pnl[i][j] == pytest.approx(cell, rel=1e-6)
    assert w.risk.stress.item(i, j).text() == f"{cell / 1000:+,.1f}k"


def test_model_convention_greeks_stress_and_what_if_agree_with_the_family_model(desk):
    """`risk.greeks_from: model`, switched live as the Settings dialog does: the Greek bars, the book's position
    Greeks and the ticket's what-if are the fitted model's Greeks (workstation.pricing.family_greeks at the
    position's forward, its delta and gamma checked again by bumping the model price), and a stress cell is
    Black-76 at the model price's implied vol, shocked; the header names the model."""
    from workstation import pricing

    w, engine = desk.window, desk.engine
    new = engine.settings.model_copy(deep=True)
    new.risk.greeks_from = "model"
    assert engine.apply_settings(new) == []
    cid = _put_position(desk, 2)
    risk = _revalued_now(desk, cid)
    assert risk.greeks_from == "model"
    surface, params = engine.last_surface, engine.last_model.params
    snap = surface.snapshot
    row = snap.index_of(cid)
    f, k, t, df = (float(surface.forward[row]), float(snap.strike[row]), float(surface.maturity[row]),
                   float(surface.discount[row]))
    size = 2 * snap.contract(row).multiplier

    def model_price(fwd: float) -> float:
        return float(pricing.family_price(params, np.array([fwd]), np.array([k]), np.array([t]), np.array([df]),
                                          np.array([False]))[0])
    g = pricing.family_greeks(params, np.array([f]), np.array([k]), np.array([t]), np.array([df]), np.array([False]))
    unit = {"delta": float(g.delta[0]) * f * 0.01, "gamma": float(g.gamma[0]) * (0.01 * f) ** 2,
            "vega": float(g.vega[0])}
    h = 1e-3 * f                                                     # the model's own Greeks, bumped by hand
    up, mid, dn = model_price(f + h), model_price(f), model_price(f - h)
    assert unit["delta"] == pytest.approx((up - dn) / (2 * h) * f * 0.01, rel=0.01)
    assert unit["gamma"] == pytest.approx((up - 2 * mid + dn) / h**2 * (0.01 * f) ** 2, rel=0.02)
    market = hand_dollar_greeks(f, k, t, df, float(surface.iv_mid[row]), False, size)
    assert abs(unit["vega"] * size - market["vega"]) > 1e-6 * abs(market["vega"])   # not the market convention
    shown = {name: (w.risk.bars[name].number, engine.book.greeks.as_dict()[name], getattr(risk.greeks, name))
             for name in ("delta", "gamma", "vega")}
    for name, (bar, book, report) in shown.items():
        why = f"{name}: bar, book, report {shown[name]} vs {unit[name] * size} ({params}, fit {engine.last_fit})"
        assert bar == pytest.approx(unit[name] * size, rel=1e-6), why
        assert book == pytest.approx(unit[name] * size, rel=1e-6), why
        assert report == pytest.approx(unit[name] * size, rel=1e-6), why
    assert "model" in w.risk.convention.text()
    what_if = engine.preview_order(cid, "BUY", 1, float(snap.ask[row])).decision.what_if   # one more contract
    for name in ("delta", "gamma", "vega"):
        assert getattr(what_if, name) == pytest.approx(unit[name] * (size + size / 2), rel=1e-6), name
    vol = float(pricing.implied_vol(np.array([mid]), np.array([f]), np.array([k]), np.array([t]), np.array([df]),
                                    np.array([False]))[0])
    i, j = 2, 3                                             # forward −5 %, vol +5 points
    s, dv = monitor.SPOT_SHOCKS[i], monitor.VOL_SHOCKS[j]
    cell = (black76(f * (1 + s), k, t, df, vol + dv / 100, False) - black76(f, k, t, df, vol, False)) * size
    assert risk.stress.pnl[i][j] == pytest.approx(cell, rel=1e-6)
    assert w.risk.stress.item(i, j).text() == f"{cell / 1000:+,.1f}k"

# ------------------------------------------------------------------------------- live previews
def _ticket_on_a_contract(desk: Desk) -> None:
    w = desk.window
    desk.until(lambda: w.orders.contract_id() is not None, what="ticket contract")
    w.orders.quantity.setValue(1)
    w.orders.preview()
    desk.wait(lambda: not w.orders._preview_timer.isActive() and w.orders.preview_view.verdict.text(),
              what="a first verdict")


def test_halt_while_the_ticket_is_open_refreshes_its_preview_without_an_edit(desk, monkeypatch):
    from PySide6.QtWidgets import QMessageBox
    w, engine = desk.window, desk.engine
    _ticket_on_a_contract(desk)
    desk.step()                                                       # a cycle re-runs the checks as well
    assert "TRADING_HALTED" not in w.orders.preview_view.verdict.text()
    engine.kill_switch()                                              # no field touched after this
    desk.wait(lambda: "TRADING_HALTED" in w.orders.preview_view.verdict.text(), what="halted in the preview")
    assert not w.orders.send.isEnabled()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    w.risk.resume_trading()
    desk.wait(lambda: "TRADING_HALTED" not in w.orders.preview_view.verdict.text(), what="resumed in the preview")


def test_a_duplicate_order_verdict_clears_by_itself_once_its_window_passes(desk):
    """Sent from the ticket, the same order again is a duplicate (DUPLICATE_ORDER, Send disabled) — but only for
    risk.duplicate_window_s of market time: the next cycle's refresh clears it, no field edited."""
    w, engine = desk.window, desk.engine
    _ticket_on_a_contract(desk)
    assert engine.settings.risk.duplicate_window_s < 5.0                # one market step (5 s) passes it
    w.orders.submit()
    desk.wait(lambda: any(r.order.contract.contract_id == w.orders.contract_id()
                          for r in engine.order_records()), what="the ticket's order sent")
    w.orders.preview()                                                # the trader looks again at once
    desk.wait(lambda: "DUPLICATE_ORDER" in w.orders.preview_view.verdict.text(), what="duplicate in the preview")
    assert not w.orders.send.isEnabled()
    desk.step()                                                       # no field touched after this
    desk.wait(lambda: "DUPLICATE_ORDER" not in w.orders.preview_view.verdict.text(), what="duplicate cleared")


def test_edge_is_per_order_and_an_off_tick_limit_is_rounded(desk):
    w, engine = desk.window, desk.engine
    _ticket_on_a_contract(desk)
    w.orders.quantity.setValue(3)
    w.orders.limit.setValue(150.73)
    w.orders.preview()
    assert w.orders.limit.value() == pytest.approx(150.70)            # the tick above $3 is 0.10
    pv = w.orders.last_preview
    order = pv.order
    assert order.limit_price == pytest.approx(150.70)
    per_order = (pv.model_price - 150.70) * order.side.sign * order.contract.multiplier * 3
    assert pv.edge_dollars == pytest.approx(per_order)
    assert "(3 × 100)" in w.orders.preview_view.labels["Edge $ per order"].text()


def _tradable_signal(desk: Desk, min_quantity: int = 1):
    engine = desk.engine
    found = []

    def ready():
        for s in engine.signals.new_signals():
            if s.quantity >= min_quantity and not s.blocked and s.signal_id in desk.window.mispricings.model.keys():
                found.append(s)
                return True
        return False
    desk.until(ready, steps=80, what=f"a sendable signal of {min_quantity}+ contracts")
    return found[0]


def test_signal_sized_against_the_premium_limit_and_greyed_when_nothing_fits(desk):
    w, engine = desk.window, desk.engine
    s = engine.settings.model_copy(deep=True)
    s.signals.base_quantity, s.signals.max_quantity = 5, 10
    assert engine.apply_settings(s, source="test") == []
    default_premium = s.risk.max_order_premium
    for _ in range(10):                       # signals come and go with the market: retry on one that stays
        s = engine.settings.model_copy(deep=True)
        s.risk.max_order_premium = default_premium
        assert engine.apply_settings(s, source="test") == []
        sig = _tradable_signal(desk, 3)
        one = engine.preview_signal(sig.signal_id, 1)
        lot = one.order.limit_price * sig.contract.multiplier           # premium of one contract
        s = engine.settings.model_copy(deep=True)
        s.risk.max_order_premium = 2.5 * lot                           # two fit, three do not
        s.signals.auto_max_premium = min(s.signals.auto_max_premium, s.risk.max_order_premium)
        assert engine.apply_settings(s, source="test") == []
        desk.step()
        now = engine.signals.get(sig.signal_id)
        if now is not None:
            break
    assert now is not None and now.quantity == 2 and now.blocked == ""
    assert not engine.preview_signal(sig.signal_id, 3, capped=False).approved
    assert "MAX_PREMIUM" in {c.value for c in engine.preview_signal(sig.signal_id, 3, capped=False).decision.reasons}
    assert engine.preview_signal(sig.signal_id).approved and engine.preview_signal(sig.signal_id).order.quantity == 2
    desk.window.flush()
    row = w.mispricings.model.keys().index(sig.signal_id)
    assert w.mispricings.model.record(row).quantity == 2
    # the approval dialog: a quantity field up to the signal's size, checks re-run on a change
    assert w.mispricings.select_signal(sig.signal_id)
    w.mispricings.approve_selected()
    dialog = w.mispricings.what_if
    assert dialog is not None and dialog.quantity.maximum() == 2 and dialog.quantity.value() == 2
    dialog.quantity.setValue(1)
    assert "SIGNAL" in dialog.view.labels["Order"].text().upper() and " 1 " in dialog.view.labels["Order"].text()
    assert dialog.countdown.text().endswith("(market time)")
    dialog.reject()
    # a premium limit below one contract: no size fits, the signal stays greyed with the reason
    s = engine.settings.model_copy(deep=True)
    s.risk.max_order_premium = 0.5 * lot
    s.signals.auto_max_premium = s.risk.max_order_premium
    assert engine.apply_settings(s, source="test") == []
    desk.step()
    now = engine.signals.get(sig.signal_id)
    if now is not None:                                                # (it may have expired meanwhile)
        assert now.quantity == 0 and "MAX_PREMIUM" in now.blocked
        desk.window.flush()
        row = w.mispricings.model.keys().index(sig.signal_id)
        blocked = next(i for i, c in enumerate(w.mispricings.model.columns) if c.header == "Can't send")
        assert "MAX_PREMIUM" in w.mispricings.model.data(w.mispricings.model.index(row, blocked))
    assert all(s.quantity == 0 or not s.blocked for s in engine.signals.new_signals())


def test_an_expiring_signal_closes_its_dialog_and_the_selection_stays_on_the_contract(desk):
    w, engine = desk.window, desk.engine
    sig = _tradable_signal(desk)
    s = engine.settings.model_copy(deep=True)
    s.signals.max_age_s = (engine.clock() - sig.created_at).total_seconds() + 12     # expires in ~12 s
    assert engine.apply_settings(s, source="test") == []
    assert w.mispricings.select_signal(sig.signal_id)
    w.mispricings.approve_selected()
    dialog = w.mispricings.what_if
    assert dialog is not None and dialog.isVisible()
    assert dialog.countdown.text().startswith("0:1")                  # about 12 s left, market time
    desk.until(lambda: engine.signals.get(sig.signal_id) is None, steps=6, what="expiry")
    assert w.mispricings.what_if is None and not dialog.isVisible()
    assert "nothing was sent" in w.mispricings.message.text()
    selected = w.mispricings.current_signal()
    assert selected is None or selected.contract.contract_id == sig.contract.contract_id


# -------------------------------------------------------------------------------- P&L explain
def test_pnl_explain_has_new_trades_and_fees_and_sums_to_day_pnl(desk):
    w, engine = desk.window, desk.engine
    desk.until(lambda: engine.last_model is not None, what="a fit")
    snap = engine.last_snapshot
    cid = _put_position(desk, 2)
    fills = [f for f in engine.journal.fills() if f.contract.contract_id == cid]
    row = snap.index_of(cid)
    desk.step(3)
    lines = engine.attribution_day
    assert set(lines) == {"delta", "gamma", "vega", "theta", "new_trades", "fees", "residual", "day"}
    parts = sum(v for k, v in lines.items() if k != "day")
    assert round(parts, 2) == round(engine.book.day_pnl, 2) == round(lines["day"], 2)      # to the cent
    assert lines["fees"] == pytest.approx(-sum(f.commission for f in fills)) and lines["fees"] < 0
    # each fill against the mark of that moment: the mid of the snapshot it was sent and filled on
    edge = sum((float(snap.mid[row]) - f.price) * f.signed_quantity * f.contract.multiplier for f in fills)
    assert lines["new_trades"] == pytest.approx(edge) and edge != 0.0
    desk.window.flush()
    shown = {k: lab.text() for k, lab in w.risk.attr.items()}
    assert {"new_trades", "fees", "residual", "day"} <= set(shown)


# ------------------------------------------------------------------------------------ restart
class _PersistentRig:
    """SimRig with the paper account on disk beside the journal: a second one on the same directory is the
    workstation started again (same journal, same broker account, same simulated day)."""

    def __init__(self, tmp, settings):
        from pathlib import Path

        from engine_support import SimRig
        from workstation.engine import Engine
        from workstation.execution.paper import PaperBroker
        from workstation.market.sim_feed import SimulatedFeed
        from workstation.sim.world import SimWorld
        from workstation.storage import Journal

        self.settings = settings
        self.world = SimWorld(settings.market.simulator, settings.execution.paper, manual=True,
                              account_path=Path(tmp) / "paper_account.sqlite")
        self.feed = SimulatedFeed.from_settings(settings, world=self.world)
        self.broker = PaperBroker(self.world)
        self.journal = Journal(Path(tmp) / "journal.sqlite")
        self.engine = Engine(settings, self.feed, self.broker, self.journal, clock=self.world.clock.now)
        self.step, self.settle, self.open = (SimRig.step.__get__(self), SimRig.settle.__get__(self),
                                             SimRig.open.__get__(self))


def test_the_day_survives_a_restart(app, tmp_path, store):
    """Trade, stop, start again on the same journal and paper account: the blotter, the fills, the alerts and
    the P&L explain are back; signals open at shutdown were closed in the journal with the reason."""
    from PySide6.QtCore import QCoreApplication, QEvent

    from workstation import day_restore
    from workstation.alerts import AlertRouter
    from workstation.domain import Severity
    from workstation.ui.main_window import MainWindow

    settings = desk_settings()
    first = _PersistentRig(tmp_path, settings)
    runner = Desk(app, first, None)
    runner.run(first.open())
    first.engine.recover()
    engine = first.engine
    for _ in range(40):
        runner.run(first.step())
        if engine.last_model is not None and engine.signals.open:
            break
    snap = engine.last_snapshot
    rows = [int(r) for r in np.flatnonzero((snap.bid > 5.0) & (snap.ask < 50.0) & np.isfinite(snap.mid))[:2]]
    sent = []
    for row in rows:
        pv = engine.submit_order(int(snap.contract_id[row]), "BUY", 1, float(snap.ask[row]))
        assert pv.sent, pv.message
        sent.append(pv.order.client_order_id)
    denied = engine.submit_order(int(snap.contract_id[rows[0]]), "BUY", settings.risk.max_order_quantity + 1, None)
    assert not denied.sent
    sent.append(denied.order.client_order_id)
    engine.alert("DATA_STALE", Severity.WARNING, "a test alert before the restart")
    for _ in range(3):
        runner.run(first.step())
    assert engine.book.fill_count == 2
    open_signals = set(engine.signals.open)
    before = dict(engine.explain.parts)
    day_before = engine.book.day_pnl
    runner.run(engine.stop())
    first.world.close()
    first.journal.close()
    closed = {s.signal_id: s for s in _journal_signals(tmp_path)}
    assert all(closed[sid].state.value == "EXPIRED" and closed[sid].reason == day_restore.SHUTDOWN_REASON
               for sid in open_signals)
    assert not [s for s in closed.values() if s.state.is_open]

    second = _PersistentRig(tmp_path, desk_settings())
    router = AlertRouter(second.engine.bus, fold_window_s=60)
    second.engine.alert_router = router
    window = MainWindow(second.engine, second.settings, store)     # the window is built before start, as in the app
    window.show()
    desk = Desk(app, second, window)
    try:
        second.engine.recover()                                       # what Engine.start does first
        desk.run(second.open())
        desk.run(second.engine.reconcile())
        window.flush()
        assert set(sent) <= {r.order.client_order_id for r in window.orders.rows()}
        by_id = {r.order.client_order_id: r for r in window.orders.rows()}
        assert [by_id[c].status for c in sent] == ["FILLED", "FILLED", "REJECTED"]
        assert second.engine.book.fill_count == 2
        assert second.engine.explain.parts == pytest.approx(before)  # new trades, fees, Greeks: the day's
        assert any("before the restart" in a.message for a in window.alerts.model.records())
        assert window.risk.attr["new_trades"].text() not in ("", "$0")
        desk.step()
        lines = second.engine.attribution_day
        assert round(sum(v for k, v in lines.items() if k != "day"), 2) == round(second.engine.book.day_pnl, 2)
        assert second.engine.book.day_pnl == pytest.approx(day_before, abs=abs(day_before) + 500)   # same day
    finally:
        window.close()
        window.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
        desk.run(second.engine.stop())
        second.world.close()
        second.journal.close()
        router.stop(0.5)


def _journal_signals(tmp_path):
    from workstation.storage import Journal
    with Journal(tmp_path / "journal.sqlite") as journal:
        return journal.signals()


# ------------------------------------------------------------------------------------ help, layout
def test_help_menu_shows_the_window_section_shortcuts_and_about(desk, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    import workstation
    w = desk.window
    titles = [a.text() for a in w.menuBar().actions()]
    help_menu = w.menuBar().actions()[titles.index("&Help")].menu()
    assert [a.text() for a in help_menu.actions() if a.text()] == ["The window", "Keyboard shortcuts",
                                                                    "About Heston Workstation"]
    w.show_window_help()
    text = w.help_dialog.browser.toPlainText()
    assert text.startswith("The window") and "KILL SWITCH" in text and "Docked panels" in text
    w.show_shortcuts()
    text = w.help_dialog.browser.toPlainText()
    assert "Ctrl+K" in text and "KILL SWITCH" in text and "Ctrl+N" in text
    shown = []
    monkeypatch.setattr(QMessageBox, "about", lambda *a: shown.append(a[2]))
    w.show_about()
    assert workstation.__version__ in shown[0]


def test_a_floated_panel_comes_back_floating_and_is_raised_in_front(desk, store):
    from workstation.ui.main_window import MainWindow

    first = desk.window
    first.docks["risk"].setFloating(True)
    first.close()                                                     # writes the layout
    second = MainWindow(desk.engine, desk.engine.settings, store)
    raised = []
    second.raise_floating = lambda: raised.append(MainWindow.raise_floating(second))
    second.show()
    try:
        desk.wait(lambda: raised, what="floating panels raised after show")
        assert second.docks["risk"].isFloating() and second.docks["risk"] in raised[0]
    finally:
        second.close()
