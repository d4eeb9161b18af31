"""The MarketFeed protocol: every source of chain snapshots (simulator, IB, replay) looks like this.

Usage::

    feed.on_status.append(lambda s: print(s.state, s.message))
    await feed.connect()
    feed.select_chain("SPX", min_expiry_days=0, max_expiry_days=400, strike_window=0.25)
    async for snapshot in feed.snapshots():   # one ChainSnapshot every interval, until close()
        ...
    await feed.close()

Status changes (connected / stale / disconnected) are delivered synchronously to `on_status` (a `Listeners`)
and kept in `status`; a callback that raises is logged and skipped.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import AsyncIterator, Callable, Protocol, runtime_checkable

from workstation.domain import ChainSnapshot
from workstation.listeners import Listeners

log = logging.getLogger(__name__)


class FeedState(str, Enum):
    CONNECTED = "connected"        # data flowing
    STALE = "stale"                # connected but no fresh data (market closed, data farm down, ...)
    DISCONNECTED = "disconnected"  # not connected (before connect, after close, or lost)


@dataclass(frozen=True)
class FeedStatus:
    """A status change of a feed, with a human message ("market closed", "replay finished", ...)."""

    state: FeedState
    at: datetime
    message: str = ""
    source: str = ""


StatusCallback = Callable[[FeedStatus], None]


@runtime_checkable
class MarketFeed(Protocol):
    """An async source of ChainSnapshots for one chosen chain."""

    source: str                      # "sim" | "ib" | "replay" | "cboe-csv"
    clock_label: str                 # how the market clock runs: "sim ×30", "replay", "" for live time
    on_status: list[StatusCallback]  # called on every status change
    status: FeedStatus               # the latest status

    async def connect(self) -> None:
        """Connect (idempotent); status becomes CONNECTED or the method raises ConnectionError."""

    async def close(self) -> None:
        """Stop the stream and disconnect (idempotent); status becomes DISCONNECTED."""

    def select_chain(self, underlying: str, min_expiry_days: float, max_expiry_days: float,
                     strike_window: float) -> None:
        """Choose the chain: options of `underlying` expiring within [min, max] calendar days and with strikes
        within +-`strike_window` (a fraction) of the index. Takes effect from the next snapshot."""

    def snapshots(self) -> AsyncIterator[ChainSnapshot]:
        """Async iterator of snapshots, one per interval, until `close()` (or the end of a replay)."""


class StatusMixin:
    """Keeps `status` and notifies `on_status` callbacks on changes (for feed implementations)."""

    source: str = ""
    clock_label: str = ""

    def _init_status(self) -> None:
        self.on_status = Listeners("feed status callback")
        self.status = FeedStatus(FeedState.DISCONNECTED, datetime.now(timezone.utc), "not connected", self.source)

    def _set_status(self, state: FeedState, at: datetime, message: str = "") -> None:
        if state == self.status.state and message == self.status.message:
            return
        self.status = FeedStatus(state, at, message, self.source)
        self.on_status(self.status)


async def closed_within(closed: "asyncio.Event", seconds: float) -> bool:
    """Sleep up to `seconds`, waking early when the feed is closed; True when it was closed."""
    try:
        await asyncio.wait_for(closed.wait(), seconds)
        return True
    except asyncio.TimeoutError:
        return False
