"""The trading engine: one cycle per snapshot, from quotes to risk-checked, hedged orders. Qt-free.

snapshot -> surface (forwards, IVs, filters) -> fair value and Heston fit (worker thread, warm start) -> model
values -> signals (edge + z-score) -> auto-approve / exits / hedge, each through risk.pre_trade -> orders
-> broker events -> fills -> book -> journal; the monitor (Greeks, stress, VaR) runs beside the cycle.

Every step publishes on the bus; the GUI, the journal, the alert router and the metrics subscribe. If a
cycle is still running when newer snapshots arrive, only the newest is processed and the rest are counted
as skipped. The GUI, headless mode and backtests drive this same engine; only feed, broker and clock differ.
The core (`core.py`) composes small sub-engines; `docs/architecture.md` draws the house.
"""
from .core import Engine, utcnow
from .exits import Entry
from .supervisor import Revaluation, Room
from .wiring import build_engine, connection_label

__all__ = ["Engine", "Entry", "Revaluation", "Room", "build_engine", "connection_label", "utcnow"]
