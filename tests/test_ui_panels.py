"""Panel-level GUI tests (offscreen) on the real engine, simulator, paper broker and journal with a manual clock
(`engine_support.SimRig`): each step is one market interval and one engine cycle, so the tests are deterministic
and quick. What the trader does goes to the real engine; what the engine says comes back into the right panel.

No stand-in engine: every case here (fills, resting orders, denials, folded alerts, a live-account label) is
produced by the real components. The window on the free-running engine is tested in test_ui_window.py.
"""
from __future__ import annotations

import asyncio
import logging
import time

from datetime import date

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from engine_support import SIM_DAY, SimRig, fast_settings, signal_in_table  # noqa: E402
from workstation.alerts import AlertRouter  # noqa: E402
from workstation.config import Settings  # noqa: E402
from workstation.domain import Severity  # noqa: E402
from workstation.ui.app import make_app  # noqa: E402
from workstation.ui.bridge import Bridge  # noqa: E402
from workstation.ui.main_window import MainWindow  # noqa: E402
from workstation.ui.panels.mispricings import AGE_COLUMN  # noqa: E402


def desk_settings() -> Settings:
    """Signals after a few cycles with low thresholds; no hedging (the blotter holds only the test's orders)."""
    s = fast_settings()
    s.signals.min_history = 3
    s.signals.min_zscore = 0.5
    s.signals.min_edge_dollars = 1
    s.signals.min_edge_vol = 0.05
    s.signals.spread_multiple = 0.0
    s.signals.max_age_s = 3600
    s.hedging.enabled = False
    s.ui.opengl = "off"       # one GL window per process: only the 3-D test opens one (many crash llvmpipe)
    return s


class Desk:
    """The window on a SimRig; `step()` runs market cycles, `wait()` lets Qt and asyncio work."""

    def __init__(self, app, rig: SimRig, window: MainWindow) -> None:
        self.app, self.rig, self.window = app, rig, window
        self.engine = rig.engine

    def wait(self, condition, timeout: float = 10.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
            self.app.processEvents(QEventLoop.AllEvents, 20)

    def run(self, coro, timeout: float = 30.0):
        future = asyncio.ensure_future(coro)
        self.wait(future.done, timeout, what=str(coro))
        return future.result()

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self.run(self.rig.step())
            # the risk monitor runs beside the cycle in the worker; waiting for it makes every step end with the
            # book revalued on its own snapshot however loaded the machine (a busy monitor skips a cycle)
            self.wait(lambda: not self.engine.supervisor.busy, timeout=60, what="the risk monitor")
        self.run(self.rig.settle())
        self.window.flush()

    def until(self, condition, steps: int = 40, what: str = "") -> None:
        """Step the market until `condition()` holds (at most `steps` cycles)."""
        for _ in range(steps):
            self.window.flush()
            if condition():
                return
            self.step()
        assert condition(), f"not after {steps} cycles: {what or condition}"


@pytest.fixture(scope="module")
def app():
    import qasync

    app = make_app()
    loop = qasync.QEventLoop(app, already_running=True)    # asyncio runs whenever Qt processes events
    asyncio.set_event_loop(loop)
    yield app
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)


@pytest.fixture
def store(tmp_path):
    return QSettings(str(tmp_path / "layout.ini"), QSettings.IniFormat)


@pytest.fixture
def desk(app, tmp_path, store, request, warm_numba):    # kernels compiled before any timed wait
    settings = desk_settings()
    if request.node.get_closest_marker("xvfb"):
        settings.ui.opengl = "auto"
    rig = SimRig(tmp_path, settings)
    router = AlertRouter(rig.engine.bus, fold_window_s=60)   # folds repeats, as build_engine wires it
    rig.engine.alert_router = router
    window = MainWindow(rig.engine, rig.settings, store)
    window.show()
    d = Desk(app, rig, window)
    d.run(rig.open())
    yield d
    window.close()
    window.deleteLater()
    # delete it now, while the display is alive: a window with a native GL view deleted during QApplication's
    # teardown crashes the process
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    d.run(rig.close())
    router.stop(0.5)


