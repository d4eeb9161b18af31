"""The blotter: one row per order (a combo order is one row for its package: structure, net limit, packages
filled, average net price, with its legs and their fills in the row's tooltip), its columns and its box."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QGroupBox, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from ...domain import Order
from ...domain.combos import ComboOrder
from ...execution.orders import OrderRecord
from .. import market_time, theme
from ..models import Column, RecordModel
from .base import make_table, selected_record


@dataclass(frozen=True)
class OrderRow:
    """One blotter line: the order and what the broker last said about it."""

    order: object
    status: str = "NEW"
    filled: int = 0
    avg_price: float = math.nan
    reason: str = ""
    limit: float | None = None
    updated: datetime | None = None
    extra: dict = field(default_factory=dict)

    @property
    def working(self) -> bool:
        return self.status in ("NEW", "SUBMITTED", "PARTIALLY_FILLED")


def _status_colour(row: OrderRow) -> QColor | None:
    return QColor({"FILLED": theme.POSITIVE, "REJECTED": theme.NEGATIVE, "CANCELLED": theme.MUTED}
                  .get(row.status, theme.WARNING))


def _what(row: OrderRow) -> str:
    """The contract, or for a combo its structure and legs ('vertical +1 SPXW 17Oct25 6700 C / -1 ...')."""
    order = row.order
    if not isinstance(order, ComboOrder):
        return order.contract.description
    legs = order.combo.legs
    expiries = {leg.contract.expiry for leg in legs}
    when = legs[0].contract.expiry.strftime("%d%b%y") + " " if len(expiries) == 1 else ""
    strikes = " / ".join(f"{leg.weight:+d} {leg.contract.strike:g}{leg.contract.right.value[0]}"
                         + ("" if when else f" {leg.contract.expiry:%d%b%y}") for leg in legs)
    return f"▣ {order.combo.structure} {when}{strikes}"


BLOTTER = [
    Column("Order id", lambda r: r.order.client_order_id, str, numeric=False),
    Column("Time ET", lambda r: market_time.et(r.updated or r.order.created_at), str, numeric=False,
           tooltip="Last change of the order, New York time"),
    Column("Contract", _what, str, numeric=False, tooltip="▣ a combo: one package; hover for its legs and fills"),
    Column("Side", lambda r: r.order.side.value, str,
           lambda r: QColor(theme.POSITIVE if r.order.side.value == "BUY" else theme.NEGATIVE), numeric=False),
    Column("Qty", lambda r: r.order.quantity, lambda v: f"{v}", tooltip="Contracts; packages for a combo"),
    Column("Limit", lambda r: r.limit if r.limit is not None else r.order.limit_price,
           tooltip="Index points; a combo's net limit per package (debit > 0, credit < 0)"),
    Column("Filled", lambda r: r.filled, lambda v: f"{v}"),
    Column("Avg px", lambda r: r.avg_price),
    Column("Purpose", lambda r: r.order.purpose.value, str, numeric=False),
    Column("Status", lambda r: r.status, str, _status_colour, numeric=False),
    Column("Reason", lambda r: r.reason, str, numeric=False),
]


def combo_row(order: ComboOrder, state, fills) -> OrderRow:
    """A combo order as one blotter row: its latest state (packages filled, average net price) and a tooltip
    naming every leg with its side, contracts and fills."""
    status = state.status.value if state is not None else "NEW"
    lines = [f"{order.side.value} {order.quantity} × {order.combo.structure} at {order.limit_price:+.2f} pts net"]
    for leg, side, qty in order.leg_quantities():
        mine = [f for f in fills if f.contract.contract_id == leg.contract.contract_id]
        done = sum(f.quantity for f in mine)
        avg = sum(f.quantity * f.price for f in mine) / done if done else math.nan
        filled = f"filled {done} @ {avg:.2f}" if done else "no fill"
        lines.append(f"  {side.value} {qty} {leg.contract.description}  (ratio {leg.ratio}): {filled}")
    return OrderRow(order=order, status=status,
                    filled=state.filled_quantity if state is not None else 0,
                    avg_price=state.avg_fill_price if state is not None else math.nan,
                    reason=state.reason if state is not None else "", limit=order.limit_price,
                    updated=state.timestamp if state is not None else order.created_at,
                    extra={"tooltip": "\n".join(lines), "legs": len(order.combo.legs), "fills": len(fills)})


class BlotterModel(RecordModel):
    """The record model with a row tooltip (a combo's legs)."""

    _data = RecordModel.data

    def data(self, index, role=Qt.DisplayRole):
        if role == Qt.ToolTipRole and index.isValid():
            return self._rows[self._keys[index.row()]].extra.get("tooltip")
        return self._data(index, role)


def order_row(record: Order | OrderRecord) -> OrderRow:
    """From a new Order (the ORDER topic) or the engine's record of one (status, filled, avg price)."""
    if isinstance(record, Order):
        return OrderRow(order=record, limit=record.limit_price)
    limit = record.limit_price if record.limit_price is not None else record.order.limit_price
    return OrderRow(order=record.order, status=record.status.value, filled=record.filled,
                    avg_price=record.avg_price, reason=record.reason, limit=limit)


class BlotterBox(QGroupBox):
    """The blotter: working-only filter, Cancel / Modify… (the panel wires them) and the table of orders, kept from
    the ORDER and ORDER_EVENT topics and, for combo packages, from the journal."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Blotter", parent)
        v = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.working_only = QCheckBox("working only")
        self.working_only.toggled.connect(
            lambda on: self.proxy.set_predicate((lambda r: r.working) if on else None))
        self.cancel_button = QPushButton(theme.icon("cancel"), "Cancel")
        self.modify_button = QPushButton("Modify…")
        bar.addWidget(self.working_only)
        bar.addStretch(1)
        bar.addWidget(self.modify_button)
        bar.addWidget(self.cancel_button)
        v.addLayout(bar)
        self.model = BlotterModel(BLOTTER, self)
        self.view, self.proxy = make_table(self.model, self, placeholder="No orders yet today.")
        self.view.sortByColumn(1, Qt.DescendingOrder)
        v.addWidget(self.view)

    def on_order(self, record: Order | OrderRecord) -> None:
        row = order_row(record)
        key = row.order.client_order_id
        existing = self.model.get(key)
        if existing is not None and row.status == "NEW":
            row = replace(existing, order=row.order)
        self.model.upsert(key, row)

    def on_order_event(self, event) -> None:
        existing = self.model.get(event.client_order_id)
        if existing is None:
            return
        avg = event.avg_fill_price if math.isfinite(event.avg_fill_price) else existing.avg_price
        self.model.upsert(event.client_order_id, replace(
            existing, status=event.status.value, filled=max(existing.filled, event.filled_quantity),
            avg_price=avg, reason=event.reason or existing.reason, updated=event.timestamp,
            limit=event.limit_price if event.limit_price is not None else existing.limit))

    def show_combos(self, records) -> None:
        """Combo orders (one row per package) from the journal; a row changes only when its state or fills do."""
        for order, state, fills in records:
            row = combo_row(order, state, fills)
            old = self.model.get(order.client_order_id)
            if old is None or (old.status, old.filled, old.extra, old.reason) != (row.status, row.filled, row.extra,
                                                                                   row.reason):
                self.model.upsert(order.client_order_id, row)

    def selected_working(self) -> OrderRow | None:
        """The selected row when it is a working single order (combos are cancelled as a package elsewhere)."""
        row = selected_record(self.view)
        return row if row is not None and row.working and isinstance(row.order, Order) else None
