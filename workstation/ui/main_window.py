"""The main window: one QDockWidget per panel, View menu, saved layout, status bar, shortcuts."""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMessageBox, QSystemTrayIcon, QWidget

from .. import LAUNCHED
from . import market_time, theme
from .bridge import Bridge
from .gl import grab_with_gl
from .panels.alerts import AlertsPanel
from .status_line import StatusLine
from .panels.base import DockFrame
from .panels.calibration import CalibrationPanel
from .panels.chain_board import ChainBoardPanel
from .panels.log import LogPanel
from .panels.mispricings import MispricingsPanel
from .panels.orders import OrdersPanel
from .panels.positions import PositionsPanel
from .panels.realised import RealisedPanel
from .panels.risk import RiskPanel
from .panels.surface import SurfacePanel
from .panels.vol_metrics import VolMetricsPanel
from .panels.vol_risk import VolRiskPanel

log = logging.getLogger(__name__)

LAYOUT_VERSION = 1


class LagMonitor:
    """Event-loop lag: how late a 50 ms timer fires. The worst and p99 feed the status bar and benchmark."""

    INTERVAL_MS = 50

    def __init__(self, parent: QWidget) -> None:
        self.samples: deque[float] = deque(maxlen=20_000)
        self._last = time.perf_counter()
        self._timer = QTimer(parent)
        self._timer.setTimerType(Qt.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._timer.start(self.INTERVAL_MS)

    def _tick(self) -> None:
        now = time.perf_counter()
        elapsed, self._last = (now - self._last) * 1e3, now
        self.samples.append(max(0.0, elapsed - self.INTERVAL_MS))

    def recent_worst(self, n: int = 40) -> float:
        recent = list(self.samples)[-n:]
        return max(recent) if recent else 0.0


class MainWindow(QMainWindow):
    """Panels in docks around no central widget; everything the engine says arrives through `bridge`."""

    closed = Signal()

    def __init__(self, engine: Any, settings: Any, store: QSettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.settings = settings
        self.store = store or QSettings("heston-workstation", "workstation")
        self.setWindowTitle("Heston Workstation")
        self.setWindowIcon(theme.icon("app"))
        self.resize(1680, 1000)
        self.setDockNestingEnabled(True)
        self.setDockOptions(QMainWindow.AnimatedDocks | QMainWindow.AllowNestedDocks | QMainWindow.AllowTabbedDocks)
        self.bridge = Bridge(engine, self)
        if engine is not None and callable(getattr(engine, "clock", None)):
            market_time.set_clock(engine.clock)         # ages and the status-bar clock run on market time

        ui = settings.ui
        self.surface = SurfacePanel(self.bridge, ui.opengl)
        self.mispricings = MispricingsPanel(self.bridge)
        self.positions = PositionsPanel(self.bridge)
        self.risk = RiskPanel(self.bridge)
        self.alerts = AlertsPanel(self.bridge, settings.alerts.tray_min_severity)
        self.orders = OrdersPanel(self.bridge)
        self.calibration = CalibrationPanel(self.bridge)
        self.log_panel = LogPanel(self.bridge)
        self.chain = ChainBoardPanel(self.bridge)
        self.skew = VolMetricsPanel(self.bridge)
        self.realised = RealisedPanel(self.bridge)
        self.volrisk = VolRiskPanel(self.bridge)
        self.panels = [self.surface, self.mispricings, self.orders, self.positions, self.risk, self.alerts,
                       self.calibration, self.log_panel, self.chain, self.skew, self.realised, self.volrisk]
        self.chain.trade.connect(self.ticket_for)
        self.chain.add_leg.connect(self.add_to_combo)
        self.combo_ticket = None
        self.docks: dict[str, QDockWidget] = {}
        for panel in self.panels:
            dock = QDockWidget(panel.title, self)
            dock.setObjectName(f"{panel.name}Dock")
            dock.setWidget(DockFrame(panel))
            dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable
                             | QDockWidget.DockWidgetClosable)
            self.docks[panel.name] = dock
        self._default_layout()
        self._default_state = self.saveState(LAYOUT_VERSION)
        self._build_menus()
        self.status_line = StatusLine(self, self.bridge, self.settings)
        self._build_tray()
        self.alerts.notify.connect(self.notify)
        self.mispricings.package_requested.connect(self.trade_package)

        self.lag = LagMonitor(self)
        self.first_surface_s: float | None = None   # seconds from launch to the first populated surface
        self._next_panel = 0
        self._render_ms: dict[str, float] = {}    # what each panel's last redraws cost (decaying maximum), ms
        self.refresh = QTimer(self)
        self.refresh.timeout.connect(self.flush_some)
        self.refresh.start(max(20, ui.refresh_ms // 4))
        self.bridge.settings.connect(self._on_settings)
        self.restore_layout()
        self.banner = QLabel("")            # TWS unreachable at start: one red line while we retry
        self.banner.setStyleSheet(f"background: {theme.NEGATIVE}; color: white; font-weight: bold; padding: 4px;")
        self.banner_bar = self.addToolBar("Connection")
        self.banner_bar.setObjectName("connectionBanner")
        self.banner_bar.setMovable(False)
        self.banner_bar.addWidget(self.banner)
        self.banner.setVisible(True)
        self.banner_bar.setVisible(False)
        if engine is not None and getattr(engine, "bus", None) is not None:
            self.bridge.attach(engine.bus)
            self.bridge.replay_state()
        else:
            self.status_line.connection.setText("NO ENGINE")
            log.warning("no engine: the window shows no data")

    # ------------------------------------------------------------------------------------ layout
    def _default_layout(self) -> None:
        d = self.docks
        for dock in d.values():
            dock.setFloating(False)
            dock.show()
        self.addDockWidget(Qt.LeftDockWidgetArea, d["surface"])
        self.addDockWidget(Qt.RightDockWidgetArea, d["mispricings"])
        self.splitDockWidget(d["mispricings"], d["risk"], Qt.Horizontal)
        self.splitDockWidget(d["surface"], d["calibration"], Qt.Vertical)
        self.tabifyDockWidget(d["calibration"], d["log"])
        self.tabifyDockWidget(d["calibration"], d["skew"])           # the vol views sit behind existing tabs
        self.tabifyDockWidget(d["calibration"], d["realised"])
        self.splitDockWidget(d["mispricings"], d["orders"], Qt.Vertical)
        self.splitDockWidget(d["orders"], d["positions"], Qt.Vertical)
        self.splitDockWidget(d["risk"], d["alerts"], Qt.Vertical)
        self.tabifyDockWidget(d["mispricings"], d["chain"])
        self.tabifyDockWidget(d["risk"], d["volrisk"])
        for name in ("calibration", "mispricings", "risk"):
            d[name].raise_()
        self.resizeDocks([d["surface"], d["mispricings"], d["risk"]], [560, 700, 420], Qt.Horizontal)
        self.resizeDocks([d["surface"], d["calibration"]], [560, 370], Qt.Vertical)
        self.resizeDocks([d["mispricings"], d["orders"], d["positions"]], [430, 330, 170], Qt.Vertical)   # signals first
        self.resizeDocks([d["risk"], d["alerts"]], [600, 330], Qt.Vertical)

    def save_layout(self) -> None:
        self.store.setValue("window/geometry", self.saveGeometry())
        self.store.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.store.sync()

    def restore_layout(self) -> bool:
        geometry, state = self.store.value("window/geometry"), self.store.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            return bool(self.restoreState(state, LAYOUT_VERSION))
        return False

    def floating_docks(self) -> list[QDockWidget]:
        return [d for d in self.docks.values() if d.isFloating() and d.isVisible()]

    def raise_floating(self) -> list[QDockWidget]:
        """Floated panels in front of the main window (after a restart they would come back behind it)."""
        docks = self.floating_docks()
        for dock in docks:
            dock.raise_()
        return docks

    def showEvent(self, event) -> None:
        super().showEvent(event)
        QTimer.singleShot(0, self.raise_floating)       # once the main window itself is up
    def reset_layout(self) -> None:
        for dock in self.docks.values():
            dock.setFloating(False)
        self.restoreState(self._default_state, LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.show()
        self.store.remove("window/state")

    # ------------------------------------------------------------------------------------- menus
    def _action(self, menu, text: str, slot, shortcut: str | None = None, icon: str | None = None,
                tip: str = "") -> QAction:
        action = QAction(theme.icon(icon) if icon else theme.icon(""), text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ApplicationShortcut)
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "Settings…", self.open_settings, "Ctrl+,", "settings")
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, "Ctrl+Q")
        trading = bar.addMenu("&Trading")
        self.approve_action = self._action(trading, "Approve signal", self.mispricings.approve_selected, "A",
                                           "approve", "Approve the selected signal (what-if first)")
        self.reject_action = self._action(trading, "Reject signal", self.mispricings.reject_selected, "R", "reject")
        self.ticket_action = self._action(trading, "New order ticket", self.new_order_ticket, "Ctrl+N", "send")
        self.combo_action = self._action(trading, "Combo ticket", self.open_combo_ticket, "Ctrl+Shift+N", "send",
                                         "A structure from a template or legs from the chain board (+ / −)")
        trading.addSeparator()
        self.kill_action = self._action(trading, "KILL SWITCH", self.risk.kill_switch, "Ctrl+K", "kill",
                                        "Cancel every working order and halt trading")
        self._action(trading, "Resume trading…", self.risk.resume_trading)
        trading.addSeparator()
        self._action(trading, "Live trading confirmation…", self.open_live_guard, icon="live")
        view = bar.addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        self._action(view, "Reset layout", self.reset_layout)
        tools = bar.addMenu("T&ools")
        self._action(tools, "Backtest…", self.open_backtest, icon="backtest")
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "The window", self.show_window_help, "F1")
        self._action(help_menu, "Keyboard shortcuts", self.show_shortcuts)
        help_menu.addSeparator()
        self._action(help_menu, "About Heston Workstation", self.show_about)

    def show_window_help(self) -> None:
        """The README's "The window" section, in the app."""
        from .dialogs.help import HelpDialog, readme_section

        self.help_dialog = HelpDialog("The window", readme_section("The window"), self)
        self.help_dialog.show()

    def show_shortcuts(self) -> None:
        from .dialogs.help import HelpDialog, shortcuts_markdown

        self.help_dialog = HelpDialog("Keyboard shortcuts", shortcuts_markdown(self.actions()), self)
        self.help_dialog.show()

    def show_about(self) -> None:
        from .dialogs.help import about_text

        QMessageBox.about(self, "About Heston Workstation", about_text())

    def new_order_ticket(self) -> None:
        dock = self.docks["orders"]
        dock.show()
        dock.raise_()
        self.orders.focus_ticket()

    def ticket_for(self, expiry: str, strike: float, right: str, side: str) -> None:
        """The order ticket on a contract picked on the chain board, side set, focused."""
        self.orders.select_contract(expiry, strike, right)
        self.orders.side.setCurrentText(side)
        self.new_order_ticket()

    def open_combo_ticket(self):
        """The combo ticket (one per window, non-modal), shown and raised."""
        from .dialogs.combo_ticket import ComboTicket

        if self.combo_ticket is None:
            self.combo_ticket = ComboTicket(self.bridge, self)
        self.combo_ticket.show()
        self.combo_ticket.raise_()
        return self.combo_ticket

    def trade_package(self, found) -> None:
        """A static arbitrage, or a signal's proposed structure, from the Mispricings panel as a ready package in
        the combo ticket (a signal's package, sent unchanged, orders the signal)."""
        structure = getattr(found, "structure", None)
        if structure is not None:
            self.open_combo_ticket().load(structure.combo, structure.side, structure.limit_price,
                                          max(structure.quantity, 1), found.signal_id)
        else:
            self.open_combo_ticket().load(found.combo, found.side, found.limit_price)

    def add_to_combo(self, contract_id: int, side: str) -> None:
        """A contract picked on the chain board ('add to combo'), one more on `side`, in the combo ticket."""
        contract = self.bridge.contract_by_id(contract_id)
        if contract is not None:
            self.open_combo_ticket().add_contract(contract, side)

    def open_settings(self) -> None:
        from .dialogs.settings import SettingsDialog

        current = self.bridge.current_settings(self.settings)
        self.settings_dialog = SettingsDialog(current, self.bridge, self)
        self.settings_dialog.open()

    def open_live_guard(self) -> None:
        from .dialogs.live_guard import LiveGuardDialog

        self.live_guard = LiveGuardDialog(self.bridge.current_settings(self.settings), self.bridge, self)
        self.live_guard.open()

    def open_backtest(self) -> None:
        """The Backtest window (workstation.ui.dialogs.backtest), on a copy of the current settings."""
        from .dialogs.backtest import BacktestDialog

        self.backtest_dialog = BacktestDialog(self.bridge.current_settings(self.settings), self)
        self.backtest_dialog.show()

    def show_banner(self, text: str) -> None:
        """A red line above the panels (TWS unreachable, retrying); empty text hides it."""
        self.banner.setText(text)
        self.banner_bar.setVisible(bool(text))

    def _on_settings(self, settings) -> None:
        self.settings = settings
        self.status_line.settings = settings
        self.refresh.setInterval(max(20, settings.ui.refresh_ms // 4))

    FRAME_BUDGET_MS = 12.0

    def flush_some(self) -> None:
        """Refresh tick (4 per ui.refresh_ms): dirty panels redraw round-robin while the frame budget lasts, so
        one tick never holds the event loop for all panels at once, whatever the event rate. After the first
        redraw of a tick, a dirty panel whose last redraw would overrun the budget waits: it is the first of the
        next tick."""
        start = time.perf_counter()
        redrawn = False
        for _ in range(len(self.panels)):
            panel = self.panels[self._next_panel]
            spent = (time.perf_counter() - start) * 1e3
            if redrawn and panel.dirty and spent + self._render_ms.get(panel.name, 0.0) > self.FRAME_BUDGET_MS:
                break
            self._next_panel = (self._next_panel + 1) % len(self.panels)
            began = time.perf_counter()
            if panel.flush():
                redrawn = True
                took = (time.perf_counter() - began) * 1e3
                self._render_ms[panel.name] = max(took, 0.7 * self._render_ms.get(panel.name, 0.0))
        self.status_line.show_lag(self.lag.recent_worst())
        self._note_first_surface()

    def flush(self) -> None:
        """Redraw every dirty panel now (screenshots, tests)."""
        for panel in self.panels:
            panel.flush()
        self.status_line.show_lag(self.lag.recent_worst())
        self._note_first_surface()

    def _note_first_surface(self) -> None:
        """Log once how long the launch took to a populated surface (the first impression, issue 23's 3 s)."""
        if self.first_surface_s is None and self.surface.view is not None and self.surface.view.series:
            self.first_surface_s = time.monotonic() - LAUNCHED
            log.info("first surface on screen %.2f s after launch (%d expiries)", self.first_surface_s,
                     len(self.surface.view.series))

    # --------------------------------------------------------------------------------- tray etc.
    def _build_tray(self) -> None:
        self.tray = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(theme.icon("app"), self)
            self.tray.setToolTip("Heston Workstation")
            self.tray.show()

    def notify(self, title: str, message: str, severity: int) -> None:
        """A desktop notification when a tray exists; the status bar otherwise."""
        if self.tray is not None:
            self.tray.showMessage(title, message, QSystemTrayIcon.Critical if severity >= 40
                                  else QSystemTrayIcon.Warning)
        self.statusBar().showMessage(f"{title}: {message}", 15_000)

    def save_screenshot(self, path) -> bool:
        """PNG of the whole window (docks, status bar, 3-D view included)."""
        self.flush()
        return self.grab_image(self).save(str(path), "PNG")

    def grab_image(self, widget):
        """A picture of `widget` as the trader sees it, the native 3-D view included."""
        gl_views = [(self.surface.gl_container, self.surface.gl_view)] if self.surface.gl_view is not None else []
        return grab_with_gl(widget, gl_views)

    def restart(self) -> None:
        """Close the window and start the workstation again (a connection change): the engine stops cleanly
        first; the new process reads the saved settings, recovers from the journal and reconciles."""
        self.restart_requested = True
        self.close()

    def closeEvent(self, event) -> None:
        self.save_layout()
        self.refresh.stop()
        self.bridge.detach()
        self.log_panel.detach()
        self.surface.release_gl()
        if self.tray is not None:
            self.tray.hide()
        self.closed.emit()
        super().closeEvent(event)
