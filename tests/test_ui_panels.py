"""Panel-level GUI tests on a stand-in engine (offscreen): each panel fills, the trader's actions reach
the engine, and what the engine says comes back into the right table."""
from __future__ import annotations

import logging

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from test_ui_fake_engine import FakeEngine  # noqa: E402
from workstation.config import Settings  # noqa: E402
from workstation.domain import Severity, Side  # noqa: E402
from workstation.ui.app import make_app  # noqa: E402
from workstation.ui.main_window import MainWindow  # noqa: E402


@pytest.fixture
def store(tmp_path):
    return QSettings(str(tmp_path / "layout.ini"), QSettings.IniFormat)


@pytest.fixture
def engine():
    return FakeEngine()


@pytest.fixture
def window(qtbot, engine, store):
    make_app()
    win = MainWindow(engine, engine.settings, store)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def test_panels_fill_from_the_bus(qtbot, window, engine):
    engine.publish_market()
    qtbot.waitUntil(lambda: window.surface.expiry.count() == 4, timeout=3000)
    assert window.surface.smile_mid.getData()[0] is not None
    assert "no OpenGL" in window.surface.note.text()            # offscreen: 2-D views, and why
    qtbot.waitUntil(lambda: window.calibration.values["v0"].text() != "–", timeout=3000)
    assert "satisfied" in window.calibration.values["Feller"].text() or "violated" in window.calibration.values["Feller"].text()
    assert window.risk.bars["vega"].value() == 900                # 45k of a 50k limit
    assert window.risk.stress.rowCount() == 3
    assert window.connection.text() == "SIMULATED"
    assert "rmse 0.42" in window.fit_label.text()
    assert "-$1,234" in window.pnl_label.text()
    qtbot.waitUntil(lambda: window.orders.expiry.count() == 4, timeout=3000)
    assert window.orders.strike.count() > 10


def test_approve_shows_what_if_then_order_fill_and_position(qtbot, window, engine):
    engine.publish_market()
    sig = engine.add_signal(Side.BUY, 2)
    assert window.mispricings.model.rowCount() == 1
    window.mispricings.select_first()
    window.approve_action.trigger()                                # shortcut A
    dialog = window.mispricings.what_if
    assert dialog is not None and dialog.send.isEnabled()
    assert "passes" in dialog.view.verdict.text()
    dialog.accept()
    rows = window.orders.rows()
    assert len(rows) == 1 and rows[0].order.signal_id == sig.signal_id
    assert rows[0].status == "FILLED" and rows[0].filled == 2
    qtbot.waitUntil(lambda: window.positions.model.rowCount() == 1, timeout=3000)
    assert window.positions.model.records()[0]["quantity"] == 2
    assert window.mispricings.model.rowCount() == 0                # ORDERED signals leave the table


def test_reject_removes_the_signal(qtbot, window, engine):
    engine.add_signal()
    window.mispricings.select_first()
    window.reject_action.trigger()                                  # shortcut R
    assert window.mispricings.model.rowCount() == 0
    assert all(s.state.value == "REJECTED" for s in engine._signals.values())


def test_auto_execute_asks_then_toggles(qtbot, window, engine, monkeypatch):
    answers = iter([QMessageBox.No, QMessageBox.Yes])
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: (asked.append(a[2]), next(answers))[1])
    window.mispricings.auto.click()
    assert not engine.auto_execute and not window.mispricings.auto.isChecked()
    window.mispricings.auto.click()
    assert engine.auto_execute and window.mispricings.auto.isChecked()
    assert "Auto limits" in asked[-1] and "$20,000" in asked[-1]
    window.mispricings.auto.click()                                # off needs no confirmation
    assert not engine.auto_execute


def test_kill_switch_cancels_working_orders_and_halts(qtbot, window, engine):
    engine.fill_immediately = False
    engine.publish_market()
    qtbot.waitUntil(lambda: window.orders.contract_id() is not None, timeout=3000)
    window.orders.quantity.setValue(1)
    window.orders.preview()
    assert window.orders.send.isEnabled()
    window.orders.submit()
    assert window.orders.rows()[0].status == "SUBMITTED"
    window.kill_action.trigger()                                   # Ctrl+K
    assert window.orders.rows()[0].status == "CANCELLED"
    assert window.state_label.text() == "HALTED"
    assert window.risk.state.text() == "HALTED"


def test_oversized_ticket_shows_the_denial_and_cannot_be_sent(qtbot, window, engine):
    engine.publish_market()
    qtbot.waitUntil(lambda: window.orders.contract_id() is not None, timeout=3000)
    window.orders.quantity.setValue(engine.settings.risk.max_order_quantity + 5)
    window.orders.preview()
    assert not window.orders.send.isEnabled()
    assert "DENIED" in window.orders.preview_view.verdict.text()
    assert "MAX_ORDER_QUANTITY" in window.orders.preview_view.verdict.text()