def _signal(desk: Desk, tradable: bool = True):
    """Step until a NEW signal (passing the pre-trade checks when `tradable`) is in the table; select it."""
    w, found = desk.window, []
    desk.until(signal_in_table(w, desk.engine, tradable, found), steps=60, what="a signal")
    assert w.mispricings.select_signal(found[0].signal_id)
    return found[0]


def _resting_ticket(desk: Desk) -> None:
    """A BUY ticket limited well below the bid: it passes the checks and rests on the exchange."""
    w = desk.window
    desk.until(lambda: w.orders.contract_id() is not None, what="ticket contract")
    w.orders.side.setCurrentText("BUY")
    w.orders.quantity.setValue(1)
    bid = float(desk.engine.chain().bid[w.orders.current_row()])
    w.orders.limit.setValue(max(0.05, round(bid * 0.85 * 20) / 20))     # inside the price band, below the bid
    w.orders.preview()
    desk.wait(lambda: w.orders.send.isEnabled(), what=f"ticket approved ({w.orders.preview_view.verdict.text()})")


def test_panels_fill_from_the_engine(desk):
    w = desk.window
    desk.until(lambda: w.calibration.values["v0"].text() != "–" and w.surface.expiry.count() > 3, what="fit")
    desk.until(lambda: w.risk.bars["var99"].format() != "–", what="risk report")
    assert "revaluation at" in w.risk.numbers["VaR 99"].toolTip()          # when the VaR was last revalued
    assert w.surface.view is not None and w.surface.view.model_iv is not None        # Heston curve drawn
    w.surface.tabs.setCurrentIndex(0)                                                # views draw when shown
    assert w.surface.smile_model.getData()[0] is not None
    desk.until(lambda: w.surface.fair is not None, what="the fair surface of the shown snapshot")
    w.surface.tabs.setCurrentIndex(0)
    w.surface._stale.add(0)
    w.surface._draw_tab(0)
    x, y = w.surface.smile_fair.getData()                                            # the fair curve, in %
    fair = w.surface.fair
    rows = w.surface.view.series[w.surface.expiry.currentIndex()][2]
    assert x is not None and len(x) > 3 and np.allclose(np.sort(y), np.sort(fair.fair_iv[rows][np.isfinite(
        fair.fair_iv[rows])] * 100))
    assert "fair: " in w.surface.smile_info.text() and "inside their spread" in w.surface.smile_info.text()
    assert "3-D view switched off" in w.surface.note.text()                          # 2-D views, and why
    assert any(s in w.calibration.values["Feller"].text() for s in ("satisfied", "violated"))
    assert w.calibration.per_expiry.rowCount() > 3
    table = w.calibration.per_expiry                                  # both fits per expiry, side by side
    headers = [table.horizontalHeaderItem(j).text() for j in range(table.columnCount())]
    assert headers[1:3] == ["Model", "Fair"] and "fair-value" in table.horizontalHeaderItem(2).toolTip()
    row = next(i for i in range(table.rowCount()) if table.item(i, 2).text() not in ("–", "fallback", "failed"))
    short = {f"{date.fromisoformat(k[:10]):%d%b%y}{k[10:]}": sl for k, sl in desk.window.bridge.fair_quality().items()}
    piece = short[table.item(row, 0).text()]                          # e.g. 18Dec26 PM
    assert table.item(row, 2).text() == f"{piece.rmse_iv:.3f}" and table.item(row, 3).text() == f"{piece.inside_pct:.0f}"
    assert w.risk.stress.rowCount() >= 3 and w.risk.stress.columnCount() >= 3
    assert not w.risk.attr_note.isVisible() and {"delta", "vega", "residual"} <= set(w.risk.attr)
    assert w.orders.expiry.count() > 3 and w.orders.strike.count() > 10
    assert w.status_line.fit_label.text().startswith("fit ") and "rmse" in w.status_line.fit_label.text()
    assert w.status_line.connection.text() == "SIMULATED"


