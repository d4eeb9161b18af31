"""Storage checked at start (issue #16): real files garbled, truncated or unwritable; each refused with one line
saying what to do, and the CLI exits 2 without a traceback.

Tests run as root, for whom chmod does not make a directory read-only; unwritable places are made instead as a
data dir *under a regular file* (mkdir fails with ENOTDIR), a journal path that is a directory (SQLite: "unable
to open database file"), and a full disk as a file-size limit (RLIMIT_FSIZE, so writes fail with EFBIG)."""
from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from workstation import cli
from workstation.domain import Contract, Fill, Right, SecType, Side
from workstation.sim.account_store import AccountStore, AccountStoreError
from workstation.storage import Journal, JournalError, StorageError, check_data_dir

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2025, 10, 1, 14, 30, tzinfo=timezone.utc)
CALL = Contract(101, "SPX", SecType.OPTION, "SPXW", date(2025, 10, 17), 6700.0, Right.CALL)
JOURNAL_ADVICE = "restore it from a backup, or start a new journal with --data-dir NEW_DIR and reconcile"


def fill(i: int) -> Fill:
    return Fill(f"E{i:05d}", f"HW-{i}", CALL, Side.BUY if i % 2 else Side.SELL, 1 + i % 3, 10.0 + i / 100, T0,
                0.65, "add", {"venue": "paper", "note": "x" * 200})


def journal_with_fills(path: Path, n: int = 400) -> int:
    """A real journal holding `n` fills over many pages; returns the fills table's root page."""
    with Journal(path) as j:
        for i in range(n):
            j.record_fill(fill(i))
    with sqlite3.connect(path) as c:
        return c.execute("SELECT rootpage FROM sqlite_master WHERE name = 'fills'").fetchone()[0]


def overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def page_size(path: Path) -> int:
    with sqlite3.connect(path) as c:
        return c.execute("PRAGMA page_size").fetchone()[0]


def fills_leaf_page(path: Path) -> int:
    """A leaf page of the fills table in the middle of the file (not its root)."""
    with sqlite3.connect(path) as c:
        pages = [r[0] for r in c.execute("SELECT pageno FROM dbstat WHERE name = 'fills' AND pagetype = 'leaf'")]
    return pages[len(pages) // 2]


# --------------------------------------------------------------------------------------------- journal
@pytest.mark.parametrize("garble", ["fills root page", "fills leaf page", "file header"])
def test_garbled_journal_is_refused_with_what_to_do(tmp_path, garble):
    path = tmp_path / "journal.sqlite"
    root = journal_with_fills(path)
    size = page_size(path)
    before = path.read_bytes()
    if garble == "fills root page":
        overwrite(path, (root - 1) * size, b"\xff" * 64)
    elif garble == "fills leaf page":
        overwrite(path, (fills_leaf_page(path) - 1) * size + 8, bytes(range(256)) * 4)
    else:
        overwrite(path, 0, b"NOT A SQLITE FILE AT ALL")
    garbled = path.read_bytes()
    assert garbled != before
    with pytest.raises(JournalError) as err:
        Journal(path)
    text = str(err.value)
    assert f"journal {path} is damaged (" in text and JOURNAL_ADVICE in text and "\n" not in text
    assert path.read_bytes() == garbled                  # left untouched for the trader to restore or inspect


def test_sound_journal_passes_the_check_and_keeps_its_fills(tmp_path):
    path = tmp_path / "journal.sqlite"
    journal_with_fills(path, 50)
    with Journal(path) as j:
        assert len(j.fills()) == 50


def test_journal_path_that_cannot_be_opened_is_one_line(tmp_path):
    (tmp_path / "journal.sqlite").mkdir()                # a directory where the file should be
    with pytest.raises(JournalError, match=r"cannot open journal .*unable to open database file.*--data-dir"):
        Journal(tmp_path / "journal.sqlite")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(JournalError, match=r"cannot open journal .*Not a directory"):
        Journal(blocker / "data" / "journal.sqlite")


# ---------------------------------------------------------------------------------------- paper account
def account_with_fills(path: Path, n: int = 200) -> None:
    store = AccountStore(path)
    for i in range(n):
        store.save_execution(fill(i), position=i, cash=-10.0 * i, seq=i + 1, booked_at=T0)
    store.close()


def test_truncated_paper_account_is_refused(tmp_path):
    path = tmp_path / "paper_account.sqlite"
    account_with_fills(path)
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(AccountStoreError) as err:
        AccountStore(path)
    assert f"paper account {path} is damaged (" in str(err.value)
    assert "restore it from a backup, or move it aside" in str(err.value)


def test_garbled_execution_row_is_refused_on_load(tmp_path):
    """A row SQLite still reads but we cannot decode (a garbled contract): refused, not a traceback."""
    path = tmp_path / "paper_account.sqlite"
    account_with_fills(path, 5)
    with sqlite3.connect(path) as c:
        c.execute("UPDATE executions SET contract = '{garbled' WHERE id = 3")
    store = AccountStore(path)
    with pytest.raises(AccountStoreError, match="is damaged .*JSONDecodeError"):
        store.load()
    store.close()


# ------------------------------------------------------------------------------------------- data dir
def test_data_dir_under_a_file_is_refused(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match=r"cannot create the data dir .*Not a directory.*--data-dir"):
        check_data_dir(blocker / "data")
    with pytest.raises(StorageError, match="is not a directory"):
        check_data_dir(blocker)


def test_data_dir_with_too_little_free_space_is_refused(tmp_path):
    with pytest.raises(StorageError, match=r"MB free \(at least .* MB needed"):
        check_data_dir(tmp_path, min_free_mb=1e15)
    assert check_data_dir(tmp_path) == tmp_path and list(tmp_path.iterdir()) == []   # the probe is removed


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)           # writes past the limit fail with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))


