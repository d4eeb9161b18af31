"""The simulated world in one object: clock, market and paper exchange, shared by the sim feed and paper broker.

Whoever moves the world forward (`sync`) — the feed at each snapshot, the broker's pump — advances the market to
the clock and matches orders; the exchange's events go to every `on_event` listener (the paper broker).
With `account_path` the paper account (executions, resting orders, positions, cash) lives in that SQLite file
and survives restarts; without it, in memory (tests, backtests).
"""
from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

from workstation.sim.account_store import AccountStore
from workstation.sim.clock import SimClock
from workstation.sim.exchange import Event, PaperExchange
from workstation.sim.market import SimMarket
from workstation.listeners import Listeners

log = logging.getLogger(__name__)


class SimWorld:
    """Clock + market + exchange. `manual=True`: time moves only through `clock.advance` (tests, backtests)."""

    def __init__(self, simulator, paper, manual: bool = False, today: date | None = None,
                 clock: SimClock | None = None, account_path: Path | str | None = None) -> None:
        self.account = AccountStore(account_path) if account_path is not None else None
        resume = self.account.last_activity() if self.account is not None else None
        self.clock = clock or SimClock.from_config(simulator, manual=manual, today=today, resume_after=resume)
        self.market = SimMarket(simulator, self.clock.now())
        self.exchange = PaperExchange(self.market, paper, self.account)
        self.on_event = Listeners("sim event listener")

    @classmethod
    def from_settings(cls, settings, manual: bool = False, today: date | None = None,
                      account_path: Path | str | None = None) -> "SimWorld":
        return cls(settings.market.simulator, settings.execution.paper, manual=manual, today=today,
                   account_path=account_path)

    def close(self) -> None:
        """Close the account file (if any); the in-memory world needs nothing."""
        if self.account is not None:
            self.account.close()

    def sync(self) -> list[Event]:
        """Advance the market to the clock, run the exchange, hand its events to the listeners."""
        self.market.advance_to(self.clock.now())
        events = self.exchange.step()
        for event in events:
            self.on_event(event)
        return events
