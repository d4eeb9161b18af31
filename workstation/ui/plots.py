"""Plots that stay calm while the data moves: axes drawn from a cache, ranges that change only when they must.

A pyqtgraph axis (with its grid lines across the plot) re-lays out and repaints its text whenever the view
range changes or anything inside the plot is redrawn: with auto-range on every update, that text was the largest
single cost of a panel redraw. `calm(plot)` caches each axis as a pixmap (redrawn only when its ticks change);
`follow(plot, x, y)` moves the range only when the data leaves it or fills too little of it, and leaves a range the
trader panned or zoomed alone (the plot's auto-range button hands it back).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem

PAD = 0.08          # margin added around the data when the range moves, as a fraction of its span
MIN_FILL = 0.5      # the range moves when the data spans less than this fraction of it
EDGE = 0.02         # ... or comes within this fraction of its ends


def calm(plot: pg.PlotWidget) -> pg.PlotWidget:
    """Cache the axes of `plot` as pixmaps and take its range over from auto-range (see `follow`)."""
    item = plot.getPlotItem()
    for name in ("left", "bottom", "right", "top"):
        axis = item.getAxis(name)
        axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    item.getViewBox().disableAutoRange()
    plot._followed = None       # the range `follow` last set: another one means the trader moved the view
    return plot


def _axis_range(values, current: tuple[float, float], min_span: float | None = None) -> tuple[float, float] | None:
    """The new range of one axis for `values`, or None to keep `current`. The range is at least `min_span` wide
    (default: a thousandth of the values' size, so flat data is not zoomed into its rounding noise; an axis of
    epoch seconds needs its own, or a thousandth of ~1.8e9 s holds a whole day in three weeks)."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        return None
    lo, hi = float(v.min()), float(v.max())
    span = max(hi - lo, abs(hi) * 1e-3 if min_span is None else min_span, 1e-9)
    c_lo, c_hi = current
    edge = EDGE * (c_hi - c_lo)         # data touching the frame counts as leaving it
    if lo >= c_lo + edge and hi <= c_hi - edge and span >= MIN_FILL * (c_hi - c_lo):
        return None
    return lo - PAD * span, hi + PAD * span


def _same_range(a, b) -> bool:
    """Two view ranges ((x0, x1), (y0, y1)) equal to a millionth of each axis's width: relative to the values
    (np.allclose) a pan of minutes on an axis of epoch seconds (~1.8e9) counted as no move at all."""
    return all(abs(p - q) <= 1e-6 * max(abs(hi - lo), 1e-12) for (lo, hi), axis_b in zip(a, b)
               for p, q in zip((lo, hi), axis_b))


def follow(plot: pg.PlotWidget, x, y, min_x_span: float | None = None) -> None:
    """Keep the data of `plot` in view with as few range changes as possible (see the module docstring);
    `min_x_span`: the narrowest x range (see `_axis_range`)."""
    box = plot.getPlotItem().getViewBox()
    current = box.viewRange()
    followed = getattr(plot, "_followed", None)
    auto = any(box.state["autoRange"])
    if not auto and followed is not None and not _same_range(current, followed):
        return                                  # the trader panned or zoomed: theirs until auto-range is pressed
    if auto:
        box.disableAutoRange()
        current = [[np.inf, -np.inf], [np.inf, -np.inf]]   # take over: fit the data now
    new_x, new_y = _axis_range(x, tuple(current[0]), min_x_span), _axis_range(y, tuple(current[1]))
    if new_x is not None:
        box.setXRange(*new_x, padding=0)
    if new_y is not None:
        box.setYRange(*new_y, padding=0)
    plot._followed = box.viewRange()
