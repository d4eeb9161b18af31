"""Alerts: something the trader must know, with severity, source and a stable code."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import IntEnum


class Severity(IntEnum):
    INFO = 10
    WARNING = 20
    ERROR = 30
    CRITICAL = 40

    @classmethod
    def parse(cls, value: "str | int | Severity") -> "Severity":
        if isinstance(value, str):
            return cls[value.strip().upper()]
        return cls(value)


@dataclass(frozen=True, slots=True)
class Alert:
    """`code` is a stable identifier (e.g. RISK_DAILY_LOSS); repeats of a code fold into `count`."""

    code: str
    severity: Severity
    source: str
    message: str
    timestamp: datetime
    count: int = 1
    acknowledged: bool = False
    alert_id: str = ""

    def __post_init__(self) -> None:
        if not self.code:
            raise ValueError("Alert.code must not be empty")
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        if self.timestamp.tzinfo is None:
            raise ValueError("Alert.timestamp must be timezone-aware")
        if self.count < 1:
            raise ValueError("Alert.count must be >= 1")

    def acknowledge(self) -> "Alert":
        return replace(self, acknowledged=True)
