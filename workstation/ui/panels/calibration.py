"""Calibration: current Heston parameters, Feller, RMSE per expiry, fit time, and their history."""
from __future__ import annotations

from collections import deque
from datetime import date

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QSizePolicy,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from .. import market_time, theme
from ..bridge import Bridge
from ..plots import calm, follow
from .base import Panel

PARAMS = ("v0", "kappa", "theta", "sigma", "rho")
HISTORY = 500


EXPIRY_COLUMNS = ["Expiry", "Model", "Fair", "In %"]
EXPIRY_TIPS = ["Expiry and settlement (AM/PM)", "The model's IV RMSE on this expiry, vol points",
               "The fair-value surface's IV RMSE on this expiry, vol points; 'fallback' (last good slice kept) "
               "or 'failed' in amber when it could not be fitted on this snapshot (the reason in the tooltip)",
               "Share of this expiry's fit quotes whose fair value is inside their bid/ask, %"]


def _short(label: str) -> str:
    """'2026-12-18 AM' -> '18Dec26 AM' (the panel is narrow)."""
    try:
        return f"{date.fromisoformat(label[:10]):%d%b%y}{label[10:]}"
    except ValueError:
        return label


class CalibrationPanel(Panel):
    title = "Calibration"
    name = "calibration"

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self.history: deque = deque(maxlen=HISTORY)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        split = QSplitter(Qt.Horizontal)
        layout.addWidget(split)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        box = QGroupBox("Heston parameters")
        form = QFormLayout(box)
        self.values: dict[str, QLabel] = {}
        tips = {"v0": "initial variance (√ in brackets: vol)", "kappa": "mean-reversion speed",
                "theta": "long-run variance (√: vol)", "sigma": "vol of variance", "rho": "spot/variance correlation",
                "Feller": "2κθ/σ² (≥ 1: the variance stays away from zero)", "RMSE": "IV RMSE, vol points (quotes used)",
                "Fit": "calibration time · iterations · market time"}
        for key in (*PARAMS, "Feller", "RMSE", "Max error", "Fit", "Status"):
            label = QLabel("–")
            label.setFont(theme.mono_font(9))
            label.setToolTip(tips.get(key, ""))
            self.values[key] = label
            name = QLabel(key)
            name.setToolTip(tips.get(key, ""))
            form.addRow(name, label)
        box.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)    # never squeezed: the table gives way
        lv.addWidget(box)
        self.per_expiry = QTableWidget(0, len(EXPIRY_COLUMNS))
        self.per_expiry.setHorizontalHeaderLabels(EXPIRY_COLUMNS)
        for j, tip in enumerate(EXPIRY_TIPS):
            self.per_expiry.horizontalHeaderItem(j).setToolTip(tip)
        self.per_expiry.setToolTip("Both fits per expiry: the model's IV RMSE, and the arbitrage-free fair "
                                   "surface's IV RMSE, share of its quotes fitted inside their spread and state")
        self.per_expiry.verticalHeader().setVisible(False)
        self.per_expiry.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.per_expiry.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.per_expiry.setEditTriggers(QTableWidget.NoEditTriggers)
        self.per_expiry.verticalHeader().setDefaultSectionSize(20)
        lv.addWidget(self.per_expiry, 1)
        split.addWidget(left)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("History"))
        self.series = QComboBox()
        self.series.addItems(["RMSE (vol pts)", "fit time (ms)", *PARAMS])
        self.series.currentIndexChanged.connect(lambda _: self._draw_history())
        row.addWidget(self.series)
        row.addStretch(1)
        rv.addLayout(row)
        # no grid: this plot's range moves with the fits, and each move re-renders its cached axes — with a grid
        # they span the whole plot (10-17 ms a repaint on the window's thread, against 3-5 ms without)
        self.plot = calm(pg.PlotWidget())
        self.plot.setLabel("bottom", "fit #")
        self.curve = self.plot.plot([], [], pen=pg.mkPen(theme.ACCENT, width=2))
        self.rejected = self.plot.plot([], [], pen=None, symbol="x", symbolSize=8, symbolPen=theme.NEGATIVE)
        rv.addWidget(self.plot)
        split.addWidget(right)
        split.setSizes([300, 400])
        bridge.fit.connect(self._on_fit)

    def _on_fit(self, fit) -> None:
        self.history.append(fit)
        self.mark_dirty()

    def render(self) -> None:
        if not self.history:
            return
        fit = self.history[-1]
        p = fit.params
        for key in PARAMS:
            value = getattr(p, key)
            extra = f"  ({np.sqrt(value):.1%})" if key in ("v0", "theta") else ""
            self.values[key].setText(f"{value:.4f}{extra}")
        ok = p.feller_ok
        self.values["Feller"].setText(f"{p.feller_ratio:.2f} {'satisfied' if ok else 'violated'}")
        theme.restyle(self.values["Feller"], f"color: {theme.POSITIVE if ok else theme.WARNING}")
        self.values["RMSE"].setText(f"{fit.rmse_iv:.3f} vol pts ({fit.quotes_used:,} q)")
        self.values["Max error"].setText(f"{fit.max_abs_iv_error:.3f} vol pts")
        self.values["Fit"].setText(f"{fit.elapsed_ms:,.0f} ms · {fit.iterations} it · {market_time.et(fit.timestamp, '%H:%M')} ET")
        status = "accepted" if fit.accepted else f"rejected: {fit.message}" if fit.message else "rejected"
        if fit.stale:
            status += " · model on older parameters"
        self.values["Status"].setText(status if len(status) <= 40 else status[:39] + "…")
        self.values["Status"].setToolTip(status)
        theme.restyle(self.values["Status"], f"color: {theme.POSITIVE if fit.accepted and not fit.stale else theme.WARNING}")
        fair = self.bridge.fair_quality()
        labels = sorted(set(fit.per_expiry_rmse) | set(fair))
        self.per_expiry.setRowCount(len(labels))
        for i, label in enumerate(labels):
            model = fit.per_expiry_rmse.get(label)
            piece = fair.get(label)
            fair_ok = piece is not None and piece.status == "ok"
            cells = [_short(label), "–" if model is None else f"{model:.3f}",
                     "–" if piece is None else piece.status if not fair_ok
                     else f"{piece.rmse_iv:.3f}" if np.isfinite(piece.rmse_iv) else "–",
                     "–" if piece is None or not np.isfinite(piece.inside_pct) else f"{piece.inside_pct:.0f}"]
            warn = piece is not None and not fair_ok
            for j, text in enumerate(cells):
                self._set_cell(i, j, text, warn and j == 2, piece.reason if warn and j == 2 else "")
        self._draw_history()

    def _set_cell(self, row: int, column: int, text: str, warn: bool, tip: str) -> None:
        """One per-expiry cell, changed in place and only when its text or flag changed: a full chain has ~60
        expiries, and new items for all of them every fit held the window's thread ~20 ms."""
        cell = self.per_expiry.item(row, column)
        if cell is None:
            cell = QTableWidgetItem(text)
            if column:
                cell.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            self.per_expiry.setItem(row, column, cell)
        elif cell.text() != text:
            cell.setText(text)
        if cell.data(Qt.UserRole) != (warn, tip):
            cell.setData(Qt.UserRole, (warn, tip))
            cell.setToolTip(tip)
            cell.setForeground(QColor(theme.WARNING) if warn else self.per_expiry.palette().text())

    def _draw_history(self) -> None:
        if not self.history:
            return
        key = self.series.currentText()
        fits = list(self.history)
        if key.startswith("RMSE"):
            y = [f.rmse_iv for f in fits]
        elif key.startswith("fit time"):
            y = [f.elapsed_ms for f in fits]
        else:
            y = [getattr(f.params, key) for f in fits]
        x = np.arange(len(y))
        self.curve.setData(x, np.asarray(y, dtype=float))
        bad = [i for i, f in enumerate(fits) if not f.accepted]
        self.rejected.setData(x[bad], np.asarray(y, dtype=float)[bad])
        follow(self.plot, [0, 50 * (len(x) // 50 + 1)], y)       # the fit axis grows 50 fits at a time
