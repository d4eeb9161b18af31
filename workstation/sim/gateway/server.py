"""PracticeGateway: the simulated market and paper exchange served over the TWS API socket protocol.

One asyncio server, one `Session` per client connection (`session.py`: handshake, pacing, dispatch). A pump task
syncs the simulated world (the paper exchange matches orders as the simulated clock runs) and a tick task streams
market data to the open lines. The jobs live apart: market data and contract definitions (`market_data.py`),
orders, fills and execution reports (`orders.py`), combo (BAG) orders (`combos.py`), positions, account values
and P&L (`account.py`); this module composes them and holds the lifecycle and the fault controls.

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
import logging
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from workstation.domain import Contract
from workstation.market.ib_codes import Code
from workstation.sim.gateway import protocol as P
from workstation.sim.gateway.account import AccountBook
from workstation.sim.gateway.catalog import Catalog
from workstation.sim.gateway.combos import BagDesk
from workstation.sim.gateway.faults import Faults
from workstation.sim.gateway.market_data import Line, MarketData
from workstation.sim.gateway.orders import OrderDesk
from workstation.sim.gateway.session import (FARM_BROKEN, FARM_OK, IB_LOST, RESTORED_DATA_KEPT, RESTORED_DATA_LOST,
                                             Session)
from workstation.sim.world import SimWorld

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "DU123456"
_Line = Line                # the name a market-data line had when it lived here (tests build lines)


def _served_by(part: str, name: str) -> property:
    """A public name of the gateway, served by one of its parts (the desk, the account book, the market data)."""
    return property(lambda self: getattr(getattr(self, part), name), doc=f"`{part}.{name}`")


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
        self.sessions: dict[int, Session] = {}
        self.market_data = MarketData(self.world)
        self.account_book = AccountBook(self.world, self.sessions, self.account, self.capital)
        self.desk = OrderDesk(self.world, self.sessions, self.faults, self.account_book, self.catalog, self.account)
        self.combos = BagDesk(self.desk)                  # combo (BAG) orders
        self._server: asyncio.base_events.Server | None = None
        self._all_sessions: set[Session] = set()
        self._tasks: list[asyncio.Task] = []
        self._closing = False
        self.port = 0
        self.host = "127.0.0.1"
        self.world.on_event.append(self.desk.on_exchange_event)
        self.world.on_event.append(self.combos.on_exchange_event)
        self.stream_requests: list[tuple[float, str]] = []    # (monotonic time, IND|FUT) of streaming requests
        self.restarts = 0
        self.down = False                                 # the port is closed (a restart in progress)
        self._restart_at: datetime | None = None          # a scheduled restart (simulated time)
        self._restart_down_s = 0.0
        self._rollback = True
        self._daily: tuple[str, str, float] | None = None

    # the public names of the parts, kept on the gateway
    orders = _served_by("desk", "orders")                               # perm id -> order
    executions = _served_by("desk", "executions")
    orders_while_lost = _served_by("desk", "orders_while_lost")         # new orders and modifies sent knowing of 1100
    lost_order_delays = _served_by("desk", "lost_order_delays")         # seconds after the 1100 each order arrived
    orders_crossing_loss = _served_by("desk", "orders_crossing_loss")   # sent before the 1100 reached the client
    order_refs = _served_by("desk", "order_refs")                       # orderRef -> new orders carrying it
    modifies = _served_by("desk", "modifies")                           # orderRef -> modifies received
    next_order_id = _served_by("desk", "next_order_id")
    place_order = _served_by("desk", "place_order")
    cancel_order = _served_by("desk", "cancel_order")
    positions = _served_by("account_book", "positions")
    position_message = _served_by("account_book", "position_message")
    pnl = _served_by("account_book", "pnl")
    account_values = _served_by("account_book", "account_values")
    account_messages = _served_by("account_book", "account_messages")
    tick_messages = _served_by("market_data", "tick_messages")
    details_message = _served_by("market_data", "details_message")

    def cancel_all_orders(self) -> int:
        """Every working order of every client, single and combo (BAG), as TWS's global cancel; how many."""
        return self.desk.cancel_all() + self.combos.cancel_all()

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
        session = Session(self, reader, writer)
        self._all_sessions.add(session)
        try:
            await session.run()
        finally:
            self._all_sessions.discard(session)

    def forget(self, session: Session) -> None:
        """A session ended: it no longer holds its client id."""
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
        self.desk.ib_lost_at = time.monotonic()
        for s in list(self.sessions.values()):
            s.knows_ib_lost = False
            s.error(-1, Code.IB_LOST, IB_LOST)

    def restore_ib(self, data_lost: bool = True) -> None:
        """1101 (every market-data subscription is gone: the client must request again) or 1102 (kept)."""
        self.faults.ib_lost = False
        for s in list(self.sessions.values()):
            if data_lost:
                s.lines.clear()
                s.error(-1, Code.RESTORED_DATA_LOST, RESTORED_DATA_LOST)
            else:
                s.error(-1, Code.RESTORED_DATA_KEPT, RESTORED_DATA_KEPT)

    def farm_down(self) -> None:
        """2103: the market-data farm broke; the streaming lines open now never tick again."""
        self.faults.farm_down = True
        for s in list(self.sessions.values()):
            for line in s.lines.values():
                line.dead = True
            s.error(-1, Code.MARKET_FARM_DOWN, FARM_BROKEN)

    def farm_up(self) -> None:
        """2104: the farm is back; lines requested from now on stream (dead ones stay dead)."""
        self.faults.farm_down = False
        for s in list(self.sessions.values()):
            s.error(-1, Code.MARKET_FARM_OK, FARM_OK)

    def move_position(self, contract: Contract, quantity: int) -> None:
        """A position change without an execution of ours (an assignment, a transfer, a trade the API never saw):
        what a reconcile must catch as a mismatch."""
        ex = self.world.exchange
        ex.contracts[contract.contract_id] = self.account_book.contracts[contract.contract_id] = contract
        qty = ex.positions.get(contract.contract_id, 0) + int(quantity)
        if qty:
            ex.positions[contract.contract_id] = qty
        else:
            ex.positions.pop(contract.contract_id, None)
        self.account_book.broadcast_position(contract.contract_id)

    def drop_on_next_request(self, msg_id: int) -> None:
        """Cut the connection that sends the next request with message id `msg_id` (49 reqCurrentTime, 61
        reqPositions, 1 reqMktData, ...): a restart or a drop that lands inside a client's handshake or restore."""
        self.faults.drop_on_request = int(msg_id)

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
            self.desk.next_ids.clear()
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
                self.desk.start_due_slices()
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
                        for msg in self.market_data.tick_messages(live, changed_only=True):
                            s.send(msg)
                if time.monotonic() - last_pnl >= 1.0:
                    last_pnl = time.monotonic()
                    for s in list(self.sessions.values()):
                        for req_id in s.pnl_subs:
                            s.send(P.pnl(req_id, *self.account_book.pnl()))
            except Exception:
                log.exception("gateway tick stream failed")


def _next_local(after: datetime, hhmm: str, zone: str) -> datetime:
    """The next instant at or after `after` that is `hhmm` on the clock of `zone`."""
    tz = ZoneInfo(zone)
    local = after.astimezone(tz)
    hh, mm = (int(x) for x in hhmm.split(":"))
    at = local.replace(hour=hh, minute=mm, second=0, microsecond=0)
    if at < local:
        at = (local + timedelta(days=1)).replace(hour=hh, minute=mm, second=0, microsecond=0)
    return at.astimezone(timezone.utc)