def test_approve_shows_what_if_then_order_fill_and_position(desk):
    w, engine = desk.window, desk.engine
    sig = _signal(desk)
    w.approve_action.trigger()                                       # shortcut A
    dialog = w.mispricings.what_if
    assert dialog is not None and dialog.isVisible()
    assert dialog.view.checks.rowCount() > 5                         # every pre-trade check, named
    assert dialog.send.isEnabled() and "passes" in dialog.view.verdict.text()
    dialog.accept()
    desk.wait(lambda: any(r.order.signal_id == sig.signal_id for r in w.orders.rows()), what="order in blotter")
    desk.until(lambda: any(r.order.signal_id == sig.signal_id and r.status == "FILLED" for r in w.orders.rows()),
               steps=80, what="fill")
    cid = sig.contract.contract_id
    desk.until(lambda: cid in w.positions.model.keys(), what="position")
    position = w.positions.model.get(cid)
    assert (position.quantity > 0) == (sig.side.value == "BUY")
    assert w.positions.model.data(w.positions.model.index(w.positions.model.keys().index(cid), 0)) == \
        sig.contract.description                                      # the trader's name, not the OCC symbol
    assert sig.signal_id not in w.mispricings.model.keys()            # ORDERED signals leave the table


def test_reduce_half_sends_an_exit_for_half_the_position(desk):
    w, engine = desk.window, desk.engine
    sig = _signal(desk)
    engine.approve_signal(sig.signal_id)
    cid = sig.contract.contract_id
    desk.until(lambda: cid in w.positions.model.keys(), steps=80, what="position")
    held = abs(w.positions.model.get(cid).quantity)
    w.positions.table.selectRow(w.positions.proxy.mapFromSource(
        w.positions.model.index(w.positions.model.keys().index(cid), 0)).row())
    before = {r.order.client_order_id for r in w.orders.rows()}
    w.positions.close_selected(half=True)
    assert w.positions.message.text() == "Exit order sent.", w.positions.message.text()

    def exits():
        return [r for r in w.orders.rows() if r.order.client_order_id not in before
                and r.order.purpose.value == "exit" and r.order.contract.contract_id == cid]
    desk.wait(lambda: exits(), what="exit order in the blotter")
    assert exits()[0].order.quantity == max(1, held // 2)


def test_reject_removes_the_signal(desk):
    w, engine = desk.window, desk.engine
    sig = _signal(desk, tradable=False)
    w.reject_action.trigger()                                         # shortcut R
    assert sig.signal_id not in w.mispricings.model.keys()
    assert sig.signal_id not in [s.signal_id for s in engine.open_signals()]


def test_signals_show_their_family_and_the_panel_filters_by_it(desk):
    """Both families reach the table labelled; the family filter shows one family's rows and all again."""
    w, engine = desk.window, desk.engine
    panel = w.mispricings

    def families():
        return {s.family for s in panel.model.records()}
    desk.until(lambda: families() >= {"model", "relative"}, steps=80, what="signals of both families")
    column = next(i for i, c in enumerate(panel.model.columns) if c.header == "Family")

    def shown() -> list[str]:
        return [panel.proxy.index(r, column).data() for r in range(panel.proxy.rowCount())]
    panel.family.setCurrentText("relative")
    assert shown() and set(shown()) == {"relative"}
    panel.family.setCurrentText("model")
    assert shown() and set(shown()) == {"model"}
    panel.family.setCurrentText("all families")
    assert set(shown()) == families() and len(shown()) == len(panel.model.records())
    desk.until(lambda: panel.arbitrage.rowCount() == len(engine.signal_desk.arbitrage) > 0, steps=40,
               what="static arbitrage in its own table")                  # the arbitrage family
    found = list(engine.signal_desk.arbitrage.values())
    assert {a.key for a in panel.arbitrage.records()} == {a.key for a in found}
    assert f"{len(found)}," in panel.arbitrage_label.text()


def test_garbage_is_collected_on_the_gui_thread_only(app):
    """A collection in the numerics thread may free Qt objects there and crash Qt: the window disables Python's
    automatic collection and collects on a GUI-thread timer instead."""
    import gc

    assert not gc.isenabled() and app.gui_thread_gc is not None and app.gui_thread_gc.timer.isActive()
    from workstation.ui.app import GC_GEN1_EVERY, GC_GEN2_EVERY
    assert gc.get_threshold()[1:] == (GC_GEN1_EVERY, GC_GEN2_EVERY)       # short middle-generation passes
    assert gc.get_freeze_count() > 10_000                                 # start-up objects out of full passes


def test_the_gui_thread_collects_one_generation_per_tick_as_python_would_choose_it(app):
    """One collection per tick, never the young generation and then the middle one over the same survivors (what
    pyqtgraph's collector did: two 32-37 ms passes back to back on the full chain); each tick the oldest generation
    whose count passed its threshold, as Python's automatic collection chooses (here with small thresholds, so a
    full collection comes within a few dozen ticks)."""
    import gc

    collector = app.gui_thread_gc
    thresholds = gc.get_threshold()
    collected: list[int] = []

    def note(phase, info):
        if phase == "start":
            collected.append(info["generation"])
    kept = []
    gc.set_threshold(700, 2, 3)
    gc.callbacks.append(note)
    try:
        gc.collect(2)                                         # counts from zero
        plan = []
        for _ in range(3 * 3 * 4 + 5):
            kept.append([[] for _ in range(3000)])            # far more live objects than the young threshold
            before = len(collected)
            want = collector.due()
            collector.check()
            assert len(collected) - before == 1, "one collection per tick"
            plan.append(collected[-1])
            assert collected[-1] == want
        gc.set_threshold(10 ** 9, 2, 3)                       # fewer new objects than the young threshold:
        collector.check()                                     # nothing is collected
        assert len(collected) == len(plan) + 1
    finally:
        gc.callbacks.remove(note)
        gc.set_threshold(*thresholds)
        kept.clear()
    # young, young, young, middle (3 young since the last middle > 2), ...; full after 4 middle ones (> 3)
    assert plan[:4] == [0, 0, 0, 1]
    assert plan[:16] == [0, 0, 0, 1] * 4 and plan[16] == 2
    assert plan.count(2) >= 2


def test_auto_execute_asks_then_toggles(desk, monkeypatch):
    w, engine = desk.window, desk.engine
    answers = iter([QMessageBox.No, QMessageBox.Yes])
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: (asked.append(a[2]), next(answers))[1])
    w.mispricings.auto.click()
    assert not engine.auto_execute and not w.mispricings.auto.isChecked()
    w.mispricings.auto.click()
    assert engine.auto_execute and w.mispricings.auto.isChecked()
    assert "Auto limits" in asked[-1] and f"${engine.settings.signals.auto_max_premium:,.0f}" in asked[-1]
    w.mispricings.auto.click()                                        # off needs no confirmation
    assert not engine.auto_execute


