"""The TWS API wire format at server version 178, as the unmodified ib_async 2.1 client reads and writes it.

Pure functions, no I/O: framing (4-byte big-endian length, NUL-terminated fields), value formatting, parsing of
the requests the client sends and builders for every message the practice gateway sends. Field layouts follow
ib_async's `decoder.py` field by field; `tests/test_gateway_protocol.py` decodes each builder's output with
ib_async's own Decoder and fails on any error.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from datetime import datetime, timezone

SERVER_VERSION = 178
UNSET_DOUBLE = 1.7976931348623157e308
UNSET_INTEGER = 2**31 - 1


class ProtocolError(Exception):
    """A malformed request (the session answers with an error message, it does not crash)."""


# ------------------------------------------------------------------------------------------ framing
def frame(fields: list) -> bytes:
    """One framed message: every field formatted and NUL-terminated, prefixed by its length."""
    body = "".join(f"{fmt(f)}\0" for f in fields).encode()
    return struct.pack(">I", len(body)) + body


def split_frames(buffer: bytearray) -> list[list[str]]:
    """Remove every complete message from `buffer` and return their fields (a partial message stays)."""
    out: list[list[str]] = []
    while len(buffer) >= 4:
        size = struct.unpack(">I", buffer[:4])[0]
        if len(buffer) < 4 + size:
            break
        body = bytes(buffer[4:4 + size]).decode(errors="backslashreplace")
        del buffer[:4 + size]
        fields = body.split("\0")
        if fields and fields[-1] == "":
            fields.pop()
        out.append(fields)
    return out


def fmt(value) -> str:
    """Format one field: bools as 1/0, None and NaN as empty, integral counts without '.0'."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return repr(value)
    return str(value)


def parse_client_versions(payload: str) -> tuple[int, int]:
    """The client's version range from the handshake field 'v157..178[ options]'."""
    text = payload.strip().split(" ")[0]
    if not text.startswith("v"):
        raise ProtocolError(f"bad handshake {payload!r}")
    lo, _, hi = text[1:].partition("..")
    try:
        return int(lo), int(hi or lo)
    except ValueError:
        raise ProtocolError(f"bad handshake {payload!r}") from None


def connection_time(at: datetime) -> str:
    """The handshake's connection time, e.g. '20251017 09:30:00 UTC'."""
    return at.astimezone(timezone.utc).strftime("%Y%m%d %H:%M:%S UTC")


def ib_time(at: datetime) -> str:
    """Execution time as TWS sends it with a zone: 'YYYYmmdd HH:MM:SS UTC'."""
    return at.astimezone(timezone.utc).strftime("%Y%m%d %H:%M:%S UTC")


def to_float(text: str, default: float = 0.0) -> float:
    if text in ("", None):
        return default
    if text == "Infinite":
        return math.inf
    return float(text)


def to_int(text: str, default: int = 0) -> int:
    if text in ("", None):
        return default
    try:
        return int(text)
    except ValueError:
        return int(float(text))


