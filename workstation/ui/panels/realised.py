"""Realised vs implied: realised vol of the index (5-min intraday, close-to-close, Parkinson) against the 30-day
ATM implied vol, the variance risk premium (implied - realised) as a line over the day, and the vol cone
(10/21/63-day realised vol by percentile) once the recorded history allows. Numbers from analytics.realised."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .. import market_time, theme
from ..bridge import Bridge
from .vol_common import VolViewsPanel, et_seconds, fit_view, plot

CONE_TITLE = "Vol cone: realised vol by window (min, quartiles, max); dot: now"
FIELDS = (("Realised", "value"), ("Intraday 5-min", "intraday"), ("Close-to-close", "close_to_close"),
          ("Parkinson", "parkinson"), ("Implied 30d ATM", "implied_30d"), ("VRP (IV - RV)", "vrp"))


class RealisedPanel(VolViewsPanel):
    title = "Realised vs implied"
    name = "realised"

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        box = QGroupBox("Vol points, annualised")
        form = QFormLayout(box)
        self.values: dict[str, QLabel] = {}
        for label, key in FIELDS:
            value = QLabel("–")
            value.setFont(theme.mono_font(9))
            value.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
            self.values[key] = value
            form.addRow(label, value)
        self.window = QLabel("–")
        self.window.setWordWrap(True)
        form.addRow("Window", self.window)
        layout.addWidget(box)
        plots = QVBoxLayout()
        self.day = plot("Implied vs realised over the day", "vol pts", "time ET", dates=True)
        self.iv_curve = self.day.plot([], [], pen=pg.mkPen(theme.ACCENT, width=2), name="30d ATM implied")
        self.rv_curve = self.day.plot([], [], pen=pg.mkPen(theme.POSITIVE, width=2), name="realised")
        self.vrp_curve = self.day.plot([], [], pen=pg.mkPen(theme.WARNING, width=1, style=Qt.DashLine), name="VRP")
        plots.addWidget(self.day, 1)
        self.cone = plot(CONE_TITLE, "vol pts", "window, trading days")
        self.cone_lines = {p: self.cone.plot([], [], pen=pg.mkPen(theme.MUTED, width=1)) for p in (0, 25, 50, 75, 100)}
        self.cone_now = self.cone.plot([], [], pen=None, symbol="o", symbolBrush=theme.WARNING)
        plots.addWidget(self.cone, 1)
        layout.addLayout(plots, 1)

    def render(self) -> None:
        v = self.views
        if v is None:
            return
        r = v.realised
        for _, key in FIELDS:
            value = getattr(r, key)
            self.values[key].setText(theme.fmt(value))
        self.window.setText(f"{r.window} ({r.observations} returns) at {market_time.et(v.at)} ET")
        h = v.history
        t = h.column("timestamp") if h is not None else np.zeros(0)
        hours = et_seconds(t, v.at)
        for curve, name in ((self.iv_curve, "market_30_atm_vol"), (self.rv_curve, "realised"), (self.vrp_curve, "vrp")):
            y = h.column(name) if h is not None else np.zeros(0)
            y = y if len(y) == len(t) else np.full(len(t), np.nan)
            ok = np.isfinite(y)
            curve.setData(hours[ok], y[ok])
        fit_view(self.day)
        cone = r.cone
        if cone is None or not np.isfinite(cone.levels).any():
            for line in self.cone_lines.values():
                line.setData([], [])
            self.cone_now.setData([], [])
            self.cone.setTitle("Vol cone: needs 20+ recorded daily closes (two 10-day windows); "
                               f"{max(len(v.history.past) if v.history is not None else 0, 0)} past day(s) recorded",
                               size="9pt")
            return
        self.cone.setTitle(CONE_TITLE, size="9pt")
        w = np.array(cone.windows, float)
        for j, p in enumerate(cone.percentiles):
            ok = np.isfinite(cone.levels[:, j])
            self.cone_lines[p].setData(w[ok], cone.levels[ok, j])
        ok = np.isfinite(cone.current)
        self.cone_now.setData(w[ok], cone.current[ok])
        fit_view(self.cone)
