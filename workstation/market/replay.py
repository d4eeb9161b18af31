"""ReplayFeed: play recorded Parquet snapshots back (at the recorded pace, faster, or as fast as possible), or
read a Cboe delayed-quotes CSV as a one-snapshot feed.

`speed` = 1 plays at the recorded pace, 10 ten times faster, 0 as fast as possible. The round trip
record -> replay is exact (`ChainSnapshot.equals`).
"""
from __future__ import annotations

import asyncio
import csv
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
from workstation.market.recorder import file_metadata
from workstation.sim.listing import contract_ids

_CALL = pa.scalar("C")     # built once: converting "C" on every call imports (and misses) dateutil
CBOE_CLOSE = time(16, 15)   # Cboe's delayed-quote export after the close carries the 16:15 ET closing quotes


def recording_files(path: Path) -> list[Path]:
    """Parquet files of a recording (a file, or every *.parquet under a directory, in time order)."""
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted(path.rglob("*.parquet"))


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


def read_recording(path: Path) -> Iterator[ChainSnapshot]:
    """Snapshots of a recording, in file and row-group order (each row group is one snapshot)."""
    for file in recording_files(path):
        source = file_metadata(file).get("source", "replay")
        reader = pq.ParquetFile(file)
        for i in range(reader.num_row_groups):
            table = reader.read_row_group(i, use_threads=False)   # one snapshot: threads only add switches
            # a row group normally holds one snapshot; split defensively on (timestamp, sequence) changes
            ts = table.column("timestamp").to_numpy().astype("int64")
            seq = table.column("sequence").to_numpy()
            cuts = np.flatnonzero((np.diff(ts) != 0) | (np.diff(seq) != 0)) + 1
            for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(ts)]):
                yield _snapshot(table.slice(lo, hi - lo), source)


def read_cboe_csv(path: Path) -> ChainSnapshot:
    """One snapshot from a cleaned Cboe delayed-quotes CSV (columns snapshot_date, underlying, spot, expiry_or_T,
    strike, type, bid, ask, root; see the README beside the data). Sizes are not in the export: they read as 0.
    Contract ids follow the simulator's scheme; quotes are stamped 16:15 ET of the snapshot date."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path}: no quotes")
    missing = {"snapshot_date", "underlying", "spot", "expiry_or_T", "strike", "type", "bid", "ask"} - set(rows[0])
    if missing:
        raise ValueError(f"{path}: not a Cboe quotes CSV, missing columns {sorted(missing)}")
    day = date.fromisoformat(rows[0]["snapshot_date"])
    stamp = datetime.combine(day, CBOE_CLOSE, tzinfo=NEW_YORK).astimezone(timezone.utc)
    underlying = rows[0]["underlying"]
    cls = np.array([r.get("root") or underlying for r in rows], dtype="<U8")
    expiry = np.array([r["expiry_or_T"] for r in rows], dtype="datetime64[D]")
    strike = np.array([float(r["strike"]) for r in rows])
    is_call = np.array([r["type"].upper().startswith("C") for r in rows])
    num = lambda s: float(s) if s not in ("", None) else np.nan
    qt = np.datetime64(stamp.replace(tzinfo=None), "ms")
    return ChainSnapshot.from_columns(
        timestamp=stamp, underlying=underlying, underlying_price=float(rows[0]["spot"]), source="cboe-csv",
        columns={"contract_id": contract_ids(cls, expiry, strike, is_call), "trading_class": cls, "expiry": expiry,
                 "strike": strike, "is_call": is_call, "bid": np.array([num(r["bid"]) for r in rows]),
                 "ask": np.array([num(r["ask"]) for r in rows]), "bid_size": np.zeros(len(rows), np.int64),
                 "ask_size": np.zeros(len(rows), np.int64), "am_settled": cls == underlying,
                 "multiplier": np.full(len(rows), 100.0), "quote_time": np.full(len(rows), qt)})


class ReplayFeed(StatusMixin):
    """MarketFeed over a recording directory/file or a Cboe CSV. Ends (status DISCONNECTED) after the last one."""

    source = "replay"
    clock_label = "replay"           # the market clock is the recording's timestamps

    def __init__(self, path: Path, speed: float = 0.0) -> None:
        self.path = Path(path)
        self.speed = speed
        self._chain: tuple[str, float, float, float] | None = None
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
        if not self.path.exists():
            raise ConnectionError(f"replay source {self.path} does not exist")
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
            yield read_cboe_csv(self.path)
        else:
            yield from read_recording(self.path)

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
