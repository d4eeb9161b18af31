"""The trading-state machine: ACTIVE / REDUCING / HALTED, set by holds that each carry a reason.

The state is the most severe of the active holds (none = ACTIVE), so causes never mask each other:
lifting a kill switch leaves a daily-loss halt in place. Who may lift a hold is fixed when it is placed:
  MANUAL      kill switch, manual halt: only the trader (`resume`)
  NEXT_DAY    daily loss: the next trading day (`new_trading_day`) or the trader with override=True
  WHEN_CLEAR  Greek/VaR limit, disconnect: the system once the cause is gone (`release`), or the trader
The system only escalates or releases WHEN_CLEAR holds; every change is recorded with its reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum

from workstation.domain import TradingState
from workstation.portfolio.book import trading_day_of

SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
KILL_SWITCH = "KILL_SWITCH"
MANUAL_HALT = "MANUAL_HALT"


class Lift(str, Enum):
    """Who may lift a hold."""

    MANUAL = "manual"
    NEXT_DAY = "next_day"
    WHEN_CLEAR = "when_clear"


@dataclass(frozen=True, slots=True)
class Hold:
    """One reason the engine is not fully ACTIVE."""

    code: str
    state: TradingState
    reason: str
    since: datetime
    lift: Lift
    by: str = "system"


@dataclass(frozen=True, slots=True)
class StateChange:
    """A transition of the trading state (published on the bus, journaled, alerted)."""

    previous: TradingState
    state: TradingState
    code: str
    reason: str
    by: str
    at: datetime

    def as_dict(self) -> dict:
        return {"previous": self.previous.value, "state": self.state.value, "code": self.code,
                "reason": self.reason, "by": self.by, "at": self.at.isoformat()}


class TradingStateMachine:
    """Holds by code; `state` is the most severe. Methods return the StateChange they caused, or None."""

    def __init__(self) -> None:
        self._holds: dict[str, Hold] = {}
        self.history: list[StateChange] = []

    @property
    def state(self) -> TradingState:
        return max((h.state for h in self._holds.values()), key=SEVERITY.__getitem__, default=TradingState.ACTIVE)

    @property
    def holds(self) -> dict[str, Hold]:
        return dict(self._holds)

    @property
    def reason(self) -> str:
        """The reason of the hold that sets the current state ('' when ACTIVE)."""
        top = [h for h in self._holds.values() if h.state is self.state]
        return top[0].reason if top else ""

    def _change(self, before: TradingState, code: str, reason: str, by: str, at: datetime) -> StateChange | None:
        if self.state is before:
            return None
        change = StateChange(before, self.state, code, reason, by, at)
        self.history.append(change)
        return change

    def hold(self, code: str, state: TradingState | str, reason: str, at: datetime,
             lift: Lift = Lift.MANUAL, by: str = "system") -> StateChange | None:
        """Place (or tighten) a hold; a hold never loosens here, and ACTIVE is not a hold."""
        state = TradingState(state)
        if state is TradingState.ACTIVE:
            return None
        before = self.state
        old = self._holds.get(code)
        if old is None or SEVERITY[state] > SEVERITY[old.state]:
            self._holds[code] = Hold(code, state, reason, at, Lift(lift), by)
        return self._change(before, code, reason, by, at)

    def kill_switch(self, at: datetime, by: str = "trader", reason: str = "kill switch") -> StateChange | None:
        """HALTED until the trader resumes (the engine also cancels every working order)."""
        return self.hold(KILL_SWITCH, TradingState.HALTED, reason, at, Lift.MANUAL, by)

    def release(self, code: str, at: datetime, by: str = "system", reason: str = "") -> StateChange | None:
        """The system lifts a WHEN_CLEAR hold whose cause is gone; other holds are left alone."""
        hold = self._holds.get(code)
        if hold is None or hold.lift is not Lift.WHEN_CLEAR:
            return None
        before = self.state
        del self._holds[code]
        return self._change(before, code, reason or f"{code} cleared", by, at)

    def may_resume(self, override: bool = False) -> bool:
        """True when `resume` would lift every hold (NEXT_DAY holds need override)."""
        return override or all(h.lift is not Lift.NEXT_DAY for h in self._holds.values())

    def resume(self, at: datetime, by: str = "trader", override: bool = False,
               reason: str = "manual resume") -> StateChange | None:
        """The trader lifts every MANUAL and WHEN_CLEAR hold, and NEXT_DAY holds only with `override`."""
        before = self.state
        self._holds = {c: h for c, h in self._holds.items() if h.lift is Lift.NEXT_DAY and not override}
        return self._change(before, "RESUME" if not override else "OVERRIDE", reason, by, at)

    def new_trading_day(self, day: date, at: datetime) -> StateChange | None:
        """Drop NEXT_DAY holds placed on an earlier trading day (New York date of `since`)."""
        before = self.state
        self._holds = {c: h for c, h in self._holds.items()
                       if not (h.lift is Lift.NEXT_DAY and trading_day_of(h.since) < day)}
        return self._change(before, "NEW_DAY", f"new trading day {day}", "system", at)
