"""The table model every panel uses: cached cells that follow their records, native sorting by raw values."""
from __future__ import annotations

import math

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt

from workstation.ui.models import Column, FilterProxy, RecordModel

CLOCK = {"now": 100.0}
COLUMNS = [Column("Name", lambda r: r["name"], str, numeric=False),
           Column("Edge", lambda r: r["edge"]),
           Column("Age", lambda r: CLOCK["now"] - r["born"], lambda v: f"{v:.0f}s")]


def text(model: RecordModel, row: int, column: int) -> str:
    return model.data(model.index(row, column), Qt.DisplayRole)


def test_cells_follow_upserts_and_a_time_column_refreshes(qtbot):
    model = RecordModel(COLUMNS)
    model.upsert("a", {"name": "A", "edge": 1.5, "born": 90.0})
    assert text(model, 0, 1) == "1.50" and text(model, 0, 2) == "10s"
    model.upsert("a", {"name": "A", "edge": -2.0, "born": 90.0})        # a changed record: new text
    assert text(model, 0, 1) == "-2.00"
    CLOCK["now"] = 130.0
    assert text(model, 0, 2) == "10s"                                   # cached until the column is refreshed
    model.refresh_column(2)
    assert text(model, 0, 2) == "40s"
    assert model.data(model.index(0, 0), Qt.ToolTipRole) is None        # unserved roles answer at once


def test_numbers_sort_as_numbers_with_missing_values_lowest(qtbot):
    model = RecordModel(COLUMNS)
    for key, edge in (("a", 10.0), ("b", 9.0), ("c", math.nan), ("d", None), ("e", 100.0)):
        model.upsert(key, {"name": key, "edge": edge, "born": 0.0})
    proxy = FilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(1, Qt.DescendingOrder)
    order = [proxy.data(proxy.index(r, 0), Qt.DisplayRole) for r in range(proxy.rowCount())]
    assert order[:3] == ["e", "a", "b"] and set(order[3:]) == {"c", "d"}
    model.upsert("b", {"name": "b", "edge": 1000.0, "born": 0.0})       # re-sorted on change
    assert proxy.data(proxy.index(0, 0), Qt.DisplayRole) == "b"


def test_replacing_the_records_keeps_the_selection_and_the_sort(qtbot):
    """`set_records` (the arbitrage list, positions): a key that left is removed, a new key inserted, the rest
    change in place, so the trader's selected row stays selected; a sorted table stays sorted by the new values
    (the order of the list does not matter to it), and only an empty start or no survivor resets the model."""
    from workstation.ui.panels.base import make_table

    def rec(name, edge):
        return name, {"name": name, "edge": edge, "born": 0.0}

    model = RecordModel(COLUMNS)
    view, proxy = make_table(model)
    qtbot.addWidget(view)
    proxy.sort(1, Qt.DescendingOrder)
    resets = []
    model.modelReset.connect(lambda: resets.append(1))
    model.set_records([rec("a", 1.0), rec("b", 2.0), rec("c", 3.0)])
    assert resets == [1] and model.keys() == ["c", "b", "a"]      # from empty: one reset, in the sort order
    b_row = next(r for r in range(proxy.rowCount()) if proxy.data(proxy.index(r, 0), Qt.DisplayRole) == "b")
    view.selectRow(b_row)

    def shown() -> list[str]:
        return [proxy.data(proxy.index(r, 0), Qt.DisplayRole) for r in range(proxy.rowCount())]

    def picked() -> list[str]:
        return [proxy.data(i, Qt.DisplayRole) for i in view.selectionModel().selectedRows()]

    model.set_records([rec("b", 2.5), rec("x", 9.0), rec("c", 3.0), rec("d", 0.5)])   # a gone, x and d new
    assert resets == [1]
    assert shown() == ["x", "c", "b", "d"]                      # sorted by edge, descending
    assert picked() == ["b"]
    assert text(model, model.keys().index("b"), 1) == "2.50"   # the surviving row shows its new record

    model.set_records([rec("c", 3.0), rec("b", 4.0)])           # b's new edge moves it to the top
    assert resets == [1] and shown() == ["b", "c"] and picked() == ["b"]
    model.set_records([])
    assert resets == [1, 1] and model.rowCount() == 0

    plain = RecordModel(COLUMNS)                                # unsorted: the list's order, reset on a reorder
    plain.modelReset.connect(lambda: resets.append(2))
    plain.set_records([rec("a", 1.0), rec("b", 2.0)])
    plain.set_records([rec("a", 1.0), rec("x", 0.0), rec("b", 2.0)])
    assert plain.keys() == ["a", "x", "b"] and resets == [1, 1, 2]
    plain.set_records([rec("b", 2.0), rec("a", 1.0)])
    assert plain.keys() == ["b", "a"] and resets == [1, 1, 2, 2]


