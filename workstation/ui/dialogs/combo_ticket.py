"""Combo ticket: a structure from a template (strikes and expiries from the chain, around the money by default) or
legs added from the chain board; each leg with its quote, IV and dollar Greeks; the package's net bid/ask/mid
(index points and $), net Greeks ($), max loss / max gain at expiry; its payoff at expiry and today (Black-76 at
each leg's market vol); the live pre-trade checks on the package; Buy/Sell at a net limit on the 0.05 tick."""
from __future__ import annotations

import math
from datetime import date

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QComboBox, QDialog, QDoubleSpinBox, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QLabel, QPushButton, QSpinBox, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from ...analytics import combo_ticket as ct
from ...commands import CheckCombo, SendCombo
from ...domain import Contract, Side
from ...domain.combos import Combo, ComboError, ComboLeg, ComboOrder
from ...risk.limits import RiskDecision
from .. import theme
from ..bridge import Bridge
from .whatif import check_rows, show_checks

CUSTOM = "custom"
LEG_HEADERS = ["Leg", "Side", "Ratio", "Bid", "Ask", "Mid", "IV %", "Delta $", "Vega $", "Theta $"]
PREVIEW_ID = "combo-preview"


def denial(decision: RiskDecision | None) -> str:
    """Every failing check of a decision, 'CODE: detail; ...' ('' when approved)."""
    if decision is None:
        return "no pre-trade decision"
    return "; ".join(f"{code}: {detail}" if detail else code
                     for _, passed, code, detail in check_rows(decision) if not passed)


