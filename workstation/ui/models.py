"""One table model for every panel: rows keyed by id, columns declared as (header, value, text, colour).

Sorting uses the raw value so numbers sort as numbers, and is the model's own: `FilterProxy.sort` (a header
click, `sortByColumn`) hands it to the model, which keeps its rows in that order with Python's sort on the cached
keys. A sorting proxy asks the model for two keys per comparison, each a call from Qt into Python: re-sorting the
50-row arbitrage table after each snapshot made ~600 of them, and each waits for the GIL while the numerics
thread runs. Filtering goes through QSortFilterProxyModel. Updates are per row, so a busy table does not reset
its selection.

A row's cells (text, sort key, colour) are computed once after it changes and answered from a cache; tables paint
them through `ui.cells.CellPainter` (one Python call per cell, not one per role); roles the model does not serve
return at once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Hashable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor

from .theme import fmt, mono_font

SORT_ROLE = Qt.UserRole
RECORD_ROLE = Qt.UserRole + 1


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Any], Any]
    text: Callable[[Any], str] | None = None          # formatting of value; default theme.fmt
    colour: Callable[[Any], QColor | None] | None = None  # foreground from the record
    numeric: bool = True
    tooltip: str = ""


_MISSING = float("-inf")          # sort key of a missing or NaN number: below every value


def _order_key(key: float | str) -> tuple[bool, float | str]:
    """A cell's sort key made comparable across types: numbers (missing lowest) before text."""
    return isinstance(key, str), key


def sort_key(value: Any, numeric: bool) -> float | str:
    """What a cell sorts by: a float for numeric columns (missing/NaN lowest), else text."""
    if numeric:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _MISSING if math.isnan(value) else float(value)
        return _MISSING if value is None else str(value)
    return "" if value is None else str(value)


