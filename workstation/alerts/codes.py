"""The catalogue of alert codes: default severity and a one-line meaning for each (the README table)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from workstation.domain.alerts import Severity


class Code(StrEnum):
    """Stable alert codes. Members are strings, so `Alert(code=Code.DATA_STALE, ...)` stores "DATA_STALE"."""

    DATA_STALE = "DATA_STALE"
    FIT_FAILED = "FIT_FAILED"
    FIT_SLOW = "FIT_SLOW"
    FAIR_VALUE_FALLBACK = "FAIR_VALUE_FALLBACK"
    ARBITRAGE = "ARBITRAGE"
    FIT_STALE = "FIT_STALE"
    ORDER_REJECTED = "ORDER_REJECTED"
    RISK_DENIED = "RISK_DENIED"
    BROKER_DISCONNECTED = "BROKER_DISCONNECTED"
    BROKER_RECONNECTED = "BROKER_RECONNECTED"
    RECONCILE_MISMATCH = "RECONCILE_MISMATCH"
    LOOP_LAG = "LOOP_LAG"
    JOURNAL_WRITE_FAILED = "JOURNAL_WRITE_FAILED"
    DISK_LOW = "DISK_LOW"
    RISK_DAILY_LOSS = "RISK_DAILY_LOSS"
    RISK_LIMIT_BREACH = "RISK_LIMIT_BREACH"
    TRADING_STATE_CHANGED = "TRADING_STATE_CHANGED"
    KILL_SWITCH = "KILL_SWITCH"
    CHANNEL_FAILED = "CHANNEL_FAILED"
    IB_ERROR = "IB_ERROR"
    TEST_ALERT = "TEST_ALERT"
    ENGINE_ERROR = "ENGINE_ERROR"
    FEED_DISCONNECTED = "FEED_DISCONNECTED"
    AUTO_EXECUTE = "AUTO_EXECUTE"
    DATA_REJECTED = "DATA_REJECTED"
    CYCLES_FAILING = "CYCLES_FAILING"
    IB_DAILY_RESTART = "IB_DAILY_RESTART"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """What a code means and how loud it is by default."""

    code: Code
    severity: Severity
    meaning: str


_W, _E, _C, _I = Severity.WARNING, Severity.ERROR, Severity.CRITICAL, Severity.INFO

CATALOGUE: dict[str, CodeInfo] = {info.code.value: info for info in (
    CodeInfo(Code.DATA_STALE, _W, "The latest chain snapshot is older than alerts.stale_data_s; no new signals."),
    CodeInfo(Code.FIT_FAILED, _E, "A Heston calibration failed or was rejected; the last good parameters are kept."),
    CodeInfo(Code.FIT_SLOW, _W, "A Heston calibration took longer than calibration.timeout_s."),
    CodeInfo(Code.ARBITRAGE, _I, "A static arbitrage appeared in the quotes (vertical, butterfly, calendar or "
             "parity), after fees: its legs and locked-in edge are in the message."),
    CodeInfo(Code.FAIR_VALUE_FALLBACK, _W, "An expiry of the fair-value surface could not be fitted on this snapshot: "
             "it keeps its last good slice (or has none) and raises no relative signal; the reason is given."),
    CodeInfo(Code.FIT_STALE, _W, "No accepted fit for several snapshots: signals run on old parameters."),
    CodeInfo(Code.ORDER_REJECTED, _E, "The broker (or exchange) rejected an order; the reason is in the message."),
    CodeInfo(Code.RISK_DENIED, _W, "A pre-trade risk check denied an order; the named limit is in the message."),
    CodeInfo(Code.BROKER_DISCONNECTED, _C, "The connection to the broker (TWS / Gateway) was lost."),
    CodeInfo(Code.BROKER_RECONNECTED, _I, "The connection to the broker is back."),
    CodeInfo(Code.RECONCILE_MISMATCH, _E, "Positions or orders at the broker differ from the local book."),
    CodeInfo(Code.LOOP_LAG, _W, "The event loop lagged more than alerts.loop_lag_ms (the GUI or engine stalls)."),
    CodeInfo(Code.JOURNAL_WRITE_FAILED, _C, "Writing to the SQLite journal failed: orders or fills may be unrecorded."),
    CodeInfo(Code.DISK_LOW, _E, "Free space on the data disk is below alerts.disk_free_mb."),
    CodeInfo(Code.RISK_DAILY_LOSS, _C, "The daily loss limit was breached; trading is halted or reducing."),
    CodeInfo(Code.RISK_LIMIT_BREACH, _E, "A portfolio limit (delta, gamma, vega, VaR) was breached."),
    CodeInfo(Code.ENGINE_ERROR, _E, "A cycle or an engine task failed; the engine skips it and carries on."),
    CodeInfo(Code.FEED_DISCONNECTED, _W, "The market-data feed disconnected; no new snapshots until it is back."),
    CodeInfo(Code.AUTO_EXECUTE, _I, "Auto-execute was switched on or off."),
    CodeInfo(Code.DATA_REJECTED, _E, "A snapshot (or the hedge future's quote) failed the data sanity checks: "
                                     "it was skipped, nothing acted on it (market.sanity)."),
    CodeInfo(Code.CYCLES_FAILING, _C, "engine.max_failed_cycles cycles failed in a row: trading is HALTED until "
                                      "the trader resumes."),
    CodeInfo(Code.TRADING_STATE_CHANGED, _W, "The trading state changed (ACTIVE / REDUCING / HALTED)."),
    CodeInfo(Code.KILL_SWITCH, _C, "The kill switch was pressed: orders cancelled, trading halted."),
    CodeInfo(Code.CHANNEL_FAILED, _E, "An alert channel (e-mail, webhook, ...) failed after all retries."),
    CodeInfo(Code.IB_ERROR, _W, "Interactive Brokers reported an error code (message has code and text)."),
    CodeInfo(Code.IB_DAILY_RESTART, _W, "TWS / Gateway restarts soon (ib.daily_restart): no new orders until it is "
                                        "over and a reconcile passed."),
    CodeInfo(Code.TEST_ALERT, _I, "A test alert sent from the settings dialog to check a channel."),
)}


def default_severity(code: str) -> Severity:
    """Default severity of `code`; WARNING for codes not in the catalogue."""
    info = CATALOGUE.get(str(code))
    return info.severity if info else Severity.WARNING


def meaning(code: str) -> str:
    """One-line meaning of `code` ('' when unknown)."""
    info = CATALOGUE.get(str(code))
    return info.meaning if info else ""


def markdown_table() -> str:
    """The catalogue as a Markdown table (for the README)."""
    rows = ["| Code | Default severity | Meaning |", "|---|---|---|"]
    rows += [f"| `{i.code.value}` | {i.severity.name} | {i.meaning} |" for i in CATALOGUE.values()]
    return "\n".join(rows)