def test_kill_switch_cancels_working_orders_and_halts(desk, monkeypatch):
    w, engine = desk.window, desk.engine
    _resting_ticket(desk)
    w.orders.submit()
    desk.wait(lambda: any(r.working for r in w.orders.rows()), what="working order")
    w.kill_action.trigger()                                           # Ctrl+K, no confirmation
    desk.until(lambda: not any(r.working for r in w.orders.rows()), steps=5, what="orders cancelled")
    assert {r.status for r in w.orders.rows()} == {"CANCELLED"}, [(r.status, r.reason) for r in w.orders.rows()]
    desk.wait(lambda: w.status_line.state_label.text() == "HALTED", what="HALTED")
    assert w.risk.state.text() == "HALTED" and w.risk.resume.isEnabled()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    w.risk.resume_trading()
    desk.wait(lambda: w.status_line.state_label.text() == "ACTIVE", what="ACTIVE again")


def test_blotter_cancel_and_modify(desk, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    w = desk.window
    _resting_ticket(desk)
    w.orders.submit()
    desk.wait(lambda: any(r.working for r in w.orders.rows()), what="working order")
    w.orders.blotter_view.selectRow(0)
    monkeypatch.setattr(QInputDialog, "getDouble", lambda *a, **k: (0.10, True))
    w.orders.modify_selected()
    desk.until(lambda: w.orders.rows()[0].limit == pytest.approx(0.10), steps=5, what="modified limit")
    w.orders.cancel_selected()
    desk.until(lambda: w.orders.rows()[0].status == "CANCELLED", steps=5, what="cancelled")


def test_oversized_ticket_shows_the_denial_and_cannot_be_sent(desk):
    w, engine = desk.window, desk.engine
    desk.until(lambda: w.orders.contract_id() is not None, what="ticket contract")
    w.orders.quantity.setValue(engine.settings.risk.max_order_quantity + 5)
    w.orders.preview()
    desk.wait(lambda: "DENIED" in w.orders.preview_view.verdict.text(), what="denial")
    assert not w.orders.send.isEnabled()
    assert "QUANTITY" in w.orders.preview_view.verdict.text().upper()
    first = w.orders.preview_view.checks.item(0, 1).text()
    assert first.startswith("FAIL")                                   # the failed check is listed first


def test_settings_dialog_refuses_inf_huge_and_crossed_limits_with_the_reason(desk):
    """The dialog applies the config file's rules: finite numbers, ranges, and the rules across fields."""
    w, engine = desk.window, desk.engine
    w.open_settings()
    dialog = w.settings_dialog
    assert not dialog.set_value("risk.max_daily_loss", "inf")
    assert dialog.error_text("risk.max_daily_loss") == "must be a finite number (no .nan or .inf), got 'inf'"
    assert not dialog.set_value("hedging.target_delta", "nan")
    assert "finite number" in dialog.error_text("hedging.target_delta")
    assert not dialog.set_value("risk.max_order_premium", "1e23")
    assert dialog.error_text("risk.max_order_premium") == "must be <= 1e+08, got '1e23'"
    assert not dialog.apply_button.isEnabled()
    for key, good in (("risk.max_daily_loss", "25000"), ("hedging.target_delta", "0"),
                      ("risk.max_order_premium", "50000")):
        assert dialog.set_value(key, good)
    assert dialog.apply_button.isEnabled()
    # a rule across fields: typed on one field, shown on both, cleared when either is fixed
    assert not dialog.set_value("signals.auto_max_premium", "60000")
    assert dialog.error_text("signals.auto_max_premium") == \
        "must be <= risk.max_order_premium (50000), got 60000"
    assert dialog.error_text("risk.max_order_premium") == \
        "must be >= signals.auto_max_premium (60000), got 50000"
    assert not dialog.apply_button.isEnabled() and "2 field(s) need fixing" in dialog.problems.text()
    assert dialog.set_value("risk.max_order_premium", "60000")
    assert dialog.error_text("signals.auto_max_premium") == "" and dialog.apply_button.isEnabled()
    assert not dialog.set_value("signals.min_history", "61")
    assert "signals.history_length (60)" in dialog.error_text("signals.min_history")
    dialog.apply()                                      # refused as a whole too: nothing reaches the engine
    assert "Not applied" in dialog.problems.text() and engine.settings.signals.min_history == 3
    dialog.reject()


def test_settings_dialog_validates_inline_and_a_new_limit_is_enforced(desk):
    w, engine = desk.window, desk.engine
    w.open_settings()
    dialog = w.settings_dialog
    assert not dialog.set_value("risk.max_order_quantity", "0")
    assert ">= 1" in dialog.error_text("risk.max_order_quantity")
    assert not dialog.apply_button.isEnabled()
    assert not dialog.set_value("risk.max_order_quantity", "lots")
    assert dialog.set_value("signals.auto_max_quantity", "3")        # auto limits stay within order limits
    assert dialog.set_value("risk.max_order_quantity", "3")
    assert dialog.apply_button.isEnabled()
    assert dialog.editors["risk.max_order_quantity"].widget.toolTip() == \
        "Largest order, contracts. Range: >= 1 and <= 10000."
    dialog.apply()
    assert engine.settings.risk.max_order_quantity == 3
    assert w.settings.risk.max_order_quantity == 3
    desk.until(lambda: w.orders.contract_id() is not None, what="ticket contract")
    w.orders.quantity.setValue(4)
    w.orders.preview()
    desk.wait(lambda: "DENIED" in w.orders.preview_view.verdict.text(), what="denial")
    assert "QUANTITY" in w.orders.preview_view.verdict.text().upper()
    assert not w.orders.send.isEnabled()


def test_settings_dialog_apply_writes_the_overrides_file_a_restart_loads(desk, tmp_path):
    """Apply writes only what differs from the start-up settings to the overrides file; loading the same base with
    that file gives the applied values back (what the next start sees)."""
    from workstation.config import load_settings

    w, engine = desk.window, desk.engine
    overrides = tmp_path / "user" / "overrides.yaml"
    engine.overrides_path = overrides
    w.open_settings()
    dialog = w.settings_dialog
    assert dialog.set_value("signals.auto_max_quantity", "3")        # the auto limit stays within the order limit
    assert dialog.set_value("risk.max_order_quantity", "3") and dialog.set_value("signals.min_zscore", "1.75")
    dialog.apply()
    import yaml
    written = yaml.safe_load(overrides.read_text(encoding="utf-8"))
    assert written["risk"]["max_order_quantity"] == 3 and written["signals"]["min_zscore"] == 1.75
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(engine._base_settings.to_yaml_dict()), encoding="utf-8")
    reloaded = load_settings(base, overrides, environ={})
    assert reloaded.risk.max_order_quantity == 3 and reloaded.signals.min_zscore == 1.75
    assert reloaded.risk.max_position == engine._base_settings.risk.max_position      # the rest untouched


