"""The combo ticket's order line: side, packages, net limit (index points on the 0.05 combo tick), Mid, Send."""
from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from .. import theme


class OrderBox(QGroupBox):
    """The order's fields; the ticket wires Mid, Send and the re-check on every change."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Order", parent)
        h = QHBoxLayout(self)
        self.side = QComboBox()
        self.side.addItems(["BUY", "SELL"])
        self.side.setToolTip("Buy the package (every leg on its side) or sell it (every leg on the other side)")
        self.quantity = QSpinBox()
        self.quantity.setRange(1, 10_000)
        self.quantity.setSuffix(" pkg")
        self.quantity.setToolTip("Packages")
        self.limit = QDoubleSpinBox()
        self.limit.setRange(-100_000.0, 100_000.0)
        self.limit.setDecimals(2)
        self.limit.setSingleStep(0.05)
        self.limit.setSuffix(" pts")
        self.limit.setToolTip("Net limit per package, index points (debit > 0, credit < 0), on the 0.05 combo tick")
        self.mid_button = QPushButton("Mid")
        self.send = QPushButton(theme.icon("send"), "Send combo")
        self.send.setObjectName("approve")
        self.send.setEnabled(False)
        h.addWidget(self.side)
        h.addWidget(self.quantity)
        h.addWidget(QLabel("net limit"))
        h.addWidget(self.limit, 1)
        h.addWidget(self.mid_button)
        h.addWidget(self.send)
