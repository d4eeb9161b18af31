"""Positions: quantity, average cost, mark, P&L and Greeks per position (from the book summary); close/reduce."""
from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from .. import theme
from ..bridge import Bridge, pick
from ..dialogs.whatif import denial_text
from ..models import Column, RecordModel
from .base import Panel, make_table, selected_record


def _greek(name: str):
    return lambda p: pick(p, name, default=pick(pick(p, "greeks", default={}), name))


def _label(p) -> str:
    if pick(p, "description"):
        return str(p["description"])
    contract = pick(p, "contract")
    return str(pick(contract, "description", default=contract if contract is not None else pick(p, "symbol",
                                                                                                 "contract_id")))


def _pnl(p):
    return pick(p, "pnl", "unrealized_pnl", "total_pnl")


COLUMNS = [
    Column("Contract", _label, str, numeric=False),
    Column("Qty", lambda p: int(pick(p, "quantity", default=0)), lambda v: f"{v:+d}",
           lambda p: QColor(theme.POSITIVE if pick(p, "quantity", default=0) > 0 else theme.NEGATIVE)),
    Column("Avg cost", lambda p: pick(p, "avg_cost")),
    Column("Mark", lambda p: pick(p, "mark")),
    Column("P&L $", _pnl, lambda v: theme.fmt(v, 0, dollars=True), lambda p: theme.signed_colour(_pnl(p))),
    Column("Delta $", _greek("delta"), lambda v: theme.fmt(v, 0, dollars=True), tooltip="Dollar delta"),
    Column("Gamma $", _greek("gamma"), lambda v: theme.fmt(v, 0, dollars=True), tooltip="Dollar gamma (1% move)"),
    Column("Vega $", _greek("vega"), lambda v: theme.fmt(v, 0, dollars=True), tooltip="Dollars per vol point"),
    Column("Theta $", _greek("theta"), lambda v: theme.fmt(v, 0, dollars=True), tooltip="Dollars per day"),
]


def contract_id_of(p) -> int | None:
    cid = pick(p, "contract_id", default=pick(pick(p, "contract"), "contract_id"))
    return int(cid) if cid is not None else None


class PositionsPanel(Panel):
    title = "Positions"
    name = "positions"

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self._book = None
        self._names: dict[int, str] = {}          # contract id -> 'SPXW 24Nov26 5925 P'
        self.model = RecordModel(COLUMNS, self)
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

    def _on_book(self, book) -> None:
        self._book = book
        self.mark_dirty()

    def render(self) -> None:
        book = self._book or {}
        positions = [self._named(p) for p in (pick(book, "positions", default=[]) or []) if pick(p, "quantity", default=0)]
        self.model.set_records([(contract_id_of(p) or i, p) for i, p in enumerate(positions)])
        totals = pick(book, "totals", "greeks", default={}) or {}
        day = pick(book, "day_pnl", default=pick(pick(book, "pnl", default={}), "day", default=pick(totals, "day_pnl")))
        parts = [f"{len(positions)} positions"]
        for key, name in (("delta", "Δ"), ("gamma", "Γ"), ("vega", "vega"), ("theta", "Θ")):   # dollar Greeks
            value = pick(totals, key, f"{key}_dollars")
            if value is not None:
                parts.append(f"{name} {theme.fmt(value, 0)}")
        if day is not None:
            colour = theme.signed_colour(day)
            parts.append(f"day P&L <b style='color:{colour.name() if colour else theme.TEXT}'>"
                         f"{theme.fmt(day, 0, dollars=True)}</b>")
        self.totals.setText(" · ".join(parts))

    def _named(self, p):
        """The position with the trader's contract name (the book summary carries the OCC symbol)."""
        cid = contract_id_of(p)
        if not isinstance(p, dict) or cid is None or pick(p, "contract") is not None:
            return p
        if cid not in self._names:
            lookup = getattr(self.bridge.engine, "contract_by_id", None)
            contract = lookup(cid) if callable(lookup) else None
            name = pick(contract, "description")
            if name is None:
                return p
            self._names[cid] = str(name)
        return {**p, "description": self._names[cid]}

    def close_selected(self, half: bool = False) -> None:
        position = selected_record(self.table)
        if position is None:
            self.message.setText("Select a position.")
            return
        qty = abs(int(pick(position, "quantity", default=0)))
        quantity = max(1, qty // 2) if half else None
        self.run("close_position", contract_id_of(position), quantity, on_done=self._done)

    def _done(self, preview) -> None:
        why = denial_text(preview) if preview is not None else ""
        sent = preview is None or pick(preview, "sent", default=not why)
        self.message.setStyleSheet(f"color: {theme.POSITIVE if sent else theme.NEGATIVE}")
        self.message.setText("Exit order sent." if sent else f"Not sent: {why}")
