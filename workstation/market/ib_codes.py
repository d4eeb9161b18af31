"""The one table of the IB message codes the workstation acts on or sends, and what each means for us.

TWS sends news and problems alike as `error(reqId, code, text)`. This module is the only place that says which
codes are connectivity news (1100/1101/1102), data-farm news (2103/2104/...), harmless information, warnings, or
order rejections, and the only place a code is written as a number: the adapters (market/ib*.py, execution/ib.py),
the engine, the logging filter and the practice gateway use the names of `Code` and the sets below.
Sources: IB's "Message codes" page of the TWS API and ib_async 2.1's wrapper (its warning set).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum


class Code(IntEnum):
    """The codes the workstation names (compares with as ints; prints as the number)."""

    MAX_RATE = 100                  # max rate of messages per second exceeded
    MAX_TICKERS = 101               # max number of tickers (streaming lines) reached
    CANT_MODIFY_FILLED = 104        # can't modify a filled order
    MODIFY_MISMATCH = 105           # order being modified does not match the original order
    PRICE_VARIATION = 110           # price does not conform to the minimum price variation
    NO_SECURITY_DEFINITION = 200    # no security definition found for the request
    ORDER_REJECTED = 201            # order rejected
    ORDER_CANCELLED = 202           # order cancelled (a cancel confirmation, not a problem)
    ERROR_READING_REQUEST = 320
    VALIDATION_ERROR = 321          # error validating request (also a malformed combo: no legs, a bad leg or ratio)
    DUPLICATE_TICKER = 322
    CLIENT_ID_IN_USE = 326
    NOT_SUBSCRIBED = 354            # live market data not subscribed
    CONTRACT_CONFLICT = 478         # request conflicts with the contract by conId (a BAG's symbol vs its legs')
    OUTDATED = 503                  # TWS out of date (the server speaks another API version)
    UNKNOWN_MESSAGE = 505           # fatal error: unknown message id
    IB_LOST = 1100                  # connectivity between TWS and IB lost
    RESTORED_DATA_LOST = 1101       # connectivity restored, market data subscriptions lost
    RESTORED_DATA_KEPT = 1102       # connectivity restored, data maintained
    MARKET_FARM_DOWN = 2103
    MARKET_FARM_OK = 2104
    HMDS_FARM_DOWN = 2105
    HMDS_FARM_OK = 2106
    HMDS_FARM_IDLE = 2107
    MARKET_FARM_IDLE = 2108
    SERVER_LOST = 2110              # connectivity between TWS and server broken
    SECDEF_FARM_DOWN = 2157
    SECDEF_FARM_OK = 2158
    CANCEL_NOT_FOUND = 10147        # the order to cancel is not found
    CANCEL_NOT_ALLOWED = 10148      # the order cannot be cancelled (its state)
    DELAYED_SHOWN = 10167           # live data not subscribed: delayed data shown


class Effect(str, Enum):
    """What a code means for the workstation."""

    IB_LOST = "ib_lost"                     # socket to TWS up, TWS to IB down: no orders, no data
    RESTORED_DATA_LOST = "restored_data_lost"   # back; every market-data subscription is gone: request again
    RESTORED_DATA_KEPT = "restored_data_kept"   # back; subscriptions survive: reconcile only
    FARM_DOWN = "farm_down"                 # a data farm is broken: its data are stale
    FARM_UP = "farm_up"                     # the farm is back: resubscribe
    FARM_IDLE = "farm_idle"                 # farm inactive but available on demand: nothing to do
    NOT_ENTITLED = "not_entitled"           # live data not subscribed: fall back to delayed
    INFO = "info"                           # news, not a problem (cancel confirmations, data type notices)
    WARNING = "warning"                     # a warning: the request (or order) is still alive
    REJECT = "reject"                       # an order refused by TWS or IB


@dataclass(frozen=True)
class IBCode:
    code: int
    effect: Effect
    meaning: str
    farm: str = ""                          # "market data" | "historical data" | "security definition"


_TABLE = [
    IBCode(Code.IB_LOST, Effect.IB_LOST, "Connectivity between IB and TWS has been lost"),
    IBCode(Code.SERVER_LOST, Effect.IB_LOST,
           "Connectivity between TWS and server is broken; it will be restored automatically"),
    IBCode(Code.RESTORED_DATA_LOST, Effect.RESTORED_DATA_LOST,
           "Connectivity restored - data lost: market data must be requested again"),
    IBCode(Code.RESTORED_DATA_KEPT, Effect.RESTORED_DATA_KEPT, "Connectivity restored - data maintained"),
    IBCode(Code.MARKET_FARM_DOWN, Effect.FARM_DOWN, "Market data farm connection is broken", "market data"),
    IBCode(Code.HMDS_FARM_DOWN, Effect.FARM_DOWN, "HMDS data farm connection is broken", "historical data"),
    IBCode(Code.SECDEF_FARM_DOWN, Effect.FARM_DOWN, "Sec-def data farm connection is broken", "security definition"),
    IBCode(Code.MARKET_FARM_OK, Effect.FARM_UP, "Market data farm connection is OK", "market data"),
    IBCode(Code.HMDS_FARM_OK, Effect.FARM_UP, "HMDS data farm connection is OK", "historical data"),
    IBCode(Code.SECDEF_FARM_OK, Effect.FARM_UP, "Sec-def data farm connection is OK", "security definition"),
    IBCode(Code.HMDS_FARM_IDLE, Effect.FARM_IDLE, "HMDS data farm connection is inactive but available upon demand",
           "historical data"),
    IBCode(Code.MARKET_FARM_IDLE, Effect.FARM_IDLE,
           "Market data farm connection is inactive but available upon demand", "market data"),
    IBCode(Code.ORDER_CANCELLED, Effect.INFO, "Order cancelled"),
    IBCode(10197, Effect.INFO, "No market data during competing live session"),
    IBCode(2100, Effect.INFO, "API client unsubscribed from account data"),
    IBCode(2109, Effect.INFO, "Order event warning: outside regular trading hours attribute ignored"),
    IBCode(2119, Effect.INFO, "Market data farm is connecting"),
    IBCode(2150, Effect.INFO, "Invalid position trade derived value"),
    *(IBCode(c, Effect.NOT_ENTITLED, "Live market data not subscribed")
      for c in (Code.NOT_SUBSCRIBED, 10089, 10090, 10091, Code.DELAYED_SHOWN, 10168, 10186)),
    *(IBCode(c, Effect.WARNING, m) for c, m in (
        (Code.MODIFY_MISMATCH, "Order being modified does not match the original order"),
        (Code.PRICE_VARIATION, "The price does not conform to the minimum price variation"),
        (165, "Historical market data service query message"),
        (Code.VALIDATION_ERROR, "Error validating request"),
        (329, "Order modify failed: cannot change to the new order type"),
        (399, "Order message warning"),
        (404, "Shares not available for short sale: order held"),
        (434, "The order size cannot be zero"),
        (492, "Warning"))),
    *(IBCode(c, Effect.REJECT, "Order rejected") for c in
      (103, Code.CANT_MODIFY_FILLED, 106, 107, 109, 116, 117, 118, 119, Code.NO_SECURITY_DEFINITION,
       Code.ORDER_REJECTED, 203, 383, 387, 388, Code.CONTRACT_CONFLICT, Code.CANCEL_NOT_FOUND,
       Code.CANCEL_NOT_ALLOWED, 10149)),
]
CODES: dict[int, IBCode] = {c.code: c for c in _TABLE}
INFO_RANGE = range(2100, 2200)          # IB's 21xx codes are information (or farm news, in the table)


def effect_of(code: int) -> Effect | None:
    """The effect of `code` (codes 2100-2199 not in the table are information), None for an unknown code."""
    known = CODES.get(code)
    if known is not None:
        return known.effect
    return Effect.INFO if code in INFO_RANGE else None


def codes_with(*effects: Effect) -> frozenset[int]:
    return frozenset(c.code for c in _TABLE if c.effect in effects)


# ib_async's own warning set (a warning leaves the request or order alive) plus the 21xx information range
WARNING_CODES = codes_with(Effect.WARNING) | {Code.DELAYED_SHOWN}
NOT_ENTITLED = codes_with(Effect.NOT_ENTITLED)
REJECT_CODES = codes_with(Effect.REJECT) | {Code.MODIFY_MISMATCH, Code.PRICE_VARIATION, Code.VALIDATION_ERROR}
# news that needs no alert of its own (connectivity and farm news get their own alerts from the adapters)
QUIET_CODES = codes_with(Effect.INFO, Effect.FARM_UP, Effect.FARM_IDLE) | {Code.DELAYED_SHOWN}


def is_warning(code: int) -> bool:
    return code in WARNING_CODES or code in INFO_RANGE
