"""Interactive Brokers market data with ib_async: the chain feed (`IBFeed`) on the shared IB session.

`IBFeed` discovers the SPX/XSP chain (reqSecDefOptParams for trading classes and expiries, then one contract-details
request per class and expiry, paced), keeps the index and the hedge future on streaming lines, and refreshes the
options inside the ATM window with snapshot requests that rotate over the wanted strikes within the line budget.
Every interval it emits a ChainSnapshot of the latest quote of each wanted option (`quote_time` per row) and reports
coverage. Live data when entitled, else delayed (not-entitled codes such as 354 / 10167 switch it), visible in the
status message. We compute IVs ourselves, so only bid/ask/sizes are read.

The connection, the pacer and the contract mapping live in `market/ib_session.py` (re-exported here).
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import datetime
from typing import AsyncIterator, Callable, Iterable

from ib_async import IB, Contract as IBContract, Option

from workstation.domain import ChainSnapshot, settlement_instant
from workstation.market.feed import FeedState, StatusMixin, closed_within
from workstation.market.ib_codes import NOT_ENTITLED, Code
from workstation.market.ib_quotes import OptionQuotes, StreamingLines
from workstation.market.ib_watch import SliceNeeds, WatchPlan, capacity, plan_watch
from workstation.market.ib_session import (  # noqa: F401  (Pacer, ib_contract: importable here as before)
    OPTION_EXCHANGE, ConnectionState, IBConnection, IBErrorInfo, Pacer, expiry_of, front_future, ib_contract,
    qualify_index)

log = logging.getLogger(__name__)

TRADING_CLASSES = {"SPX": ("SPX", "SPXW"), "XSP": ("XSP",)}
SNAPSHOT_TIMEOUT_S = 11.0       # TWS answers an option snapshot within ~11 s or never
ORDER_RESERVE_PER_S = 5.0       # of the pacing budget, kept free for orders and small requests
RECENTRE_SHARE = 0.0025         # the watch plan re-centres when the index has moved this far from its centre
REPLAN_AFTER_S = 300.0          # ... or this long after it was made (days to expiry move on)


class IBFeed(StatusMixin):
    """Chain snapshots of SPX or XSP from TWS / IB Gateway (or the practice gateway)."""

    source = "ib"

    def __init__(self, settings, connection: IBConnection | None = None, needs: SliceNeeds | None = None) -> None:
        self.settings = settings
        self.needs = needs or SliceNeeds()          # what a fair-value slice needs of an expiry (the watch plan)
        self.conn = connection or IBConnection(settings)
        m = settings.market
        self.interval_s = m.snapshot_interval_s
        self.stale_after_s = m.stale_after_s
        self.line_budget = settings.ib.line_budget
        self._chain = (m.underlying, m.min_expiry_days, m.max_expiry_days, m.strike_window)
        self.hedge_symbol = "MES" if settings.hedging.instrument == "MES" else "ES"
        self.delayed = settings.ib.market_data_type == "delayed"
        self.coverage = 0.0
        self.rotation_s = math.nan
        self.streams = StreamingLines(self.conn)                          # the index and the hedge future
        self._contracts: dict[tuple[str, str], list[IBContract]] = {}   # (class, expiry) -> contracts
        self._settles: dict[tuple[str, str], datetime] = {}             # (class, expiry) -> settlement instant
        self.plan: WatchPlan | None = None
        self._plan_made: tuple[float, float, int] | None = None        # (index, monotonic time, chain version)
        self._plan_said: tuple | None = None
        self._chain_version = 0
        # contract ids always kept quoted, whatever the plan: positions and working orders (the engine sets it)
        self.keep_quoted: Callable[[], Iterable[int]] = tuple
        self._discovered_for: tuple | None = None
        self._quotes = OptionQuotes()
        self._last_index: tuple[float, float] | None = None            # (price, monotonic time of change)
        self.farms_down: set[str] = set()                              # data farms reported broken (2103...)
        self.resubscriptions = 0
        self._closed = asyncio.Event()
        self._sequence = 0
        self._init_status()
        self.conn.on_reconnected.append(self._on_reconnected)
        self.conn.on_state.append(self._on_connection_state)
        self.conn.on_error.append(self._on_error)
        self.conn.on_restored.append(self._on_restored)
        self.conn.on_farm.append(self._on_farm)

    @property
    def ib(self) -> IB:
        return self.conn.ib

    # ------------------------------------------------------------------------------ lifecycle
    async def connect(self) -> None:
        if self.status.state is not FeedState.DISCONNECTED and self.conn.connected:
            return
        self._closed.clear()
        await self.conn.connect()
        self._request_data_type()
        if self.conn.state is ConnectionState.IB_LOST:        # TWS up, IB not (1100 with the handshake)
            self._set_status(FeedState.DISCONNECTED, self.conn.now(), "IB connectivity lost (at connect)")
            return
        self._set_status(FeedState.CONNECTED, self.conn.now(), self._data_label())

    async def close(self) -> None:
        if self._closed.is_set() and self.status.state is FeedState.DISCONNECTED:
            return
        self._closed.set()
        self.streams.cancel()
        await self.conn.close()
        self._set_status(FeedState.DISCONNECTED, self.conn.now(), "closed")

    def select_chain(self, underlying: str, min_expiry_days: float, max_expiry_days: float,
                     strike_window: float) -> None:
        if underlying not in TRADING_CLASSES:
            raise ValueError(f"IBFeed trades {sorted(TRADING_CLASSES)}, not {underlying!r}")
        chain = (underlying, float(min_expiry_days), float(max_expiry_days), float(strike_window))
        if chain[0] != self._chain[0]:
            self.streams.cancel()
            self.streams.index = self.streams.future = None
            self._contracts.clear()
            self._settles.clear()
            self._quotes.clear()
            self._discovered_for = None
        if chain != self._chain:
            self._chain_version += 1            # a new window: a new watch plan
        self._chain = chain

    def _data_label(self) -> str:
        return "delayed data (not entitled to live)" if self.delayed else "live data"

    def _request_data_type(self) -> None:
        self.ib.reqMarketDataType(3 if self.delayed else 1)

    def _on_error(self, info: IBErrorInfo) -> None:
        if info.code in NOT_ENTITLED and not self.delayed and self.settings.ib.market_data_type == "auto":
            self.delayed = True
            log.warning("IB: %s - switching to delayed market data", info.message)
            if self.ib.isConnected():
                self._request_data_type()
                self.streams.cancel()          # resubscribe as delayed on the next cycle
            self._set_status(self.status.state if self.status.state is not FeedState.DISCONNECTED
                             else FeedState.STALE, self.conn.now(), self._data_label())

    def _on_connection_state(self, state: ConnectionState, message: str) -> None:
        if state in (ConnectionState.RECONNECTING, ConnectionState.DISCONNECTED) and not self._closed.is_set():
            self.streams.ok = False
            self._set_status(FeedState.DISCONNECTED, self.conn.now(), message or "disconnected")
        elif state is ConnectionState.IB_LOST and not self._closed.is_set():
            self._set_status(FeedState.DISCONNECTED, self.conn.now(), message)

    def _on_restored(self, data_lost: bool) -> None:
        """1101: every subscription is gone at TWS - request the streaming lines again now (snapshots follow in
        the next cycle); 1102: the data were kept."""
        if self._closed.is_set():
            return
        if data_lost:
            self.resubscribe(f"IB connectivity restored, data lost ({Code.RESTORED_DATA_LOST})")
        else:
            self._set_status(FeedState.CONNECTED, self.conn.now(), f"IB connectivity restored, {self._data_label()}")

    def _on_farm(self, farm: str, up: bool, message: str) -> None:
        """A broken market-data farm makes our data stale (alerted); when it is back, subscribe again."""
        if self._closed.is_set():
            return
        if not up:
            self.farms_down.add(farm)
            self._set_status(FeedState.STALE, self.conn.now(), f"data farm down: {message}")
            return
        was_down = farm in self.farms_down
        self.farms_down.discard(farm)
        if was_down and self.ib.isConnected():
            self.resubscribe(f"data farm back: {message}")

    def _revive_silent_lines(self, at: datetime) -> None:
        """A streaming line silent for `stale_after_s` since it was requested, with no farm down and IB not lost,
        is requested again (at most once per `stale_after_s`): a request TWS dropped for pacing (error 100) or a
        line that died without a notice would otherwise leave the price frozen until the next fault."""
        if self.farms_down or self.conn.state is not ConnectionState.CONNECTED or not self.ib.isConnected():
            return
        silent = self.streams.silent(at, self.stale_after_s)
        if silent:
            log.warning("IB feed: %s line silent for %gs: requesting it again", " and ".join(silent),
                        self.stale_after_s)
            self.resubscribe(f"{' and '.join(silent)} line silent")

    def resubscribe(self, why: str) -> None:
        """Cancel and request again the streaming lines (index, future); re-qualify on the next cycle if the
        contracts are unknown."""
        self.resubscriptions += 1
        self.streams.cancel()
        if self.ib.isConnected():
            self._request_data_type()
            self.streams.ensure()
        self._set_status(FeedState.CONNECTED, self.conn.now(), f"{why}: resubscribed, {self._data_label()}")

    def _on_reconnected(self) -> None:
        if self._closed.is_set():
            return
        self.streams.forget()           # ib_async dropped its tickers: subscribe again
        self._request_data_type()
        if self.conn.state is ConnectionState.IB_LOST:      # reconnected to a TWS without IB: no data yet
            return
        self._set_status(FeedState.CONNECTED, self.conn.now(), f"reconnected, {self._data_label()}")

    # ------------------------------------------------------------------------------- discovery
    async def _qualify(self) -> None:
        """The index and the front hedge future, once (MES falls back to ES when not offered)."""
        lines = self.streams
        if lines.index is None:
            lines.index = await qualify_index(self.conn, self._chain[0])
        if lines.future is not None:
            return
        lines.future = await front_future(self.conn, tuple(dict.fromkeys((self.hedge_symbol, "ES"))))
        if lines.future is None:
            log.warning("no hedge future available: snapshots carry no future quote")
        elif lines.future.symbol != self.hedge_symbol:
            log.warning("hedge future %s not available: using %s", self.hedge_symbol, lines.future.symbol)

    async def _discover(self) -> None:
        """Trading classes and expiries from reqSecDefOptParams, contracts per (class, expiry), paced."""
        underlying, min_days, max_days, _ = self._chain
        today = self.conn.now().date()
        key = (underlying, min_days, max_days, today)
        if self._discovered_for == key:
            return
        await self.conn.pacer.wait()
        params = await self.ib.reqSecDefOptParamsAsync(underlying, "", "IND", self.streams.index.conId)
        wanted: list[tuple[str, str]] = []
        self._settles.clear()
        for p in params:
            if p.exchange != OPTION_EXCHANGE or p.tradingClass not in TRADING_CLASSES[underlying]:
                continue
            for exp in p.expirations:
                d = expiry_of(exp)
                if d is None:
                    continue
                settles = settlement_instant(d, p.tradingClass == "SPX")
                days = (settles - self.conn.now()).total_seconds() / 86400
                if days > 0 and min_days <= days <= max_days:
                    wanted.append((p.tradingClass, exp))
                    self._settles[(p.tradingClass, exp)] = settles
        if not wanted:
            raise ConnectionError(f"no {underlying} option expiries within {min_days:g}-{max_days:g} days at IB")
        for key_ in list(self._contracts):
            if key_ not in wanted:
                del self._contracts[key_]
        missing = [k for k in wanted if k not in self._contracts]

        async def fetch(cls: str, exp: str) -> None:
            await self.conn.pacer.wait()
            details = await self.ib.reqContractDetailsAsync(Option(underlying, exp, exchange=OPTION_EXCHANGE,
                                                                   tradingClass=cls))
            self._contracts[(cls, exp)] = [d.contract for d in details if d.contract is not None]

        await asyncio.gather(*(fetch(cls, exp) for cls, exp in missing))
        self._discovered_for = key
        self._chain_version += 1
        n = sum(len(v) for v in self._contracts.values())
        log.info("IB chain %s: %d expiries, %d option contracts", underlying, len(self._contracts), n)

    # ------------------------------------------------------------------------------- the window
    def per_cycle(self) -> int:
        """Snapshot requests one refresh may send: the pacing rate, less the orders' reserve, over 80 % of the
        interval."""
        rate = max(1.0, self.conn.pacer.rate - ORDER_RESERVE_PER_S)
        return max(1, int(rate * self.interval_s * 0.8))

    def wanted(self, index: float) -> list[IBContract]:
        """The options the feed keeps quoted around `index`: the watch plan (`market/ib_watch.py`) that gives every
        watched expiry enough strikes for a fair-value slice within what the pacing can keep fresh. It re-centres
        when the index has moved RECENTRE_SHARE from the plan's centre (not every tick: a plan that shifted its
        strikes with each move would keep re-quoting new options and drop the ones it had). Options in
        `keep_quoted()` (positions, working orders) come first, planned or not."""
        made = self._plan_made
        if (self.plan is None or made is None or made[2] != self._chain_version
                or abs(index / made[0] - 1.0) > RECENTRE_SHARE or time.monotonic() - made[1] >= REPLAN_AFTER_S):
            self._replan(index)
        held = set(self.keep_quoted())
        if not held:
            return self.plan.options
        planned = {c.conId for c in self.plan.options}
        extra = [c for cs in self._contracts.values() for c in cs if c.conId in held and c.conId not in planned]
        return extra + self.plan.options

    def _replan(self, index: float) -> None:
        """A new watch plan around `index` (logged when the watched expiries change)."""
        now = self.conn.now()
        days = {key: (at - now).total_seconds() / 86400 for key, at in self._settles.items()}
        plan = plan_watch({k: v for k, v in self._contracts.items() if k in days}, days, index, self._chain[3],
                          capacity(self.per_cycle(), self.interval_s, self.stale_after_s), self.needs)
        self.plan = plan
        self._plan_made = (index, time.monotonic(), self._chain_version)
        said = (tuple(plan.watched), tuple(plan.skipped))
        if said != self._plan_said:
            self._plan_said = said
            (log.warning if plan.skipped else log.info)("IB feed: %s", plan.describe())

    async def refresh(self) -> tuple[list[IBContract], float]:
        """One rotation step: discover if needed, refresh the stalest part of the window; (wanted, index)."""
        await self._qualify()
        await self._discover()
        self.streams.ensure()
        index = self.streams.index_price()
        deadline = time.monotonic() + max(self.interval_s, 2.0)
        while math.isnan(index) and time.monotonic() < deadline and self.ib.isConnected():
            await asyncio.sleep(0.05)
            index = self.streams.index_price()
        if math.isnan(index):
            return [], math.nan
        self._note_index(index)
        wanted = self.wanted(index)
        lines = max(1, self.line_budget - 2)
        per_cycle = self.per_cycle()
        todo = self._quotes.refresh_order(wanted)[:per_cycle]
        timeout_s = min(SNAPSHOT_TIMEOUT_S, max(self.interval_s, 1.0))
        for i in range(0, len(todo), lines):
            await self._quotes.request(self.conn, todo[i:i + lines], timeout_s)
        self.rotation_s = len(wanted) / per_cycle * self.interval_s if wanted else math.nan
        return wanted, index

    def _note_index(self, index: float) -> None:
        if self._last_index is None or self._last_index[0] != index:
            self._last_index = (index, time.monotonic())

    def build_snapshot(self, wanted: list[IBContract], index: float, at: datetime) -> ChainSnapshot:
        """The latest quote of every wanted option that has been quoted at least once."""
        cols, self.coverage = self._quotes.columns(wanted, at, self.stale_after_s)
        n = len(cols["contract_id"])
        future, future_contract = self.streams.future_quote(at)
        self._sequence += 1
        meta = {"coverage": round(self.coverage, 4), "wanted": len(wanted), "quoted": n,
                "complete": n == len(wanted), "rotation_s": round(self.rotation_s, 1)
                if math.isfinite(self.rotation_s) else None,
                "market_data": "delayed" if self.delayed else "live", "lines_budget": self.line_budget,
                "farms_down": sorted(self.farms_down)}
        if self.plan is not None:
            meta.update(watched_expiries=len(self.plan.watched), skipped_expiries=len(self.plan.skipped),
                        watch_capacity=self.plan.capacity)
        index_at = min(self.streams.index_at, at) if self.streams.index_at is not None else None
        return ChainSnapshot.from_columns(timestamp=at, underlying=self._chain[0], underlying_price=index,
                                          columns=cols, source="ib", future=future,
                                          future_contract=future_contract, sequence=self._sequence,
                                          metadata=meta, underlying_time=index_at)

    def _check_stale(self, at: datetime) -> None:
        self._revive_silent_lines(at)
        index_at = self.streams.index_at
        index_age = (at - index_at).total_seconds() if index_at is not None else math.inf
        if self.farms_down:
            self._set_status(FeedState.STALE, at, f"data farm down: {', '.join(sorted(self.farms_down))}")
        elif index_age > self.stale_after_s:
            self._set_status(FeedState.STALE, at, f"index not updated for {index_age:.0f}s ({self._data_label()})")
        elif self._last_index is not None and time.monotonic() - self._last_index[1] > self.stale_after_s:
            self._set_status(FeedState.STALE, at, f"index unchanged for {self.stale_after_s:g}s "
                                                  f"({self._data_label()})")
        elif self.coverage < 0.5:
            self._set_status(FeedState.STALE, at, f"coverage {self.coverage:.0%} of the window "
                                                  f"(rotation ~{self.rotation_s:.0f}s, {self._data_label()})")
        else:
            self._set_status(FeedState.CONNECTED, at, f"{self._data_label()}, coverage {self.coverage:.0%}")

    async def snapshot_now(self) -> ChainSnapshot | None:
        """One refresh step and the snapshot it gives (None while the index has no price)."""
        at = await self.conn.sync_time()
        wanted, index = await self.refresh()
        if not wanted:
            self._set_status(FeedState.STALE, at, f"no index price yet ({self._data_label()})")
            return None
        snap = self.build_snapshot(wanted, index, self.conn.now())
        self._check_stale(snap.timestamp)
        return snap

    async def snapshots(self) -> AsyncIterator[ChainSnapshot]:
        if self.status.state is FeedState.DISCONNECTED and not self.conn.connected:
            await self.connect()
        while not self._closed.is_set():
            started = time.monotonic()
            if not self.conn.connected:
                await asyncio.sleep(0.2)
                continue
            try:
                snap = await self.snapshot_now()
            except (ConnectionError, asyncio.TimeoutError) as exc:
                if not self.conn.connected:
                    continue
                log.warning("IB feed: %s", exc)
                self._set_status(FeedState.STALE, self.conn.now(), str(exc))
                snap = None
            if snap is not None and len(snap):
                yield snap
            delay = self.interval_s - (time.monotonic() - started)
            if delay > 0:
                await closed_within(self._closed, delay)
