"""Alerts: severity-coloured, newest first, acknowledge, filter; critical ones also go to the tray."""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

from .. import market_time, theme
from ..bridge import Bridge
from ..models import Column, RecordModel
from .base import Panel, make_table, selected_record

SEVERITIES = ("INFO", "WARNING", "ERROR", "CRITICAL")


def _colour(alert) -> QColor:
    return QColor(theme.SEVERITY_COLOURS.get(alert.severity.name, theme.TEXT))


COLUMNS = [
    Column("Time ET", lambda a: a.timestamp, market_time.et, numeric=False, tooltip="New York time"),
    Column("Severity", lambda a: int(a.severity), lambda v: SEVERITIES[min(3, max(0, v // 10 - 1))], _colour,
           numeric=False),
    Column("Code", lambda a: a.code, str, numeric=False),
    Column("Source", lambda a: a.source, str, numeric=False),
    Column("×", lambda a: a.count, lambda v: f"{v}"),
    Column("Ack", lambda a: "✔" if a.acknowledged else "", str, numeric=False),
    Column("Message", lambda a: a.message, str, _colour, numeric=False),
]


class AlertsPanel(Panel):
    title = "Alerts"
    name = "alerts"
    notify = Signal(str, str, int)        # title, message, severity: the window shows it in the tray

    def __init__(self, bridge: Bridge, tray_min_severity: str = "CRITICAL", parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self.tray_min = SEVERITIES.index(tray_min_severity) * 10 + 10
        self.model = RecordModel(COLUMNS, self)
        self.table, self.proxy = make_table(self.model, self, placeholder="No alerts — all quiet.")
        self.table.sortByColumn(0, Qt.DescendingOrder)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        bar = QHBoxLayout()
        self.level = QComboBox()
        self.level.addItems([f"≥ {s}" for s in SEVERITIES])
        self.level.setToolTip("Show alerts at or above this severity")
        self.level.currentIndexChanged.connect(self._refilter)
        self.show_acked = QComboBox()
        self.show_acked.addItems(["all", "unacked"])
        self.show_acked.currentIndexChanged.connect(self._refilter)
        self.search = QLineEdit()
        self.search.setPlaceholderText("filter code or text")
        self.search.setMinimumWidth(110)
        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.ack = QPushButton("Ack")
        self.ack.setToolTip("Acknowledge the selected alert (a repeat after this starts a new row)")
        self.ack.clicked.connect(self.acknowledge_selected)
        self.ack_all = QPushButton("Ack all")
        self.ack_all.clicked.connect(self.acknowledge_all)
        for w in (self.level, self.show_acked, self.search, self.ack, self.ack_all):
            bar.addWidget(w, 1 if w is self.search else 0)
        layout.addLayout(bar)
        layout.addWidget(self.table)
        bridge.alert.connect(self.add_alert)

    def _refilter(self) -> None:
        min_sev = self.level.currentIndex() * 10 + 10
        unacked = self.show_acked.currentIndex() == 1
        self.proxy.set_predicate(lambda a: int(a.severity) >= min_sev and not (unacked and a.acknowledged))

    def _key(self, alert):
        return alert.alert_id or (alert.code, alert.source, alert.timestamp.isoformat())

    def add_alert(self, alert) -> None:
        """A new alert, or a folded repeat (same alert_id, higher count) or acknowledgement: one row each."""
        key = self._key(alert)
        before = self.model.get(key)
        self.model.upsert(key, alert)
        louder = before is None or int(alert.severity) > int(before.severity)   # no tray spam for repeats
        if louder and int(alert.severity) >= self.tray_min and not alert.acknowledged:
            self.notify.emit(f"{alert.severity.name}: {alert.code}", alert.message, int(alert.severity))

    def acknowledge(self, alert) -> None:
        """Through the engine's alert router when there is one (the row updates from its answer)."""
        if not self.bridge.acknowledge_alert(alert.alert_id):
            self.model.upsert(self._key(alert), replace(alert, acknowledged=True))

    def acknowledge_selected(self) -> None:
        alert = selected_record(self.table)
        if alert is not None and not alert.acknowledged:
            self.acknowledge(alert)

    def acknowledge_all(self) -> None:
        for alert in self.model.records():
            if not alert.acknowledged:
                self.acknowledge(alert)

    def unacknowledged(self) -> int:
        return sum(1 for a in self.model.records() if not a.acknowledged)
