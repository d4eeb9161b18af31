"""The exchange calendar as a trader meets it: no expiry on a holiday, early closes end the session and the
options' trading at 13:00/13:15 ET, AM/PM settlement instants, daylight-saving switches, the default day."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from workstation.config import RiskConfig, SimulatorConfig
from workstation.domain import ChainSnapshot, Contract, Order, OrderPurpose, Side
from workstation.domain import calendar
from workstation.domain.calendar import NEW_YORK, settlement_instant
from workstation.risk import ContractMarket, RiskCode, RiskContext, check, hours
from workstation.sim.clock import SimClock, is_session_open
from workstation.sim.listing import build_listing, pm_expiries, spx_monthlies

HOLIDAYS = (date(2026, 12, 25), date(2027, 1, 1), date(2026, 11, 26), date(2027, 1, 18), date(2026, 4, 3))
EARLY = (date(2026, 11, 27), date(2026, 12, 24))


def ny(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=NEW_YORK)


def option(expiry: date, am: bool = False, cid: int = 1) -> Contract:
    return Contract(cid, "SPX", trading_class="SPX" if am else "SPXW", expiry=expiry, strike=6000.0, right="P",
                    settlement="AM" if am else "PM")


@pytest.mark.parametrize("day", HOLIDAYS, ids=str)
def test_holidays_are_not_trading_days(day):
    assert day.weekday() < 5 and calendar.is_holiday(day) and not calendar.is_trading_day(day)


def test_early_closes_are_13_00_and_options_trade_to_13_15():
    for day in EARLY:
        assert calendar.is_early_close(day)
        assert calendar.close_time(day).strftime("%H:%M") == "13:00"
        assert calendar.options_close_time(day).strftime("%H:%M") == "13:15"
    assert calendar.close_time(date(2026, 12, 31)).strftime("%H:%M") == "16:00"      # New Year's Eve: full day


def test_no_expiry_is_listed_on_a_holiday():
    """The simulator's whole listing (SPX, SPXW, XSP) over the year-end holidays and a Good Friday."""
    for trade_date in (date(2026, 12, 18), date(2026, 12, 24), date(2026, 12, 31), date(2026, 3, 20)):
        lst = build_listing(trade_date, 5900.0, 400, ("SPX", "XSP"))
        listed = {d for d in np.unique(lst.expiry).astype(date)}
        assert not any(calendar.is_holiday(d) or d.weekday() >= 5 for d in listed), trade_date
        assert date(2026, 12, 25) not in listed and date(2027, 1, 1) not in listed


def test_a_holiday_expiry_moves_to_the_trading_day_before():
    assert spx_monthlies(date(2025, 4, 1), 30) == [date(2025, 4, 17)]                  # Good Friday 18 Apr 2025
    weekly = pm_expiries(date(2026, 12, 14), 30)
    assert date(2026, 12, 24) in weekly and date(2026, 12, 25) not in weekly          # Friday 25 Dec -> Thu 24
    assert date(2026, 12, 31) in weekly and date(2027, 1, 1) not in weekly            # Friday 1 Jan -> Thu 31


def test_settlement_instants_am_open_pm_close_and_early_close():
    assert settlement_instant(date(2026, 12, 18), True) == ny(date(2026, 12, 18), 9, 30)
    assert settlement_instant(date(2026, 12, 18), False) == ny(date(2026, 12, 18), 16, 0)
    assert settlement_instant(date(2026, 12, 24), False) == ny(date(2026, 12, 24), 13, 0)
    # across the daylight-saving switch the ET wall time stays, the UTC instant moves by an hour
    assert settlement_instant(date(2026, 10, 30), False).astimezone(timezone.utc).hour == 20
    assert settlement_instant(date(2026, 11, 2), False).astimezone(timezone.utc).hour == 21


def test_an_expirys_maturity_runs_to_09_30_am_16_00_pm_and_13_00_on_an_early_close():
    """The simulator's listing on Monday 14 Dec 2026 at 10:00 ET, one snapshot: the 18 Dec monthly AM-settled
    (SPX) and PM-settled (SPXW) on the same expiry, and the 24 Dec weekly (PM, early close). The snapshot's time to
    expiry (what the engine prices with) is counted here by hand in hours of wall time."""
    trade_date, at = date(2026, 12, 14), ny(date(2026, 12, 14), 10, 0)
    listing = build_listing(trade_date, 5900.0, 30)
    expiries = listing.expiry.astype(date)
    rows = {key: int(np.flatnonzero((expiries == day) & (listing.trading_class == cls))[0])
            for key, (day, cls) in {"am": (date(2026, 12, 18), "SPX"), "pm": (date(2026, 12, 18), "SPXW"),
                                    "early": (date(2026, 12, 24), "SPXW")}.items()}
    assert listing.am_settled[rows["am"]] and not listing.am_settled[rows["pm"]]
    pick = list(rows.values())
    cols = {name: getattr(listing, name)[pick] for name in ("contract_id", "trading_class", "expiry", "strike",
                                                            "is_call", "am_settled", "multiplier")}
    nan = np.full(len(pick), np.nan)
    snap = ChainSnapshot.from_columns(timestamp=at, underlying="SPX", underlying_price=5900.0,
                                      columns={**cols, "bid": nan, "ask": nan, "bid_size": np.zeros(len(pick)),
                                               "ask_size": np.zeros(len(pick))})
    hours_to_settle = dict(zip(rows, snap.maturity * 365 * 24))
    assert hours_to_settle["am"] == pytest.approx(4 * 24 - 0.5, abs=1e-9)    # Fri 18 Dec 09:30 ET
    assert hours_to_settle["pm"] == pytest.approx(4 * 24 + 6, abs=1e-9)      # Fri 18 Dec 16:00 ET
    assert hours_to_settle["early"] == pytest.approx(10 * 24 + 3, abs=1e-9)  # Thu 24 Dec 13:00 ET (early close)


