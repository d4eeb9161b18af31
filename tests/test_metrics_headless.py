"""The Prometheus endpoint serves the engine's series during a real headless run (loopback only)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_metrics_endpoint_during_a_headless_run(tmp_path):
    port = free_port()
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_STATE_HOME=str(tmp_path / "state"))
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "headless", "--duration", "25", "--speed", "30",
                             "--data-dir", str(tmp_path / "d"), "--metrics-port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    body = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(1.0)
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                continue
            if "heston_fits_total" in body and "heston_snapshots_total" in body and 'result="ok"' in body:
                break
    finally:
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-2000:]
    for series in ("heston_snapshot_age_seconds", "heston_snapshots_total", "heston_fit_seconds_bucket",
                   "heston_fit_rmse_vol", "heston_fits_total", "heston_trading_state", "heston_portfolio_greek",
                   "heston_pnl_dollars"):
        assert series in body, f"{series} missing from the scrape"
