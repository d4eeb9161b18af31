"""Cboe minimum price increments for SPX/XSP options: 0.05 below 3.00, 0.10 from 3.00 up."""
from __future__ import annotations

import math

import numpy as np

SMALL_TICK = 0.05
LARGE_TICK = 0.10
TICK_BREAK = 3.00


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


def on_tick(price: float, tick: float | None = None) -> bool:
    """True when `price` is a valid increment (the paper exchange rejects others)."""
    if not math.isfinite(price) or price < 0:
        return False
    step = tick or option_tick(price)
    return abs(price / step - round(price / step)) < 1e-6


def round_to_tick_array(price: np.ndarray, direction: str = "nearest") -> np.ndarray:
    """Vectorised `round_to_tick` for option prices."""
    step = np.where(price < TICK_BREAK - 1e-9, SMALL_TICK, LARGE_TICK)
    units = price / step
    if direction == "down":
        units = np.floor(units + 1e-9)
    elif direction == "up":
        units = np.ceil(units - 1e-9)
    else:
        units = np.round(units)
    return np.round(units * step, 2)
