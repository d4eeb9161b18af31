"""Mispricings: open signals, sortable and filterable; approve (what-if first) or reject; auto-execute.

A signal's Qty is what every per-order limit allows now; a signal no size can pass stays in the table greyed,
its reason in the "Can't send" column (the trader sees the idea and why it is not actionable)."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPushButton, QVBoxLayout,
                               QWidget)

from ...commands import ApproveSignal, PreviewSignal, RejectSignal, SetAutoExecute
from ...events import OrderPreview
from .. import market_time, theme
from ..bridge import Bridge
from ..dialogs.whatif import WhatIfDialog, denial_text, expiry_of
from ..models import Column, RecordModel
from .base import Panel, make_table, selected_record


def _side_colour(sig) -> QColor:
    return QColor(theme.POSITIVE if sig.side.value == "BUY" else theme.NEGATIVE)


def _age(sig) -> float:
    return market_time.age_s(sig.created_at)


class _MaxAge:
    """signals.max_age_s as the panel last heard it (the countdown column reads it)."""

    seconds = 600.0


def _expires_in(sig) -> float:
    return max(0.0, _MaxAge.seconds - _age(sig))


def _greyed(colour):
    """A blocked signal's cells are muted, whatever their own colour."""
    def pick_colour(sig):
        if getattr(sig, "blocked", ""):
            return QColor(theme.MUTED)
        return colour(sig) if colour is not None else None
    return pick_colour


def _package(sig, name: str, missing):
    st = getattr(sig, "structure", None)
    return missing if st is None else getattr(st, name)


def _package_greeks(sig) -> str:
    st = getattr(sig, "structure", None)
    if st is None:
        return ""
    return (f"{theme.fmt(st.delta, 0, dollars=True)} / {theme.fmt(st.vega, 0, dollars=True)} "
            f"(naked {theme.fmt(st.naked_delta, 0, dollars=True)} / {theme.fmt(st.naked_vega, 0, dollars=True)})")


COLUMNS = [
    Column("Contract", lambda s: s.contract.description, str, numeric=False),
    Column("Expiry", lambda s: s.contract.expiry.isoformat(), str, numeric=False),
    Column("Strike", lambda s: s.contract.strike, lambda v: f"{v:,.0f}"),
    Column("Side", lambda s: s.side.value, str, _side_colour, numeric=False),
    Column("Family", lambda s: s.family, str, numeric=False,
           tooltip="model: the fair-value surface vs the fitted model (fair IV - model IV at the strike), "
                   "confirmed by its residual's history and tradable at the quotes after fees; an expiry whose "
                   "fair slice is missing or untrusted raises none; relative: quote vs the arbitrage-free "
                   "fair-value surface, beyond fees and the surface's uncertainty"),
    Column("Bid", lambda s: s.bid),
    Column("Ask", lambda s: s.ask),
    Column("Value", lambda s: s.model_price,
           tooltip="What the edge is measured against: the model's price (model) or the fair surface's (relative)"),
    Column("Edge $/ct", lambda s: s.edge_dollars, lambda v: theme.fmt(v, 0, dollars=True),
           lambda s: theme.signed_colour(s.edge_dollars), tooltip="Edge per contract, dollars"),
    Column("Edge vol", lambda s: s.edge_vol, lambda v: f"{v:+.2f}",
           tooltip="Edge in vol points (edge per unit / vega), at the quote, after costs"),
    Column("z", lambda s: s.zscore, lambda v: f"{v:+.1f}",
           tooltip="z-score of the residual (fair IV - model IV) against its own history (model)"),
    Column("Vega", lambda s: s.vega, tooltip="Vega per contract, $ per vol point"),
    Column("Qty", lambda s: s.quantity, lambda v: f"{v:d}",
           tooltip="Contracts: the signal's size capped by every per-order limit (0: no size can be sent)"),
    Column("Age", _age, lambda v: f"{v:,.0f}s", tooltip="Seconds of market time since the signal appeared"),
    Column("Expires", _expires_in, lambda v: f"{int(v) // 60}:{int(v) % 60:02d}",
           tooltip="Market time left before the signal times out (signals.max_age_s)"),
    Column("State", lambda s: s.state.value, str, numeric=False),
    Column("Can't send", lambda s: s.blocked, str, numeric=False,
           tooltip="Why no size of this signal passes the pre-trade checks now (empty: it can be sent)"),
    Column("Structure", lambda s: _package(s, "label", ""), str, numeric=False,
           tooltip="The package proposed instead of the naked option (signals.structures): the vertical against "
                   "the nearest liquid strike, the calendar against the next expiry, or the neutral package (two "
                   "out-of-the-money legs in whole ratios that take out its delta and vega) — Trade package… opens it"),
    Column("Pkg edge", lambda s: _package(s, "edge_points", float("nan")), lambda v: f"{v:+.2f} pts" if v == v else "",
           tooltip="Edge of one package, index points: the signal's edge (times its ratio) less each hedge leg's "
                   "half-spread, fees and own deviation from value (times its ratio) and the net limit's tick"),
    Column("Pkg Δ$ / vega$", _package_greeks, str, numeric=False,
           tooltip="Net delta $ (1 % move) and vega $ (1 vol point) of one package, vs the naked option's"),
    Column("Pkg qty", lambda s: _package(s, "quantity", float("nan")), lambda v: f"{v:d}" if v == v else "",
           tooltip="Packages every check on the package passes now (0: Trade package… says why "
                   "none can be sent)"),
]
COLUMNS = [Column(c.header, c.value, c.text, _greyed(c.colour), c.numeric, c.tooltip) for c in COLUMNS]
ARBITRAGE_COLUMNS = [
    Column("Kind", lambda a: a.kind, str, numeric=False),
    Column("Edge $/pkg", lambda a: a.edge_dollars, lambda v: theme.fmt(v, 0, dollars=True),
           tooltip="Locked in per package after fees, dollars"),
    Column("Net", lambda a: a.limit_price, lambda v: f"{v:+.2f}" if v == v else "–",
           tooltip="Net price of one package at the quotes, index points (negative: a credit); – not tradable "
                   "as one options package"),
    Column("Legs", lambda a: a.description, str, numeric=False),
]
AGE_COLUMN = next(i for i, c in enumerate(COLUMNS) if c.header == "Age")
EXPIRES_COLUMN = next(i for i, c in enumerate(COLUMNS) if c.header == "Expires")
EDGE_COLUMN = next(i for i, c in enumerate(COLUMNS) if c.header == "Edge $/ct")
ARBITRAGE_EDGE_COLUMN = next(i for i, c in enumerate(ARBITRAGE_COLUMNS) if c.header == "Edge $/pkg")
FAMILIES = ("all families", "model", "relative")


