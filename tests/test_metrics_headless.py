"""The Prometheus endpoint during real headless runs (loopback only): the P&L series scraped over HTTP equal the
book's P&L, and the CLI's endpoint serves the engine's series with the values of a running engine."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from gateway_support import wait_for
from sim_day import pin_sim_day
from workstation.config import Settings
from workstation.engine import build_engine

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2025, 10, 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        return response.read().decode()


def value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} not in scrape:\n{text}")


async def test_pnl_series_scraped_over_http_equal_the_books_pnl(tmp_path, monkeypatch, warm_numba):
    """build_engine + start, as `headless` runs it (simulated market at speed 30, wall-clock feed); after a fill
    and a few marks the scrape is read with the event loop blocked, so no cycle can move the book in between."""
    for k in ("CONFIG", "DATA", "STATE", "CACHE"):
        monkeypatch.setenv(f"XDG_{k}_HOME", str(tmp_path / "xdg" / k.lower()))
    settings = Settings()
    settings.market.simulator.start_date = DAY
    settings.market.simulator.always_open = True
    settings.market.simulator.mispricing_max_spreads = 100.0
    settings.execution.aggressiveness = 1.0
    port = free_port()
    engine = build_engine(settings, tmp_path / "d", speed=30, metrics_port=port)
    engine.auto_execute = True                            # as headless.run_for
    await engine.start()
    try:
        assert await wait_for(lambda: engine.last_model is not None, 300), "no fitted cycle"
        snap, surface = engine.chain(), engine.last_surface
        row = int(np.nanargmin(np.where(surface.usable & (snap.maturity > 14 / 365), np.abs(snap.mid - 20.0),
                                        np.nan)))
        cid = int(snap.contract_id[row])
        # a marketable limit half a point through the offer: the engine's own limit is never past the model, so
        # on an option the model finds rich it rests, and at 30x a loaded machine's minute is half a market hour
        limit = round(float(snap.ask[row]) + 0.5, 1)
        preview = engine.submit_order(cid, "BUY", 1, limit)
        assert preview.sent, preview.message
        assert await wait_for(lambda: engine.book.quantity(cid) >= 1, 120), "the order did not fill"
        seen = engine.snapshots
        assert await wait_for(lambda: engine.snapshots >= seen + 3, 120)        # marked a few times since
        text = scrape(port)                                # blocking, on the loop thread: the book stands still
        pnl = engine.book_summary().to_dict()["pnl"]
        assert pnl["commissions"] > 0 and pnl["total"] != 0.0
        for kind, key in (("realised", "realized"), ("unrealised", "unrealized"), ("commissions", "commissions"),
                          ("total", "total"), ("day", "day")):
            assert value(text, f'heston_pnl_dollars{{kind="{kind}"}}') == pnl[key], kind
        assert value(text, "heston_fills_total") == engine.book.fill_count
    finally:
        await engine.stop()


@pytest.mark.slow
def test_metrics_endpoint_during_a_cli_headless_run(tmp_path, warm_numba):
    port = free_port()
    pin_sim_day(tmp_path / "config")                       # the child's simulated day is SIM_DAY, not today's
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_STATE_HOME=str(tmp_path / "state"))
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "headless", "--duration", "25", "--speed", "30",
                             "--data-dir", str(tmp_path / "d"), "--metrics-port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    body = ""
    try:
        deadline = time.monotonic() + 240                  # a cold numba cache compiles for 30+ s first
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                body = scrape(port)
            except OSError:
                body = ""
            if 'heston_fits_total{result="ok"}' in body:
                break
            time.sleep(0.5)
    finally:
        out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-2000:]
    assert value(body, 'heston_fits_total{result="ok"}') >= 1
    assert value(body, "heston_snapshots_total") >= value(body, 'heston_fits_total{result="ok"}')
    assert value(body, "heston_fit_seconds_count") >= 1 and 0 < value(body, "heston_fit_rmse_vol") < 5
    assert value(body, "heston_snapshot_age_seconds") >= 0
    assert np.isfinite(value(body, 'heston_pnl_dollars{kind="total"}'))       # the book's P&L was read
