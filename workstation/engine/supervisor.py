"""The risk supervisor: the trading state and everything that moves it, and the room the limits leave.

The monitor measures the book's Greeks every cycle and revalues it fully (stress grid, VaR) when it changed or
every `risk.var_interval_s`; breaches, failing cycles, failed journal writes, the kill switch and a new day
change the state here, each with an alert. `room()` is the one budget the limits leave for new orders: signal
sizing and exit/hedge slicing both ask it.
"""
from __future__ import annotations

import asyncio
import math
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Awaitable, Callable, NamedTuple

from .. import bus as topics
from ..bus import EventBus
from ..config import RiskConfig, Settings
from ..domain import Contract, Severity, Side, TradingState
from ..portfolio.book import Book
from ..reports import PnlExplain, RiskLimits, RiskReport
from ..risk import monitor
from ..risk.limits import order_size_cap
from ..risk.state import StateChange, TradingStateMachine
from ..strategy.surface import Surface
from .market_view import AlertSink, MarketView


class Revaluation(NamedTuple):
    """A full revaluation of the book by the risk monitor: when, of which positions, and its results."""

    at: datetime
    book: tuple                 # sorted (contract id, quantity) of the positions revalued
    stress: monitor.StressGrid
    var: monitor.VaR
    convention: str = "market"  # risk.greeks_from it was revalued under


