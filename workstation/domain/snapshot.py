"""ChainSnapshot: one instant of an option chain, stored as columnar numpy arrays (one row per option)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property

import numpy as np

from .calendar import NEW_YORK, settlement_instant  # noqa: F401  (NEW_YORK re-exported)
from .contracts import Contract, Right, SecType, Settlement
from .quotes import Quote

SECONDS_PER_YEAR = 365.0 * 24 * 3600

# name -> dtype of every per-option column
COLUMNS: dict[str, np.dtype] = {
    "contract_id": np.dtype(np.int64),
    "trading_class": np.dtype("<U8"),
    "expiry": np.dtype("datetime64[D]"),
    "strike": np.dtype(np.float64),
    "is_call": np.dtype(np.bool_),
    "bid": np.dtype(np.float64),
    "ask": np.dtype(np.float64),
    "bid_size": np.dtype(np.int64),
    "ask_size": np.dtype(np.int64),
    "am_settled": np.dtype(np.bool_),
    "multiplier": np.dtype(np.float64),
    "quote_time": np.dtype("datetime64[ms]"),
}


def series_key(expiry, am_settled) -> np.ndarray:
    """The expiry-series key of each row: an expiry with its settlement (SPX AM monthlies and PM weeklies share
    dates), as one int64 = days since 1970 x 2 + 1 when AM-settled. Vectorised over columns (or scalars)."""
    days = np.asarray(expiry, dtype="datetime64[D]").astype(np.int64)
    return days * 2 + np.asarray(am_settled, dtype=np.int64)


def series_label(expiry, am_settled) -> str:
    """'2025-10-17 PM': an expiry series as the per-expiry tables key it (the fit's errors and the fair value's
    slices meet on it in the Calibration panel)."""
    return f"{str(expiry)[:10]} {'AM' if am_settled else 'PM'}"


def series_of_key(key: int) -> tuple[np.datetime64, bool]:
    """The (expiry, AM-settled) of one `series_key`."""
    return np.datetime64(int(key) // 2, "D"), bool(int(key) % 2)


def series_index(keys: np.ndarray, known: np.ndarray) -> np.ndarray:
    """For each of `keys`, its position in `known` (-1 when absent): one sort and one search, no Python loop."""
    keys, known = np.asarray(keys, dtype=np.int64), np.asarray(known, dtype=np.int64)
    if known.size == 0:
        return np.full(keys.shape, -1, dtype=np.int64)
    order = np.argsort(known, kind="stable")
    pos = np.clip(np.searchsorted(known[order], keys), 0, known.size - 1)
    return np.where(known[order][pos] == keys, order[pos], -1).astype(np.int64)


def rows_by_series(series: np.ndarray, n: int, rows: np.ndarray | None = None,
                   within: np.ndarray | None = None) -> list[np.ndarray]:
    """The rows of each series index 0..n-1 (only `rows`, when given), each in the order of `within` when given:
    one sort of the chain, not a mask over it per series. Rows whose index is outside 0..n-1 are left out."""
    rows = np.arange(np.size(series)) if rows is None else np.asarray(rows)
    keys = np.asarray(series)[rows]
    order = np.argsort(keys, kind="stable") if within is None else np.lexsort((np.asarray(within)[rows], keys))
    rows, keys = rows[order], keys[order]
    bounds = np.searchsorted(keys, np.arange(n + 1))
    return [rows[bounds[i]:bounds[i + 1]] for i in range(n)]


@dataclass(frozen=True, eq=False)
class ChainSnapshot:
    """Quotes for a whole chain at `timestamp`; per-option columns are read-only numpy arrays of equal length.

    Prices are in index points (premium per unit; multiply by `multiplier` for dollars). Missing bids or asks
    are NaN. `future` is the hedge instrument's quote when the feed has one (its `timestamp` is when it was
    quoted). `underlying_time` is when the index price was last updated (None: as of `timestamp`), so a frozen
    index shows its age (`index_age_s`).
    """

    timestamp: datetime
    underlying: str
    underlying_price: float
    contract_id: np.ndarray
    trading_class: np.ndarray
    expiry: np.ndarray
    strike: np.ndarray
    is_call: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    am_settled: np.ndarray
    multiplier: np.ndarray
    quote_time: np.ndarray
    source: str = "sim"
    future: Quote | None = None
    future_contract: Contract | None = None
    sequence: int = 0
    metadata: dict = field(default_factory=dict)
    underlying_time: datetime | None = None

    def __post_init__(self) -> None:
        if self.timestamp.tzinfo is None:
            raise ValueError("ChainSnapshot.timestamp must be timezone-aware")
        if not np.isfinite(self.underlying_price) or self.underlying_price <= 0:
            raise ValueError(f"ChainSnapshot.underlying_price must be > 0, got {self.underlying_price!r}")
        n = len(self.contract_id)
        for name, dtype in COLUMNS.items():
            arr = np.asarray(getattr(self, name))
            if arr.ndim != 1 or len(arr) != n:
                raise ValueError(f"ChainSnapshot.{name} must be 1-D of length {n}, got shape {arr.shape}")
            if arr.dtype != dtype:
                arr = arr.astype(dtype)
            else:
                arr = arr.copy() if arr.flags.writeable else arr
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        if n and np.any(self.strike <= 0):
            raise ValueError("ChainSnapshot.strike must be > 0")

    @classmethod
    def from_columns(cls, *, timestamp: datetime, underlying: str, underlying_price: float,
                     columns: dict[str, np.ndarray], **extra) -> "ChainSnapshot":
        """Build from a dict of columns; `am_settled`, `multiplier` and `quote_time` have defaults."""
        n = len(columns["contract_id"])
        cols = dict(columns)
        cols.setdefault("am_settled", np.zeros(n, dtype=bool))
        cols.setdefault("multiplier", np.full(n, 100.0))
        cols.setdefault("quote_time", np.full(n, np.datetime64(timestamp.replace(tzinfo=None), "ms")))
        missing = set(COLUMNS) - set(cols)
        if missing:
            raise ValueError(f"ChainSnapshot columns missing: {sorted(missing)}")
        return cls(timestamp=timestamp, underlying=underlying, underlying_price=underlying_price,
                   **{k: cols[k] for k in COLUMNS}, **extra)

    def __len__(self) -> int:
        return len(self.contract_id)

    def columns(self) -> dict[str, np.ndarray]:
        """The per-option columns by name."""
        return {name: getattr(self, name) for name in COLUMNS}

    @cached_property
    def mid(self) -> np.ndarray:
        """Mid price; NaN where a side is missing or the bid is zero."""
        ok = np.isfinite(self.bid) & np.isfinite(self.ask) & (self.bid > 0)
        return np.where(ok, 0.5 * (self.bid + self.ask), np.nan)

    @cached_property
    def series_key(self) -> np.ndarray:
        """The expiry-series key of each row (`series_key`: expiry and AM/PM settlement)."""
        return series_key(self.expiry, self.am_settled)

    @cached_property
    def maturity(self) -> np.ndarray:
        """Years (ACT/365, to the settlement instant) from `timestamp` to each option's settlement."""
        out = np.empty(len(self), dtype=np.float64)
        if not len(self):
            return out
        uniq, inverse = np.unique(self.series_key, return_inverse=True)
        values = np.empty(len(uniq))
        for j, key in enumerate(uniq):                  # once per expiry series, not per row
            expiry, am = series_of_key(key)
            instant = settlement_instant(expiry.astype(date), am)
            values[j] = (instant - self.timestamp).total_seconds() / SECONDS_PER_YEAR
        out[:] = values[inverse]
        return out

    def select(self, mask: np.ndarray) -> "ChainSnapshot":
        """A snapshot with only the rows where `mask` is true (or the given indices)."""
        cols = {name: arr[mask] for name, arr in self.columns().items()}
        return ChainSnapshot(timestamp=self.timestamp, underlying=self.underlying,
                             underlying_price=self.underlying_price, **cols, source=self.source,
                             future=self.future, future_contract=self.future_contract,
                             sequence=self.sequence, metadata=dict(self.metadata),
                             underlying_time=self.underlying_time)

    @property
    def index_age_s(self) -> float:
        """Seconds between the last update of the index price and `timestamp` (0 when not tracked)."""
        return 0.0 if self.underlying_time is None else (self.timestamp - self.underlying_time).total_seconds()

    @property
    def future_age_s(self) -> float:
        """Seconds between the future's quote and `timestamp` (NaN without a future quote)."""
        return math.nan if self.future is None else (self.timestamp - self.future.timestamp).total_seconds()

    def index_of(self, contract_id: int) -> int | None:
        """Row of `contract_id`, or None when the snapshot does not quote it."""
        order, ids = self._ids_sorted
        at = int(np.searchsorted(ids, int(contract_id)))
        return int(order[at]) if at < ids.size and ids[at] == int(contract_id) else None

    def build_index(self) -> None:
        """Build the contract-id lookup of `index_of` now: the engine does it in its worker thread, so the event
        loop's first lookup does not pay for it."""
        self._ids_sorted

    @cached_property
    def _ids_sorted(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows in contract-id order, the ids in that order): a sort, not a 26k-entry dict built in Python."""
        order = np.argsort(self.contract_id, kind="stable")
        return order, self.contract_id[order]

    def contract(self, row: int) -> Contract:
        """The Contract of row `row`."""
        return Contract(
            contract_id=int(self.contract_id[row]), symbol=self.underlying, sec_type=SecType.OPTION,
            trading_class=str(self.trading_class[row]), expiry=self.expiry[row].astype(date),
            strike=float(self.strike[row]), right=Right.CALL if self.is_call[row] else Right.PUT,
            multiplier=float(self.multiplier[row]),
            settlement=Settlement.AM if self.am_settled[row] else Settlement.PM)

    def quote(self, row: int) -> Quote:
        """The Quote of row `row`."""
        return Quote(int(self.contract_id[row]), float(self.bid[row]), float(self.ask[row]),
                     int(self.bid_size[row]), int(self.ask_size[row]), self.timestamp)

    def equals(self, other: "ChainSnapshot") -> bool:
        """Exact equality of header and every column (NaN == NaN); used to check record/replay round trips."""
        if (self.timestamp, self.underlying, self.underlying_price, len(self)) != (
                other.timestamp, other.underlying, other.underlying_price, len(other)):
            return False
        for name in COLUMNS:
            a, b = getattr(self, name), getattr(other, name)
            if a.dtype.kind == "f":
                if not np.array_equal(a, b, equal_nan=True):
                    return False
            elif not np.array_equal(a, b):
                return False
        return True
