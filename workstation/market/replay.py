"""ReplayFeed: play recorded Parquet snapshots back (at the recorded pace, faster, or as fast as possible), or
read a Cboe delayed-quotes CSV as a one-snapshot feed.

`speed` = 1 plays at the recorded pace, 10 ten times faster, 0 as fast as possible. The round trip
record -> replay is exact (`ChainSnapshot.equals`).
"""
from __future__ import annotations

import asyncio
import csv
import io
import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import AsyncIterator, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from workstation.domain import ChainSnapshot, Contract, Quote, SecType
from workstation.domain.snapshot import NEW_YORK
from workstation.market.feed import FeedState, StatusMixin, closed_within
from workstation.market.recorder import SCHEMA, file_metadata
from workstation.sim.listing import contract_ids
from workstation.storage.integrity import StorageError

_CALL = pa.scalar("C")     # built once: converting "C" on every call imports (and misses) dateutil
CBOE_CLOSE = time(16, 15)   # Cboe's delayed-quote export after the close carries the 16:15 ET closing quotes
log = logging.getLogger(__name__)


class DataFileError(StorageError):
    """A recording or CSV that cannot be trusted as a whole (unreadable, corrupt, truncated, mostly bad rows);
    the message names the file (and the line or snapshot). The CLI prints it and exits 2."""


@dataclass
class ReadReport:
    """What the readers skipped, counted by reason, with the first few examples (file and line or snapshot)."""

    skipped: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    max_examples: int = 10

    def skip(self, reason: str, where: str, detail: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n
        if len(self.examples) < self.max_examples:        # the rest only counted: a broken file floods no log
            self.examples.append(f"{where}: {reason}: {detail}")
            log.warning("skipped %s: %s: %s", where, reason, detail)

    @property
    def total(self) -> int:
        return sum(self.skipped.values())

    def merge(self, other: "ReadReport") -> None:
        for reason, n in other.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + n
        self.examples += other.examples[: max(0, self.max_examples - len(self.examples))]

    def line(self) -> str:
        """'3 skipped: bad_strike 2, duplicate 1 (first: file.csv, line 12: bad_strike: ...)' or ''."""
        if not self.total:
            return ""
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(self.skipped.items()))
        first = f" (first: {self.examples[0]})" if self.examples else ""
        return f"{self.total:,} skipped: {counts}{first}"


def recording_files(path: Path) -> list[Path]:
    """Parquet files of a recording (a file, or every *.parquet under a directory, in time order)."""
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted(path.rglob("*.parquet"))


def open_recording_file(file: Path) -> pq.ParquetFile:
    """The Parquet file, its footer read and its columns checked; DataFileError names the file otherwise
    (a truncated file has no footer, a foreign one lacks our columns)."""
    try:
        reader = pq.ParquetFile(file)
        names = set(reader.schema_arrow.names)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataFileError(f"{file}: not a readable Parquet recording ({_short(exc)}): the file is corrupt or "
                            "truncated; re-record it or remove it from the recording") from None
    missing = set(SCHEMA.names) - names
    if missing:
        raise DataFileError(f"{file}: not a snapshot recording, missing columns {sorted(missing)}")
    return reader


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


def _snapshot(t: pa.Table, source: str) -> ChainSnapshot:
    c = {name: t.column(name) for name in t.column_names}
    first = lambda name: c[name][0].as_py()
    fut = fc = None
    if first("future_contract_id") is not None:
        fc = Contract(contract_id=first("future_contract_id"), symbol=first("future_symbol"),
                      sec_type=SecType.FUTURE, trading_class=first("future_trading_class"),
                      expiry=first("future_expiry"), multiplier=first("future_multiplier"),
                      settlement=first("future_settlement"), exchange=first("future_exchange"))
        fut = Quote(first("future_contract_id"), first("future_bid"), first("future_ask"),
                    first("future_bid_size"), first("future_ask_size"), first("future_quote_time"))
    return ChainSnapshot(
        timestamp=first("timestamp"), underlying=first("underlying"), underlying_price=first("underlying_price"),
        contract_id=c["contract_id"].to_numpy(),
        trading_class=c["trading_class"].to_numpy(zero_copy_only=False).astype("<U8"),
        expiry=c["expiry"].to_numpy().astype("datetime64[D]"), strike=c["strike"].to_numpy(),
        is_call=pc.equal(c["right"], _CALL).to_numpy(zero_copy_only=False).astype(bool), bid=c["bid"].to_numpy(), ask=c["ask"].to_numpy(),
        bid_size=c["bid_size"].to_numpy(), ask_size=c["ask_size"].to_numpy(), am_settled=c["am_settled"].to_numpy(),
        multiplier=c["multiplier"].to_numpy(), quote_time=c["quote_time"].to_numpy().astype("datetime64[ms]"),
        source=source, future=fut, future_contract=fc, sequence=first("sequence"))


