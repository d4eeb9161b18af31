"""Skew and term: ATM vol, 25/10-delta risk reversal and butterfly, skew slope and curvature at constant
maturities (market and model) with today's percentile against the recorded history; per expiry; the term
structure; a metric over the day and across days. Numbers from workstation.analytics (topic vol_views)."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QTabWidget, QVBoxLayout, QWidget

from ...analytics.skew import CONSTANT_MATURITIES
from .. import market_time, theme
from ..bridge import Bridge
from .vol_common import VolViewsPanel, day_range, et_seconds, fit_view, number_table, plot, set_cell

CM_HEADERS = ["Days", "ATM", "RR25", "BF25", "RR10", "BF10", "Slope", "Curv", "Forward", "Model ATM", "Model RR25",
              "Model BF25", "ATM %ile", "RR25 %ile"]
EXPIRY_HEADERS = ["Expiry", "Days", "Forward", "ATM", "RR25", "BF25", "RR10", "BF10", "Slope", "Curv", "Model ATM",
                  "Model RR25"]
METRICS = {"ATM vol": "atm_vol", "25Δ RR": "rr25", "25Δ BF": "bf25", "10Δ RR": "rr10", "10Δ BF": "bf10",
           "Skew slope": "slope", "Curvature": "curvature"}


class VolMetricsPanel(VolViewsPanel):
    title = "Skew && term"
    name = "skew"

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.summary = QLabel("waiting for the first snapshot…")
        self.summary.setFont(theme.mono_font(9))
        layout.addWidget(self.summary)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs, 1)
        self.cm = number_table(CM_HEADERS, len(CONSTANT_MATURITIES))
        self.cm.setToolTip("Vol points. Constant maturities interpolated in total variance. %ile: today's value "
                           "against the daily values recorded on earlier days")
        self.tabs.addTab(self.cm, "Constant maturity")
        self.per_expiry = number_table(EXPIRY_HEADERS)
        self.tabs.addTab(self.per_expiry, "Per expiry")
        self.term = plot("ATM term structure", "vol pts", "days")
        self.term_market = self.term.plot([], [], pen=None, symbol="o", symbolSize=5, symbolBrush=theme.ACCENT,
                                          name="market")
        self.term_model = self.term.plot([], [], pen=pg.mkPen(theme.WARNING, width=2), name="model")
        self.term.setLogMode(x=True, y=False)
        self.tabs.addTab(self.term, "Term structure")
        history = QWidget()
        hv = QVBoxLayout(history)
        hv.setContentsMargins(0, 0, 0, 0)
        pick = QHBoxLayout()
        self.metric = QComboBox()
        self.metric.addItems(list(METRICS))
        self.tenor = QComboBox()
        self.tenor.addItems([f"{d}" for d in CONSTANT_MATURITIES])
        self.tenor.setCurrentText("30")
        for label, w in (("Metric", self.metric), ("Days", self.tenor)):
            pick.addWidget(QLabel(label))
            pick.addWidget(w)
            w.currentIndexChanged.connect(lambda *_: (self.mark_dirty(), self.flush()))
        pick.addStretch(1)
        hv.addLayout(pick)
        self.intraday = plot("Over the day", "vol pts", "time ET", dates=True)
        self.intraday_market = self.intraday.plot([], [], pen=pg.mkPen(theme.ACCENT, width=2), name="market")
        self.intraday_model = self.intraday.plot([], [], pen=pg.mkPen(theme.WARNING, width=1), name="model")
        self.daily = plot("Across days (close of each recorded day)", "vol pts", "day", dates=True)
        self.daily_market = self.daily.plot([], [], pen=pg.mkPen(theme.ACCENT, width=1), symbol="o", symbolSize=5,
                                            name="market")
        hv.addWidget(self.intraday, 1)
        hv.addWidget(self.daily, 1)
        self.tabs.addTab(history, "History")
        self.tabs.currentChanged.connect(lambda *_: (self.mark_dirty(), self.flush()))

    def render(self) -> None:
        v = self.views
        if v is None:
            return
        m30 = v.market.constant.get(30)
        self.summary.setText(f"{market_time.et(v.at)} ET   spot {v.spot:,.2f}   30d ATM {theme.fmt(m30.atm_vol)}   "
                             f"RR25 {theme.fmt(m30.rr25)}   BF25 {theme.fmt(m30.bf25)}   term slope "
                             f"{theme.fmt(v.market.term_slope)} /30d")
        for r, days in enumerate(CONSTANT_MATURITIES):
            m = v.market.constant.get(days)
            mo = v.model.constant.get(days) if v.model is not None else None
            values = [days, m.atm_vol, m.rr25, m.bf25, m.rr10, m.bf10, m.slope, m.curvature, m.forward,
                      getattr(mo, "atm_vol", np.nan), getattr(mo, "rr25", np.nan), getattr(mo, "bf25", np.nan),
                      v.percentile(f"market_{days}_atm_vol", m.atm_vol), v.percentile(f"market_{days}_rr25", m.rr25)]
            for c, value in enumerate(values):
                set_cell(self.cm, r, c, value, 0 if c == 0 else 1 if c in (8, 12, 13) else 2)
        tab = self.tabs.currentIndex()          # only the tab in view is drawn (a tab change redraws)
        if tab == 1:
            self._per_expiry(v)
        elif tab == 2:
            self._term(v)
        elif tab == 3:
            self._history(v)

    def _per_expiry(self, v) -> None:
        per = v.market.per_expiry
        model = {m.label: m for m in (v.model.per_expiry if v.model is not None else [])}
        if self.per_expiry.rowCount() != len(per):
            self.per_expiry.setRowCount(len(per))
        for r, m in enumerate(per):
            mo = model.get(m.label)
            set_cell(self.per_expiry, r, 0, None, text=m.label)
            for c, value in enumerate((m.days, m.forward, m.atm_vol, m.rr25, m.bf25, m.rr10, m.bf10, m.slope,
                                       m.curvature, getattr(mo, "atm_vol", np.nan), getattr(mo, "rr25", np.nan)), 1):
                set_cell(self.per_expiry, r, c, value, 1 if c in (1, 2) else 2)

    def _term(self, v) -> None:
        per = v.market.per_expiry
        self.term_market.setData([m.days for m in per], [m.atm_vol for m in per])
        if v.model is not None:
            mp = [m for m in v.model.per_expiry if np.isfinite(m.atm_vol)]
            self.term_model.setData([m.days for m in mp], [m.atm_vol for m in mp])
        fit_view(self.term)

    def _history(self, v) -> None:
        name = METRICS[self.metric.currentText()]
        days = self.tenor.currentText()
        h = v.history
        t = h.column("timestamp") if h is not None else np.zeros(0)
        hours = et_seconds(t, v.at)
        for curve, source in ((self.intraday_market, "market"), (self.intraday_model, "model")):
            y = h.column(f"{source}_{days}_{name}") if h is not None else np.zeros(0)
            y = y if len(y) == len(t) else np.full(len(t), np.nan)
            ok = np.isfinite(y)
            curve.setData(hours[ok], y[ok])
        fit_view(self.intraday)
        if v.history is not None:
            dates, values = v.history.daily(f"market_{days}_{name}")
            x = np.array([datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp() for d in dates])
            self.daily_market.setData(x, values)
            day_range(self.daily, x)

