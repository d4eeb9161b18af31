"""Market time on screen: every time shown in New York time ("ET"), every age counted on the market clock.

The market clock is the engine's (simulated time in the simulator, the server's time with IB), so a signal's
age or a data age never mixes the wall clock with simulated time. The window sets the source once.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from workstation.domain.calendar import NEW_YORK

ZONE = "ET"

_source: Callable[[], datetime] = lambda: datetime.now(timezone.utc)


def set_clock(source: Callable[[], datetime]) -> None:
    """Use `source` (the engine's clock) as the market clock of every panel."""
    global _source
    _source = source


def now() -> datetime:
    """The market clock now (timezone-aware)."""
    return _source()


def age_s(at: datetime | None) -> float:
    """Seconds of market time since `at` (NaN when unknown)."""
    return (now() - at).total_seconds() if at is not None else float("nan")


def et(at: datetime | None, fmt: str = "%H:%M:%S") -> str:
    """`at` as New York wall time ("" when unknown); the caller labels the column or line "ET" once."""
    return at.astimezone(NEW_YORK).strftime(fmt) if at is not None else ""
