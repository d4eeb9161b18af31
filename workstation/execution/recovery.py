"""Recovery: no trading while the broker link cannot be trusted, and none after it until a reconcile has passed.

Holds it places on the trading state (each HALTED, each with its reason):
  BROKER_DISCONNECTED  the socket dropped, or IB itself is away (1100: reason "IB connectivity lost"); lifted only
                       by a reconcile that ran after the broker came back (socket reconnect, 1101 or 1102).
  RECONCILE_MISMATCH   the journal's positions differ from the broker's; lifted by a later clean reconcile (the
                       trader fixed them) or when the trader accepts the broker's positions.
  IB_DAILY_RESTART     from `stop_before_s` before the nightly TWS restart until a reconcile passed after it.
While a link hold is on, working orders are left alone (no reprices). The engine gives this class its
collaborators; it holds no reference to the engine.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable
from zoneinfo import ZoneInfo

from workstation.domain import Severity, TradingState
from workstation.risk.state import Lift, StateChange, TradingStateMachine

log = logging.getLogger(__name__)

LINK = "BROKER_DISCONNECTED"
MISMATCH = "RECONCILE_MISMATCH"
RESTART = "IB_DAILY_RESTART"


def restart_window(now: datetime, restart: Any) -> tuple[datetime, datetime] | None:
    """The nightly-restart window (start, end) that contains `now`, or None (restart: config.DailyRestart)."""
    if restart is None:
        return None
    zone = ZoneInfo(restart.zone)
    local = now.astimezone(zone)
    hh, mm = (int(x) for x in restart.time.split(":"))
    for days in (-1, 0, 1):
        day = local.date() + timedelta(days=days)
        at = datetime(day.year, day.month, day.day, hh, mm, tzinfo=zone)
        start, end = at - timedelta(seconds=restart.stop_before_s), at + timedelta(seconds=restart.expect_down_s)
        if start <= now < end:
            return start, end
    return None


class Recovery:
    """Places and lifts the link holds; runs the engine's reconcile after every return of the broker."""

    def __init__(self, trading: TradingStateMachine, clock: Callable[[], datetime],
                 reconcile: Callable[[], Awaitable[dict]], on_change: Callable[[StateChange | None], None],
                 alert: Callable[[str, Severity, str], None], spawn: Callable[[Any, str], Any],
                 broker_connected: Callable[[], bool], restart_config: Callable[[], Any]) -> None:
        self.trading = trading
        self.clock = clock
        self._reconcile = reconcile
        self._on_change = on_change
        self._alert = alert
        self._spawn = spawn
        self._connected = broker_connected
        self._restart_config = restart_config
        self._epoch = 0                    # bumped by every loss of the link: a reconcile only clears its own
        self._lock = asyncio.Lock()
        self.last_report: dict | None = None
        self.reconciles = 0
        self._window: tuple[datetime, datetime] | None = None       # the current nightly-restart window
        self._window_done: tuple[datetime, datetime] | None = None  # ... once reconciled after it
        self._restart_at: datetime | None = None
        self._dropped_in_window = False

    @property
    def link_held(self) -> bool:
        holds = self.trading.holds
        return LINK in holds or RESTART in holds

    # ------------------------------------------------------------------ the link
    def broker_down(self, message: str) -> None:
        self._epoch += 1
        if self._window is not None and self._window[0] <= self.clock() < self._window[1]:
            self._dropped_in_window = True
        reason = message if message == "IB connectivity lost" else f"broker disconnected: {message}"
        self._on_change(self.trading.hold(LINK, TradingState.HALTED, reason, self.clock(), Lift.WHEN_CLEAR))

    def broker_up(self, message: str) -> None:
        """The broker is back: HALTED stays until the reconcile (spawned now) has passed."""
        self._spawn(self.reconcile(f"broker back ({message})"), "reconcile after reconnect")

    async def reconcile(self, why: str = "start") -> dict | None:
        """Run the engine's reconcile; lift the link hold when it passed on a link that did not drop meanwhile;
        a position mismatch holds RECONCILE_MISMATCH. Returns the report (None when it could not run)."""
        async with self._lock:
            if not self._connected() and LINK not in self.trading.holds:
                # down before anyone told us (e.g. TWS without IB at start, its 1100 inside the handshake): the
                # link is held like any loss of it, and only a reconcile on a live link lifts it
                self.broker_down("broker not connected")
            epoch = self._epoch
            try:
                report = await self._reconcile()
            except Exception as exc:
                log.warning("reconcile (%s) failed: %r", why, exc)
                self._alert(MISMATCH, Severity.ERROR, f"reconcile failed ({why}): {exc!r}; trading stays halted")
                self._on_change(self.trading.hold(LINK, TradingState.HALTED, "reconcile with the broker pending",
                                                  self.clock(), Lift.WHEN_CLEAR))
                if self._connected() and epoch == self._epoch:
                    self._spawn(self._retry(why), "reconcile retry")
                return None
            self.reconciles += 1
            self.last_report = report
            now = self.clock()
            if report.get("position_mismatches"):
                self._on_change(self.trading.hold(
                    MISMATCH, TradingState.HALTED, f"{report['position_mismatches']} position(s) differ from the "
                    "broker's: accept the broker's positions or fix them", now, Lift.WHEN_CLEAR))
            else:
                self._on_change(self.trading.release(MISMATCH, now, reason="positions agree with the broker"))
            if epoch == self._epoch and self._connected():
                self._on_change(self.trading.release(LINK, now, reason=f"reconciled with the broker ({why})"))
                if RESTART in self.trading.holds and self._restart_done(now):
                    self._window_done = self._window
                    self._on_change(self.trading.release(RESTART, now, reason="daily restart over, reconciled"))
            return report

    def _restart_done(self, now: datetime) -> bool:
        """Past the window, or past the restart time with the expected disconnect behind us."""
        if self._window is None or now >= self._window[1]:
            return True
        return self._dropped_in_window and now >= self._restart_at

    async def _retry(self, why: str, delay_s: float = 2.0) -> None:
        await asyncio.sleep(delay_s)
        if self._connected():
            await self.reconcile(f"retry: {why}")

    # ------------------------------------------------------------------ the nightly restart
    def tick(self, now: datetime) -> None:
        """Called about once a second: hold before the nightly restart; after it, reconcile, then lift."""
        cfg = self._restart_config()
        window = restart_window(now, cfg)
        if window is not None and window != self._window_done:
            if window != self._window:
                self._window, self._dropped_in_window = window, False
                self._restart_at = window[0] + timedelta(seconds=cfg.stop_before_s)
                self._alert(RESTART, Severity.WARNING, f"TWS restart at {cfg.time} {cfg.zone}: no new orders until "
                                                       "it is over and a reconcile passed")
            self._on_change(self.trading.hold(RESTART, TradingState.HALTED,
                                              "IB daily restart: no new orders until reconciled after it",
                                              now, Lift.WHEN_CLEAR))
        if RESTART in self.trading.holds and LINK not in self.trading.holds and self._restart_done(now) \
                and not self._lock.locked() and self._connected():
            self._spawn(self.reconcile("after the daily restart"), "reconcile after the daily restart")


