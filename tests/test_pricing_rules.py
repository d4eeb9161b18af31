"""Our orders' limit prices (`execution/pricing_rules.py`) against prices worked out by hand: from mid toward the far
side by the aggressiveness, never past the model on either side, rounded to the option tick in our favour (0.05
below $3, 0.10 from $3), and repriced toward a bound one step at a time until they reach it."""
from __future__ import annotations

import math

import pytest

from workstation.domain import Side
from workstation.execution.pricing_rules import initial_limit, next_limit, reprice_bound

BUY, SELL = Side.BUY, Side.SELL


@pytest.mark.parametrize("side, bid, ask, model, a, want", [
    # bid 10.00 / ask 10.60: mid 10.30; a = 0.5 -> buy 10.45, sell 10.15 before the model and the tick
    (BUY, 10.0, 10.6, 11.00, 0.5, 10.40),       # model beyond the ask: 10.45 rounded down to the 0.10 tick
    (BUY, 10.0, 10.6, 10.32, 0.5, 10.30),       # model inside the spread caps it: 10.32 -> 10.30
    (BUY, 10.0, 10.6, 9.50, 0.5, 9.50),         # model below the bid: rests at the model, never pays past it
    (BUY, 10.0, 10.6, math.nan, 0.5, 10.40),    # no model (exits, hedges): no cap
    (SELL, 10.0, 10.6, 9.00, 0.5, 10.20),       # model below the bid: 10.15 rounded up
    (SELL, 10.0, 10.6, 10.33, 0.5, 10.40),      # model inside floors it: 10.33 -> 10.40
    (SELL, 10.0, 10.6, 11.20, 0.5, 11.20),      # model above the ask: offered at the model
    (SELL, 10.0, 10.6, math.nan, 1.0, 10.00),   # full aggressiveness, no model: the bid
    (BUY, 1.00, 1.20, 1.13, 1.0, 1.10),         # under $3 the tick is 0.05: 1.13 -> 1.10
    (SELL, 1.00, 1.20, 1.07, 1.0, 1.10),        # ... and up for a sell: 1.07 -> 1.10
    (BUY, 2.90, 3.30, 4.00, 0.0, 3.10),         # mid 3.10 (a = 0): the 0.10 tick from $3
])
def test_initial_limit_by_hand(side, bid, ask, model, a, want):
    assert initial_limit(side, bid, ask, model, a) == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("bid, ask", [(math.nan, 10.0), (10.0, math.nan), (10.6, 10.0), (-0.1, 0.5)])
def test_no_limit_without_a_two_sided_market(bid, ask):
    assert math.isnan(initial_limit(BUY, bid, ask, 11.0, 0.5))
    assert math.isnan(initial_limit(SELL, bid, ask, 9.0, 0.5))


def test_reprice_bound_is_the_far_side_plus_slippage_never_past_the_model():
    # spread 0.60, max_slippage 0.5: buy bound 10.60 + 0.30, sell bound 10.00 - 0.30
    assert reprice_bound(BUY, 10.0, 10.6, 11.0, 0.5) == pytest.approx(10.9)
    assert reprice_bound(BUY, 10.0, 10.6, 10.5, 0.5) == pytest.approx(10.5)
    assert reprice_bound(BUY, 10.0, 10.6, math.nan, 0.5) == pytest.approx(10.9)
    assert reprice_bound(SELL, 10.0, 10.6, 9.0, 0.5) == pytest.approx(9.7)
    assert reprice_bound(SELL, 10.0, 10.6, 9.9, 0.5) == pytest.approx(9.9)


def test_repricing_steps_halfway_by_whole_ticks_and_reaches_the_bound():
    # buy from 10.40 toward 10.90 on the 0.10 tick: +0.25 -> 10.60, +0.15 -> 10.70, +0.10 each after
    path, price = [], 10.40
    for _ in range(8):
        price = next_limit(BUY, price, 10.90)
        path.append(price)
    assert path == pytest.approx([10.6, 10.7, 10.8, 10.9, 10.9, 10.9, 10.9, 10.9])
    # sell from 1.30 toward 1.02 on the 0.05 tick: -0.14 -> 1.16 up to 1.20, -0.09 -> 1.15, -0.065 -> 1.10,
    # then the 0.05 minimum to 1.05, which is the bound rounded up
    path, price = [], 1.30
    for _ in range(5):
        price = next_limit(SELL, price, 1.02)
        path.append(price)
    assert path == pytest.approx([1.20, 1.15, 1.10, 1.05, 1.05])


@pytest.mark.parametrize("side, start, bound", [(BUY, 0.05, 12.37), (BUY, 2.85, 3.40), (SELL, 25.0, 0.12),
                                                (SELL, 3.20, 2.71), (BUY, 5.0, 4.0), (SELL, 4.0, 5.0)])
def test_repricing_never_passes_its_bound_and_never_goes_backwards(side, start, bound):
    price, seen = start, [start]
    for _ in range(60):
        price = next_limit(side, price, bound)
        seen.append(price)
    steps = [b - a for a, b in zip(seen, seen[1:])]
    if side is BUY:
        assert all(s >= -1e-9 for s in steps) and all(p <= max(bound, start) + 1e-9 for p in seen)
    else:
        assert all(s <= 1e-9 for s in steps) and all(p >= min(bound, start) - 1e-9 for p in seen)
    moving_toward = bound > start if side is BUY else bound < start
    if moving_toward:               # it gets there: within one tick of the bound, on our side of it
        assert abs(seen[-1] - bound) < 0.10 + 1e-9
    else:                           # already at or past the bound: it stays put
        assert seen[-1] == start
