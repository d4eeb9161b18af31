"""Regular trading hours per contract, in New York time, with the exchange calendar's holidays and early closes.

SPX, SPXW and XSP options: 09:30-16:15 ET on trading days (13:15 on an early-close day); on its expiry day a
PM-settled option stops at the equity close (16:00, or 13:00 early); an AM-settled SPX monthly stops the day
before. Cboe's global trading hours (GTH) are not supported.
Index futures (ES/MES and the simulator's future): Sunday 18:00 to Friday 17:00 ET, with the daily
17:00-18:00 maintenance break (CME's holiday sessions are not modelled). The index itself is not tradable.
"""
from __future__ import annotations

from datetime import datetime, time

from workstation.domain import Contract, SecType, Settlement
from workstation.domain.calendar import NEW_YORK, OPEN, close_time, is_early_close, is_trading_day, \
    options_close_time

FUTURES_BREAK = (time(17, 0), time(18, 0))


def is_open(contract: Contract, at: datetime) -> bool:
    """True when `contract` trades in its regular session at the (timezone-aware) instant `at`."""
    local = at.astimezone(NEW_YORK)
    day, clock, weekday = local.date(), local.time(), local.weekday()   # Monday = 0
    if contract.sec_type is SecType.OPTION:
        if contract.expiry is None or day > contract.expiry or not is_trading_day(day):
            return False
        if day == contract.expiry:
            if contract.settlement is Settlement.AM:
                return False
            return OPEN <= clock < close_time(day)
        return OPEN <= clock < options_close_time(day)
    if contract.sec_type is SecType.FUTURE:
        if contract.expiry is not None and day > contract.expiry:
            return False
        if FUTURES_BREAK[0] <= clock < FUTURES_BREAK[1]:
            return False
        if weekday == 5:
            return False
        if weekday == 4:
            return clock < FUTURES_BREAK[0]
        if weekday == 6:
            return clock >= FUTURES_BREAK[1]
        return True
    return False


def session_label(contract: Contract, at: datetime | None = None) -> str:
    """The session rule applied to `contract` (on the day of `at`, when given), for check details."""
    if contract.sec_type is SecType.OPTION:
        if at is not None:
            day = at.astimezone(NEW_YORK).date()
            if not is_trading_day(day):
                return f"options: {day:%a %d %b %Y} is not a trading day"
            if is_early_close(day):
                return (f"options 09:30-{options_close_time(day):%H:%M} ET on the early close of {day:%d %b} "
                        f"(expiry day {close_time(day):%H:%M})")
        return "options 09:30-16:15 ET (expiry day 16:00)"
    if contract.sec_type is SecType.FUTURE:
        return "futures Sun 18:00-Fri 17:00 ET, break 17:00-18:00"
    return "not tradable"
