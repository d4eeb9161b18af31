"""Channels against real local servers: SMTP (aiosmtpd, plain and STARTTLS), webhook (http.server), files."""
from __future__ import annotations

import io
import json
import shutil
import socket
import ssl
import subprocess
import threading
from datetime import datetime, timezone
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from workstation.alerts import (ConsoleChannel, EmailChannel, LogFileChannel, PanelChannel, TrayChannel,
                                WebhookChannel, send_test_alert)
from workstation.config import load_settings
from workstation.domain import Alert, Severity

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult  # noqa: E402


def alert(code: str = "KILL_SWITCH", count: int = 1) -> Alert:
    return Alert(code=code, severity=Severity.CRITICAL, source="risk", message="kill switch pressed",
                 timestamp=datetime.now(timezone.utc), count=count, alert_id=f"{code}-1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler that keeps the envelopes it receives."""

    def __init__(self) -> None:
        self.envelopes = []
        self.received = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.received.set()
        return "250 Message accepted"


class Credentials:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password, self.tried = user, password, []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode() if isinstance(auth_data.login, bytes) else auth_data.login
        password = auth_data.password.decode() if isinstance(auth_data.password, bytes) else auth_data.password
        self.tried.append(login)
        return AuthResult(success=(login, password) == (self.user, self.password), handled=False)


@pytest.fixture
def smtp_server():
    servers = []

    def start(**smtp_kwargs):
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **smtp_kwargs)
        controller.start()
        servers.append(controller)
        return inbox, controller.port

    yield start
    for controller in servers:
        controller.stop()


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI (skip if missing)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available for a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


# ---------------------------------------------------------------------------------------------- e-mail
def test_email_with_starttls_and_login_reaches_a_real_smtp_server(smtp_server, self_signed):
    cert, key = self_signed
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    creds = Credentials("trader", "s3cret-pw")
    inbox, port = smtp_server(tls_context=server_tls, require_starttls=True, authenticator=creds,
                              auth_require_tls=True)
    client_tls = ssl.create_default_context(cafile=str(cert))
    channel = EmailChannel("127.0.0.1", port, "ws@localhost", ["trader@localhost"], username="trader",
                           password="s3cret-pw", starttls=True, timeout_s=5, ssl_context=client_tls, max_retries=0)
    channel.deliver(alert(count=3))
    assert inbox.received.wait(5)
    envelope = inbox.envelopes[0]
    assert envelope.rcpt_tos == ["trader@localhost"] and creds.tried == ["trader"]
    msg = message_from_bytes(envelope.content)
    assert msg["Subject"].startswith("[Heston CRITICAL] KILL_SWITCH x3")
    assert "kill switch pressed" in msg.get_payload()


def test_email_refused_by_starttls_server_without_tls_counts_failure(smtp_server, self_signed):
    cert, key = self_signed
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    inbox, port = smtp_server(tls_context=server_tls, require_starttls=True)
    channel = EmailChannel("127.0.0.1", port, "ws@localhost", ["t@localhost"], starttls=False, timeout_s=5,
                           max_retries=0)
    failures = []
    channel.on_failure = lambda ch, a, exc: failures.append(exc)
    channel.send(alert())
    channel.stop(5)
    assert channel.stats.failed == 1 and failures and not inbox.envelopes


def test_email_from_settings_password_from_environment(smtp_server, tmp_path):
    """STARTTLS off here (aiosmtpd allows AUTH without TLS when told): the env password reaches the server."""
    creds = Credentials("trader", "from-env")
    inbox, port = smtp_server(authenticator=creds, auth_require_tls=False)
    config = tmp_path / "workstation.yaml"
    config.write_text(f"alerts:\n  email:\n    enabled: true\n    host: 127.0.0.1\n    port: {port}\n"
                      f"    starttls: false\n    username: trader\n    recipients: [desk@localhost]\n")
    settings = load_settings(config, environ={"HESTON_SMTP_PASSWORD": "from-env"})
    assert "from-env" not in repr(settings) and "from-env" not in json.dumps(settings.to_yaml_dict())
    result = send_test_alert("email", settings)
    assert result.ok, result.detail
    assert inbox.received.wait(5) and creds.tried == ["trader"]
    assert "TEST_ALERT" in message_from_bytes(inbox.envelopes[0].content)["Subject"]
    bad = load_settings(config, environ={"HESTON_SMTP_PASSWORD": "wrong-pw"})
    result = send_test_alert("email", bad)
    assert not result.ok and "wrong-pw" not in result.detail


