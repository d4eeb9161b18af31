"""Panel base: payloads arrive via bridge signals (cheap), drawing happens at most once per refresh tick."""
from __future__ import annotations

import logging

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QMessageBox,
    QTableView,
    QWidget,
)

from ...commands import Command
from .. import theme
from ..bridge import Bridge, CommandError
from ..cells import CellPainter
from ..models import FilterProxy, RecordModel

log = logging.getLogger(__name__)


class Panel(QWidget):
    """A dock's content. Subclasses store payloads in slots, call `mark_dirty()`, draw in `render()`."""

    title = "Panel"
    name = "panel"

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self._dirty = False
        self.setObjectName(f"{self.name}Panel")

    def mark_dirty(self) -> None:
        self._dirty = True

    @property
    def dirty(self) -> bool:
        """Something changed since the last redraw."""
        return self._dirty

    def flush(self) -> bool:
        """Called by the window's refresh timer: redraw when something changed since the last tick (True when it
        did). A hidden panel (closed dock, tab behind another) stays dirty and redraws when it is shown."""
        if not self._dirty or not self.isVisible():
            return False
        self._dirty = False
        try:
            self.render()
        except Exception:  # a drawing bug must not take the window down
            log.exception("%s panel failed to render", self.title)
        return True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.flush()

    def render(self) -> None:
        """Redraw from the stored payloads."""

    def run(self, command: Command, on_done=None):
        """An engine command; failures are shown in a message box."""
        try:
            return self.bridge.command(command, on_done=on_done,
                                       on_error=lambda msg: self.show_error(command.title, msg))
        except CommandError as exc:  # pragma: no cover - on_error is always given
            self.show_error(command.title, str(exc))
            return None

    def show_error(self, what: str, message: str) -> None:
        log.warning("%s: %s", what, message)
        box = QMessageBox(QMessageBox.Warning, "Heston Workstation", f"{what} failed:\n{message}",
                          QMessageBox.Ok, self)
        box.setModal(False)
        box.show()


class DockFrame(QWidget):
    """A dock's content holder that does not pass its panel's size-hint changes up to the main window.

    Qt re-lays out every ancestor when a label's text changes (QLayout::activate ends in updateGeometry on the
    parent, "ideally only if the size hint changed"), so one updated number in any panel re-laid out the whole
    main window with all its docks: 17 times a second, up to 45 ms each. Here the panel has no layout above it:
    its relayout requests stop at this frame, which sizes it by hand and reports its hints to the dock.
    """

    def __init__(self, panel: QWidget) -> None:
        super().__init__()
        self.panel = panel
        panel.setParent(self)
        self.setObjectName(f"{panel.objectName()}Frame")

    def resizeEvent(self, event) -> None:
        self.panel.setGeometry(self.rect())
        super().resizeEvent(event)

    def sizeHint(self):
        return self.panel.sizeHint()

    def minimumSizeHint(self):
        return self.panel.minimumSizeHint()


FIT_ROWS = 100
CELL_PADDING = 14       # the item delegate's margins and focus frame, px
HEADER_PADDING = 22     # a header section's margins and its sort arrow, px
WIDE_COLUMNS = {"Contract", "Message", "Order id", "Reason", "Structure"}     # text: at least 170 px, at most 260


def _source_of(model):
    """The model under a proxy (the model itself when there is none)."""
    return model.sourceModel() if hasattr(model, "sourceModel") else model


