"""Painting a record table's cells straight from the model's cell cache.

Qt's standard delegate asks the model for seven roles per cell (font, alignment, colours, check state, decoration,
text), each a call from C++ into Python: on the chain board at the full chain (~1,000 visible cells) one repaint
cost 240-316 ms on this 2-core machine (2026-12-07), the longest stall on the loop thread. This delegate makes one
Python call per cell and draws the cached text itself (46-74 ms for the same repaint); `data()` still answers
every role for accessibility, copying and tests.
"""
from __future__ import annotations

from PySide6.QtCore import QModelIndex, QRect, Qt
from PySide6.QtGui import QFont, QFontInfo, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem, QTableView

from .models import RecordModel

TEXT_MARGIN = 4        # px either side of a cell's text (the standard delegate's margin and focus frame)


def fitted_text(text: str, metrics: QFontMetrics, width: int, char_width: int = 0) -> str:
    """`text` as it fits `width` pixels: whole, or cut with an ellipsis ("1,23…") so a clipped number never
    reads as a smaller one. `char_width`: the advance of every character of a fixed-width font (no measuring)."""
    if (len(text) * char_width if char_width else metrics.horizontalAdvance(text)) <= width:
        return text
    return metrics.elidedText(text, Qt.ElideRight, width)


class CellPainter(QStyledItemDelegate):
    """Draws text, colour, font, alignment and background of a RecordModel cell (through the view's proxy,
    when it has one); selection drawn in the palette's highlight."""

    def __init__(self, view: QTableView, model: RecordModel) -> None:
        super().__init__(view)
        self.model = model
        self.view = view
        proxy = view.model()
        self._to_source = proxy.mapToSource if proxy is not model else None
        self._frame: tuple[dict[int, int], set[tuple[int, int]]] | None = None    # set while a repaint runs
        self._text = view.palette().color(QPalette.Text)       # the theme is set before any table is made
        view_font = view.font()
        self._fonts: list[QFont] = [model.font(c) or view_font for c in range(len(model.columns))]
        self._metrics = [QFontMetrics(f) for f in self._fonts]
        self._char_width = [m.horizontalAdvance("0") if QFontInfo(f).fixedPitch() else 0
                            for f, m in zip(self._fonts, self._metrics)]

    def begin_repaint(self) -> None:
        """Before the view paints its cells: the selection is read once and each row mapped through the proxy
        once, not once per cell (each of those asks the model's row and column counts: calls into Python)."""
        selection = self.view.selectionModel()
        selected = {(i.row(), i.column()) for i in selection.selectedIndexes()} if selection is not None else set()
        self._frame = ({}, selected)

    def end_repaint(self) -> None:
        self._frame = None

    def _source_row(self, index: QModelIndex, rows: dict[int, int] | None) -> int:
        if self._to_source is None:
            return index.row()
        if rows is None:
            return self._to_source(index).row()
        row = rows.get(index.row())
        if row is None:
            row = rows[index.row()] = self._to_source(index).row()
        return row

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        model, column, frame = self.model, index.column(), self._frame
        row = self._source_row(index, frame[0] if frame else None)
        if row < 0:
            return
        text, colour = model.cell(row, column)
        rect: QRect = option.rect
        selected = ((index.row(), column) in frame[1]) if frame else self.view.selectionModel().isSelected(index)
        if selected:
            painter.fillRect(rect, option.palette.highlight())
            colour = option.palette.color(QPalette.HighlightedText)
        else:
            background = model.background(row, column)
            if background is not None:
                painter.fillRect(rect, background)
        if not text:
            return
        box = rect.adjusted(TEXT_MARGIN, 0, -TEXT_MARGIN, 0)
        painter.setFont(self._fonts[column])
        painter.setPen(colour or self._text)
        painter.drawText(box, model.alignment(column),
                         fitted_text(text, self._metrics[column], box.width(), self._char_width[column]))
