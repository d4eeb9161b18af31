"""Limit prices for our orders: from mid toward the far side by `aggressiveness`, never past the model."""
from __future__ import annotations

import math

from ..domain import Side
from ..domain.ticks import option_tick, round_to_tick


def initial_limit(side: Side, bid: float, ask: float, model: float, aggressiveness: float,
                  tick: float | None = None) -> float:
    """Buy: mid + a*(ask - mid), capped at the model; sell: mid - a*(mid - bid), floored at the model (NaN: no
    cap). A model beyond the near side (a buy whose model is below the bid) prices the order at the model, away
    from the market: it rests there rather than join the bid and pay past the model.

    Rounded to the tick in our favour (buys down, sells up). NaN when the market has no two sides.
    """
    if not (math.isfinite(bid) and math.isfinite(ask) and ask >= bid >= 0):
        return math.nan
    mid = 0.5 * (bid + ask)
    if side is Side.BUY:
        price = mid + aggressiveness * (ask - mid)
        if math.isfinite(model):
            price = min(price, model)
        return max(round_to_tick(price, "down", tick), 0.0)
    price = mid - aggressiveness * (mid - bid)
    if math.isfinite(model):
        price = max(price, model)
    return max(round_to_tick(price, "up", tick), 0.0)


def reprice_bound(side: Side, bid: float, ask: float, model: float, max_slippage: float) -> float:
    """Furthest a working order may be repriced: the far side plus `max_slippage` spreads, never past model."""
    spread = max(ask - bid, 0.0)
    if side is Side.BUY:
        bound = ask + max_slippage * spread
        return min(bound, model) if math.isfinite(model) else bound
    bound = bid - max_slippage * spread
    return max(bound, model) if math.isfinite(model) else bound


def next_limit(side: Side, current: float, bound: float, tick: float | None = None) -> float:
    """One step toward `bound`: half the distance, at least one tick (the option tick at the price when `tick` is
    None, so a step on a 0.10-tick price is never rounded back to where it was), never beyond the bound."""
    if not (math.isfinite(current) and math.isfinite(bound)):
        return current
    if side is Side.BUY:
        if current >= bound:
            return current
        step = max((bound - current) / 2, tick or option_tick(current))
        return max(current, min(round_to_tick(current + step, "down", tick), round_to_tick(bound, "down", tick)))
    if current <= bound:
        return current
    step = max((current - bound) / 2, tick or option_tick(current))
    return min(current, max(round_to_tick(current - step, "up", tick), round_to_tick(bound, "up", tick)))
