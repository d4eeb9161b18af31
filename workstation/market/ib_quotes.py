"""The latest option quotes of the IB feed: snapshot requests paced within the line budget, which options to refresh
next (never quoted first, then the stalest), and the ChainSnapshot columns the quotes make."""
from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np

from workstation.market.ib_session import expiry_of

if TYPE_CHECKING:
    from workstation.market.ib_session import IBConnection


@dataclass
class OptionQuote:
    bid: float
    ask: float
    bid_size: int
    ask_size: int
    at: datetime


def price_of(value: float) -> float:
    """A price IB sent, NaN when there is none (IB sends -1 or nothing)."""
    return float(value) if value is not None and math.isfinite(value) and value > 0 else math.nan


def size_of(value: float) -> int:
    return int(value) if value is not None and math.isfinite(value) and value > 0 else 0


class OptionQuotes:
    """The latest quote of every option snapshotted so far, by conId."""

    def __init__(self) -> None:
        self.latest: dict[int, OptionQuote] = {}

    def clear(self) -> None:
        self.latest.clear()

    def refresh_order(self, wanted: list) -> list:
        """Never-quoted contracts first (nearest the money first), then the stalest quotes."""
        epoch = datetime.min.replace(tzinfo=timezone.utc)
        fresh_rank = {id(c): i for i, c in enumerate(wanted)}
        return sorted(wanted, key=lambda c: (c.conId in self.latest,
                                             self.latest[c.conId].at if c.conId in self.latest else epoch,
                                             fresh_rank[id(c)]))

    async def request(self, conn: IBConnection, contracts: list, timeout_s: float) -> int:
        """Snapshot requests for `contracts` (paced); returns how many answered. Uses ib_async's request
        bookkeeping (as reqTickersAsync does) but with a timeout and without blocking on missing answers."""
        ib = conn.ib
        wrapper = ib.wrapper
        pending: list[tuple[int, asyncio.Future, object]] = []
        for c in contracts:
            if not ib.isConnected():
                break
            await conn.pacer.wait()
            req_id = ib.client.getReqId()
            future = wrapper.startReq(req_id, c)
            ticker = wrapper.startTicker(req_id, c, "snapshot")
            ib.client.reqMktData(req_id, c, "", True, False, [])
            pending.append((req_id, future, ticker))
        if not pending:
            return 0
        await asyncio.wait([f for _, f, _ in pending], timeout=timeout_s)
        now = conn.now()
        answered = 0
        for req_id, future, ticker in pending:
            wrapper.endTicker(ticker, "snapshot")
            if not future.done():
                wrapper._endReq(req_id)
                continue
            if future.exception() is not None:
                continue
            bid, ask = price_of(ticker.bid), price_of(ticker.ask)
            if math.isnan(bid) and math.isnan(ask):
                continue
            self.latest[ticker.contract.conId] = OptionQuote(bid, ask, size_of(ticker.bidSize),
                                                             size_of(ticker.askSize), now)
            answered += 1
        return answered

    def columns(self, wanted: list, at: datetime, stale_after_s: float) -> tuple[dict[str, np.ndarray], float]:
        """The snapshot columns of the wanted options quoted at least once, and the coverage: the share of the
        wanted options with a quote no older than `stale_after_s` at `at`."""
        rows = [c for c in wanted if c.conId in self.latest]
        quotes = [self.latest[c.conId] for c in rows]
        fresh = sum(1 for q in quotes if (at - q.at).total_seconds() <= stale_after_s)
        coverage = fresh / len(wanted) if wanted else 0.0
        cols = {
            "contract_id": np.array([c.conId for c in rows], dtype=np.int64),
            "trading_class": np.array([c.tradingClass for c in rows], dtype="<U8"),
            "expiry": np.array([expiry_of(c.lastTradeDateOrContractMonth) for c in rows], dtype="datetime64[D]"),
            "strike": np.array([c.strike for c in rows], dtype=np.float64),
            "is_call": np.array([c.right.upper().startswith("C") for c in rows], dtype=bool),
            "bid": np.array([q.bid for q in quotes], dtype=np.float64),
            "ask": np.array([q.ask for q in quotes], dtype=np.float64),
            "bid_size": np.array([q.bid_size for q in quotes], dtype=np.int64),
            "ask_size": np.array([q.ask_size for q in quotes], dtype=np.int64),
            "am_settled": np.array([c.tradingClass == "SPX" for c in rows], dtype=bool),
            "multiplier": np.array([float(c.multiplier or 100) for c in rows], dtype=np.float64),
            "quote_time": np.array([np.datetime64(q.at.astimezone(timezone.utc).replace(tzinfo=None), "ms")
                                    for q in quotes], dtype="datetime64[ms]").reshape(len(rows)),
        }
        return cols, coverage
