"""Storage checked before the workstation starts: the data dir can take writes, and each SQLite file (the
journal, the paper account) passes `PRAGMA quick_check`. A failure is a `StorageError` whose message is one
line saying what is wrong and what to do; the CLI prints it and exits 2 (no traceback, nothing started).
"""
from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import uuid
from pathlib import Path

MIN_FREE_MB = 50.0     # below this the journal cannot be trusted to take a day's writes: refuse to start


class StorageError(RuntimeError):
    """A data file or the data dir cannot be used safely; the message says what to do."""


RESTORE_JOURNAL = ("restore it from a backup, or start a new journal with --data-dir NEW_DIR and reconcile "
                   "positions from the broker")
RESTORE_ACCOUNT = ("restore it from a backup, or move it aside to open a new, empty paper account "
                   "(its positions and resting orders are lost)")


def quick_check(conn: sqlite3.Connection) -> list[str]:
    """SQLite's `PRAGMA quick_check` (b-tree structure, page and record formats; O(N), no index cross-check):
    [] when the file is sound, else its first few problem lines. A file too damaged to answer raises
    sqlite3.DatabaseError, which callers treat as the same verdict."""
    rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)").fetchall()]
    return [] if rows == ["ok"] else rows


def damaged(what: str, path: Path, detail: str, advice: str) -> StorageError:
    """The one-line error for a damaged file: what, where, SQLite's words, what to do (the file is untouched)."""
    detail = " ".join(detail.split())
    return StorageError(f"{what} {path} is damaged ({detail[:160]}): {advice}; the file was left untouched")


def describe_sqlite_error(what: str, path: Path, exc: BaseException, advice: str) -> StorageError:
    """One line for an SQLite failure at open: damaged file, full disk, or a path we cannot write."""
    text = str(exc)
    low = text.lower()
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        return damaged(what, path, text, advice)
    if "disk is full" in low or "disk i/o error" in low:
        return StorageError(f"cannot write {what} {path}: {text} (free space on that disk, or use --data-dir)")
    if "readonly" in low or "read-only" in low or "unable to open" in low:
        return StorageError(f"cannot open {what} {path}: {text} (is {path.parent} a writable directory? "
                            "use --data-dir to choose another)")
    return StorageError(f"cannot open {what} {path}: {text}")


def check_data_dir(path: Path, min_free_mb: float = MIN_FREE_MB) -> Path:
    """Create `path` if needed and prove it takes a write (a probe file written, synced and removed) and has
    `min_free_mb` free; raise StorageError with one line otherwise. Returns the path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StorageError(f"the data dir {path} is not a directory (use --data-dir to choose another)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the data dir {path}: {exc.strerror or exc} "
                           "(use --data-dir to choose another)") from None
    probe = path / f".write-probe-{uuid.uuid4().hex}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"\0" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
        reason = "the disk is full" if full else "it is read-only or not ours"
        raise StorageError(f"cannot write to the data dir {path}: {exc.strerror or exc} ({reason}; "
                           f"{'free space' if full else 'fix its permissions'} or use --data-dir)") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    free_mb = shutil.disk_usage(path).free / 1e6
    if free_mb < min_free_mb:
        raise StorageError(f"the data dir {path} has only {free_mb:.0f} MB free (at least {min_free_mb:.0f} MB "
                           "needed for the journal): free space or use --data-dir")
    return path
