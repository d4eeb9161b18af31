"""Minimum price increments: Cboe SPX/XSP options 0.05 below 3.00, 0.10 from 3.00 up; the index future 0.25."""
from __future__ import annotations

import math

import numpy as np

SMALL_TICK = 0.05
LARGE_TICK = 0.10
TICK_BREAK = 3.00
FUTURE_TICK = 0.25          # ES / the simulator's index future


def option_tick(price: float) -> float:
    """Tick size at `price`."""
    return SMALL_TICK if price < TICK_BREAK - 1e-9 else LARGE_TICK


def round_to_tick(price: float, direction: str = "nearest", tick: float | None = None) -> float:
    """Round to the option tick (or `tick`): 'down' for bids/buys, 'up' for asks/sells, or 'nearest'."""
    if not math.isfinite(price):
        return price
    step = tick or option_tick(price)
    units = price / step
    units = {"down": math.floor(units + 1e-9), "up": math.ceil(units - 1e-9)}.get(direction, round(units))
    value = round(units * step, 2)
    if tick is None and direction == "up" and value >= TICK_BREAK and option_tick(price) == SMALL_TICK:
        value = round(math.ceil(value / LARGE_TICK - 1e-9) * LARGE_TICK, 2)
    return value


def option_tick_array(price: np.ndarray | float) -> np.ndarray:
    """Vectorised `option_tick`."""
    return np.where(np.asarray(price) < TICK_BREAK - 1e-9, SMALL_TICK, LARGE_TICK)


def contract_tick(is_future: bool, price: float) -> float:
    """Tick of a contract at `price`: the future's fixed tick, or the option tick."""
    return FUTURE_TICK if is_future else option_tick(price)


def on_tick(price: float, tick: float | None = None) -> bool:
    """True when `price` is a positive multiple of the tick (exchanges reject other limits)."""
    if not math.isfinite(price) or price <= 0:
        return False
    step = tick or option_tick(price)
    return abs(price / step - round(price / step)) < 1e-6


def round_to_tick_array(price: np.ndarray, direction: str = "nearest") -> np.ndarray:
    """Vectorised `round_to_tick` for option prices."""
    step = option_tick_array(price)
    units = price / step
    if direction == "down":
        units = np.floor(units + 1e-9)
    elif direction == "up":
        units = np.ceil(units - 1e-9)
    else:
        units = np.round(units)
    return np.round(units * step, 2)
