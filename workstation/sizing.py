"""Signals sized to what can be sent: the largest quantity whose order passes every pre-trade check.

The per-order limits (max quantity, max premium, position room, the Greek and VaR what-ifs) only get
harder as the quantity grows, so the largest passing size is found by bisection over the real checks
(`risk.pre_trade.check` through the engine's preview): never a second, drifting copy of the limits. A check
no size passes (halted, outside trading hours, no market, the throttle) leaves the signal at 0 with its reason.
"""
from __future__ import annotations

from typing import Callable

PREVIEW_ID = "PREVIEW"      # the client id of an order that is only previewed (no journal id is used up)


def largest_sendable(quantity: int, approved: Callable[[int], tuple[bool, str]]) -> tuple[int, str]:
    """(largest q <= `quantity` with approved(q), "") or (0, why 1 contract is denied)."""
    if quantity < 1:
        return 0, "quantity 0"
    ok, why = approved(quantity)
    if ok:
        return quantity, ""
    ok1, why1 = approved(1)
    if not ok1:
        return 0, why1
    lo, hi = 1, quantity            # approved(lo), not approved(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if approved(mid)[0]:
            lo = mid
        else:
            hi = mid
    return lo, ""
