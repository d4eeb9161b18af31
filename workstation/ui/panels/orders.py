"""Order ticket (contract from the chain, side, quantity, limit from mid or model, live pre-trade
preview: a denied order shows its reason and cannot be sent) and the blotter (cancel, modify). A combo order is one
blotter row (its package: structure, net limit, packages filled, average net price) with its legs and their fills
in the row's tooltip; the blotter's rows, columns and box live in `panels.blotter`."""
from __future__ import annotations

import math
from datetime import date

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ...commands import CancelOrder, ModifyOrder, PreviewOrder, SubmitOrder
from ...domain.ticks import round_to_tick
from ...events import OrderPreview
from .. import market_time, theme
from ..bridge import Bridge
from ..dialogs.whatif import PreviewView, denial_text
from .base import Panel
from .blotter import BLOTTER, BlotterBox, BlotterModel, OrderRow, combo_row, order_row

__all__ = ["BLOTTER", "BlotterModel", "OrderRow", "OrdersPanel", "combo_row", "order_row"]


class OrdersPanel(Panel):
    title = "Order ticket && blotter"
    name = "orders"

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self._chain = None
        self._picked: tuple[tuple, int | None] = ((), None)   # (chain, expiry, right, strike) -> its row
        self._chain_key = None
        self.last_preview = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        split = QSplitter(Qt.Horizontal)
        layout.addWidget(split)
        split.addWidget(self._build_ticket())
        self.blotter_box = BlotterBox()
        b = self.blotter_box
        self.blotter, self.blotter_view, self.blotter_proxy = b.model, b.view, b.proxy
        self.working_only, self.cancel_button, self.modify_button = b.working_only, b.cancel_button, b.modify_button
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.modify_button.clicked.connect(self.modify_selected)
        split.addWidget(b)
        split.setSizes([380, 660])
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(250)
        self._preview_timer.timeout.connect(self.preview)
        # news arrives in bursts (an auto-execution sends several orders, each with its events): the live preview
        # and the packages' rows are redone once per burst, at the next turn of the event loop
        self._live_timer = _next_turn(self, self._live_preview_now)
        self._combos_timer = _next_turn(self, lambda: self.blotter_box.show_combos(self.bridge.combo_records()))
        bridge.snapshot.connect(self._on_snapshot)
        bridge.order.connect(self.blotter_box.on_order)
        bridge.order_event.connect(self.blotter_box.on_order_event)
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
        self._picked = ((), None)
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
        """The chain row of the contract picked in the ticket (None when there is none). Asked several times a
        cycle (the live preview, the quote, the order's id), so it is kept until the chain or a picker changes:
        on the full chain each search scans 26,000 rows on the window's thread."""
        key = (id(self._chain), self.expiry.currentText(), self.right.currentText(), self.strike.currentText())
        if key == self._picked[0]:
            return self._picked[1]
        rows = self._rows()
        row = None
        if len(rows) and self.strike.currentText():
            hit = rows[self._chain.strike[rows] == float(self.strike.currentText())]
            row = int(hit[0]) if len(hit) else None
        self._picked = (key, row)
        return row

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
        """Re-run the checks on the ticket as it stands (no field edited) at the next turn of the event loop, once
        for however many news came before it: the verdict never goes stale."""
        self._live_timer.start()

    def _live_preview_now(self) -> None:
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
    def refresh_combos(self, *_) -> None:
        """Combo orders (one row per package) from the journal, read at the next turn of the event loop (once for
        a burst of fills and decisions); a row changes only when its state or fills do."""
        self._combos_timer.start()

    def rows(self) -> list[OrderRow]:
        return self.blotter.records()

    def cancel_selected(self) -> None:
        row = self.blotter_box.selected_working()
        if row is not None:
            self.run(CancelOrder(row.order.client_order_id))

    def modify_selected(self) -> None:
        row = self.blotter_box.selected_working()
        if row is None:
            return
        current = row.limit if row.limit is not None else row.order.limit_price or 0.0
        price, ok = QInputDialog.getDouble(self, "Modify order", f"New limit for {row.order.contract.description}",
                                           float(current), 0.0, 1e6, 2)
        if ok:
            self.run(ModifyOrder(row.order.client_order_id, limit_price=round_to_tick(price)))


def _next_turn(parent: QWidget, action) -> QTimer:
    """A single-shot 0-ms timer running `action`: started many times before the loop turns, it runs once."""
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(0)
    timer.timeout.connect(action)
    return timer
