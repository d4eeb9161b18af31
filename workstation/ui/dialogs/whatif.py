"""What-if: the order as it would be sent, its model value and edge, Greeks after the trade and every
pre-trade check. A denied order names its reason and cannot be sent from here."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...events import OrderPreview
from ...risk.limits import RiskDecision
from .. import market_time, theme


def check_rows(decision: RiskDecision | None) -> list[tuple[str, bool, str, str]]:
    """(name, passed, code, detail) for each pre-trade check of a RiskDecision."""
    if decision is None:
        return []
    return [(r.name, r.passed, r.code.value, r.detail) for r in decision.results]


def denial_text(preview: OrderPreview) -> str:
    """One line naming why an order is denied ('' when approved)."""
    decision = preview.decision
    if decision is None:
        return preview.message or "no pre-trade decision"
    if decision.approved:
        return ""
    return decision.denial() or "denied"


def what_if_greeks(decision: RiskDecision | None) -> dict[str, float]:
    """The portfolio's dollar Greeks after the trade, as the risk engine reports them, or {}."""
    return decision.what_if.as_dict() if decision is not None else {}


class PreviewView(QWidget):
    """Shared by the what-if dialog and the order ticket: summary, verdict, checks table."""

    SUMMARY = ("Order", "Limit", "Mid", "Model value", "Edge $ per order", "Greeks after")
    COMPACT = ("Model value", "Edge $ per order", "Greeks after")   # the ticket shows the order and market itself

    def __init__(self, parent: QWidget | None = None, compact: bool = False) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.form = QFormLayout()
        self.form.setVerticalSpacing(3)
        self.labels: dict[str, QLabel] = {}
        for key in self.SUMMARY:
            self.labels[key] = QLabel("–")
            self.labels[key].setTextInteractionFlags(Qt.TextSelectableByMouse)
            self.labels[key].setWordWrap(True)
            if not compact or key in self.COMPACT:
                self.form.addRow(key, self.labels[key])
        self.labels["Edge $ per order"].setToolTip("(model value − limit) × side × multiplier × quantity: the "
                                                   "edge of the whole order in $, not per contract")
        self.labels["Greeks after"].setToolTip("Portfolio dollar Greeks if the order fills in full: delta$ and "
                                               "gamma$ per 1 % move, vega$ per vol point, theta$ per day")
        layout.addLayout(self.form)
        self.verdict = QLabel("")
        self.verdict.setWordWrap(True)
        layout.addWidget(self.verdict)
        self.checks = ChecksTable(visible=6)                 # six checks readable without scrolling
        layout.addWidget(self.checks, 1)

    def show_preview(self, preview: OrderPreview) -> bool:
        """Fill from an OrderPreview; True when the order would pass the checks."""
        order, decision = preview.order, preview.decision
        if order is not None:
            self.labels["Order"].setText(f"{order.side.value} {order.quantity} {order.contract.description} "
                                         f"({order.purpose.value})")
            self.labels["Limit"].setText(theme.fmt(order.limit_price))
        else:
            self.labels["Order"].setText(preview.message or "–")
        self.labels["Mid"].setText(theme.fmt(preview.mid))
        self.labels["Model value"].setText(theme.fmt(preview.model_price))
        edge = preview.edge_dollars
        qty = f" ({order.quantity} × {order.contract.multiplier:g})" if order is not None else ""
        self.labels["Edge $ per order"].setText(f"{theme.fmt(edge, 0, dollars=True)}{qty}")
        colour = theme.signed_colour(edge)
        self.labels["Edge $ per order"].setStyleSheet(f"color: {colour.name()}" if colour else "")
        greeks = what_if_greeks(decision)
        self.labels["Greeks after"].setText("  ".join(f"{k} {theme.fmt(v, 0, dollars=True)}" for k, v in greeks.items()
                                                      if isinstance(v, (int, float))) or "–")
        margin = decision.margin if decision is not None else 0.0
        if margin:
            self.labels["Greeks after"].setText(self.labels["Greeks after"].text() + f"   margin {theme.fmt(margin, 0, dollars=True)}")
        why = denial_text(preview)
        approved = not why
        self.verdict.setObjectName("approved" if approved else "denied")
        self.verdict.setText("✔ passes every pre-trade check" if approved else f"✖ DENIED — {why}")
        self.verdict.setStyleSheet(f"color: {theme.POSITIVE if approved else theme.NEGATIVE}; font-weight: bold")
        self.checks.show_decision(decision)
        return approved


