"""Chain board: one expiry as calls | strike | puts (bid, ask, IVs, fair and model IV, edge, delta, vega, open
position, working orders). The ATM row and the forward are marked, a signal's row is highlighted; arrows move,
double-click or Enter opens the order ticket on that contract (bid side: SELL, otherwise BUY); + / − (or the
right-click menu) add it to the combo ticket, bought / sold. The numbers come
from workstation.analytics.chain; the table updates in place (same strikes: cells change, no model reset)."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QHBoxLayout, QLabel, QMenu, QVBoxLayout, QWidget

from ...analytics.chain import board, expiry_labels
from ...reports import BookSummary
from .. import theme
from ..bridge import Bridge
from ..models import Column, RecordModel
from .base import Panel, RecordTable

CALL_FIELDS = (("pos", "Pos", 0), ("work", "Wrk", 0), ("delta", "Δ", 2), ("vega", "Vega$", 1), ("edge", "Edge", 2),
               ("model_iv", "Model", 2), ("fair_iv", "Fair", 2), ("iv_bid", "Bid IV", 2), ("iv_ask", "Ask IV", 2),
               ("bid", "Bid", 2), ("ask", "Ask", 2))
TIPS = {"Edge": "fair IV - mid IV, vol points (> 0: cheap against fair)", "Fair": "fair IV: the fair-value surface "
        "when there is one, else the model", "Model": "model (Heston) IV", "Pos": "open position",
        "Wrk": "working orders, net signed quantity", "Δ": "Black-76 forward delta at the fair vol",
        "Vega$": "$ per vol point per contract at the fair vol"}
BULK_SHARE = 0.25     # more rows changed than this share: one update for the board instead of one per row
ATM_BACKGROUND = QColor("#24344a")
SIGNAL_BACKGROUND = QColor("#4a3a12")


def _colour(value) -> QColor | None:
    """Green above zero, red below; none for a number that shows as zero ("0.00" is not an edge)."""
    if value is None or not isinstance(value, float) or not math.isfinite(value) or round(value, 2) == 0:
        return None
    return QColor(theme.POSITIVE if value > 0 else theme.NEGATIVE)


def _columns() -> list[Column]:
    def side_col(side: str, field: str, header: str, digits: int) -> Column:
        text = (lambda v: "" if not v else f"{v:+d}") if digits == 0 else (lambda v, d=digits: theme.fmt(v, d))
        colour = (lambda r, s=side, f=field: _colour(float(getattr(r, s)[f]) if getattr(r, s)[f] else None)) \
            if field in ("edge", "pos", "work") else None
        return Column(f"{side[0].upper()} {header}" if field in ("pos", "work") else header,
                      lambda r, s=side, f=field: getattr(r, s)[f], text, colour, tooltip=TIPS.get(header, ""))
    calls = [side_col("call", f, h, d) for f, h, d in CALL_FIELDS]
    strike = Column("Strike", lambda r: r.strike, lambda v: f"{v:,.0f}",
                    lambda r: QColor(theme.ACCENT) if r.atm else None, tooltip="ATM row marked (nearest the forward)")
    puts = [side_col("put", f, h, d) for f, h, d in reversed(CALL_FIELDS)]
    return calls + [strike] + puts


STRIKE_COLUMN = len(CALL_FIELDS)
BID_COLUMNS = {STRIKE_COLUMN - 2, STRIKE_COLUMN + 2}      # call bid, put bid (mirrored): a double-click there sells


def _same(a, b) -> bool:
    """Two board rows show the same numbers (NaN equal to NaN)."""
    if a is None or a.atm != b.atm:
        return False
    for x, y in ((a.call, b.call), (a.put, b.put)):
        for key, value in y.items():
            old = x.get(key)
            if old != value and not (isinstance(value, float) and value != value and old != old):
                return False
    return True


class BoardModel(RecordModel):
    """The record model with a background for the ATM row and for rows with an open signal."""

    def background(self, row: int, column: int) -> QColor | None:
        r = self._rows[self._keys[row]]
        if column != STRIKE_COLUMN and (r.call if column < STRIKE_COLUMN else r.put)["signal"]:
            return SIGNAL_BACKGROUND
        return ATM_BACKGROUND if r.atm else None


class BoardTable(RecordTable):
    """Enter or Return on a row is the same as a double-click on it; + and − add the contract under the cursor
    to the combo ticket, bought or sold."""

    enter = Signal(object)
    combo = Signal(object, str)          # index, BUY | SELL

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and self.currentIndex().isValid():
            self.enter.emit(self.currentIndex())
            return
        if event.key() in (Qt.Key_Plus, Qt.Key_Minus) and self.currentIndex().isValid():
            self.combo.emit(self.currentIndex(), "BUY" if event.key() == Qt.Key_Plus else "SELL")
            return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event) -> None:
        index = self.indexAt(event.pos())
        if not index.isValid():
            return
        menu = QMenu(self)
        buy = menu.addAction("Add to combo: buy  (+)")
        sell = menu.addAction("Add to combo: sell  (−)")
        chosen = menu.exec(event.globalPos())
        if chosen is buy or chosen is sell:
            self.combo.emit(index, "BUY" if chosen is buy else "SELL")


class ChainBoardPanel(Panel):
    title = "Chain board"
    name = "chain"
    trade = Signal(str, float, str, str)       # expiry (YYYY-MM-DD), strike, right C/P, side BUY/SELL
    add_leg = Signal(object, str)              # contract id (int64: past 32 bits), side BUY/SELL: 'add to combo'

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self._surface = None
        self._positions: dict[int, int] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        top = QHBoxLayout()
        top.addWidget(QLabel("Expiry"))
        self.expiry = QComboBox()
        self.expiry.setMinimumContentsLength(16)
        self.expiry.currentIndexChanged.connect(self._expiry_changed)
        top.addWidget(self.expiry)
        self.info = QLabel("–")
        self.info.setFont(theme.mono_font(9))
        top.addWidget(self.info, 1)
        layout.addLayout(top)
        self.model = BoardModel(_columns(), self)     # no sort/filter proxy: the board is in strike order
        self.view = BoardTable("waiting for the first surface…", self)
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectItems)
        self.view.setSelectionMode(QAbstractItemView.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(20)
        self.view.horizontalHeader().setDefaultSectionSize(58)
        self.view.horizontalHeader().setDefaultAlignment(Qt.AlignCenter)
        self.view.doubleClicked.connect(self.open_ticket)
        self.view.enter.connect(self.open_ticket)
        self.view.combo.connect(self.add_to_combo)
        layout.addWidget(self.view, 1)
        bridge.surface.connect(self._on_surface)
        bridge.book.connect(self._on_book)
        bridge.signal.connect(lambda *_: self.mark_dirty())
        bridge.order_event.connect(lambda *_: self.mark_dirty())

    # ------------------------------------------------------------------------------------ inputs
    def _on_surface(self, surface) -> None:
        self._surface = surface
        self.mark_dirty()

    def _on_book(self, book: BookSummary) -> None:
        self._positions = {p.contract_id: p.quantity for p in book.positions}
        self.mark_dirty()

    def _expiry_changed(self, *_) -> None:
        self.model.set_records([])
        self.mark_dirty()
        self.flush()

    # ------------------------------------------------------------------------------------ drawing
    def render(self) -> None:
        surface = self._surface
        if surface is None:
            return
        labels = expiry_labels(surface)
        if labels != [self.expiry.itemText(i) for i in range(self.expiry.count())]:
            current = self.expiry.currentText()
            self.expiry.blockSignals(True)
            self.expiry.clear()
            self.expiry.addItems(labels)
            days = np.array([e.maturity * 365 for e in surface.expiries])
            self.expiry.setCurrentIndex(labels.index(current) if current in labels
                                        else int(np.argmin(np.abs(days - 30))) if len(days) else 0)
            self.expiry.blockSignals(False)
            if self.expiry.currentText() != current:     # another expiry: a new board (an expiry listed or gone
                self.model.set_records([])               # elsewhere leaves this one in place: a refill took 40-76 ms)
        index = self.expiry.currentIndex()
        if index < 0:
            return
        b = board(surface, index, self.bridge.model_iv(surface), self.bridge.fair_iv(surface))
        if b is None:
            return
        working = self._working()
        signals = {int(s.contract.contract_id) for s in self.bridge.open_signals()
                   if getattr(getattr(s, "state", None), "value", "") == "NEW"}
        records = []
        # columns as Python lists once (indexing numpy arrays element by element cost ~10 ms a redraw)
        columns = [({f: v.tolist() for f, v in cols.items() if f != "contract_id"}, cols["contract_id"].tolist())
                   for cols in (b.calls, b.puts)]
        for i, k in enumerate(b.strikes.tolist()):
            sides = []
            for values, ids in columns:
                cid = int(ids[i])
                cid = cid if cid >= 0 else None
                side = {f: float(v[i]) for f, v in values.items()}
                side.update(pos=self._positions.get(cid, 0), work=working.get(cid, 0), signal=cid in signals, cid=cid)
                sides.append(side)
            records.append((float(k), SimpleNamespace(strike=float(k), atm=i == b.atm_index, call=sides[0],
                                                      put=sides[1])))
        first = not self.model.rowCount()
        if [k for k, _ in records] != self.model.keys():
            self.model.set_records(records)          # a strike listed or gone: rows inserted/removed in place
        else:                                        # same strikes: only the rows that changed repaint
            changed = [(key, record) for key, record in records if not _same(self.model.get(key), record)]
            if len(changed) > BULK_SHARE * len(records):
                self.model.set_records(records)      # most rows moved: one dataChanged, cells made when painted
            else:
                for key, record in changed:
                    self.model.upsert(key, record)
        ampm = b.label.split()[-1] if b.label else ""
        self.info.setText(f"forward {b.forward:,.2f}   ATM {b.strikes[b.atm_index]:,.0f}   {b.days:,.1f} days   "
                          f"{'AM-settled' if ampm == 'AM' else 'PM-settled'}   spot {surface.snapshot.underlying_price:,.2f}")
        if first:
            self.view.scrollTo(self.model.index(b.atm_index, STRIKE_COLUMN), self.view.ScrollHint.PositionAtCenter)

    def _working(self) -> dict[int, int]:
        """Net signed working quantity per contract id."""
        out: dict[int, int] = {}
        for r in self.bridge.order_records():
            if getattr(r, "is_working", False):
                cid = r.order.contract.contract_id
                out[cid] = out.get(cid, 0) + r.order.side.sign * r.remaining
        return out

    # ------------------------------------------------------------------------------------ trading
    def open_ticket(self, index) -> None:
        """The ticket on the clicked contract: call side left of the strike, put side right; bid side SELL."""
        if not index.isValid():
            return
        r = self.model.record(index.row())
        column = index.column()
        if column == STRIKE_COLUMN:
            return
        right = "C" if column < STRIKE_COLUMN else "P"
        expiry = self.expiry.currentText().split()[0]
        self.trade.emit(expiry, r.strike, right, "SELL" if column in BID_COLUMNS else "BUY")

    def add_to_combo(self, index, side: str) -> None:
        """The contract of the clicked cell (calls left of the strike, puts right) into the combo ticket."""
        if not index.isValid() or index.column() == STRIKE_COLUMN:
            return
        r = self.model.record(index.row())
        cid = (r.call if index.column() < STRIKE_COLUMN else r.put)["cid"]
        if cid is not None:
            self.add_leg.emit(int(cid), side)

    def select_strike(self, strike: float, right: str = "C") -> None:
        """Put the cursor on `strike` (tests, keyboard users)."""
        for row, key in enumerate(self.model.keys()):
            if key == strike:
                col = STRIKE_COLUMN - 1 if right == "C" else STRIKE_COLUMN + 1
                self.view.setCurrentIndex(self.model.index(row, col))
                return