def test_a_sorted_table_re_sorts_without_asking_qt_for_keys(qtbot):
    """Sorting is the model's own: a sorting proxy would ask the model for two keys per comparison, each a call
    from Qt into Python that waits for the GIL while the numerics run (~600 for the 50-row arbitrage table each
    snapshot). Upserts move a row to its place, the selection follows, and the order is the sort's."""
    from workstation.ui.panels.base import make_table

    model = CountingModel(COLUMNS)
    view, proxy = make_table(model)
    qtbot.addWidget(view)
    proxy.sort(1, Qt.DescendingOrder)
    model.set_records([(f"k{i}", {"name": f"k{i}", "edge": float(i), "born": 0.0}) for i in range(200)])
    view.selectRow(0)                                                # k199, the largest edge
    model.asked = 0
    model.set_records([(f"k{i}", {"name": f"k{i}", "edge": float((i * 37) % 200), "born": 0.0})
                       for i in range(200)])                          # every row changes, most move
    model.upsert("k5", {"name": "k5", "edge": 1e6, "born": 0.0})    # to the top
    model.upsert("k6", {"name": "k6", "edge": -1.0, "born": 0.0})   # to the bottom
    model.upsert("new", {"name": "new", "edge": 100.5, "born": 0.0})
    assert model.asked == 0
    edges = [model.record(r)["edge"] for r in range(model.rowCount())]
    assert edges == sorted(edges, reverse=True) and len(edges) == 201
    assert [proxy.data(proxy.index(r, 0), Qt.DisplayRole) for r in (0, 200)] == ["k5", "k6"]
    assert [proxy.data(i, Qt.DisplayRole) for i in view.selectionModel().selectedRows()] == ["k199"]
    model.upsert("k199", {"name": "k199", "edge": 0.25, "born": 0.0})   # the selected row moves down
    assert [proxy.data(i, Qt.DisplayRole) for i in view.selectionModel().selectedRows()] == ["k199"]
    proxy.sort(0, Qt.AscendingOrder)                                  # a header click: by name
    names = [model.record(r)["name"] for r in range(model.rowCount())]
    assert names == sorted(names)


def test_columns_widen_to_new_rows_and_keep_the_traders_widths(qtbot):
    """Every number shows whole (no '…'), a later wider row included; once the trader has sized a column by
    hand, new rows and resets leave every width alone."""
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QFontMetrics

    from workstation.ui.panels.base import make_table

    model = RecordModel(COLUMNS)
    view, proxy = make_table(model)
    qtbot.addWidget(view)
    view.show()
    header = view.horizontalHeader()

    def fits(row: int) -> None:
        for column in range(len(COLUMNS)):
            font = model.font(column) or view.font()
            cell = QFontMetrics(font).horizontalAdvance(model.text(row, column))
            label = QFontMetrics(header.font()).horizontalAdvance(COLUMNS[column].header)
            width = header.sectionSize(column)
            assert width >= min(cell, 220) and width >= label, (COLUMNS[column].header, width, cell, label)

    model.upsert("a", {"name": "a", "edge": 1.0, "born": 0.0})
    fits(0)
    narrow = header.sectionSize(1)
    model.upsert("b", {"name": "a rather long instrument name", "edge": -12345678.9, "born": 0.0})
    fits(1)
    assert header.sectionSize(1) > narrow                                   # widened for the new row
    qtbot.mouseClick(header.viewport(), Qt.LeftButton, pos=QPoint(5, 5))   # the trader takes over
    header.resizeSection(1, 300)
    model.upsert("c", {"name": "c" * 80, "edge": 1e15, "born": 0.0})
    model.set_records([("d", {"name": "d", "edge": 2.0, "born": 0.0})])
    assert header.sectionSize(1) == 300


class CountingModel(RecordModel):
    """The record model, counting the roles Qt asks it for."""

    asked: int = 0

    def data(self, index, role=Qt.DisplayRole):
        self.asked += 1
        return super().data(index, role)