class ChecksTable(QTableWidget):
    """The (check, result, detail) table of a pre-trade decision, failed checks first.

    A ticket re-runs its checks every cycle; the rows keep their items and only changed texts are set, and the
    columns are re-measured only when a check's name or result changed (measuring every cell of the table is
    the costly part of a refresh on the window's thread)."""

    def __init__(self, visible: int) -> None:
        super().__init__(0, 3)
        self.setHorizontalHeaderLabels(["Check", "Result", "Detail"])
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setStretchLastSection(True)
        self.setEditTriggers(QTableWidget.NoEditTriggers)
        self.setWordWrap(False)
        self.verticalHeader().setDefaultSectionSize(20)
        self.setMinimumHeight(visible * 20 + 26)       # `visible` rows tall without scrolling
        self.shown: list[tuple[str, bool, str, str]] = []

    def show_decision(self, decision: RiskDecision | None) -> None:
        rows = sorted(check_rows(decision), key=lambda r: r[1])
        if rows == self.shown:
            return
        relayout = [r[:3] for r in rows] != [r[:3] for r in self.shown]
        self.setRowCount(len(rows))
        for i, (name, passed, code, detail) in enumerate(rows):
            self._set(i, 0, name)
            result = self._set(i, 1, "pass" if passed else f"FAIL {code}".strip())
            result.setForeground(QColor(theme.POSITIVE if passed else theme.NEGATIVE))
            self._set(i, 2, detail).setToolTip(detail)
        self.shown = rows
        if relayout:
            self.resizeColumnsToContents()

    def _set(self, row: int, column: int, text: str) -> QTableWidgetItem:
        item = self.item(row, column)
        if item is None:
            item = QTableWidgetItem(text)
            self.setItem(row, column, item)
        elif item.text() != text:
            item.setText(text)
        return item


class WhatIfDialog(QDialog):
    """Shown before an approved signal is sent. Accept = send.

    With `refresh` (quantity -> preview) the checks re-run whenever `refresh_preview()` is called (every cycle,
    every state change) and when the trader lowers the quantity (at most `max_quantity`); with `expires_at`
    a countdown to the signal's expiry in market time."""

    def __init__(self, preview: Any, title: str = "Approve signal — what if", parent: QWidget | None = None,
                 max_quantity: int | None = None, refresh: Callable[[int], Any] | None = None,
                 expires_at: datetime | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(620, 600)
        self._refresh, self.expires_at = refresh, expires_at
        layout = QVBoxLayout(self)
        head = QFormLayout()
        self.quantity = QSpinBox()
        self.quantity.setRange(1, max(1, max_quantity or 1))
        self.quantity.setValue(max(1, max_quantity or 1))
        self.quantity.setToolTip("Contracts to send: at most the signal's size (what every per-order limit allows)")
        self.quantity.valueChanged.connect(lambda _: self.refresh_preview())
        self.countdown = QLabel("")
        if max_quantity is not None:
            head.addRow("Quantity", self.quantity)
        if expires_at is not None:
            head.addRow("Expires in", self.countdown)
        layout.addLayout(head)
        self.view = PreviewView(self)
        layout.addWidget(self.view)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Cancel)
        self.send = self.buttons.addButton("Send order", QDialogButtonBox.AcceptRole)
        self.send.setObjectName("approve")
        self.send.setEnabled(self.view.show_preview(preview))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._ticker = QTimer(self)
        self._ticker.timeout.connect(self.tick)
        if expires_at is not None:
            self._ticker.start(250)
            self.tick()

    def seconds_left(self) -> float | None:
        if self.expires_at is None:
            return None
        return (self.expires_at - market_time.now()).total_seconds()

    def tick(self) -> None:
        left = self.seconds_left()
        if left is None:
            return
        left = max(0.0, left)
        self.countdown.setText(f"{int(left) // 60}:{int(left) % 60:02d} (market time)")
        self.countdown.setStyleSheet(f"color: {theme.NEGATIVE if left < 30 else theme.TEXT}")

    def set_max_quantity(self, quantity: int) -> None:
        """The signal was resized: the field never offers more than can be sent."""
        self.quantity.setMaximum(max(1, quantity))

    def refresh_preview(self) -> None:
        """Re-run the checks at the current quantity (no field needs editing for the verdict to be current)."""
        if self._refresh is None or not self.isVisible():
            return
        self.send.setEnabled(self.view.show_preview(self._refresh(int(self.quantity.value()))))


def expiry_of(signal: Any, max_age_s: float) -> datetime:
    """When a NEW signal times out (created + signals.max_age_s), market time."""
    return signal.created_at + timedelta(seconds=max_age_s)
