"""Order ticket (contract from the chain, side, quantity, limit from mid or model, live pre-trade
preview: a denied order shows its reason and cannot be sent) and the blotter (cancel, modify). A combo order is one
blotter row (its package: structure, net limit, packages filled, average net price) with its legs and their fills
in the row's tooltip."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout,
                               QInputDialog, QLabel, QPushButton, QSpinBox, QSplitter, QVBoxLayout, QWidget)

from ...commands import CancelOrder, ModifyOrder, PreviewOrder, SubmitOrder
from ...domain import Order
from ...domain.combos import ComboOrder
from ...domain.ticks import round_to_tick
from ...events import OrderPreview
from ...execution.orders import OrderRecord
from .. import market_time, theme
from ..bridge import Bridge
from ..dialogs.whatif import PreviewView, denial_text
from ..models import Column, RecordModel
from .base import Panel, make_table, selected_record


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


class OrdersPanel(Panel):
    title = "Order ticket && blotter"
    name = "orders"

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self._chain = None
        self._chain_key = None
        self.last_preview = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        split = QSplitter(Qt.Horizontal)
        layout.addWidget(split)
        split.addWidget(self._build_ticket())
        split.addWidget(self._build_blotter())
        split.setSizes([380, 660])
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(250)
        self._preview_timer.timeout.connect(self.preview)
        bridge.snapshot.connect(self._on_snapshot)
        bridge.order.connect(self._on_order)
        bridge.order_event.connect(self._on_order_event)
        # the preview is live: every cycle and every change of state, fill or limit re-runs the checks
        for news in (bridge.cycle, bridge.trading_state, bridge.fill, bridge.settings, bridge.order_event):
            news.connect(self._live_preview)
        for news in (bridge.cycle, bridge.fill, bridge.risk_decision):       # combo packages: from the journal
            news.connect(self.refresh_combos)

    # ------------------------------------------------------------------------------------ ticket
    def _build_ticket(self) -> QWidget:
        box = QGroupBox("Order ticket (Ctrl+N)")
        v = QVBoxLayout(box)
        form = QFormLayout()
        self.expiry = QComboBox()
        self.right = QComboBox()
        self.right.addItems(["C", "P"])
        self.strike = QComboBox()
        self.side = QComboBox()
        self.side.addItems(["BUY", "SELL"])
        self.quantity = QSpinBox()
        self.quantity.setRange(1, 100_000)
        self.limit = QDoubleSpinBox()
        self.limit.setRange(0.0, 1_000_000.0)
        self.limit.setDecimals(2)
        self.limit.setSingleStep(0.05)
        self.limit.setToolTip("Limit price, index points; rounded to the option tick (0.05 below $3, 0.10 above)")
        self.limit.editingFinished.connect(self._snap_limit_to_tick)
        prices = QHBoxLayout()
        prices.addWidget(self.limit, 1)
        self.mid_button = QPushButton("Mid")
        self.mid_button.clicked.connect(self.use_mid)
        self.model_button = QPushButton("Model")
        self.model_button.clicked.connect(self.use_model)
        prices.addWidget(self.mid_button)
        prices.addWidget(self.model_button)
        self.quote = QLabel("–")
        self.quote.setFont(theme.mono_font(9))
        contract = QHBoxLayout()                  # one line: expiry, right, strike
        contract.addWidget(self.expiry, 3)
        contract.addWidget(self.right, 1)
        contract.addWidget(self.strike, 2)
        self.expiry.setToolTip("Expiry")
        self.right.setToolTip("Call or put")
        self.strike.setToolTip("Strike")
        size = QHBoxLayout()
        size.addWidget(self.side, 1)
        size.addWidget(self.quantity, 1)
        self.quantity.setToolTip("Quantity, contracts")
        form.addRow("Contract", contract)
        form.addRow("Market", self.quote)
        form.addRow("Side, qty", size)
        form.addRow("Limit", prices)
        v.addLayout(form)
        self.preview_view = PreviewView(compact=True)
        v.addWidget(self.preview_view, 1)
        self.send = QPushButton(theme.icon("send"), "Send order")
        self.send.setObjectName("approve")
        self.send.setEnabled(False)
        self.send.clicked.connect(self.submit)
        v.addWidget(self.send)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        v.addWidget(self.message)
        self.expiry.currentIndexChanged.connect(self._fill_strikes)
        self.right.currentIndexChanged.connect(self._fill_strikes)
        self.strike.currentIndexChanged.connect(self._contract_changed)
        for w in (self.side.currentIndexChanged, self.quantity.valueChanged, self.limit.valueChanged):
            w.connect(self._schedule_preview)
        return box

    def _on_snapshot(self, snap) -> None:
        self._chain = snap
        self.mark_dirty()

    def render(self) -> None:
        snap = self._chain
        if snap is None:
            return
        expiries = [str(d) for d in np.unique(snap.expiry)]
        if expiries != [self.expiry.itemText(i) for i in range(self.expiry.count())]:
            current = self.expiry.currentText()
            self.expiry.blockSignals(True)
            self.expiry.clear()
            self.expiry.addItems(expiries)
            if current in expiries:
                self.expiry.setCurrentText(current)
            else:
                today = np.datetime64(market_time.et(snap.timestamp, "%Y-%m-%d"), "D")
                days = (np.array(expiries, dtype="datetime64[D]") - today).astype(int)
                self.expiry.setCurrentIndex(int(np.argmin(np.abs(days - 30))))
            self.expiry.blockSignals(False)
            self._fill_strikes()
        self._show_quote()

    def _rows(self) -> np.ndarray:
        snap = self._chain
        if snap is None or not self.expiry.currentText():
            return np.zeros(0, dtype=int)
        expiry = np.datetime64(self.expiry.currentText(), "D")
        return np.flatnonzero((snap.expiry == expiry) & (snap.is_call == (self.right.currentText() == "C")))

    def _fill_strikes(self) -> None:
        snap = self._chain
        rows = self._rows()
        if snap is None or not len(rows):
            return
        strikes = [f"{k:g}" for k in np.unique(snap.strike[rows])]
        current = self.strike.currentText()
        self.strike.blockSignals(True)
        self.strike.clear()
        self.strike.addItems(strikes)
        if current in strikes:
            self.strike.setCurrentText(current)
        else:
            atm = np.argmin(np.abs(np.array([float(s) for s in strikes]) - snap.underlying_price))
            self.strike.setCurrentIndex(int(atm))
        self.strike.blockSignals(False)
        self._contract_changed()

    def current_row(self) -> int | None:
        rows = self._rows()
        if not len(rows) or not self.strike.currentText():
            return None
        hit = rows[self._chain.strike[rows] == float(self.strike.currentText())]
        return int(hit[0]) if len(hit) else None

    def contract_id(self) -> int | None:
        row = self.current_row()
        return int(self._chain.contract_id[row]) if row is not None else None

    def _show_quote(self) -> None:
        row = self.current_row()
        if row is None:
            self.quote.setText("–")
            return
        s = self._chain
        self.quote.setText(f"{s.bid[row]:.2f} × {s.ask[row]:.2f}   (size {s.bid_size[row]} × {s.ask_size[row]})")

    def _contract_changed(self) -> None:
        self._show_quote()
        self.use_mid()

    def select_contract(self, expiry: date | str, strike: float, right: str) -> None:
        """Pick a contract programmatically (tests, 'trade this' actions)."""
        self.expiry.setCurrentText(str(expiry))
        self.right.setCurrentText(right)
        self.strike.setCurrentText(f"{strike:g}")

    def use_mid(self) -> None:
        row = self.current_row()
        if row is not None and math.isfinite(self._chain.mid[row]):
            self.limit.setValue(round_to_tick(float(self._chain.mid[row])))
        self._schedule_preview()

    def use_model(self) -> None:
        model = self.last_preview.model_price if self.last_preview is not None else None
        if model is not None and math.isfinite(model):
            self.limit.setValue(round_to_tick(float(model)))

    def _schedule_preview(self, *_) -> None:
        self.send.setEnabled(False)
        self._preview_timer.start()

    def order_args(self) -> tuple[int | None, str, int, float]:
        """(contract id, side, quantity, limit on the option tick: 0.05 below $3, 0.10 above)."""
        return (self.contract_id(), self.side.currentText(), int(self.quantity.value()),
                round_to_tick(float(self.limit.value())))

    def _snap_limit_to_tick(self) -> None:
        """An off-tick limit (150.73) becomes the tick price it will be sent at (150.70), on screen too."""
        value = float(self.limit.value())
        ticked = round_to_tick(value)
        if math.isfinite(ticked) and abs(ticked - value) > 1e-9:
            self.limit.blockSignals(True)
            self.limit.setValue(ticked)
            self.limit.blockSignals(False)

    def _live_preview(self, *_) -> None:
        """Re-run the checks on the ticket as it stands (no field edited): the verdict never goes stale."""
        if self.contract_id() is not None and not self._preview_timer.isActive():
            self.preview()

    def preview(self) -> None:
        if self.contract_id() is None:
            return
        self._snap_limit_to_tick()
        self.bridge.command(PreviewOrder(*self.order_args()), on_done=self._show_preview,
                            on_error=self._preview_failed)

    def _preview_failed(self, message: str) -> None:
        self.send.setEnabled(False)
        self.preview_view.verdict.setText(f"✖ {message}")
        self.preview_view.verdict.setStyleSheet(f"color: {theme.NEGATIVE}; font-weight: bold")

    def _show_preview(self, preview: OrderPreview) -> None:
        self.last_preview = preview
        ok = self.preview_view.show_preview(preview)
        self.send.setEnabled(ok)

    def submit(self) -> None:
        if self.contract_id() is None:
            return
        self.send.setEnabled(False)
        self.bridge.command(SubmitOrder(*self.order_args()), on_done=self._submitted,
                            on_error=self._preview_failed)

    def _submitted(self, preview: OrderPreview) -> None:
        self._show_preview(preview)
        sent, order = preview.sent, preview.order
        why = denial_text(preview)
        self.message.setStyleSheet(f"color: {theme.POSITIVE if sent else theme.NEGATIVE}")
        self.message.setText(f"Sent {order.client_order_id}" if sent and order is not None
                             else f"Not sent: {why or preview.message}")
        if sent:
            self.send.setEnabled(False)
            self._schedule_preview()

    def focus_ticket(self) -> None:
        self.expiry.setFocus()

    # ----------------------------------------------------------------------------------- blotter
    def _build_blotter(self) -> QWidget:
        box = QGroupBox("Blotter")
        v = QVBoxLayout(box)
        bar = QHBoxLayout()
        self.working_only = QCheckBox("working only")
        self.working_only.toggled.connect(
            lambda on: self.blotter_proxy.set_predicate((lambda r: r.working) if on else None))
        self.cancel_button = QPushButton(theme.icon("cancel"), "Cancel")
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.modify_button = QPushButton("Modify…")
        self.modify_button.clicked.connect(self.modify_selected)
        bar.addWidget(self.working_only)
        bar.addStretch(1)
        bar.addWidget(self.modify_button)
        bar.addWidget(self.cancel_button)
        v.addLayout(bar)
        self.blotter = BlotterModel(BLOTTER, self)
        self.blotter_view, self.blotter_proxy = make_table(
            self.blotter, self, placeholder="No orders yet today.")
        self.blotter_view.sortByColumn(1, Qt.DescendingOrder)
        v.addWidget(self.blotter_view)
        return box

    def _on_order(self, record: Order | OrderRecord) -> None:
        row = order_row(record)
        key = row.order.client_order_id
        existing = self.blotter.get(key)
        if existing is not None and row.status == "NEW":
            row = replace(existing, order=row.order)
        self.blotter.upsert(key, row)

    def _on_order_event(self, event) -> None:
        existing = self.blotter.get(event.client_order_id)
        if existing is None:
            return
        avg = event.avg_fill_price if math.isfinite(event.avg_fill_price) else existing.avg_price
        self.blotter.upsert(event.client_order_id, replace(
            existing, status=event.status.value, filled=max(existing.filled, event.filled_quantity),
            avg_price=avg, reason=event.reason or existing.reason, updated=event.timestamp,
            limit=event.limit_price if event.limit_price is not None else existing.limit))

    def refresh_combos(self, *_) -> None:
        """Combo orders (one row per package) from the journal; a row changes only when its state or fills do."""
        for order, state, fills in self.bridge.combo_records():
            row = combo_row(order, state, fills)
            old = self.blotter.get(order.client_order_id)
            if old is None or (old.status, old.filled, old.extra, old.reason) != (row.status, row.filled, row.extra,
                                                                                   row.reason):
                self.blotter.upsert(order.client_order_id, row)

    def rows(self) -> list[OrderRow]:
        return self.blotter.records()

    def cancel_selected(self) -> None:
        row = selected_record(self.blotter_view)
        if row is not None and row.working and isinstance(row.order, Order):
            self.run(CancelOrder(row.order.client_order_id))

    def modify_selected(self) -> None:
        row = selected_record(self.blotter_view)
        if row is None or not row.working or not isinstance(row.order, Order):
            return
        current = row.limit if row.limit is not None else row.order.limit_price or 0.0
        price, ok = QInputDialog.getDouble(self, "Modify order", f"New limit for {row.order.contract.description}",
                                           float(current), 0.0, 1e6, 2)
        if ok:
            self.run(ModifyOrder(row.order.client_order_id, limit_price=round_to_tick(price)))
