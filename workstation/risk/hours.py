"""Regular trading hours per contract, in New York time (exchange holidays are not modelled).

SPX, SPXW and XSP options: 09:30-16:15 ET Mon-Fri; on its expiry day a PM-settled option stops at 16:00
(an AM-settled SPX monthly stops the day before). Cboe's global trading hours (GTH) are not supported.
Index futures (ES/MES and the simulator's future): Sunday 18:00 to Friday 17:00 ET, with the daily
17:00-18:00 maintenance break. The index itself is not tradable.
"""
from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from workstation.domain import Contract, SecType, Settlement

NEW_YORK = ZoneInfo("America/New_York")
OPTIONS_OPEN = time(9, 30)
OPTIONS_CLOSE = time(16, 15)
EXPIRY_CLOSE = time(16, 0)
FUTURES_BREAK = (time(17, 0), time(18, 0))


def is_open(contract: Contract, at: datetime) -> bool:
    """True when `contract` trades in its regular session at the (timezone-aware) instant `at`."""
    local = at.astimezone(NEW_YORK)
    day, clock, weekday = local.date(), local.time(), local.weekday()   # Monday = 0
    if contract.sec_type is SecType.OPTION:
        if weekday >= 5 or contract.expiry is None or day > contract.expiry:
            return False
        if day == contract.expiry:
            if contract.settlement is Settlement.AM:
                return False
            return OPTIONS_OPEN <= clock < EXPIRY_CLOSE
        return OPTIONS_OPEN <= clock < OPTIONS_CLOSE
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


def session_label(contract: Contract) -> str:
    """The session rule applied to `contract`, for check details."""
    if contract.sec_type is SecType.OPTION:
        return "options 09:30-16:15 ET (expiry day 16:00)"
    if contract.sec_type is SecType.FUTURE:
        return "futures Sun 18:00-Fri 17:00 ET, break 17:00-18:00"
    return "not tradable"
