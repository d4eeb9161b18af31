"""The combo ticket's screenshot for docs/combos.md, on the simulated market.

    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/tools/combo_ticket_shot.py OUT.png [EXTRA_DIR]

Runs the real engine at ×30 for a few seconds, sends a call vertical from the ticket (so the blotter and positions
show a package), then shows a call butterfly around the money with its payoff and live checks and grabs the ticket.
With EXTRA_DIR the blotter and positions docks are saved there too (combo-blotter.png, combo-positions.png).
"""
from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))      # this checkout's workstation package


async def shoot(window, engine, out: Path, extra: Path | None) -> None:
    from workstation.domain.combos import COMBO_TICK

    await engine.start()
    await asyncio.sleep(10)
    ticket = window.open_combo_ticket()
    ticket.move(40, 40)
    await asyncio.sleep(1)
    ticket.set_template("vertical", right="C")
    ticket.refresh()
    n = ticket.numbers
    ticket.limit.setValue(round((n.net_ask // COMBO_TICK + 1) * COMBO_TICK, 2))
    ticket.refresh()
    ticket.submit()
    await asyncio.sleep(6)
    window.flush()
    if extra is not None:
        extra.mkdir(parents=True, exist_ok=True)
        window.orders.refresh_combos()
        for name in ("orders", "positions"):
            dock = window.docks[name]
            dock.setFloating(True)
            dock.resize(1300, 420)
            dock.show()
            await asyncio.sleep(0.6)
            window.flush()
            window.grab_image(dock).save(str(extra / f"combo-{name}.png"), "PNG")
    ticket.set_template("butterfly", right="C")
    ticket.quantity.setValue(2)
    ticket.raise_()
    await asyncio.sleep(2)
    ticket.refresh()
    await asyncio.sleep(0.5)
    window.grab_image(ticket).save(str(out), "PNG")
    print(ticket.message.text())
    await engine.stop()


def main() -> int:
    import qasync
    from PySide6.QtCore import QSettings

    from workstation.config import Settings
    from workstation.ui.app import create_engine, make_app
    from workstation.ui.main_window import MainWindow

    out = Path(sys.argv[1])
    extra = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    settings = Settings()
    settings.hedging.enabled = False
    settings.signals.auto_execute = False
    app = make_app()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    engine = create_engine(settings, Path(tempfile.mkdtemp(prefix="combo-shot-")), 30.0)
    store = QSettings(str(Path(tempfile.mkdtemp()) / "layout.ini"), QSettings.IniFormat)
    window = MainWindow(engine, settings, store)
    window.resize(1680, 1000)
    window.show()
    with loop:
        loop.run_until_complete(shoot(window, engine, out, extra))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
