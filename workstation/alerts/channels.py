"""Alert channels: each delivers from its own queue and worker thread, with retries and back-off.

`Channel.send` never blocks: it puts the alert on a bounded queue (dropping and counting when full).
A worker thread calls `deliver`, retrying with exponential back-off; when an alert exhausts its retries
the channel counts a failure and calls `on_failure` (the router turns that into CHANNEL_FAILED on the
other channels). In-memory channels (the panel) are `inline`: they deliver in the caller's thread.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import smtplib
import ssl
import sys
import threading
import time
import urllib.request
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, TextIO

from pydantic import SecretStr

from workstation.domain.alerts import Alert, Severity
from workstation.redact import redact
from workstation.listeners import Listeners

if TYPE_CHECKING:
    from workstation.config import AlertsConfig

log = logging.getLogger(__name__)

FailureHandler = Callable[["Channel", Alert, BaseException], None]
_STOP = object()


def format_line(alert: Alert) -> str:
    """One human line: time, severity, code (xN), source, message (anything that looks like a secret masked)."""
    count = f" x{alert.count}" if alert.count > 1 else ""
    stamp = alert.timestamp.strftime("%Y-%m-%d %H:%M:%S%z")
    return f"{stamp} {alert.severity.name:<8} {alert.code}{count} [{alert.source}] {redact(alert.message)}"


def _secret(value: SecretStr | str | None) -> str:
    if value is None:
        return ""
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


@dataclass
class ChannelStats:
    """Counters of one channel (read by the settings dialog, metrics and tests)."""

    sent: int = 0                  # alerts delivered
    attempts_failed: int = 0       # delivery attempts that raised
    failed: int = 0                # alerts given up after all retries
    dropped: int = 0               # alerts dropped because the queue was full
    consecutive_failures: int = 0  # alerts failed in a row (0 after a success)
    last_error: str = ""


class Channel:
    """Base channel. Subclasses implement `deliver(alert)`, which may block and raises on failure."""

    inline = False

    def __init__(self, name: str, *, min_severity: Severity | str = Severity.INFO, max_retries: int = 5,
                 backoff_s: float = 1.0, max_backoff_s: float = 60.0, queue_size: int = 1000,
                 on_failure: FailureHandler | None = None) -> None:
        self.name = name
        self.min_severity = Severity.parse(min_severity)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_failure = on_failure
        self.stats = ChannelStats()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ caller side (never blocks)
    def accepts(self, alert: Alert) -> bool:
        """True when the alert is at or above this channel's minimum severity."""
        return alert.severity >= self.min_severity

    def send(self, alert: Alert) -> bool:
        """Queue `alert` for delivery; False when filtered out or dropped. Never blocks."""
        if not self.accepts(alert):
            return False
        if self.inline:
            self._attempt(alert)
            return True
        self.start()
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            with self._lock:
                self.stats.dropped += 1
            return False
        return True

    def pending(self) -> int:
        """Alerts waiting in the queue."""
        return self._queue.qsize()

    # ----------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the worker thread (idempotent; `send` starts it on first use)."""
        if self.inline or (self._thread and self._thread.is_alive()) or self._stop.is_set():
            return
        with self._lock:
            if self._thread and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name=f"alert-{self.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the worker after the queue drains, waiting at most `timeout` (a hung send is abandoned)."""
        if self._thread is None:
            self._stop.set()
            return
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(_STOP, timeout=max(0.0, timeout))
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()

    def close(self) -> None:
        """Release resources (files, handlers); called after `stop`."""

    # -------------------------------------------------------------------------------- worker side
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            self._deliver_with_retries(item)
            if self._stop.is_set():
                return

    def _deliver_with_retries(self, alert: Alert) -> None:
        error: BaseException | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
                if self._stop.wait(delay):
                    break
            error = self._attempt(alert)
            if error is None:
                return
        self._give_up(alert, error or RuntimeError("stopped before delivery"))

    def _attempt(self, alert: Alert) -> BaseException | None:
        try:
            self.deliver(alert)
        except Exception as exc:  # noqa: BLE001 - any failure of a channel is counted, never raised
            with self._lock:
                self.stats.attempts_failed += 1
                self.stats.last_error = self.describe_error(exc)
            if self.inline:
                self._give_up(alert, exc)
            return exc
        with self._lock:
            self.stats.sent += 1
            self.stats.consecutive_failures = 0
        return None

    def _give_up(self, alert: Alert, error: BaseException) -> None:
        with self._lock:
            self.stats.failed += 1
            self.stats.consecutive_failures += 1
        log.warning("alert channel %s gave up on %s: %s", self.name, alert.code, self.describe_error(error))
        if self.on_failure is not None:
            try:
                self.on_failure(self, alert, error)
            except Exception:  # noqa: BLE001
                log.exception("on_failure handler of channel %s failed", self.name)

    def describe_error(self, error: BaseException) -> str:
        """A one-line description of a delivery error, with no secrets in it (by pattern and by `secrets`)."""
        return redact(f"{type(error).__name__}: {error}", self.secrets())

    def secrets(self) -> list[str]:
        """Values this channel must never write (a webhook URL, a password); masked in every fragment."""
        return []

    def deliver(self, alert: Alert) -> None:
        """Deliver one alert; raise on failure (the base class retries)."""
        raise NotImplementedError


