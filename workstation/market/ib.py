"""Interactive Brokers market data with ib_async: the shared connection (`IBConnection`) and the chain feed (`IBFeed`).

`IBConnection` owns the one `ib_async.IB` the feed and the broker share: connect with a timeout, reconnect with
exponential backoff when the socket drops, state and error callbacks (the engine turns them into HALTED and
alerts), a request pacer, and the server's clock (the practice gateway runs simulated time).

`IBFeed` discovers the SPX/XSP chain (reqSecDefOptParams for trading classes and expiries, then one contract-details
request per class and expiry, paced), keeps the index and the hedge future on streaming lines, and refreshes the
options inside the ATM window with snapshot requests that rotate over the wanted strikes within the line budget.
Every interval it emits a ChainSnapshot of the latest quote of each wanted option (`quote_time` per row) and reports
coverage. Live data when entitled, else delayed (error 354 / 10167 switch it), visible in the status message.
We compute IVs ourselves, so only bid/ask/sizes are read.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import AsyncIterator, Awaitable, Callable

import numpy as np
from ib_async import IB, Contract as IBContract, Future, Index, Option, Ticker

from workstation.domain import ChainSnapshot, Contract, Quote, Right, SecType, Settlement, settlement_instant
from workstation.market.feed import FeedState, StatusMixin, closed_within
from workstation.market.ib_codes import NOT_ENTITLED, Effect, effect_of, is_warning

log = logging.getLogger(__name__)

TRADING_CLASSES = {"SPX": ("SPX", "SPXW"), "XSP": ("XSP",)}
INDEX_EXCHANGE = "CBOE"
OPTION_EXCHANGE = "SMART"
FUTURE_EXCHANGE = "CME"
SNAPSHOT_TIMEOUT_S = 11.0       # TWS answers an option snapshot within ~11 s or never
ORDER_RESERVE_PER_S = 5.0       # of the pacing budget, kept free for orders and small requests


# ------------------------------------------------------------------------------------ conversions
def _expiry(text: str) -> date | None:
    text = (text or "")[:8]
    return datetime.strptime(text, "%Y%m%d").date() if len(text) == 8 else None


def domain_contract(c: IBContract) -> Contract:
    """Our Contract for an ib_async contract (conId is our contract id)."""
    sec = {"OPT": SecType.OPTION, "FUT": SecType.FUTURE}.get(c.secType, SecType.INDEX)
    trading_class = c.tradingClass or c.symbol
    multiplier = float(c.multiplier) if c.multiplier else (100.0 if sec is SecType.OPTION else 1.0)
    am = sec is SecType.FUTURE or (sec is SecType.OPTION and trading_class == "SPX")
    right = None
    if sec is SecType.OPTION:
        right = Right.CALL if c.right.upper().startswith("C") else Right.PUT
    return Contract(contract_id=int(c.conId), symbol=c.symbol, sec_type=sec, trading_class=trading_class,
                    expiry=_expiry(c.lastTradeDateOrContractMonth), strike=float(c.strike) if right else None,
                    right=right, multiplier=multiplier, settlement=Settlement.AM if am else Settlement.PM,
                    exchange=c.exchange or c.primaryExchange or "", currency=c.currency or "USD")


def ib_contract(c: Contract) -> IBContract:
    """The ib_async contract to route an order for `c`: options via SMART, futures on CME, by conId."""
    if c.sec_type is SecType.OPTION:
        return Option(c.symbol, c.expiry.strftime("%Y%m%d"), c.strike, c.right.value, OPTION_EXCHANGE,
                      multiplier=f"{c.multiplier:g}", currency=c.currency, conId=c.contract_id,
                      tradingClass=c.trading_class)
    if c.sec_type is SecType.FUTURE:
        return Future(c.symbol, c.expiry.strftime("%Y%m%d") if c.expiry else "", FUTURE_EXCHANGE,
                      multiplier=f"{c.multiplier:g}", currency=c.currency, conId=c.contract_id,
                      tradingClass=c.trading_class)
    return Index(c.symbol, INDEX_EXCHANGE, c.currency, conId=c.contract_id)


# ----------------------------------------------------------------------------------- connection
class ConnectionState(str, Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    IB_LOST = "ib-lost"             # socket to TWS up, TWS lost IB (1100): no orders, no data


Restored = Callable[[bool], "Awaitable[None] | None"]     # hook(data_lost) after 1101 (True) / 1102 (False)
Farm = Callable[[str, bool, str], None]                   # hook(farm, up, message) on 2103/2104/...


@dataclass(frozen=True)
class IBErrorInfo:
    """An error or warning from TWS: code and text as IB sent them, for alerts."""

    code: int
    message: str
    req_id: int
    at: datetime
    warning: bool
    contract: str = ""


class Pacer:
    """At most `rate` requests within any one-second window (TWS counts messages per second, not on average)."""

    def __init__(self, rate: float) -> None:
        self.rate = max(float(rate), 1.0)
        self._sent: deque[float] = deque()

    async def wait(self) -> None:
        while True:
            now = time.monotonic()
            while self._sent and now - self._sent[0] >= 1.0:
                self._sent.popleft()
            if len(self._sent) < int(self.rate):
                self._sent.append(now)
                return
            await asyncio.sleep(1.0 - (now - self._sent[0]) + 0.001)


Hook = Callable[[], "Awaitable[None] | None"]


class IBConnection:
    """The one ib_async connection shared by IBFeed and IBBroker; reconnects by itself until closed."""

    def __init__(self, settings, ib: IB | None = None, client_id: int | None = None) -> None:
        self.settings = settings
        self.config = settings.ib
        self.ib = ib or IB()
        self.client_id = self.config.client_id if client_id is None else client_id
        self.account = self.config.account.get_secret_value() if self.config.account else ""
        self.state = ConnectionState.DISCONNECTED
        self.on_state: list[Callable[[ConnectionState, str], None]] = []
        self.on_error: list[Callable[[IBErrorInfo], None]] = []
        self.on_reconnected: list[Hook] = []
        self.on_restored: list[Restored] = []
        self.on_farm: list[Farm] = []
        self.pacer = Pacer(self.config.pacing_per_s)
        self.reconnects = 0
        self.outages = 0                            # 1100s seen
        self.withheld_orders = 0                    # queued order messages not sent because IB was lost
        self.highest_order_id = 0                   # never trust a nextValidId below it (no id reuse)
        self._users = 0
        self._closing = False
        self._lock = asyncio.Lock()
        self._reconnect_task: asyncio.Task | None = None
        self._time_offset = 0.0                     # server time - local time, seconds
        self.ib.disconnectedEvent += self._on_disconnected
        self.ib.errorEvent += self._on_ib_error

    @property
    def connected(self) -> bool:
        return self.ib.isConnected() and self.state is ConnectionState.CONNECTED

    def now(self) -> datetime:
        """The server's clock (TWS: real time; the practice gateway: simulated time), from the last sync."""
        return datetime.now(timezone.utc) + timedelta(seconds=self._time_offset)

    async def sync_time(self) -> datetime:
        """Ask the server for its time and remember the offset to ours."""
        try:
            server = await asyncio.wait_for(self.ib.reqCurrentTimeAsync(), self.config.connect_timeout_s)
        except (asyncio.TimeoutError, ConnectionError):
            return self.now()
        if server.tzinfo is None:
            server = server.replace(tzinfo=timezone.utc)
        # the server answers in whole seconds: aim at the middle of that second
        self._time_offset = (server - datetime.now(timezone.utc)).total_seconds() + 0.5
        return self.now()

    def _set_state(self, state: ConnectionState, message: str = "") -> None:
        if state == self.state:
            return
        self.state = state
        log.info("IB connection %s %s", state.value, message)
        for callback in list(self.on_state):
            try:
                callback(state, message)
            except Exception:
                log.exception("IB state callback %r failed", callback)

    async def connect(self) -> None:
        """Connect once for every user (feed, broker); raises ConnectionError when TWS cannot be reached."""
        async with self._lock:
            self._users += 1
            if self.ib.isConnected():
                return
            self._closing = False
            self._set_state(ConnectionState.CONNECTING, f"{self.config.host}:{self.config.port}")
            try:
                await self._connect_once()
            except Exception as exc:
                self._users -= 1
                self._set_state(ConnectionState.DISCONNECTED, f"connect failed: {exc!r}")
                raise ConnectionError(f"cannot connect to TWS/Gateway at {self.config.host}:{self.config.port} "
                                      f"(client id {self.client_id}): {exc!r}") from exc
            self._set_state(ConnectionState.CONNECTED, f"server version {self.ib.client.serverVersion()}")

    async def _connect_once(self) -> None:
        await self.ib.connectAsync(self.config.host, self.config.port, clientId=self.client_id,
                                   timeout=self.config.connect_timeout_s, account=self.account)
        self.floor_order_ids()
        if not self.account:
            accounts = self.ib.managedAccounts()
            self.account = accounts[0] if accounts else ""
        await self.sync_time()

    async def close(self) -> None:
        """Release one user; the last one disconnects (and stops reconnecting)."""
        async with self._lock:
            self._users = max(0, self._users - 1)
            if self._users:
                return
            self._closing = True
            if self._reconnect_task is not None:
                self._reconnect_task.cancel()
                self._reconnect_task = None
            if self.ib.isConnected():
                self.ib.disconnect()
            self._set_state(ConnectionState.DISCONNECTED, "closed")

    def _on_disconnected(self) -> None:
        if self._closing or self.state in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
            return
        self._set_state(ConnectionState.RECONNECTING, "connection to TWS/Gateway lost")
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.get_event_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = 0.5
        while not self._closing:
            await asyncio.sleep(delay)
            try:
                if self.ib.isConnected():
                    self.ib.disconnect()
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("IB reconnect failed (%r); next try in %.1fs", exc, min(delay * 2, self._max_backoff))
                delay = min(delay * 2, self._max_backoff)
                continue
            self.reconnects += 1
            self._set_state(ConnectionState.CONNECTED, f"reconnected (#{self.reconnects})")
            for hook in list(self.on_reconnected):
                try:
                    result = hook()
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("IB reconnect hook %r failed", hook)
            return

    @property
    def _max_backoff(self) -> float:
        return self.config.reconnect_max_backoff_s

    def note_order_id(self, order_id: int) -> None:
        self.highest_order_id = max(self.highest_order_id, int(order_id or 0))

    def floor_order_ids(self) -> None:
        """The next order id is above every order id seen in this session or the last (open and completed
        orders, executions): a nextValidId rolled back by a TWS restart must not make us reuse an id, which TWS
        would take as a modify of the old order."""
        for trade in self.ib.trades():
            self.note_order_id(trade.order.orderId)
        for fill in self.ib.fills():
            self.note_order_id(fill.execution.orderId)
        if self.ib.isConnected() and self.highest_order_id:
            self.ib.client.updateReqId(self.highest_order_id + 1)

    def _on_ib_error(self, req_id: int, code: int, message: str, contract) -> None:
        info = IBErrorInfo(code, message, req_id, datetime.now(timezone.utc), is_warning(code),
                           str(contract or ""))
        effect = effect_of(code)
        if effect is Effect.IB_LOST and self.state is ConnectionState.CONNECTED:
            self.outages += 1
            self._withhold_queued_orders()
            self._set_state(ConnectionState.IB_LOST, f"IB connectivity lost ({code}: {message})")
            # TWS still answers locally: note its clock as IB went away. In the request stream this also marks the
            # point after which nothing of ours may be an order (the practice gateway counts orders after it).
            asyncio.get_event_loop().create_task(self.sync_time())
        elif effect in (Effect.RESTORED_DATA_LOST, Effect.RESTORED_DATA_KEPT) and self.ib.isConnected() \
                and self.state in (ConnectionState.IB_LOST, ConnectionState.CONNECTED):
            self._set_state(ConnectionState.CONNECTED, f"IB connectivity restored ({code}: {message})")
            data_lost = effect is Effect.RESTORED_DATA_LOST
            asyncio.get_event_loop().create_task(self._run_restored(data_lost))
        elif effect in (Effect.FARM_DOWN, Effect.FARM_UP):
            farm = message.split(":", 1)[-1].strip() if ":" in message else str(code)
            for callback in list(self.on_farm):
                try:
                    callback(farm, effect is Effect.FARM_UP, f"IB {code}: {message}")
                except Exception:
                    log.exception("IB farm callback %r failed", callback)
        for callback in list(self.on_error):
            try:
                callback(info)
            except Exception:
                log.exception("IB error callback %r failed", callback)

    def _withhold_queued_orders(self) -> None:
        """Orders still in ib_async's send throttle (not on the wire yet) when IB is lost are dropped, not sent
        into the outage; the reconcile after the restore closes them as not working at the broker."""
        queue = getattr(self.ib.client, "_msgQ", None)       # ib_async 2.1's throttle queue of encoded messages
        if not queue:
            return
        kept = [m for m in queue if not m.startswith("3\0")]   # 3 = placeOrder (new orders and modifies)
        dropped = len(queue) - len(kept)
        if dropped:
            queue.clear()
            queue.extend(kept)
            self.withheld_orders += dropped
            log.warning("IB connectivity lost: %d queued order message(s) not sent", dropped)

    async def _run_restored(self, data_lost: bool) -> None:
        """After 1101 / 1102: the feed requests its data again (1101), then the broker reconciles."""
        self.floor_order_ids()
        for hook in list(self.on_restored):
            try:
                result = hook(data_lost)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("IB restore hook %r failed", hook)


