"""A simulated hour of auto-trading on the days that break calendars: the engine fits, signals, orders and
fills, nothing raises, and no option trades outside its session (early closes end at 13:00/13:15 ET).

Each day runs the real engine, simulator, paper exchange and journal on a manual clock (20-second snapshots),
so the outcome depends on the day being simulated, never on the day the suite runs."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from conftest import LONG_TIMEOUT_S
from engine_support import SimRig, fast_settings
from workstation.domain import SecType
from workstation.domain.calendar import NEW_YORK, is_trading_day, options_close_time
from workstation.risk import hours
from workstation.ui.market_time import et

HOUR_S, STEP_S = 3600.0, 20.0

# name -> (start, ET wall time; always_open demo market)
DAYS = {
    "monday": (datetime(2026, 12, 7, 10, 0), False),
    "monthly-expiry-friday": (datetime(2026, 12, 18, 11, 0), False),
    "day-after-thanksgiving": (datetime(2026, 11, 27, 12, 10), False),      # crosses the 13:00 early close
    "christmas-eve": (datetime(2026, 12, 24, 12, 10), False),              # crosses the 13:00 early close
    "new-years-eve": (datetime(2026, 12, 31, 14, 30), False),
    "dst-end-2026-11-01": (datetime(2026, 11, 1, 1, 30, fold=0), True),    # Sunday; 01:30 EDT, 02:00 EDT -> 01:00 EST
    "dst-start-2027-03-14": (datetime(2027, 3, 14, 1, 30), True),          # Sunday; 02:00 EST -> 03:00 EDT
    "saturday-demo": (datetime(2026, 12, 5, 10, 0), True),
}

# the daylight-saving days: the UTC instant of the switch (02:00 local) and the ET offset (hours) before and after
SWITCHES = {
    "dst-end-2026-11-01": (datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc), -4, -5),     # 02:00 EDT = 06:00 UTC
    "dst-start-2027-03-14": (datetime(2027, 3, 14, 7, 0, tzinfo=timezone.utc), -5, -4),   # 02:00 EST = 07:00 UTC
}


def day_settings(always_open: bool):
    s = fast_settings(signals__auto_execute=True, hedging__enabled=False)
    s.market.simulator.always_open = always_open
    s.market.simulator.mispricing_rate = 0.2          # enough planted mispricings to trade within the hour
    s.execution.aggressiveness = 1.0                  # take the far side: fills follow at once
    return s


# a simulated hour is a fixed amount of work (180 cycles, a few hundred orders), ~30 s on a quiet machine; with three
# suites and four busy loops on the two cores (load 7.5) two of them ran past pytest-timeout's 300 s at 45 and 49
# simulated minutes. The bound guards against a hang, not against a busy machine.
@pytest.mark.timeout(LONG_TIMEOUT_S)
@pytest.mark.parametrize("name", list(DAYS))
async def test_a_simulated_hour_trades_and_nothing_raises(tmp_path, name):
    local, always_open = DAYS[name]
    start = local.replace(tzinfo=NEW_YORK)
    rig = await SimRig(tmp_path, day_settings(always_open), start=start).open()
    try:
        fits = 0
        for _ in range(int(HOUR_S / STEP_S)):
            await rig.step(STEP_S)                 # any exception in a cycle fails the test here
            fits += rig.engine.last_fit is not None and rig.engine.last_fit.accepted
        assert fits > 50, f"{fits} accepted fits in an hour"
        assert rig.journal.signals(), "no signal in a simulated hour"
        orders = rig.journal.orders()
        fills = rig.journal.fills()
        assert orders and fills, f"{len(orders)} orders, {len(fills)} fills"
        for fill in fills:                          # nothing traded outside its session
            assert always_open or hours.is_open(fill.contract, fill.timestamp), fill
            if fill.contract.sec_type is SecType.OPTION and not always_open:
                local_fill = fill.timestamp.astimezone(NEW_YORK)
                assert is_trading_day(local_fill.date())
                assert local_fill.time() < options_close_time(local_fill.date())
        if name in SWITCHES:
            assert_labelled_across_the_switch(name, start, rig)
    finally:
        await rig.close()


def assert_labelled_across_the_switch(name: str, start: datetime, rig: SimRig) -> None:
    """The hour crosses the switch, the journal has market times on both sides of it, and each reads in ET with
    the offset of its side (EDT/EST by hand, not from the time-zone database)."""
    switch, before, after = SWITCHES[name]
    assert start < switch < rig.world.clock.now(), "the simulated hour does not cross the switch"
    stamps = [f.timestamp for f in rig.journal.fits(limit=10_000)] + [f.timestamp for f in rig.journal.fills()]
    assert min(stamps) < switch < max(stamps), "no journaled time on one side of the switch"
    for at in stamps:
        offset = timedelta(hours=before if at < switch else after)
        assert at.astimezone(NEW_YORK).utcoffset() == offset, at
        assert et(at) == (at.astimezone(timezone.utc) + offset).strftime("%H:%M:%S"), at
