"""Screenshots of every panel, every surface view and every dialog (`gui --screenshot-panels DIR`): what a
reviewer looks at before calling a window change done."""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


async def save_panel_screenshots(window: Any, directory) -> list:
    """PNGs of every dock, every surface view (3-D included), and the settings, what-if, live-guard and
    Backtest windows, into `directory` (the visual check of issue 6). Returns the files written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    async def shoot(widget, name: str) -> None:
        await asyncio.sleep(0.25)          # let the loop lay out and paint (never processEvents() in a task)
        path = out / f"{name}.png"
        if window.grab_image(widget).save(str(path), "PNG"):
            written.append(path)

    window.flush()
    for name, dock in window.docks.items():
        dock.raise_()                       # a dock tabbed behind another: bring it up for its picture
        await shoot(dock, f"panel-{name}")
    for name in ("calibration", "mispricings", "risk"):
        window.docks[name].raise_()
    tabs = window.surface.tabs
    current = tabs.currentIndex()
    for i in range(tabs.count()):
        tabs.setCurrentIndex(i)
        await shoot(window.surface, "surface-" + tabs.tabText(i).lower().replace(" ", "-").replace("3-d", "3d"))
    tabs.setCurrentIndex(current)
    dialogs = []
    window.open_settings()
    dialogs.append((window.settings_dialog, "dialog-settings"))
    window.open_live_guard()
    dialogs.append((window.live_guard, "dialog-live-guard"))
    window.open_backtest()
    dialogs.append((window.backtest_dialog, "dialog-backtest"))
    signals = [s for s in window.bridge.open_signals() if s.quantity > 0]
    preview = _sample_preview(window)
    if signals:                         # the approval dialog as the trader gets it (quantity, countdown)
        window.mispricings.select_signal(signals[0].signal_id)
        window.mispricings._show_what_if(signals[0], window.engine.preview_signal(signals[0].signal_id))
        dialogs.append((window.mispricings.what_if, "dialog-what-if"))
    elif preview is not None:
        from .dialogs.whatif import WhatIfDialog

        what_if = WhatIfDialog(preview, "Approve signal — what if", window)
        what_if.show()
        dialogs.append((what_if, "dialog-what-if"))
    for dialog, name in dialogs:
        dialog.show()
        await shoot(dialog, name)
        dialog.close()
    return written

def _sample_preview(window: Any):
    """A what-if for the screenshots: the best open signal's, else the order ticket's current order."""
    signals = window.bridge.open_signals()
    try:
        if signals:
            return window.engine.preview_signal(signals[0].signal_id)
        if window.orders.contract_id() is not None:
            return window.engine.preview_order(*window.orders.order_args())
    except Exception:
        log.exception("no what-if preview for the screenshots")
    return None