class PanelChannel(Channel):
    """Keeps the alerts routed to the GUI alerts panel and calls listeners (inline: memory only)."""

    inline = True

    def __init__(self, name: str = "panel", *, maxlen: int = 500, **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.alerts: deque[Alert] = deque(maxlen=maxlen)
        self._listeners = Listeners("alert panel listener")

    def subscribe(self, listener: Callable[[Alert], None]) -> Callable[[], None]:
        """Call `listener(alert)` on each delivered alert (from the router's thread); returns unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def deliver(self, alert: Alert) -> None:
        self.alerts.append(alert)
        self._listeners(alert)


class TrayChannel(Channel):
    """Desktop notification through `notify(title, message, severity)`, injected by the GUI.

    `notify` runs in this channel's worker thread: pass something thread-safe (a Qt signal's `emit`).
    """

    def __init__(self, notify: Callable[[str, str, Severity], None], name: str = "tray", **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.notify = notify

    def deliver(self, alert: Alert) -> None:
        count = f" (x{alert.count})" if alert.count > 1 else ""
        self.notify(f"{alert.severity.name}: {alert.code}{count}", alert.message, alert.severity)


class ConsoleChannel(Channel):
    """Headless mode: one line per alert on a stream (stdout by default)."""

    def __init__(self, name: str = "console", *, stream: TextIO | None = None, **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.stream = stream

    def deliver(self, alert: Alert) -> None:
        stream = self.stream or sys.stdout
        stream.write(format_line(alert) + "\n")
        stream.flush()


class LogFileChannel(Channel):
    """A rotating alerts log file (logging.handlers.RotatingFileHandler), one line per alert."""

    def __init__(self, path: Path | str, name: str = "log", *, max_bytes: int = 1_000_000, backup_count: int = 5,
                 **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handler = logging.handlers.RotatingFileHandler(self.path, maxBytes=max_bytes,
                                                             backupCount=backup_count, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._logger = logging.Logger(f"heston.alerts.file.{self.path}")  # unmanaged: not in the global tree
        self._logger.propagate = False
        self._logger.addHandler(self._handler)

    def deliver(self, alert: Alert) -> None:
        self._logger.log(int(alert.severity), format_line(alert))
        self._handler.flush()

    def close(self) -> None:
        self._logger.removeHandler(self._handler)
        self._handler.close()


class EmailChannel(Channel):
    """E-mail over SMTP (STARTTLS by default) from the worker thread; the password comes from the env."""

    def __init__(self, host: str, port: int, sender: str, recipients: Iterable[str], name: str = "email", *,
                 username: str = "", password: SecretStr | str | None = None, starttls: bool = True,
                 timeout_s: float = 10.0, ssl_context: ssl.SSLContext | None = None, **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.host, self.port, self.sender = host, port, sender
        self.recipients = list(recipients)
        self.username = username
        self._password = password if isinstance(password, SecretStr) or password is None else SecretStr(password)
        self.starttls = starttls
        self.timeout_s = timeout_s
        self.ssl_context = ssl_context

    def message(self, alert: Alert) -> EmailMessage:
        """The e-mail for one alert: the subject carries severity, code and count."""
        msg = EmailMessage()
        count = f" x{alert.count}" if alert.count > 1 else ""
        msg["Subject"] = f"[Heston {alert.severity.name}] {alert.code}{count}: {alert.message[:120]}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg.set_content(f"{format_line(alert)}\n\nsource: {alert.source}\ncode: {alert.code}\n"
                        f"severity: {alert.severity.name}\ncount: {alert.count}\n"
                        f"time: {alert.timestamp.isoformat()}\nid: {alert.alert_id}\n")
        return msg

    def deliver(self, alert: Alert) -> None:
        if not self.recipients:
            raise ValueError("no e-mail recipients configured (alerts.email.recipients)")
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                smtp.ehlo()
            password = _secret(self._password)
            if self.username and password:
                smtp.login(self.username, password)
            smtp.send_message(self.message(alert))

    def secrets(self) -> list[str]:
        return [_secret(self._password)]


class WebhookChannel(Channel):
    """Slack-compatible webhook: POST `{"text": ...}` as JSON from the worker thread, with a timeout.

    The URL is a secret (a Slack webhook URL carries its token): it is never logged or put in an alert.
    """

    def __init__(self, url: SecretStr | str, name: str = "webhook", *, timeout_s: float = 5.0, **kwargs) -> None:
        super().__init__(name, **kwargs)
        self._url = url if isinstance(url, SecretStr) else SecretStr(url)
        self.timeout_s = timeout_s

    @staticmethod
    def payload(alert: Alert) -> dict:
        """The JSON body: Slack shows `text`."""
        count = f" (x{alert.count})" if alert.count > 1 else ""
        return {"text": f"*{alert.severity.name}* `{alert.code}`{count} [{alert.source}] {redact(alert.message)}"}

    def deliver(self, alert: Alert) -> None:
        url = _secret(self._url)
        if not url.startswith(("http://", "https://")):
            raise ValueError("webhook URL must be http(s) (set HESTON_WEBHOOK_URL)")
        body = json.dumps(self.payload(alert)).encode("utf-8")
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - http(s) only
            response.read()
            if not 200 <= response.status < 300:
                raise OSError(f"webhook answered HTTP {response.status}")

    def secrets(self) -> list[str]:
        return [_secret(self._url)]


CHANNEL_NAMES = ("panel", "tray", "log", "email", "webhook", "console")


def build_channel(name: str, config: "AlertsConfig", *, log_dir: Path | None = None,
                  tray_notify: Callable[[str, str, Severity], None] | None = None,
                  stream: TextIO | None = None, on_failure: FailureHandler | None = None) -> Channel:
    """One channel from the alerts config (ignores `enabled`: the caller decides which to build)."""
    common = dict(max_retries=config.max_retries, backoff_s=config.retry_backoff_s, on_failure=on_failure)
    if name == "panel":
        return PanelChannel(on_failure=on_failure)
    if name == "tray":
        if tray_notify is None:
            raise ValueError("the tray channel needs a notify callback from the GUI")
        return TrayChannel(tray_notify, min_severity=config.tray_min_severity, **common)
    if name == "console":
        return ConsoleChannel(stream=stream, min_severity=config.console_min_severity, **common)
    if name == "log":
        path = Path(config.log_file)
        if not path.is_absolute():
            path = Path(log_dir if log_dir is not None else default_log_dir()) / path
        return LogFileChannel(path, max_bytes=config.log_max_bytes, backup_count=config.log_backups, **common)
    if name == "email":
        e = config.email
        return EmailChannel(e.host, e.port, e.sender, e.recipients, username=e.username, password=e.password,
                            starttls=e.starttls, timeout_s=e.timeout_s, min_severity=e.min_severity, **common)
    if name == "webhook":
        w = config.webhook
        if w.url is None:
            raise ValueError("the webhook channel needs HESTON_WEBHOOK_URL in the environment")
        return WebhookChannel(w.url, timeout_s=w.timeout_s, min_severity=w.min_severity, **common)
    raise ValueError(f"unknown alert channel {name!r}; expected one of {', '.join(CHANNEL_NAMES)}")


def default_log_dir() -> Path:
    """The user log directory (platformdirs), where the alerts log lives by default."""
    import platformdirs

    return Path(platformdirs.user_log_dir("heston-workstation", appauthor=False))
