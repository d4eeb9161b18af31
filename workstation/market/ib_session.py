"""The IB session shared by the feed and the broker (ib_async): the connection, its state, the request pacer, and
the mapping between IB's contracts and ours (with the lookups that qualify them).

`IBConnection` owns the one `ib_async.IB` the feed and the broker share: connect with a timeout, reconnect with
exponential backoff when the socket drops, state and error callbacks (the engine turns them into HALTED and
alerts), IB's connectivity news read through the one code table (`ib_codes`: 1100 lost, 1101/1102 restored, farm
news), a request pacer, and the server's clock (the practice gateway runs simulated time).
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import Awaitable, Callable

from ib_async import IB, Bag, ComboLeg as IBComboLeg, Contract as IBContract, Future, Index, Option

from workstation.domain import Contract, Right, SecType, Settlement
from workstation.market.ib_codes import Effect, effect_of, is_warning
from workstation.listeners import Listeners

log = logging.getLogger(__name__)

INDEX_EXCHANGE = "CBOE"
OPTION_EXCHANGE = "SMART"
FUTURE_EXCHANGE = "CME"
FUTURE_ROLL_DAYS = 8            # the hedge future rolls this many days before its expiry


# ------------------------------------------------------------------------------------ conversions
def expiry_of(text: str) -> date | None:
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
                    expiry=expiry_of(c.lastTradeDateOrContractMonth), strike=float(c.strike) if right else None,
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


def bag_contract(combo) -> IBContract:
    """The ib_async BAG contract of a domain `Combo`: SMART-routed, each leg by conId with its ratio and side."""
    legs = [IBComboLeg(conId=leg.contract.contract_id, ratio=leg.ratio, action=leg.side.value,
                       exchange=OPTION_EXCHANGE) for leg in combo.legs]
    return Bag(symbol=combo.symbol, exchange=OPTION_EXCHANGE, currency=combo.legs[0].contract.currency or "USD",
               comboLegs=legs)


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


PACING_SLICE_S = 0.25      # ib_async's throttle window: the rate is spread over quarter seconds, not sent in bursts


def pace_every_message(ib: IB, rate: float) -> None:
    """Hold every message ib_async sends (orders, cancels, requests) to `rate` a second, spread as at most
    rate/4 per quarter second. ib_async's own throttle (45 within any second) lets a whole second's messages go out
    at once, and a TWS that reads two such bursts late counts them in one second and refuses the excess with
    error 100 (a refused message may be an order or a cancel)."""
    ib.client.RequestsInterval = PACING_SLICE_S
    ib.client.MaxRequests = max(1, int(rate * PACING_SLICE_S))


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
        self.on_state = Listeners("IB connection state callback")   # (ConnectionState, message)
        self.on_error = Listeners("IB error callback")        # IBErrorInfo
        self.on_reconnected: list[Hook] = []
        self.on_restored: list[Restored] = []
        self.on_farm = Listeners("IB farm callback")     # (farm, up, message)
        self.pacer = Pacer(self.config.pacing_per_s)
        pace_every_message(self.ib, self.config.pacing_per_s)
        self.reconnects = 0
        self.outages = 0                            # 1100s seen
        self.withheld_orders = 0                    # queued order messages not sent because IB was lost
        self.highest_order_id = 0                   # never trust a nextValidId below it (no id reuse)
        self._users = 0
        self._closing = False
        self._lock = asyncio.Lock()
        self._reconnect_task: asyncio.Task | None = None
        self._time_offset = 0.0                     # server time - local time, seconds
        self._lost_at_connect = ""                  # a 1100 that came with the handshake (TWS already without IB)
        self._dropped = False                       # the socket dropped since the last connect attempt began
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
        self.on_state(state, message)

    async def connect(self) -> None:
        """Connect once for every user (feed, broker); raises ConnectionError when TWS cannot be reached."""
        async with self._lock:
            self._users += 1
            if self.ib.isConnected():
                return
            self._closing = False
            self._set_state(ConnectionState.CONNECTING, f"{self.config.host}:{self.config.port}")
            try:
                self._dropped = False
                await self._connect_once()
                self._check_still_up("during the handshake")
            except Exception as exc:
                self._users -= 1
                self._set_state(ConnectionState.DISCONNECTED, f"connect failed: {exc!r}")
                raise ConnectionError(f"cannot connect to TWS/Gateway at {self.config.host}:{self.config.port} "
                                      f"(client id {self.client_id}): {exc!r}") from exc
            self._connected(f"server version {self.ib.client.serverVersion()}")

    def _connected(self, message: str) -> None:
        """The socket is up; if TWS said with the handshake that it has no IB (1100), we are in an outage
        from the first moment: IB_LOST, exactly as if the 1100 had come a moment later."""
        self._set_state(ConnectionState.CONNECTED, message)
        lost, self._lost_at_connect = self._lost_at_connect, ""
        if lost:
            self._ib_lost(lost)

    def _ib_lost(self, message: str) -> None:
        self.outages += 1
        self._withhold_queued_orders()
        self._set_state(ConnectionState.IB_LOST, message)
        # TWS still answers locally: note its clock as IB went away. In the request stream this also marks the
        # point after which nothing of ours may be an order (the practice gateway counts orders after it).
        asyncio.get_event_loop().create_task(self.sync_time())

    async def _connect_once(self) -> None:
        self._lost_at_connect = ""
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
        self._dropped = True            # seen by a connect or a restore in progress: it is not done
        if self._closing or self.state in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
            return
        self._set_state(ConnectionState.RECONNECTING, "connection to TWS/Gateway lost")
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.get_event_loop().create_task(self._reconnect_loop())

    @property
    def _unbroken(self) -> bool:
        """The socket is up and has not dropped since this connect attempt began. Looked at, not waited for: a drop
        inside the handshake does not make ib_async's connect fail (it swallows errors among its start-up
        requests), and one while restoring does not start another reconnect (this one is still running)."""
        return not self._dropped and self.ib.isConnected()

    def _check_still_up(self, when: str) -> None:
        if not self._unbroken:
            raise ConnectionError(f"the connection dropped again {when}")

    async def _reconnect_loop(self) -> None:
        """Until connected and restored on one unbroken socket: connect, run the reconnect hooks (resubscribe,
        reconcile), and start over, with backoff, if the socket dropped at any point on the way."""
        delay = 0.5
        while not self._closing:
            await asyncio.sleep(delay)
            try:
                if self.ib.isConnected():
                    self.ib.disconnect()
                self._dropped = False
                await self._connect_once()
                self._check_still_up("during the handshake")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("IB reconnect failed (%r); next try in %.1fs", exc, min(delay * 2, self._max_backoff))
                delay = min(delay * 2, self._max_backoff)
                continue
            self.reconnects += 1
            self._connected(f"reconnected (#{self.reconnects})")
            for hook in list(self.on_reconnected):
                try:
                    result = hook()
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    if self._unbroken:          # a hook cut short by the drop is not a failure of its own
                        log.exception("IB reconnect hook %r failed", hook)
            if self._unbroken:
                return
            self._set_state(ConnectionState.RECONNECTING, "the connection dropped again while it was restored")
            log.warning("IB: the connection dropped again while it was restored; reconnecting")
            delay = 0.5

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
        connecting = self.state in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING)
        if effect is Effect.IB_LOST and self.state is ConnectionState.CONNECTED:
            self._ib_lost(f"IB connectivity lost ({code}: {message})")
        elif effect is Effect.IB_LOST and connecting:         # with the handshake: kept for _connected
            self._withhold_queued_orders()
            self._lost_at_connect = f"IB connectivity lost ({code}: {message}, at connect)"
        elif effect in (Effect.RESTORED_DATA_LOST, Effect.RESTORED_DATA_KEPT) and connecting:
            self._lost_at_connect = ""
        elif effect in (Effect.RESTORED_DATA_LOST, Effect.RESTORED_DATA_KEPT) and self.ib.isConnected() \
                and self.state in (ConnectionState.IB_LOST, ConnectionState.CONNECTED):
            self._set_state(ConnectionState.CONNECTED, f"IB connectivity restored ({code}: {message})")
            data_lost = effect is Effect.RESTORED_DATA_LOST
            asyncio.get_event_loop().create_task(self._run_restored(data_lost))
        elif effect in (Effect.FARM_DOWN, Effect.FARM_UP):
            farm = message.split(":", 1)[-1].strip() if ":" in message else str(code)
            self.on_farm(farm, effect is Effect.FARM_UP, f"IB {code}: {message}")
        self.on_error(info)

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



# --------------------------------------------------------------------------------- qualification
async def qualify_index(conn: IBConnection, symbol: str) -> IBContract:
    """The index contract of `symbol` as IB knows it (with its conId); ConnectionError when IB does not."""
    index = Index(symbol, INDEX_EXCHANGE, "USD")
    await conn.pacer.wait()
    await conn.ib.qualifyContractsAsync(index)
    if not index.conId:
        raise ConnectionError(f"IB does not know the index {symbol}")
    return index


async def front_future(conn: IBConnection, symbols: tuple[str, ...]) -> IBContract | None:
    """The front future of the first of `symbols` IB offers (rolled `FUTURE_ROLL_DAYS` before expiry)."""
    today = conn.now().date()
    for symbol in symbols:
        await conn.pacer.wait()
        details = await conn.ib.reqContractDetailsAsync(Future(symbol, exchange=FUTURE_EXCHANGE))
        live = sorted((d.contract for d in details if d.contract and
                       (expiry_of(d.contract.lastTradeDateOrContractMonth) or today) - today
                       >= timedelta(days=FUTURE_ROLL_DAYS)),
                      key=lambda c: c.lastTradeDateOrContractMonth)
        if live:
            return live[0]
    return None