def read_recording(path: Path, report: ReadReport | None = None) -> Iterator[ChainSnapshot]:
    """Snapshots of a recording, in file and row-group order (each row group is one snapshot).

    A file that cannot be opened or a row group that cannot be decoded is a DataFileError (the recording is
    corrupt: refused, not half-replayed); a snapshot that decodes but is not a valid chain (spot 0 or NaN,
    a strike <= 0, a missing timestamp) is skipped and counted in `report` as `bad_snapshot`."""
    report = report if report is not None else ReadReport()
    for file in recording_files(path):
        reader = open_recording_file(file)
        try:
            source = file_metadata(file).get("source", "replay")
        except (pa.ArrowException, OSError) as exc:
            raise DataFileError(f"{file}: unreadable metadata ({_short(exc)})") from None
        for i in range(reader.num_row_groups):
            try:
                table = reader.read_row_group(i, use_threads=False)   # one snapshot: threads only add switches
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise DataFileError(f"{file}: snapshot {i + 1} (row group {i}) cannot be read ({_short(exc)}): "
                                    "the file is corrupt; re-record it or remove it from the recording") from None
            # a row group normally holds one snapshot; split defensively on (timestamp, sequence) changes
            ts = table.column("timestamp").to_numpy().astype("int64")
            seq = table.column("sequence").to_numpy()
            cuts = np.flatnonzero((np.diff(ts) != 0) | (np.diff(seq) != 0)) + 1
            for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(ts)]):
                try:
                    snap = _snapshot(table.slice(lo, hi - lo), source)
                except (ValueError, TypeError, AttributeError, pa.ArrowException) as exc:
                    report.skip("bad_snapshot", f"{file.name} snapshot {i + 1}", _short(exc))
                    continue
                yield snap


# ------------------------------------------------------------------------------------------ Cboe CSV
CSV_COLUMNS = ("snapshot_date", "underlying", "spot", "expiry_or_T", "strike", "type", "bid", "ask")
_TYPES = {"C": True, "CALL": True, "P": False, "PUT": False}
MAX_SKIPPED_SHARE = 0.5     # a file with at least as many bad rows as good ones is not a chain: refused