def _cli(args: list[str], tmp_path: Path, full: bool = False) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "PYTHONDONTWRITEBYTECODE": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba"),   # no cache under the limit
           "XDG_DATA_HOME": str(tmp_path / "share"), "XDG_STATE_HOME": str(tmp_path / "state")}
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          env=env, timeout=180, cwd=ROOT, preexec_fn=_limit_file_size if full else None)


def test_full_disk_is_one_line_and_exit_2(tmp_path):
    proc = _cli(["headless", "--duration", "1", "--data-dir", str(tmp_path / "data")], tmp_path, full=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: cannot write to the data dir {tmp_path / 'data'}: File too large (the disk is full; free space "
        "or use --data-dir)")


@pytest.mark.parametrize("case", ["garbled journal", "truncated paper account", "data dir under a file"])
def test_cli_refuses_to_start_with_one_line_and_exit_2(tmp_path, case):
    data = tmp_path / "data"
    data.mkdir()
    if case == "garbled journal":
        root = journal_with_fills(data / "journal.sqlite")
        overwrite(data / "journal.sqlite", (root - 1) * page_size(data / "journal.sqlite"), b"\xff" * 64)
        expect = f"error: journal {data / 'journal.sqlite'} is damaged ("
    elif case == "truncated paper account":
        account_with_fills(data / "paper_account.sqlite")
        os.truncate(data / "paper_account.sqlite", (data / "paper_account.sqlite").stat().st_size // 2)
        expect = f"error: paper account {data / 'paper_account.sqlite'} is damaged ("
    else:
        (tmp_path / "a-file").write_text("x")
        data = tmp_path / "a-file" / "data"
        expect = f"error: cannot create the data dir {data}: Not a directory"
    proc = _cli(["headless", "--duration", "1", "--data-dir", str(data)], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(expect), proc.stderr


def test_cli_in_process_reports_storage_error_as_exit_2(tmp_path, monkeypatch, capsys):
    from workstation import logging_setup
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setattr(logging_setup, "_configured", True)   # no root handlers left on this test's stderr
    (tmp_path / "a-file").write_text("x")
    assert cli.main(["headless", "--duration", "1", "--data-dir", str(tmp_path / "a-file" / "d")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot create the data dir") and "Traceback" not in err