class RecordModel(QAbstractTableModel):
    """Rows of arbitrary records under stable keys."""

    def __init__(self, columns: list[Column], parent=None) -> None:
        super().__init__(parent)
        self.columns = columns
        self._keys: list[Hashable] = []
        self._rows: dict[Hashable, Any] = {}
        self._cells: dict[Hashable, list[tuple[str, Any, QColor | None]]] = {}   # key -> (text, sort, colour)
        font = mono_font()
        self._align = [int((Qt.AlignRight if c.numeric else Qt.AlignLeft) | Qt.AlignVCenter) for c in columns]
        self._fonts = [font if c.numeric else None for c in columns]
        self._sorted_by: tuple[int, bool] | None = None      # (column, descending) of the view; None: as given

    # -------------------------------------------------------------------------------- contents
    def upsert(self, key: Hashable, record: Any) -> None:
        """Add a row, or change one in place (in a sorted model, moved to where its new values sort)."""
        self._cells.pop(key, None)
        if key in self._rows:
            self._rows[key] = record
            row = self._keys.index(key)
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.columns) - 1))
            self._move_into_place(row)
        else:
            self._rows[key] = record
            row = self._sorted_position(key, self._keys)
            self.beginInsertRows(QModelIndex(), row, row)
            self._keys.insert(row, key)
            self.endInsertRows()

    def remove(self, key: Hashable) -> None:
        if key not in self._rows:
            return
        row = self._keys.index(key)
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._keys[row]
        del self._rows[key]
        self._cells.pop(key, None)
        self.endRemoveRows()

    def set_records(self, items: list[tuple[Hashable, Any]]) -> None:
        """Replace everything (whole-book summaries, the arbitrage list): rows whose key left are removed, new
        keys inserted and the rest updated in place, so the selection survives. A sorted model then puts the rows
        in order (the order of `items` does not matter to it); an unsorted one shows them in the order of `items`
        and resets on a reorder of the surviving keys. No survivor at all is a reset either way (a reset re-lays
        out the whole view)."""
        rows = dict(items)
        if self._sorted_by is not None:     # survivors where they are, new keys after them; then one re-sort
            new_keys = [k for k in self._keys if k in rows] + [k for k, _ in items if k not in self._rows]
        else:
            new_keys = [k for k, _ in items]
        if new_keys != self._keys:
            kept, old = set(new_keys), set(self._keys)
            survivors = [k for k in self._keys if k in kept]
            if not survivors or survivors != [k for k in new_keys if k in old]:
                self.beginResetModel()
                self._keys, self._rows = new_keys, rows
                self._cells.clear()
                self._keys = self._in_order(self._keys)
                self.endResetModel()
                return
            for key in survivors:       # new records first: a sorted view reads cells during the changes below
                self._rows[key] = rows[key]
            self._cells.clear()
            for row in range(len(self._keys) - 1, -1, -1):
                if self._keys[row] not in kept:
                    self.beginRemoveRows(QModelIndex(), row, row)
                    del self._rows[self._keys.pop(row)]
                    self.endRemoveRows()
            for row, key in enumerate(new_keys):
                if row >= len(self._keys) or self._keys[row] != key:
                    self.beginInsertRows(QModelIndex(), row, row)
                    self._keys.insert(row, key)
                    self._rows[key] = rows[key]
                    self.endInsertRows()
        self._rows = rows
        self._cells.clear()
        if self._keys:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._keys) - 1, len(self.columns) - 1))
        self._reorder()

    def refresh_column(self, column: int) -> None:
        """Recompute a column that changes with time alone (an age), for every row."""
        for key, cells in self._cells.items():
            cells[column] = self._cell(self.columns[column], self._rows[key])
        if self._keys:
            self.dataChanged.emit(self.index(0, column), self.index(len(self._keys) - 1, column))
        if self._sorted_by is not None and self._sorted_by[0] == column:
            self._reorder()

    # -------------------------------------------------------------------------------- sorting
    def sort(self, column: int, order: Qt.SortOrder = Qt.AscendingOrder) -> None:
        """Keep the rows sorted by `column`'s raw values from now on (-1: in the order they were given)."""
        descending = Qt.SortOrder(order) == Qt.DescendingOrder
        self._sorted_by = (column, descending) if 0 <= column < len(self.columns) else None
        self._reorder()

    def sort_order(self) -> tuple[int, bool] | None:
        """(column, descending) the rows are kept in, or None."""
        return self._sorted_by

    def _sort_key(self, key: Hashable) -> tuple[bool, float | str]:
        return _order_key(self._row_cells(key)[self._sorted_by[0]][1])

    def _in_order(self, keys: list[Hashable]) -> list[Hashable]:
        """`keys` in the sort order (stable: equal values keep their order); as given when unsorted."""
        if self._sorted_by is None:
            return keys
        return sorted(keys, key=self._sort_key, reverse=self._sorted_by[1])

    def _sorted_position(self, key: Hashable, keys: list[Hashable]) -> int:
        """Where `key` goes among `keys` (in order): after every row that sorts before it or equal to it."""
        if self._sorted_by is None:
            return len(keys)
        mine, descending = self._sort_key(key), self._sorted_by[1]
        lo, hi = 0, len(keys)
        while lo < hi:
            mid = (lo + hi) // 2
            other = self._sort_key(keys[mid])
            if (mine > other) if descending else (mine < other):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _move_into_place(self, row: int) -> None:
        """Move a changed row of a sorted model to where it now sorts (one row move: the selection follows)."""
        if self._sorted_by is None:
            return
        key = self._keys[row]
        others = self._keys[:row] + self._keys[row + 1:]
        target = self._sorted_position(key, others)
        if target == row:
            return
        # Qt's destination counts rows before the move: moving down lands before the row that follows the target
        self.beginMoveRows(QModelIndex(), row, row, QModelIndex(), target + 1 if target > row else target)
        self._keys = others[:target] + [key] + others[target:]
        self.endMoveRows()

    def _reorder(self) -> None:
        """Put the rows in the sort order; a change is one layout change that keeps every persistent index (the
        selection) on its row."""
        keys = self._in_order(self._keys)
        if keys == self._keys:
            return
        self.layoutAboutToBeChanged.emit()
        row_of = {k: i for i, k in enumerate(keys)}
        before = self.persistentIndexList()
        after = [self.index(row_of[self._keys[i.row()]], i.column()) for i in before]
        self._keys = keys
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    def record(self, row: int) -> Any:
        return self._rows[self._keys[row]]

    def text(self, row: int, column: int) -> str:
        """The text a cell shows (from the cache: no call through Qt)."""
        return self._row_cells(self._keys[row])[column][0]

    def font(self, column: int):
        """The font a column is drawn in (None: the view's)."""
        return self._fonts[column]

    def alignment(self, column: int) -> int:
        """How a column's text is aligned (numbers right, text left)."""
        return self._align[column]

    def cell(self, row: int, column: int) -> tuple[str, QColor | None]:
        """(text, foreground colour) of a cell, from the cache: what the cell painter draws."""
        text, _, colour = self._row_cells(self._keys[row])[column]
        return text, colour

    def background(self, row: int, column: int) -> QColor | None:
        """A cell's background (None: the view's, alternating rows). Subclasses mark rows here."""
        return None

    def get(self, key: Hashable) -> Any:
        return self._rows.get(key)

    def key(self, row: int) -> Hashable:
        return self._keys[row]

    def keys(self) -> list[Hashable]:
        return list(self._keys)

    def records(self) -> list[Any]:
        return [self._rows[k] for k in self._keys]

    @staticmethod
    def _cell(column: Column, record: Any) -> tuple[str, Any, QColor | None]:
        """(text, sort key, colour) of one column of a record."""
        try:
            value = column.value(record)
            text = column.text(value) if column.text else fmt(value)
            colour = column.colour(record) if column.colour is not None else None
        except Exception:        # a bad record shows blanks; it never breaks painting
            value, text, colour = None, "", None
        return text, sort_key(value, column.numeric), colour

    def _row_cells(self, key: Hashable) -> list[tuple[str, Any, QColor | None]]:
        """The cells of every column of a row, computed once per change."""
        cells = self._cells.get(key)
        if cells is None:
            record = self._rows[key]
            cells = self._cells[key] = [self._cell(column, record) for column in self.columns]
        return cells

    # ------------------------------------------------------------------------------- Qt model
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._keys)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.DisplayRole) -> Any:
        if orientation == Qt.Horizontal and 0 <= section < len(self.columns):
            if role == Qt.DisplayRole:
                return self.columns[section].header
            if role == Qt.ToolTipRole:
                return self.columns[section].tooltip or None
        return None

    def data(self, index: QModelIndex, role: int = Qt.DisplayRole) -> Any:
        if role == Qt.DisplayRole:
            slot = 0
        elif role == SORT_ROLE:
            slot = 1
        elif role == Qt.ForegroundRole:
            slot = 2
        elif role == Qt.TextAlignmentRole:
            return self._align[index.column()]
        elif role == Qt.FontRole:
            return self._fonts[index.column()]
        elif role == RECORD_ROLE:
            return self._rows[self._keys[index.row()]] if index.isValid() else None
        elif role == Qt.BackgroundRole:
            return self.background(index.row(), index.column()) if index.isValid() else None
        else:
            return None
        if not index.isValid():
            return None
        return self._row_cells(self._keys[index.row()])[index.column()][slot]


class FilterProxy(QSortFilterProxyModel):
    """Filter rows by a text (any column) and an optional predicate. A sort (a header click, `sortByColumn`) is
    handed to the record model, which keeps its rows in order: this proxy only filters, in the model's order."""

    def sort(self, column: int, order: Qt.SortOrder = Qt.AscendingOrder) -> None:
        model = self.sourceModel()
        if isinstance(model, RecordModel):
            model.sort(column, order)
        else:  # pragma: no cover - every table's model is a RecordModel
            super().sort(column, order)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setFilterCaseSensitivity(Qt.CaseInsensitive)
        self.setFilterKeyColumn(-1)
        self.predicate: Callable[[Any], bool] | None = None

    def set_predicate(self, predicate: Callable[[Any], bool] | None) -> None:
        if hasattr(self, "beginFilterChange"):          # Qt >= 6.10: invalidateFilter() is deprecated
            self.beginFilterChange()
            self.predicate = predicate
            self.endFilterChange()
        else:  # pragma: no cover - older Qt
            self.predicate = predicate
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:
        model = self.sourceModel()
        if self.predicate is not None and not self.predicate(model.record(source_row)):
            return False
        return super().filterAcceptsRow(source_row, source_parent)
