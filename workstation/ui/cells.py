"""Painting a record table's cells straight from the model's cell cache.

Qt's standard delegate asks the model for seven roles per cell (font, alignment, colours, check state, decoration,
text), each a call from C++ into Python: on the chain board at the full chain (~1,000 visible cells) one repaint
cost 240-316 ms on this 2-core machine (2026-12-07), the longest stall on the loop thread. This delegate makes one
Python call per cell and draws the cached text itself (46-74 ms for the same repaint); `data()` still answers
every role for accessibility, copying and tests.

`paint_view` goes further: the table's whole repaint in one Python call — row backgrounds, selection, texts and
grid drawn straight from the cache, about one Qt call per cell instead of a delegate call (with its option and
index wrapped for Python) and eight Qt calls. Every Qt call lets go of the GIL, and while a worker thread runs
Python each one can wait for it: fewer calls, fewer waits.
"""
from __future__ import annotations

from PySide6.QtCore import QLine, QModelIndex, QRect, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontInfo,
    QFontMetrics,
    QPainter,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import (
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
)

from .models import RecordModel

TEXT_MARGIN = 4        # px either side of a cell's text (the standard delegate's margin and focus frame)


def fitted_text(text: str, metrics: QFontMetrics, width: int, char_width: int = 0) -> str:
    """`text` as it fits `width` pixels: whole, or cut with an ellipsis ("1,23…") so a clipped number never
    reads as a smaller one. `char_width`: the advance of every character of a fixed-width font (no measuring)."""
    if (len(text) * char_width if char_width else metrics.horizontalAdvance(text)) <= width:
        return text
    return metrics.elidedText(text, Qt.ElideRight, width)


LEFT, RIGHT, CENTRE = range(3)


def _placing(alignment) -> int:
    """LEFT, RIGHT or CENTRE from a Qt alignment (read once per column, not per cell)."""
    flags = Qt.AlignmentFlag(alignment)
    return RIGHT if flags & Qt.AlignRight else CENTRE if flags & Qt.AlignHCenter else LEFT


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
        self._placing = [_placing(model.alignment(c)) for c in range(len(model.columns))]
        self._line = [(m.height(), m.ascent()) for m in self._metrics]      # a text line's box and baseline

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

    def paint_view(self, painter: QPainter, area: QRect) -> None:
        """Paint every cell of the view that meets `area` (viewport coordinates): alternate-row and model
        backgrounds, the selection in the palette's highlight, the cached texts (cut with "…" when too wide) and
        the grid, as the standard table would draw them."""
        view, model = self.view, self.model
        rows, columns = view.model().rowCount(), len(model.columns)
        if not rows or not columns:
            return
        first, last = view.rowAt(area.top()), view.rowAt(area.bottom())
        if first < 0:                               # the area starts below the last row: nothing to paint
            return
        last = rows - 1 if last < 0 else last
        header = view.horizontalHeader()
        left, right = header.visualIndexAt(area.left()), header.visualIndexAt(area.right())
        left = max(left, 0)
        right = header.count() - 1 if right < 0 else right
        cols = []                                   # (logical column, x, width) in visual order
        for visual in range(left, right + 1):
            column = header.logicalIndex(visual)
            if column < 0 or column >= columns or header.isSectionHidden(column):
                continue
            cols.append((column, header.sectionViewportPosition(column), header.sectionSize(column)))
        if not cols:
            return
        palette = view.palette()
        highlight, highlighted_text = palette.highlight(), palette.color(QPalette.HighlightedText)
        alternate = palette.alternateBase() if view.alternatingRowColors() else None
        self.begin_repaint()
        row_map, selected = self._frame
        x0, x1 = cols[0][1], cols[-1][1] + cols[-1][2]
        grid = view.showGrid()
        g = 1 if grid else 0                        # a cell is its section less the grid line
        lines: list[QLine] = []
        font = pen = None
        vertical = view.verticalHeader()
        try:
            for r in range(first, last + 1):
                y, h = vertical.sectionViewportPosition(r), vertical.sectionSize(r)
                if alternate is not None and r & 1:
                    painter.fillRect(x0, y, x1 - x0, h - g, alternate)
                row = r if self._to_source is None else self._source_row(view.model().index(r, 0), row_map)
                if row < 0:
                    continue
                for column, x, w in cols:
                    text, colour = model.cell(row, column)
                    if (r, column) in selected:
                        painter.fillRect(x, y, w - g, h - g, highlight)
                        colour = highlighted_text
                    else:
                        background = model.background(row, column)
                        if background is not None:
                            painter.fillRect(x, y, w - g, h - g, background)
                    if text:
                        if self._fonts[column] is not font:
                            font = self._fonts[column]
                            painter.setFont(font)
                        colour = colour or self._text
                        if colour is not pen:
                            pen = colour
                            painter.setPen(colour)
                        width = w - g - 2 * TEXT_MARGIN
                        metrics, char_width = self._metrics[column], self._char_width[column]
                        text = fitted_text(text, metrics, width, char_width)
                        if char_width:          # fixed pitch: placed here, drawn at its baseline (no layout pass)
                            free = width - len(text) * char_width
                            placing = self._placing[column]
                            at_x = x + TEXT_MARGIN + (free if placing == RIGHT else free // 2 if placing == CENTRE
                                                      else 0)
                            height, ascent = self._line[column]
                            painter.drawText(at_x, y + (h - g - height) // 2 + ascent, text)
                        else:
                            painter.drawText(x + TEXT_MARGIN, y, width, h - g, model.alignment(column), text)
                if grid:
                    lines.append(QLine(x0, y + h - 1, x1 - 1, y + h - 1))
            if grid and lines:
                top = vertical.sectionViewportPosition(first)
                bottom = vertical.sectionViewportPosition(last) + vertical.sectionSize(last) - 1
                lines += [QLine(x + w - 1, top, x + w - 1, bottom) for _, x, w in cols]
                option = QStyleOptionViewItem()
                option.initFrom(view)                # the style sheet's gridline-color, as QTableView asks it
                hint = view.style().styleHint(QStyle.SH_Table_GridLineColor, option, view)
                painter.setPen(QPen(QColor.fromRgba(hint & 0xFFFFFFFF), 0, view.gridStyle()))
                painter.drawLines(lines)
        finally:
            self.end_repaint()

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