class _BadRow(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _number(text: str, name: str, reason: str, *, blank_nan: bool = False, positive: bool = False) -> float:
    text = (text or "").strip()
    if not text and blank_nan:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise _BadRow(reason, f"{name} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise _BadRow(reason, f"{name} {text!r} must be a finite number {'> 0' if positive else '>= 0'}")
    return value


def read_cboe_csv(path: Path, report: ReadReport | None = None) -> ChainSnapshot:
    """One snapshot from a cleaned Cboe delayed-quotes CSV (columns snapshot_date, underlying, spot, expiry_or_T,
    strike, type, bid, ask, root; see the README beside the data). Sizes are not in the export: they read as 0.
    Contract ids follow the simulator's scheme; quotes are stamped 16:15 ET of the snapshot date.

    Refused with a DataFileError naming the file and line: unreadable, not UTF-8, not CSV, missing columns, no
    usable row, or at least as many skipped rows as usable ones. Skipped and counted in `report` by reason:
    a row with the wrong number of fields (`bad_row`; a file cut mid-row loses its last, partial row so),
    unparseable or impossible numbers (`bad_strike`, `bad_quote`, `bad_spot`), dates (`bad_expiry`), a type
    other than C/P (`bad_type`), a row of another snapshot (`mixed_snapshot`), an exact repeat of a row
    (`duplicate`, the first copy kept) and rows quoting one contract differently (`conflicting_duplicate`,
    every copy dropped: we cannot tell which is true)."""
    path = Path(path)
    report = report if report is not None else ReadReport()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataFileError(f"{path}, line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}): "
                            "not a Cboe quotes CSV") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise DataFileError(f"{path}: empty file, no quotes") from None
    except csv.Error as exc:
        raise DataFileError(f"{path}, line 1: not CSV ({exc})") from None
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise DataFileError(f"{path}, line 1: not a Cboe quotes CSV, missing columns {missing}")
    col = {name: header.index(name) for name in (*CSV_COLUMNS, "root") if name in header}
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                rows.append((reader.line_num, fields))
    except csv.Error as exc:
        raise DataFileError(f"{path}, line {reader.line_num}: not CSV ({exc})") from None
    last_line_cut = bool(text) and not text.endswith(("\n", "\r"))
    parsed = _parse_rows(path, rows, header, col, last_line_cut, report)
    kept = len(parsed)
    skipped = len(rows) - kept
    if not kept:
        raise DataFileError(f"{path}: no usable quotes ({report.line() or 'no rows'})")
    if skipped and skipped >= MAX_SKIPPED_SHARE * len(rows):
        raise DataFileError(f"{path}: {skipped:,} of {len(rows):,} rows skipped ({report.line()}): too many to "
                            "trust the rest; fix or re-export the file")
    if skipped:
        log.warning("%s: %d quotes read, %s", path, kept, report.line())
    (day, underlying, spot) = parsed[0][1][:3]
    stamp = datetime.combine(day, CBOE_CLOSE, tzinfo=NEW_YORK).astimezone(timezone.utc)
    cls = np.array([p[1][3] for p in parsed], dtype="<U8")
    expiry = np.array([p[1][4] for p in parsed], dtype="datetime64[D]")
    strike = np.array([p[1][5] for p in parsed])
    is_call = np.array([p[1][6] for p in parsed])
    qt = np.datetime64(stamp.replace(tzinfo=None), "ms")
    n = len(parsed)
    return ChainSnapshot.from_columns(
        timestamp=stamp, underlying=underlying, underlying_price=spot, source="cboe-csv",
        columns={"contract_id": contract_ids(cls, expiry, strike, is_call), "trading_class": cls, "expiry": expiry,
                 "strike": strike, "is_call": is_call, "bid": np.array([p[1][7] for p in parsed]),
                 "ask": np.array([p[1][8] for p in parsed]), "bid_size": np.zeros(n, np.int64),
                 "ask_size": np.zeros(n, np.int64), "am_settled": cls == underlying,
                 "multiplier": np.full(n, 100.0), "quote_time": np.full(n, qt)})


def _parse_rows(path: Path, rows: list[tuple[int, list[str]]], header: list[str], col: dict[str, int],
                last_line_cut: bool, report: ReadReport) -> list[tuple[int, tuple]]:
    """(line, (day, underlying, spot, root, expiry, strike, is_call, bid, ask)) of every usable row, in file
    order; the rest counted in `report`."""
    good: list[tuple[int, tuple]] = []
    snapshot: tuple | None = None
    for i, (line, fields) in enumerate(rows):
        where = f"{path.name}, line {line}"
        try:
            if len(fields) != len(header):
                cut = last_line_cut and i == len(rows) - 1
                raise _BadRow("bad_row", f"{len(fields)} fields, expected {len(header)}"
                                         + (" (the file ends mid-row)" if cut else ""))
            get = lambda name: fields[col[name]].strip()
            try:
                day = date.fromisoformat(get("snapshot_date"))
            except ValueError:
                raise _BadRow("bad_snapshot_date", f"snapshot_date {get('snapshot_date')!r}") from None
            underlying = get("underlying")
            spot = _number(get("spot"), "spot", "bad_spot", positive=True)
            if snapshot is None:
                snapshot = (day, underlying, spot)
            elif (day, underlying, spot) != snapshot:
                raise _BadRow("mixed_snapshot", f"{day} {underlying} {spot:g} differs from the file's first "
                                                f"{snapshot[0]} {snapshot[1]} {snapshot[2]:g}")
            try:
                expiry = date.fromisoformat(get("expiry_or_T"))
            except ValueError:
                raise _BadRow("bad_expiry", f"expiry {get('expiry_or_T')!r} is not a date") from None
            if expiry < day:
                raise _BadRow("bad_expiry", f"expiry {expiry} before the snapshot date {day}")
            strike = _number(get("strike"), "strike", "bad_strike", positive=True)
            kind = get("type").upper()
            if kind not in _TYPES:
                raise _BadRow("bad_type", f"type {get('type')!r} is not C or P")
            bid = _number(get("bid"), "bid", "bad_quote", blank_nan=True)
            ask = _number(get("ask"), "ask", "bad_quote", blank_nan=True)
            root = (fields[col["root"]].strip() if "root" in col else "") or underlying
        except _BadRow as bad:
            report.skip(bad.reason, where, str(bad))
            continue
        good.append((line, (day, underlying, spot, root, expiry, strike, _TYPES[kind], bid, ask)))
    return _drop_duplicates(path, good, report)


def _drop_duplicates(path: Path, good: list[tuple[int, tuple]], report: ReadReport) -> list[tuple[int, tuple]]:
    """Exact repeats of a contract's row: keep the first. Different quotes for one contract: drop every copy."""
    first: dict[tuple, int] = {}
    repeats: dict[int, list[int]] = {}                  # index of the first copy -> indices of the others
    for i, (_, row) in enumerate(good):
        j = first.setdefault((row[3], row[4], row[5], row[6]), i)
        if j != i:
            repeats.setdefault(j, []).append(i)
    if not repeats:
        return good
    drop: set[int] = set()
    for j, others in repeats.items():
        copies = [good[k] for k in (j, *others)]
        row = copies[0][1]
        quotes = {(r[7] if r[7] == r[7] else None, r[8] if r[8] == r[8] else None) for _, r in copies}  # NaN-safe
        name = f"{row[3]} {row[4]} {row[5]:g} {'C' if row[6] else 'P'}"
        lines = ", ".join(str(line) for line, _ in copies[:5])
        if len(quotes) > 1:
            report.skip("conflicting_duplicate", f"{path.name}, lines {lines}",
                        f"{name} quoted {len(copies)} times with different bid/ask", n=len(copies))
            drop.update((j, *others))
        else:
            report.skip("duplicate", f"{path.name}, lines {lines}", f"{name} repeated {len(copies)} times",
                        n=len(others))
            drop.update(others)
    return [item for k, item in enumerate(good) if k not in drop]


class ReplayFeed(StatusMixin):
    """MarketFeed over a recording directory/file or a Cboe CSV. Ends (status DISCONNECTED) after the last one."""

    source = "replay"
    clock_label = "replay"           # the market clock is the recording's timestamps

    def __init__(self, path: Path, speed: float = 0.0) -> None:
        self.path = Path(path)
        self.speed = speed
        self._chain: tuple[str, float, float, float] | None = None
        self.report = ReadReport()         # rows and snapshots skipped while reading, by reason
        self._csv: ChainSnapshot | None = None
        self._closed = asyncio.Event()
        self._init_status()

    @classmethod
    def from_settings(cls, settings) -> "ReplayFeed":
        m = settings.market
        if m.replay_path is None:
            raise ValueError("market.replay_path is not set: a recording directory or a Cboe CSV is needed")
        feed = cls(m.replay_path, m.replay_speed)
        feed.select_chain(m.underlying, m.min_expiry_days, m.max_expiry_days, m.strike_window)
        return feed

    async def connect(self) -> None:
        """Check the data before anything replays: every Parquet footer readable, the CSV a usable chain
        (a DataFileError names the file; the CLI exits 2)."""
        if not self.path.exists():
            raise ConnectionError(f"replay source {self.path} does not exist")
        if self.path.suffix.lower() == ".csv":
            self._csv = read_cboe_csv(self.path, self.report)
        else:
            for file in recording_files(self.path):
                open_recording_file(file)
        self._closed.clear()
        self._set_status(FeedState.CONNECTED, datetime.now(timezone.utc), f"replaying {self.path.name}")

    async def close(self) -> None:
        self._closed.set()
        self._set_status(FeedState.DISCONNECTED, datetime.now(timezone.utc), "closed")

    def select_chain(self, underlying: str, min_expiry_days: float, max_expiry_days: float,
                     strike_window: float) -> None:
        self._chain = (underlying, float(min_expiry_days), float(max_expiry_days), float(strike_window))

    def _source(self) -> Iterator[ChainSnapshot]:
        if self.path.suffix.lower() == ".csv":
            yield self._csv if self._csv is not None else read_cboe_csv(self.path, self.report)
        else:
            yield from read_recording(self.path, self.report)

    def _select(self, snap: ChainSnapshot) -> ChainSnapshot | None:
        if self._chain is None:
            return snap
        underlying, lo, hi, window = self._chain
        if snap.underlying != underlying:
            return None
        days = snap.maturity * 365.0
        mask = (days > 0) & (days >= lo) & (days <= hi) & (np.abs(snap.strike / snap.underlying_price - 1) <= window)
        return snap if mask.all() else snap.select(mask)

    async def snapshots(self) -> AsyncIterator[ChainSnapshot]:
        if self.status.state is FeedState.DISCONNECTED:
            await self.connect()
        previous: datetime | None = None
        for snap in self._source():
            if self._closed.is_set():
                return
            if self.speed > 0 and previous is not None:
                delay = (snap.timestamp - previous).total_seconds() / self.speed
                if delay > 0:
                    if await closed_within(self._closed, delay):
                        return
            else:
                await asyncio.sleep(0)
            previous = snap.timestamp
            chosen = self._select(snap)
            if chosen is not None:
                yield chosen
        self._set_status(FeedState.DISCONNECTED, datetime.now(timezone.utc), "replay finished")