class RecordTable(QTableView):
    """A table that says what it is waiting for when empty, and fits its columns to what it shows."""

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.placeholder = placeholder
        self._auto_width = True             # until the trader touches the header: then their widths stay
        self.cells: CellPainter | None = None     # set by setModel when the model is a RecordModel
        header = self.horizontalHeader()
        # a trader's "fit to contents" (double-click on a header edge) measures FIT_ROWS rows, not hundreds
        header.setResizeContentsPrecision(FIT_ROWS)
        header.viewport().installEventFilter(self)

    def setModel(self, model) -> None:
        super().setModel(model)
        source = _source_of(model)
        self.cells = CellPainter(self, source) if isinstance(source, RecordModel) else None
        if self.cells is not None:               # cells painted from the model's cache, one call per cell
            self.setItemDelegate(self.cells)
        model.rowsInserted.connect(lambda _parent, first, last: self._fit_columns(first, last))
        model.modelReset.connect(lambda: self._fit_columns(0, FIT_ROWS - 1))

    def eventFilter(self, watched, event) -> bool:
        if event.type() in (QEvent.MouseButtonPress, QEvent.MouseButtonDblClick):
            self._auto_width = False        # a drag or a double-click on the header: the trader sizes now
        return super().eventFilter(watched, event)

    def _fit_columns(self, first: int, last: int) -> None:
        """Columns widened (never narrowed: no jitter) to the texts of new rows, at most FIT_ROWS at a time; long
        text columns capped; nothing once the trader has sized a column by hand.

        Measured here from the model's cached texts with font metrics: Qt's resizeColumnsToContents asks every
        cell of FIT_ROWS rows for a dozen roles through Python, which held the loop thread for half a second on
        the chain board's 23 columns."""
        model = self.model()
        if not self._auto_width or model is None or not model.rowCount():
            return
        source = _source_of(model)
        if not isinstance(source, RecordModel):
            self.resizeColumnsToContents()
            return
        header = self.horizontalHeader()
        rows = [model.mapToSource(model.index(r, 0)).row() if source is not model else r
                for r in range(first, min(last + 1, first + FIT_ROWS, model.rowCount()))]
        header_metrics = QFontMetrics(header.font())
        for i, column in enumerate(source.columns):
            metrics = QFontMetrics(source.font(i) or self.font())
            cells = max((metrics.horizontalAdvance(source.text(r, i)) for r in rows), default=0)
            width = max(cells + CELL_PADDING, header_metrics.horizontalAdvance(column.header) + HEADER_PADDING)
            wide = column.header in WIDE_COLUMNS
            width = min(max(width, 170 if wide else 48), 260 if wide else 220)
            if width > header.sectionSize(i):
                header.resizeSection(i, width)

    def paintEvent(self, event) -> None:
        cells = self.cells
        if cells is not None:                   # the whole repaint in one call (see cells.paint_view)
            painter = QPainter(self.viewport())
            try:
                cells.paint_view(painter, event.rect())
            finally:
                painter.end()
        else:
            super().paintEvent(event)
        if self.placeholder and self.model() is not None and not self.model().rowCount():
            painter = QPainter(self.viewport())
            painter.setPen(QColor(theme.MUTED))
            painter.drawText(self.viewport().rect().adjusted(8, 8, -8, -8), Qt.AlignCenter | Qt.TextWordWrap,
                             self.placeholder)
            painter.end()


def make_table(model: RecordModel, parent: QWidget | None = None, sortable: bool = True,
               placeholder: str = "") -> tuple[QTableView, FilterProxy]:
    """A read-only, row-selecting, sortable table over `model` through a filter proxy."""
    proxy = FilterProxy(parent)
    proxy.setSourceModel(model)
    view = RecordTable(placeholder, parent)
    view.setModel(proxy)
    view.setSortingEnabled(sortable)
    view.setSelectionBehavior(QAbstractItemView.SelectRows)
    view.setSelectionMode(QAbstractItemView.SingleSelection)
    view.setEditTriggers(QAbstractItemView.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(22)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
    view.horizontalHeader().setStretchLastSection(True)
    view.horizontalHeader().setDefaultAlignment(Qt.AlignCenter)
    view.horizontalHeader().setDefaultSectionSize(72)
    for i, column in enumerate(model.columns):
        if column.header in ("Contract", "Message", "Order id", "Reason"):
            view.setColumnWidth(i, 170)
    return view, proxy


def selected_record(view: QTableView):
    """The record of the selected row (through the proxy), or None."""
    rows = view.selectionModel().selectedRows() if view.selectionModel() else []
    if not rows:
        return None
    proxy = view.model()
    source = proxy.mapToSource(rows[0])
    return proxy.sourceModel().record(source.row())
