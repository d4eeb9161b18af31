"""Combo ticket: a structure from a template (strikes and expiries from the chain, around the money by default) or
legs added from the chain board; each leg with its quote, IV and dollar Greeks; the package's net bid/ask/mid
(index points and $), net Greeks ($), max loss / max gain at expiry; its payoff at expiry and today (Black-76 at
each leg's market vol); the live pre-trade checks on the package; Buy/Sell at a net limit on the 0.05 tick.

The parts live in `ui/combo/` (structure picker, legs table, package summary, payoff plot, checks view); this
dialog composes them, keeps the legs and the order, and re-prices and re-checks the package live."""
from __future__ import annotations

import math
from datetime import date

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDialog, QHBoxLayout, QSplitter, QVBoxLayout, QWidget

from ...analytics import combo_ticket as ct
from ...commands import CheckCombo, SendCombo
from ...domain import Contract, Side
from ...domain.combos import Combo, ComboError, ComboLeg, ComboOrder
from ...risk.limits import RiskDecision
from .. import theme
from ..bridge import Bridge
from ..combo.checks import ChecksBox, denial
from ..combo.legs import LEG_HEADERS, LegsBox, leg_lines, today_inputs
from ..combo.package import PackageSummary
from ..combo.package import pts_and_dollars as _pts_and_dollars  # noqa: F401  (its old name)
from ..combo.order import OrderBox
from ..combo.payoff import PayoffPlot
from ..combo.structure import CUSTOM, StructureBox

__all__ = ["CUSTOM", "LEG_HEADERS", "PREVIEW_ID", "ComboTicket", "denial"]

PREVIEW_ID = "combo-preview"


