"""Greeks & risk: dollar Greeks against their limits, VaR, the stress grid, P&L attribution, trading
state and the KILL SWITCH."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QMessageBox, QPushButton, QSizePolicy, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from ...commands import KillSwitch, ResumeTrading
from ...reports import BookSummary, PnlExplain, RiskReport
from ...risk.monitor import StressGrid
from .. import market_time, theme
from ..bridge import Bridge

GREEKS = ("delta", "gamma", "vega", "theta")
# what each bar measures, with its unit (the row label carries the unit, the tooltip the definition)
GREEK_LABELS = {"delta": "Delta $/1%", "gamma": "Gamma $/1%", "vega": "Vega $/vol pt", "theta": "Theta $/day"}
GREEK_TIPS = {
    "delta": "delta$: P&L in $ of a 1 % move of the forward (delta × F × 1 % × multiplier × quantity), "
             "against |limit| risk.max_delta_dollars",
    "gamma": "gamma$: change of delta$ in $ for a 1 % move of the forward (gamma × (1 % F)² × multiplier × "
             "quantity), against |limit| risk.max_gamma_dollars",
    "vega": "vega$: P&L in $ of +1 vol point (0.01 of implied vol) on every option, against |limit| "
            "risk.max_vega_dollars",
    "theta": "theta$: P&L in $ of one calendar day passing, market unchanged (no limit)",
    "var99": "1-day 99 % value at risk in $ (a loss, positive), against risk.max_var_99",
}
ATTRIBUTION_NAMES = {"new_trades": "new trades", "day": "= day P&L"}
CONVENTION_TEXT = {"market": "market vol (each option's mid IV)", "model": "Heston model dynamics"}


def shock_label(shock: float, unit: str) -> str:
    """The exact shock as shown ('−7.5 %', '+10 pts', '0 %'): never rounded to a coarser grid."""
    value = round(float(shock) * (100.0 if unit == "%" else 1.0), 6)
    text = f"{value:+g}".replace("-", "−") if value else "0"
    return f"{text} {unit}"


class LimitBar(QWidget):
    """|value| as a share of its limit: green below 70 %, amber below 100 %, red at or past the limit.

    Painted here rather than a QProgressBar: QProgressBar.setValue repaints synchronously, which in a window
    with an OpenGL view costs ~3 ms a call on the loop thread; this one only schedules a repaint."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedHeight(18)
        self.setMinimumWidth(160)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)     # the bar takes the row, not the label
        self._share = 0.0
        self._colour = QColor(theme.POSITIVE)
        self._text = "–"
        self._shown: tuple | None = ()
        self.number: float | None = None        # the latest value ($, unrounded), for readers of the panel
        self.set_value(None, None)

    def value(self) -> int:
        """Share of the limit in tenths of a percent (0–1000), as the progress bar it replaces."""
        return int(round(min(self._share, 1.0) * 1000))

    def format(self) -> str:
        return self._text

    def set_value(self, value: float | None, limit: float | None) -> None:
        key = (None if value is None else round(value), limit)
        self.number = value                              # always the latest, though it may not repaint
        if key == self._shown:                           # nothing new to show (same whole dollars)
            return
        self._shown = key
        if value is None:
            self._share, self._text = 0.0, "–"
        else:
            self._share = abs(value) / limit if limit else 0.0
            self._colour = QColor(theme.POSITIVE if self._share < 0.7 else theme.WARNING if self._share < 1.0
                                  else theme.NEGATIVE)
            limit_text = f" / {theme.fmt(limit, 0, dollars=True)}  ({self._share:.0%})" if limit else ""
            self._text = f"{theme.fmt(value, 0, dollars=True)}{limit_text}"
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        rect = self.rect().adjusted(0, 0, -1, -1)
        painter.fillRect(rect, QColor(theme.BASE))
        if self._share > 0:
            filled = rect.adjusted(1, 1, 0, 0)
            filled.setWidth(max(1, int((rect.width() - 1) * min(self._share, 1.0))))
            painter.fillRect(filled, self._colour)
        painter.setPen(QColor(theme.BORDER))
        painter.drawRect(rect)
        painter.setPen(QColor(theme.TEXT))
        painter.drawText(rect, Qt.AlignCenter, self._text)
        painter.end()


