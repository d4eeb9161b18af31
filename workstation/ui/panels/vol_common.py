"""Small helpers shared by the vol panels: a read-only numeric QTableWidget and a plot with a legend."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

from .. import theme
from ..plots import calm, follow
from .base import Panel


class VolViewsPanel(Panel):
    """A panel drawn from the engine's vol views: it keeps the latest and redraws on the next refresh tick."""

    def __init__(self, bridge, parent=None) -> None:
        super().__init__(bridge, parent)
        self.views = None
        bridge.vol_views.connect(self._on_views)

    def _on_views(self, views) -> None:
        self.views = views
        self.mark_dirty()


def number_table(headers: list[str], rows: int = 0) -> QTableWidget:
    table = QTableWidget(rows, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setDefaultSectionSize(20)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
    table.setEditTriggers(QTableWidget.NoEditTriggers)
    table.setFont(theme.mono_font(9))
    return table


def set_cell(table: QTableWidget, row: int, col: int, value, digits: int = 2, signed: bool = False,
             dollars: bool = False, text: str | None = None, background: QColor | None = None) -> None:
    """Set a cell in place (the item is reused: no allocation churn on every refresh)."""
    item = table.item(row, col)
    if item is None:
        item = QTableWidgetItem()
        item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
        table.setItem(row, col, item)
    item.setText(text if text is not None else theme.fmt(value, digits, dollars=dollars))
    if text is not None:
        item.setTextAlignment(Qt.AlignLeft | Qt.AlignVCenter)
    if signed and isinstance(value, (int, float)) and math.isfinite(value) and value:
        item.setForeground(QColor(theme.POSITIVE if value > 0 else theme.NEGATIVE))
    if background is not None:
        item.setBackground(background)


MIN_TIME_SPAN_S = 600.0      # a time axis is at least 10 minutes wide (one point: 5 minutes either side)


def plot(title: str, left: str, bottom: str, dates: bool = False) -> pg.PlotWidget:
    """A calm plot; `dates`: the x axis shows clock times / dates of (ET-shifted) epoch seconds."""
    p = calm(pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(utcOffset=0)} if dates else None))
    p._min_x_span = MIN_TIME_SPAN_S if dates else None
    p.setTitle(title, size="9pt")
    p.setLabel("left", left)
    p.setLabel("bottom", bottom)
    p.showGrid(x=True, y=True, alpha=0.2)
    p.addLegend(offset=(8, 8), labelTextSize="8pt")
    return p


def fit_view(p: pg.PlotWidget, extra_x=()) -> None:
    """Keep every curve of `p` (and the x values `extra_x`) in view with as few range changes as possible
    (`plots.follow`): pyqtgraph's auto-range moved the range, and re-laid out the axes, on every redraw (~7 ms a
    redraw of the realised panel beside the full chain), and snapped back a range the trader had zoomed."""
    xs, ys = [np.asarray(extra_x, dtype=float)], []
    for item in p.getPlotItem().listDataItems():
        x, y = item.getData()
        if x is not None and y is not None and len(x):
            xs.append(np.asarray(x, dtype=float))
            ys.append(np.asarray(y, dtype=float))
    if ys:
        follow(p, np.concatenate(xs), np.concatenate(ys), getattr(p, "_min_x_span", None))


def et_seconds(timestamps, at) -> "np.ndarray":
    """Epoch seconds shifted so that a UTC date axis reads New York wall time (one offset: a day has one)."""
    from .. import market_time
    return np.asarray(timestamps, float) + at.astimezone(market_time.NEW_YORK).utcoffset().total_seconds()


def day_range(p: pg.PlotWidget, x) -> None:
    """Keep the data in view, at least two days wide around a single day's point."""
    fit_view(p, [x[0] - 2 * 86_400, x[0] + 2 * 86_400] if len(x) == 1 else ())
