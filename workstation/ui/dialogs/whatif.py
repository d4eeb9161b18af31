"""What-if: the order as it would be sent, its model value and edge, Greeks after the trade and every
pre-trade check. A denied order names its reason and cannot be sent from here."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QLabel, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from .. import theme
from ..bridge import pick


def _text(value: Any) -> str:
    """Enum members by value (RiskCode.MAX_ORDER_QUANTITY -> 'MAX_ORDER_QUANTITY')."""
    return str(getattr(value, "value", value))


def check_rows(decision: Any) -> list[tuple[str, bool, str, str]]:
    """(name, passed, code, detail) for each pre-trade check of a RiskDecision."""
    rows = []
    for r in list(pick(decision, "results", "checks", default=[]) or []):
        rows.append((str(pick(r, "name", default="")), bool(pick(r, "passed", default=False)),
                     _text(pick(r, "code", default="")), str(pick(r, "detail", "message", default=""))))
    return rows


def denial_text(preview: Any) -> str:
    """One line naming why an order is denied ('' when approved)."""
    decision = pick(preview, "decision")
    if decision is None:
        return pick(preview, "message", default="") or "no pre-trade decision"
    if bool(pick(decision, "approved", default=False)):
        return ""
    failed = [f"{code or name}: {detail}" if detail else (code or name)
              for name, passed, code, detail in check_rows(decision) if not passed]
    if not failed:
        failed = [_text(r) for r in (pick(decision, "reasons", default=[]) or [])]
    return "; ".join(failed) or "denied"


def what_if_greeks(decision: Any) -> dict[str, Any]:
    """Greeks after the trade, as the risk engine reports them (dict), or {}."""
    value = pick(decision, "what_if", "greeks_after", "after", "post_trade", default={})
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    return dict(value) if isinstance(value, dict) else {}


class PreviewView(QWidget):
    """Shared by the what-if dialog and the order ticket: summary, verdict, checks table."""

    SUMMARY = ("Order", "Limit", "Mid", "Model value", "Edge", "Greeks after")
    COMPACT = ("Model value", "Edge", "Greeks after")       # the ticket shows the order and market itself

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
        layout.addLayout(self.form)
        self.verdict = QLabel("")
        self.verdict.setWordWrap(True)
        layout.addWidget(self.verdict)
        self.checks = QTableWidget(0, 3)
        self.checks.setHorizontalHeaderLabels(["Check", "Result", "Detail"])
        self.checks.verticalHeader().setVisible(False)
        self.checks.horizontalHeader().setStretchLastSection(True)
        self.checks.setEditTriggers(QTableWidget.NoEditTriggers)
        self.checks.setWordWrap(False)
        self.checks.verticalHeader().setDefaultSectionSize(20)
        self.checks.setMinimumHeight(6 * 20 + 26)         # six checks readable without scrolling
        layout.addWidget(self.checks, 1)

    def show_preview(self, preview: Any) -> bool:
        """Fill from an OrderPreview; True when the order would pass the checks."""
        order = pick(preview, "order")
        decision = pick(preview, "decision")
        if order is not None:
            contract = pick(order, "contract")
            desc = pick(contract, "description", default=str(contract))
            self.labels["Order"].setText(f"{order.side.value} {order.quantity} {desc} ({order.purpose.value})")
            self.labels["Limit"].setText(theme.fmt(order.limit_price))
        else:
            self.labels["Order"].setText(pick(preview, "message", default="–"))
        self.labels["Mid"].setText(theme.fmt(pick(preview, "mid")))
        self.labels["Model value"].setText(theme.fmt(pick(preview, "model_price")))
        edge = pick(preview, "edge_dollars")
        self.labels["Edge"].setText(f"{theme.fmt(edge, 0, dollars=True)} per order")
        colour = theme.signed_colour(edge)
        self.labels["Edge"].setStyleSheet(f"color: {colour.name()}" if colour else "")
        greeks = what_if_greeks(decision)
        self.labels["Greeks after"].setText("  ".join(f"{k} {theme.fmt(v, 0, dollars=True)}" for k, v in greeks.items()
                                                      if isinstance(v, (int, float))) or "–")
        margin = pick(decision, "margin")
        if margin:
            self.labels["Greeks after"].setText(self.labels["Greeks after"].text() + f"   margin {theme.fmt(margin, 0, dollars=True)}")
        why = denial_text(preview)
        approved = not why
        self.verdict.setObjectName("approved" if approved else "denied")
        self.verdict.setText("✔ passes every pre-trade check" if approved else f"✖ DENIED — {why}")
        self.verdict.setStyleSheet(f"color: {theme.POSITIVE if approved else theme.NEGATIVE}; font-weight: bold")
        rows = sorted(check_rows(decision), key=lambda r: r[1])      # failed checks first
        self.checks.setRowCount(len(rows))
        for i, (name, passed, code, detail) in enumerate(rows):
            result = QTableWidgetItem("pass" if passed else f"FAIL {code}".strip())
            result.setForeground(QColor(theme.POSITIVE if passed else theme.NEGATIVE))
            self.checks.setItem(i, 0, QTableWidgetItem(name))
            self.checks.setItem(i, 1, result)
            cell = QTableWidgetItem(detail)
            cell.setToolTip(detail)
            self.checks.setItem(i, 2, cell)
        self.checks.resizeColumnsToContents()
        return approved


class WhatIfDialog(QDialog):
    """Shown before an approved signal is sent. Accept = send."""

    def __init__(self, preview: Any, title: str = "Approve signal — what if", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(620, 600)
        layout = QVBoxLayout(self)
        self.view = PreviewView(self)
        layout.addWidget(self.view)
        ok = self.view.show_preview(preview)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Cancel)
        self.send = self.buttons.addButton("Send order", QDialogButtonBox.AcceptRole)
        self.send.setEnabled(ok)
        self.send.setObjectName("approve")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
