"""One client connection of the practice gateway: the handshake, message pacing as TWS enforces it, decoding each
request and dispatching it to its handler, and the session-level requests (startApi, ids, the server's time).

The handlers of the other jobs live with their job (`market_data`, `orders`, `combos`, `account`); each module lists its own
in a `HANDLERS` table of message id -> handler(session, fields), merged here.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Callable

from workstation.market.ib_codes import Code
from workstation.sim.gateway import account, combos, market_data, orders, protocol as P
from workstation.sim.gateway.market_data import Line

if TYPE_CHECKING:
    from workstation.sim.gateway.server import PracticeGateway

log = logging.getLogger(__name__)

FARMS_OK = {Code.MARKET_FARM_OK: "Market data farm connection is OK:usopt",
            Code.HMDS_FARM_OK: "HMDS data farm connection is OK:ushmds",
            Code.SECDEF_FARM_OK: "Sec-def data farm connection is OK:secdefnj"}     # sent to every new client
FARM_BROKEN = "Market data farm connection is broken:usopt"
FARM_OK = FARMS_OK[Code.MARKET_FARM_OK]
IB_LOST = "Connectivity between IB and Trader Workstation has been lost."
RESTORED_DATA_LOST = "Connectivity between IB and Trader Workstation has been restored - data lost."
RESTORED_DATA_KEPT = "Connectivity between IB and Trader Workstation has been restored - data maintained."
PACING_JITTER_S = 0.05      # network jitter tolerated when counting messages per second
START_API = 71


class Session:
    """One client connection."""

    def __init__(self, gateway: PracticeGateway, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.gw = gateway
        self.reader = reader
        self.writer = writer
        self.client_id: int | None = None
        self.lines: dict[int, Line] = {}
        self.md_type = 1
        self.positions_sub = False
        self.account_sub = False
        self.pnl_subs: set[int] = set()
        self.recent: deque[float] = deque()
        self.closed = False
        self.arrived = 0.0                  # monotonic time the message being handled was read off the socket
        self.knows_ib_lost = False          # the client sent a request after our 1100 reached it (see current_time)
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
        self.gw.forget(self)

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
            self.gw.forget(self)
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
            self.send(P.error(-1, Code.OUTDATED, msg))
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
        self.error(-1, Code.MAX_RATE, f"Max rate of messages per second has been exceeded:max={rate} rec={len(q)} (1)")
        return False

    def _dispatch(self, fields: list[str]) -> None:
        try:
            msg_id = int(fields[0])
        except (ValueError, IndexError):
            self.error(-1, Code.UNKNOWN_MESSAGE, f"Fatal error: unknown message id {fields[:1]!r}")
            return
        if self.gw.faults.drop_on_request == msg_id:      # a restart or a drop that lands on this request
            self.gw.faults.drop_on_request = None
            self.abort()
            return
        handler = HANDLERS.get(msg_id)
        if self.client_id is None and msg_id != START_API:
            self.error(-1, Code.VALIDATION_ERROR, "Error validating request: startApi must come first")
            return
        if handler is None:
            self.error(-1, Code.VALIDATION_ERROR,
                       f"Error validating request: the practice gateway does not support message {msg_id}")
            return
        try:
            handler(self, fields)
        except (P.ProtocolError, ValueError, IndexError) as exc:
            log.warning("client %s: bad message %s: %s", self.client_id, fields[:3], exc)
            self.error(-1, Code.ERROR_READING_REQUEST, f"Error reading request: {exc}")


# ------------------------------------------------------------------------------------- handlers
def start_api(s: Session, f: list[str]) -> None:          # startApi [71, 2, clientId, optionalCapabilities]
    gw = s.gw
    client_id = int(f[2])
    other = gw.sessions.get(client_id)
    if other is not None and not other.closed:
        s.error(-1, Code.CLIENT_ID_IN_USE,
                "Unable to connect as the client id is already in use. Retry with a unique client id.")
        s.abort()
        return
    s.client_id = client_id
    gw.sessions[client_id] = s
    log.info("client %d connected from %s", client_id, s.peer)
    s.send(P.managed_accounts([gw.account]))
    s.send(P.next_valid_id(gw.desk.next_order_id(client_id)))
    for code, text in FARMS_OK.items():
        if code == Code.MARKET_FARM_OK and gw.faults.farm_down:
            code, text = Code.MARKET_FARM_DOWN, FARM_BROKEN
        s.error(-1, code, text)
    if gw.faults.ib_lost:
        s.knows_ib_lost = False
        s.error(-1, Code.IB_LOST, IB_LOST)


def managed_accounts(s: Session, f: list[str]) -> None:           # reqManagedAccts
    s.send(P.managed_accounts([s.gw.account]))


def next_valid_id(s: Session, f: list[str]) -> None:              # reqIds
    s.send(P.next_valid_id(s.gw.desk.next_order_id(s.client_id)))


def current_time(s: Session, f: list[str]) -> None:               # reqCurrentTime (after a 1100: the client knows)
    if s.gw.faults.ib_lost:
        s.knows_ib_lost = True
    s.send(P.current_time(int(s.gw.now().timestamp())))


def auto_open_orders(s: Session, f: list[str]) -> None:           # reqAutoOpenOrders: no manual TWS orders here
    pass


Handler = Callable[["Session", list[str]], None]         # a request's handler: (session, the message's fields)
HANDLERS: dict[int, Handler] = {
    START_API: start_api, 17: managed_accounts, 8: next_valid_id, 49: current_time, 15: auto_open_orders,
    **market_data.HANDLERS, **orders.HANDLERS, **account.HANDLERS,
    **combos.HANDLERS}                                 # placeOrder and cancels, BAG orders included
