"""The Backtest window (Tools menu): runs a short recording in a worker thread with a progress bar, shows the
report's charts, and Stop leaves a partial report. Offscreen Qt."""
from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402

from test_backtest import _record  # noqa: E402
from engine_support import SimRig  # noqa: E402
from workstation.config import Settings  # noqa: E402
from workstation.ui.app import make_app  # noqa: E402
from workstation.ui.dialogs.backtest import BacktestDialog  # noqa: E402
from workstation.ui.main_window import MainWindow  # noqa: E402


@pytest.fixture(scope="module")
def short_recording(tmp_path_factory, warm_numba):    # the replay's first fit must not compile inside a timed wait
    out = tmp_path_factory.mktemp("short")
    asyncio.run(_record(out, 12, 30.0))
    return out


def test_tools_menu_opens_the_backtest_window(qtbot, tmp_path):
    make_app()
    rig = SimRig(tmp_path)                      # the real engine (not started: the menu needs no market)
    engine = rig.engine
    win = MainWindow(engine, engine.settings, QSettings(str(tmp_path / "layout.ini"), QSettings.IniFormat))
    qtbot.addWidget(win)
    win.open_backtest()
    assert isinstance(win.backtest_dialog, BacktestDialog) and win.backtest_dialog.isVisible()
    win.backtest_dialog.close()
    win.close()
    rig.journal.close()


def test_run_shows_progress_and_charts(qtbot, short_recording, tmp_path):
    make_app()
    dialog = BacktestDialog(Settings())
    qtbot.addWidget(dialog)
    dialog.data.setText(str(short_recording))
    dialog.out.setText(str(tmp_path))
    dialog.slippage.setValue(1)
    dialog.start()
    assert dialog.running and not dialog.run_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=60_000)
    assert dialog.progress.value() == dialog.progress.maximum() == 12
    assert dialog.tabs.count() == 5 and dialog.open_button.isEnabled()       # four chart tabs and the run's log
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["snapshots"] == 12 and metrics["settings"]["execution"]["paper"]["slippage_ticks"] == 1
    assert "12 snapshots" in dialog.status.text()


def test_stop_writes_a_partial_report_and_bad_data_is_refused(qtbot, short_recording, tmp_path):
    make_app()
    dialog = BacktestDialog(Settings())
    qtbot.addWidget(dialog)
    dialog.data.setText(str(tmp_path / "missing"))
    dialog.start()
    assert not dialog.running and "No such" in dialog.status.text()
    dialog.data.setText(str(short_recording))
    dialog.out.setText(str(tmp_path / "out"))
    dialog.start()
    dialog.request_stop()                               # before the first snapshot: stops at once
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=60_000)
    assert dialog.report.metrics["interrupted"]
    assert (tmp_path / "out" / "report.html").exists()


def test_a_gui_backtest_is_isolated_from_the_live_window(qtbot, short_recording, tmp_path, caplog):
    """Its log goes to the Backtest window, never the live Log panel; its order ids are BT-…, not HW-…; its
    journal is its own (the live one gains nothing)."""
    import logging
    caplog.set_level(logging.INFO, logger="workstation.backtest")      # as the app's logging setup does
    make_app()
    rig = SimRig(tmp_path)
    engine = rig.engine
    win = MainWindow(engine, engine.settings, QSettings(str(tmp_path / "layout.ini"), QSettings.IniFormat))
    qtbot.addWidget(win)
    live_orders = len(rig.journal.orders())
    win.open_backtest()
    dialog = win.backtest_dialog
    dialog.data.setText(str(short_recording))
    dialog.out.setText(str(tmp_path / "bt"))
    dialog.start()
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=60_000)
    qtbot.waitUntil(lambda: "backtest of" in dialog.log_view.toPlainText(), timeout=5_000)
    win.flush()
    assert "backtest of" not in win.log_panel.visible_text()
    ids = [row["client_order_id"] for row in _fills_in(tmp_path / "bt")]
    assert ids and all(i.startswith("BT-") for i in ids), ids
    assert len(rig.journal.orders()) == live_orders
    dialog.close()
    win.close()
    rig.journal.close()


def _fills_in(out):
    """The backtest's orders as metrics.json lists them."""
    metrics = json.loads((out / "metrics.json").read_text())
    return [{"client_order_id": cid} for cid in metrics["order_ids"]]
