"""Backtest window (Tools menu): pick a recording or Cboe CSV, a date window, slippage and an output folder; run
with a progress bar (Stop keeps the partial report); view the report's charts, or open report.html.

The backtest runs in a worker thread with its own event loop (`workstation.backtest.runner.run`), on a copy of
the workstation's settings: the live engine is never touched.
"""
from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QObject, Qt, QThread, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtSvgWidgets import QSvgWidget
from PySide6.QtWidgets import (QDialog, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar,
                               QPlainTextEdit, QPushButton, QScrollArea, QSpinBox, QTabWidget, QVBoxLayout,
                               QWidget)

from .. import theme
from ..panels.log import QtLogHandler, from_backtest

CHART_TABS = (("Equity", ("equity", "drawdown", "daily")),
              ("Attribution", ("attribution", "attribution_cumulative")),
              ("Edge vs P&L", ("edge",)),
              ("Heston", ("param_v0", "param_kappa", "param_theta", "param_sigma", "param_rho", "param_rmse")))


class BacktestWorker(QObject):
    """Runs one backtest and writes its report; signals progress, then the Report (or an error)."""

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, settings: Any, data: Path, out: Path, date_from: str | None, date_to: str | None) -> None:
        super().__init__()
        self.settings, self.data, self.out = settings, data, out
        self.date_from, self.date_to = date_from, date_to
        self.stop = threading.Event()

    def run(self) -> None:
        from workstation.backtest.report import build_report
        from workstation.backtest.runner import BACKTEST_THREAD, run
        threading.current_thread().name = BACKTEST_THREAD    # its log goes to the Backtest window, not the Log panel
        try:
            result = run(self.settings, self.data, self.date_from, self.date_to,
                         progress=lambda done, total: self.progress.emit(done, total), should_stop=self.stop.is_set)
            report = build_report(result, title=f"Backtest of {self.data.name}")
            report.write(self.out)
        except Exception as exc:   # shown in the window: a bad file must not take the workstation down
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        self.finished.emit(report)


