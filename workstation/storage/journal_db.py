"""The journal's database: one SQLite file in WAL mode with `synchronous=FULL`, opened only when sound and
migrated forward, one connection behind a re-entrant lock, nested transactions (savepoints), every SQLite failure
as one JournalError line. `journal.Journal` says what is recorded in it; this module how it is kept."""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .codec import iso
from .integrity import RESTORE_JOURNAL, StorageError, damaged, describe_sqlite_error, quick_check
from .schema import CURRENT_VERSION, migrate, read_version


class JournalError(StorageError):
    """A journal read or write failed; nothing of the failed transaction was stored."""


class JournalVersionError(JournalError):
    """The journal was written by a newer workstation (or is not a journal); it was left untouched."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class JournalDatabase:
    """SQLite file at `path` (created with its directory when missing, migrated to the current schema)."""

    def __init__(self, path: Path | str, *, clock: Callable[[], datetime] = _utcnow, durable: bool = True) -> None:
        """`durable=False` skips the fsync per commit: only for throw-away journals (backtests)."""
        self.path = Path(path)
        self._clock = clock
        self._durable = durable
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: sqlite3.Connection | None = self._open()

    # ---- lifecycle -------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        """Connect, refuse a damaged (`PRAGMA quick_check`), newer or foreign database before changing anything,
        then migrate. Every failure is one JournalError line saying what to do."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise JournalError(f"cannot open journal {self.path}: {reason} (use --data-dir to choose another "
                               "directory)") from exc
        try:
            problems = quick_check(conn)
            if problems:
                raise JournalError(str(damaged("journal", self.path, "; ".join(problems), RESTORE_JOURNAL)))
            self._check_version(conn)
            conn.row_factory = sqlite3.Row
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(f"journal {self.path}: could not enable WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous=FULL" if self._durable else "PRAGMA synchronous=OFF")
            conn.execute("PRAGMA foreign_keys=ON")
            self._migrate(conn)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise JournalError(str(describe_sqlite_error("journal", self.path, exc, RESTORE_JOURNAL))) from exc
            raise
        return conn

    def _check_version(self, conn: sqlite3.Connection) -> int:
        """Schema version of `conn`, raising JournalVersionError for a newer or foreign database."""
        version = read_version(conn)
        if version is None:
            raise JournalVersionError(f"{self.path} is not a Heston Workstation journal (no meta table); "
                                      "refusing to touch it")
        if version > CURRENT_VERSION:
            raise JournalVersionError(
                f"journal {self.path} has schema version {version}, newer than this workstation's "
                f"{CURRENT_VERSION}; upgrade the workstation or point --data-dir elsewhere (file left untouched)")
        return version

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Apply the forward migrations in one transaction (re-checking the version under the write lock)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._check_version(conn)
            if version < CURRENT_VERSION:
                migrate(conn, version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        return int(self._scalar("SELECT value FROM meta WHERE key = 'schema_version'"))

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed into the main file)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "JournalDatabase":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plumbing --------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes atomically; nests (inner blocks are savepoints). Holds the lock until the end."""
        with self._lock:
            conn = self._connection()
            outer = self._depth == 0
            savepoint = f"sp{self._depth}"
            self._run(conn, "BEGIN IMMEDIATE" if outer else f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                self._undo(conn, outer, savepoint)
                raise
            self._depth -= 1
            try:
                self._run(conn, "COMMIT" if outer else f"RELEASE {savepoint}")
            except JournalError:
                self._undo(conn, outer, savepoint)
                raise

    def _undo(self, conn: sqlite3.Connection, outer: bool, savepoint: str) -> None:
        """Roll back the failed (outer or nested) transaction; never masks the original error."""
        statements = ("ROLLBACK",) if outer else (f"ROLLBACK TO {savepoint}", f"RELEASE {savepoint}")
        try:
            for statement in statements:
                conn.execute(statement)
        except sqlite3.Error:
            pass

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"journal {self.path} is closed")
        return self._conn

    @staticmethod
    def _run(conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        try:
            return conn.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise JournalError(f"journal: {exc} in {sql.split('(')[0].strip()[:60]!r}") from exc

    def _write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """One statement in its own transaction (or the caller's)."""
        with self.transaction():
            return self._run(self._connection(), sql, params)

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._run(self._connection(), sql, params).fetchall()

    def _scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = self._rows(sql, params)
        return rows[0][0] if rows else None

    def _now(self) -> str:
        return iso(self._clock())

    def integrity_check(self) -> str:
        """SQLite's `PRAGMA integrity_check` verdict ('ok' when sound)."""
        return str(self._scalar("PRAGMA integrity_check"))