def test_settings_dialog_validates_inline_and_a_new_limit_is_enforced(qtbot, window, engine):
    window.open_settings()
    dialog = window.settings_dialog
    assert not dialog.set_value("risk.max_order_quantity", "0")
    assert ">= 1" in dialog.error_text("risk.max_order_quantity")
    assert not dialog.apply_button.isEnabled()
    assert not dialog.set_value("risk.max_order_quantity", "lots")
    assert dialog.set_value("risk.max_order_quantity", "3")
    assert dialog.apply_button.isEnabled()
    tip = dialog.editors["risk.max_order_quantity"].widget.toolTip()
    assert tip == "Largest order, contracts."
    dialog.apply()
    assert engine.settings.risk.max_order_quantity == 3
    assert window.settings.risk.max_order_quantity == 3
    engine.publish_market()
    qtbot.waitUntil(lambda: window.orders.contract_id() is not None, timeout=3000)
    window.orders.quantity.setValue(4)
    window.orders.preview()
    assert "MAX_ORDER_QUANTITY" in window.orders.preview_view.verdict.text()
    assert not window.orders.send.isEnabled()


def test_settings_cancel_discards(qtbot, window, engine):
    window.open_settings()
    dialog = window.settings_dialog
    dialog.set_value("risk.max_position", "7")
    dialog.reject()
    assert engine.settings.risk.max_position == 50


def test_layout_save_restore_and_reset(qtbot, engine, store):
    make_app()
    first = MainWindow(engine, engine.settings, store)
    qtbot.addWidget(first)
    first.show()
    first.docks["log"].close()
    first.close()                                                  # writes the layout
    second = MainWindow(engine, engine.settings, store)
    qtbot.addWidget(second)
    second.show()
    assert not second.docks["log"].isVisible()
    assert second.docks["surface"].isVisible()
    second.reset_layout()
    assert all(not d.isHidden() for d in second.docks.values())
    second.close()


def test_alerts_newest_first_acknowledge_filter_and_tray(qtbot, window, engine):
    notes = []
    window.alerts.notify.connect(lambda *a: notes.append(a))
    engine.raise_alert(Severity.INFO, message="first")
    engine.raise_alert(Severity.CRITICAL, "KILL_SWITCH", "second")
    assert window.alerts.model.rowCount() == 2
    assert len(notes) == 1 and "KILL_SWITCH" in notes[0][0]        # critical only -> tray
    window.alerts.level.setCurrentIndex(3)                         # CRITICAL and above
    assert window.alerts.proxy.rowCount() == 1
    window.alerts.acknowledge_all()
    assert window.alerts.unacknowledged() == 0


def test_log_panel_shows_records_and_filters_by_level(qtbot, window):
    logging.getLogger("workstation.test").warning("spread too wide on 6000C")
    logging.getLogger("workstation.test").debug("noise")
    qtbot.waitUntil(lambda: "spread too wide" in window.log_panel.visible_text(), timeout=3000)
    assert "noise" not in window.log_panel.visible_text()
    window.log_panel.level.setCurrentText("ERROR")
    assert "spread too wide" not in window.log_panel.visible_text()


def test_live_guard_needs_the_typed_account(qtbot, engine, store):
    from workstation.ui.dialogs.live_guard import LiveGuardDialog

    settings = Settings.model_validate({"ib": {"live": True, "account": "DU1234567"},
                                        "execution": {"trading_enabled": False}})
    engine.settings = settings
    make_app()
    dialog = LiveGuardDialog(settings, __import__("workstation.ui.bridge", fromlist=["Bridge"]).Bridge(engine))
    qtbot.addWidget(dialog)
    dialog.entry.setText("DU123")
    assert not dialog.enable.isEnabled()
    dialog.entry.setText("DU1234567")
    assert dialog.enable.isEnabled()
    dialog.confirm()
    assert engine.settings.execution.trading_enabled


def test_live_connection_is_red_in_the_status_bar(qtbot, window, engine):
    from workstation import bus as topics

    engine.bus.publish(topics.STATUS, {"connection": "ib-live", "connected": True, "data_age_s": 1.0})
    assert "LIVE" in window.connection.text()
    assert "background" in window.connection.styleSheet()
    assert "LIVE" in window.windowTitle()


@pytest.mark.xvfb
def test_3d_surface_under_xvfb(qtbot, engine):
    from workstation.ui.bridge import Bridge
    from workstation.ui.panels.surface import SurfacePanel

    make_app()
    panel = SurfacePanel(Bridge(engine), "auto")
    qtbot.addWidget(panel)
    panel.show()
    assert panel.gl_view is not None, panel.note.text()
    panel.bridge.attach(engine.bus)
    engine.publish_market()
    panel.flush()
    assert panel.gl_mesh is not None
    qtbot.wait(200)
    assert not panel.gl_view.grab().isNull()
    panel.bridge.detach()