# ----------------------------------------------------------------------------------------- feed
@dataclass
class _Quote:
    bid: float
    ask: float
    bid_size: int
    ask_size: int
    at: datetime


def _price(value: float) -> float:
    return float(value) if value is not None and math.isfinite(value) and value > 0 else math.nan


def _size(value: float) -> int:
    return int(value) if value is not None and math.isfinite(value) and value > 0 else 0


class IBFeed(StatusMixin):
    """Chain snapshots of SPX or XSP from TWS / IB Gateway (or the practice gateway)."""

    source = "ib"

    def __init__(self, settings, connection: IBConnection | None = None) -> None:
        self.settings = settings
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
        self._index: IBContract | None = None
        self._index_ticker: Ticker | None = None
        self._future: IBContract | None = None
        self._future_ticker: Ticker | None = None
        self._contracts: dict[tuple[str, str], list[IBContract]] = {}   # (class, expiry) -> contracts
        self._discovered_for: tuple | None = None
        self._quotes: dict[int, _Quote] = {}
        self._last_index: tuple[float, float] | None = None            # (price, monotonic time of change)
        self._index_at: datetime | None = None                         # server time of the last index tick
        self._future_at: datetime | None = None                        # server time of the last future tick
        self.farms_down: set[str] = set()                              # data farms reported broken (2103...)
        self.resubscriptions = 0
        self._closed = asyncio.Event()
        self._sequence = 0
        self._streaming_ok = False
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
        self._set_status(FeedState.CONNECTED, self.conn.now(), self._data_label())

    async def close(self) -> None:
        if self._closed.is_set() and self.status.state is FeedState.DISCONNECTED:
            return
        self._closed.set()
        self._cancel_streaming()
        await self.conn.close()
        self._set_status(FeedState.DISCONNECTED, self.conn.now(), "closed")

    def select_chain(self, underlying: str, min_expiry_days: float, max_expiry_days: float,
                     strike_window: float) -> None:
        if underlying not in TRADING_CLASSES:
            raise ValueError(f"IBFeed trades {sorted(TRADING_CLASSES)}, not {underlying!r}")
        chain = (underlying, float(min_expiry_days), float(max_expiry_days), float(strike_window))
        if chain[0] != self._chain[0]:
            self._cancel_streaming()
            self._index = self._future = None
            self._contracts.clear()
            self._quotes.clear()
            self._discovered_for = None
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
                self._cancel_streaming()       # resubscribe as delayed on the next cycle
            self._set_status(self.status.state if self.status.state is not FeedState.DISCONNECTED
                             else FeedState.STALE, self.conn.now(), self._data_label())

    def _on_connection_state(self, state: ConnectionState, message: str) -> None:
        if state in (ConnectionState.RECONNECTING, ConnectionState.DISCONNECTED) and not self._closed.is_set():
            self._streaming_ok = False
            self._set_status(FeedState.DISCONNECTED, self.conn.now(), message or "disconnected")
        elif state is ConnectionState.IB_LOST and not self._closed.is_set():
            self._set_status(FeedState.DISCONNECTED, self.conn.now(), message)

    def _on_restored(self, data_lost: bool) -> None:
        """1101: every subscription is gone at TWS - request the streaming lines again now (snapshots follow in
        the next cycle); 1102: the data were kept."""
        if self._closed.is_set():
            return
        if data_lost:
            self.resubscribe("IB connectivity restored, data lost (1101)")
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

    def resubscribe(self, why: str) -> None:
        """Cancel and request again the streaming lines (index, future); re-qualify on the next cycle if the
        contracts are unknown."""
        self.resubscriptions += 1
        self._cancel_streaming()
        if self.ib.isConnected():
            self._request_data_type()
            self._ensure_streaming()
        self._set_status(FeedState.CONNECTED, self.conn.now(), f"{why}: resubscribed, {self._data_label()}")

    def _on_reconnected(self) -> None:
        if self._closed.is_set():
            return
        self._index_ticker = self._future_ticker = None     # ib_async dropped its tickers: subscribe again
        self._streaming_ok = False
        self._request_data_type()
        self._set_status(FeedState.CONNECTED, self.conn.now(), f"reconnected, {self._data_label()}")

    def _cancel_streaming(self) -> None:
        for ticker, handler in ((self._index_ticker, self._index_ticked), (self._future_ticker, self._future_ticked)):
            if ticker is not None:
                ticker.updateEvent -= handler
            if ticker is not None and self.ib.isConnected():
                try:
                    self.ib.cancelMktData(ticker.contract)
                except Exception:
                    log.debug("cancelMktData failed", exc_info=True)
        self._index_ticker = self._future_ticker = None
        self._streaming_ok = False

    # ------------------------------------------------------------------------------- discovery
    async def _qualify_index(self) -> None:
        if self._index is not None:
            return
        index = Index(self._chain[0], INDEX_EXCHANGE, "USD")
        await self.conn.pacer.wait()
        await self.ib.qualifyContractsAsync(index)
        if not index.conId:
            raise ConnectionError(f"IB does not know the index {self._chain[0]}")
        self._index = index

    async def _qualify_future(self) -> None:
        """The front hedge future (rolled 8 days before expiry); MES falls back to ES when not offered."""
        if self._future is not None:
            return
        today = self.conn.now().date()
        for symbol in dict.fromkeys((self.hedge_symbol, "ES")):
            await self.conn.pacer.wait()
            details = await self.ib.reqContractDetailsAsync(Future(symbol, exchange=FUTURE_EXCHANGE))
            live = sorted((d.contract for d in details if d.contract and
                           (_expiry(d.contract.lastTradeDateOrContractMonth) or today) - today >= timedelta(days=8)),
                          key=lambda c: c.lastTradeDateOrContractMonth)
            if live:
                self._future = live[0]
                if symbol != self.hedge_symbol:
                    log.warning("hedge future %s not available: using %s", self.hedge_symbol, symbol)
                return
        log.warning("no hedge future available: snapshots carry no future quote")

    async def _discover(self) -> None:
        """Trading classes and expiries from reqSecDefOptParams, contracts per (class, expiry), paced."""
        underlying, min_days, max_days, _ = self._chain
        today = self.conn.now().date()
        key = (underlying, min_days, max_days, today)
        if self._discovered_for == key:
            return
        await self.conn.pacer.wait()
        params = await self.ib.reqSecDefOptParamsAsync(underlying, "", "IND", self._index.conId)
        wanted: list[tuple[str, str]] = []
        for p in params:
            if p.exchange != OPTION_EXCHANGE or p.tradingClass not in TRADING_CLASSES[underlying]:
                continue
            for exp in p.expirations:
                d = _expiry(exp)
                if d is None:
                    continue
                days = (settlement_instant(d, p.tradingClass == "SPX") - self.conn.now()).total_seconds() / 86400
                if days > 0 and min_days <= days <= max_days:
                    wanted.append((p.tradingClass, exp))
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
        n = sum(len(v) for v in self._contracts.values())
        log.info("IB chain %s: %d expiries, %d option contracts", underlying, len(self._contracts), n)

    def _ensure_streaming(self) -> None:
        """The index and the hedge future on streaming lines (2 of the line budget)."""
        if self._streaming_ok:
            return
        if self._index is not None and self._index_ticker is None:
            self._index_ticker = self.ib.reqMktData(self._index, "", False, False)
            self._index_ticker.updateEvent += self._index_ticked
        if self._future is not None and self._future_ticker is None:
            self._future_ticker = self.ib.reqMktData(self._future, "", False, False)
            self._future_ticker.updateEvent += self._future_ticked
        self._streaming_ok = True

    def _index_ticked(self, ticker: Ticker) -> None:
        if ticker is self._index_ticker:
            self._index_at = self.conn.now()

    def _future_ticked(self, ticker: Ticker) -> None:
        if ticker is self._future_ticker:
            self._future_at = self.conn.now()

    # ------------------------------------------------------------------------------- the window
    def index_price(self) -> float:
        t = self._index_ticker
        if t is None:
            return math.nan
        for value in (t.last, t.close, t.marketPrice()):
            if value is not None and math.isfinite(value) and value > 0:
                return float(value)
        return math.nan

    def wanted(self, index: float) -> list[IBContract]:
        """Options inside the strike window around `index`, nearest the money first (re-centres as it moves)."""
        window = self._chain[3]
        out = []
        for contracts in self._contracts.values():
            for c in contracts:
                if abs(c.strike / index - 1.0) <= window:
                    out.append(c)
        out.sort(key=lambda c: (abs(math.log(c.strike / index)), c.lastTradeDateOrContractMonth, c.right))
        return out

    def _refresh_order(self, wanted: list[IBContract]) -> list[IBContract]:
        """Never-quoted contracts first (nearest the money first), then the stalest quotes."""
        epoch = datetime.min.replace(tzinfo=timezone.utc)
        fresh_rank = {id(c): i for i, c in enumerate(wanted)}
        return sorted(wanted, key=lambda c: (c.conId in self._quotes,
                                             self._quotes[c.conId].at if c.conId in self._quotes else epoch,
                                             fresh_rank[id(c)]))

    async def _snapshot_batch(self, contracts: list[IBContract]) -> int:
        """Snapshot requests for `contracts` (paced); returns how many answered. Uses ib_async's request
        bookkeeping (as reqTickersAsync does) but with a timeout and without blocking on missing answers."""
        ib, wrapper = self.ib, self.ib.wrapper
        pending: list[tuple[int, asyncio.Future, Ticker]] = []
        for c in contracts:
            if not ib.isConnected():
                break
            await self.conn.pacer.wait()
            req_id = ib.client.getReqId()
            future = wrapper.startReq(req_id, c)
            ticker = wrapper.startTicker(req_id, c, "snapshot")
            ib.client.reqMktData(req_id, c, "", True, False, [])
            pending.append((req_id, future, ticker))
        if not pending:
            return 0
        futures = [f for _, f, _ in pending]
        await asyncio.wait(futures, timeout=min(SNAPSHOT_TIMEOUT_S, max(self.interval_s, 1.0)))
        now = self.conn.now()
        answered = 0
        for req_id, future, ticker in pending:
            wrapper.endTicker(ticker, "snapshot")
            if not future.done():
                wrapper._endReq(req_id)
                continue
            if future.exception() is not None:
                continue
            bid, ask = _price(ticker.bid), _price(ticker.ask)
            if math.isnan(bid) and math.isnan(ask):
                continue
            self._quotes[ticker.contract.conId] = _Quote(bid, ask, _size(ticker.bidSize), _size(ticker.askSize),
                                                         now)
            answered += 1
        return answered

    async def refresh(self) -> tuple[list[IBContract], float]:
        """One rotation step: discover if needed, refresh the stalest part of the window; (wanted, index)."""
        await self._qualify_index()
        await self._qualify_future()
        await self._discover()
        self._ensure_streaming()
        index = self.index_price()
        deadline = time.monotonic() + max(self.interval_s, 2.0)
        while math.isnan(index) and time.monotonic() < deadline and self.ib.isConnected():
            await asyncio.sleep(0.05)
            index = self.index_price()
        if math.isnan(index):
            return [], math.nan
        self._note_index(index)
        wanted = self.wanted(index)
        lines = max(1, self.line_budget - 2)
        rate = max(1.0, self.conn.pacer.rate - ORDER_RESERVE_PER_S)
        per_cycle = max(1, int(rate * self.interval_s * 0.8))
        todo = self._refresh_order(wanted)[:per_cycle]
        for i in range(0, len(todo), lines):
            await self._snapshot_batch(todo[i:i + lines])
        self.rotation_s = len(wanted) / per_cycle * self.interval_s if wanted else math.nan
        return wanted, index

    def _note_index(self, index: float) -> None:
        if self._last_index is None or self._last_index[0] != index:
            self._last_index = (index, time.monotonic())

    def build_snapshot(self, wanted: list[IBContract], index: float, at: datetime) -> ChainSnapshot:
        """The latest quote of every wanted option that has been quoted at least once."""
        rows = [c for c in wanted if c.conId in self._quotes]
        quotes = [self._quotes[c.conId] for c in rows]
        n = len(rows)
        fresh = sum(1 for q in quotes if (at - q.at).total_seconds() <= self.stale_after_s)
        self.coverage = fresh / len(wanted) if wanted else 0.0
        cols = {
            "contract_id": np.array([c.conId for c in rows], dtype=np.int64),
            "trading_class": np.array([c.tradingClass for c in rows], dtype="<U8"),
            "expiry": np.array([_expiry(c.lastTradeDateOrContractMonth) for c in rows], dtype="datetime64[D]"),
            "strike": np.array([c.strike for c in rows], dtype=np.float64),
            "is_call": np.array([c.right.upper().startswith("C") for c in rows], dtype=bool),
            "bid": np.array([q.bid for q in quotes], dtype=np.float64),
            "ask": np.array([q.ask for q in quotes], dtype=np.float64),
            "bid_size": np.array([q.bid_size for q in quotes], dtype=np.int64),
            "ask_size": np.array([q.ask_size for q in quotes], dtype=np.int64),
            "am_settled": np.array([c.tradingClass == "SPX" for c in rows], dtype=bool),
            "multiplier": np.array([float(c.multiplier or 100) for c in rows], dtype=np.float64),
            "quote_time": np.array([np.datetime64(q.at.astimezone(timezone.utc).replace(tzinfo=None), "ms")
                                    for q in quotes], dtype="datetime64[ms]").reshape(n),
        }
        future, future_contract = None, None
        ft = self._future_ticker
        if self._future is not None and ft is not None:
            bid, ask = _price(ft.bid), _price(ft.ask)
            if not (bid > ask) and self._future_at is not None:       # stamped when it last ticked
                future = Quote(self._future.conId, bid, ask, _size(ft.bidSize), _size(ft.askSize),
                               min(self._future_at, at))
            future_contract = domain_contract(self._future)
        self._sequence += 1
        meta = {"coverage": round(self.coverage, 4), "wanted": len(wanted), "quoted": n,
                "complete": n == len(wanted), "rotation_s": round(self.rotation_s, 1)
                if math.isfinite(self.rotation_s) else None,
                "market_data": "delayed" if self.delayed else "live", "lines_budget": self.line_budget,
                "farms_down": sorted(self.farms_down)}
        index_at = min(self._index_at, at) if self._index_at is not None else None
        return ChainSnapshot.from_columns(timestamp=at, underlying=self._chain[0], underlying_price=index,
                                          columns=cols, source="ib", future=future,
                                          future_contract=future_contract, sequence=self._sequence,
                                          metadata=meta, underlying_time=index_at)

    def _check_stale(self, at: datetime) -> None:
        index_age = (at - self._index_at).total_seconds() if self._index_at is not None else math.inf
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