# --------------------------------------------------------------------------------------------- webhook
class Hook(BaseHTTPRequestHandler):
    bodies: list = []
    status = 200

    def do_POST(self):  # noqa: N802
        length = int(self.headers["Content-Length"])
        type(self).bodies.append((self.path, self.headers["Content-Type"], json.loads(self.rfile.read(length))))
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_server():
    handler = type("RecordingHook", (Hook,), {"bodies": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXXX"
    server.shutdown()
    server.server_close()


def test_webhook_posts_slack_json_to_a_real_http_server(webhook_server):
    handler, url = webhook_server
    channel = WebhookChannel(url, timeout_s=5, max_retries=0)
    assert channel.send(alert(count=2))
    channel.stop(5)
    assert channel.stats.sent == 1
    path, content_type, body = handler.bodies[0]
    assert path == "/services/T000/B000/XXXX" and content_type == "application/json"
    assert set(body) == {"text"} and "KILL_SWITCH" in body["text"] and "(x2)" in body["text"]


def test_webhook_http_error_is_retried_then_counted_without_leaking_the_url(webhook_server):
    handler, url = webhook_server
    handler.status = 500
    channel = WebhookChannel(url, timeout_s=5, max_retries=2, backoff_s=0.01)
    channel.send(alert())
    channel.stop(5)
    assert len(handler.bodies) == 3 and channel.stats.failed == 1 and channel.stats.attempts_failed == 3
    assert "500" in channel.stats.last_error and "XXXX" not in channel.stats.last_error


def test_webhook_test_alert_from_environment(webhook_server, tmp_path):
    handler, url = webhook_server
    config = tmp_path / "w.yaml"
    config.write_text("alerts:\n  webhook:\n    enabled: true\n    min_severity: INFO\n")
    settings = load_settings(config, environ={"HESTON_WEBHOOK_URL": url})
    assert send_test_alert("webhook", settings).ok
    assert "TEST_ALERT" in handler.bodies[0][2]["text"]


def test_webhook_hanging_server_times_out(tmp_path):
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(5)
    try:
        channel = WebhookChannel(f"http://127.0.0.1:{hanging.getsockname()[1]}/", timeout_s=0.2, max_retries=0)
        with pytest.raises(OSError):
            channel.deliver(alert())
    finally:
        hanging.close()


# ----------------------------------------------------------------------------------- local channels
def test_log_file_channel_rotates(tmp_path):
    channel = LogFileChannel(tmp_path / "logs" / "alerts.log", max_bytes=10_000, backup_count=2, max_retries=0)
    for i in range(300):
        channel.deliver(alert(code=f"CODE_{i}"))
    channel.close()
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == ["alerts.log", "alerts.log.1", "alerts.log.2"]
    assert "CODE_299" in (tmp_path / "logs" / "alerts.log").read_text()


def test_console_tray_and_panel_channels():
    out = io.StringIO()
    ConsoleChannel(stream=out).deliver(alert(count=4))
    line = out.getvalue()
    assert line.count("\n") == 1 and "CRITICAL" in line and "KILL_SWITCH x4" in line and "[risk]" in line

    notes = []
    tray = TrayChannel(lambda title, msg, sev: notes.append((title, msg, sev)))
    tray.deliver(alert())
    assert notes == [("CRITICAL: KILL_SWITCH", "kill switch pressed", Severity.CRITICAL)]

    panel = PanelChannel()
    seen = []
    unsubscribe = panel.subscribe(seen.append)
    panel.send(alert())
    unsubscribe()
    panel.send(alert())
    assert len(panel.alerts) == 2 and len(seen) == 1