class BacktestDialog(QDialog):
    """The Backtest window."""

    def __init__(self, settings: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Backtest")
        self.resize(960, 760)
        self.settings = settings
        self.report: Any = None
        self._thread: QThread | None = None
        self.worker: BacktestWorker | None = None
        layout = QVBoxLayout(self)

        form = QFormLayout()
        self.data = QLineEdit()
        self.data.setPlaceholderText("recording folder (Parquet) or Cboe CSV")
        form.addRow("Data", self._with_buttons(self.data, ("Folder…", self._pick_folder), ("CSV…", self._pick_csv)))
        self.date_from = QLineEdit()
        self.date_from.setPlaceholderText("YYYY-MM-DD or YYYY-MM-DDTHH:MM (New York), optional")
        self.date_to = QLineEdit()
        self.date_to.setPlaceholderText("optional")
        form.addRow("From", self.date_from)
        form.addRow("To", self.date_to)
        self.slippage = QSpinBox()
        self.slippage.setRange(0, 20)
        self.slippage.setValue(int(settings.execution.paper.slippage_ticks))
        self.slippage.setSuffix(" tick(s)")
        form.addRow("Slippage", self.slippage)
        self.out = QLineEdit(str(Path(tempfile.gettempdir()) / "heston-backtest"))
        form.addRow("Output folder", self._with_buttons(self.out, ("Choose…", self._pick_out)))
        layout.addLayout(form)

        row = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.request_stop)
        self.open_button = QPushButton("Open report.html")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_report)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m snapshots")
        for w in (self.run_button, self.stop_button, self.progress, self.open_button):
            row.addWidget(w)
        layout.addLayout(row)
        self.status = QLabel("Settings: the workstation's current settings (signals auto-execute in a backtest).")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.status)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs, 1)
        self.log_view = QPlainTextEdit()         # this run's own log (the live Log panel never shows it)
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setFont(theme.mono_font(9))
        self.log_handler = QtLogHandler(logging.INFO, accept=from_backtest)
        self.log_handler.emitter.record.connect(lambda entry: self.log_view.appendPlainText(entry[2]))
        logging.getLogger().addHandler(self.log_handler)
        empty = QLabel("No report yet.\n\nChoose a recording folder (python main.py record) or a Cboe quotes CSV, "
                       "then Run:\nthe equity curve, drawdown, P&L attribution, edge vs P&L and the Heston "
                       "parameters appear here.")
        empty.setAlignment(Qt.AlignCenter)
        empty.setWordWrap(True)
        empty.setStyleSheet(f"color: {theme.MUTED}")
        self.tabs.addTab(empty, "Report")
        self.tabs.addTab(self.log_view, "Log")

    def _with_buttons(self, edit: QLineEdit, *buttons: tuple[str, Any]) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        for text, slot in buttons:
            b = QPushButton(text)
            b.clicked.connect(slot)
            row.addWidget(b)
        return box

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Recording folder", self.data.text())
        if path:
            self.data.setText(path)

    def _pick_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Cboe quotes CSV", self.data.text(), "CSV (*.csv)")
        if path:
            self.data.setText(path)

    def _pick_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder", self.out.text())
        if path:
            self.out.setText(path)

    # ------------------------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self.running:
            return
        data = Path(self.data.text().strip())
        if not self.data.text().strip() or not data.exists():
            self.status.setText(f"No such recording or CSV: {data}")
            return
        settings = self.settings.model_copy(deep=True)
        settings.execution.paper.slippage_ticks = self.slippage.value()
        self.worker = BacktestWorker(settings, data, Path(self.out.text().strip()),
                                     self.date_from.text().strip() or None, self.date_to.text().strip() or None)
        self._thread = QThread(self)
        self.worker.moveToThread(self._thread)
        self._thread.started.connect(self.worker.run)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.open_button.setEnabled(False)
        self.progress.setValue(0)
        self.status.setText(f"Replaying {data} …")
        self._thread.start()

    def request_stop(self) -> None:
        if self.worker is not None:
            self.worker.stop.set()
            self.status.setText("Stopping after this snapshot; the partial report will be written.")

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def _finish_thread(self) -> None:
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
            self._thread = None
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def _on_failed(self, message: str) -> None:
        self._finish_thread()
        self.status.setText(f"Backtest failed: {message}")

    def _on_finished(self, report: Any) -> None:
        self._finish_thread()
        self.report = report
        from workstation.backtest.report import hit_rate_text, ratios_text
        m = report.metrics
        self.status.setText(
            f"{'Partial (stopped): ' if m['interrupted'] else ''}{m['snapshots']} snapshots — P&L "
            f"{m['pnl']['total']:,.2f} $ (fees {m['fees']:,.2f}), {m['trades']['total']} trades, hit rate "
            f"{hit_rate_text(m['hit_rate'], m['trades']['closed'])}, max drawdown {m['max_drawdown']:,.2f} $, "
            f"{ratios_text(m)}. "
            f"Report in {self.out.text()}")
        self.open_button.setEnabled(True)
        self.show_charts(report.charts)

    def show_charts(self, svgs: dict[str, str]) -> None:
        self.tabs.clear()
        for title, names in CHART_TABS:
            page = QWidget()
            col = QVBoxLayout(page)
            for name in names:
                if name not in svgs:
                    continue
                view = QSvgWidget()
                view.load(QByteArray(svgs[name].encode("utf-8")))
                size = view.renderer().defaultSize()
                view.setFixedSize(size)
                col.addWidget(view)
            col.addStretch(1)
            scroll = QScrollArea()
            scroll.setWidget(page)
            scroll.setWidgetResizable(True)
            self.tabs.addTab(scroll, title)
        self.tabs.addTab(self.log_view, "Log")

    def open_report(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(self.out.text()) / "report.html")))

    def closeEvent(self, event) -> None:
        if self.worker is not None:
            self.worker.stop.set()
        self._finish_thread()
        logging.getLogger().removeHandler(self.log_handler)
        super().closeEvent(event)