class MispricingsPanel(Panel):
    title = "Mispricings"
    name = "mispricings"
    package_requested = Signal(object)      # an Arbitrage or a Signal with a structure, to trade as a combo (the
                                            # window opens the combo ticket)

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self._arbitrage_found: list | None = None      # the last snapshot's static arbitrage, not yet drawn
        self.model = RecordModel(COLUMNS, self)
        self.table, self.proxy = make_table(
            self.model, self, placeholder="No open mispricings: the market agrees with the model within the "
                                          "signal thresholds.")
        self.table.sortByColumn(EDGE_COLUMN, Qt.DescendingOrder)
        self.what_if: WhatIfDialog | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        bar = QHBoxLayout()
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("filter (contract, side, state…)")
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        bar.addWidget(self.filter, 1)
        self.family = QComboBox()
        self.family.addItems(FAMILIES)
        self.family.setToolTip("Show one signal family")
        self.family.currentTextChanged.connect(self._filter_family)
        bar.addWidget(self.family)
        self.approve_button = QPushButton(theme.icon("approve"), "Approve (A)")
        self.approve_button.setObjectName("approve")
        self.approve_button.clicked.connect(self.approve_selected)
        self.reject_button = QPushButton(theme.icon("reject"), "Reject (R)")
        self.reject_button.setObjectName("reject")
        self.reject_button.clicked.connect(self.reject_selected)
        self.structure_button = QPushButton(theme.icon("approve"), "Trade package…")
        self.structure_button.setToolTip("Open the selected signal's proposed structure in the combo ticket: its "
                                         "legs, side, net limit and size, checked live; sent, it orders the signal")
        self.structure_button.clicked.connect(self.trade_selected_structure)
        self.auto = QCheckBox("Auto-execute")
        self.auto.setToolTip("Approve new signals within the auto limits automatically")
        self.auto.clicked.connect(self._toggle_auto)
        for w in (self.approve_button, self.reject_button, self.structure_button, self.auto):
            bar.addWidget(w)
        layout.addLayout(bar)
        layout.addWidget(self.table)
        self.arbitrage_label = QLabel("Static arbitrage in the quotes (after fees): none")
        arb_bar = QHBoxLayout()
        arb_bar.addWidget(self.arbitrage_label, 1)
        self.package_button = QPushButton(theme.icon("approve"), "Trade package…")
        self.package_button.setToolTip("Open the selected static arbitrage in the combo ticket: its legs, side and "
                                       "net limit at the quotes, checked live before you send it")
        self.package_button.clicked.connect(self.trade_selected_package)
        arb_bar.addWidget(self.package_button)
        layout.addLayout(arb_bar)
        self.arbitrage = RecordModel(ARBITRAGE_COLUMNS, self)
        self.arbitrage_table, _ = make_table(self.arbitrage, self, placeholder="No static arbitrage in the quotes.")
        self.arbitrage_table.sortByColumn(ARBITRAGE_EDGE_COLUMN, Qt.DescendingOrder)
        self.arbitrage_table.setMaximumHeight(84)           # the signals come first
        for column, width in ((0, 72), (1, 84), (2, 64)):
            self.arbitrage_table.setColumnWidth(column, width)
        layout.addWidget(self.arbitrage_table)
        self.arbitrage_table.doubleClicked.connect(lambda _: self.trade_selected_package())
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.table.doubleClicked.connect(lambda _: self.approve_selected())
        bridge.signal.connect(self._on_signal)
        bridge.arbitrage.connect(self._on_arbitrage)
        bridge.settings.connect(self._on_settings)
        self._on_settings(bridge.current_settings())
        for news in (bridge.cycle, bridge.trading_state, bridge.fill, bridge.settings):   # the what-if stays live
            news.connect(self._refresh_what_if)
        self._ages = QTimer(self)              # ages tick even when no signal changes
        self._ages.timeout.connect(self.mark_dirty)
        self._ages.start(1000)

    # ---------------------------------------------------------------------------------- events
    def _filter_family(self, family: str) -> None:
        self.proxy.set_predicate(None if family == FAMILIES[0] else (lambda s: s.family == family))

    def selected_package(self):
        """The selected static arbitrage, when it trades as one package (else None)."""
        found = selected_record(self.arbitrage_table)
        return found if found is not None and found.combo is not None else None

    def trade_selected_package(self) -> None:
        found = self.selected_package()
        if found is None:
            self.message.setText("Select a static arbitrage with a net price (a vertical or an even butterfly): "
                                 "the others cannot be traded as one options package.")
            return
        self.package_requested.emit(found)

    def trade_selected_structure(self) -> None:
        """The selected signal's proposed structure into the combo ticket (the window opens it)."""
        sig = self.current_signal()
        if sig is None or sig.structure is None:
            self.message.setStyleSheet("")
            self.message.setText("Select a signal with a proposed structure (the Structure column): the others "
                                 "trade as single options (Approve).")
            return
        if sig.structure.quantity < 1:
            self.message.setStyleSheet(f"color: {theme.WARNING}")
            self.message.setText(f"No size of the package can be sent now: {sig.structure.blocked}")
        self.package_requested.emit(sig)

    def _on_arbitrage(self, found) -> None:
        self._arbitrage_found = found           # drawn at the next refresh tick, within its frame budget
        self.mark_dirty()

    def _show_arbitrage(self, found) -> None:
        # updated in place (the trader's selection stays), kept in the table's sort: the best edge first
        self.arbitrage.set_records([(a.key, a) for a in found])
        tradable = sum(a.combo is not None for a in found)
        self.arbitrage_label.setText(f"Static arbitrage in the quotes (after fees): {len(found)}, {tradable} tradable "
                                     "as one package" if found else "Static arbitrage in the quotes (after fees): none")

    def _on_settings(self, settings) -> None:
        if settings is not None:
            _MaxAge.seconds = float(settings.signals.max_age_s)
        self.mark_dirty()

    def _on_signal(self, sig) -> None:
        dialog = self.what_if
        if dialog is not None and getattr(dialog, "signal_id", None) == sig.signal_id:
            if sig.state.value != "NEW":
                self._close_what_if(sig)
            else:
                dialog.set_max_quantity(sig.quantity)
        if sig.state.is_open:
            self.model.upsert(sig.signal_id, sig)
            return
        selected = self.current_signal()
        if selected is None or selected.signal_id != sig.signal_id:
            self.model.remove(sig.signal_id)
            return
        # the selected signal left: stay on its contract (another open signal on it) or select nothing,
        # never the row that slides into its place
        self.table.clearSelection()
        self.model.remove(sig.signal_id)
        self.table.clearSelection()
        same = [k for k, s in zip(self.model.keys(), self.model.records())
                if s.contract.contract_id == sig.contract.contract_id]
        if same:
            self.select_signal(same[0])
        else:
            self.table.setCurrentIndex(self.proxy.index(-1, -1))

    def _close_what_if(self, sig) -> None:
        """The dialog's signal is no longer open (expired, rejected, ordered elsewhere): close it and say so."""
        dialog, self.what_if = self.what_if, None
        dialog.reject()
        why = f" ({sig.reason})" if sig.reason else ""
        self.message.setStyleSheet(f"color: {theme.WARNING}")
        self.message.setText(f"Signal {sig.contract.description} {sig.state.value.lower()}{why}: "
                             f"the approval dialog was closed, nothing was sent.")

    def _refresh_what_if(self, *_) -> None:
        if self.what_if is not None:
            self.what_if.refresh_preview()

    def render(self) -> None:
        found, self._arbitrage_found = self._arbitrage_found, None
        if found is not None:
            self._show_arbitrage(found)
        self.model.refresh_column(AGE_COLUMN)
        self.model.refresh_column(EXPIRES_COLUMN)
        auto = self.bridge.auto_execute()
        if self.auto.isChecked() != auto:
            self.auto.setChecked(auto)

    def select_first(self) -> None:
        if self.proxy.rowCount():
            self.table.selectRow(0)

    def select_signal(self, signal_id: str) -> bool:
        """Select the row of `signal_id` (shortcuts then act on it)."""
        for row in range(self.proxy.rowCount()):
            source = self.proxy.mapToSource(self.proxy.index(row, 0))
            if self.model.key(source.row()) == signal_id:
                self.table.selectRow(row)
                return True
        return False

    def current_signal(self):
        return selected_record(self.table)

    # -------------------------------------------------------------------------------- commands
    def approve_selected(self) -> None:
        sig = self.current_signal()
        if sig is None:
            self.message.setText("Select a signal to approve.")
            return
        settings = self.bridge.current_settings()
        if sig.quantity < 1:
            self.message.setStyleSheet(f"color: {theme.NEGATIVE}")
            self.message.setText(f"No size of {sig.contract.description} can be sent now: {sig.blocked}")
            return
        if settings is not None and not settings.ui.confirm_orders:
            self._approve(sig.signal_id)
            return
        self.run(PreviewSignal(sig.signal_id), on_done=lambda p: self._show_what_if(sig, p))

    def _show_what_if(self, sig, preview) -> None:
        settings = self.bridge.current_settings()
        max_age = settings.signals.max_age_s if settings is not None else _MaxAge.seconds
        sid = sig.signal_id
        dialog = WhatIfDialog(preview, f"Approve {sig.side.value} {sig.contract.description}", self,
                              max_quantity=sig.quantity, expires_at=expiry_of(sig, max_age),
                              refresh=lambda q: self.bridge.command(PreviewSignal(sid, q)))
        dialog.signal_id = sid
        dialog.accepted.connect(lambda: self._approve(sid, int(dialog.quantity.value())))
        dialog.finished.connect(lambda _: self.what_if is dialog and setattr(self, "what_if", None))
        self.what_if = dialog
        dialog.open()

    def _approve(self, signal_id: str, quantity: int | None = None) -> None:
        self.run(ApproveSignal(signal_id, "trader", quantity), on_done=self._after_approve)

    def _after_approve(self, preview: OrderPreview | None) -> None:
        if preview is not None and not preview.sent:
            self.message.setStyleSheet(f"color: {theme.NEGATIVE}")
            self.message.setText(f"Not sent: {denial_text(preview) or preview.message}")
        else:
            self.message.setStyleSheet(f"color: {theme.POSITIVE}")
            order = preview.order if preview is not None else None
            self.message.setText(f"Sent {order.client_order_id}" if order is not None else "Sent.")

    def reject_selected(self) -> None:
        sig = self.current_signal()
        if sig is None:
            self.message.setText("Select a signal to reject.")
            return
        self.run(RejectSignal(sig.signal_id, "rejected by trader"))
        self.model.remove(sig.signal_id)
        self.message.setStyleSheet("")
        self.message.setText(f"Rejected {sig.contract.description}")

    def _toggle_auto(self, checked: bool) -> None:
        if not checked:
            self.run(SetAutoExecute(False))
            return
        self.auto.setChecked(False)
        settings = self.bridge.current_settings()
        limits = ""
        if settings is not None:
            s, r = settings.signals, settings.risk
            limits = (f"\n\nAuto limits: up to {s.auto_max_quantity} contracts and "
                      f"${s.auto_max_premium:,.0f} premium per order.\nRisk limits still apply: max order "
                      f"{r.max_order_quantity} contracts, max position {r.max_position}, daily loss "
                      f"${r.max_daily_loss:,.0f}.")
        answer = QMessageBox.question(self, "Auto-execute",
                                      f"Send orders for new signals without asking?{limits}",
                                      QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        if answer == QMessageBox.Yes:
            self.set_auto(True)

    def set_auto(self, on: bool) -> None:
        """Switch auto-execution without the confirmation (after it was given)."""
        self.run(SetAutoExecute(on))
        self.auto.setChecked(on)