def _pts_and_dollars(points: float, multiplier: float) -> str:
    return f"{theme.fmt(points)} pts ({theme.fmt(points * multiplier, 0, dollars=True)})"


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
        root = QHBoxLayout(self)
        split = QSplitter(Qt.Horizontal)
        root.addWidget(split)
        left = QWidget()
        v = QVBoxLayout(left)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self._build_structure())
        v.addWidget(self._build_legs(), 1)
        v.addWidget(self._build_net())
        v.addWidget(self._build_order())
        v.addWidget(self._build_checks(), 1)
        split.addWidget(left)
        split.addWidget(self._build_plot())
        split.setSizes([700, 540])
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.refresh)
        bridge.snapshot.connect(self._on_snapshot)
        bridge.surface.connect(self._on_surface)
        for news in (bridge.cycle, bridge.settings, bridge.fill, bridge.trading_state, bridge.book):
            news.connect(self._live)

    # ------------------------------------------------------------------------------------- layout
    def _build_structure(self) -> QWidget:
        box = QGroupBox("Structure")
        grid = QGridLayout(box)
        self.template = QComboBox()
        for key, label in ct.LABELS.items():
            self.template.addItem(label, key)
        self.template.addItem("Custom (legs from the chain board)", CUSTOM)
        self.right = QComboBox()
        self.right.addItem("Calls", True)
        self.right.addItem("Puts", False)
        self.expiry = QComboBox()
        self.back_expiry = QComboBox()
        self.back_expiry.setToolTip("The calendar's back (bought) expiry")
        self.atm_button = QPushButton("Around the money")
        self.atm_button.setToolTip("Strikes at the money and 0.5 % of the index away")
        self.atm_button.clicked.connect(self.default_strikes)
        grid.addWidget(QLabel("Template"), 0, 0)
        grid.addWidget(self.template, 0, 1)
        grid.addWidget(self.right, 0, 2)
        grid.addWidget(self.atm_button, 0, 3, 1, 2)
        grid.addWidget(QLabel("Expiry"), 1, 0)
        grid.addWidget(self.expiry, 1, 1)
        grid.addWidget(QLabel("Back"), 1, 2)
        grid.addWidget(self.back_expiry, 1, 3, 1, 2)
        self.strike_labels: list[QLabel] = []
        self.strikes: list[QComboBox] = []
        grid.addWidget(QLabel("Strikes"), 2, 0)
        row = QHBoxLayout()
        for _ in range(4):
            label, box_ = QLabel(""), QComboBox()
            box_.setMinimumContentsLength(6)
            box_.currentIndexChanged.connect(self._structure_edited)
            self.strike_labels.append(label)
            self.strikes.append(box_)
            row.addWidget(label)
            row.addWidget(box_, 1)
        grid.addLayout(row, 2, 1, 1, 4)
        self.template.currentIndexChanged.connect(self._template_changed)
        self.right.currentIndexChanged.connect(self._template_changed)
        self.expiry.currentIndexChanged.connect(self._expiry_changed)
        self.back_expiry.currentIndexChanged.connect(self._structure_edited)
        return box

    def _build_legs(self) -> QWidget:
        box = QGroupBox("Legs (per package bought; Greeks $ of the leg in the package)")
        v = QVBoxLayout(box)
        self.leg_table = QTableWidget(0, len(LEG_HEADERS))
        self.leg_table.setHorizontalHeaderLabels(LEG_HEADERS)
        self.leg_table.verticalHeader().setVisible(False)
        self.leg_table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.leg_table.setSelectionBehavior(QTableWidget.SelectRows)
        self.leg_table.verticalHeader().setDefaultSectionSize(20)
        self.leg_table.horizontalHeader().setStretchLastSection(True)
        self.leg_table.setMinimumHeight(4 * 20 + 28)
        v.addWidget(self.leg_table)
        bar = QHBoxLayout()
        self.hint = QLabel("Chain board: + adds the contract under the cursor bought, − sold (or right-click).")
        self.hint.setStyleSheet(f"color: {theme.MUTED}")
        self.remove_button = QPushButton("Remove leg")
        self.remove_button.clicked.connect(self.remove_selected_leg)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear_legs)
        bar.addWidget(self.hint, 1)
        bar.addWidget(self.remove_button)
        bar.addWidget(self.clear_button)
        v.addLayout(bar)
        return box

    def _build_net(self) -> QWidget:
        box = QGroupBox("Package")
        form = QFormLayout(box)
        form.setVerticalSpacing(3)
        self.values: dict[str, QLabel] = {}
        tips = {"Net bid / ask": "What the package sells for / costs now, from the legs' quotes; index points per "
                                 "package, $ = × multiplier (debit > 0, credit < 0)",
                "Net mid": "Σ ratio × side × leg mid",
                "Net Greeks $": "Dollar Greeks of one package bought: delta$ and gamma$ per 1 % move, vega$ per vol "
                                "point, theta$ per day",
                "At expiry": "Worst and best P&L of the whole order at the front expiry, at the net limit"}
        for key, tip in tips.items():
            label = QLabel("–")
            label.setFont(theme.mono_font(9))
            label.setTextInteractionFlags(Qt.TextSelectableByMouse)
            label.setToolTip(tip)
            self.values[key] = label
            form.addRow(key, label)
        return box

    def _build_order(self) -> QWidget:
        box = QGroupBox("Order")
        h = QHBoxLayout(box)
        self.side = QComboBox()
        self.side.addItems(["BUY", "SELL"])
        self.side.setToolTip("Buy the package (every leg on its side) or sell it (every leg on the other side)")
        self.quantity = QSpinBox()
        self.quantity.setRange(1, 10_000)
        self.quantity.setSuffix(" pkg")
        self.quantity.setToolTip("Packages")
        self.limit = QDoubleSpinBox()
        self.limit.setRange(-100_000.0, 100_000.0)
        self.limit.setDecimals(2)
        self.limit.setSingleStep(0.05)
        self.limit.setSuffix(" pts")
        self.limit.setToolTip("Net limit per package, index points (debit > 0, credit < 0), on the 0.05 combo tick")
        self.limit.editingFinished.connect(self._snap_limit)
        self.mid_button = QPushButton("Mid")
        self.mid_button.clicked.connect(self.use_mid)
        self.send = QPushButton(theme.icon("send"), "Send combo")
        self.send.setObjectName("approve")
        self.send.setEnabled(False)
        self.send.clicked.connect(self.submit)
        h.addWidget(self.side)
        h.addWidget(self.quantity)
        h.addWidget(QLabel("net limit"))
        h.addWidget(self.limit, 1)
        h.addWidget(self.mid_button)
        h.addWidget(self.send)
        for changed in (self.side.currentIndexChanged, self.quantity.valueChanged, self.limit.valueChanged):
            changed.connect(self._schedule)
        return box

    def _build_checks(self) -> QWidget:
        box = QGroupBox("Pre-trade checks on the package (live)")
        v = QVBoxLayout(box)
        self.verdict = QLabel("")
        self.verdict.setWordWrap(True)
        v.addWidget(self.verdict)
        self.checks = QTableWidget(0, 3)
        self.checks.setHorizontalHeaderLabels(["Check", "Result", "Detail"])
        self.checks.verticalHeader().setVisible(False)
        self.checks.horizontalHeader().setStretchLastSection(True)
        self.checks.setEditTriggers(QTableWidget.NoEditTriggers)
        self.checks.setWordWrap(False)
        self.checks.verticalHeader().setDefaultSectionSize(20)
        self.checks.setMinimumHeight(5 * 20 + 26)
        v.addWidget(self.checks, 1)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        v.addWidget(self.message)
        return box

    def _build_plot(self) -> QWidget:
        self.plot = pg.PlotWidget()
        self.plot.setTitle("What-if: P&L of the order", size="9pt")
        self.plot.setLabel("left", "P&L", units="$")
        self.plot.setLabel("bottom", "index level at the front expiry (today: now)")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.addLegend(offset=(8, 8), labelTextSize="8pt")
        self.expiry_curve = self.plot.plot([], [], pen=pg.mkPen(theme.ACCENT, width=2), name="at expiry")
        self.today_curve = self.plot.plot([], [], pen=pg.mkPen(theme.WARNING, width=2, style=Qt.DashLine),
                                          name="today (Black-76, market vols)")
        self.plot.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen(theme.MUTED, width=1)))
        self.spot_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(theme.MUTED, width=1, style=Qt.DotLine),
                                         label="index {value:,.0f}", labelOpts={"color": theme.MUTED,
                                                                                 "position": 0.95})
        self.plot.addItem(self.spot_line)
        return self.plot

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
        snap = self._snap
        labels = [str(d) for d in ct.expiries(snap)]
        if labels == [self.expiry.itemText(i) for i in range(self.expiry.count())]:
            return
        for box in (self.expiry, self.back_expiry):
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(labels)
            if current in labels:
                box.setCurrentText(current)
            box.blockSignals(False)
        self._default_expiry(labels)
        self._fill_strikes()

    def _default_expiry(self, labels: list[str]) -> None:
        """About a month out, the back expiry the next one after it (once, when the chain first comes)."""
        if getattr(self, "_expiry_set", False) or not labels:
            return
        self._expiry_set = True
        days = (np.array(labels, dtype="datetime64[D]") - np.datetime64(self._snap.timestamp.date(), "D")).astype(int)
        i = int(np.argmin(np.abs(days - 30)))
        self.expiry.blockSignals(True)
        self.expiry.setCurrentIndex(i)
        self.expiry.blockSignals(False)
        self.back_expiry.blockSignals(True)
        self.back_expiry.setCurrentIndex(min(i + 1, len(labels) - 1))
        self.back_expiry.blockSignals(False)

    def _fill_strikes(self) -> None:
        if self._snap is None or not self.expiry.currentText():
            return
        listed = [f"{k:g}" for k in ct.strikes_of(self._snap, self._expiry())]
        for box in self.strikes:
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(listed)
            if current in listed:
                box.setCurrentText(current)
            box.blockSignals(False)

    def _expiry(self) -> date:
        return date.fromisoformat(self.expiry.currentText())

    # ------------------------------------------------------------------------------------- structure
    def _template_changed(self, *_) -> None:
        key = self.template.currentData()
        names = ct.STRIKES.get(key, ())
        for i, (label, box) in enumerate(zip(self.strike_labels, self.strikes)):
            label.setText(names[i] if i < len(names) else "")
            label.setVisible(i < len(names))
            box.setVisible(i < len(names))
        self.right.setEnabled(key in ct.ONE_RIGHT)
        self.back_expiry.setEnabled(key == "calendar")
        for w in (self.expiry, self.atm_button):
            w.setEnabled(key != CUSTOM)
        if key != CUSTOM:
            self.default_strikes()

    def _expiry_changed(self, *_) -> None:
        self._fill_strikes()
        if self.template.currentData() != CUSTOM:
            self.default_strikes()

    def set_template(self, structure: str, expiry: date | str | None = None, right: str = "C",
                     strikes: list[float] | None = None, back_expiry: date | str | None = None) -> None:
        """Pick a template programmatically (tests, keyboard users); strikes default to around the money."""
        self.template.blockSignals(True)
        self.template.setCurrentIndex(self.template.findData(structure))
        self.template.blockSignals(False)
        self.right.blockSignals(True)
        self.right.setCurrentIndex(0 if right == "C" else 1)
        self.right.blockSignals(False)
        if expiry is not None:
            self.expiry.blockSignals(True)
            self.expiry.setCurrentText(str(expiry))
            self.expiry.blockSignals(False)
            self._fill_strikes()
        if back_expiry is not None:
            self.back_expiry.setCurrentText(str(back_expiry))
        self._template_changed()
        if strikes:
            for box, k in zip(self.strikes, strikes):
                box.setCurrentText(f"{k:g}")
            self._structure_edited()

    def default_strikes(self) -> None:
        """The template's strikes around the money on the chosen expiry."""
        key = self.template.currentData()
        if self._snap is None or key == CUSTOM or not self.expiry.currentText():
            return
        strikes = ct.default_strikes(key, self._snap, self._expiry(), bool(self.right.currentData()))
        for box, k in zip(self.strikes, strikes):
            box.blockSignals(True)
            box.setCurrentText(f"{k:g}")
            box.blockSignals(False)
        self._structure_edited()

    def _structure_edited(self, *_) -> None:
        """The template's legs from the fields; the limit goes to the package's mid."""
        key = self.template.currentData()
        if key == CUSTOM or self._snap is None:
            return
        n = len(ct.STRIKES[key])
        try:
            strikes = [float(box.currentText()) for box in self.strikes[:n]]
            back = date.fromisoformat(self.back_expiry.currentText()) if key == "calendar" else None
            combo = ct.build(key, self._snap, self._expiry(), strikes, bool(self.right.currentData()), back)
        except (ValueError, LookupError, ComboError) as exc:
            self._set_legs([], problem=str(exc))
            return
        self._set_legs(list(combo.legs), structure=key)
        self.use_mid()

    def load(self, combo: Combo, side: Side | str, limit: float) -> None:
        """A ready package in the ticket (a static arbitrage from the Mispricings panel): its legs, side and net
        limit; the trader checks it live and sends it as any other combo."""
        self._to_custom()
        self._set_legs(list(combo.legs), combo.structure)
        self.side.setCurrentText(Side(side).value)
        if math.isfinite(limit):
            self.limit.setValue(ct.on_tick(limit))

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
        self.template.blockSignals(True)
        self.template.setCurrentIndex(self.template.findData(CUSTOM))
        self.template.blockSignals(False)
        self._template_changed()

    def _set_legs(self, legs: list[ComboLeg], structure: str = CUSTOM, problem: str = "") -> None:
        self.legs = legs
        self.problem = problem
        self.combo = Combo(tuple(legs), structure) if legs else None
        self.result = None
        self.message.setText("")
        self._schedule()

    # ------------------------------------------------------------------------------------- numbers
    def _leg_lines(self, combo: Combo) -> list[ct.LegLine]:
        surface = self._surface
        lines = []
        for leg in combo.legs:
            m = self.bridge.market_for(leg.contract)
            bid = float(m.bid) if m is not None else math.nan
            ask = float(m.ask) if m is not None else math.nan
            greeks = m.greeks.as_dict() if m is not None else dict.fromkeys(("delta", "gamma", "vega", "theta"),
                                                                             math.nan)
            iv = math.nan
            if surface is not None:
                row = surface.snapshot.index_of(leg.contract.contract_id)
                if row is not None:
                    iv = float(surface.iv_mid[row])
            lines.append(ct.LegLine(leg, bid, ask, iv, greeks))
        return lines

    def _today_inputs(self, combo: Combo) -> tuple[list[float], list[float], list[float]]:
        """Per leg: forward, maturity (years) and market vol from the surface (NaN when unknown)."""
        forwards, maturities, vols = [], [], []
        surface = self._surface
        for leg in combo.legs:
            row = surface.snapshot.index_of(leg.contract.contract_id) if surface is not None else None
            if row is None:
                forwards.append(math.nan), maturities.append(math.nan), vols.append(math.nan)
                continue
            forwards.append(float(surface.forward[row]))
            maturities.append(float(surface.maturity[row]))
            vols.append(float(surface.iv_mid[row]))
        return forwards, maturities, vols

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
        self._show_legs()
        combo = self.combo
        if combo is None:
            self.numbers = self.payoff = self.decision = None
            for label in self.values.values():
                label.setText("–")
            self.expiry_curve.setData([], [])
            self.today_curve.setData([], [])
            self._show_verdict(None, self.problem or "Pick a template or add legs from the chain board.")
            return
        side, qty, limit = self.order_args()
        lines = self._leg_lines(combo)
        self.numbers = n = ct.numbers(combo, lines, Side(side), limit)
        mult = combo.multiplier
        self.values["Net bid / ask"].setText(f"{theme.fmt(n.net_bid)} / {theme.fmt(n.net_ask)} pts   "
                                             f"({theme.fmt(n.net_bid * mult, 0, dollars=True)} / "
                                             f"{theme.fmt(n.net_ask * mult, 0, dollars=True)} per package)")
        self.values["Net mid"].setText(_pts_and_dollars(n.net_mid, mult) + " per package")
        g = n.greeks
        self.values["Net Greeks $"].setText(
            f"delta {theme.fmt(g['delta'], 0, dollars=True)}  gamma {theme.fmt(g['gamma'], 0, dollars=True)}  "
            f"vega {theme.fmt(g['vega'], 0, dollars=True)}  theta {theme.fmt(g['theta'], 0, dollars=True)}"
            f"  per package")
        b = n.bounds
        loss = "unlimited" if math.isinf(b.max_loss) else theme.fmt(b.max_loss * qty, 0, dollars=True)
        gain = "unlimited" if math.isinf(b.max_gain) else theme.fmt(b.max_gain * qty, 0, dollars=True)
        exact = "" if b.exact else "  (later short leg's time value not counted)"
        self.values["At expiry"].setText(f"max loss {loss} · max gain {gain}  for {side} {qty} at "
                                         f"{theme.fmt(limit)} pts{exact}")
        self._draw_payoff(combo, Side(side), qty, limit)
        self._fill_leg_numbers(lines)
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
        forwards, maturities, vols = self._today_inputs(combo)
        self.payoff = p = ct.payoff(combo, side, qty, limit, spot, forwards, maturities, vols)
        self.expiry_curve.setData(p.levels, p.at_expiry)
        self.today_curve.setData(p.levels, np.where(np.isfinite(p.today), p.today, np.nan),
                                 connect="finite")
        self.spot_line.setValue(spot)

    def _show_legs(self) -> None:
        self.leg_table.setRowCount(len(self.legs))
        for i, leg in enumerate(self.legs):
            side = QTableWidgetItem(leg.side.value)
            side.setForeground(QColor(theme.POSITIVE if leg.side is Side.BUY else theme.NEGATIVE))
            self.leg_table.setItem(i, 0, QTableWidgetItem(leg.contract.description))
            self.leg_table.setItem(i, 1, side)
            self.leg_table.setItem(i, 2, QTableWidgetItem(str(leg.ratio)))

    def _fill_leg_numbers(self, lines: list[ct.LegLine]) -> None:
        for i, line in enumerate(lines):
            w = line.leg.weight
            cells = [theme.fmt(line.bid), theme.fmt(line.ask), theme.fmt(line.mid), theme.fmt(100 * line.iv, 1),
                     theme.fmt(w * line.greeks["delta"], 0, dollars=True),
                     theme.fmt(w * line.greeks["vega"], 0, dollars=True),
                     theme.fmt(w * line.greeks["theta"], 0, dollars=True)]
            for j, text in enumerate(cells, start=3):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.leg_table.setItem(i, j, item)
        self.leg_table.resizeColumnsToContents()

    def _checked(self, decision: RiskDecision) -> None:
        self.decision = decision
        self._show_verdict(decision)

    def _show_verdict(self, decision: RiskDecision | None, message: str = "") -> bool:
        why = message or denial(decision)
        ok = decision is not None and decision.approved and not message
        self.verdict.setObjectName("approved" if ok else "denied")
        margin = f"   margin {theme.fmt(decision.margin, 0, dollars=True)}" if decision is not None else ""
        self.verdict.setText(f"✔ passes every pre-trade check{margin}" if ok else f"✖ DENIED — {why}")
        self.verdict.setStyleSheet(f"color: {theme.POSITIVE if ok else theme.NEGATIVE}; font-weight: bold")
        show_checks(self.checks, decision)
        self.send.setEnabled(ok)
        return ok

    # ------------------------------------------------------------------------------------- sending
    def submit(self) -> None:
        if self.combo is None:
            return
        side, qty, limit = self.order_args()
        self.send.setEnabled(False)
        self.bridge.command(SendCombo(self.combo, side, qty, limit), on_done=self._sent,
                            on_error=self._send_failed)

    def _sent(self, result: RiskDecision | str) -> None:
        self.result = result
        side, qty, limit = self.order_args()
        if isinstance(result, str):
            self._send_failed(result)
            return
        if result.approved:
            self.message.setStyleSheet(f"color: {theme.POSITIVE}")
            self.message.setText(f"Sent {result.client_order_id}: {side} {qty} {self.combo.description} "
                                 f"at {theme.fmt(limit)} pts")
        else:
            self.message.setStyleSheet(f"color: {theme.NEGATIVE}")
            self.message.setText(f"Not sent ({result.client_order_id} denied): {denial(result)}")
            self._show_verdict(result)
        self._schedule()

    def _send_failed(self, message: str) -> None:
        self.message.setStyleSheet(f"color: {theme.NEGATIVE}")
        self.message.setText(f"Not sent: {message}")

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
