"""Log: the application log through a logging.Handler that emits a Qt signal; filter by level. Lines are stamped
with the market clock in New York time (simulated time in the simulator), like every other panel."""
from __future__ import annotations

import logging
from collections import deque

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from .. import market_time, theme
from ..bridge import Bridge
from .base import Panel

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
COLOURS = {"DEBUG": theme.MUTED, "INFO": theme.TEXT, "WARNING": theme.WARNING, "ERROR": theme.NEGATIVE,
           "CRITICAL": theme.NEGATIVE}


class _Emitter(QObject):
    record = Signal(object)


class MarketTimeFormatter(logging.Formatter):
    """Stamps a record with the market clock (ET) at the moment it is logged, not the wall clock."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return market_time.et(market_time.now(), datefmt or "%H:%M:%S")


BACKTEST_THREAD = "backtest"      # workstation.backtest.runner.BACKTEST_THREAD (the ui does not import it)


def from_backtest(record: logging.LogRecord) -> bool:
    """A record logged by a backtest run from the GUI (its worker and numerics threads are named so)."""
    return record.threadName.startswith(BACKTEST_THREAD)


class QtLogHandler(logging.Handler):
    """Any thread may log; the record reaches the panel as a queued Qt signal (`handler.emitter.record`).
    `accept` picks the records this view shows (the live Log panel: not a backtest's)."""

    def __init__(self, level: int = logging.DEBUG, accept=lambda record: not from_backtest(record)) -> None:
        super().__init__(level)
        self.emitter = _Emitter()
        self.accept = accept
        self.setFormatter(MarketTimeFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        if not self.accept(record):
            return
        try:
            self.emitter.record.emit((record.levelno, record.levelname, self.format(record)))
        except RuntimeError:   # the panel is gone (shutdown)
            pass


class LogPanel(Panel):
    title = "Log"
    name = "log"
    MAX_LINES = 5000

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self.lines: deque[tuple[int, str, str]] = deque(maxlen=self.MAX_LINES)
        self._pending: list[tuple[int, str, str]] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        bar = QHBoxLayout()
        self.level = QComboBox()
        self.level.addItems(LEVELS)
        self.level.setCurrentText("INFO")
        self.level.currentIndexChanged.connect(self._rebuild)
        self.search = QLineEdit()
        self.search.setPlaceholderText("filter text")
        self.search.textChanged.connect(self._rebuild)
        clear = QPushButton("Clear")
        clear.clicked.connect(self._clear)
        bar.addWidget(self.level)
        bar.addWidget(self.search, 1)
        bar.addWidget(clear)
        zone = QLabel(f"times {market_time.ZONE}")
        zone.setToolTip("Lines are stamped with the market clock, New York time")
        bar.addWidget(zone)
        layout.addLayout(bar)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(self.MAX_LINES)
        self.text.setFont(theme.mono_font(8))
        layout.addWidget(self.text)
        self.handler = QtLogHandler()
        self.handler.emitter.record.connect(self._on_record)
        logging.getLogger().addHandler(self.handler)

    def detach(self) -> None:
        logging.getLogger().removeHandler(self.handler)

    def _on_record(self, entry) -> None:
        self.lines.append(entry)
        self._pending.append(entry)
        self.mark_dirty()

    def _accepts(self, entry) -> bool:
        levelno, _, text = entry
        needle = self.search.text().lower()
        return levelno >= logging.getLevelName(self.level.currentText()) and (not needle or needle in text.lower())

    def _html(self, entry) -> str:
        _, name, text = entry
        safe = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f"<span style='color:{COLOURS.get(name, theme.TEXT)}'>{safe}</span>"

    def render(self) -> None:
        for entry in self._pending:
            if self._accepts(entry):
                self.text.appendHtml(self._html(entry))
        self._pending.clear()

    def _rebuild(self) -> None:
        self._pending.clear()
        self.text.clear()
        self.text.appendHtml("<br>".join(self._html(e) for e in self.lines if self._accepts(e)))

    def _clear(self) -> None:
        self.lines.clear()
        self._pending.clear()
        self.text.clear()

    def visible_text(self) -> str:
        return self.text.toPlainText()
