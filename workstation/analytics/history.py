"""The metric history: one row per snapshot (time, index price, skew and term metrics, realised vol), kept in
memory for the day and written to Parquet beside the recordings, one file per New York trade day
(`<dir>/vol-metrics-YYYY-MM-DD.parquet`); earlier days are loaded from those files. Days found only in the
snapshot recordings (`storage.recordings_dir`) contribute their index prices (time and `spot`), read from the
Parquet row-group statistics alone (one row group per snapshot), so realised vol and the vol cone reach back
over everything recorded."""
from __future__ import annotations

import logging
from array import array
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..domain.calendar import NEW_YORK

log = logging.getLogger(__name__)
PREFIX = "vol-metrics-"


def trade_day(at: datetime) -> date:
    return at.astimezone(NEW_YORK).date()


class MetricHistory:
    """Today's rows in memory (written every `flush_every` rows and at close), past days' from disk."""

    def __init__(self, directory: Path | None, flush_every: int = 12, max_days: int = 400,
                 recordings: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.flush_every = flush_every
        self.day: date | None = None
        self.count = 0                                  # today's rows (snapshots)
        self._lists: dict[str, array] = {}             # today's columns, packed doubles (8 bytes a value)
        self._arrays: dict[str, np.ndarray] | None = None
        self._unsaved = 0
        self._writer: ThreadPoolExecutor | None = None   # the Parquet writes, in order, off the caller's thread
        self.past: dict[date, dict[str, np.ndarray]] = self._load(max_days)
        if recordings is not None:
            for day, cols in recorded_index(recordings, max_days).items():
                self.past.setdefault(day, cols)

    # ------------------------------------------------------------------------------------- writing
    def append(self, at: datetime, row: dict[str, float]) -> None:
        day = trade_day(at)
        if self.day is not None and day != self.day:
            self.flush(wait=False)
            if self.count:
                self.past[self.day] = self.columns()
            self.count, self._lists = 0, {}
        self.day = day
        row = {"timestamp": at.timestamp(), **row}
        n = self.count
        for key, value in row.items():           # only columns are kept (a row's dict would double the memory)
            self._lists.setdefault(key, array("d", [np.nan] * n)).append(float(value))
        for key, values in self._lists.items():
            if len(values) == n:
                values.append(np.nan)
        self.count += 1
        self._arrays = None
        self._unsaved += 1
        if self._unsaved >= self.flush_every:
            self.flush(wait=False)

    def flush(self, wait: bool = True) -> None:
        """Write today's rows (the whole day's file is rewritten: a day is a few thousand rows) in the history's
        own writer thread, one file after another; `wait=False` returns at once. Appends call it so from the
        loop thread: a file write has no place there (a process's first Parquet write takes ~350 ms)."""
        if self.directory is None or not self.count or not self._unsaved:
            if wait and self._writer is not None:
                self._writer.submit(lambda: None).result()      # what is queued is written
            return
        day, cols = self.day, self.columns()            # today's arrays: new ones are built for later rows
        self._unsaved = 0
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vol-history")
        written = self._writer.submit(self._write, day, cols)
        if wait:
            written.result()

    def close(self) -> None:
        """Write what is unsaved and stop the writer thread."""
        self.flush()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    def _write(self, day: date, cols: dict[str, np.ndarray]) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            table = pa.table({k: pa.array(v) for k, v in cols.items()})
            tmp = self.directory / f".{PREFIX}{day}.tmp"
            pq.write_table(table, tmp)
            tmp.replace(self.directory / f"{PREFIX}{day}.parquet")
        except Exception:             # the history is a view: a full disk must not stop a cycle
            log.exception("vol metric history not written")

    # ------------------------------------------------------------------------------------- reading
    def columns(self) -> dict[str, np.ndarray]:
        """All of today's columns (a key missing from a row is NaN): for writing; readers use `column`."""
        return {k: self.column(k) for k in self._lists}

    def column(self, name: str) -> np.ndarray:
        """Today's values of `name` (empty when unknown); each column is built once per new row, when read."""
        if self._arrays is None:
            self._arrays = {}
        arr = self._arrays.get(name)
        if arr is None:
            arr = self._arrays[name] = np.array(self._lists.get(name, array("d")), dtype=float)
        return arr

    def _load(self, max_days: int) -> dict[date, dict[str, np.ndarray]]:
        out: dict[date, dict[str, np.ndarray]] = {}
        if self.directory is None or not self.directory.is_dir():
            return out
        for path in sorted(self.directory.glob(f"{PREFIX}*.parquet"))[-max_days:]:
            try:
                day = date.fromisoformat(path.stem[len(PREFIX):])
                table = pq.read_table(path)
                out[day] = {name: np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=float)
                            for name in table.column_names}
            except Exception:
                log.warning("skipping unreadable metric history %s", path)
        return out

    def _today(self, name: str) -> np.ndarray | None:
        return self.column(name) if self.count else None

    def daily(self, name: str) -> tuple[list[date], np.ndarray]:
        """The last value of `name` on each day (today's latest included)."""
        days, values = [], []
        series = [(d, c.get(name)) for d, c in sorted(self.past.items()) if d != self.day]
        series.append((self.day, self._today(name)))
        for day, col in series:
            if col is not None and len(col) and np.isfinite(col).any():
                days.append(day)
                values.append(col[np.isfinite(col)][-1])
        return days, np.array(values, dtype=float)

    def ranges(self, name: str = "spot") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per day: last, high and low of `name` (the index price: closes and ranges), today last."""
        last, high, low = [], [], []
        series = [c.get(name) for d, c in sorted(self.past.items()) if d != self.day] + [self._today(name)]
        for col in series:
            col = col[np.isfinite(col)] if col is not None else np.zeros(0)
            if len(col):
                last.append(col[-1]), high.append(col.max()), low.append(col.min())
        return np.array(last), np.array(high), np.array(low)


def recorded_index(directory: Path, max_days: int = 400) -> dict[date, dict[str, np.ndarray]]:
    """Per recorded trade day (`date=YYYY-MM-DD` folders): the snapshot times and index prices, from each
    file's row-group statistics (no rows are read)."""
    out: dict[date, dict[str, np.ndarray]] = {}
    directory = Path(directory)
    if not directory.is_dir():
        return out
    for folder in sorted(directory.glob("date=*"))[-max_days:]:
        try:
            day = date.fromisoformat(folder.name[5:])
        except ValueError:
            continue
        times, prices = [], []
        for path in sorted(folder.glob("*.parquet")):
            try:
                meta = pq.ParquetFile(path).metadata
                names = [meta.schema.column(i).name for i in range(meta.num_columns)]
                it, ip = names.index("timestamp"), names.index("underlying_price")
                for g in range(meta.num_row_groups):
                    st, sp = meta.row_group(g).column(it).statistics, meta.row_group(g).column(ip).statistics
                    if st is not None and sp is not None and st.has_min_max and sp.has_min_max:
                        times.append(st.min.timestamp())
                        prices.append(float(sp.max))
            except Exception:
                log.warning("skipping unreadable recording %s", path)
        if times:
            order = np.argsort(times)
            out[day] = {"timestamp": np.asarray(times)[order], "spot": np.asarray(prices)[order]}
    return out


def percentile_of(value: float, history: np.ndarray) -> float:
    """Percent of `history` at or below `value` (NaN without history)."""
    history = np.asarray(history, float)
    history = history[np.isfinite(history)]
    if not len(history) or not np.isfinite(value):
        return np.nan
    return 100.0 * float(np.mean(history <= value))