# ----------------------------------------------------------------------------------------- contracts
@dataclass(frozen=True)
class WireContract:
    """The contract fields that travel on the wire (C12 in requests, C11 in most replies)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""      # 'YYYYMMDD' (or 'YYYYMM' in requests)
    strike: float = 0.0
    right: str = ""                # 'C' | 'P' | ''
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""

    @classmethod
    def parse(cls, f: list[str]) -> "WireContract":
        """From the 12 request fields conId..tradingClass."""
        if len(f) < 12:
            raise ProtocolError(f"contract needs 12 fields, got {len(f)}")
        right = {"CALL": "C", "PUT": "P"}.get(f[5].upper(), f[5].upper())
        return cls(to_int(f[0]), f[1], f[2].upper(), f[3], to_float(f[4]), right, f[6], f[7], f[8], f[9],
                   f[10], f[11])

    def c11(self) -> list:
        """conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange, currency, localSymbol,
        tradingClass (positions, executions)."""
        return [self.con_id, self.symbol, self.sec_type, self.last_trade_date, self.strike, self.right,
                self.multiplier, self.exchange, self.currency, self.local_symbol, self.trading_class]

    def c11_primary(self) -> list:
        """As `c11` with primaryExchange in place of exchange (portfolio updates)."""
        fields = self.c11()
        fields[7] = self.primary_exchange
        return fields


# --------------------------------------------------------------------------------------- requests
@dataclass
class PlaceOrder:
    """The fixed head of a placeOrder request (single-leg orders)."""

    order_id: int
    contract: WireContract
    action: str
    quantity: float
    order_type: str
    limit_price: float | None
    aux_price: float | None
    tif: str
    account: str
    order_ref: str
    transmit: bool


def parse_place_order(f: list[str]) -> PlaceOrder:
    """`[3, orderId, C12, secIdType, secId, action, totalQuantity, orderType, lmtPrice, auxPrice, tif, ocaGroup,
    account, openClose, origin, orderRef, transmit, parentId, ...]`."""
    if len(f) < 29:
        raise ProtocolError(f"placeOrder too short ({len(f)} fields)")
    lmt = f[19]
    aux = f[20]
    return PlaceOrder(to_int(f[1]), WireContract.parse(f[2:14]), f[16].upper(), to_float(f[17]), f[18].upper(),
                      to_float(lmt) if lmt else None, to_float(aux) if aux else None, f[21], f[23], f[26],
                      f[27] != "0")


# ---------------------------------------------------------------------------------------- replies
def error(req_id: int, code: int, message: str) -> list:
    return [4, 2, req_id, code, message, ""]


def managed_accounts(accounts: list[str]) -> list:
    return [15, 1, ",".join(accounts)]


def next_valid_id(order_id: int) -> list:
    return [9, 1, order_id]


def current_time(epoch: int) -> list:
    return [49, 1, int(epoch)]


def contract_details(req_id: int, c: WireContract, *, market_name: str, min_tick: float, order_types: str,
                     valid_exchanges: str, under_con_id: int, long_name: str, contract_month: str,
                     time_zone: str, trading_hours: str, liquid_hours: str, under_symbol: str,
                     under_sec_type: str, real_expiration: str, min_size: str = "1",
                     size_increment: str = "1") -> list:
    """`[10, reqId, symbol, secType, lastTradeDate, strike, right, exchange, currency, localSymbol, marketName,
    tradingClass, conId, minTick, multiplier, orderTypes, validExchanges, priceMagnifier, underConId, longName,
    primaryExchange, contractMonth, industry, category, subcategory, timeZoneId, tradingHours, liquidHours, evRule,
    evMultiplier, nSecIds, aggGroup, underSymbol, underSecType, marketRuleIds, realExpirationDate, stockType, minSize,
    sizeIncrement, suggestedSizeIncrement]` (40 fields at version 178)."""
    return [10, req_id, c.symbol, c.sec_type, c.last_trade_date, c.strike, c.right, c.exchange, c.currency,
            c.local_symbol, market_name, c.trading_class, c.con_id, min_tick, c.multiplier, order_types,
            valid_exchanges, 1, under_con_id, long_name, c.primary_exchange, contract_month, "", "", "", time_zone,
            trading_hours, liquid_hours, "", "", 0, "", under_symbol, under_sec_type, "", real_expiration, "",
            min_size, size_increment, size_increment]


def contract_details_end(req_id: int) -> list:
    return [52, 1, req_id]


def sec_def_opt_params(req_id: int, exchange: str, under_con_id: int, trading_class: str, multiplier: str,
                       expirations: list[str], strikes: list[float]) -> list:
    """One exchange and trading class; nothing may follow the last strike."""
    return [75, req_id, exchange, under_con_id, trading_class, multiplier, len(expirations), *expirations,
            len(strikes), *strikes]


def sec_def_opt_params_end(req_id: int) -> list:
    return [76, req_id]


def market_data_type(req_id: int, data_type: int) -> list:
    return [58, 1, req_id, data_type]


def tick_price(req_id: int, tick_type: int, price: float, size: float = 0.0, attr_mask: int = 0) -> list:
    return [1, 6, req_id, tick_type, price, size, attr_mask]


def tick_size(req_id: int, tick_type: int, size: float) -> list:
    return [2, 6, req_id, tick_type, size]


def tick_option_computation(req_id: int, tick_type: int, iv: float, delta: float, opt_price: float,
                            und_price: float, gamma: float = -2.0, vega: float = -2.0, theta: float = -2.0,
                            pv_dividend: float = -1.0) -> list:
    """Exactly 12 fields, no version; -1 (prices, iv) and -2 (greeks) mean unset."""
    return [21, req_id, tick_type, 0, iv, delta, opt_price, pv_dividend, gamma, vega, theta, und_price]


def tick_snapshot_end(req_id: int) -> list:
    return [57, 1, req_id]


@dataclass
class OrderView:
    """What openOrder / orderStatus / completedOrder report about one order."""

    order_id: int
    client_id: int
    perm_id: int
    contract: WireContract
    action: str
    quantity: float
    order_type: str
    limit_price: float | None
    tif: str
    account: str
    order_ref: str
    status: str                   # TWS status: PreSubmitted, Submitted, Filled, Cancelled, Inactive
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    completed_time: str = ""
    completed_status: str = ""

    @property
    def remaining(self) -> float:
        return 0.0 if self.status in ("Filled", "Cancelled", "ApiCancelled", "Inactive") else \
            max(self.quantity - self.filled, 0.0)


def open_order(o: OrderView) -> list:
    """`[5, orderId, C11, ...]`: 127 fields for a plain single-leg order at version 178 (decoder.openOrder)."""
    c = o.contract
    head = [5, o.order_id, *c.c11(),
            o.action, o.quantity, o.order_type, o.limit_price, "", o.tif, "", o.account, "", 0, o.order_ref,
            o.client_id, o.perm_id, 0, 0, 0, "", "", "", "", ""]
    # modelCode .. deltaNeutralAuxPrice (29); deltaNeutralOrderType empty: no delta-neutral block
    middle = ["", "", "", "", "", 0, "", -1, 0, "", "", "", "", "", "", 0, 0, 0, "", 0, 0, 0, 0, 0, 0, "", 0,
              "", ""]
    # continuousUpdate, referencePriceType, trailStopPrice, trailingPercent, basisPoints, basisPointsType,
    # comboLegsDescrip; then no combo legs, no order combo legs, no smart-combo params
    tail = [0, 0, "", "", "", "", "", 0, 0, 0,
            "", "", "",                       # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
            "",                               # hedgeType
            0, "", "", 0, 0,                  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld, dnc
            "",                               # algoStrategy
            0, 0, o.status, *[""] * 14, 0, 0,   # solicited, whatIf, status, margins/commission (14), randomize*
            0,                                # no conditions
            "", "", "", "", "", "", "", 0, "", "", "", "", 0, 0, "", 0,  # adjustedOrderType..usePriceMgmtAlgo
            "", 0, 0,                         # duration, postToAts, autoCancelParent
            "", "", 0, "", ""]                # minTradeQty..midOffsetAtHalf
    return head + middle + tail


def completed_order(o: OrderView) -> list:
    """`[101, C11, ...]` (decoder.completedOrder at version 178)."""
    c = o.contract
    head = [101, *c.c11(),
            o.action, o.quantity, o.order_type, o.limit_price, "", o.tif, "", o.account, "", 0, o.order_ref,
            o.perm_id, 0, 0, 0, "", "", "", ""]
    # modelCode .. deltaNeutralAuxPrice (23)
    middle = ["", "", "", "", "", 0, "", -1, "", "", "", "", "", "", 0, 0, "", 0, 0, "", 0, "", ""]
    tail = [0, 0, "", "", "",                  # continuousUpdate..comboLegsDescrip
            0, 0, 0,                           # combo legs, order combo legs, smart-combo params
            "", "", "",                        # scale
            "",                                # hedgeType
            "", "", 0, 0,                      # clearingAccount, clearingIntent, notHeld, dnc
            "",                                # algoStrategy
            0, o.status, 0, 0,                 # solicited, status, randomizeSize, randomizePrice
            0,                                 # no conditions
            "", "", "", 0, 0, "", o.filled, 0, 0, "", 0, 0, 0, o.completed_time, o.completed_status,
            "", "", 0, "", ""]
    return head + middle + tail


def completed_orders_end() -> list:
    return [102]


def order_status(o: OrderView) -> list:
    """`[3, orderId, status, filled, remaining, avgFillPrice, permId, parentId, lastFillPrice, clientId, whyHeld,
    mktCapPrice]`."""
    return [3, o.order_id, o.status, o.filled, o.remaining, o.avg_fill_price, o.perm_id, 0, o.last_fill_price,
            o.client_id, "", 0.0]


def open_order_end() -> list:
    return [53, 1]


@dataclass
class ExecView:
    """One execution as execDetails reports it."""

    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    contract: WireContract
    time: datetime
    account: str
    exchange: str
    side: str                    # 'BOT' | 'SLD'
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    order_ref: str
    liquidity: int               # 1 added, 2 removed
    commission: float
    realized_pnl: float | None


def exec_details(req_id: int, e: ExecView) -> list:
    return [11, req_id, e.order_id, *e.contract.c11(), e.exec_id, ib_time(e.time), e.account, e.exchange, e.side,
            e.shares, e.price, e.perm_id, e.client_id, 0, e.cum_qty, e.avg_price, e.order_ref, "", "", "",
            e.liquidity, 0]


def exec_details_end(req_id: int) -> list:
    return [55, 1, req_id]


def commission_report(e: ExecView) -> list:
    realized = UNSET_DOUBLE if e.realized_pnl is None else e.realized_pnl
    return [59, 1, e.exec_id, e.commission, "USD", realized, "", ""]


def position(account: str, c: WireContract, qty: float, avg_cost: float) -> list:
    return [61, 3, account, *c.c11(), qty, avg_cost]


def position_end() -> list:
    return [62, 1]


def account_value(key: str, value: str, currency: str, account: str) -> list:
    return [6, 2, key, value, currency, account]


def portfolio_value(c: WireContract, qty: float, market_price: float, market_value: float, avg_cost: float,
                    unrealized: float, realized: float, account: str) -> list:
    return [7, 8, *c.c11_primary(), qty, market_price, market_value, avg_cost, unrealized, realized, account]


def account_time(at: datetime) -> list:
    return [8, 1, at.strftime("%H:%M")]


def account_download_end(account: str) -> list:
    return [54, 1, account]


def account_update_multi(req_id: int, account: str, model: str, key: str, value: str, currency: str) -> list:
    return [73, 1, req_id, account, model, key, value, currency]


def account_update_multi_end(req_id: int) -> list:
    return [74, 1, req_id]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> list:
    return [63, 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> list:
    return [64, 1, req_id]


def pnl(req_id: int, daily: float, unrealized: float, realized: float) -> list:
    return [94, req_id, daily, unrealized, realized]
