"""Start-up: QApplication on a qasync event loop, dark theme, the engine, the main window.

`run_gui(settings, args)` is what `python main.py gui` calls. With `--screenshot FILE --after SECONDS`
it saves a PNG of the whole window after that many seconds and exits 0.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QApplication

from .collector import GuiThreadCollector
from .screenshots import save_panel_screenshots
from .theme import apply_dark_theme

log = logging.getLogger(__name__)


GIL_SWITCH_INTERVAL_S = 0.0005
GC_INTERVAL_S = 0.1          # how often the GUI thread looks for cyclic garbage (a pause scans 0.1 s of objects)
GC_GEN1_EVERY = 2            # young-generation collections between two of the middle generation
GC_GEN2_EVERY = 250          # middle-generation collections between two full ones (~75 s apart, as before)


def make_app() -> QApplication:
    """The one QApplication, themed.

    The GIL switch interval drops from 5 ms to 0.5 ms: painting calls back into Python dozens of times a frame
    (pyqtgraph items, item models), and each call waits for the GIL while the numerics thread runs Python; at
    5 ms a wait, one frame could stall the event loop for 100 ms."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Heston Workstation")
    app.setOrganizationName("heston-workstation")
    apply_dark_theme(app)
    collect_garbage_on_the_gui_thread(app)
    return app


def collect_garbage_on_the_gui_thread(app: QApplication) -> None:
    """Python's cyclic garbage collection only on the GUI thread, on a timer (`collector.GuiThreadCollector`):
    a collection that happens to run in the numerics thread may free Qt objects there, and Qt crashes (seen as
    a segfault "Garbage-collecting" in a worker while the window was up)."""
    if getattr(app, "gui_thread_gc", None) is None:
        # the middle generation every 2 young collections instead of 10: it then scans a fifth of the survivors at
        # a time (one pass over a minute's survivors held the loop 35-45 ms); the full collection stays rare, and
        # what exists at start-up (modules, classes: most of the heap) is frozen out of it
        gc.freeze()
        app.gui_thread_gc = GuiThreadCollector(GC_INTERVAL_S, GC_GEN1_EVERY, GC_GEN2_EVERY)


def release_garbage_collection(app: QApplication | None) -> None:
    """Back to Python's automatic collection (tests, after their windows are gone): what is left is collected
    here, on the GUI thread, first — a Qt object in it must not be freed later by a worker's collection."""
    collector = getattr(app, "gui_thread_gc", None)
    if collector is not None:
        collector.timer.stop()
        app.gui_thread_gc = None
    gc.unfreeze()
    gc.collect()
    gc.enable()


def create_engine(settings: Any, data_dir: Path, speed: float | None) -> Any:
    """The engine for this window (None, with a log line, while the engine module is not built yet)."""
    try:
        from ..engine import build_engine
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("workstation.engine"):
            log.error("the trading engine is not available in this build: the window shows no data")
            return None
        raise
    return build_engine(settings, data_dir, speed=speed)


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future) else value


async def run_window(window, engine, screenshot: Path | None, after: float) -> int:
    """Start the engine, wait for the window to close (or take the screenshot), stop the engine."""
    closed = asyncio.get_running_loop().create_future()
    window.closed.connect(lambda: closed.done() or closed.set_result(True))
    if engine is not None:
        from ..execution.recovery import connect_with_retry
        connecting = asyncio.ensure_future(connect_with_retry(engine.feed, engine.settings, True, window.show_banner))
        done, _ = await asyncio.wait({connecting, closed}, return_when=asyncio.FIRST_COMPLETED)
        if connecting not in done:                  # the window closed while TWS was unreachable
            connecting.cancel()
            await _maybe_await(engine.stop())
            return 0
        connecting.result()
        window.show_banner("")
        await _maybe_await(engine.start())
    code = 0
    try:
        if screenshot is not None:
            await asyncio.sleep(after)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            ok = window.save_screenshot(screenshot)
            log.info("screenshot %s %s", screenshot, "saved" if ok else "FAILED")
            panels = os.environ.get("HESTON_PANEL_SHOTS")     # hidden: every panel and dialog as well
            if panels:
                files = await save_panel_screenshots(window, Path(panels))
                log.info("%d panel screenshots in %s", len(files), panels)
            code = 0 if ok else 1
            window.close()
        else:
            await closed
    finally:
        if engine is not None:
            await _maybe_await(engine.stop())
    return code


def run_gui(settings: Any, args: Any) -> int:
    """Open the workstation window on `settings`; returns the process exit code."""
    import qasync

    from ..storage.paths import data_dir_for
    from .main_window import MainWindow

    app = make_app()
    app.setQuitOnLastWindowClosed(False)     # the coroutine ends the loop, after the engine has stopped
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    engine = create_engine(settings, data_dir_for(args), getattr(args, "speed", None))
    screenshot = Path(args.screenshot) if getattr(args, "screenshot", None) else None
    store = None
    if screenshot is not None:   # the default layout at a fixed size; the user's saved layout is left alone
        import tempfile

        from PySide6.QtCore import QSettings
        store = QSettings(str(Path(tempfile.mkdtemp(prefix="heston-shot-")) / "layout.ini"), QSettings.IniFormat)
    window = MainWindow(engine, settings, store)
    if screenshot is not None:
        window.resize(1680, 1000)
    window.show()
    gc.freeze()                  # the window, the engine and every module: kept out of later full collections
    with loop:
        code = loop.run_until_complete(run_window(window, engine, screenshot, float(getattr(args, "after", 5.0))))
    if getattr(window, "restart_requested", False):
        log.info("restarting on the new connection settings")
        os.execv(sys.executable, [sys.executable, *sys.argv])
    return code
