"""The engine's face: what the window, headless mode, backtests and tests read and call, each name answered by
the sub-engine that owns it (the engine core composes them; this keeps one object to drive)."""
from __future__ import annotations

from ..domain import ChainSnapshot


class EngineFace:
    """Read-only views and commands delegated to the sub-engines (set up by `Engine.__init__`)."""

    def _commands(self) -> None:
        """The engine's commands, each answered by the sub-engine that owns it (the window calls these)."""
        desk, signals = self.desk, self.signal_desk
        self.market_for, self.contract_by_id = self.market.market_for, self.market.contract_by_id
        self.risk_context, self.build_order, self.preview, self.route = (
            desk.risk_context, desk.build_order, desk.preview, desk.route)
        self.preview_order, self.submit_order, self.close_position = (
            desk.preview_order, desk.submit_order, desk.close_position)
        self.check_combo, self.send_combo = desk.check_combo, desk.send_combo
        self.cancel_order, self.modify_order, self.order_records = (
            desk.cancel_order, desk.modify_order, desk.order_records)
        self.open_signals, self.preview_signal = signals.open_signals, signals.preview_signal
        self.approve_signal, self.reject_signal = signals.approve_signal, signals.reject_signal
        self.book_summary = self.marking.book_summary
        self.reconcile = self.reconciler.reconcile

    # ================================================================== state other parts read
    signals = property(lambda self: self.signal_desk.signals)
    trading = property(lambda self: self.supervisor.trading)
    state = property(lambda self: self.supervisor.state, doc="The trading state.")
    last_risk = property(lambda self: self.supervisor.last_risk)
    last_snapshot = property(lambda self: self.market.snapshot)
    last_surface = property(lambda self: self.market.surface)
    last_model = property(lambda self: self.market.model)
    last_fair = property(lambda self: self.market.fair)
    freshness = property(lambda self: self.market.freshness)
    last_fit = property(lambda self: self.numerics.last_fit)
    fit_history = property(lambda self: self.numerics.fit_history)
    fit_ms = property(lambda self: self.numerics.fit_ms)
    fit_rmse = property(lambda self: self.numerics.fit_rmse)
    calibrator = property(lambda self: self.numerics.calibrator)
    sanity = property(lambda self: self.numerics.sanity)
    hedger = property(lambda self: self.hedging.hedger)
    explain = property(lambda self: self.marking.explain)
    attribution_day = property(lambda self: self.marking.attribution_day,
                               doc="Today's P&L explain: delta, gamma, vega, theta, new_trades, fees, residual, day.")
    last_attribution = property(lambda self: self.marking.last_attribution)
    read_only = property(lambda self: self.desk.read_only)
    failed_cycles = property(lambda self: self.supervisor.failed_cycles)
    alert_counts = property(lambda self: self.alerts.counts)
    loop_lag_ms = property(lambda self: self.housekeeping.loop_lag_ms)
    _tasks = property(lambda self: self.tasks.running)

    @property
    def auto_execute(self) -> bool:
        return self.signal_desk.auto_execute

    @auto_execute.setter
    def auto_execute(self, on: bool) -> None:
        self.signal_desk.auto_execute = bool(on)

    def positions(self) -> list[dict]:
        return self.book_summary()["positions"]

    def chain(self) -> ChainSnapshot | None:
        return self.market.snapshot

