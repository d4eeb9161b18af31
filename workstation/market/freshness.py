"""How old each price of a snapshot is: the index, the hedge future and every option carry their own age.

A price older than `market.stale_after_s` is unusable for signals, hedges and marks; a frozen index or future
(its feed line died while the options kept coming) therefore never passes as live.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from workstation.domain import ChainSnapshot


@dataclass(frozen=True)
class Freshness:
    """Ages in seconds at `at` (the snapshot's time or the engine clock)."""

    at: datetime
    limit_s: float
    index_age_s: float
    future_age_s: float            # NaN: the snapshot has no future quote
    option_ages_s: np.ndarray

    @property
    def index_stale(self) -> bool:
        return not self.index_age_s <= self.limit_s

    @property
    def future_stale(self) -> bool:
        """No quote at all counts as stale: the hedge has nothing to trade on."""
        return not self.future_age_s <= self.limit_s

    @property
    def stale_options(self) -> int:
        return int(np.count_nonzero(~(self.option_ages_s <= self.limit_s)))

    def stale(self) -> list[str]:
        """What is stale, for the status bar: e.g. ['index 42s', 'future 40s', 'options 12/80']."""
        out = []
        if self.index_stale:
            out.append(f"index {self.index_age_s:.0f}s")
        if self.future_stale and math.isfinite(self.future_age_s):
            out.append(f"future {self.future_age_s:.0f}s")
        if self.stale_options:
            out.append(f"options {self.stale_options}/{len(self.option_ages_s)}")
        return out


def freshness(snapshot: ChainSnapshot, limit_s: float, at: datetime | None = None) -> Freshness:
    """The age of every price in `snapshot` at `at` (default: the snapshot's own time)."""
    at = at or snapshot.timestamp
    lag = (at - snapshot.timestamp).total_seconds()
    stamp = np.datetime64(snapshot.timestamp.astimezone(timezone.utc).replace(tzinfo=None), "ms")
    option_ages = (stamp - snapshot.quote_time).astype(np.float64) / 1e3 + lag
    return Freshness(at, float(limit_s), snapshot.index_age_s + lag, snapshot.future_age_s + lag, option_ages)
