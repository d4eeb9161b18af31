"""The engine's background tasks: spawned with a name, a failure alerted, settled between backtest
snapshots, cancelled at stop."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from ..domain import Severity

log = logging.getLogger(__name__)


class Tasks:
    """A set of running tasks; `long_running` ones (the pump, the cycle loop, the guards) are not settled."""

    def __init__(self, alert: Callable[..., None]) -> None:
        self.alert = alert
        self.running: set[asyncio.Task] = set()

    def spawn(self, coro: Awaitable[Any], name: str, long_running: bool = False) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        task.long_running = long_running
        self.running.add(task)

        def done(t: asyncio.Task) -> None:
            self.running.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", name, exc_info=t.exception())
                self.alert("ENGINE_ERROR", Severity.ERROR, f"{name} failed: {t.exception()}")
        task.add_done_callback(done)
        return task

    async def settle(self) -> None:
        """Wait until every short task (order sends, cancels, the monitor, vol views) has finished."""
        while True:
            pending = [t for t in self.running if not t.done() and not getattr(t, "long_running", False)]
            if not pending:
                return
            await asyncio.gather(*pending, return_exceptions=True)

    async def cancel_all(self) -> None:
        for task in list(self.running):
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)
