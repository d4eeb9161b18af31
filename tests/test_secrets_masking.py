"""Secrets masked by pattern, not by exact string (issue #16): a malformed webhook URL with a space in it leaks
no part of its token to the console, workstation.log or alerts.log."""
from __future__ import annotations

import logging
import time
import urllib.request
from datetime import datetime, timezone

import pytest

from workstation import logging_setup
from workstation.alerts import AlertRouter, WebhookChannel
from workstation.config import load_settings
from workstation.domain.alerts import Alert, Severity
from workstation.redact import redact

BAD_URL = "https://hooks.slack.com/services/T0/B0/WEBHOOK SECRET42"
LEAKS = ("SECRET42", "WEBHOOK SECRET", "T0/B0")


@pytest.mark.parametrize("text, secret_part", [
    ("InvalidURL: URL can't contain control characters. '/services/T0/B0/WEBHOOK SECRET42' (found at least ' ')",
     "SECRET42"),
    ("POST https://hooks.slack.com/services/T1/B2/abcdefXYZ failed", "abcdefXYZ"),
    ("POST https://discord.com/api/webhooks/123/tok_en-value failed", "tok_en-value"),
    ("connecting to smtp://alice:hunter2@mail.example.com:587", "hunter2"),
    ("login failed: password=hunter2 for alice", "hunter2"),
    ('{"token": "abc.def.ghi"}', "abc.def.ghi"),
    ("GET /x?api_key=K3Y&x=1", "K3Y"),
    ("Authorization: Bearer eyJhbGciOi", "eyJhbGciOi"),
])
def test_patterns_mask_secrets_no_one_registered(text, secret_part):
    masked = redact(text)
    assert secret_part not in masked and "***" in masked


def test_known_secret_is_masked_in_every_fragment_not_only_whole():
    url = "https://example.org/notify/tokenABCDEFGH more?key=zzz999"
    for message in ("bad path '/notify/tokenABCDEFGH more'", "word more?key=zzz999 left", "tokenABCDEFGH alone"):
        masked = redact(message, [url])
        assert "tokenABCDEFGH" not in masked and "zzz999" not in masked
    assert redact("connected to 127.0.0.1:7497 as client 17") == "connected to 127.0.0.1:7497 as client 17"


@pytest.fixture
def fresh_logging(monkeypatch):
    """configure_logging installs root handlers once per process: give this test its own, then restore."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    monkeypatch.setattr(logging_setup, "_configured", False)
    root.handlers = []
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers, root.level = before, level


def wait_for(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_malformed_webhook_url_leaks_nowhere(tmp_path, monkeypatch, capsys, fresh_logging):
    monkeypatch.setenv("HESTON_WEBHOOK_URL", BAD_URL)
    config = tmp_path / "alerts.yaml"
    config.write_text("alerts:\n  max_retries: 0\n  webhook:\n    enabled: true\n    min_severity: ERROR\n"
                      "  rules:\n    - code: '*'\n      channels: [panel, log, console, webhook]\n")
    settings = load_settings(config)
    log_dir = tmp_path / "log"
    log_file = logging_setup.configure_logging("INFO", log_dir)
    router = AlertRouter.from_settings(settings, None, log_dir=log_dir, console=True)
    router.start()
    try:
        router.submit(Alert("ENGINE_ERROR", Severity.ERROR, "engine", "cycle failed", datetime.now(timezone.utc)))
        console = router.channel("console")
        wait_for(lambda: router.channel("webhook").stats.failed == 1, "the webhook to give up")
        wait_for(lambda: console.stats.sent >= 2, "CHANNEL_FAILED on the console")
        try:                                     # the raw failure logged with its traceback, as a bug would
            urllib.request.urlopen(urllib.request.Request(BAD_URL, data=b"{}"), timeout=1)
        except Exception:
            logging.getLogger("workstation.test").exception("webhook post failed")
    finally:
        router.stop()
        for handler in logging.getLogger().handlers:
            handler.flush()
    out, err = capsys.readouterr()
    workstation_log = log_file.read_text()
    alerts_log = (log_dir / "alerts.log").read_text()
    # the failure is reported everywhere (so the check below can fail) ...
    assert "CHANNEL_FAILED" in out and "InvalidURL" in out
    assert "CHANNEL_FAILED" in alerts_log and "InvalidURL" in alerts_log
    assert "gave up on ENGINE_ERROR: InvalidURL" in workstation_log
    assert "Traceback" in workstation_log and "http.client.InvalidURL" in workstation_log
    assert "control characters. '***'" in workstation_log
    # ... and no part of the token is anywhere
    for where, text in (("console out", out), ("console err", err), ("workstation.log", workstation_log),
                        ("alerts.log", alerts_log)):
        for leak in LEAKS:
            assert leak not in text, f"{leak!r} leaked into {where}"


def test_webhook_channel_error_description_is_masked_by_pattern():
    channel = WebhookChannel(BAD_URL, max_retries=0)
    with pytest.raises(Exception) as err:
        channel.deliver(Alert("X", Severity.ERROR, "t", "m", datetime.now(timezone.utc)))
    raw = f"{type(err.value).__name__}: {err.value}"
    assert "SECRET42" in raw                              # what used to be written
    described = channel.describe_error(err.value)
    assert "SECRET42" not in described and "InvalidURL" in described