class ComboTicket(QDialog):
    """The combo ticket (non-modal; Trading ▸ New combo ticket, or 'add to combo' on the chain board)."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.setWindowTitle("Combo ticket")
        self.resize(1240, 760)
        self._snap = None
        self._surface = None
        self.legs: list[ComboLeg] = []
        self.combo: Combo | None = None
        self.numbers: ct.ComboNumbers | None = None
        self.payoff: ct.Payoff | None = None
        self.decision: RiskDecision | None = None
        self.result: RiskDecision | str | None = None
        self.problem = ""
        self.signal_id = ""            # the open signal whose proposed structure the ticket holds (unedited legs)
        self.structure_box = StructureBox()
        self.legs_box = LegsBox()
        self.package = PackageSummary()
        self.checks_box = ChecksBox()
        self.plot = PayoffPlot()
        self.order_box = OrderBox()
        self._expose_parts()
        self._wire_order()
        root = QHBoxLayout(self)
        split = QSplitter(Qt.Horizontal)
        root.addWidget(split)
        left = QWidget()
        v = QVBoxLayout(left)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.structure_box)
        v.addWidget(self.legs_box, 1)
        v.addWidget(self.package)
        v.addWidget(self.order_box)
        v.addWidget(self.checks_box, 1)
        split.addWidget(left)
        split.addWidget(self.plot)
        split.setSizes([700, 540])
        self._wire_structure()
        self.remove_button.clicked.connect(self.remove_selected_leg)
        self.clear_button.clicked.connect(self.clear_legs)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.refresh)
        bridge.snapshot.connect(self._on_snapshot)
        bridge.surface.connect(self._on_surface)
        for news in (bridge.cycle, bridge.settings, bridge.fill, bridge.trading_state, bridge.book):
            news.connect(self._live)

    # ------------------------------------------------------------------------------------- layout
    def _expose_parts(self) -> None:
        """The parts' widgets under the ticket's names (tests, the chain board and keyboard users read them)."""
        s = self.structure_box
        self.template, self.right, self.expiry, self.back_expiry = s.template, s.right, s.expiry, s.back_expiry
        self.atm_button, self.strike_labels, self.strikes = s.atm_button, s.strike_labels, s.strikes
        self.leg_table, self.hint = self.legs_box.table, self.legs_box.hint
        self.remove_button, self.clear_button = self.legs_box.remove_button, self.legs_box.clear_button
        self.values = self.package.values
        c = self.checks_box
        self.verdict, self.checks, self.message = c.verdict, c.checks, c.message
        self.expiry_curve, self.today_curve, self.spot_line = (self.plot.expiry_curve, self.plot.today_curve,
                                                               self.plot.spot_line)

    def _wire_structure(self) -> None:
        self.atm_button.clicked.connect(self.default_strikes)
        for box in self.strikes:
            box.currentIndexChanged.connect(self._structure_edited)
        self.template.currentIndexChanged.connect(self._template_changed)
        self.right.currentIndexChanged.connect(self._template_changed)
        self.expiry.currentIndexChanged.connect(self._expiry_changed)
        self.back_expiry.currentIndexChanged.connect(self._structure_edited)

    def _wire_order(self) -> None:
        o = self.order_box
        self.side, self.quantity, self.limit, self.mid_button, self.send = (o.side, o.quantity, o.limit,
                                                                            o.mid_button, o.send)
        self.limit.editingFinished.connect(self._snap_limit)
        self.mid_button.clicked.connect(self.use_mid)
        self.send.clicked.connect(self.submit)
        for changed in (self.side.currentIndexChanged, self.quantity.valueChanged, self.limit.valueChanged):
            changed.connect(self._schedule)

    # ------------------------------------------------------------------------------------- market
    def _on_snapshot(self, snap) -> None:
        first = self._snap is None
        self._snap = snap
        self._fill_expiries()
        if first and self.template.currentData() != CUSTOM and not self.legs:
            self.default_strikes()
        self._live()

    def _on_surface(self, surface) -> None:
        self._surface = surface
        if self._snap is None:
            self._on_snapshot(surface.snapshot)

    def _live(self, *_) -> None:
        """Re-price and re-check the package as it stands (the verdict never goes stale)."""
        if self.isVisible() and not self._timer.isActive():
            self._timer.start()

    def _schedule(self, *_) -> None:
        self.send.setEnabled(False)
        self._timer.start()

    def _fill_expiries(self) -> None:
        self.structure_box.fill_expiries(self._snap)

    def _fill_strikes(self) -> None:
        self.structure_box.fill_strikes(self._snap)

    def _expiry(self) -> date:
        return self.structure_box.front()

    # ------------------------------------------------------------------------------------- structure
    def _template_changed(self, *_) -> None:
        if self.structure_box.show_template() != CUSTOM:
            self.default_strikes()

    def _expiry_changed(self, *_) -> None:
        self._fill_strikes()
        if self.template.currentData() != CUSTOM:
            self.default_strikes()

    def set_template(self, structure: str, expiry: date | str | None = None, right: str = "C",
                     strikes: list[float] | None = None, back_expiry: date | str | None = None) -> None:
        """Pick a template programmatically (tests, keyboard users); strikes default to around the money."""
        self.structure_box.select(structure, right)
        if expiry is not None:
            self.structure_box.select_front(expiry)
            self._fill_strikes()
        if back_expiry is not None:
            self.back_expiry.setCurrentText(str(back_expiry))
        self._template_changed()
        if strikes:
            self.structure_box.set_strikes(strikes, quiet=False)
            self._structure_edited()

    def default_strikes(self) -> None:
        """The template's strikes around the money on the chosen expiry."""
        key = self.template.currentData()
        if self._snap is None or key == CUSTOM or not self.expiry.currentText():
            return
        strikes = ct.default_strikes(key, self._snap, self._expiry(), bool(self.right.currentData()))
        self.structure_box.set_strikes(strikes)
        self._structure_edited()

    def _structure_edited(self, *_) -> None:
        """The template's legs from the fields; the limit goes to the package's mid."""
        key = self.template.currentData()
        if key == CUSTOM or self._snap is None:
            return
        n = len(ct.STRIKES[key])
        try:
            strikes = self.structure_box.chosen_strikes(n)
            back = self.structure_box.back() if key == "calendar" else None
            combo = ct.build(key, self._snap, self._expiry(), strikes, bool(self.right.currentData()), back)
        except (ValueError, LookupError, ComboError) as exc:
            self._set_legs([], problem=str(exc))
            return
        self._set_legs(list(combo.legs), structure=key)
        self.use_mid()

    def load(self, combo: Combo, side: Side | str, limit: float, quantity: int = 0, signal_id: str = "") -> None:
        """A ready package in the ticket (a static arbitrage, or a signal's proposed structure, from the
        Mispricings panel): its legs, side, net limit and packages; the trader checks it live and sends it as any
        other combo. A signal's package, sent with its legs unchanged, orders that signal."""
        self._to_custom()
        self._set_legs(list(combo.legs), combo.structure)
        self.side.setCurrentText(Side(side).value)
        if math.isfinite(limit):
            self.limit.setValue(ct.on_tick(limit))
        if quantity >= 1:
            self.quantity.setValue(quantity)
        self.signal_id = signal_id

    def add_contract(self, contract: Contract, side: Side | str) -> None:
        """One more contract of `contract` on `side` (the chain board's 'add to combo'). On a template the ticket
        goes custom and starts from this leg; on a custom combo the leg is added (or, on the other side, shrinks)."""
        legs = self.legs
        if self.template.currentData() != CUSTOM:
            self._to_custom()
            legs = []
        self._set_legs(ct.add_leg(legs, contract, Side(side)))
        self.use_mid()

    def remove_selected_leg(self) -> None:
        row = self.leg_table.currentRow()
        if 0 <= row < len(self.legs):
            legs = list(self.legs)
            del legs[row]
            self._to_custom()
            self._set_legs(legs)

    def clear_legs(self) -> None:
        self._to_custom()
        self._set_legs([])

    def _to_custom(self) -> None:
        self.structure_box.select(CUSTOM)
        self._template_changed()

    def _set_legs(self, legs: list[ComboLeg], structure: str = CUSTOM, problem: str = "") -> None:
        self.legs = legs
        self.problem = problem
        self.signal_id = ""
        self.combo = Combo(tuple(legs), structure) if legs else None
        self.result = None
        self.message.setText("")
        self._schedule()

    # ------------------------------------------------------------------------------------- numbers
    def _leg_lines(self, combo: Combo) -> list[ct.LegLine]:
        return leg_lines(self.bridge, self._surface, combo)

    def order_args(self) -> tuple[str, int, float]:
        """(side, packages, net limit on the combo tick)."""
        return self.side.currentText(), int(self.quantity.value()), ct.on_tick(float(self.limit.value()))

    def use_mid(self) -> None:
        """The limit at the package's net mid (on the tick)."""
        if self.combo is None:
            return
        lines = self._leg_lines(self.combo)
        mid = self.combo.net_mid([x.bid for x in lines], [x.ask for x in lines])
        if math.isfinite(mid):
            self.limit.setValue(ct.on_tick(mid))

    def _snap_limit(self) -> None:
        value = float(self.limit.value())
        ticked = ct.on_tick(value)
        if abs(ticked - value) > 1e-9:
            self.limit.blockSignals(True)
            self.limit.setValue(ticked)
            self.limit.blockSignals(False)

    def refresh(self) -> None:
        """Re-price the legs and the package, redraw the payoff and re-run the checks."""
        self.legs_box.show_legs(self.legs)
        combo = self.combo
        if combo is None:
            self.numbers = self.payoff = self.decision = None
            self.package.clear()
            self.plot.clear_curves()
            self._show_verdict(None, self.problem or "Pick a template or add legs from the chain board.")
            return
        side, qty, limit = self.order_args()
        lines = self._leg_lines(combo)
        self.numbers = ct.numbers(combo, lines, Side(side), limit)
        self.package.show_numbers(self.numbers, combo.multiplier, side, qty, limit)
        self._draw_payoff(combo, Side(side), qty, limit)
        self.legs_box.show_numbers(lines)
        try:
            order = ComboOrder(PREVIEW_ID, combo, Side(side), qty, limit)
        except ValueError as exc:
            self._show_verdict(None, str(exc))
            return
        self.bridge.command(CheckCombo(order), on_done=self._checked,
                            on_error=lambda message: self._show_verdict(None, message))

    def _draw_payoff(self, combo: Combo, side: Side, qty: int, limit: float) -> None:
        spot = float(self._snap.underlying_price) if self._snap is not None else math.nan
        if not math.isfinite(spot) or not math.isfinite(limit):
            return
        forwards, maturities, vols = today_inputs(self._surface, combo)
        self.payoff = ct.payoff(combo, side, qty, limit, spot, forwards, maturities, vols)
        self.plot.show_payoff(self.payoff, spot)

    def _checked(self, decision: RiskDecision) -> None:
        self.decision = decision
        self._show_verdict(decision)

    def _show_verdict(self, decision: RiskDecision | None, message: str = "") -> bool:
        ok = self.checks_box.show_verdict(decision, message)
        self.send.setEnabled(ok)
        return ok

    # ------------------------------------------------------------------------------------- sending
    def submit(self) -> None:
        if self.combo is None:
            return
        side, qty, limit = self.order_args()
        self.send.setEnabled(False)
        self.bridge.command(SendCombo(self.combo, side, qty, limit, self.signal_id), on_done=self._sent,
                            on_error=self._send_failed)

    def _sent(self, result: RiskDecision | str) -> None:
        self.result = result
        side, qty, limit = self.order_args()
        if isinstance(result, str):
            self._send_failed(result)
            return
        if result.approved:
            self.checks_box.say(f"Sent {result.client_order_id}: {side} {qty} {self.combo.description} "
                                f"at {theme.fmt(limit)} pts", good=True)
        else:
            self.checks_box.say(f"Not sent ({result.client_order_id} denied): {denial(result)}", good=False)
            self._show_verdict(result)
        self._schedule()

    def _send_failed(self, message: str) -> None:
        self.checks_box.say(f"Not sent: {message}", good=False)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._snap is None:
            snap, surface = self.bridge.market_now()
            self._surface = surface
            if snap is not None:
                self._on_snapshot(snap)
        if not self.legs and self.template.currentData() != CUSTOM:
            self._template_changed()
        self._timer.start()
