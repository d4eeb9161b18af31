"""The market surface of one snapshot: forwards from put-call parity, bid/mid/ask implied vols, filters.

The forward of each expiry is computed here and nowhere else (one home for each fact).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from enum import IntEnum

import numpy as np

from ..config import CalibrationConfig, MarketConfig
from ..domain import ChainSnapshot
from ..domain.snapshot import rows_by_series, series_index, series_key, series_of_key
from ..pricing import implied_vol
from .forwards import ExpiryForward, series_forwards

SECONDS_PER_DAY = 86_400.0


class Filter(IntEnum):
    """Why a quote is not usable (0 = usable). The first reason that applies is recorded."""

    OK = 0
    NON_FINITE = 1
    NO_BID = 2
    CROSSED = 3
    TOO_WIDE = 4
    STALE = 5
    EXPIRY_WINDOW = 6
    MONEYNESS_WINDOW = 7
    NO_FORWARD = 8
    NO_IV = 9
    JUMP = 10              # jumped from its last good value (strategy/sanity.py)


@dataclass(frozen=True, eq=False)
class Surface:
    """Per-option arrays aligned with `snapshot` rows, plus the per-expiry forwards."""

    snapshot: ChainSnapshot
    maturity: np.ndarray
    forward: np.ndarray
    discount: np.ndarray
    iv_bid: np.ndarray
    iv_mid: np.ndarray
    iv_ask: np.ndarray
    filter_reason: np.ndarray          # Filter codes
    calibration_mask: np.ndarray       # quotes the Heston fit uses
    expiries: list[ExpiryForward] = field(default_factory=list)

    @property
    def usable(self) -> np.ndarray:
        return self.filter_reason == Filter.OK

    @property
    def filter_counts(self) -> dict[str, int]:
        """Quotes dropped per reason (and how many are usable)."""
        codes, counts = np.unique(self.filter_reason, return_counts=True)
        return {Filter(int(c)).name: int(n) for c, n in zip(codes, counts)}

    @property
    def moneyness(self) -> np.ndarray:
        return self.snapshot.strike / self.forward

    def expiry_index(self) -> np.ndarray:
        """For each row, the index of its series in `expiries` (-1 when it has none); computed once (read-only)."""
        return self._expiry_index

    @cached_property
    def _expiry_index(self) -> np.ndarray:
        known = series_key([e.expiry for e in self.expiries], [e.am_settled for e in self.expiries])
        index = series_index(self.snapshot.series_key, known)
        index.setflags(write=False)
        return index

    @cached_property
    def smile_rows(self) -> list[np.ndarray]:
        """Per expiry series (in `expiries` order): its usable out-of-the-money rows with a mid IV, in strike
        order — the smile a trader reads (puts below the forward, calls from it up)."""
        snap = self.snapshot
        otm = np.where(snap.is_call, snap.strike >= self.forward, snap.strike < self.forward)
        good = self.usable & otm & np.isfinite(self.iv_mid)
        return rows_by_series(self.expiry_index(), len(self.expiries), np.flatnonzero(good), snap.strike)

    @cached_property
    def expiry_rows(self) -> list[np.ndarray]:
        """Per expiry series (in `expiries` order): all its rows, in row order."""
        return rows_by_series(self.expiry_index(), len(self.expiries))

    def prepare_views(self) -> None:
        """Make the cached lookups now: the engine calls this in its worker thread, so the window's thread finds
        them made (each is a handful of passes over the whole chain, and on the window's thread every pass is a
        point where it can wait for the GIL)."""
        self.expiry_index()
        self.smile_rows
        self.expiry_rows


def _series_forwards(snap: ChainSnapshot, maturity: np.ndarray, mid: np.ndarray,
                     window: float) -> tuple[list[ExpiryForward], np.ndarray, np.ndarray]:
    """Forward and discount per expiry series (expiry, AM/PM), broadcast back to rows."""
    spot = snap.underlying_price
    uniq, first, series = np.unique(snap.series_key, return_index=True, return_inverse=True)
    near = np.abs(snap.strike / spot - 1.0) <= window
    fwd, df, pairs, resid = series_forwards(series, len(uniq), snap.strike, snap.is_call, mid, near,
                                           maturity[first])
    reliable = np.isfinite(fwd) & (np.abs(fwd / spot - 1.0) < 0.2)
    fwd[~reliable], df[~reliable] = np.nan, np.nan
    out = [ExpiryForward(*series_of_key(key), float(maturity[i]), float(f), float(d), int(n), float(r), bool(ok))
           for key, i, f, d, n, r, ok in zip(uniq, first, fwd, df, pairs, resid, reliable)]
    return out, fwd[series], df[series]


def build_surface(snap: ChainSnapshot, market: MarketConfig, calibration: CalibrationConfig,
                  parity_window: float = 0.1) -> Surface:
    """Forwards, implied vols and quality filters for one snapshot (vectorised over the chain)."""
    maturity = snap.maturity
    bid, ask = snap.bid, snap.ask
    mid = snap.mid
    age_s = (np.datetime64(snap.timestamp.replace(tzinfo=None), "ms") - snap.quote_time).astype(np.float64) / 1e3
    # parity on fresh quotes only: a stale pair (a feed that carries each quote with its age) must not move the
    # forward every fresh quote is priced off
    fresh_mid = np.where(age_s <= market.stale_after_s, mid, np.nan)
    expiries, forward, discount = _series_forwards(snap, maturity, fresh_mid, parity_window)

    reason = np.zeros(len(snap), dtype=np.int8)

    def mark(mask: np.ndarray, why: Filter) -> None:
        reason[(reason == Filter.OK) & mask] = why

    days = maturity * 365.0
    mark(~np.isfinite(ask) | ~np.isfinite(maturity) | (maturity <= 0), Filter.NON_FINITE)
    mark(~np.isfinite(bid) | (bid <= 0), Filter.NO_BID)
    mark(bid >= ask, Filter.CROSSED)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_spread = (ask - bid) / mid
    mark(~(rel_spread <= market.max_rel_spread), Filter.TOO_WIDE)
    mark(age_s > market.stale_after_s, Filter.STALE)
    mark((days < market.min_expiry_days) | (days > market.max_expiry_days), Filter.EXPIRY_WINDOW)
    mark(np.abs(snap.strike / snap.underlying_price - 1.0) > market.strike_window, Filter.MONEYNESS_WINDOW)
    mark(~np.isfinite(forward), Filter.NO_FORWARD)

    iv = {}
    for name, price in (("bid", bid), ("mid", mid), ("ask", ask)):
        iv[name] = implied_vol(price, forward, snap.strike, maturity, discount, snap.is_call)
    mark(~np.isfinite(iv["mid"]), Filter.NO_IV)

    money = snap.strike / forward
    otm = np.where(snap.is_call, money >= 1.0, money < 1.0)
    calib = ((reason == Filter.OK)
             & (days >= calibration.min_expiry_days) & (days <= calibration.max_expiry_days)
             & (money >= calibration.min_moneyness) & (money <= calibration.max_moneyness)
             & (rel_spread <= calibration.max_rel_spread) & (bid >= calibration.min_bid))
    if calibration.otm_only:
        calib &= otm
    return Surface(snap, maturity, forward, discount, iv["bid"], iv["mid"], iv["ask"], reason, calib, expiries)
