"""Scenarios with time and risk by expiry. Scenarios: the book's P&L over forward x vol shocks, after 0, 1, 5
trading days and at the next expiry (theta accrues, expiries roll off), sticky-strike or sticky-delta, vol
shocks optionally scaled by √(30/days). Risk by expiry: dollar Greeks per bucket and per expiry with weighted vega,
and per strike region. Numbers from workstation.risk.scenarios / risk.buckets (topic vol_views)."""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QTabWidget, QVBoxLayout, QWidget

from .. import theme
from ..bridge import Bridge
from .vol_common import VolViewsPanel, number_table, set_cell

GREEKS = ("delta", "gamma", "vega", "theta", "weighted_vega")
HEADERS = ["Bucket / expiry", "Days", "Delta$", "Gamma$", "Vega$", "Theta$", "Weighted vega$"]


def pnl_colour(value: float, scale: float) -> QColor:
    """Red for a loss, green for a gain, stronger with size."""
    if not np.isfinite(value) or scale <= 0:
        return QColor(theme.PANEL)
    a = min(abs(value) / scale, 1.0)
    base = QColor(theme.POSITIVE if value >= 0 else theme.NEGATIVE)
    base.setAlpha(int(40 + 150 * a))
    return base


class VolRiskPanel(VolViewsPanel):
    title = "Scenarios && expiry risk"
    name = "volrisk"

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs)
        scen = QWidget()
        sv = QVBoxLayout(scen)
        sv.setContentsMargins(0, 0, 0, 0)
        controls = QHBoxLayout()
        self.days = QComboBox()
        self.sticky = QComboBox()
        self.sticky.addItems(["sticky strike", "sticky delta"])
        self.term = QCheckBox("vol shock × √(30/days)")
        self.term.setToolTip("Scale each vol shock by √(30 / days to expiry): short expiries move more")
        for label, w in (("After", self.days), ("Vol", self.sticky)):
            controls.addWidget(QLabel(label))
            controls.addWidget(w)
        controls.addWidget(self.term)
        controls.addStretch(1)
        for w in (self.days, self.sticky):
            w.currentIndexChanged.connect(self._redraw)
        self.term.toggled.connect(self._redraw)
        sv.addLayout(controls)
        self.grid = number_table([])
        self.grid.setToolTip("P&L ($): rows forward shock, columns vol shock (vol points); Black-76 repricing")
        sv.addWidget(self.grid, 1)
        self.note = QLabel("")
        self.note.setStyleSheet(f"color: {theme.MUTED}")
        sv.addWidget(self.note)
        self.tabs.addTab(scen, "Scenarios with time")
        self.buckets = number_table(HEADERS)
        self.tabs.addTab(self.buckets, "Risk by expiry")
        self.regions = number_table(["Strike / forward", "Delta$", "Gamma$", "Vega$", "Theta$"])
        self.tabs.addTab(self.regions, "By strike region")

    def _redraw(self, *_) -> None:
        self.mark_dirty()
        self.flush()

    def current_grid(self):
        v = self.views
        if v is None:
            return None
        return v.scenarios.get(("delta" if self.sticky.currentIndex() == 1 else "strike", self.term.isChecked()))

    def render(self) -> None:
        v = self.views
        if v is None:
            return
        g = self.current_grid()
        if g is not None:
            labels = list(g.labels)
            if labels != [self.days.itemText(i) for i in range(self.days.count())]:
                current = self.days.currentIndex()
                self.days.blockSignals(True)
                self.days.clear()
                self.days.addItems(labels)
                self.days.setCurrentIndex(min(max(current, 0), len(labels) - 1))
                self.days.blockSignals(False)
            d = max(self.days.currentIndex(), 0)
            pnl = g.pnl[d]
            if self.grid.columnCount() != len(g.vol_shocks) or self.grid.rowCount() != len(g.spot_shocks):
                self.grid.setColumnCount(len(g.vol_shocks))
                self.grid.setRowCount(len(g.spot_shocks))
                self.grid.setHorizontalHeaderLabels([f"{x:+g} vol" for x in g.vol_shocks])
                self.grid.setVerticalHeaderLabels([f"{100 * s:+.1f}%" for s in g.spot_shocks])
            scale = float(np.nanmax(np.abs(g.pnl))) if g.pnl.size else 0.0
            for i in range(len(g.spot_shocks)):
                for j in range(len(g.vol_shocks)):
                    set_cell(self.grid, i, j, float(pnl[i, j]), 0, dollars=True,
                             background=pnl_colour(float(pnl[i, j]), scale))
            scaled = ", vol shocks x √(30/days)" if g.term_scaled else ""
            self.note.setText(f"after {g.labels[d]} ({g.days[d]} trading days): worst "
                              f"{theme.fmt(float(pnl.min()), 0, dollars=True)}, best "
                              f"{theme.fmt(float(pnl.max()), 0, dollars=True)}; sticky-{g.sticky} vols{scaled}; "
                              "expired options at intrinsic")
        rows = [(label, None, b) for label, b in v.buckets.items()]
        total = {k: sum(b[k] for b in v.buckets.values()) for k in GREEKS}
        rows.append(("Total", None, total))
        rows += [(str(e), b["days"], b) for e, b in sorted(v.expiries.items(), key=lambda kv: kv[1]["days"])]
        if self.buckets.rowCount() != len(rows):
            self.buckets.setRowCount(len(rows))
        for r, (label, days, b) in enumerate(rows):
            set_cell(self.buckets, r, 0, None, text=label if days is not None else f"{label} (bucket)" if label != "Total" else label)
            set_cell(self.buckets, r, 1, days, 0)
            for c, k in enumerate(GREEKS, 2):
                set_cell(self.buckets, r, c, b[k], 0, signed=True, dollars=True)
        if self.regions.rowCount() != len(v.regions):
            self.regions.setRowCount(len(v.regions))
        for r, (label, g) in enumerate(v.regions.items()):
            set_cell(self.regions, r, 0, None, text=label)
            for c, k in enumerate(GREEKS[:4], 1):
                set_cell(self.regions, r, c, g[k], 0, signed=True, dollars=True)
