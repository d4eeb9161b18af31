"""Shared test set-up.

- Qt tests run headless: QT_QPA_PLATFORM defaults to offscreen (xvfb-run sets DISPLAY and a test may ask for xcb
  explicitly); tests marked `xvfb` need a real X server and skip without one.
- Hypothesis is derandomised (profile "repro", the default): the examples are a function of the test, so two runs
  see the same cases. `HYPOTHESIS_PROFILE=explore` draws fresh random examples for a local hunt.
- `warm_numba` compiles the numba kernels of one engine cycle once per session, before any timed wait: with an
  empty cache the first compile takes 30+ s on a loaded two-core machine.
- `HESTON_TEST_AS_OF=2026-12-25T15:00` runs the whole suite as if the machine's clock said so (time-machine moves
  the wall clock of this process, ticking from there; monotonic clocks are untouched). The simulated trade date
  of the engine tests is pinned apart from it (`engine_support.SIM_DAY`).
"""
from __future__ import annotations

import os
import threading

import pytest
from hypothesis import settings as hypothesis_settings

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

hypothesis_settings.register_profile("repro", derandomize=True, database=None, print_blob=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repro"))


# pytest-timeout's 300 s (pyproject) guards against hangs; the test that compiles the kernels (warm_numba) and the
# slow crash loops and CLI runs get a bound a loaded machine with an empty numba cache does not reach (the compile
# took 1256 s with load average 12 on two cores)
LONG_TIMEOUT_S = 3600


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
    for item in items:
        if item.get_closest_marker("timeout") is None and (
                "warm_numba" in getattr(item, "fixturenames", ()) or item.get_closest_marker("slow")):
            item.add_marker(pytest.mark.timeout(LONG_TIMEOUT_S))
    if os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM", "xcb") != "offscreen":
        return
    skip = pytest.mark.skip(reason="needs an X server: run under xvfb-run")
    for item in items:
        if "xvfb" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def warm_numba(tmp_path_factory) -> None:
    """Run two engine cycles and the risk monitor once (surface IVs, Heston fit, Greeks, VaR), untimed.

    It runs in its own thread with its own event loop, so it leaves the test's loop (asyncio or qasync) alone."""
    import asyncio

    from engine_support import SimRig

    async def cycles() -> None:
        rig = await SimRig(tmp_path_factory.mktemp("warm")).open()
        try:
            for _ in range(2):
                await rig.step()
                await rig.engine.settle_tasks()
        finally:
            await rig.close()

    failure: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run(asyncio.run, cycles(), failure), name="warm numba")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def _run(runner, coro, failure: list) -> None:
    try:
        runner(coro)
    except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
        failure.append(exc)


@pytest.fixture(autouse=True, scope="module")
def _automatic_gc_after_gui_modules():
    """A window module hands cyclic garbage collection to the GUI thread (ui.app.make_app); the modules after it
    get Python's automatic collection back."""
    yield
    import sys
    app_module = sys.modules.get("workstation.ui.app")
    if app_module is not None:
        from PySide6.QtWidgets import QApplication
        app_module.release_garbage_collection(QApplication.instance())