def test_trading_hours_honour_holidays_and_early_closes():
    on_xmas_eve = option(date(2027, 1, 15))
    expiring = option(date(2026, 12, 24))
    assert hours.is_open(on_xmas_eve, ny(date(2026, 12, 24), 13, 10))        # to 13:15 on an early close
    assert not hours.is_open(on_xmas_eve, ny(date(2026, 12, 24), 13, 20))
    assert not hours.is_open(expiring, ny(date(2026, 12, 24), 13, 5))         # PM expiring: stops at 13:00
    assert hours.is_open(expiring, ny(date(2026, 12, 24), 12, 55))
    assert not hours.is_open(on_xmas_eve, ny(date(2026, 12, 25), 11, 0))      # Christmas
    assert hours.is_open(option(date(2026, 12, 18), am=True), ny(date(2026, 12, 17), 15, 0))
    assert not hours.is_open(option(date(2026, 12, 18), am=True), ny(date(2026, 12, 18), 9, 45))  # AM: gone


def test_an_order_on_an_early_close_afternoon_is_denied_trading_hours():
    at = ny(date(2026, 11, 27), 14, 0)
    contract = option(date(2026, 12, 18), cid=7)
    order = Order("o-1", contract, Side.BUY, 1, limit_price=20.0, created_at=at, purpose=OrderPurpose.SIGNAL)
    market = ContractMarket(bid=19.5, ask=20.5, model_price=20.0, underlying_price=6000.0)
    decision = check(order, RiskContext(settings=RiskConfig(), now=at, market=market))
    assert decision.reasons == [RiskCode.TRADING_HOURS]
    detail = next(r.detail for r in decision.results if r.code is RiskCode.TRADING_HOURS)
    assert "13:15" in detail and "early close" in detail
    morning = check(order, RiskContext(settings=RiskConfig(), now=ny(date(2026, 11, 27), 11, 0), market=market))
    assert morning.approved, morning.failures


def test_the_simulated_session_ends_at_an_early_close_and_skips_holidays():
    clock = SimClock.from_config(SimulatorConfig(start_date=date(2026, 12, 24)), manual=True)
    assert clock.now() == ny(date(2026, 12, 24), 9, 30)
    clock.advance(3.4 * 3600)
    assert clock.is_open()                                                    # 12:54
    clock.advance(0.2 * 3600)
    assert not clock.is_open()                                                # 13:06: closed
    # a start configured on Christmas opens on the next trading day
    xmas = SimClock.from_config(SimulatorConfig(start_date=date(2026, 12, 25)), manual=True)
    assert xmas.now() == ny(date(2026, 12, 28), 9, 30)
    assert is_session_open(ny(date(2026, 12, 25), 11), always_open=True)      # demo mode stays open


@pytest.mark.parametrize("today, expected", [
    (date(2026, 12, 6), date(2026, 12, 4)),      # Sunday -> Friday
    (date(2026, 12, 25), date(2026, 12, 24)),    # Christmas -> the early close before it
    (date(2027, 1, 3), date(2026, 12, 31)),      # Sunday after New Year -> 31 Dec
    (date(2026, 11, 26), date(2026, 11, 25)),    # Thanksgiving -> Wednesday
    (date(2026, 12, 7), date(2026, 12, 7)),      # a Monday is itself
])
def test_the_default_simulated_day_is_the_last_trading_day(today, expected):
    clock = SimClock.from_config(SimulatorConfig(), manual=True, today=today)
    assert clock.trade_date() == expected and clock.is_open()


def test_daylight_saving_switch_days_keep_the_0930_et_open():
    for day in (date(2026, 10, 30), date(2026, 11, 2), date(2027, 3, 12), date(2027, 3, 15)):
        opens, closes = calendar.session_bounds(day)
        assert opens.astimezone(NEW_YORK).strftime("%H:%M") == "09:30"
        assert closes - opens == timedelta(hours=6, minutes=30)
    assert calendar.next_open(ny(date(2026, 10, 31), 12)) == ny(date(2026, 11, 2), 9, 30)


def test_the_calendar_kept_beside_the_module_is_the_librarys_and_a_damaged_copy_is_rebuilt(tmp_path, monkeypatch):
    """Launches read the sessions from a file written once per install (building exchange-calendars' XNYS took
    ~1.5 s of every launch): what is read back is exactly the library's, and a truncated, garbled or missing
    file is rebuilt from the library, never trusted."""
    truth = calendar._library_sessions()
    kept = tmp_path / "xnys.json"
    monkeypatch.setattr(calendar, "_cache_file", lambda: kept)
    for damage in (None, "", "{not json", '{"days": [1, 2, 3], "early": []}', '{"days": "x"}'):
        if damage is None:
            kept.unlink(missing_ok=True)
        else:
            kept.write_text(damage)
        calendar._sessions.cache_clear()
        try:
            assert calendar._sessions() == truth                 # rebuilt from the library ...
            assert calendar._read_sessions(kept) == truth        # ... and kept whole for the next launch
        finally:
            calendar._sessions.cache_clear()
    assert date(2026, 12, 25) not in truth.days and date(2026, 12, 24) in truth.early
