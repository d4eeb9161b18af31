"""Alerts: routing and channels (panel, tray, log file, e-mail, webhook, console), health checks, metrics."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TextIO

from workstation.domain.alerts import Alert, Severity

from .channels import (CHANNEL_NAMES, Channel, ChannelStats, ConsoleChannel, EmailChannel, LogFileChannel,
                       PanelChannel, TrayChannel, WebhookChannel, build_channel, format_line)
from .codes import CATALOGUE, Code, CodeInfo, default_severity, markdown_table, meaning
from .health import (BrokerConnectionCheck, DiskCheck, FitCheck, HealthChecks, JournalCheck, LoopLagCheck,
                     LoopLagMonitor, OrderRejectCheck, StaleDataCheck)
from .metrics import Metrics
from .router import AlertRouter, Rule

if TYPE_CHECKING:
    from workstation.config import AlertsConfig, Settings


@dataclass(frozen=True, slots=True)
class TestResult:
    """Outcome of a test alert: `ok`, and a line for the dialog (the error, secrets removed)."""

    __test__ = False  # not a pytest test class
    ok: bool
    detail: str


def send_test_alert(channel_name: str, settings: "Settings | AlertsConfig", *, log_dir: Path | None = None,
                    tray_notify: Callable[[str, str, Severity], None] | None = None,
                    stream: TextIO | None = None) -> TestResult:
    """Send one TEST_ALERT through `channel_name` built from `settings`, once, without retries.

    Blocks for the channel's I/O (an SMTP or HTTP timeout at worst): run it off the GUI thread,
    e.g. `await asyncio.to_thread(send_test_alert, "email", settings)`.
    """
    config = getattr(settings, "alerts", settings)
    try:
        channel = build_channel(channel_name, config, log_dir=log_dir, tray_notify=tray_notify, stream=stream)
    except ValueError as exc:
        return TestResult(False, str(exc))
    alert = Alert(code=Code.TEST_ALERT.value, severity=Severity.INFO, source="settings",
                  message=f"test alert for the {channel_name} channel", timestamp=datetime.now(timezone.utc),
                  alert_id="TEST_ALERT-0")
    try:
        channel.deliver(alert)
    except Exception as exc:  # noqa: BLE001 - reported to the dialog
        return TestResult(False, channel.describe_error(exc))
    finally:
        channel.close()
    return TestResult(True, f"test alert sent via {channel_name}")


__all__ = [
    "Alert", "Severity", "AlertRouter", "Rule", "Channel", "ChannelStats", "PanelChannel", "TrayChannel",
    "LogFileChannel", "EmailChannel", "WebhookChannel", "ConsoleChannel", "CHANNEL_NAMES", "build_channel",
    "format_line", "Code", "CodeInfo", "CATALOGUE", "default_severity", "meaning", "markdown_table",
    "HealthChecks", "StaleDataCheck", "FitCheck", "OrderRejectCheck", "BrokerConnectionCheck", "LoopLagCheck",
    "JournalCheck", "DiskCheck", "LoopLagMonitor", "Metrics", "TestResult", "send_test_alert",
]
