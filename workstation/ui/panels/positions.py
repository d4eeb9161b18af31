"""Positions: quantity, average cost, mark, P&L and Greeks per position (from the book summary); close/reduce.
A leg bought or sold in a combo names its package (the combo's client order id and structure: its leg fills carry
the id), so the legs of one structure are seen together (sort by Package)."""
from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ...commands import ClosePosition
from ...events import OrderPreview
from ...reports import BookSummary, PositionLine
from .. import theme
from ..bridge import Bridge
from ..dialogs.whatif import denial_text
from ..models import Column, RecordModel
from .base import Panel, make_table, selected_record


def _dollars(value: float) -> str:
    return theme.fmt(value, 0, dollars=True)


def packages_by_contract(records) -> dict[int, str]:
    """Contract id -> the combo packages whose leg fills built it ('C-12 vertical, C-15 butterfly'), from the
    bridge's combo records [(ComboOrder, state, fills)]."""
    out: dict[int, list[str]] = {}
    for order, _, fills in records:
        name = f"{order.client_order_id} {order.combo.structure}"
        for cid in dict.fromkeys(f.contract.contract_id for f in fills):
            out.setdefault(cid, []).append(name)
    return {cid: ", ".join(names) for cid, names in out.items()}


COLUMNS = [
    Column("Contract", lambda p: p.description, str, numeric=False),
    Column("Qty", lambda p: p.quantity, lambda v: f"{v:+d}",
           lambda p: QColor(theme.POSITIVE if p.quantity > 0 else theme.NEGATIVE)),
    Column("Avg cost", lambda p: p.avg_cost),
    Column("Mark", lambda p: p.mark),
    Column("P&L $", lambda p: p.unrealized_pnl, _dollars, lambda p: theme.signed_colour(p.unrealized_pnl),
           tooltip="Unrealised P&L at the mark"),
    Column("Delta $", lambda p: p.greeks.delta, _dollars, tooltip="Dollar delta"),
    Column("Gamma $", lambda p: p.greeks.gamma, _dollars, tooltip="Dollar gamma (1% move)"),
    Column("Vega $", lambda p: p.greeks.vega, _dollars, tooltip="Dollars per vol point"),
    Column("Theta $", lambda p: p.greeks.theta, _dollars, tooltip="Dollars per day"),
]


class PositionsPanel(Panel):
    title = "Positions"
    name = "positions"

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self._book: BookSummary | None = None
        self.packages: dict[int, str] = {}
        package = Column("Package", lambda p: self.packages.get(p.contract_id, ""), str, numeric=False,
                         tooltip="The combo order (id, structure) this leg was traded in; empty for single orders")
        self.model = RecordModel(COLUMNS + [package], self)
        self.table, self.proxy = make_table(
            self.model, self, placeholder="No positions. Approve a signal or send a ticket; fills appear here.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        bar = QHBoxLayout()
        self.totals = QLabel("no positions")
        bar.addWidget(self.totals, 1)
        self.reduce_button = QPushButton("Reduce ½")
        self.reduce_button.clicked.connect(lambda: self.close_selected(half=True))
        self.close_button = QPushButton(theme.icon("close"), "Close")
        self.close_button.clicked.connect(lambda: self.close_selected(half=False))
        bar.addWidget(self.reduce_button)
        bar.addWidget(self.close_button)
        layout.addLayout(bar)
        layout.addWidget(self.table)
        self.message = QLabel("")
        layout.addWidget(self.message)
        bridge.book.connect(self._on_book)

    def _on_book(self, book: BookSummary) -> None:
        self._book = book
        self.mark_dirty()

    def render(self) -> None:
        book = self._book
        if book is None:
            return
        positions = [p for p in book.positions if p.quantity]
        self.packages = packages_by_contract(self.bridge.combo_records())
        self.model.set_records([(p.contract_id, p) for p in positions])
        g, day = book.greeks, book.pnl.day
        parts = [f"{len(positions)} positions"]
        parts += [f"{name} {theme.fmt(value, 0)}"                                  # dollar Greeks
                  for name, value in (("Δ", g.delta), ("Γ", g.gamma), ("vega", g.vega), ("Θ", g.theta))]
        colour = theme.signed_colour(day)
        parts.append(f"day P&L <b style='color:{colour.name() if colour else theme.TEXT}'>"
                     f"{theme.fmt(day, 0, dollars=True)}</b>")
        self.totals.setText(" · ".join(parts))

    def close_selected(self, half: bool = False) -> None:
        position: PositionLine | None = selected_record(self.table)
        if position is None:
            self.message.setText("Select a position.")
            return
        qty = abs(position.quantity)
        quantity = max(1, qty // 2) if half else None
        self.run(ClosePosition(position.contract_id, quantity), on_done=self._done)

    def _done(self, preview: OrderPreview | None) -> None:
        why = denial_text(preview) if preview is not None else ""
        sent = preview is None or preview.sent
        self.message.setStyleSheet(f"color: {theme.POSITIVE if sent else theme.NEGATIVE}")
        self.message.setText("Exit order sent." if sent else f"Not sent: {why}")
