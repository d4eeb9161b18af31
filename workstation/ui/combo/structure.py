"""The combo ticket's structure picker: template, calls/puts, front and back expiry and the template's strikes,
filled from the chain (about a month out, strikes around the money)."""
from __future__ import annotations

from datetime import date

import numpy as np
from PySide6.QtWidgets import QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QWidget

from ...analytics import combo_ticket as ct

CUSTOM = "custom"


class StructureBox(QGroupBox):
    """The fields that pick a structure; the ticket wires their signals and builds the legs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Structure", parent)
        self._expiry_set = False
        grid = QGridLayout(self)
        self.template = QComboBox()
        for key, label in ct.LABELS.items():
            self.template.addItem(label, key)
        self.template.addItem("Custom (legs from the chain board)", CUSTOM)
        self.right = QComboBox()
        self.right.addItem("Calls", True)
        self.right.addItem("Puts", False)
        self.expiry = QComboBox()
        self.back_expiry = QComboBox()
        self.back_expiry.setToolTip("The calendar's back (bought) expiry")
        self.atm_button = QPushButton("Around the money")
        self.atm_button.setToolTip("Strikes at the money and 0.5 % of the index away")
        grid.addWidget(QLabel("Template"), 0, 0)
        grid.addWidget(self.template, 0, 1)
        grid.addWidget(self.right, 0, 2)
        grid.addWidget(self.atm_button, 0, 3, 1, 2)
        grid.addWidget(QLabel("Expiry"), 1, 0)
        grid.addWidget(self.expiry, 1, 1)
        grid.addWidget(QLabel("Back"), 1, 2)
        grid.addWidget(self.back_expiry, 1, 3, 1, 2)
        self.strike_labels: list[QLabel] = []
        self.strikes: list[QComboBox] = []
        grid.addWidget(QLabel("Strikes"), 2, 0)
        row = QHBoxLayout()
        for _ in range(4):
            label, box = QLabel(""), QComboBox()
            box.setMinimumContentsLength(6)
            self.strike_labels.append(label)
            self.strikes.append(box)
            row.addWidget(label)
            row.addWidget(box, 1)
        grid.addLayout(row, 2, 1, 1, 4)

    # ------------------------------------------------------------------------------------- reading
    def key(self) -> str:
        """The chosen template ('custom' for legs from the chain board)."""
        return self.template.currentData()

    def calls(self) -> bool:
        return bool(self.right.currentData())

    def front(self) -> date:
        return date.fromisoformat(self.expiry.currentText())

    def back(self) -> date:
        return date.fromisoformat(self.back_expiry.currentText())

    def chosen_strikes(self, n: int) -> list[float]:
        """The first `n` strikes (ValueError when one is empty)."""
        return [float(box.currentText()) for box in self.strikes[:n]]

    # ------------------------------------------------------------------------------------- filling
    def fill_expiries(self, snap) -> None:
        """The listed expiries in both boxes (kept when still listed), then the strikes of the front one."""
        labels = [str(d) for d in ct.expiries(snap)]
        if labels == [self.expiry.itemText(i) for i in range(self.expiry.count())]:
            return
        for box in (self.expiry, self.back_expiry):
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(labels)
            if current in labels:
                box.setCurrentText(current)
            box.blockSignals(False)
        self._default_expiry(snap, labels)
        self.fill_strikes(snap)

    def _default_expiry(self, snap, labels: list[str]) -> None:
        """About a month out, the back expiry the next one after it (once, when the chain first comes)."""
        if self._expiry_set or not labels:
            return
        self._expiry_set = True
        days = (np.array(labels, dtype="datetime64[D]") - np.datetime64(snap.timestamp.date(), "D")).astype(int)
        i = int(np.argmin(np.abs(days - 30)))
        self.expiry.blockSignals(True)
        self.expiry.setCurrentIndex(i)
        self.expiry.blockSignals(False)
        self.back_expiry.blockSignals(True)
        self.back_expiry.setCurrentIndex(min(i + 1, len(labels) - 1))
        self.back_expiry.blockSignals(False)

    def fill_strikes(self, snap) -> None:
        """The strikes listed on the front expiry in every strike box (kept when still listed)."""
        if snap is None or not self.expiry.currentText():
            return
        listed = [f"{k:g}" for k in ct.strikes_of(snap, self.front())]
        for box in self.strikes:
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(listed)
            if current in listed:
                box.setCurrentText(current)
            box.blockSignals(False)

    def set_strikes(self, strikes: list[float], quiet: bool = True) -> None:
        """Show `strikes` in the strike boxes (quietly: no edit signal)."""
        for box, k in zip(self.strikes, strikes):
            box.blockSignals(quiet)
            box.setCurrentText(f"{k:g}")
            box.blockSignals(False)

    # ------------------------------------------------------------------------------------- template
    def show_template(self) -> str:
        """Show the strike fields the template names and enable what applies to it; the template's key."""
        key = self.key()
        names = ct.STRIKES.get(key, ())
        for i, (label, box) in enumerate(zip(self.strike_labels, self.strikes)):
            label.setText(names[i] if i < len(names) else "")
            label.setVisible(i < len(names))
            box.setVisible(i < len(names))
        self.right.setEnabled(key in ct.ONE_RIGHT)
        self.back_expiry.setEnabled(key == "calendar")
        for w in (self.expiry, self.atm_button):
            w.setEnabled(key != CUSTOM)
        return key

    def select(self, structure: str, right: str | None = None) -> None:
        """Pick the template (and calls 'C' / puts 'P' when given) without signals."""
        picks = [(self.template, self.template.findData(structure))]
        if right is not None:
            picks.append((self.right, 0 if right == "C" else 1))
        for box, index in picks:
            box.blockSignals(True)
            box.setCurrentIndex(index)
            box.blockSignals(False)

    def select_front(self, expiry: date | str) -> None:
        self.expiry.blockSignals(True)
        self.expiry.setCurrentText(str(expiry))
        self.expiry.blockSignals(False)
