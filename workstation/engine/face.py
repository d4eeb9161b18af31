"""The engine's face: what the window, headless mode, backtests and tests read and call, each name answered by
the sub-engine that owns it (the engine core composes them; this keeps one object to drive)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..domain import ChainSnapshot, Contract, Order, OrderPurpose, Side, Signal
from ..domain.combos import Combo, ComboOrder
from ..events import OrderPreview
from ..execution.orders import OrderRecord
from ..reports import BookSummary
from ..risk.limits import RiskDecision
from ..risk.pre_trade import ContractMarket, RiskContext

if TYPE_CHECKING:       # the sub-engines the core builds (attributes of the engine)
    from .market_view import MarketView
    from .marking import Marking
    from .order_desk import OrderDesk
    from .signal_desk import SignalDesk


class EngineFace:
    """Read-only views and commands delegated to the sub-engines (built by `Engine.__init__`)."""

    market: MarketView
    marking: Marking
    desk: OrderDesk
    signal_desk: SignalDesk

    # ================================================================== commands (typed: ui/commands.py maps to these)
    def market_for(self, contract: Contract) -> ContractMarket | None:
        return self.market.market_for(contract)

    def contract_by_id(self, contract_id: int) -> Contract | None:
        return self.market.contract_by_id(contract_id)

    def risk_context(self, market: ContractMarket | None) -> RiskContext:
        return self.desk.risk_context(market)

    def build_order(self, contract: Contract, side: Side, quantity: int, limit_price: float | None,
                    purpose: OrderPurpose, signal_id: str | None = None, preview: bool = False
                    ) -> tuple[Order | None, ContractMarket | None, str]:
        return self.desk.build_order(contract, side, quantity, limit_price, purpose, signal_id, preview)

    def preview(self, order: Order, market: ContractMarket | None) -> OrderPreview:
        return self.desk.preview(order, market)

    def route(self, order: Order, market: ContractMarket | None) -> OrderPreview:
        return self.desk.route(order, market)

    def preview_order(self, contract_id: int, side: Side | str, quantity: int, limit_price: float | None,
                      preview: bool = True) -> OrderPreview:
        return self.desk.preview_order(contract_id, side, quantity, limit_price, preview)

    def submit_order(self, contract_id: int, side: Side | str, quantity: int, limit_price: float | None
                     ) -> OrderPreview:
        return self.desk.submit_order(contract_id, side, quantity, limit_price)

    def close_position(self, contract_id: int, quantity: int | None = None) -> OrderPreview:
        return self.desk.close_position(contract_id, quantity)

    def cancel_order(self, client_order_id: str) -> None:
        self.desk.cancel_order(client_order_id)

    def modify_order(self, client_order_id: str, limit_price: float | None = None, quantity: int | None = None
                     ) -> None:
        self.desk.modify_order(client_order_id, limit_price, quantity)

    def order_records(self) -> list[OrderRecord]:
        return self.desk.order_records()

    def check_combo(self, order: ComboOrder) -> RiskDecision:
        return self.desk.check_combo(order)

    def send_combo(self, combo: Combo, side: Side | str, quantity: int, limit_price: float,
                   purpose: OrderPurpose = OrderPurpose.MANUAL, signal_id: str = "") -> RiskDecision | str:
        """A combo order; with `signal_id`, the package of that open signal (which becomes ORDERED or REJECTED)."""
        if signal_id:
            return self.signal_desk.send_structure(signal_id, combo, side, quantity, limit_price)
        return self.desk.send_combo(combo, side, quantity, limit_price, purpose)

    def approve_structure(self, signal_id: str, by: str = "trader") -> RiskDecision | str:
        """Send a signal's proposed structure as it stands (its package quantity and net limit)."""
        signal = self.signal_desk.signals.get(signal_id)
        if signal is None or signal.structure is None:
            return f"signal {signal_id} has no open structure"
        st = signal.structure
        if st.quantity < 1:
            return f"no size of the package can be sent: {st.blocked or 'quantity 0'}"
        return self.signal_desk.send_structure(signal_id, st.combo, st.side, st.quantity, st.limit_price, by)

    def open_signals(self) -> list[Signal]:
        return self.signal_desk.open_signals()

    def preview_signal(self, signal_id: str, quantity: int | None = None, capped: bool = True) -> OrderPreview:
        return self.signal_desk.preview_signal(signal_id, quantity, capped)

    def approve_signal(self, signal_id: str, by: str = "trader", quantity: int | None = None) -> OrderPreview:
        return self.signal_desk.approve_signal(signal_id, by, quantity)

    def reject_signal(self, signal_id: str, reason: str = "") -> bool:
        return self.signal_desk.reject_signal(signal_id, reason)

    def book_summary(self) -> BookSummary:
        return self.marking.book_summary()

    async def reconcile(self) -> dict:
        return await self.reconciler.reconcile()

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
        return self.book_summary().to_dict()["positions"]

    def chain(self) -> ChainSnapshot | None:
        return self.market.snapshot