@dataclass(frozen=True)
class Room:
    """What the limits leave for new orders at one moment: a copy, so the signal scan may use it in the worker
    thread while fills arrive on the loop."""

    limits: RiskConfig
    held: dict[int, int]             # contract id -> quantity held
    busy: frozenset[int]             # contracts with a working order
    vega_room: float                 # $ of vega the book may still add

    def for_signal(self, contract_id: int, side: Side, vega_per_contract: float) -> int:
        """Contracts a new signal may still add: position room, vega room, nothing while an order works."""
        if contract_id in self.busy:
            return 0
        have = self.held.get(contract_id, 0)
        room = self.limits.max_position - max(have * side.sign, 0)
        if side is Side.SELL and not self.limits.allow_uncovered_shorts:
            room = min(room, max(have, 0))          # only sell what we hold
        if vega_per_contract > 0:
            room = min(room, int(max(self.vega_room, 0) // vega_per_contract))
        return max(room, 0)

    def slice(self, contract: Contract, quantity: int, price: float) -> int:
        """The largest slice of `quantity` one order may carry (max quantity and premium); the rest of an exit
        or a hedge follows in later cycles, as a trader would work a large order."""
        return order_size_cap(self.limits, contract, quantity, price)


class RiskSupervisor:
    """Holds the trading state machine; the monitor, the breaches and every hold or halt go through here."""

    def __init__(self, settings: Callable[[], Settings], clock: Callable[[], datetime], book: Book,
                 market: MarketView, bus: EventBus, alert: AlertSink, executor: Executor,
                 attribution: Callable[[], dict[str, float]]) -> None:
        self._settings, self.clock, self.book, self.market = settings, clock, book, market
        self.bus, self.alert, self.executor, self.attribution = bus, alert, executor, attribution
        self.trading = TradingStateMachine()
        self.failed_cycles = 0
        self.last_risk: RiskReport | None = None
        self.revalued: Revaluation | None = None      # the last full revaluation (VaR, stress grid)
        self.revalue_now = False                      # a VaR what-if bound: revalue on the next monitor run
        self.busy = False

    @property
    def state(self) -> TradingState:
        return self.trading.state

    @property
    def var99(self) -> float:
        """The 99% VaR of the last full revaluation (NaN before the first)."""
        return self.revalued.var.var99 if self.revalued is not None else math.nan

    def room(self, working_contracts: set[int]) -> Room:
        """The room left under the limits now, given the contracts with working orders."""
        cfg = self._settings().risk
        held = {cid: p.quantity for cid, p in self.book.positions.items() if p.quantity}
        return Room(cfg, held, frozenset(working_contracts), cfg.max_vega_dollars - abs(self.book.greeks.vega))

    # ------------------------------------------------------------ state changes
    def state_changed(self, change: StateChange | None) -> None:
        if change is None:
            return
        self.alert("TRADING_STATE_CHANGED",
                   Severity.CRITICAL if change.state is TradingState.HALTED else Severity.WARNING,
                   f"{change.previous.value} -> {change.state.value}: {change.reason} ({change.by})")
        self.bus.publish(topics.TRADING_STATE, change.state)

    def hold(self, code: str, state: TradingState, reason: str) -> None:
        self.state_changed(self.trading.hold(code, state, reason, self.clock()))

    def cycle_ok(self) -> None:
        self.failed_cycles = 0

    def cycle_failed(self, exc: BaseException) -> None:
        """Count a failed cycle; `engine.max_failed_cycles` in a row HALT trading until the trader resumes (a
        cycle that keeps failing has no hedging, repricing or risk monitor behind its orders)."""
        self.failed_cycles += 1
        limit = self._settings().engine.max_failed_cycles
        if self.failed_cycles == limit:
            self.alert("CYCLES_FAILING", Severity.CRITICAL, f"{limit} cycles failed in a row (last: {exc}): "
                       "trading HALTED until you resume")
            self.hold("CYCLES_FAILING", TradingState.HALTED, f"{limit} cycles failed in a row")

    def journal_failed(self, what: str, exc: BaseException) -> None:
        """A journal write failed: nothing may trade on a record that was not kept. HALTED until resumed."""
        self.alert("JOURNAL_WRITE_FAILED", Severity.CRITICAL, f"{what} not journaled: {exc}")
        self.hold("JOURNAL_WRITE_FAILED", TradingState.HALTED, f"journal write failed ({what})")

    def kill_switch(self, by: str, cancel_all: Callable[[], Awaitable[Any]],
                    spawn: Callable[[Awaitable[Any], str], Any]) -> None:
        """Cancel every working order and HALT (only the trader can resume)."""
        self.state_changed(self.trading.kill_switch(self.clock(), by=by))
        self.alert("KILL_SWITCH", Severity.CRITICAL, f"kill switch by {by}: cancelling all working orders")
        spawn(cancel_all(), "kill switch cancel")

    def resume(self, override: bool = False) -> bool:
        change = self.trading.resume(self.clock(), by="trader", override=override)
        self.state_changed(change)
        return change is not None

    def new_day_if_needed(self, day: date, now: datetime) -> None:
        if self.book.trading_day is not None and day > self.book.trading_day:
            self.state_changed(self.trading.new_trading_day(day, now))

    # ------------------------------------------------------------ the monitor
    async def monitor(self, now: datetime, surface: Surface, params) -> None:
        """Greeks, stress grid and VaR in the worker thread; breaches change the state on the loop thread.

        Greeks are measured every cycle; the full revaluations (stress grid, VaR) when the book changed, else
        every `risk.var_interval_s` of market time (the last ones stand in between)."""
        self.busy = True
        try:
            positions = [p for p in self.book.positions.values() if p.quantity]
            fwd, df, mat, vol = self.market.position_markets(positions, surface)
            exposure = monitor.Exposure.from_positions(positions, fwd, df, mat, vol)
            cfg = self._settings().risk
            how = cfg.greeks_from
            book_key = tuple(sorted((p.contract.contract_id, p.quantity) for p in positions))
            last = self.revalued
            revalue = (last is None or last.book != book_key or cfg.var_interval_s <= 0 or self.revalue_now
                       or (now - last.at).total_seconds() >= cfg.var_interval_s or last.convention != how)
            self.revalue_now = False

            def measure():
                greeks, _ = monitor.portfolio_greeks(exposure, params, convention=how)
                if not revalue:
                    return greeks, last.stress, last.var
                return greeks, monitor.stress_grid(exposure, params, convention=how), \
                    monitor.value_at_risk(exposure, params, cfg.var_scenarios, cfg.var_seed, convention=how)

            greeks, stress, var = await asyncio.get_running_loop().run_in_executor(self.executor, measure)
            if revalue:
                self.revalued = Revaluation(now, book_key, stress, var, how)
            breaches = monitor.limit_breaches(greeks, var.var99, self.book.day_pnl, cfg)
            for change in monitor.apply_breaches(self.trading, breaches, cfg, now):
                self.state_changed(change)
            for b in breaches:
                daily = b.code.value == "DAILY_LOSS"
                self.alert("RISK_DAILY_LOSS" if daily else "RISK_LIMIT_BREACH",
                           Severity.CRITICAL if daily else Severity.ERROR, b.message)
            self.last_risk = RiskReport(
                at=now, greeks_from=how, forward=surface.snapshot.underlying_price, greeks=greeks,
                book_greeks=self.book.greeks, limits=RiskLimits.of(cfg), var95=var.var95, var99=var.var99,
                var_at=self.revalued.at, stress=stress, breaches=tuple(breaches), trading_state=self.state.value,
                day_pnl=self.book.day_pnl, attribution=PnlExplain.of(self.attribution()))
            self.bus.publish(topics.RISK, self.last_risk)
        finally:
            self.busy = False
