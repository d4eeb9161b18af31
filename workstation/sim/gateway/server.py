"""PracticeGateway: the simulated market and paper exchange served over the TWS API socket protocol.

One asyncio server, one `_Session` per client connection. A pump task syncs the simulated world (the paper exchange
matches orders as the simulated clock runs) and a tick task streams market data to the open lines.

Limits, as TWS enforces them:
- 100 simultaneous streaming market-data lines per client (`max_lines`); one more is refused with error 101
  "Max number of tickers has been reached". Snapshot requests do not hold a line.
- `max_msg_rate` (50) messages per second from a client: a message over the rate is dropped and answered with
  error 100 "Max rate of messages per second has been exceeded"; a client that sends more than
  `disconnect_factor` times the rate within one second is disconnected, as TWS does with abusers.

Fault injection for tests (`faults`): drop connections, delay every request, reject the next orders, fill orders in
slices (partial fills), drop the connection right after an order reaches the exchange, refuse live data; and what
real TWS does with the socket up: IB connectivity lost (1100) and restored (1101 data lost / 1102 data kept), a data
farm broken (2103: its streaming lines die) and back (2104), the nightly restart (the socket drops, the port is
closed for a while, nextValidId rolls back), and an acknowledgement lost in a disconnect. It counts what a soak
checks: orders received while IB was lost, orderRefs used twice, when the client re-requested its streaming lines.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np

from workstation.domain import Contract, Fill, Order, OrderEvent, OrderStatus, OrderType, SecType, Side
from workstation.domain.contracts import index_scale
from workstation.domain.ticks import FUTURE_TICK
from workstation.sim.gateway import protocol as P
from workstation.sim.gateway.catalog import INDEX_IDS, INDEX_NAMES, OPTION_EXCHANGES, Catalog, wire_of
from workstation.sim.gateway.protocol import ExecView, OrderView, WireContract
from workstation.sim.listing import FUTURES
from workstation.sim.world import SimWorld

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "DU123456"
LIVE_TICKS = {"bid": 1, "ask": 2, "last": 4, "bid_size": 0, "ask_size": 3, "close": 9, "model": 13}
DELAYED_TICKS = {"bid": 66, "ask": 67, "last": 68, "bid_size": 69, "ask_size": 70, "close": 75, "model": 83}
WARNING_CODES = {2104: "Market data farm connection is OK:usopt", 2106: "HMDS data farm connection is OK:ushmds",
                 2158: "Sec-def data farm connection is OK:secdefnj"}
FARM_BROKEN = "Market data farm connection is broken:usopt"
FARM_OK = WARNING_CODES[2104]
IB_LOST = "Connectivity between IB and Trader Workstation has been lost."
RESTORED_DATA_LOST = "Connectivity between IB and Trader Workstation has been restored - data lost."
RESTORED_DATA_KEPT = "Connectivity between IB and Trader Workstation has been restored - data maintained."
PACING_JITTER_S = 0.05      # network jitter tolerated when counting messages per second
DONE = ("Filled", "Cancelled", "ApiCancelled", "Inactive")


@dataclass
class Faults:
    """Switches for tests; change them on `gateway.faults` at any time."""

    delay_s: float = 0.0                 # wait this long before handling each request
    reject_orders: int = 0               # reject this many next new orders ...
    reject_reason: str = "practice gateway: order rejected by fault injection"
    fill_slice: int | None = None        # fill at most this many contracts at a time ...
    slice_pause_s: float = 0.0           # ... with this many simulated seconds between slices
    drop_after_order: bool = False       # abort the connection right after the next order reaches the exchange
    live_entitled: bool = True           # False: live data refused (354), delayed data served
    ib_lost: bool = False                # 1100 in force: no data; orders that arrive are counted (and worked)
    farm_down: bool = False              # 2103 in force: no market data; the lines open at the break are dead
    lose_next_ack: bool = False          # the next order or modify is applied, its acknowledgement lost, socket cut


@dataclass
class _IbOrder:
    """An order as TWS knows it, worked on the paper exchange as one or more sub-orders (slices)."""

    view: OrderView
    contract: Contract
    created_at: datetime
    notional: float = 0.0
    sub: int = 0                         # current sub-order number (0: none sent yet)
    sub_base: int = 0                    # contracts filled before the current sub-order
    sub_working: bool = False
    cancel_requested: bool = False
    next_slice_at: float | None = None   # simulated epoch of the next slice

    @property
    def sub_id(self) -> str:
        return f"ib{self.view.perm_id}.{self.sub}"

    @property
    def working(self) -> bool:
        return self.view.status not in DONE


@dataclass
class _Line:
    req_id: int
    con_id: int
    kind: str              # IND | FUT | OPT
    key: object            # index symbol, future Contract, listing row
    delayed: bool
    sent: dict = field(default_factory=dict)
    dead: bool = False                   # killed by a farm break: never ticks again (the client must resubscribe)
    opened: float = 0.0                  # monotonic time of the request


class _Session:
    """One client connection."""

    def __init__(self, gateway: "PracticeGateway", reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.gw = gateway
        self.reader = reader
        self.writer = writer
        self.client_id: int | None = None
        self.lines: dict[int, _Line] = {}
        self.md_type = 1
        self.positions_sub = False
        self.account_sub = False
        self.pnl_subs: set[int] = set()
        self.recent: deque[float] = deque()
        self.closed = False
        self.arrived = 0.0                  # monotonic time the message being handled was read off the socket
        self.knows_ib_lost = False          # the client sent a request after our 1100 reached it (see _m49)
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"

    # ------------------------------------------------------------------------------------ output
    def send(self, fields: list) -> None:
        if self.closed or self.writer.transport.is_closing():
            return
        try:
            self.writer.write(P.frame(fields))
        except Exception:  # a broken socket: the reader loop notices and cleans up
            log.debug("send to %s failed", self.peer, exc_info=True)

    def error(self, req_id: int, code: int, message: str) -> None:
        self.send(P.error(req_id, code, message))

    def abort(self) -> None:
        """Drop the connection abruptly (as a crashed or restarted TWS would)."""
        if not self.closed:
            self.closed = True
            self.writer.transport.abort()
        self.gw._forget(self)

    # ------------------------------------------------------------------------------------- input
    async def run(self) -> None:
        try:
            if not await self._handshake():
                return
            buffer = bytearray()
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                buffer += data
                arrived = time.monotonic()             # pacing counts arrivals, not our processing time
                for fields in P.split_frames(buffer):
                    if self.closed:
                        break
                    if self.gw.faults.delay_s > 0:
                        await asyncio.sleep(self.gw.faults.delay_s)
                    if not self._paced(arrived):
                        continue
                    self.arrived = arrived
                    self._dispatch(fields)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("session %s (client %s) failed", self.peer, self.client_id)
        finally:
            self.closed = True
            self.gw._forget(self)
            try:
                self.writer.close()
            except Exception:
                pass

    async def _handshake(self) -> bool:
        prefix = await self.reader.readexactly(4)
        if prefix != b"API\0":
            log.warning("%s: not a TWS API client (got %r), closing", self.peer, prefix)
            self.abort()
            return False
        size = int.from_bytes(await self.reader.readexactly(4), "big")
        payload = (await self.reader.readexactly(size)).decode(errors="replace").rstrip("\0")
        try:
            lo, hi = P.parse_client_versions(payload)
        except P.ProtocolError as exc:
            log.warning("%s: %s", self.peer, exc)
            self.abort()
            return False
        if not lo <= P.SERVER_VERSION <= hi:
            msg = (f"The practice gateway speaks TWS API server version {P.SERVER_VERSION} only; this client offers "
                   f"v{lo}..{hi}. Use ib_async 2.1.x (ib_insync stops at 176 and is not supported).")
            log.warning("%s refused: %s", self.peer, msg)
            self.send(P.error(-1, 503, msg))
            await self.writer.drain()
            self.abort()
            return False
        self.send([P.SERVER_VERSION, P.connection_time(self.gw.now())])
        return True

    def _paced(self, now: float) -> bool:
        q = self.recent
        while q and now - q[0] > 1.0 - PACING_JITTER_S:
            q.popleft()
        q.append(now)
        rate = self.gw.max_msg_rate
        if len(q) <= rate:
            return True
        if len(q) > rate * self.gw.disconnect_factor:
            log.warning("client %s sent %d messages within a second: disconnecting", self.client_id, len(q))
            self.abort()
            return False
        self.error(-1, 100, f"Max rate of messages per second has been exceeded:max={rate} rec={len(q)} (1)")
        return False

    def _dispatch(self, fields: list[str]) -> None:
        try:
            msg_id = int(fields[0])
        except (ValueError, IndexError):
            self.error(-1, 505, f"Fatal error: unknown message id {fields[:1]!r}")
            return
        handler = getattr(self, f"_m{msg_id}", None)
        if self.client_id is None and msg_id != 71:
            self.error(-1, 321, "Error validating request: startApi must come first")
            return
        if handler is None:
            self.error(-1, 321, f"Error validating request: the practice gateway does not support message {msg_id}")
            return
        try:
            handler(fields)
        except (P.ProtocolError, ValueError, IndexError) as exc:
            log.warning("client %s: bad message %s: %s", self.client_id, fields[:3], exc)
            self.error(-1, 320, f"Error reading request: {exc}")

    # --------------------------------------------------------------------------------- handlers
    def _m71(self, f: list[str]) -> None:          # startApi [71, 2, clientId, optionalCapabilities]
        client_id = int(f[2])
        other = self.gw.sessions.get(client_id)
        if other is not None and not other.closed:
            self.error(-1, 326, "Unable to connect as the client id is already in use. Retry with a unique client id.")
            self.abort()
            return
        self.client_id = client_id
        self.gw.sessions[client_id] = self
        log.info("client %d connected from %s", client_id, self.peer)
        self.send(P.managed_accounts([self.gw.account]))
        self.send(P.next_valid_id(self.gw.next_order_id(client_id)))
        for code, text in WARNING_CODES.items():
            if code == 2104 and self.gw.faults.farm_down:
                code, text = 2103, FARM_BROKEN
            self.error(-1, code, text)
        if self.gw.faults.ib_lost:
            self.knows_ib_lost = False
            self.error(-1, 1100, IB_LOST)

    def _m17(self, f):                              # reqManagedAccts
        self.send(P.managed_accounts([self.gw.account]))

    def _m8(self, f):                               # reqIds
        self.send(P.next_valid_id(self.gw.next_order_id(self.client_id)))

    def _m49(self, f):                              # reqCurrentTime (after a 1100: the client knows IB is lost)
        if self.gw.faults.ib_lost:
            self.knows_ib_lost = True
        self.send(P.current_time(int(self.gw.now().timestamp())))

    def _m15(self, f):                              # reqAutoOpenOrders: manual TWS orders do not exist here
        pass

    def _m59(self, f):                              # reqMarketDataType [59, 1, type]
        t = int(f[2])
        if t not in (1, 2, 3, 4):
            self.error(-1, 321, f"Error validating request: market data type {t} must be 1-4")
            return
        self.md_type = t

    def _m9(self, f):                               # reqContractDetails [9, 8, reqId, C12, ...]
        req_id = int(f[2])
        found = self.gw.catalog.search(WireContract.parse(f[3:15]))
        if not found:
            self.error(req_id, 200, "No security definition has been found for the request")
            return
        for c in found:
            self.send(self.gw.details_message(req_id, c))
        self.send(P.contract_details_end(req_id))

    def _m78(self, f):                              # reqSecDefOptParams [78, reqId, symbol, futFopExchange, secType, conId]
        req_id, symbol = int(f[1]), f[2].upper()
        if symbol in INDEX_IDS and symbol in self.gw.world.market.underlyings or \
                (symbol == "XSP" and "XSP" in self.gw.world.market.underlyings):
            for cls, expiries, strikes in self.gw.catalog.option_chains(symbol):
                for exchange in OPTION_EXCHANGES:
                    self.send(P.sec_def_opt_params(req_id, exchange, INDEX_IDS[symbol], cls, "100", expiries,
                                                   strikes))
        self.send(P.sec_def_opt_params_end(req_id))

    # ------------------------------------------------------------------------------ market data
    def _m1(self, f):                               # reqMktData [1, 11, reqId, C12, dnc, ticks, snapshot, regSnap, opts]
        req_id = int(f[2])
        q = WireContract.parse(f[3:15])
        snapshot = f[17] == "1" if len(f) > 17 else False
        if req_id in self.lines:
            self.error(req_id, 322, f"Error processing request: duplicate ticker id {req_id}")
            return
        found = self.gw.catalog.search(q)
        if len(found) != 1:
            self.error(req_id, 200, "No security definition has been found for the request")
            return
        kind, key = self.gw.catalog.by_id(found[0].con_id)
        delayed = not self.gw.faults.live_entitled
        if delayed and self.md_type in (1, 2):
            self.error(req_id, 354, "Requested market data is not subscribed. Delayed market data is available.")
            return
        if not snapshot and len(self.lines) >= self.gw.max_lines:
            self.error(req_id, 101, "Max number of tickers has been reached")
            return
        line = _Line(req_id, found[0].con_id, kind, key, delayed, opened=time.monotonic())
        if not snapshot and kind in ("IND", "FUT"):
            self.gw.stream_requests.append((time.monotonic(), kind))
        if self.gw.faults.ib_lost or self.gw.faults.farm_down:
            if not snapshot:                # silent until the data are back; snapshots go unanswered
                self.lines[req_id] = line
            return
        self.send(P.market_data_type(req_id, 3 if delayed else 1))
        for msg in self.gw.tick_messages([line]):
            self.send(msg)
        if snapshot:
            self.send(P.tick_snapshot_end(req_id))
        else:
            self.lines[req_id] = line

    def _m2(self, f):                               # cancelMktData [2, 2, reqId]
        self.lines.pop(int(f[2]), None)

    # ----------------------------------------------------------------------------------- orders
    def _m3(self, f):
        self.gw.place_order(self, P.parse_place_order(f))

    def _m4(self, f):                               # cancelOrder [4, 1, orderId, manualCancelOrderTime]
        self.gw.cancel_order(self, int(f[2]))

    def _m58(self, f):                              # reqGlobalCancel
        for o in list(self.gw.orders.values()):
            if o.working:
                self.gw.cancel_order(self.gw.sessions.get(o.view.client_id), o.view.order_id,
                                     client_id=o.view.client_id)

    def _m5(self, f):                               # reqOpenOrders: this client's working orders
        self._open_orders(only_mine=self.client_id != 0)

    def _m16(self, f):                              # reqAllOpenOrders
        self._open_orders(only_mine=False)

    def _open_orders(self, only_mine: bool) -> None:
        for o in self.gw.orders.values():
            if o.working and (not only_mine or o.view.client_id == self.client_id):
                self.send(P.open_order(o.view))
                self.send(P.order_status(o.view))
        self.send(P.open_order_end())

    def _m99(self, f):                              # reqCompletedOrders [99, apiOnly]
        for o in self.gw.orders.values():
            if not o.working:
                self.send(P.completed_order(o.view))
        self.send(P.completed_orders_end())

    def _m7(self, f):                               # reqExecutions [7, 3, reqId, clientId, acct, time, sym, sec, exch, side]
        req_id = int(f[2])
        client_id, acct, since, symbol, sec, side = P.to_int(f[3]), f[4], f[5], f[6], f[7], f[9]
        since_at = _parse_filter_time(since)
        for e in self.gw.executions:
            if client_id and e.client_id != client_id:
                continue
            if acct and acct != e.account:
                continue
            if since_at and e.time < since_at:
                continue
            if symbol and symbol.upper() != e.contract.symbol:
                continue
            if sec and sec.upper() != e.contract.sec_type:
                continue
            if side and {"BUY": "BOT", "SELL": "SLD"}.get(side.upper(), side.upper()) != e.side:
                continue
            self.send(P.exec_details(req_id, e))
            self.send(P.commission_report(e))
        self.send(P.exec_details_end(req_id))

    # ---------------------------------------------------------------------------------- account
    def _m61(self, f):                              # reqPositions
        self.positions_sub = True
        for cid, qty in self.gw.positions().items():
            self.send(self.gw.position_message(cid, qty))
        self.send(P.position_end())

    def _m64(self, f):                              # cancelPositions
        self.positions_sub = False

    def _m6(self, f):                               # reqAccountUpdates [6, 2, subscribe, acct]
        self.account_sub = f[2] == "1"
        if self.account_sub:
            for msg in self.gw.account_messages():
                self.send(msg)
            self.send(P.account_download_end(self.gw.account))

    def _m76(self, f):                              # reqAccountUpdatesMulti [76, 1, reqId, acct, model, ledger]
        req_id = int(f[2])
        for key, value, ccy in self.gw.account_values():
            self.send(P.account_update_multi(req_id, self.gw.account, f[4], key, value, ccy))
        self.send(P.account_update_multi_end(req_id))

    def _m77(self, f):                              # cancelAccountUpdatesMulti
        pass

    def _m62(self, f):                              # reqAccountSummary [62, 1, reqId, group, tags]
        req_id = int(f[2])
        tags = {t.strip() for t in f[4].split(",") if t.strip()}
        for key, value, ccy in self.gw.account_values():
            if not tags or key in tags or "All" in tags:
                self.send(P.account_summary(req_id, self.gw.account, key, value, ccy))
        self.send(P.account_summary_end(req_id))

    def _m63(self, f):                              # cancelAccountSummary
        pass

    def _m92(self, f):                              # reqPnL [92, reqId, acct, model]
        req_id = int(f[1])
        self.pnl_subs.add(req_id)
        self.send(P.pnl(req_id, *self.gw.pnl()))

    def _m93(self, f):                              # cancelPnL
        self.pnl_subs.discard(int(f[1]))


def _next_local(after: datetime, hhmm: str, zone: str) -> datetime:
    """The next instant at or after `after` that is `hhmm` on the clock of `zone`."""
    tz = ZoneInfo(zone)
    local = after.astimezone(tz)
    hh, mm = (int(x) for x in hhmm.split(":"))
    at = local.replace(hour=hh, minute=mm, second=0, microsecond=0)
    if at < local:
        at = (local + timedelta(days=1)).replace(hour=hh, minute=mm, second=0, microsecond=0)
    return at.astimezone(timezone.utc)


def _parse_filter_time(text: str) -> datetime | None:
    """An execution-filter time: 'yyyymmdd hh:mm:ss [zone]' or 'yyyymmdd-hh:mm:ss' (UTC when no zone)."""
    text = text.strip()
    if not text:
        return None
    zone = timezone.utc
    if "-" in text[:9]:
        day, clock = text.split("-", 1)
    else:
        parts = text.split(" ")
        day, clock = parts[0], parts[1] if len(parts) > 1 else "00:00:00"
        if len(parts) > 2:
            try:
                zone = ZoneInfo(parts[2])
            except Exception:
                zone = timezone.utc
    at = datetime.strptime(day + clock.strip(), "%Y%m%d%H:%M:%S")
    return at.replace(tzinfo=zone)


class PracticeGateway:
    """The simulated world behind a TWS API socket. `await start(host, port)`, `await stop()`."""

    def __init__(self, settings, world: SimWorld | None = None, *, account: str | None = None,
                 max_lines: int = 100, max_msg_rate: int = 50, disconnect_factor: float = 3.0,
                 tick_interval_s: float = 0.25, pump_interval_s: float = 0.02,
                 capital: float | None = None) -> None:
        self.settings = settings
        self.world = world or SimWorld.from_settings(settings)
        acct = account or (settings.ib.account.get_secret_value() if settings.ib.account else "")
        self.account = acct or DEFAULT_ACCOUNT
        self.max_lines = max_lines
        self.max_msg_rate = max_msg_rate
        self.disconnect_factor = disconnect_factor
        self.tick_interval_s = tick_interval_s
        self.pump_interval_s = pump_interval_s
        self.capital = float(capital if capital is not None else settings.risk.buying_power)
        self.faults = Faults()
        self.catalog = Catalog(lambda: self.world.market.listing)
        self.sessions: dict[int, _Session] = {}
        self.orders: dict[int, _IbOrder] = {}             # perm id -> order
        self._by_key: dict[tuple[int, int], int] = {}      # (client id, order id) -> perm id
        self._next_ids: dict[int, int] = {}
        self.executions: list[ExecView] = []
        self._book: dict[int, list[float]] = {}           # contract id -> [qty, avg price, realized $]
        self._contracts: dict[int, Contract] = {}
        self._realized_by_fill: dict[str, float | None] = {}
        self._perm = itertools.count(1_000_001)
        self._exec_seq = itertools.count(1)
        self._server: asyncio.base_events.Server | None = None
        self._all_sessions: set[_Session] = set()
        self._tasks: list[asyncio.Task] = []
        self._closing = False
        self.port = 0
        self.host = "127.0.0.1"
        self.world.on_event.append(self._on_exchange_event)
        self.orders_while_lost = 0                        # new orders and modifies sent knowing of a 1100
        self.lost_order_delays: list[float] = []          # seconds after the 1100 each order (either kind) arrived
        self.orders_crossing_loss = 0                     # received during a 1100, sent before the client saw it
        self._ib_lost_at = 0.0
        self.order_refs: dict[str, int] = {}              # orderRef -> new orders carrying it
        self.modifies: dict[str, int] = {}                # orderRef -> modifies received
        self.stream_requests: list[tuple[float, str]] = []    # (monotonic time, IND|FUT) of streaming requests
        self.restarts = 0
        self.down = False                                 # the port is closed (a restart in progress)
        self._restart_at: datetime | None = None          # a scheduled restart (simulated time)
        self._restart_down_s = 0.0
        self._rollback = True
        self._daily: tuple[str, str, float] | None = None

    # -------------------------------------------------------------------------------- lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 7497) -> int:
        """Listen on host:port (0 = any free port); returns the bound port."""
        self._closing = False
        self._server = await asyncio.start_server(self._on_connect, host, port)
        self.host, self.port = host, self._server.sockets[0].getsockname()[1]
        self._tasks = [asyncio.create_task(self._pump(), name="gateway-pump"),
                       asyncio.create_task(self._stream(), name="gateway-ticks")]
        log.info("practice gateway listening on %s:%d (server version %d, account %s)", host, self.port,
                 P.SERVER_VERSION, self.account)
        return self.port

    async def stop(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []
        for s in list(self._all_sessions):
            s.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, reader, writer)
        self._all_sessions.add(session)
        try:
            await session.run()
        finally:
            self._all_sessions.discard(session)

    def _forget(self, session: _Session) -> None:
        self._all_sessions.discard(session)
        if session.client_id is not None and self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
            log.info("client %d disconnected", session.client_id)

    def now(self) -> datetime:
        return self.world.clock.now()

    # ------------------------------------------------------------------------------ fault control
    def drop_connections(self, client_id: int | None = None) -> int:
        """Abort every connection (or that of `client_id`); returns how many were dropped."""
        victims = [s for s in list(self._all_sessions) if client_id is None or s.client_id == client_id]
        for s in victims:
            s.abort()
        return len(victims)

    def set_delay(self, seconds: float) -> None:
        self.faults.delay_s = max(0.0, float(seconds))

    def reject_next_orders(self, n: int = 1, reason: str | None = None) -> None:
        self.faults.reject_orders = n
        if reason:
            self.faults.reject_reason = reason

    def partial_fills(self, slice_qty: int | None, pause_s: float = 5.0) -> None:
        """Fill orders at most `slice_qty` contracts at a time, `pause_s` simulated seconds apart (None: off)."""
        self.faults.fill_slice = slice_qty
        self.faults.slice_pause_s = pause_s

    def drop_after_next_order(self) -> None:
        self.faults.drop_after_order = True

    def set_live_entitled(self, entitled: bool) -> None:
        self.faults.live_entitled = entitled

    def lose_ib(self) -> None:
        """1100: TWS lost IB. The socket stays up; no data flow; orders that arrive are counted (and worked)."""
        self.faults.ib_lost = True
        self._ib_lost_at = time.monotonic()
        for s in list(self.sessions.values()):
            s.knows_ib_lost = False
            s.error(-1, 1100, IB_LOST)

    def restore_ib(self, data_lost: bool = True) -> None:
        """1101 (every market-data subscription is gone: the client must request again) or 1102 (kept)."""
        self.faults.ib_lost = False
        for s in list(self.sessions.values()):
            if data_lost:
                s.lines.clear()
            s.error(-1, 1101 if data_lost else 1102, RESTORED_DATA_LOST if data_lost else RESTORED_DATA_KEPT)

    def farm_down(self) -> None:
        """2103: the market-data farm broke; the streaming lines open now never tick again."""
        self.faults.farm_down = True
        for s in list(self.sessions.values()):
            for line in s.lines.values():
                line.dead = True
            s.error(-1, 2103, FARM_BROKEN)

    def farm_up(self) -> None:
        """2104: the farm is back; lines requested from now on stream (dead ones stay dead)."""
        self.faults.farm_down = False
        for s in list(self.sessions.values()):
            s.error(-1, 2104, FARM_OK)

    def move_position(self, contract: Contract, quantity: int) -> None:
        """A position change without an execution of ours (an assignment, a transfer, a trade the API never saw):
        what a reconcile must catch as a mismatch."""
        ex = self.world.exchange
        ex.contracts[contract.contract_id] = self._contracts[contract.contract_id] = contract
        qty = ex.positions.get(contract.contract_id, 0) + int(quantity)
        if qty:
            ex.positions[contract.contract_id] = qty
        else:
            ex.positions.pop(contract.contract_id, None)
        self._broadcast_position(contract.contract_id)

    def cancel_all_orders(self) -> int:
        """Cancel every working order (as the trader's global cancel in TWS would); returns how many."""
        working = [o for o in self.orders.values() if o.working]
        for o in working:
            self.cancel_order(self.sessions.get(o.view.client_id), o.view.order_id, client_id=o.view.client_id)
        return len(working)

    def lose_next_ack(self) -> None:
        """The next order or modify is applied at the exchange, but its acknowledgement is lost with the socket."""
        self.faults.lose_next_ack = True

    async def restart(self, down_s: float = 1.0, rollback_ids: bool = True) -> None:
        """The nightly restart: every socket drops, the port is closed for `down_s`, orders and positions are kept
        (they live at IB), and nextValidId starts again from 1 when `rollback_ids`."""
        self.restarts += 1
        self.down = True
        if self._server is not None:
            self._server.close()
            self._server = None
        for s in list(self._all_sessions):
            s.abort()
        await asyncio.sleep(down_s)
        if rollback_ids:
            self._next_ids.clear()
        self.faults.ib_lost = self.faults.farm_down = False
        if not self._closing:
            self._server = await asyncio.start_server(self._on_connect, self.host, self.port)
        self.down = False

    def schedule_restart(self, at: datetime, down_s: float = 1.0, rollback_ids: bool = True) -> None:
        """A restart at simulated time `at` (the pump starts it)."""
        self._restart_at, self._restart_down_s, self._rollback = at, down_s, rollback_ids

    def schedule_daily_restart(self, hhmm: str, zone: str = "America/New_York", down_s: float = 60.0) -> datetime:
        """A restart every day at `hhmm` in `zone` (simulated time), as TWS's auto-restart; returns the next one."""
        self._daily = (hhmm, zone, down_s)
        at = _next_local(self.now(), hhmm, zone)
        self.schedule_restart(at, down_s)
        return at

    @property
    def duplicate_order_refs(self) -> dict[str, int]:
        return {ref: n for ref, n in self.order_refs.items() if n > 1}

    @property
    def connected_clients(self) -> list[int]:
        return sorted(self.sessions)

    # ------------------------------------------------------------------------------------ tasks
    async def _pump(self) -> None:
        while not self._closing:
            try:
                self.world.sync()
                self._start_due_slices()
                if self._restart_at is not None and self.now() >= self._restart_at:
                    self._restart_at = None
                    self._tasks.append(asyncio.create_task(self.restart(self._restart_down_s, self._rollback)))
                    if self._daily is not None:
                        hhmm, zone, down_s = self._daily
                        self.schedule_restart(_next_local(self.now() + timedelta(minutes=1), hhmm, zone), down_s)
            except Exception:
                log.exception("gateway pump failed")
            await asyncio.sleep(self.pump_interval_s)

    async def _stream(self) -> None:
        last_pnl = 0.0
        while not self._closing:
            await asyncio.sleep(self.tick_interval_s)
            try:
                for s in list(self.sessions.values()):
                    if s.lines and not (self.faults.ib_lost or self.faults.farm_down):
                        live = [ln for ln in s.lines.values() if not ln.dead]
                        for msg in self.tick_messages(live, changed_only=True):
                            s.send(msg)
                if time.monotonic() - last_pnl >= 1.0:
                    last_pnl = time.monotonic()
                    for s in list(self.sessions.values()):
                        for req_id in s.pnl_subs:
                            s.send(P.pnl(req_id, *self.pnl()))
            except Exception:
                log.exception("gateway tick stream failed")

    # ------------------------------------------------------------------------------ market data
    def tick_messages(self, lines: list[_Line], changed_only: bool = False) -> list[list]:
        """Tick messages for `lines` at the current simulated time (only changed values when `changed_only`)."""
        market = self.world.market
        out: list[list] = []
        rows = [int(ln.key) for ln in lines if ln.kind == "OPT"]
        quotes = market.quote_rows(np.array(rows, dtype=np.int64)) if rows else None
        by_row = {r: i for i, r in enumerate(rows)}
        lst = market.listing
        for ln in lines:
            ticks = DELAYED_TICKS if ln.delayed else LIVE_TICKS
            values: dict[str, tuple] = {}
            if ln.kind == "IND":
                scale = index_scale(ln.key)
                values["last"] = (round(market.spot * scale, 2),)
                opening = market.prints.get(market.trade_date, {}).get("open", market.spot)
                values["close"] = (round(opening * scale, 2),)
            elif ln.kind == "FUT":
                fq = market.future_quote(lst.future_by_id(ln.con_id))
                values["bid"] = (fq.bid, fq.bid_size)
                values["ask"] = (fq.ask, fq.ask_size)
            else:
                if int(ln.key) >= len(lst) or int(lst.contract_id[int(ln.key)]) != ln.con_id:
                    row = lst.row_of(ln.con_id)            # a new listing (midnight): find the row again
                    if row is None:
                        continue
                    ln.key = row
                    quotes = market.quote_rows(np.array([row]))
                    by_row = {row: 0}
                i = by_row[int(ln.key)]
                bid, ask = float(quotes.bid[i]), float(quotes.ask[i])
                bsz, asz = int(quotes.bid_size[i]), int(quotes.ask_size[i])
                values["bid"] = (bid, bsz) if bid > 0 and bsz > 0 else (-1.0, 0)
                values["ask"] = (ask, asz) if ask > 0 and asz > 0 else (-1.0, 0)
                row = int(ln.key)
                und = float(market.spot * lst.scale[row])
                values["model"] = (round(float(quotes.vol[i]), 6), round(_delta(quotes, i, float(lst.strike[row]), bool(lst.is_call[row])), 6),
                                   round(float(quotes.fair[i]), 4), round(und, 2))
            for name, value in values.items():
                if changed_only and ln.sent.get(name) == value:
                    continue
                ln.sent[name] = value
                tick = ticks[name]
                if name in ("bid", "ask"):
                    out.append(P.tick_price(ln.req_id, tick, value[0], value[1], 0))
                    out.append(P.tick_size(ln.req_id, ticks[f"{name}_size"], value[1]))
                elif name == "model":
                    iv, delta, price, und = value
                    out.append(P.tick_option_computation(ln.req_id, tick, iv, delta, price, und))
                else:
                    out.append(P.tick_price(ln.req_id, tick, value[0], 0, 0))
        return out

    def details_message(self, req_id: int, c: WireContract) -> list:
        if c.sec_type == "IND":
            return P.contract_details(
                req_id, c, market_name=c.symbol, min_tick=0.01, order_types="", valid_exchanges="CBOE",
                under_con_id=0, long_name=INDEX_NAMES[c.symbol], contract_month="", time_zone="US/Central",
                trading_hours=self._hours(), liquid_hours=self._hours(), under_symbol="", under_sec_type="",
                real_expiration="")
        if c.sec_type == "FUT":
            return P.contract_details(
                req_id, c, market_name=c.trading_class, min_tick=FUTURE_TICK, order_types="LMT,MKT",
                valid_exchanges="CME", under_con_id=INDEX_IDS["SPX"], long_name=FUTURES[c.symbol][1],
                contract_month=c.last_trade_date[:6], time_zone="US/Central", trading_hours=self._hours(),
                liquid_hours=self._hours(), under_symbol=c.symbol, under_sec_type="IND",
                real_expiration=c.last_trade_date)
        return P.contract_details(
            req_id, c, market_name=c.trading_class, min_tick=0.05, order_types="LMT,MKT",
            valid_exchanges="SMART,CBOE", under_con_id=INDEX_IDS[c.symbol], long_name=INDEX_NAMES[c.symbol],
            contract_month=c.last_trade_date[:6], time_zone="US/Central", trading_hours=self._hours(),
            liquid_hours=self._hours(), under_symbol=c.symbol, under_sec_type="IND",
            real_expiration=c.last_trade_date)

    def _hours(self) -> str:
        d = self.now().astimezone(ZoneInfo("America/Chicago")).strftime("%Y%m%d")
        return f"{d}:0830-{d}:1500"

    # ----------------------------------------------------------------------------------- orders
    def next_order_id(self, client_id: int) -> int:
        return self._next_ids.setdefault(client_id, 1)

    def _send_to(self, client_id: int, *messages: list) -> None:
        s = self.sessions.get(client_id)
        if s is not None:
            for m in messages:
                s.send(m)

    def place_order(self, session: _Session, req: P.PlaceOrder) -> None:
        client_id = session.client_id
        key = (client_id, req.order_id)
        if self.faults.ib_lost:
            self.lost_order_delays.append(session.arrived - self._ib_lost_at)
            if session.knows_ib_lost:       # sent after the client answered the 1100 (its reqCurrentTime came first)
                self.orders_while_lost += 1
            else:                           # sent before the 1100 reached the client: it crossed the 1100
                self.orders_crossing_loss += 1
        lose_ack = self.faults.lose_next_ack
        if lose_ack:                        # apply it, but nothing reaches the client: the socket is cut first
            self.faults.lose_next_ack = False
            session.closed = True
        try:
            if key in self._by_key:
                ref = self.orders[self._by_key[key]].view.order_ref
                self.modifies[ref] = self.modifies.get(ref, 0) + 1
                self._modify(session, self.orders[self._by_key[key]], req)
                return
            if req.order_ref:
                self.order_refs[req.order_ref] = self.order_refs.get(req.order_ref, 0) + 1
            self._place_new(session, req, client_id, key)
        finally:
            if lose_ack:
                session.closed = False
                session.abort()

    def _place_new(self, session: _Session, req: P.PlaceOrder, client_id: int, key: tuple[int, int]) -> None:
        contract = self._resolve(req.contract)
        if contract is None:
            session.error(req.order_id, 200, "No security definition has been found for the request")
            return
        if not req.transmit:
            session.error(req.order_id, 201, "Order rejected - reason:the practice gateway transmits every order")
            return
        self._next_ids[client_id] = max(self._next_ids.get(client_id, 1), req.order_id + 1)
        wire = wire_of(contract, req.contract.exchange or ("CME" if contract.sec_type is SecType.FUTURE else "SMART"))
        view = OrderView(req.order_id, client_id, next(self._perm), wire, req.action, req.quantity, req.order_type,
                         req.limit_price, req.tif or "DAY", req.account or self.account, req.order_ref, "PreSubmitted")
        o = _IbOrder(view, contract, self.now())
        self.orders[view.perm_id] = o
        self._by_key[key] = view.perm_id
        reason = self._validate(req)
        if not reason and self.faults.reject_orders > 0:
            self.faults.reject_orders -= 1
            reason = self.faults.reject_reason
        if reason:
            self._reject(o, reason)
            return
        session.send(P.open_order(view))
        session.send(P.order_status(view))
        self._next_slice(o)
        if self.faults.drop_after_order:
            self.faults.drop_after_order = False
            session.abort()

    def _validate(self, req: P.PlaceOrder) -> str:
        if req.action not in ("BUY", "SELL"):
            return f"action must be BUY or SELL, got {req.action!r}"
        if req.order_type not in ("LMT", "MKT"):
            return f"the practice gateway supports LMT and MKT orders, not {req.order_type!r}"
        if req.quantity <= 0 or req.quantity != int(req.quantity):
            return f"quantity must be a positive whole number, got {req.quantity:g}"
        if req.order_type == "LMT" and (req.limit_price is None or not math.isfinite(req.limit_price)):
            return "a limit order needs a limit price"
        if req.account and req.account != self.account:
            return f"unknown account {req.account!r}"
        return ""

    def _resolve(self, q: WireContract) -> Contract | None:
        if q.sec_type == "IND":
            return None
        found = self.catalog.search(q)
        if len(found) != 1:
            return None
        return self.catalog.domain_contract(found[0].con_id)

    def _reject(self, o: _IbOrder, reason: str) -> None:
        o.view.status = "Cancelled"
        o.view.completed_status = f"Rejected: {reason}"
        o.view.completed_time = P.ib_time(self.now())
        self._send_to(o.view.client_id, P.error(o.view.order_id, 201, f"Order rejected - reason:{reason}"),
                      P.order_status(o.view))

    def _next_slice(self, o: _IbOrder) -> None:
        """Send the next sub-order (the whole remainder unless partial fills are injected)."""
        v = o.view
        remaining = int(v.quantity) - int(v.filled)
        qty = remaining if not self.faults.fill_slice else min(self.faults.fill_slice, remaining)
        o.sub += 1
        o.sub_base = int(v.filled)
        o.sub_working = True
        o.next_slice_at = None
        order = Order(o.sub_id, o.contract, Side(v.action), qty,
                      OrderType.LIMIT if v.order_type == "LMT" else OrderType.MARKET,
                      v.limit_price if v.order_type == "LMT" else None, created_at=self.now())
        self.world.exchange.submit(order)

    def _start_due_slices(self) -> None:
        now = self.world.market.now.timestamp()
        for o in list(self.orders.values()):
            if o.next_slice_at is not None and o.next_slice_at <= now and o.working and not o.cancel_requested:
                self._next_slice(o)

    def _modify(self, session: _Session, o: _IbOrder, req: P.PlaceOrder) -> None:
        v = o.view
        if not o.working:
            session.error(v.order_id, 104, f"Can't modify a filled order (order {v.order_id} is {v.status})")
            return
        if req.quantity <= v.filled or req.quantity != int(req.quantity):
            session.error(v.order_id, 321, f"Error validating request: quantity {req.quantity:g} must exceed the "
                                           f"{v.filled:g} filled")
            return
        v.quantity = req.quantity
        if v.order_type == "LMT" and req.limit_price is not None:
            v.limit_price = req.limit_price
        v.order_ref = req.order_ref or v.order_ref
        if o.sub_working:
            cap = int(v.quantity) - o.sub_base
            if self.faults.fill_slice:
                cap = min(cap, self.faults.fill_slice)
            self.world.exchange.modify(o.sub_id, v.limit_price if v.order_type == "LMT" else None, cap)
        else:
            session.send(P.open_order(v))
            session.send(P.order_status(v))

    def cancel_order(self, session: _Session | None, order_id: int, client_id: int | None = None) -> None:
        client_id = session.client_id if session is not None else client_id
        perm = self._by_key.get((client_id, order_id))
        if perm is None:
            if session is not None:
                session.error(order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found.")
            return
        o = self.orders[perm]
        if not o.working:
            if session is not None:
                session.error(order_id, 10148, f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                                               f"state: {o.view.status}.")
            return
        o.cancel_requested = True
        if o.sub_working:
            self.world.exchange.cancel(o.sub_id)
        else:
            self._finish_cancel(o)

    def _finish_cancel(self, o: _IbOrder, reason: str = "") -> None:
        v = o.view
        v.status = "Cancelled"
        v.completed_time = P.ib_time(self.now())
        v.completed_status = "Cancelled"
        o.next_slice_at = None
        self._send_to(v.client_id, P.error(v.order_id, 202, f"Order Canceled - reason:{reason}"),
                      P.order_status(v))

    # -------------------------------------------------------------------------- exchange events
    def _on_exchange_event(self, event: OrderEvent | Fill) -> None:
        if isinstance(event, Fill):
            self._book_fill(event)
        coid = event.client_order_id
        if not coid.startswith("ib"):
            return
        perm_text, _, sub_text = coid[2:].partition(".")
        o = self.orders.get(int(perm_text))
        if o is None or int(sub_text) != o.sub:
            return
        if isinstance(event, Fill):
            self._on_fill(o, event)
        else:
            self._on_order_event(o, event)

    def _on_order_event(self, o: _IbOrder, e: OrderEvent) -> None:
        v = o.view
        reason = e.reason or ""
        if reason.startswith("cancel rejected") or reason.startswith("modify rejected"):
            code = 10148 if reason.startswith("cancel") else 321
            self._send_to(v.client_id, P.error(v.order_id, code, f"Error validating request: {reason}"))
            return
        if e.status is OrderStatus.REJECTED:
            o.sub_working = False
            if v.filled:
                self._finish_cancel(o, reason)
            else:
                self._reject(o, reason)
            return
        if e.status is OrderStatus.CANCELLED:
            o.sub_working = False
            self._finish_cancel(o, "" if o.cancel_requested else reason)
            return
        if e.status is OrderStatus.FILLED:
            o.sub_working = False
            if v.filled < v.quantity and not o.cancel_requested:
                o.next_slice_at = self.world.market.now.timestamp() + self.faults.slice_pause_s
            return
        if e.status is OrderStatus.SUBMITTED and (v.status == "PreSubmitted" or reason == "modified"):
            v.status = "Submitted"
            self._send_to(v.client_id, P.open_order(v), P.order_status(v))

    def _on_fill(self, o: _IbOrder, fill: Fill) -> None:
        v = o.view
        o.notional += fill.quantity * fill.price
        v.filled += fill.quantity
        v.avg_fill_price = round(o.notional / v.filled, 6)
        v.last_fill_price = fill.price
        if v.filled >= v.quantity:
            v.status = "Filled"
            v.completed_time = P.ib_time(fill.timestamp)
            v.completed_status = "Filled"
        else:
            v.status = "Submitted"
        realized = self._realized_by_fill.get(fill.fill_id)
        e = ExecView(f"0000{v.perm_id:x}.{next(self._exec_seq):08x}.01.01", v.order_id, v.client_id, v.perm_id,
                     wire_of(o.contract, v.contract.exchange), fill.timestamp, v.account,
                     "CME" if o.contract.sec_type is SecType.FUTURE else "CBOE",
                     "BOT" if fill.side is Side.BUY else "SLD", float(fill.quantity), fill.price, v.filled,
                     v.avg_fill_price, v.order_ref, 2 if fill.liquidity == "taker" else 1, round(fill.commission, 4),
                     realized)
        self.executions.append(e)
        self._send_to(v.client_id, P.exec_details(-1, e), P.commission_report(e), P.order_status(v))
        if v.status == "Filled":
            self._send_to(v.client_id, P.open_order(v))
        self._broadcast_position(fill.contract.contract_id)

    # ------------------------------------------------------------------------- positions, P&L
    def _book_fill(self, fill: Fill) -> None:
        """Average-cost book of the gateway: avgCost for positions, realized P&L for commission reports."""
        c = fill.contract
        self._contracts[c.contract_id] = c
        qty, avg, realized = self._book.get(c.contract_id, [0.0, 0.0, 0.0])
        signed = fill.signed_quantity
        closing = qty * signed < 0
        made = None
        if closing:
            closed = min(abs(signed), abs(qty))
            made = (fill.price - avg) * closed * c.multiplier * (1 if qty > 0 else -1) - fill.commission
            realized += made
        new_qty = qty + signed
        if new_qty == 0:
            avg = 0.0
        elif not closing:
            avg = (avg * abs(qty) + fill.price * abs(signed)) / abs(new_qty)
        elif abs(signed) > abs(qty):           # flipped through zero
            avg = fill.price
        self._book[c.contract_id] = [new_qty, avg, realized]
        self._realized_by_fill[fill.fill_id] = made

    def positions(self) -> dict[int, int]:
        return dict(self.world.exchange.positions)

    def position_message(self, con_id: int, qty: int) -> list:
        c = self._contracts.get(con_id) or self.world.exchange.contracts.get(con_id)
        avg = self._book.get(con_id, [0, 0.0, 0])[1]
        return P.position(self.account, wire_of(c), float(qty), round(avg * c.multiplier, 6))

    def _broadcast_position(self, con_id: int) -> None:
        qty = self.world.exchange.positions.get(con_id, 0)
        for s in list(self.sessions.values()):
            if s.positions_sub:
                s.send(self.position_message(con_id, qty))
            if s.account_sub:
                s.send(self._portfolio_message(con_id, qty))
                for msg in self._value_messages():
                    s.send(msg)

    def _mark(self, c: Contract) -> float:
        market = self.world.market
        if c.sec_type is SecType.FUTURE:
            q = market.future_quote(market.listing.future_by_id(c.contract_id))
            return 0.5 * (q.bid + q.ask)
        row = market.listing.row_of(c.contract_id)
        if row is None:
            return 0.0
        q = market.quote_rows(np.array([row]))
        bid, ask = float(q.bid[0]), float(q.ask[0])
        return 0.5 * (bid + ask) if bid > 0 else ask / 2

    def _portfolio_message(self, con_id: int, qty: int) -> list:
        c = self._contracts.get(con_id) or self.world.exchange.contracts[con_id]
        _, avg, realized = self._book.get(con_id, [0, 0.0, 0.0])
        mark = self._mark(c)
        value = qty * mark * c.multiplier
        return P.portfolio_value(wire_of(c), float(qty), round(mark, 4), round(value, 2),
                                 round(avg * c.multiplier, 4), round(value - qty * avg * c.multiplier, 2),
                                 round(realized, 2), self.account)

    def pnl(self) -> tuple[float, float, float]:
        """(daily, unrealized, realized) in dollars since the gateway started."""
        realized = sum(b[2] for b in self._book.values())
        unrealized = 0.0
        for cid, qty in self.world.exchange.positions.items():
            c = self._contracts.get(cid) or self.world.exchange.contracts[cid]
            avg = self._book.get(cid, [0, 0.0, 0])[1]
            unrealized += qty * (self._mark(c) - avg) * c.multiplier
        return round(realized + unrealized, 2), round(unrealized, 2), round(realized, 2)

    def account_values(self) -> list[tuple[str, str, str]]:
        cash = self.capital + self.world.exchange.cash
        value = 0.0
        for cid, qty in self.world.exchange.positions.items():
            c = self._contracts.get(cid) or self.world.exchange.contracts[cid]
            if c.sec_type is not SecType.FUTURE:
                value += qty * self._mark(c) * c.multiplier
        daily, unrealized, realized = self.pnl()
        net = cash + value          # futures: their P&L is not marked into cash here (a simplification)
        usd = "USD"
        return [("AccountCode", self.account, ""), ("AccountType", "INDIVIDUAL", ""),
                ("NetLiquidation", f"{net:.2f}", usd), ("TotalCashValue", f"{cash:.2f}", usd),
                ("AvailableFunds", f"{net:.2f}", usd), ("ExcessLiquidity", f"{net:.2f}", usd),
                ("BuyingPower", f"{net:.2f}", usd), ("InitMarginReq", "0.00", usd),
                ("MaintMarginReq", "0.00", usd), ("GrossPositionValue", f"{abs(value):.2f}", usd),
                ("UnrealizedPnL", f"{unrealized:.2f}", usd), ("RealizedPnL", f"{realized:.2f}", usd),
                ("Currency", usd, usd)]

    def _value_messages(self) -> list[list]:
        return [P.account_value(k, v, ccy, self.account) for k, v, ccy in self.account_values()]

    def account_messages(self) -> list[list]:
        msgs = self._value_messages()
        for cid, qty in self.world.exchange.positions.items():
            msgs.append(self._portfolio_message(cid, qty))
        msgs.append(P.account_time(self.now()))
        return msgs


def _delta(q, i: int, strike: float, is_call: bool) -> float:
    """Forward Black-76 delta of row i of `quote_rows` output (for the model-greeks tick)."""
    vol, years, fwd = float(q.vol[i]), float(q.years[i]), float(q.forward[i])
    sd = vol * math.sqrt(max(years, 1e-9))
    d1 = (math.log(fwd / strike) + 0.5 * sd * sd) / sd
    n = 0.5 * (1.0 + math.erf(d1 / math.sqrt(2.0)))
    return n if is_call else n - 1.0
