"""Which snapshots a backtest replays: a recording (directory or Parquet file) or a Cboe CSV, within a date range.

Reading and chain selection are the ReplayFeed's (one home for each fact); this module only adds the date window
(`--from` / `--to`, New York trade dates or instants) and a cheap count of snapshots for the progress bar.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import AsyncIterator

from workstation.domain import ChainSnapshot
from workstation.domain.snapshot import NEW_YORK
from workstation.market.replay import ReadReport, ReplayFeed, open_recording_file, read_cboe_csv, recording_files

_PARTITION = re.compile(r"date=(\d{4}-\d{2}-\d{2})")


def parse_when(text: str | None, end: bool = False) -> datetime | None:
    """'2025-10-01' (a New York trade date: its start, or with `end` the start of the next day) or an ISO
    instant ('2025-10-01T10:30', New York time when no offset is given)."""
    if not text:
        return None
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            return datetime.combine(day + timedelta(days=1 if end else 0), time(0), tzinfo=NEW_YORK)
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"bad date {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return at if at.tzinfo else at.replace(tzinfo=NEW_YORK)


@dataclass
class SnapshotSource:
    """Snapshots of `path` within [start, end), selected as `settings.market` asks (underlying, expiries,
    strikes)."""

    path: Path
    start: datetime | None = None
    end: datetime | None = None
    underlying: str = "SPX"
    min_expiry_days: float = 0.0
    max_expiry_days: float = 400.0
    strike_window: float = 0.25
    report: ReadReport = field(default_factory=ReadReport)    # rows and snapshots skipped, by reason

    @classmethod
    def from_settings(cls, path: Path, settings, date_from: str | None = None,
                      date_to: str | None = None) -> "SnapshotSource":
        m = settings.market
        source = cls(Path(path), parse_when(date_from), parse_when(date_to, end=True), m.underlying,
                     m.min_expiry_days, m.max_expiry_days, m.strike_window)
        if source.start and source.end and source.end <= source.start:
            raise ValueError(f"--to ({date_to}) is before --from ({date_from})")
        return source

    @property
    def is_csv(self) -> bool:
        return self.path.suffix.lower() == ".csv"

    def files(self) -> list[Path]:
        """The files to read: the CSV, or the recording's Parquet files whose day partition is in range."""
        if not self.path.exists():
            raise FileNotFoundError(f"no such recording or CSV: {self.path}")
        if self.is_csv:
            return [self.path]
        out = []
        for f in recording_files(self.path):
            m = _PARTITION.search(str(f.parent))
            if m:
                day_start = datetime.combine(date.fromisoformat(m.group(1)), time(0), tzinfo=NEW_YORK)
                if (self.end and day_start >= self.end) or (self.start and day_start + timedelta(days=1) <= self.start):
                    continue
            out.append(f)
        if not out and not recording_files(self.path):
            raise FileNotFoundError(f"{self.path}: no *.parquet snapshots (and not a .csv)")
        return out

    def count(self) -> int:
        """Snapshots in the selected files (one row group each): the progress bar's total (an upper bound
        when the window cuts a day). Opens every file's footer: a truncated or foreign file is a DataFileError."""
        if self.is_csv:
            return 1
        return sum(open_recording_file(f).metadata.num_row_groups for f in self.files())

    def check(self) -> None:
        """Refuse, before anything runs, data that cannot be replayed: a missing path, a Parquet file without a
        readable footer, a CSV that is not a usable chain (DataFileError, naming the file and line)."""
        if self.is_csv:
            read_cboe_csv(self.path, ReadReport(max_examples=1))   # the run reads it again and reports all
        else:
            self.count()

    def _in_window(self, snap: ChainSnapshot) -> bool:
        return (self.start is None or snap.timestamp >= self.start) and (self.end is None or snap.timestamp < self.end)

    async def snapshots(self) -> AsyncIterator[ChainSnapshot]:
        """The snapshots, in time order, through a ReplayFeed at full speed."""
        for f in self.files():
            feed = ReplayFeed(f, speed=0.0)
            feed.select_chain(self.underlying, self.min_expiry_days, self.max_expiry_days, self.strike_window)
            await feed.connect()
            try:
                async for snap in feed.snapshots():
                    if self._in_window(snap) and len(snap):
                        yield snap
            finally:
                self.report.merge(feed.report)
                await feed.close()
