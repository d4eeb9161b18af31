"""Record ChainSnapshots to Parquet: one row per option per snapshot, one row group per snapshot.

Files are partitioned by trade day (New York date): ``OUT/date=YYYY-MM-DD/<source>-<HHMMSS>.parquet``. The
source and a format version are in the file metadata. Every column needed for an exact round trip is stored
(am_settled, multiplier, quote_time, the future's contract and quote, the sequence number).
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from workstation.domain import ChainSnapshot
from workstation.domain.snapshot import NEW_YORK

FORMAT = "heston-workstation/snapshots/1"
TS = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema([
    ("timestamp", TS), ("sequence", pa.int64()), ("contract_id", pa.int64()), ("underlying", pa.string()),
    ("trading_class", pa.string()), ("expiry", pa.date32()), ("strike", pa.float64()), ("right", pa.string()),
    ("bid", pa.float64()), ("ask", pa.float64()), ("bid_size", pa.int64()), ("ask_size", pa.int64()),
    ("underlying_price", pa.float64()), ("am_settled", pa.bool_()), ("multiplier", pa.float64()),
    ("quote_time", pa.timestamp("ms")),
    ("future_contract_id", pa.int64()), ("future_symbol", pa.string()), ("future_trading_class", pa.string()),
    ("future_expiry", pa.date32()), ("future_multiplier", pa.float64()), ("future_exchange", pa.string()),
    ("future_settlement", pa.string()), ("future_bid", pa.float64()), ("future_ask", pa.float64()),
    ("future_bid_size", pa.int64()), ("future_ask_size", pa.int64()), ("future_quote_time", TS),
])


def snapshot_table(snap: ChainSnapshot) -> pa.Table:
    """The rows of one snapshot (snapshot-level fields repeated on every row; Parquet encodes them cheaply)."""
    n = len(snap)
    rep = lambda value, typ: pa.array([value] * n, type=typ)
    fut, fc = snap.future, snap.future_contract
    cols = {
        "timestamp": rep(snap.timestamp, TS), "sequence": rep(snap.sequence, pa.int64()),
        "contract_id": pa.array(snap.contract_id), "underlying": rep(snap.underlying, pa.string()),
        "trading_class": pa.array(snap.trading_class.astype(str)), "expiry": pa.array(snap.expiry, pa.date32()),
        "strike": pa.array(snap.strike), "right": pa.array(np.where(snap.is_call, "C", "P")),
        "bid": pa.array(snap.bid, from_pandas=False), "ask": pa.array(snap.ask, from_pandas=False),
        "bid_size": pa.array(snap.bid_size), "ask_size": pa.array(snap.ask_size),
        "underlying_price": rep(snap.underlying_price, pa.float64()), "am_settled": pa.array(snap.am_settled),
        "multiplier": pa.array(snap.multiplier), "quote_time": pa.array(snap.quote_time, pa.timestamp("ms")),
        "future_contract_id": rep(fc.contract_id if fc else None, pa.int64()),
        "future_symbol": rep(fc.symbol if fc else None, pa.string()),
        "future_trading_class": rep(fc.trading_class if fc else None, pa.string()),
        "future_expiry": rep(fc.expiry if fc else None, pa.date32()),
        "future_multiplier": rep(fc.multiplier if fc else None, pa.float64()),
        "future_exchange": rep(fc.exchange if fc else None, pa.string()),
        "future_settlement": rep(fc.settlement.value if fc else None, pa.string()),
        "future_bid": rep(fut.bid if fut else None, pa.float64()),
        "future_ask": rep(fut.ask if fut else None, pa.float64()),
        "future_bid_size": rep(fut.bid_size if fut else None, pa.int64()),
        "future_ask_size": rep(fut.ask_size if fut else None, pa.int64()),
        "future_quote_time": rep(fut.timestamp if fut else None, TS),
    }
    return pa.Table.from_pydict(cols, schema=SCHEMA)


class SnapshotRecorder:
    """Append snapshots to day-partitioned Parquet files under `out`; `close()` finishes the files."""

    def __init__(self, out: Path, source: str | None = None) -> None:
        self.out = Path(out)
        self.source = source
        self.files: list[Path] = []
        self.snapshots = 0
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._day: date | None = None

    def write(self, snap: ChainSnapshot) -> None:
        """Append one snapshot (an empty one is skipped: it has no rows to carry its header)."""
        if not len(snap):
            return
        day = snap.timestamp.astimezone(NEW_YORK).date()
        if self._writer is None or day != self._day:
            self._open(day, snap)
        assert self._writer is not None
        self._writer.write_table(snapshot_table(snap))
        self.snapshots += 1
        self.rows += len(snap)

    def _open(self, day: date, snap: ChainSnapshot) -> None:
        self.close()
        source = self.source or snap.source
        folder = self.out / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = snap.timestamp.astimezone(NEW_YORK).strftime("%H%M%S")
        path = folder / f"{source}-{stamp}.parquet"
        i = 1
        while path.exists():
            path, i = folder / f"{source}-{stamp}-{i}.parquet", i + 1
        meta = {b"source": source.encode(), b"format": FORMAT.encode(),
                b"created": datetime.now(timezone.utc).isoformat().encode(),
                b"underlying": snap.underlying.encode()}
        self._writer = pq.ParquetWriter(path, SCHEMA.with_metadata(meta), compression="zstd")
        self._day = day
        self.files.append(path)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "SnapshotRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def file_metadata(path: Path) -> dict[str, str]:
    """The key/value metadata of a recording file (source, format, ...)."""
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items()}


__all__ = ["SnapshotRecorder", "snapshot_table", "file_metadata", "SCHEMA", "FORMAT"]
