"""One table model for every panel: rows keyed by id, columns declared as (header, value, text, colour).

Sorting uses the raw value (Qt.UserRole) so numbers sort as numbers; filtering goes through
QSortFilterProxyModel. Updates are per row, so a busy table does not reset its selection.
"""
from __future__ import annotations

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


class RecordModel(QAbstractTableModel):
    """Rows of arbitrary records under stable keys."""

    def __init__(self, columns: list[Column], parent=None) -> None:
        super().__init__(parent)
        self.columns = columns
        self._keys: list[Hashable] = []
        self._rows: dict[Hashable, Any] = {}
        self._font = mono_font()

    # -------------------------------------------------------------------------------- contents
    def upsert(self, key: Hashable, record: Any) -> None:
        if key in self._rows:
            self._rows[key] = record
            row = self._keys.index(key)
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.columns) - 1))
        else:
            self.beginInsertRows(QModelIndex(), len(self._keys), len(self._keys))
            self._keys.append(key)
            self._rows[key] = record
            self.endInsertRows()

    def remove(self, key: Hashable) -> None:
        if key not in self._rows:
            return
        row = self._keys.index(key)
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._keys[row]
        del self._rows[key]
        self.endRemoveRows()

    def set_records(self, items: list[tuple[Hashable, Any]]) -> None:
        """Replace everything (used for whole-book summaries)."""
        new_keys = [k for k, _ in items]
        if new_keys == self._keys:
            self._rows = dict(items)
            if self._keys:
                self.dataChanged.emit(self.index(0, 0), self.index(len(self._keys) - 1, len(self.columns) - 1))
            return
        self.beginResetModel()
        self._keys = new_keys
        self._rows = dict(items)
        self.endResetModel()

    def record(self, row: int) -> Any:
        return self._rows[self._keys[row]]

    def get(self, key: Hashable) -> Any:
        return self._rows.get(key)

    def key(self, row: int) -> Hashable:
        return self._keys[row]

    def keys(self) -> list[Hashable]:
        return list(self._keys)

    def records(self) -> list[Any]:
        return [self._rows[k] for k in self._keys]

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
        if not index.isValid():
            return None
        record = self._rows[self._keys[index.row()]]
        column = self.columns[index.column()]
        if role == RECORD_ROLE:
            return record
        try:
            value = column.value(record)
        except Exception:
            value = None
        if role == Qt.DisplayRole:
            return column.text(value) if column.text else fmt(value)
        if role == SORT_ROLE:
            return value if isinstance(value, (int, float, str)) else str(value)
        if role == Qt.ForegroundRole and column.colour is not None:
            return column.colour(record)
        if role == Qt.TextAlignmentRole:
            return int((Qt.AlignRight if column.numeric else Qt.AlignLeft) | Qt.AlignVCenter)
        if role == Qt.FontRole and column.numeric:
            return self._font
        return None


class FilterProxy(QSortFilterProxyModel):
    """Sort by raw values; filter rows by a text (any column) and an optional predicate."""

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

    def lessThan(self, left: QModelIndex, right: QModelIndex) -> bool:
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        try:
            return a < b
        except TypeError:
            return str(a) < str(b)
