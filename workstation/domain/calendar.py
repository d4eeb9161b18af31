"""The exchange calendar of SPX/SPXW/XSP options: trading days, holidays and early closes, in New York time.

Facts come from `exchange-calendars` (the NYSE calendar "XNYS", whose holidays and 13:00 early closes Cboe
follows for its index options); nothing here lists a holiday by hand. The calendar is read once per process
into plain sets, so the hot paths (the simulator's session mask, the pre-trade hours check) are set look-ups.

Cboe's rules on top of the equity session:
- SPX/XSP options trade 09:30-16:15 ET; on an early-close day until 13:15 ET;
- a PM-settled option stops at the equity close (16:00, 13:00 on an early close) on its expiry day;
- an expiry that falls on a holiday moves to the business day before (`expiry_on_or_before`).
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
OPEN = time(9, 30)
CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)
OPTIONS_EXTRA = timedelta(minutes=15)      # index options trade 15 minutes past the equity close
FIRST_YEAR, LAST_YEAR = 1990, 2060         # the span the calendar is read for


@dataclass(frozen=True)
class _Sessions:
    days: frozenset[date]                  # every trading day
    early: frozenset[date]                 # trading days that close at 13:00 ET


@lru_cache(maxsize=1)
def _sessions() -> _Sessions:
    """The sessions, from the library's calendar once per install: building it (and importing pandas for it)
    took ~1.5 s of every launch, so its two sets are kept beside this module, named by the library's version and
    the span, and read back in milliseconds. A missing, unreadable or damaged file is rebuilt from the library."""
    path = _cache_file()
    cached = _read_sessions(path)
    if cached is not None:
        return cached
    sessions = _library_sessions()
    _write_sessions(path, sessions)
    return sessions


def _library_sessions() -> _Sessions:
    import exchange_calendars as xcals      # imported on first use: it brings pandas along
    with warnings.catch_warnings():         # pandas deprecation chatter inside the library
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar("XNYS", start=f"{FIRST_YEAR}-01-01", end=f"{LAST_YEAR}-12-31")
    days = frozenset(d.date() for d in cal.sessions)
    early = frozenset(d.date() for d in cal.early_closes)
    return _Sessions(days, early)


def _cache_file() -> Path | None:
    """Where this install keeps the sessions (None when the library's version cannot be read)."""
    try:
        version = metadata.version("exchange-calendars")
    except metadata.PackageNotFoundError:
        return None
    return Path(__file__).resolve().parent / "__pycache__" / f"xnys-sessions-{version}-{FIRST_YEAR}-{LAST_YEAR}.json"


def _read_sessions(path: Path | None) -> _Sessions | None:
    """The sessions kept in `path`, or None when there is no sound file there."""
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
        days = frozenset(date.fromordinal(int(n)) for n in data["days"])
        early = frozenset(date.fromordinal(int(n)) for n in data["early"])
    except (OSError, ValueError, TypeError, KeyError, OverflowError):
        return None
    if len(days) < 250 * (LAST_YEAR - FIRST_YEAR) or not early <= days:
        return None                         # truncated or not a calendar
    return _Sessions(days, early)


def _write_sessions(path: Path | None, sessions: _Sessions) -> None:
    """Keep the sessions in `path` (written whole, then renamed); an unwritable place is left alone."""
    if path is None:
        return
    text = json.dumps({"days": sorted(d.toordinal() for d in sessions.days),
                       "early": sorted(d.toordinal() for d in sessions.early)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text)
        os.replace(partial, path)
    except OSError:
        pass


def _in_span(day: date) -> bool:
    return FIRST_YEAR <= day.year <= LAST_YEAR


def _check_span(day: date) -> None:
    if not _in_span(day):
        raise ValueError(f"{day} is outside the exchange calendar ({FIRST_YEAR}-{LAST_YEAR})")


def is_trading_day(day: date) -> bool:
    """True when SPX options trade on `day` (a weekday that is not an exchange holiday)."""
    _check_span(day)
    return day in _sessions().days


def is_holiday(day: date) -> bool:
    """A weekday on which the exchange is closed."""
    return day.weekday() < 5 and not is_trading_day(day)


def is_early_close(day: date) -> bool:
    """A trading day whose equity session ends at 13:00 ET (day after Thanksgiving, Christmas Eve, ...)."""
    return day in _sessions().early


def close_time(day: date) -> time:
    """Local (ET) equity close of a trading day: 16:00, or 13:00 on an early close."""
    return EARLY_CLOSE if is_early_close(day) else CLOSE


def options_close_time(day: date) -> time:
    """Local (ET) close of SPX/XSP options that do not expire that day: 16:15, or 13:15 on an early close."""
    return (datetime.combine(day, close_time(day)) + OPTIONS_EXTRA).time()


def on_or_before(day: date) -> date:
    """`day` when it is a trading day, else the trading day before it."""
    while not is_trading_day(day):
        day -= timedelta(days=1)
    return day


def previous_trading_day(day: date) -> date:
    """The trading day strictly before `day`."""
    return on_or_before(day - timedelta(days=1))


def next_trading_day(day: date) -> date:
    """The trading day strictly after `day`."""
    day += timedelta(days=1)
    while not is_trading_day(day):
        day += timedelta(days=1)
    return day


def expiry_on_or_before(day: date) -> date:
    """Cboe's expiry for a nominal expiry date: moved to the business day before when it is a holiday."""
    return on_or_before(day)


def settlement_instant(expiry: date, am_settled: bool) -> datetime:
    """UTC instant an option expiring on `expiry` settles: the 09:30 ET open (AM, SPX monthlies) or the close
    (PM: 16:00 ET, 13:00 on an early-close day)."""
    at = OPEN if am_settled else (close_time(expiry) if _in_span(expiry) and is_trading_day(expiry) else CLOSE)
    return datetime.combine(expiry, at, tzinfo=NEW_YORK).astimezone(timezone.utc)


def session_bounds(day: date) -> tuple[datetime, datetime]:
    """UTC open (09:30 ET) and equity close (16:00, or 13:00 early) of `day`, trading day or not."""
    closes = close_time(day) if is_trading_day(day) else CLOSE
    return (datetime.combine(day, OPEN, tzinfo=NEW_YORK).astimezone(timezone.utc),
            datetime.combine(day, closes, tzinfo=NEW_YORK).astimezone(timezone.utc))


def is_session_open(at: datetime) -> bool:
    """True inside the regular equity session (09:30 to the day's close, ET) of a trading day."""
    local = at.astimezone(NEW_YORK)
    day = local.date()
    return is_trading_day(day) and OPEN <= local.time() < close_time(day)


def next_open(at: datetime) -> datetime:
    """The next session open at or after `at` (UTC)."""
    day = at.astimezone(NEW_YORK).date()
    while True:
        if is_trading_day(day):
            opens = session_bounds(day)[0]
            if opens >= at:
                return opens
        day += timedelta(days=1)