class RiskPanel(QWidget):
    """Not throttled separately: risk reports arrive once per cycle."""

    title = "Greeks && risk"
    name = "risk"

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("riskPanel")
        self.bridge = bridge
        self._report: RiskReport | None = None
        self._dirty = False
        self._stress_axes: tuple = ()
        self._cells: dict = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        self.state = QLabel("ACTIVE")
        self.state.setAlignment(Qt.AlignCenter)
        self.state.setMinimumWidth(120)
        top.addWidget(self.state, 1)
        self.kill = QPushButton(theme.icon("kill"), "KILL SWITCH")
        self.kill.setObjectName("killSwitch")
        self.kill.setToolTip("Cancel every working order and halt trading (Ctrl+K)")
        self.kill.clicked.connect(self.kill_switch)
        top.addWidget(self.kill, 2)
        self.resume = QPushButton("Resume")
        self.resume.setToolTip("Return to ACTIVE after a halt")
        self.resume.clicked.connect(self.resume_trading)
        top.addWidget(self.resume)
        layout.addLayout(top)

        self.convention = QLabel("Greeks, stress and VaR at: –")
        self.convention.setStyleSheet(f"color: {theme.MUTED}")
        self.convention.setToolTip("The vol every risk number here is revalued at (risk.greeks_from): market = "
                                   "each option's own mid implied vol, shocked in parallel; model = the fitted "
                                   "Heston dynamics")
        layout.addWidget(self.convention)
        greeks = QGroupBox("Portfolio Greeks vs limits")
        grid = QGridLayout(greeks)
        self.bars: dict[str, LimitBar] = {}
        self.bar_labels: dict[str, QLabel] = {}
        for i, g in enumerate((*GREEKS, "var99")):
            self.bar_labels[g] = QLabel(GREEK_LABELS.get(g, "VaR 99 $"))
            self.bars[g] = LimitBar()
            for widget in (self.bar_labels[g], self.bars[g]):
                widget.setToolTip(GREEK_TIPS[g])
            grid.addWidget(self.bar_labels[g], i, 0)
            grid.addWidget(self.bars[g], i, 1)
        self.hedge_band = QLabel("Hedge band –")
        self.hedge_band.setToolTip("The hedger trades the future when |delta − target| leaves this band, in $ "
                                   "per index point (hedging.band_delta); delta shown in the same unit")
        grid.addWidget(self.hedge_band, len(GREEKS) + 1, 0, 1, 2)
        layout.addWidget(greeks)

        row = QHBoxLayout()
        var_box = QGroupBox("Value at risk, P&&L")
        self.var_form = QFormLayout(var_box)
        self.numbers: dict[str, QLabel] = {}
        for key in ("VaR 95", "VaR 99", "Day P&L"):
            self.numbers[key] = QLabel("–")
            self.numbers[key].setFont(theme.mono_font(10))
            self.var_form.addRow(key.replace("&", "&&"), self.numbers[key])
        row.addWidget(var_box)
        attr_box = QGroupBox("P&&L attribution (day)")
        attr_box.setToolTip("Today's P&L explained: delta, gamma, vega, theta (moves of the positions held), new "
                            "trades (edge paid or earned at each fill against the mark then), fees, and the "
                            "residual the other lines leave; they sum to the day's P&L to the cent")
        self.attr_grid = QGridLayout(attr_box)      # two columns of name/value pairs: compact
        self.attr_grid.setVerticalSpacing(2)
        self.attr: dict[str, QLabel] = {}
        self.attr_note = QLabel("waiting for the engine's attribution")
        self.attr_note.setStyleSheet(f"color: {theme.MUTED}")
        self.attr_grid.addWidget(self.attr_note, 0, 0, 1, 4)
        row.addWidget(attr_box)
        layout.addLayout(row)

        stress_box = QGroupBox("Stress P&&L, $k: forward move % (rows) × vol move, vol points (columns)")
        stress_box.setToolTip("Instant full revaluation of every position at the shocked forward and vol; "
                              "k = $1,000")
        v = QVBoxLayout(stress_box)
        self.stress = QTableWidget(0, 0)
        self.stress.setEditTriggers(QTableWidget.NoEditTriggers)
        self.stress.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.stress.verticalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.stress.verticalHeader().setMinimumSectionSize(14)       # the whole grid fits without scrolling
        self.stress.horizontalHeader().setMinimumSectionSize(40)
        self.stress.setFont(theme.mono_font(8))
        v.addWidget(self.stress)
        layout.addWidget(stress_box, 1)
        bridge.risk.connect(self._on_risk)
        bridge.trading_state.connect(self.set_state)
        bridge.book.connect(self._on_book)
        self.set_state(bridge.trading_state_now())

    # ---------------------------------------------------------------------------------- events
    def _on_risk(self, report: RiskReport) -> None:
        self._report = report
        self._dirty = True

    def _on_book(self, book: BookSummary) -> None:
        self._set_number("Day P&L", book.pnl.day, signed=True)
        self._render_attribution(book.attribution)

    @property
    def dirty(self) -> bool:
        """Something changed since the last redraw."""
        return self._dirty

    def flush(self) -> bool:
        """Redraw when something changed (hidden or not: the state box is always read); True when it did."""
        if not self._dirty:
            return False
        self._dirty = False
        self.render()
        return True

    def set_state(self, state) -> None:
        name = getattr(state, "value", str(state))
        colour = theme.STATE_COLOURS.get(name, theme.TEXT)
        self.state.setText(name)
        theme.restyle(self.state, f"color: {colour}; border: 2px solid {colour}; border-radius: 6px; "
                                 f"font-size: 14pt; font-weight: bold; padding: 6px;")
        self.resume.setEnabled(name != "ACTIVE")

    def _set_number(self, key: str, value, signed: bool = False) -> None:
        label = self.numbers[key]
        text = theme.fmt(value, 0, dollars=True)
        if label.text() == text:
            return
        label.setText(text)
        colour = theme.signed_colour(value) if signed else None
        theme.restyle(label, f"color: {colour.name()}" if colour else "")

    def render(self) -> None:
        report = self._report
        if report is None:
            return
        greeks, limits = report.greeks, report.limits
        settings = self.bridge.current_settings()
        self.convention.setText(f"Greeks, stress and VaR at: "
                                f"{CONVENTION_TEXT.get(report.greeks_from, report.greeks_from)}")
        self._render_hedge_band(report, settings)
        for g, value, limit in (("delta", greeks.delta, limits.delta), ("gamma", greeks.gamma, limits.gamma),
                                ("vega", greeks.vega, limits.vega), ("theta", greeks.theta, None)):
            self.bars[g].set_value(value, limit)
        self.bars["var99"].set_value(report.var99, limits.var99)
        self._set_number("VaR 95", report.var95)
        self._set_number("VaR 99", report.var99)
        tip = (f"Full Heston revaluation at {market_time.et(report.var_at)} ET: redone at once when the book "
               f"changes, else every risk.var_interval_s of market time")
        for widget in (self.numbers["VaR 95"], self.numbers["VaR 99"], self.bars["var99"]):
            if widget.toolTip() != tip:
                widget.setToolTip(tip)
        self._render_attribution(report.attribution)
        self._render_stress(report.stress)

    def _render_hedge_band(self, report: RiskReport, settings) -> None:
        """The hedge band and the book's delta in the band's unit, $ per index point (delta$ / (1 % F))."""
        if settings is None:
            return
        band = settings.hedging.band_delta
        text = f"Hedge band ±{theme.fmt(band, 0, dollars=True)} per index point"
        if report.forward:
            text += f"   (delta now {theme.fmt(report.greeks.delta / (0.01 * report.forward), 0, dollars=True)} per point)"
        if self.hedge_band.text() != text:
            self.hedge_band.setText(text)

    def _render_attribution(self, attribution: PnlExplain) -> None:
        self.attr_note.setVisible(False)
        for key, value in attribution.lines():
            if key not in self.attr:
                n = len(self.attr)
                self.attr[key] = QLabel()
                self.attr[key].setFont(theme.mono_font(9))
                self.attr_grid.addWidget(QLabel(ATTRIBUTION_NAMES.get(key, key)), 1 + n // 2, (n % 2) * 2)
                self.attr_grid.addWidget(self.attr[key], 1 + n // 2, (n % 2) * 2 + 1)
            colour = theme.signed_colour(value)
            self.attr[key].setText(theme.fmt(value, 0, dollars=True))
            theme.restyle(self.attr[key], f"color: {colour.name()}" if colour else "")

    def _render_stress(self, stress: StressGrid) -> None:
        """Rows: spot shocks; columns: vol shocks; cells: P&L (green gain, red loss, stronger = larger)."""
        spots, vols, pnl = stress.spot_shocks.tolist(), stress.vol_shocks.tolist(), stress.pnl.tolist()
        if not spots or not vols:
            return
        if (tuple(spots), tuple(vols)) != self._stress_axes:       # headers only when the shocks change
            self._stress_axes = (tuple(spots), tuple(vols))
            self._cells: dict = {}
            self.stress.setRowCount(len(spots))
            self.stress.setColumnCount(len(vols))
            self.stress.setVerticalHeaderLabels([shock_label(s, "%") for s in spots])
            self.stress.setHorizontalHeaderLabels([shock_label(v, "pts") for v in vols])
        flat = [abs(x) for row in pnl for x in row if x == x] or [1.0]
        scale = max(max(flat), 1.0)
        for i in range(len(spots)):
            for j in range(len(vols)):
                try:
                    value = float(pnl[i][j])
                except (IndexError, TypeError, ValueError):
                    value = float("nan")
                text = (f"{value / 1000:+,.1f}k" if round(value / 1000, 1) else "0.0k") if value == value else "–"
                alpha = int(30 + 190 * min(abs(value) / scale, 1.0)) if value == value else 0
                cell = (text, value >= 0, alpha // 8)
                if self._cells.get((i, j)) == cell:          # unchanged: no call into Qt (each one can wait
                    continue                                 # for the GIL while the engine's worker computes)
                self._cells[(i, j)] = cell
                item = self.stress.item(i, j)
                if item is None:                             # cells are reused: no allocation per update
                    item = QTableWidgetItem()
                    item.setTextAlignment(Qt.AlignCenter)
                    self.stress.setItem(i, j, item)
                item.setText(text)
                item.setToolTip(f"{theme.fmt(value, 0, dollars=True)} if the forward moves "
                                f"{shock_label(spots[i], '%')} and every option's vol moves "
                                f"{shock_label(vols[j], 'vol points')}")
                base = QColor(theme.POSITIVE if value >= 0 else theme.NEGATIVE)
                base.setAlpha(alpha)
                item.setBackground(base)

    # -------------------------------------------------------------------------------- commands
    def kill_switch(self) -> None:
        """Immediate: cancel every working order and halt. No confirmation, by design."""
        self.bridge.command(KillSwitch(), on_error=lambda m: QMessageBox.warning(self, "Kill switch", m))

    def resume_trading(self) -> None:
        answer = QMessageBox.question(self, "Resume trading", "Return to ACTIVE trading?",
                                      QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        if answer == QMessageBox.Yes:
            self.bridge.command(ResumeTrading(), on_error=lambda m: QMessageBox.warning(self, "Resume", m))