def test_tables_paint_from_the_cell_cache_with_selection_and_row_backgrounds(qtbot):
    """One repaint asks the model for no role (the standard delegate asks seven per cell, each a call into
    Python: 160-270 ms a repaint on the full chain board); what it draws is the model's: a marked row's
    background, the selection in the palette's highlight, a text too wide for its column cut with '…'."""
    from PySide6.QtGui import QColor, QFontMetrics, QPalette
    from PySide6.QtWidgets import QTableView

    from workstation.ui.cells import CellPainter, fitted_text
    from workstation.ui.panels.base import make_table

    marked = QColor("#24344a")

    class Marked(CountingModel):
        def background(self, row, column):
            return marked if self.record(row)["name"] == "b" else None

    model = Marked(COLUMNS)
    for key in "abcd":
        model.upsert(key, {"name": key, "edge": 1.0, "born": 0.0})
    view, proxy = make_table(model)
    qtbot.addWidget(view)
    view.resize(400, 200)
    view.show()
    qtbot.waitExposed(view)
    assert isinstance(view.itemDelegate(), CellPainter)
    proxy.sort(0, Qt.DescendingOrder)                  # d, c, b, a: painting goes through the proxy's mapping
    view.selectRow(0)
    model.asked = 0
    image = view.viewport().grab().toImage()
    assert model.asked == 0

    def pixel(row: int, column: int) -> QColor:
        rect = view.visualRect(proxy.index(row, column))
        return image.pixelColor(rect.left() + 1, rect.top() + 1)
    assert pixel(0, 1) == view.palette().color(QPalette.Highlight)      # d, selected
    assert pixel(2, 1) == marked                                        # b, marked by its model
    assert pixel(3, 1) != marked                                        # a
    # the grid and the alternate rows where Qt's own table draws them, in its colours
    plain = QTableView()
    qtbot.addWidget(plain)
    plain.setModel(proxy)
    plain.setAlternatingRowColors(True)
    plain.verticalHeader().setVisible(False)
    plain.verticalHeader().setDefaultSectionSize(view.verticalHeader().defaultSectionSize())
    for c in range(len(COLUMNS)):
        plain.setColumnWidth(c, view.columnWidth(c))
    plain.resize(400, 200)
    plain.show()
    qtbot.waitExposed(plain)
    reference = plain.viewport().grab().toImage()
    rect = view.visualRect(proxy.index(1, 1))                           # c: an alternate row
    for x, y in ((rect.right() + 1, rect.center().y()), (rect.center().x(), rect.bottom() + 1),   # grid lines
                 (rect.left() + 1, rect.top() + 1)):                                        # the row's colour
        assert image.pixelColor(x, y) == reference.pixelColor(x, y), (x, y)
    assert image.pixelColor(rect.left() + 1, rect.top() + 1) == view.palette().color(QPalette.AlternateBase)

    def ink(picture, cell) -> tuple[int, int, int, int]:
        """Left, right, top, bottom of the text drawn in a cell (pixels unlike the cell's corner)."""
        ground = picture.pixelColor(cell.left() + 1, cell.top() + 1)
        spots = [(x, y) for x in range(cell.left(), cell.right() + 1) for y in range(cell.top(), cell.bottom() + 1)
                 if picture.pixelColor(x, y) != ground]
        xs, ys = [x for x, _ in spots], [y for _, y in spots]
        return min(xs), max(xs), min(ys), max(ys)
    for column in (0, 1):                              # a name (left-aligned), a number (right, fixed pitch)
        cell = view.visualRect(proxy.index(3, column))
        ours, qts = ink(image, cell), ink(reference, cell)
        assert all(abs(a - b) <= 1 for a, b in zip(ours, qts)), (column, ours, qts)   # where Qt puts the text
    metrics = QFontMetrics(view.font())
    assert fitted_text("12,345.67", metrics, 1000) == "12,345.67"
    cut = fitted_text("12,345.67", metrics, metrics.horizontalAdvance("12,3"))
    assert cut.endswith("…") and metrics.horizontalAdvance(cut) <= metrics.horizontalAdvance("12,3")


def test_the_checks_table_shows_failed_checks_first_and_refreshes_in_place(qtbot):
    """A ticket re-runs its checks every cycle: the table keeps its items (only changed texts are set), puts a
    failing check first with its code, and follows a decision with fewer checks."""
    from PySide6.QtGui import QColor

    from workstation.risk.limits import CheckResult, RiskCode, RiskDecision
    from workstation.ui import theme
    from workstation.ui.dialogs.whatif import ChecksTable

    def decision(premium_ok: bool, detail: str) -> RiskDecision:
        results = (CheckResult("max quantity", True, RiskCode.MAX_QUANTITY, "2 <= 10"),
                   CheckResult("max premium", premium_ok, RiskCode.MAX_PREMIUM, detail),
                   CheckResult("price band", True, RiskCode.PRICE_BAND, "0.4 % of mid"))
        return RiskDecision("c1", premium_ok, results)

    table = ChecksTable(visible=3)
    qtbot.addWidget(table)
    table.show_decision(decision(True, "$1,200 <= $5,000"))
    assert [table.item(i, 0).text() for i in range(3)] == ["max quantity", "max premium", "price band"]
    items = [table.item(i, c) for i in range(3) for c in range(3)]
    table.show_decision(decision(True, "$1,300 <= $5,000"))              # a new cycle: one detail changed
    assert [table.item(i, c) for i in range(3) for c in range(3)] == items    # the same items, not new ones
    assert table.item(1, 2).text() == "$1,300 <= $5,000" and table.item(1, 2).toolTip() == "$1,300 <= $5,000"
    table.show_decision(decision(False, "$6,000 > $5,000"))              # it now fails: first, with its code
    assert (table.item(0, 0).text(), table.item(0, 1).text()) == ("max premium", "FAIL MAX_PREMIUM")
    assert table.item(0, 1).foreground().color().name() == QColor(theme.NEGATIVE).name()
    assert table.item(1, 1).foreground().color().name() == QColor(theme.POSITIVE).name()
    table.show_decision(None)                                             # no decision: no rows
    assert table.rowCount() == 0
