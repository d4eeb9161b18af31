"""The simulated clock: its own date and time, running `speed` times faster than the wall clock, or driven by hand.

By default the simulated day starts at the 09:30 ET open of the configured (or the last) trading day whatever
the wall-clock time, so the market is live when someone tries the app at night. In manual mode (tests, backtests)
time moves only when the driver calls `advance`/`set` — "as fast as possible".
"""
from __future__ import annotations

import time as _time
from datetime import date, datetime, timedelta, timezone
from typing import Callable

from workstation.domain import calendar
from workstation.domain.calendar import NEW_YORK


def is_session_open(at: datetime, always_open: bool = False) -> bool:
    """True inside the regular session of a trading day (holidays and early closes from the exchange
    calendar), or always in demo mode."""
    return always_open or calendar.is_session_open(at)


def next_open_moment(at: datetime, always_open: bool = False) -> datetime:
    """`at` when the market is open then, else the next regular-session open after it."""
    return at if is_session_open(at, always_open) else calendar.next_open(at)


class SimClock:
    """Simulated time. Real-time mode: `now = start + speed * wall seconds elapsed`. Manual mode: `advance()`."""

    def __init__(self, start: datetime, speed: float = 1.0, always_open: bool = False, manual: bool = False,
                 wall: Callable[[], float] = _time.monotonic) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock start must be timezone-aware")
        if speed <= 0:
            raise ValueError(f"SimClock speed must be > 0, got {speed}")
        self.start = start.astimezone(timezone.utc)
        self.speed = float(speed)
        self.always_open = always_open
        self.manual = manual
        self._wall = wall
        self._wall0 = wall()
        self._base = self.start          # simulated time at `_wall0` (or the manual time)

    @classmethod
    def from_config(cls, cfg, manual: bool = False, today: date | None = None,
                    wall: Callable[[], float] = _time.monotonic, resume_after: datetime | None = None) -> "SimClock":
        """Build from a `SimulatorConfig`: start at the session open of `start_date` (default: the last trading
        day on or before `today`, New York date of the wall clock unless given).

        `resume_after` (the last activity of a persistent paper account) moves the start past it, so a restarted
        workstation carries on where the account stopped instead of replaying the morning again."""
        now_ny = datetime.now(NEW_YORK)
        if cfg.start == "now" and cfg.start_date is None:
            start = now_ny
        else:
            day = cfg.start_date or calendar.on_or_before(today or now_ny.date())
            start = next_open_moment(calendar.session_bounds(day)[0], cfg.always_open)   # a holiday: next open
        if resume_after is not None and resume_after >= start:
            start = next_open_moment(resume_after + timedelta(seconds=1), cfg.always_open)
        return cls(start, speed=cfg.speed, always_open=cfg.always_open, manual=manual, wall=wall)

    def now(self) -> datetime:
        """The current simulated time (UTC)."""
        if self.manual:
            return self._base
        return self._base + timedelta(seconds=(self._wall() - self._wall0) * self.speed)

    def advance(self, seconds: float) -> datetime:
        """Move simulated time forward by `seconds` (manual mode only); returns the new time."""
        if not self.manual:
            raise RuntimeError("SimClock.advance is for manual mode; a real-time clock runs by itself")
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._base = self._base + timedelta(seconds=seconds)
        return self._base

    def set_speed(self, speed: float) -> None:
        """Change the speed without a jump in simulated time."""
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self._base, self._wall0 = self.now(), self._wall()
        self.speed = float(speed)

    def is_open(self, at: datetime | None = None) -> bool:
        """Is the regular session open (always, in demo mode)?"""
        return is_session_open(at or self.now(), self.always_open)

    def trade_date(self, at: datetime | None = None) -> date:
        """New York calendar date of `at` (default now)."""
        return (at or self.now()).astimezone(NEW_YORK).date()
