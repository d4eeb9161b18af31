"""The quotes of the IB feed: the latest option quotes (snapshot requests paced within the line budget, which
options to refresh next: never quoted first, then the stalest; the ChainSnapshot columns they make) and the two
streaming lines, the index and the hedge future."""
from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np

from workstation.domain import Contract, Quote
from workstation.market.ib_session import domain_contract, expiry_of

if TYPE_CHECKING:
    from workstation.market.ib_session import IBConnection

log = logging.getLogger(__name__)


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


class StreamingLines:
    """The index and the hedge future on streaming lines (2 of the line budget), and the server time each last
    ticked. The feed qualifies the contracts (`index`, `future`); `ensure()` opens the lines not open yet."""

    def __init__(self, conn: IBConnection) -> None:
        self.conn = conn
        self.index = None                           # the qualified ib_async contracts
        self.future = None
        self.index_ticker = None
        self.future_ticker = None
        self.index_at: datetime | None = None       # server time of the last index tick
        self.future_at: datetime | None = None      # server time of the last future tick
        self.ok = False                             # both lines requested (as far as contracts are known)
        self.requested_at: datetime | None = None   # server time the lines were last requested

    def ensure(self) -> None:
        if self.ok:
            return
        ib = self.conn.ib
        self.requested_at = self.conn.now()
        if self.index is not None and self.index_ticker is None:
            self.index_ticker = ib.reqMktData(self.index, "", False, False)
            self.index_ticker.updateEvent += self._index_ticked
        if self.future is not None and self.future_ticker is None:
            self.future_ticker = ib.reqMktData(self.future, "", False, False)
            self.future_ticker.updateEvent += self._future_ticked
        self.ok = True

    def cancel(self) -> None:
        ib = self.conn.ib
        for ticker, handler in ((self.index_ticker, self._index_ticked), (self.future_ticker, self._future_ticked)):
            if ticker is not None:
                ticker.updateEvent -= handler
            if ticker is not None and ib.isConnected():
                try:
                    ib.cancelMktData(ticker.contract)
                except Exception:
                    log.debug("cancelMktData failed", exc_info=True)
        self.forget()

    def forget(self) -> None:
        """The tickers are gone (ib_async drops them on a reconnect): the next `ensure()` subscribes again."""
        self.index_ticker = self.future_ticker = None
        self.ok = False

    def silent(self, at: datetime, limit_s: float) -> list[str]:
        """The requested lines that have not ticked for `limit_s` since they were requested: a request TWS
        dropped (error 100, pacing) or a line that died without a farm notice. Empty before the first request."""
        if not self.ok or self.requested_at is None or (at - self.requested_at).total_seconds() <= limit_s:
            return []
        out = []
        for name, ticker, ticked in (("index", self.index_ticker, self.index_at),
                                     ("future", self.future_ticker, self.future_at)):
            if ticker is not None and (ticked is None or (at - ticked).total_seconds() > limit_s):
                out.append(name)
        return out

    def _index_ticked(self, ticker) -> None:
        if ticker is self.index_ticker:
            self.index_at = self.conn.now()

    def _future_ticked(self, ticker) -> None:
        if ticker is self.future_ticker:
            self.future_at = self.conn.now()

    def index_price(self) -> float:
        t = self.index_ticker
        if t is None:
            return math.nan
        for value in (t.last, t.close, t.marketPrice()):
            if value is not None and math.isfinite(value) and value > 0:
                return float(value)
        return math.nan

    def future_quote(self, at: datetime) -> tuple[Quote | None, Contract | None]:
        """The hedge future's quote as of its last tick (None before one or when crossed) and its contract."""
        ft = self.future_ticker
        if self.future is None or ft is None:
            return None, None
        quote = None
        bid, ask = price_of(ft.bid), price_of(ft.ask)
        if not (bid > ask) and self.future_at is not None:       # stamped when it last ticked
            quote = Quote(self.future.conId, bid, ask, size_of(ft.bidSize), size_of(ft.askSize),
                          min(self.future_at, at))
        return quote, domain_contract(self.future)
