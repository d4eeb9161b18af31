"""The one table of the IB message codes the workstation acts on, and what each means for us.

TWS sends news and problems alike as `error(reqId, code, text)`. This table is the only place that says which
codes are connectivity news (1100/1101/1102), data-farm news (2103/2104/...), harmless information, warnings, or
order rejections; the adapters (market/ib.py, execution/ib.py), the engine and the practice gateway all read it.
Sources: IB's "Message codes" page of the TWS API and ib_async 2.1's wrapper (its warning set).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


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
    IBCode(1100, Effect.IB_LOST, "Connectivity between IB and TWS has been lost"),
    IBCode(2110, Effect.IB_LOST, "Connectivity between TWS and server is broken; it will be restored automatically"),
    IBCode(1101, Effect.RESTORED_DATA_LOST, "Connectivity restored - data lost: market data must be requested again"),
    IBCode(1102, Effect.RESTORED_DATA_KEPT, "Connectivity restored - data maintained"),
    IBCode(2103, Effect.FARM_DOWN, "Market data farm connection is broken", "market data"),
    IBCode(2105, Effect.FARM_DOWN, "HMDS data farm connection is broken", "historical data"),
    IBCode(2157, Effect.FARM_DOWN, "Sec-def data farm connection is broken", "security definition"),
    IBCode(2104, Effect.FARM_UP, "Market data farm connection is OK", "market data"),
    IBCode(2106, Effect.FARM_UP, "HMDS data farm connection is OK", "historical data"),
    IBCode(2158, Effect.FARM_UP, "Sec-def data farm connection is OK", "security definition"),
    IBCode(2107, Effect.FARM_IDLE, "HMDS data farm connection is inactive but available upon demand", "historical data"),
    IBCode(2108, Effect.FARM_IDLE, "Market data farm connection is inactive but available upon demand", "market data"),
    IBCode(202, Effect.INFO, "Order cancelled"),
    IBCode(10197, Effect.INFO, "No market data during competing live session"),
    IBCode(2100, Effect.INFO, "API client unsubscribed from account data"),
    IBCode(2109, Effect.INFO, "Order event warning: outside regular trading hours attribute ignored"),
    IBCode(2119, Effect.INFO, "Market data farm is connecting"),
    IBCode(2150, Effect.INFO, "Invalid position trade derived value"),
    *(IBCode(c, Effect.NOT_ENTITLED, "Live market data not subscribed")
      for c in (354, 10089, 10090, 10091, 10167, 10168, 10186)),
    *(IBCode(c, Effect.WARNING, m) for c, m in (
        (105, "Order being modified does not match the original order"),
        (110, "The price does not conform to the minimum price variation"),
        (165, "Historical market data service query message"),
        (321, "Error validating request"),
        (329, "Order modify failed: cannot change to the new order type"),
        (399, "Order message warning"),
        (404, "Shares not available for short sale: order held"),
        (434, "The order size cannot be zero"),
        (492, "Warning"))),
    *(IBCode(c, Effect.REJECT, "Order rejected") for c in
      (103, 104, 106, 107, 109, 116, 117, 118, 119, 200, 201, 203, 383, 387, 388, 10147, 10148, 10149)),
]
CODES: dict[int, IBCode] = {c.code: c for c in _TABLE}


def effect_of(code: int) -> Effect | None:
    """The effect of `code` (codes 2100-2199 not in the table are information), None for an unknown code."""
    known = CODES.get(code)
    if known is not None:
        return known.effect
    return Effect.INFO if 2100 <= code < 2200 else None


def codes_with(*effects: Effect) -> frozenset[int]:
    return frozenset(c.code for c in _TABLE if c.effect in effects)


# ib_async's own warning set (a warning leaves the request or order alive) plus the 21xx information range
WARNING_CODES = codes_with(Effect.WARNING) | {10167}
NOT_ENTITLED = codes_with(Effect.NOT_ENTITLED)
REJECT_CODES = codes_with(Effect.REJECT) | {105, 110, 321}
# news that needs no alert of its own (connectivity and farm news get their own alerts from the adapters)
QUIET_CODES = codes_with(Effect.INFO, Effect.FARM_UP, Effect.FARM_IDLE) | {10167}


def is_warning(code: int) -> bool:
    return code in WARNING_CODES or 2100 <= code < 2200
