"""The command line as a user runs it: real subprocesses of main.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim_day import SIM_DAY, pin_sim_day

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, tmp: Path, timeout: float = 120, busy: bool = False) -> subprocess.CompletedProcess:
    """`main.py *args` with its user dirs in `tmp` and its simulated day pinned to SIM_DAY (never today's date);
    `busy`: a simulated market with every planted mispricing in full (see `pin_sim_day`)."""
    pin_sim_day(tmp / "config", busy=busy)
    env = dict(os.environ, XDG_DATA_HOME=str(tmp / "data"), XDG_CONFIG_HOME=str(tmp / "config"),
               XDG_STATE_HOME=str(tmp / "state"), XDG_CACHE_HOME=str(tmp / "cache"), QT_QPA_PLATFORM="offscreen")
    for secret in ("HESTON_IB_ACCOUNT", "HESTON_SMTP_PASSWORD", "HESTON_WEBHOOK_URL"):
        env.pop(secret, None)
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def test_help_lists_every_command(tmp_path):
    out = run("--help", tmp=tmp_path)
    assert out.returncode == 0
    for command in ("gui", "headless", "gateway", "backtest", "record", "doctor"):
        assert command in out.stdout
    assert "--config" in out.stdout and "--data-dir" in out.stdout and "--log-level" in out.stdout


def test_version_before_or_after_the_command(tmp_path):
    assert "heston-workstation" in run("--version", tmp=tmp_path).stdout
    assert "heston-workstation" in run("doctor", "--version", tmp=tmp_path).stdout


def test_a_broken_config_names_each_problem_and_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("risk:\n  max_daily_loss: -5\n  max_postion: 3\nmarket:\n  source: bloomberg\n")
    out = run("headless", "--duration", "1", "--config", str(bad), tmp=tmp_path)
    assert out.returncode == 2
    assert "risk.max_daily_loss: must be > 0, got -5" in out.stderr
    assert "risk.max_postion: unknown key" in out.stderr
    assert "market.source: must be one of" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_secret_in_yaml_is_refused(tmp_path):
    bad = tmp_path / "secret.yaml"
    bad.write_text("ib:\n  account: DU123456\n")
    out = run("--config", str(bad), "doctor", tmp=tmp_path)      # option before the command
    assert "HESTON_IB_ACCOUNT" in out.stdout and "FAIL" in out.stdout


def test_doctor_prints_a_line_per_check_and_a_fix_under_each_failure(tmp_path):
    out = run("doctor", "--data-dir", str(tmp_path / "d"), tmp=tmp_path)
    printed = out.stdout.splitlines()
    lines = [line for line in printed if line.startswith(("PASS", "FAIL"))]
    names = " ".join(lines)
    for check in ("python", "package numpy", "qt", "numba cache", "config", "data dir", "ib"):
        assert check in names
    for i, line in enumerate(printed):                 # the fix is on the line right under its FAIL
        if line.startswith("FAIL"):
            assert i + 1 < len(printed) and printed[i + 1].strip().startswith("fix: "), line
    passed, failed = sum(x.startswith("PASS") for x in lines), sum(x.startswith("FAIL") for x in lines)
    assert f"{passed} passed, {failed} failed" in out.stdout
    assert out.returncode == (1 if failed else 0)


def test_doctor_fails_an_unwritable_data_dir_with_its_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = run("doctor", "--data-dir", str(blocker / "d"), tmp=tmp_path)
    printed = out.stdout.splitlines()
    [i] = [i for i, line in enumerate(printed) if line.startswith("FAIL") and "data dir" in line]
    assert printed[i + 1].strip().startswith("fix: ")
    assert out.returncode != 0


@pytest.mark.slow
def test_headless_run_trades_and_writes_the_summary(tmp_path, warm_numba):    # the child finds the cache warm
    summary_file = tmp_path / "summary.json"
    out = run("headless", "--duration", "30", "--speed", "30", "--data-dir", str(tmp_path / "d"),
              "--json", str(summary_file), tmp=tmp_path, timeout=240, busy=True)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(summary_file.read_text())
    assert summary["snapshots"] >= 20
    assert summary["fits"]["count"] >= 20 and summary["fits"]["median_rmse_iv"] < 2.0
    assert sum(summary["signals"].values()) > 0
    assert set(summary["cycle_ms"]) == {"p50", "p95", "max"} and summary["cycle_ms"]["p50"] > 0
    # nothing in the default limits is breached by a 30-second demo: the run ends as it started
    assert summary["trading_state"] == "ACTIVE", summary["alerts"]
    from workstation.domain import calendar
    from workstation.domain.calendar import NEW_YORK
    from workstation.storage import Journal
    journal = Journal(tmp_path / "d" / "journal.sqlite")
    try:                                               # the summary's fills and positions are the journal's
        assert summary["fills"] == len(journal.fills())
        held = {cid: p.quantity for cid, p in journal.positions_from_fills().items() if p.quantity}
        fit_days = {f.timestamp.astimezone(NEW_YORK).date() for f in journal.fits(limit=10_000)}
    finally:
        journal.close()
    assert {p["contract_id"]: p["quantity"] for p in summary["positions"] if p["quantity"]} == held
    # the child traded the pinned day (or the next session when it is a holiday), not the machine's date
    assert fit_days == {calendar.next_open(calendar.session_bounds(SIM_DAY)[0]).astimezone(NEW_YORK).date()}
    quality = summary["quality"]                 # the surface's quality filters, summed over the run
    assert quality["snapshots"] >= 20 and 0 < quality["usable"] < quality["quotes"]
    assert quality["usable"] + sum(quality["filtered"].values()) == quality["quotes"]
    assert "quality: " in out.stdout
    assert (tmp_path / "d" / "journal.sqlite").exists()
    assert "snapshots" in out.stdout and "cycle ms" in out.stdout


@pytest.mark.parametrize("command, collecting", [("doctor", True), ("gui", False)])
def test_main_py_holds_garbage_collection_for_start_up_and_the_command_gets_it_back(monkeypatch, tmp_path,
                                                                                   command, collecting):
    """main.py turns automatic collection off before its imports (start-up's million long-lived objects would be
    scanned ~250 times); a command other than the window runs with it on again (a long headless run must collect its
    cycles); the window keeps it off and collects on its own GUI-thread timer. In this process, the handler a spy."""
    import gc

    from workstation import cli

    seen: list[bool] = []
    monkeypatch.setattr(cli, "_handler", lambda name: lambda settings, args: seen.append(gc.isenabled()) or 0)
    monkeypatch.setattr("workstation.logging_setup.configure_logging", lambda *a, **k: None)   # this process's own
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    was = gc.isenabled()
    gc.disable()
    try:
        assert cli.main([command], gc_held=True) == 0
    finally:
        gc.unfreeze()
        gc.enable() if was else gc.disable()
    assert seen == [collecting]
