"""The combo ticket's what-if plot: the order's P&L at the front expiry and today, against the index level."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from ...analytics import combo_ticket as ct
from .. import theme


class PayoffPlot(pg.PlotWidget):
    """Two curves (at expiry, today) over a zero line and the index now."""

    def __init__(self) -> None:
        super().__init__()
        self.setTitle("What-if: P&L of the order", size="9pt")
        self.setLabel("left", "P&L", units="$")
        self.setLabel("bottom", "index level at the front expiry (today: now)")
        self.getAxis("left").enableAutoSIPrefix(False)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.addLegend(offset=(8, 8), labelTextSize="8pt")
        self.expiry_curve = self.plot([], [], pen=pg.mkPen(theme.ACCENT, width=2), name="at expiry")
        self.today_curve = self.plot([], [], pen=pg.mkPen(theme.WARNING, width=2, style=Qt.DashLine),
                                     name="today (Black-76, market vols)")
        self.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen(theme.MUTED, width=1)))
        self.spot_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(theme.MUTED, width=1, style=Qt.DotLine),
                                         label="index {value:,.0f}", labelOpts={"color": theme.MUTED,
                                                                                 "position": 0.95})
        self.addItem(self.spot_line)

    def clear_curves(self) -> None:
        self.expiry_curve.setData([], [])
        self.today_curve.setData([], [])

    def show_payoff(self, p: ct.Payoff, spot: float) -> None:
        self.expiry_curve.setData(p.levels, p.at_expiry)
        self.today_curve.setData(p.levels, np.where(np.isfinite(p.today), p.today, np.nan), connect="finite")
        self.spot_line.setValue(spot)
