"""Shared test set-up. Qt tests run headless: QT_QPA_PLATFORM defaults to offscreen (xvfb-run sets DISPLAY
and a test may ask for xcb explicitly); tests marked `xvfb` need a real X server and skip without one.

`HESTON_TEST_AS_OF=2026-12-25T15:00` runs the whole suite as if the machine's clock said so (time-machine
moves the wall clock of this process, ticking from there; monotonic clocks are untouched). The simulated
trade date of the engine tests is pinned apart from it (`engine_support.SIM_DAY`)."""
from __future__ import annotations

import os

import pytest

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


_travel = None


def pytest_configure(config):
    global _travel
    as_of = os.environ.get("HESTON_TEST_AS_OF")
    if as_of:
        import time_machine
        from datetime import datetime
        from zoneinfo import ZoneInfo
        at = datetime.fromisoformat(as_of)
        at = at if at.tzinfo else at.replace(tzinfo=ZoneInfo("America/New_York"))
        _travel = time_machine.travel(at, tick=True)
        _travel.start()


def pytest_unconfigure(config):
    if _travel is not None:
        _travel.stop()


def pytest_report_header(config):
    as_of = os.environ.get("HESTON_TEST_AS_OF")
    return f"wall clock moved to {as_of} (HESTON_TEST_AS_OF)" if as_of else None


def pytest_collection_modifyitems(config, items):
    if os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM", "xcb") != "offscreen":
        return
    skip = pytest.mark.skip(reason="needs an X server: run under xvfb-run")
    for item in items:
        if "xvfb" in item.keywords:
            item.add_marker(skip)
