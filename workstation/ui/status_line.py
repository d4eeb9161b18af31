"""The status line: connection (live in red), data age and what is stale, the last fit, trading state, day P&L,
event-loop lag and the market clock in New York time ("sim ×N" when simulated) — fixed-size labels, so a new text
never re-lays out the window."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QMainWindow

from . import market_time, theme
from ..reports import BookSummary, EngineStatus
from .bridge import Bridge

CONNECTION_TEXT = {"simulated": "SIMULATED", "ib-paper": "IB PAPER", "ib-live": "● IB LIVE"}


class StatusLine:
    """The window's status bar and what it shows; listens to the bridge's status, fit, state and book."""

    def __init__(self, window: QMainWindow, bridge: Bridge, settings: Any) -> None:
        self.window, self.bridge, self.settings = window, bridge, settings
        sb = window.statusBar()
        self.connection = QLabel("SIMULATED")
        self.data_age = QLabel("data –")
        self.fit_label = QLabel("fit –")
        self.state_label = QLabel("ACTIVE")
        self.pnl_label = QLabel("day P&L –")
        self.lag_label = QLabel("lag –")
        self.market_clock = QLabel("–")
        self.market_clock.setToolTip("Market time, New York (ET); \"sim ×N\": simulated time running N times "
                                     "faster than the wall clock, never the wall clock itself")
        self.clock_label = ""             # "sim ×30", "replay", or "" for a live feed (from the engine's status)
        # fixed sizes: a label whose size can change re-lays out the main window on every new text
        widest = {self.market_clock: "Wed 30 Dec 23:59:59 ET · sim ×10,000",
                  self.connection: "● IB LIVE (disconnected)", self.data_age: "data 99,999.9s",
                  self.fit_label: "fit 00:00:00 rmse 99.99 (99,999 ms)", self.state_label: "REDUCING",
                  self.pnl_label: "day P&L -$9,999,999", self.lag_label: "lag 99,999 ms"}
        for label, text in widest.items():
            label.setFont(theme.mono_font(9))
            label.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
            metrics = label.fontMetrics()
            label.setFixedSize(metrics.horizontalAdvance(text) + 16, metrics.height() + 6)
            sb.addPermanentWidget(label)
        self.set_connection("simulated" if self.settings.market.source == "sim" else
                             ("ib-live" if self.settings.ib.live else "ib-paper"), True)
        self.on_state(self.bridge.trading_state_now())
        self.clock_timer = QTimer(window)
        self.clock_timer.timeout.connect(self.tick_clock)
        self.clock_timer.start(250)      # a simulated clock at ×30 moves 7.5 s a tick: never behind the data
        self.tick_clock()
        self.listen()

    def tick_clock(self) -> None:
        """The market clock in ET, labelled "sim ×N" when simulated (four times a second)."""
        text = f"{market_time.et(market_time.now(), '%a %d %b %H:%M:%S')} {market_time.ZONE}"
        self.market_clock.setText(f"{text} · {self.clock_label}" if self.clock_label else text)

    def set_connection(self, mode: str, connected: bool) -> None:
        text = CONNECTION_TEXT.get(mode, mode.upper())
        if not connected:
            text += " (disconnected)"
        self.connection.setText(text)
        if mode == "ib-live":
            style = f"background: {theme.LIVE}; color: white; font-weight: bold; padding: 2px 10px;"
            self.window.setWindowTitle("Heston Workstation — ● LIVE ACCOUNT")
        elif not connected:
            style = f"color: {theme.NEGATIVE}; font-weight: bold;"
        else:
            style = f"color: {theme.POSITIVE if mode == 'simulated' else theme.INFO};"
        theme.restyle(self.connection, style)

    def on_status(self, status: EngineStatus) -> None:
        self.set_connection(status.connection, status.connected)
        age, stale_parts = status.data_age_s, status.stale_data
        if age is not None:
            stale = age > self.settings.alerts.stale_data_s or bool(stale_parts)
            self.data_age.setText(f"data {age:,.1f}s" + (f" - stale: {', '.join(stale_parts)}" if stale_parts else ""))
            theme.restyle(self.data_age, f"color: {theme.NEGATIVE if stale else theme.TEXT}")
        if status.clock_label != self.clock_label:
            self.clock_label = status.clock_label
            self.tick_clock()
        self.data_age.setToolTip(f"age of the last snapshot in market time; market time "
                                 f"{market_time.et(status.sim_time, '%Y-%m-%d %H:%M:%S')} ET")

    def on_fit(self, fit) -> None:
        ok = fit.accepted and not fit.stale
        self.fit_label.setText(f"fit {market_time.et(fit.timestamp)} rmse {fit.rmse_iv:.2f} ({fit.elapsed_ms:,.0f} ms)")
        theme.restyle(self.fit_label, f"color: {theme.TEXT if ok else theme.WARNING}")

    def on_state(self, state) -> None:
        name = getattr(state, "value", str(state))
        self.state_label.setText(name)
        theme.restyle(self.state_label, f"color: {theme.STATE_COLOURS.get(name, theme.TEXT)}; font-weight: bold")

    def on_book(self, book: BookSummary) -> None:
        day = book.pnl.day
        colour = theme.signed_colour(day)
        self.pnl_label.setText(f"day P&L {theme.fmt(day, 0, dollars=True)}")
        theme.restyle(self.pnl_label, f"color: {colour.name() if colour else theme.TEXT}")

    def show_lag(self, worst: float) -> None:
        """The worst event-loop lag of the last few seconds, ms."""
        self.lag_label.setText(f"lag {worst:,.0f} ms")
        theme.restyle(self.lag_label, f"color: {theme.NEGATIVE if worst > 250 else theme.WARNING if worst > 50 else theme.TEXT}")

    def listen(self) -> None:
        self.bridge.status.connect(self.on_status)
        self.bridge.fit.connect(self.on_fit)
        self.bridge.trading_state.connect(self.on_state)
        self.bridge.book.connect(self.on_book)
