"""The combo ticket's legs: the table (leg, side, ratio, quote, IV, dollar Greeks of the leg in the package) and
each leg's market as the ticket prices it (quotes from the bridge, IV/forward/maturity from the surface)."""
from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QGroupBox, QHBoxLayout, QLabel, QPushButton, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from ...analytics import combo_ticket as ct
from ...domain import Side
from ...domain.combos import Combo, ComboLeg
from .. import theme

LEG_HEADERS = ["Leg", "Side", "Ratio", "Bid", "Ask", "Mid", "IV %", "Delta $", "Vega $", "Theta $"]


class LegsBox(QGroupBox):
    """The legs table with Remove leg / Clear (the ticket wires the buttons)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Legs (per package bought; Greeks $ of the leg in the package)", parent)
        v = QVBoxLayout(self)
        self.table = QTableWidget(0, len(LEG_HEADERS))
        self.table.setHorizontalHeaderLabels(LEG_HEADERS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(4 * 20 + 28)
        v.addWidget(self.table)
        bar = QHBoxLayout()
        self.hint = QLabel("Chain board: + adds the contract under the cursor bought, − sold (or right-click).")
        self.hint.setStyleSheet(f"color: {theme.MUTED}")
        self.remove_button = QPushButton("Remove leg")
        self.clear_button = QPushButton("Clear")
        bar.addWidget(self.hint, 1)
        bar.addWidget(self.remove_button)
        bar.addWidget(self.clear_button)
        v.addLayout(bar)

    def show_legs(self, legs: list[ComboLeg]) -> None:
        """One row per leg: description, side (coloured) and ratio."""
        self.table.setRowCount(len(legs))
        for i, leg in enumerate(legs):
            side = QTableWidgetItem(leg.side.value)
            side.setForeground(QColor(theme.POSITIVE if leg.side is Side.BUY else theme.NEGATIVE))
            self.table.setItem(i, 0, QTableWidgetItem(leg.contract.description))
            self.table.setItem(i, 1, side)
            self.table.setItem(i, 2, QTableWidgetItem(str(leg.ratio)))

    def show_numbers(self, lines: list[ct.LegLine]) -> None:
        """Each leg's quote, IV and dollar Greeks (weighted by its side and ratio)."""
        for i, line in enumerate(lines):
            w = line.leg.weight
            cells = [theme.fmt(line.bid), theme.fmt(line.ask), theme.fmt(line.mid), theme.fmt(100 * line.iv, 1),
                     theme.fmt(w * line.greeks["delta"], 0, dollars=True),
                     theme.fmt(w * line.greeks["vega"], 0, dollars=True),
                     theme.fmt(w * line.greeks["theta"], 0, dollars=True)]
            for j, text in enumerate(cells, start=3):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()


def leg_lines(bridge, surface, combo: Combo) -> list[ct.LegLine]:
    """Per leg: its quote and Greeks from the bridge and its market IV from the surface (NaN when unknown)."""
    lines = []
    for leg in combo.legs:
        m = bridge.market_for(leg.contract)
        bid = float(m.bid) if m is not None else math.nan
        ask = float(m.ask) if m is not None else math.nan
        greeks = m.greeks.as_dict() if m is not None else dict.fromkeys(("delta", "gamma", "vega", "theta"),
                                                                         math.nan)
        iv = math.nan
        if surface is not None:
            row = surface.snapshot.index_of(leg.contract.contract_id)
            if row is not None:
                iv = float(surface.iv_mid[row])
        lines.append(ct.LegLine(leg, bid, ask, iv, greeks))
    return lines


def today_inputs(surface, combo: Combo) -> tuple[list[float], list[float], list[float]]:
    """Per leg: forward, maturity (years) and market vol from the surface (NaN when unknown)."""
    forwards, maturities, vols = [], [], []
    for leg in combo.legs:
        row = surface.snapshot.index_of(leg.contract.contract_id) if surface is not None else None
        if row is None:
            forwards.append(math.nan), maturities.append(math.nan), vols.append(math.nan)
            continue
        forwards.append(float(surface.forward[row]))
        maturities.append(float(surface.maturity[row]))
        vols.append(float(surface.iv_mid[row]))
    return forwards, maturities, vols
