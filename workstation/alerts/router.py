"""The alert router: folds repeats, routes by rules to channels, keeps the recent list with acknowledgement.

Folding policy (per (code, source) pair):
- The first alert of a pair is delivered at once and opens a fold window of `fold_window_s`.
- Repeats inside the window only raise the count (and update message, time and severity) of that one alert;
  the recent list and router listeners see the new count immediately, the channels do not.
- When the window ends with undelivered repeats, one summary (the same alert id with the total count) is
  delivered and a new window starts; a window that ends without repeats closes the fold, so the next
  occurrence is again delivered at once. A repeating condition thus reaches a channel at most twice in its
  first window and once per window afterwards.
- A repeat with a higher severity than already delivered is delivered at once (never held behind a fold).
- A repeat after the trader acknowledged the alert starts a new alert (new id, delivered at once).
- `fold_window_s = 0` disables folding.

Routing: every rule whose code ('*' or exact) and min_severity match adds its channels; a channel that no
rule names receives every alert (its own min_severity still filters). A channel's persistent failure is
raised as CHANNEL_FAILED on the other channels; failures delivering CHANNEL_FAILED are only counted (no loops).

Nothing here waits on a channel: `submit` takes a lock, updates memory and puts on channel queues.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence, TextIO

from workstation import bus as topics
from workstation.domain.alerts import Alert, Severity

from .channels import CHANNEL_NAMES, Channel, build_channel
from .codes import Code, default_severity
from workstation.listeners import Listeners

if TYPE_CHECKING:
    from workstation.bus import EventBus
    from workstation.config import AlertRule, AlertsConfig, Settings

log = logging.getLogger(__name__)

Listener = Callable[[Alert], None]


@dataclass(frozen=True, slots=True)
class Rule:
    """Route alerts of `code` ('*' for all) at or above `min_severity` to `channels`."""

    code: str = "*"
    min_severity: Severity = Severity.INFO
    channels: tuple[str, ...] = ("panel", "log")

    @classmethod
    def of(cls, rule: "Rule | AlertRule") -> "Rule":
        if isinstance(rule, Rule):
            return rule
        return cls(rule.code, Severity.parse(rule.min_severity), tuple(rule.channels))

    def matches(self, alert: Alert) -> bool:
        return (self.code == "*" or self.code == alert.code) and alert.severity >= self.min_severity


@dataclass
class _Fold:
    alert: Alert
    window_start: float
    delivered_count: int
    delivered_severity: Severity
    exclude: frozenset[str]


class AlertRouter:
    """Receives alerts (from the bus ALERT topic or `raise_alert`), folds, routes and delivers them."""

    def __init__(self, bus: "EventBus | None" = None, channels: Iterable[Channel] = (),
                 rules: Sequence["Rule | AlertRule"] | None = None, *, fold_window_s: float = 60.0,
                 max_recent: int = 500, clock: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.fold_window_s = fold_window_s
        self.rules: list[Rule] = [Rule.of(r) for r in (rules if rules is not None else [Rule()])]
        self.max_recent = max_recent
        self._clock = clock
        self._channels: dict[str, Channel] = {}
        self._folds: dict[tuple[str, str], _Fold] = {}
        self._recent: OrderedDict[str, Alert] = OrderedDict()
        self._listeners = Listeners("alert listener")
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._timer: threading.Thread | None = None
        self._stopping = threading.Event()
        self._unsubscribe: Callable[[], None] | None = None
        for channel in channels:
            self.add_channel(channel)
        if bus is not None:
            self._unsubscribe = bus.subscribe(topics.ALERT, self.submit)

    @classmethod
    def from_settings(cls, settings: "Settings | AlertsConfig", bus: "EventBus | None" = None, *,
                      log_dir: Path | None = None, tray_notify: Callable[[str, str, Severity], None] | None = None,
                      console: bool = False, console_stream: TextIO | None = None,
                      clock: Callable[[], float] = time.monotonic) -> "AlertRouter":
        """A router with the channels the config enables: panel and log always, tray when the GUI gives
        `tray_notify`, console in headless mode, e-mail and webhook when enabled (and a URL is set)."""
        config = getattr(settings, "alerts", settings)
        router = cls(bus, rules=config.rules, fold_window_s=config.fold_window_s, clock=clock)
        names = ["panel", "log"]
        if tray_notify is not None:
            names.append("tray")
        if console:
            names.append("console")
        if config.email.enabled:
            names.append("email")
        if config.webhook.enabled:
            if config.webhook.url is None:
                log.warning("alerts.webhook.enabled but HESTON_WEBHOOK_URL is not set: webhook channel off")
            else:
                names.append("webhook")
        for name in names:
            router.add_channel(build_channel(name, config, log_dir=log_dir, tray_notify=tray_notify,
                                             stream=console_stream))
        return router

    # -------------------------------------------------------------------------------- channels
    def add_channel(self, channel: Channel) -> Channel:
        """Register `channel` (replacing one of the same name) and report its failures through the router."""
        channel.on_failure = self._channel_failed
        with self._lock:
            old = self._channels.pop(channel.name, None)
            self._channels[channel.name] = channel
        if old is not None and old is not channel:
            old.stop(0.1)
            old.close()
        return channel

    def channel(self, name: str) -> Channel | None:
        """The registered channel called `name`, if any."""
        return self._channels.get(name)

    @property
    def channels(self) -> list[Channel]:
        return list(self._channels.values())

    # ----------------------------------------------------------------------------------- intake
    def raise_alert(self, code: str, severity: Severity | str | None = None, source: str = "engine",
                    message: str = "") -> Alert:
        """Build a domain Alert (severity defaults from the code catalogue) and publish it on the bus
        (or submit it directly when the router has no bus). Returns the alert as raised."""
        alert = Alert(code=str(code), severity=default_severity(code) if severity is None else severity,
                      source=source, message=message or str(code), timestamp=datetime.now(timezone.utc))
        if self.bus is not None and self._unsubscribe is not None:
            self.bus.publish(topics.ALERT, alert)
        else:
            self.submit(alert)
        return alert

    def submit(self, alert: Alert, *, exclude: Iterable[str] = ()) -> None:
        """Fold and route one alert (the bus ALERT handler). Never blocks on a channel."""
        if not isinstance(alert, Alert):
            log.warning("ignoring non-Alert payload on the alert topic: %r", type(alert).__name__)
            return
        now = self._clock()
        deliveries: list[tuple[Alert, frozenset[str]]] = []
        with self._lock:
            deliveries += self._expire(now)
            key = (alert.code, alert.source)
            fold = self._folds.get(key)
            if fold is not None and (fold.alert.acknowledged or self.fold_window_s <= 0
                                     or now - fold.window_start >= self.fold_window_s):
                deliveries += self._close(key, fold, now)
                fold = None
            if fold is None:
                alert = replace(alert, alert_id=alert.alert_id or f"{alert.code}-{next(self._ids)}",
                                acknowledged=False)
                fold = _Fold(alert, now, alert.count, alert.severity, frozenset(exclude))
                if self.fold_window_s > 0:
                    self._folds[key] = fold
                deliveries.append((alert, fold.exclude))
            else:
                fold.alert = replace(fold.alert, count=fold.alert.count + alert.count, message=alert.message,
                                     timestamp=alert.timestamp, severity=max(fold.alert.severity, alert.severity))
                if fold.alert.severity > fold.delivered_severity:
                    deliveries.append(self._mark_delivered(fold, now))
            self._remember(fold.alert)
        self._dispatch(deliveries)

    # --------------------------------------------------------------------------------- folding
    def flush(self) -> None:
        """Deliver summaries of fold windows that have ended (called by the timer thread, or the engine)."""
        with self._lock:
            deliveries = self._expire(self._clock())
        self._dispatch(deliveries)

    def _expire(self, now: float) -> list[tuple[Alert, frozenset[str]]]:
        out = []
        for key, fold in list(self._folds.items()):
            if now - fold.window_start >= self.fold_window_s:
                out += self._close(key, fold, now)
        return out

    def _close(self, key: tuple[str, str], fold: _Fold, now: float) -> list[tuple[Alert, frozenset[str]]]:
        """End a fold window: summary if repeats are pending (and a new window), else forget the fold."""
        if fold.alert.count > fold.delivered_count and not fold.alert.acknowledged:
            return [self._mark_delivered(fold, now)]
        self._folds.pop(key, None)
        return []

    @staticmethod
    def _mark_delivered(fold: _Fold, now: float) -> tuple[Alert, frozenset[str]]:
        fold.delivered_count = fold.alert.count
        fold.delivered_severity = fold.alert.severity
        fold.window_start = now
        return fold.alert, fold.exclude

    def start(self, interval_s: float | None = None) -> None:
        """Start a daemon thread that flushes ended fold windows (default: every min(1 s, window/4))."""
        if self._timer is not None or self.fold_window_s <= 0:
            return
        period = interval_s or max(0.01, min(1.0, self.fold_window_s / 4))

        def run() -> None:
            while not self._stopping.wait(period):
                try:
                    self.flush()
                except Exception:  # noqa: BLE001
                    log.exception("alert fold flush failed")

        self._timer = threading.Thread(target=run, name="alert-fold", daemon=True)
        self._timer.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Unsubscribe, flush pending summaries, stop the channels (waiting at most `timeout` in total)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stopping.set()
        with self._lock:
            deliveries = [self._mark_delivered(f, self._clock()) for f in self._folds.values()
                          if f.alert.count > f.delivered_count and not f.alert.acknowledged]
            self._folds.clear()
        self._dispatch(deliveries)
        deadline = time.monotonic() + timeout
        for channel in self.channels:
            channel.stop(max(0.0, deadline - time.monotonic()))
            channel.close()

    # --------------------------------------------------------------------------------- routing
    def routes(self, alert: Alert) -> list[str]:
        """Names of the registered channels `alert` goes to under the rules (before channel filters)."""
        named = {name for rule in self.rules for name in rule.channels}
        chosen = {name for rule in self.rules if rule.matches(alert) for name in rule.channels}
        return [name for name in self._channels if name in chosen or name not in named]

    def _dispatch(self, deliveries: list[tuple[Alert, frozenset[str]]]) -> None:
        for alert, exclude in deliveries:
            for name in self.routes(alert):
                channel = self._channels.get(name)
                if channel is not None and name not in exclude:
                    channel.send(alert)

    def _channel_failed(self, channel: Channel, alert: Alert, error: BaseException) -> None:
        if alert.code == Code.CHANNEL_FAILED:
            return  # counted by the channel; reporting it again could loop
        self.submit(Alert(code=Code.CHANNEL_FAILED.value, severity=default_severity(Code.CHANNEL_FAILED),
                          source=f"channel:{channel.name}",
                          message=(f"alert channel '{channel.name}' failed to deliver {alert.code} after "
                                   f"{channel.max_retries} retries ({channel.stats.failed} failed so far): "
                                   f"{channel.describe_error(error)}"),
                          timestamp=datetime.now(timezone.utc)), exclude={channel.name})

    # ---------------------------------------------------------------------- recent list, for the panel
    def _remember(self, alert: Alert) -> None:
        self._recent[alert.alert_id] = alert
        self._recent.move_to_end(alert.alert_id)
        while len(self._recent) > self.max_recent:
            self._recent.popitem(last=False)
        self._listeners(alert)

    def restore(self, alerts: Iterable[Alert]) -> None:
        """Put journaled alerts (oldest first) back in the recent list and the panel after a restart, without
        delivering them again to any channel."""
        with self._lock:
            for alert in alerts:
                self._remember(alert)

    def recent(self, *, unacknowledged_only: bool = False) -> list[Alert]:
        """Recent alerts, newest last, each with its folded count and acknowledgement."""
        with self._lock:
            return [a for a in self._recent.values() if not (unacknowledged_only and a.acknowledged)]

    def acknowledge(self, alert_id: str) -> bool:
        """Mark one alert acknowledged (its fold closes: the next repeat is a new alert). False if unknown."""
        with self._lock:
            alert = self._recent.get(alert_id)
            if alert is None:
                return False
            acked = alert.acknowledge()
            self._recent[alert_id] = acked
            for fold in self._folds.values():
                if fold.alert.alert_id == alert_id:
                    fold.alert = acked
            self._listeners(acked)
            return True

    def acknowledge_all(self) -> int:
        """Acknowledge every unacknowledged alert; returns how many."""
        ids = [a.alert_id for a in self.recent(unacknowledged_only=True)]
        return sum(self.acknowledge(i) for i in ids)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(alert)` whenever a recent alert is added or changes (count, acknowledgement).
        Runs in the submitting thread: the GUI should pass a Qt signal's `emit`. Returns unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None


__all__ = ["AlertRouter", "Rule", "CHANNEL_NAMES"]
