"""Plot ranges that move only when they must, and leave the trader's zoom alone (workstation/ui/plots.py)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")
import pyqtgraph as pg  # noqa: E402

from workstation.ui.plots import calm, follow  # noqa: E402


@pytest.fixture
def plot(qtbot):
    widget = calm(pg.PlotWidget())
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.show()
    return widget


def x_range(plot) -> list[float]:
    return plot.getPlotItem().getViewBox().viewRange()[0]


def test_range_holds_while_the_data_stays_inside_and_moves_when_it_leaves(plot):
    follow(plot, [0.0, 10.0], [1.0, 2.0])
    first = x_range(plot)
    assert first[0] < 0.0 and first[1] > 10.0                     # the data with a margin
    follow(plot, [0.2, 10.1], [1.1, 2.05])                         # small moves: the axes stay as they are
    assert x_range(plot) == first
    follow(plot, [0.0, 20.0], [1.0, 2.0])                          # out of view: the range follows
    assert x_range(plot)[1] > 20.0
    follow(plot, [9.0, 10.0], [1.0, 2.0])                          # fills too little of it: it narrows
    assert x_range(plot)[1] - x_range(plot)[0] < 2.0


def test_a_range_the_trader_zoomed_is_kept_until_auto_range(plot):
    follow(plot, [0.0, 10.0], [1.0, 2.0])
    box = plot.getPlotItem().getViewBox()
    box.setXRange(2.0, 3.0, padding=0)                             # the trader zooms in
    follow(plot, np.array([0.0, 30.0]), [1.0, 2.0])
    assert x_range(plot) == pytest.approx([2.0, 3.0])
    box.enableAutoRange()                                          # the plot's auto-range button
    follow(plot, np.array([0.0, 30.0]), [1.0, 2.0])
    assert x_range(plot)[0] < 0.0 and x_range(plot)[1] > 30.0
    assert not any(box.state["autoRange"])                         # and `follow` steers again
