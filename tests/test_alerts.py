"""Alert router: folding, routing rules, acknowledgement, non-blocking delivery, failure reporting, health."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import namedtuple
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from workstation.alerts import (CATALOGUE, AlertRouter, Channel, Code, EmailChannel, HealthChecks, LoopLagMonitor, PanelChannel,
                                Rule, WebhookChannel, default_severity, markdown_table, send_test_alert)
from workstation.bus import ALERT, FIT, ORDER_EVENT, STATUS, EventBus
from workstation.config import AlertRule, Settings
from workstation.domain import Alert, OrderEvent, OrderStatus, Severity


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Recorder(Channel):
    """Records deliveries; optionally fails every attempt."""

    def __init__(self, name: str, fail: bool = False, **kwargs) -> None:
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("backoff_s", 0.001)
        super().__init__(name, **kwargs)
        self.fail = fail
        self.got: list[Alert] = []
        self.event = threading.Event()

    def deliver(self, alert: Alert) -> None:
        if self.fail:
            raise ConnectionError(f"{self.name} is down")
        self.got.append(alert)
        self.event.set()

    def codes(self) -> list[str]:
        return [a.code for a in self.got]


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def make(code: str = "DATA_STALE", severity: Severity = Severity.WARNING, source: str = "feed",
         message: str = "m") -> Alert:
    return Alert(code=code, severity=severity, source=source, message=message, timestamp=datetime.now(timezone.utc))


# ------------------------------------------------------------------------------------------- folding
def test_first_alert_immediately_repeats_folded_into_one_summary_per_window():
    clock = Clock()
    panel = PanelChannel()
    router = AlertRouter(channels=[panel], fold_window_s=60, clock=clock)
    router.submit(make(message="first"))
    assert [a.count for a in panel.alerts] == [1]
    for i in range(4):
        clock.t += 5
        router.submit(make(message=f"repeat {i}"))
    assert len(panel.alerts) == 1                      # repeats are held...
    recent = router.recent()
    assert len(recent) == 1 and recent[0].count == 5    # ...but the panel list shows the count at once
    assert recent[0].message == "repeat 3"
    clock.t += 60
    router.flush()
    assert [a.count for a in panel.alerts] == [1, 5]   # one summary at the end of the window
    assert panel.alerts[1].alert_id == panel.alerts[0].alert_id
    clock.t += 61
    router.flush()                                     # a quiet window closes the fold, no extra delivery
    assert len(panel.alerts) == 2
    router.submit(make(message="again"))               # next occurrence: delivered at once, new alert
    assert len(panel.alerts) == 3 and panel.alerts[2].count == 1
    assert panel.alerts[2].alert_id != panel.alerts[0].alert_id


def test_summary_is_delivered_lazily_on_next_submit_and_window_restarts():
    clock = Clock()
    panel = PanelChannel()
    router = AlertRouter(channels=[panel], fold_window_s=10, clock=clock)
    for _ in range(3):
        router.submit(make())
    clock.t += 11
    router.submit(make())                              # ends the window: summary x3, then this repeat folds
    assert [a.count for a in panel.alerts] == [1, 3]
    clock.t += 11
    router.flush()
    assert [a.count for a in panel.alerts] == [1, 3, 4]


def test_folding_is_per_code_and_source_and_higher_severity_is_not_held():
    clock = Clock()
    panel = PanelChannel()
    router = AlertRouter(channels=[panel], fold_window_s=60, clock=clock)
    router.submit(make(code="DATA_STALE"))
    router.submit(make(code="FIT_FAILED"))
    router.submit(make(code="DATA_STALE", source="other"))
    assert len(panel.alerts) == 3
    router.submit(make(code="FIT_FAILED", severity=Severity.CRITICAL))
    assert [a.severity for a in panel.alerts][-1] is Severity.CRITICAL and panel.alerts[-1].count == 2


def test_fold_window_zero_delivers_everything():
    panel = PanelChannel()
    router = AlertRouter(channels=[panel], fold_window_s=0)
    for _ in range(5):
        router.submit(make())
    assert len(panel.alerts) == 5


def test_acknowledge_closes_fold_and_next_repeat_is_new():
    clock = Clock()
    panel = PanelChannel()
    router = AlertRouter(channels=[panel], fold_window_s=60, clock=clock)
    seen = []
    router.subscribe(seen.append)
    router.submit(make())
    router.submit(make())
    alert_id = router.recent()[0].alert_id
    assert router.acknowledge(alert_id) and not router.acknowledge("nope")
    assert router.recent()[0].acknowledged and router.recent(unacknowledged_only=True) == []
    assert seen[-1].acknowledged
    clock.t += 1
    router.submit(make())
    assert len(panel.alerts) == 2 and panel.alerts[1].alert_id != alert_id
    assert len(router.recent(unacknowledged_only=True)) == 1
    assert router.acknowledge_all() == 1


def test_background_flush_thread_delivers_summary():
    panel = PanelChannel()
    router = AlertRouter(channels=[panel], fold_window_s=0.05)
    router.start(interval_s=0.01)
    router.submit(make())
    router.submit(make())
    assert wait_for(lambda: len(panel.alerts) == 2)
    assert panel.alerts[1].count == 2
    router.stop()


# ------------------------------------------------------------------------------------------- routing
def test_routing_rules_per_code_and_severity():
    chans = {n: Recorder(n) for n in ("panel", "log", "email", "webhook")}
    rules = [AlertRule(), AlertRule(code="KILL_SWITCH", channels=["email", "webhook"]),
             AlertRule(code="*", min_severity="CRITICAL", channels=["email"])]
    router = AlertRouter(channels=chans.values(), rules=rules, fold_window_s=0)
    assert router.routes(make("DATA_STALE", Severity.WARNING)) == ["panel", "log"]
    assert router.routes(make("KILL_SWITCH", Severity.WARNING)) == ["panel", "log", "email", "webhook"]
    assert router.routes(make("RISK_DAILY_LOSS", Severity.CRITICAL)) == ["panel", "log", "email"]


def test_channel_no_rule_names_gets_all_and_filters_by_its_min_severity():
    panel, tray = Recorder("panel"), Recorder("tray", min_severity="CRITICAL")
    router = AlertRouter(channels=[panel, tray], rules=[Rule("*", Severity.INFO, ("panel",))], fold_window_s=0)
    router.submit(make(severity=Severity.WARNING))
    router.submit(make(code="KILL_SWITCH", severity=Severity.CRITICAL))
    assert wait_for(lambda: len(tray.got) == 1)
    assert tray.codes() == ["KILL_SWITCH"]
    assert wait_for(lambda: len(panel.got) == 2)
    router.stop()


def test_raise_alert_goes_through_the_bus_with_catalogue_severity():
    bus = EventBus()
    on_bus = []
    bus.subscribe(ALERT, on_bus.append)
    panel = PanelChannel()
    router = AlertRouter(bus, channels=[panel])
    alert = router.raise_alert(Code.BROKER_DISCONNECTED, source="ib", message="socket closed")
    assert alert.severity is Severity.CRITICAL and alert.code == "BROKER_DISCONNECTED"
    assert on_bus == [alert]
    assert panel.alerts[0].message == "socket closed" and panel.alerts[0].alert_id
    bus.publish(ALERT, "not an alert")                 # tolerated
    router.stop()
    bus.publish(ALERT, make())                         # unsubscribed on stop
    assert len(router.recent()) == 1


# --------------------------------------------------------------------------------- never blocks, failures
@pytest.mark.parametrize("kind", ["webhook", "email"])
def test_publishing_100_alerts_never_waits_on_a_hanging_channel(kind):
    """Each delivery to the hanging server waits its 2 s timeout: publishing 100 alerts in less than one timeout
    proves no publish waited on a delivery (a causal bound, not a speed target: it holds on a loaded machine)."""
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(200)                                 # accepts (in the kernel), never answers
    port = hanging.getsockname()[1]
    bus = EventBus()
    panel = Recorder("panel")
    if kind == "webhook":
        stuck = WebhookChannel(f"http://127.0.0.1:{port}/hook", timeout_s=2.0, max_retries=1, backoff_s=0.01)
    else:
        stuck = EmailChannel("127.0.0.1", port, "ws@localhost", ["t@localhost"], timeout_s=2.0, max_retries=1,
                             backoff_s=0.01)
    router = AlertRouter(bus, channels=[panel, stuck], fold_window_s=0)
    router.submit(make(code="WARMUP"))                  # start the worker threads outside the timing
    alerts = [make(code=f"C{i}") for i in range(100)]
    start = time.perf_counter()
    for alert in alerts:
        bus.publish(ALERT, alert)
    elapsed = time.perf_counter() - start
    assert elapsed < stuck.timeout_s, f"publishing took {elapsed:.2f} s: it waited on the hanging channel"
    assert wait_for(lambda: "CHANNEL_FAILED" in panel.codes(), timeout=30)
    failed = next(a for a in panel.got if a.code == "CHANNEL_FAILED")
    assert failed.source == f"channel:{kind}"
    assert kind != "webhook" or "127.0.0.1" not in failed.message   # the webhook URL is a secret
    assert stuck.stats.failed >= 1 and stuck.stats.attempts_failed >= 2
    router.stop(timeout=0.2)
    hanging.close()


def test_refused_channel_counts_failures_and_reports_on_the_other_channels():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                       # closed now: connection refused
    panel, log = Recorder("panel"), Recorder("log")
    webhook = WebhookChannel(f"http://127.0.0.1:{port}/", timeout_s=1, max_retries=2, backoff_s=0.01)
    router = AlertRouter(channels=[panel, log, webhook], fold_window_s=60)
    router.submit(make(code="KILL_SWITCH", severity=Severity.CRITICAL))
    assert wait_for(lambda: "CHANNEL_FAILED" in log.codes() and "CHANNEL_FAILED" in panel.codes())
    assert webhook.stats.attempts_failed == 3 and webhook.stats.failed == 1 and webhook.stats.sent == 0
    assert "Connection" in webhook.stats.last_error or "refused" in webhook.stats.last_error.lower()
    router.stop(timeout=0.5)


def test_retries_back_off_exponentially_then_succeed():
    times: list[float] = []

    class Flaky(Recorder):
        def deliver(self, alert):
            times.append(time.monotonic())
            if len(times) < 4:
                raise OSError("try again")
            super().deliver(alert)

    flaky = Flaky("email", max_retries=5, backoff_s=0.02)
    flaky.send(make())
    assert flaky.event.wait(5)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(gaps) == 3
    for gap, expected in zip(gaps, (0.02, 0.04, 0.08)):
        assert gap >= expected * 0.9
    assert flaky.stats.sent == 1 and flaky.stats.attempts_failed == 3 and flaky.stats.failed == 0
    flaky.stop()


def test_failure_reports_do_not_loop_between_failing_channels():
    a, b, ok = Recorder("email", fail=True), Recorder("webhook", fail=True), Recorder("panel")
    router = AlertRouter(channels=[a, b, ok], fold_window_s=0)
    router.submit(make(code="RISK_LIMIT_BREACH", severity=Severity.ERROR))
    # each failing channel has now failed the alert and the other's CHANNEL_FAILED, the last alert that can reach
    # it (a failed CHANNEL_FAILED is only counted); stop() drains every queue, so nothing is still on its way
    assert wait_for(lambda: a.stats.failed == 2 and b.stats.failed == 2)
    router.stop()
    assert a.pending() == b.pending() == ok.pending() == 0
    assert ok.codes().count("CHANNEL_FAILED") == 2      # each channel reported once, nothing more
    assert a.stats.failed == 2 and b.stats.failed == 2
    sources = {x.source for x in ok.got if x.code == "CHANNEL_FAILED"}
    assert sources == {"channel:email", "channel:webhook"}


def test_full_queue_drops_and_counts_without_blocking():
    gate = threading.Event()

    class Slow(Recorder):
        def deliver(self, alert):
            gate.wait(5)
            super().deliver(alert)

    slow = Slow("log", queue_size=5)
    start = time.perf_counter()
    results = [slow.send(make()) for _ in range(20)]
    assert time.perf_counter() - start < 2.5           # a send that blocked on the full queue would wait 5 s
    assert results.count(False) >= 14 and slow.stats.dropped == results.count(False)
    gate.set()
    slow.stop()


# ----------------------------------------------------------------------------------------- health
def test_health_checks_raise_alerts():
    panel = PanelChannel()
    router = AlertRouter(channels=[panel], fold_window_s=0)
    usage = namedtuple("usage", "total used free")
    checks = HealthChecks(router, stale_data_s=20, fit_slow_s=2, loop_lag_ms=250, disk_free_mb=500)
    now = datetime.now(timezone.utc)
    assert checks.data(now - timedelta(seconds=5), now) == pytest.approx(5)
    checks.data(now - timedelta(seconds=30), now)
    checks.data(None)
    checks.fit(True, 0.5)
    checks.fit(False, 0.5, "singular Jacobian")
    checks.fit(True, 3.0)
    checks.order_reject("ord-1", "price outside band")
    checks.broker(True)                                 # first connect: no alert
    checks.broker(False, "socket closed")
    checks.broker(False)                                # still down: no repeat (edge-triggered)
    checks.broker(True)
    checks.loop_lag(100)
    checks.loop_lag(400)
    checks.journal(OSError("disk I/O error"), "fill")
    checks.disk._usage = lambda path: usage(10**9, 10**9, 100 * 10**6)
    assert checks.disk() == pytest.approx(100)
    codes = [a.code for a in panel.alerts]
    assert codes == ["DATA_STALE", "DATA_STALE", "FIT_FAILED", "FIT_SLOW", "ORDER_REJECTED",
                     "BROKER_DISCONNECTED", "BROKER_RECONNECTED", "LOOP_LAG", "JOURNAL_WRITE_FAILED", "DISK_LOW"]
    assert "singular Jacobian" in panel.alerts[2].message


def test_health_checks_from_settings_and_bus(tmp_path):
    bus = EventBus()
    panel = PanelChannel()
    router = AlertRouter(bus, channels=[panel], fold_window_s=0)
    checks = HealthChecks.from_settings(router, Settings(), tmp_path / "not-yet")
    assert checks.disk() > 0                            # the nearest existing parent is measured
    detach = checks.attach(bus)
    bus.publish(ORDER_EVENT, OrderEvent("o-7", OrderStatus.REJECTED, datetime.now(timezone.utc), reason="no margin"))
    bus.publish(ORDER_EVENT, OrderEvent("o-8", OrderStatus.FILLED, datetime.now(timezone.utc)))
    bus.publish(STATUS, {"broker": {"connected": True}})
    bus.publish(STATUS, {"broker": {"connected": False, "detail": "1100"}})
    bus.publish(STATUS, "garbage")
    bus.publish(FIT, SimpleNamespace(accepted=False, elapsed_ms=3500.0, message="RMSE 7.1 > 5"))
    bus.publish(FIT, SimpleNamespace(accepted=True, elapsed_ms=120.0, message=""))
    bus.publish(FIT, "garbage")
    detach()
    bus.publish(STATUS, {"broker": {"connected": True}})
    assert [a.code for a in panel.alerts] == ["ORDER_REJECTED", "BROKER_DISCONNECTED", "FIT_FAILED", "FIT_SLOW"]
    assert "RMSE 7.1" in panel.alerts[2].message
    assert "no margin" in panel.alerts[0].message


async def test_loop_lag_monitor_measures_a_blocked_loop():
    samples = []
    monitor = LoopLagMonitor(interval_s=0.01, on_sample=samples.append)
    monitor.start()
    await asyncio.sleep(0.03)
    time.sleep(0.15)                                    # block the loop
    await asyncio.sleep(0.03)
    await monitor.stop()
    assert monitor.max_ms >= 100 and max(samples) == monitor.max_ms


# ----------------------------------------------------------------------------------- catalogue, factory
def test_catalogue_covers_the_codes_and_renders_a_table():
    for code in Code:
        assert code.value in CATALOGUE and CATALOGUE[code.value].meaning
    assert default_severity("KILL_SWITCH") is Severity.CRITICAL and default_severity("NEW_THING") is Severity.WARNING
    table = markdown_table()
    assert table.count("\n") == len(Code) + 1 and "`CHANNEL_FAILED`" in table


def test_router_from_settings_builds_enabled_channels(tmp_path):
    settings = Settings()
    settings.alerts.webhook.enabled = True              # but no HESTON_WEBHOOK_URL: skipped with a warning
    router = AlertRouter.from_settings(settings, log_dir=tmp_path, tray_notify=lambda *a: None, console=True)
    assert [c.name for c in router.channels] == ["panel", "log", "tray", "console"]
    assert router.channel("tray").min_severity is Severity.CRITICAL
    router.stop()


def test_send_test_alert_reports_success_and_failure(tmp_path):
    settings = Settings()
    assert send_test_alert("log", settings, log_dir=tmp_path).ok
    assert "TEST_ALERT" in (tmp_path / "alerts.log").read_text()
    result = send_test_alert("webhook", settings)
    assert not result.ok and "HESTON_WEBHOOK_URL" in result.detail
    assert not send_test_alert("pager", settings).ok


def test_docs_table_lists_every_code():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs" / "alerts.md"
    if not docs.exists():
        pytest.skip("docs/alerts.md not present")
    text = docs.read_text(encoding="utf-8")
    missing = [code.value for code in Code if f"`{code.value}`" not in text]
    assert not missing, f"docs/alerts.md lacks {missing}"
