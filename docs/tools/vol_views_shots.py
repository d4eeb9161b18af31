"""Screenshots of the vol views for docs/vol-views.md, on the simulated market with a small book.

    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/tools/vol_views_shots.py OUT_DIR [DATA_DIR]

Runs the real engine at ×30 for a few seconds, buys three out-of-the-money puts in different expiry buckets and
sells a call (so the scenarios and buckets are not empty), then floats each vol panel at 1300×620 and saves it.
"""
from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))      # this checkout's workstation package


async def shoot(window, engine, out: Path) -> None:
    from workstation.domain.ticks import round_to_tick

    await engine.start()
    await asyncio.sleep(10)
    snap, sur = engine.last_snapshot, engine.last_surface
    days = sur.maturity * 365
    for lo, hi, call, side in ((8, 20, False, "BUY"), (40, 80, False, "BUY"), (120, 200, False, "BUY"),
                               (20, 40, True, "BUY")):
        rows = np.flatnonzero(sur.usable & (days >= lo) & (days <= hi) & (snap.is_call == call)
                              & (np.abs(snap.strike / sur.forward - 1) < 0.06) & (snap.ask * 100 < 20_000))
        if len(rows):
            row = rows[len(rows) // 2]
            price = round_to_tick(float(snap.ask[row] * 1.03 if side == "BUY" else snap.bid[row] * 0.97))
            print(side, snap.contract(row).description, engine.submit_order(int(snap.contract_id[row]), side, 2,
                                                                             price).message)
    await asyncio.sleep(12)
    window.flush()

    async def grab(name: str, dock_name: str) -> None:
        dock = window.docks[dock_name]
        dock.setFloating(True)
        dock.resize(1300, 620)
        dock.show()
        dock.raise_()
        await asyncio.sleep(0.6)
        window.flush()
        await asyncio.sleep(0.3)
        window.grab_image(dock).save(str(out / f"{name}.png"), "PNG")

    held = [p.contract for p in engine.book.positions.values() if p.quantity and p.contract.expiry]
    if held:                                       # the board on an expiry the book holds (positions shown)
        chain = window.chain
        labels = [chain.expiry.itemText(i) for i in range(chain.expiry.count())]
        chain.expiry.setCurrentIndex(next((i for i, t in enumerate(labels) if t.startswith(str(held[0].expiry))), 0))
        window.flush()
        chain.select_strike(held[0].strike, "P")
    await grab("vol-chain-board", "chain")
    for i, name in enumerate(("constant-maturity", "per-expiry", "term-structure", "history")):
        window.skew.tabs.setCurrentIndex(i)
        await grab(f"vol-skew-{name}", "skew")
    await grab("vol-realised", "realised")
    for i, name in enumerate(("scenarios", "buckets", "regions")):
        window.volrisk.tabs.setCurrentIndex(i)
        if i == 0:
            window.volrisk.days.setCurrentIndex(1)
        await grab(f"vol-risk-{name}", "volrisk")
    await engine.stop()


def main() -> int:
    import qasync
    from PySide6.QtCore import QSettings

    from workstation.config import Settings
    from workstation.ui.app import create_engine, make_app
    from workstation.ui.main_window import MainWindow

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    data = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="vv-shots-"))
    settings = Settings()
    settings.hedging.enabled = False
    app = make_app()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    engine = create_engine(settings, data, 30.0)
    store = QSettings(str(Path(tempfile.mkdtemp()) / "layout.ini"), QSettings.IniFormat)
    window = MainWindow(engine, settings, store)
    window.resize(1680, 1000)
    window.show()
    with loop:
        loop.run_until_complete(shoot(window, engine, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