class BrokerUnreachable(ConnectionError):
    """TWS / IB Gateway did not answer within ib.connect_timeout_s (and we were not asked to wait)."""


async def connect_with_retry(feed: Any, settings: Any, wait: bool, say: Callable[[str], None]) -> None:
    """Connect the feed (and so the shared IB socket) before the engine starts. An unreachable TWS is one line
    per attempt (`say`: stderr in headless, a banner in the window) and a retry with back-off; without `wait`,
    BrokerUnreachable once ib.connect_timeout_s has passed."""
    uses_ib = settings.market.source == "ib" or settings.execution.broker == "ib"
    deadline = time.monotonic() + settings.ib.connect_timeout_s
    delay = 0.5
    quiet = logging.getLogger("ib_async")
    level = quiet.level
    while True:
        quiet.setLevel(logging.CRITICAL)       # ib_async logs each refused connect; we say it once, plainly
        try:
            await feed.connect()
            return
        except ConnectionError as exc:
            if not uses_ib:
                raise
            where = f"{settings.ib.host}:{settings.ib.port} (client id {settings.ib.client_id})"
            if not wait and time.monotonic() + delay > deadline:
                raise BrokerUnreachable(f"TWS / IB Gateway not reachable at {where} within "
                                        f"{settings.ib.connect_timeout_s:g}s: {exc.__cause__ or exc}") from None
            say(f"TWS / IB Gateway not reachable at {where}: retrying in {delay:g}s"
                f"{'' if wait else ' (giving up after ib.connect_timeout_s)'}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.ib.reconnect_max_backoff_s)
        finally:
            quiet.setLevel(level)
