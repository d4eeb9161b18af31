"""The simulated trade date of the tests, and how a real CLI subprocess is told it.

Pinned, so what a test sees does not depend on the day it runs (HESTON_TEST_SIM_DAY=YYYY-MM-DD picks another).
A child process does not see the test process's clock (time-machine moves only this one), so it gets the day
through its own settings: the user overrides file under its XDG_CONFIG_HOME.
"""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from workstation.storage.paths import APP_NAME, OVERRIDES_FILE

SIM_DAY = date.fromisoformat(os.environ.get("HESTON_TEST_SIM_DAY", "2026-12-07"))


def pin_sim_day(config_home: Path, day: date = SIM_DAY, busy: bool = False) -> Path:
    """Write `market.simulator.start_date: day` to the overrides file a child run with XDG_CONFIG_HOME=`config_home`
    layers over its --config, so its simulated day is `day` whatever the machine's date; returns the file. `busy`:
    every planted mispricing in full (`mispricing_max_spreads: 100`, arbitrage included), so signals flow."""
    path = Path(config_home) / APP_NAME / OVERRIDES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    busy_line = "    mispricing_max_spreads: 100\n" if busy else ""
    path.write_text(f"market:\n  simulator:\n    start_date: {day.isoformat()}\n{busy_line}", encoding="utf-8")
    return path
