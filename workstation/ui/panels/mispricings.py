"""Mispricings: open signals, sortable and filterable; approve (what-if first) or reject; auto-execute."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPushButton, QVBoxLayout,
                               QWidget)

from .. import market_time, theme
from ..bridge import Bridge, pick
from ..dialogs.whatif import WhatIfDialog, denial_text
from ..models import Column, RecordModel
from .base import Panel, make_table, selected_record


def _side_colour(sig) -> QColor:
    return QColor(theme.POSITIVE if sig.side.value == "BUY" else theme.NEGATIVE)


def _age(sig) -> float:
    return market_time.age_s(sig.created_at)


COLUMNS = [
    Column("Contract", lambda s: s.contract.description, str, numeric=False),
    Column("Expiry", lambda s: s.contract.expiry.isoformat(), str, numeric=False),
    Column("Strike", lambda s: s.contract.strike, lambda v: f"{v:,.0f}"),
    Column("Side", lambda s: s.side.value, str, _side_colour, numeric=False),
    Column("Bid", lambda s: s.bid),
    Column("Ask", lambda s: s.ask),
    Column("Model", lambda s: s.model_price),
    Column("Edge $", lambda s: s.edge_dollars, lambda v: theme.fmt(v, 0, dollars=True),
           lambda s: theme.signed_colour(s.edge_dollars), tooltip="Edge per contract, dollars"),
    Column("Edge vol", lambda s: s.edge_vol, lambda v: f"{v:+.2f}", tooltip="Edge in vol points"),
    Column("z", lambda s: s.zscore, lambda v: f"{v:+.1f}", tooltip="z-score of the IV residual"),
    Column("Vega", lambda s: s.vega, tooltip="Vega per contract, $ per vol point"),
    Column("Qty", lambda s: s.quantity, lambda v: f"{v:d}"),
    Column("Age", _age, lambda v: f"{v:,.0f}s", tooltip="Seconds of market time since the signal appeared"),
    Column("State", lambda s: s.state.value, str, numeric=False),
]
AGE_COLUMN = next(i for i, c in enumerate(COLUMNS) if c.header == "Age")


class MispricingsPanel(Panel):
    title = "Mispricings"
    name = "mispricings"

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self.model = RecordModel(COLUMNS, self)
        self.table, self.proxy = make_table(
            self.model, self, placeholder="No open mispricings: the market agrees with the model within the "
                                          "signal thresholds.")
        self.table.sortByColumn(7, Qt.DescendingOrder)
        self.what_if: WhatIfDialog | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        bar = QHBoxLayout()
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("filter (contract, side, state…)")
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        bar.addWidget(self.filter, 1)
        self.approve_button = QPushButton(theme.icon("approve"), "Approve (A)")
        self.approve_button.setObjectName("approve")
        self.approve_button.clicked.connect(self.approve_selected)
        self.reject_button = QPushButton(theme.icon("reject"), "Reject (R)")
        self.reject_button.setObjectName("reject")
        self.reject_button.clicked.connect(self.reject_selected)
        self.auto = QCheckBox("Auto-execute")
        self.auto.setToolTip("Approve new signals within the auto limits automatically")
        self.auto.clicked.connect(self._toggle_auto)
        for w in (self.approve_button, self.reject_button, self.auto):
            bar.addWidget(w)
        layout.addLayout(bar)
        layout.addWidget(self.table)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.table.doubleClicked.connect(lambda _: self.approve_selected())
        bridge.signal.connect(self._on_signal)
        bridge.settings.connect(lambda _: self.mark_dirty())
        self._ages = QTimer(self)              # ages tick even when no signal changes
        self._ages.timeout.connect(self.mark_dirty)
        self._ages.start(1000)

    # ---------------------------------------------------------------------------------- events
    def _on_signal(self, sig) -> None:
        if sig.state.is_open:
            self.model.upsert(sig.signal_id, sig)
        else:
            self.model.remove(sig.signal_id)

    def render(self) -> None:
        self.model.refresh_column(AGE_COLUMN)
        auto = bool(self.bridge.query("auto_execute", False))
        if self.auto.isChecked() != auto:
            self.auto.setChecked(auto)

    def select_first(self) -> None:
        if self.proxy.rowCount():
            self.table.selectRow(0)

    def select_signal(self, signal_id: str) -> bool:
        """Select the row of `signal_id` (shortcuts then act on it)."""
        for row in range(self.proxy.rowCount()):
            source = self.proxy.mapToSource(self.proxy.index(row, 0))
            if self.model.key(source.row()) == signal_id:
                self.table.selectRow(row)
                return True
        return False

    def current_signal(self):
        return selected_record(self.table)

    # -------------------------------------------------------------------------------- commands
    def approve_selected(self) -> None:
        sig = self.current_signal()
        if sig is None:
            self.message.setText("Select a signal to approve.")
            return
        settings = self.bridge.query("settings")
        if settings is not None and not settings.ui.confirm_orders:
            self._approve(sig.signal_id)
            return
        self.run("preview_signal", sig.signal_id, on_done=lambda p: self._show_what_if(sig, p))

    def _show_what_if(self, sig, preview) -> None:
        self.what_if = WhatIfDialog(preview, f"Approve {sig.side.value} {sig.quantity} {sig.contract.description}",
                                    self)
        self.what_if.accepted.connect(lambda: self._approve(sig.signal_id))
        self.what_if.open()

    def _approve(self, signal_id: str) -> None:
        self.run("approve_signal", signal_id, on_done=self._after_approve)

    def _after_approve(self, preview) -> None:
        why = denial_text(preview) if preview is not None else ""
        if preview is not None and not pick(preview, "sent", default=False):
            self.message.setStyleSheet(f"color: {theme.NEGATIVE}")
            self.message.setText(f"Not sent: {why or pick(preview, 'message', default='')}")
        else:
            self.message.setStyleSheet(f"color: {theme.POSITIVE}")
            order = pick(preview, "order")
            self.message.setText(f"Sent {order.client_order_id}" if order is not None else "Sent.")

    def reject_selected(self) -> None:
        sig = self.current_signal()
        if sig is None:
            self.message.setText("Select a signal to reject.")
            return
        self.run("reject_signal", sig.signal_id, "rejected by trader")
        self.model.remove(sig.signal_id)
        self.message.setStyleSheet("")
        self.message.setText(f"Rejected {sig.contract.description}")

    def _toggle_auto(self, checked: bool) -> None:
        if not checked:
            self.run("set_auto_execute", False)
            return
        self.auto.setChecked(False)
        settings = self.bridge.query("settings")
        limits = ""
        if settings is not None:
            s, r = settings.signals, settings.risk
            limits = (f"\n\nAuto limits: up to {s.auto_max_quantity} contracts and "
                      f"${s.auto_max_premium:,.0f} premium per order.\nRisk limits still apply: max order "
                      f"{r.max_order_quantity} contracts, max position {r.max_position}, daily loss "
                      f"${r.max_daily_loss:,.0f}.")
        answer = QMessageBox.question(self, "Auto-execute",
                                      f"Send orders for new signals without asking?{limits}",
                                      QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        if answer == QMessageBox.Yes:
            self.set_auto(True)

    def set_auto(self, on: bool) -> None:
        """Switch auto-execution without the confirmation (after it was given)."""
        self.run("set_auto_execute", on)
        self.auto.setChecked(on)