def test_settings_cancel_discards(desk):
    w, engine = desk.window, desk.engine
    before = engine.settings.risk.max_position
    w.open_settings()
    w.settings_dialog.set_value("risk.max_position", str(before + 7))
    w.settings_dialog.reject()
    assert engine.settings.risk.max_position == before


def test_a_connection_change_asks_to_reconnect(desk, monkeypatch):
    """Yes applies and restarts the workstation on the new connection; No keeps the connection, applies the rest."""
    w, engine = desk.window, desk.engine
    restarts = []
    monkeypatch.setattr(w, "restart", lambda: restarts.append(True))
    port = engine.settings.ib.port
    for answer, expect_port, expect_restart in ((QMessageBox.No, port, []), (QMessageBox.Yes, port + 1, [True])):
        monkeypatch.setattr(QMessageBox, "question", lambda *a, _answer=answer, **k: _answer)
        w.open_settings()
        dialog = w.settings_dialog
        assert dialog.set_value("ib.port", str(port + 1)) and dialog.set_value("risk.max_position", "27")
        dialog.apply()
        assert engine.settings.ib.port == expect_port and engine.settings.risk.max_position == 27
        assert restarts == expect_restart


def test_settings_send_test_alert_reaches_the_log_channel(desk, tmp_path, monkeypatch):
    """The Alerts tab's test buttons deliver one TEST_ALERT through the channel, off the GUI thread."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    from workstation.storage.paths import default_log_dir
    w = desk.window
    w.open_settings()
    dialog = w.settings_dialog
    dialog.test_buttons["log"].click()
    desk.wait(lambda: "sent" in dialog.test_result.text() or "fail" in dialog.test_result.text().lower(),
              what="test alert result")
    assert "sent via log" in dialog.test_result.text()
    log_file = default_log_dir() / w.settings.alerts.log_file
    assert "TEST_ALERT" in log_file.read_text()
    monkeypatch.delenv("HESTON_WEBHOOK_URL", raising=False)
    dialog.test_buttons["webhook"].click()                  # no URL configured: a clear message, no crash
    desk.wait(lambda: dialog.test_buttons["webhook"].isEnabled(), what="webhook result")
    assert dialog.test_result.text() == "the webhook channel needs HESTON_WEBHOOK_URL in the environment"
    dialog.reject()


def test_layout_save_restore_and_reset(desk, store):
    engine = desk.engine
    first = desk.window
    first.docks["log"].close()
    first.close()                                                     # writes the layout
    second = MainWindow(engine, engine.settings, store)
    second.show()
    try:
        assert not second.docks["log"].isVisible()
        assert second.docks["surface"].isVisible()
        second.reset_layout()
        assert all(not d.isHidden() for d in second.docks.values())
    finally:
        second.close()


def test_alerts_fold_repeats_acknowledge_through_the_router_and_notify_once(desk):
    w, engine = desk.window, desk.engine
    notes = []
    w.alerts.notify.connect(lambda *a: notes.append(a))
    engine.alert("DATA_STALE", Severity.WARNING, "no snapshot for 12 s")
    for _ in range(3):
        engine.alert("RISK_DAILY_LOSS", Severity.CRITICAL, "day P&L below the limit")
    desk.wait(lambda: w.alerts.model.rowCount() == 2, what="two rows")
    loss = next(a for a in w.alerts.model.records() if a.code == "RISK_DAILY_LOSS")
    assert loss.count == 3                                            # three alerts, one row, count 3
    assert len(notes) == 1 and "RISK_DAILY_LOSS" in notes[0][0]       # critical -> tray, once
    w.alerts.level.setCurrentIndex(3)                                 # CRITICAL and above
    assert w.alerts.proxy.rowCount() == 1
    w.alerts.level.setCurrentIndex(0)
    w.alerts.acknowledge_all()
    assert w.alerts.unacknowledged() == 0
    assert all(a.acknowledged for a in engine.alert_router.recent())  # acknowledged in the router
    engine.alert("RISK_DAILY_LOSS", Severity.CRITICAL, "still below")  # a repeat after ack: a new alert
    desk.wait(lambda: w.alerts.model.rowCount() == 3, what="new row after acknowledgement")
    assert w.alerts.unacknowledged() == 1 and len(notes) == 2


def test_log_panel_shows_records_and_filters_by_level(desk):
    w = desk.window
    logging.getLogger("workstation.test").warning("spread too wide on 6000C")
    logging.getLogger("workstation.test").debug("noise")
    desk.wait(lambda: "spread too wide" in w.log_panel.visible_text(), what="log line")
    assert "noise" not in w.log_panel.visible_text()
    w.log_panel.level.setCurrentText("ERROR")
    assert "spread too wide" not in w.log_panel.visible_text()


def test_live_guard_needs_the_typed_account(desk):
    from workstation.ui.dialogs.live_guard import LiveGuardDialog

    engine = desk.engine
    settings = Settings.model_validate({"ib": {"live": True, "account": "DU1234567"},
                                        "execution": {"trading_enabled": False}})
    assert engine.apply_settings(settings, source="test: a live configuration") == []
    assert engine.read_only
    dialog = LiveGuardDialog(engine.settings, Bridge(engine))
    dialog.entry.setText("DU123")
    assert not dialog.enable.isEnabled()
    dialog.entry.setText("DU1234567")
    assert dialog.enable.isEnabled()
    dialog.confirm()
    assert engine.settings.execution.trading_enabled and not engine.read_only
    dialog.close()


def test_live_connection_is_red_in_the_status_bar(desk):
    w, engine = desk.window, desk.engine
    engine.connection = "ib-live"              # the label the engine gives an IB live account
    engine.publish_status()
    assert "LIVE" in w.status_line.connection.text()
    assert "background" in w.status_line.connection.styleSheet()
    assert "LIVE" in w.windowTitle()


def test_empty_tables_say_what_they_wait_for(desk):
    """The placeholder is painted while the table is empty (the grab differs from the same empty table without it)."""
    w = desk.window
    assert w.positions.model.rowCount() == 0 and "No positions" in w.positions.table.placeholder
    assert "No alerts" in w.alerts.table.placeholder
    table = w.positions.table
    with_text = table.grab().toImage()
    placeholder, table.placeholder = table.placeholder, ""
    try:
        blank = table.grab().toImage()
    finally:
        table.placeholder = placeholder
    assert with_text.size() == blank.size() and with_text != blank


@pytest.mark.xvfb
def test_3d_surface_under_xvfb(desk):
    w = desk.window
    panel = w.surface
    assert panel.gl_view is not None, panel.note.text()
    desk.until(lambda: panel.view is not None and panel.view.model_iv is not None, what="surface with model IVs")
    assert panel.gl_mesh is not None
    assert "model IV" in panel.gl_caption.text()

    def colours() -> int:
        image = panel.gl_view.grab()
        return len({image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)})
    desk.wait(lambda: colours() > 20, what="the 3-D view rendered the surface")
    shot = w.grab_image(w)                                     # screenshots paint the native 3-D window in
    inside = panel.gl_container.mapTo(w, panel.gl_container.rect().center())
    assert shot.toImage().pixelColor(inside) == panel.gl_view.grab().pixelColor(panel.gl_container.rect().center())
    dock = w.docks["surface"]
    for floating in (True, False):                             # the native GL window follows its dock
        dock.setFloating(floating)
        desk.step()
        assert dock.isFloating() is floating and panel.gl_container.isVisible()
        assert colours() > 20, "the 3-D view rendered nothing after the dock moved"


def test_every_time_on_screen_is_market_time_in_new_york(desk):
    """The simulated market opens 09:30 ET on SIM_DAY (14:30 UTC): every time on screen reads ET on the market
    clock, the status bar says the clock is simulated, and ages count market seconds, not wall-clock ones."""
    from workstation.domain.calendar import NEW_YORK

    w, engine = desk.window, desk.engine
    sig = _signal(desk, tradable=False)
    now_et = engine.clock().astimezone(NEW_YORK)
    assert now_et.date() == SIM_DAY and 9 <= now_et.hour < 11                 # the simulated morning
    w.status_line.tick_clock()
    engine.publish_status()
    desk.wait(lambda: "sim, stepped" in w.status_line.market_clock.text(), what="sim label")
    assert w.status_line.market_clock.text().startswith(f"{now_et:%a %d %b %H:%M}") and " ET · sim, stepped" in \
        w.status_line.market_clock.text()
    w.mispricings.render()                                                     # the age column's refresh
    row = w.mispricings.model.keys().index(sig.signal_id)
    age = w.mispricings.model.data(w.mispricings.model.index(row, AGE_COLUMN))
    assert age == f"{(engine.clock() - sig.created_at).total_seconds():,.0f}s"   # market seconds
    engine.alert("DATA_STALE", Severity.WARNING, "no snapshot for 12 s")
    def stale_row():
        rows = [i for i, a in enumerate(w.alerts.model.records()) if a.code == "DATA_STALE"]
        return rows[0] if rows else None
    desk.wait(lambda: stale_row() is not None, what="alert row")
    assert w.alerts.model.headerData(0, Qt.Horizontal) == "Time ET"
    assert w.alerts.model.data(w.alerts.model.index(stale_row(), 0)) == f"{now_et:%H:%M:%S}"
    logging.getLogger("workstation.test").warning("stamped on the market clock")
    desk.wait(lambda: "stamped on the market clock" in w.log_panel.visible_text(), what="log line")
    line = next(x for x in w.log_panel.visible_text().splitlines() if "stamped on the market clock" in x)
    assert line.startswith(f"{now_et:%H:%M:%S}")
    fit_et = engine.last_fit.timestamp.astimezone(NEW_YORK)
    assert w.status_line.fit_label.text().startswith(f"fit {fit_et:%H:%M:%S}")
    assert f"{fit_et:%H:%M} ET" in w.calibration.values["Fit"].text()
