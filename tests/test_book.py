"""The book: average cost, realised/unrealised P&L, flips, multipliers, idempotent fills, day P&L, attribution."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from workstation import pricing
from workstation.domain import ChainSnapshot, Contract, Fill, SecType, Side
from workstation.portfolio import Book, attribute
from workstation.portfolio.greeks import DollarGreeks, dollar_greeks

NY = ZoneInfo("America/New_York")
T0 = datetime(2025, 10, 1, 10, 0, tzinfo=NY)
CALL = Contract(1001, "SPX", trading_class="SPXW", expiry=date(2025, 10, 17), strike=6700.0, right="C")
PUT = Contract(1002, "SPX", trading_class="SPXW", expiry=date(2025, 10, 17), strike=6500.0, right="P")
FUT = Contract(2001, "SPX", sec_type=SecType.FUTURE, trading_class="ES", expiry=date(2025, 12, 19), multiplier=50.0)
_ids = iter(range(1, 10_000))


def fill(contract, side, qty, price, at=T0, commission=0.0, fill_id=None) -> Fill:
    return Fill(fill_id or f"f{next(_ids)}", "o", contract, Side(side), qty, price, at, commission)


def test_average_cost_and_realised_pnl():
    book = Book()
    book.apply_fill(fill(CALL, "BUY", 2, 10.0))
    book.apply_fill(fill(CALL, "BUY", 2, 12.0))
    p = book.position(CALL.contract_id)
    assert p.quantity == 4 and p.avg_cost == pytest.approx(11.0)
    book.apply_fill(fill(CALL, "SELL", 3, 15.0))
    p = book.position(CALL.contract_id)
    assert p.quantity == 1 and p.avg_cost == pytest.approx(11.0)           # reducing keeps the cost
    assert book.realized_pnl == pytest.approx(3 * 4.0 * 100)
    book.mark({CALL.contract_id: 13.0})
    assert book.unrealized_pnl == pytest.approx(1 * 2.0 * 100)
    book.apply_fill(fill(CALL, "SELL", 1, 9.0))
    assert book.position(CALL.contract_id).quantity == 0
    assert book.realized_pnl == pytest.approx(1200.0 - 200.0)
    assert book.unrealized_pnl == 0.0 and CALL.contract_id not in book.positions


def test_flip_long_to_short_and_short_average_cost():
    book = Book()
    book.apply_fill(fill(PUT, "BUY", 2, 5.0))
    book.apply_fill(fill(PUT, "SELL", 5, 6.0))                           # closes 2, opens -3 at 6
    p = book.position(PUT.contract_id)
    assert p.quantity == -3 and p.avg_cost == pytest.approx(6.0)
    assert book.realized_pnl == pytest.approx(2 * 1.0 * 100)
    book.apply_fill(fill(PUT, "SELL", 1, 8.0))
    assert book.position(PUT.contract_id).avg_cost == pytest.approx((3 * 6.0 + 8.0) / 4)
    book.mark({PUT.contract_id: 7.0})
    assert book.unrealized_pnl == pytest.approx(-4 * (7.0 - 6.5) * 100)   # short loses when price rises
    book.apply_fill(fill(PUT, "BUY", 6, 4.0))                             # flip back to +2 at 4
    p = book.position(PUT.contract_id)
    assert p.quantity == 2 and p.avg_cost == pytest.approx(4.0)
    assert book.realized_pnl == pytest.approx(200.0 + 4 * 2.5 * 100)


def test_multipliers_futures_and_xsp():
    xsp = Contract(3001, "XSP", trading_class="XSP", expiry=date(2025, 10, 17), strike=670.0, right="C")
    book = Book()
    book.apply_fill(fill(FUT, "SELL", 2, 6750.0))
    book.apply_fill(fill(xsp, "BUY", 10, 4.0))
    book.mark({FUT.contract_id: 6740.0, xsp.contract_id: 4.5})
    assert book.unrealized_pnl == pytest.approx(2 * 10.0 * 50 + 10 * 0.5 * 100)
    assert book.total_option_contracts == 10


def test_fills_are_idempotent():
    book = Book()
    f = fill(CALL, "BUY", 3, 10.0, commission=2.0, fill_id="exec-1")
    assert book.apply_fill(f) is True
    before = book.to_summary()
    assert book.apply_fill(f) is False
    assert book.apply_fills([f, f]) == 0
    assert book.to_summary() == before
    assert book.position(CALL.contract_id).quantity == 3 and book.commissions == 2.0


def test_day_pnl_resets_at_the_trading_day_boundary():
    book = Book()
    book.apply_fill(fill(CALL, "BUY", 1, 10.0, commission=1.0))
    book.mark({CALL.contract_id: 12.0}, at=T0 + timedelta(hours=5))
    assert book.day_pnl == pytest.approx(200.0 - 1.0)
    next_day = T0 + timedelta(days=1)
    book.mark({CALL.contract_id: 12.0}, at=next_day)
    assert book.day_pnl == pytest.approx(0.0)
    assert book.total_pnl == pytest.approx(199.0)
    book.apply_fill(fill(CALL, "SELL", 1, 11.0, at=next_day + timedelta(hours=1)))
    assert book.day_pnl == pytest.approx(-100.0)                           # gave back a point today
    assert book.trading_day == date(2025, 10, 2)


def test_marks_from_snapshot_mid_then_model_then_last():
    book = Book()
    book.apply_fill(fill(CALL, "BUY", 1, 10.0))
    book.apply_fill(fill(PUT, "BUY", 1, 3.0))
    snap = ChainSnapshot.from_columns(
        timestamp=T0, underlying="SPX", underlying_price=6700.0,
        columns=dict(contract_id=np.array([1001, 1002]), trading_class=np.array(["SPXW", "SPXW"]),
                     expiry=np.array(["2025-10-17"] * 2, dtype="datetime64[D]"), strike=np.array([6700.0, 6500.0]),
                     is_call=np.array([True, False]), bid=np.array([11.0, np.nan]), ask=np.array([13.0, 4.0]),
                     bid_size=np.array([1, 0]), ask_size=np.array([1, 1])))
    book.mark_snapshot(snap, model_price=np.array([12.5, 3.5]))
    assert book.mark_of(1001) == 12.0 and book.mark_of(1002) == 3.5
    summary = book.to_summary()
    assert {r["contract_id"]: r["mark_source"] for r in summary["positions"]} == {1001: "mid", 1002: "model"}
    assert set(summary) >= {"positions", "pnl", "greeks", "fills"}


def test_dollar_greeks_conventions_and_book_greeks():
    d, g, v, t = dollar_greeks(0.5, 0.001, 7.0, -1.5, 6700.0, 100.0, 2)
    assert d == pytest.approx(0.5 * 6700 * 0.01 * 200)                   # $ per 1% move
    assert g == pytest.approx(0.001 * 67.0**2 * 200)
    assert v == pytest.approx(1400.0) and t == pytest.approx(-300.0)
    book = Book()
    book.apply_fill(fill(CALL, "BUY", 2, 10.0))
    book.apply_fill(fill(FUT, "SELL", 1, 6750.0))
    total = book.set_greeks([1001, 2001], [0.5, 1.0], [0.001, 0.0], [7.0, 0.0], [-1.5, 0.0], [6700.0, 6750.0])
    assert total.delta == pytest.approx(6700.0 - 6750.0 * 0.5)
    assert book.position_greeks(2001) == DollarGreeks(-6750.0 * 0.5, 0.0, 0.0, 0.0)


def test_attribution_sums_to_actual_and_explains_a_black_move():
    f0, k, t, d, vol0 = 6700.0, np.array([6500.0, 6700.0, 6900.0]), 30 / 365, 0.997, 0.16
    is_call = np.array([False, True, True])
    q = np.array([3.0, -2.0, 5.0])
    p0 = pricing.black_price(f0, k, t, d, vol0, is_call)
    g = pricing.black_greeks(f0, k, t, d, vol0, is_call)
    f1, vol1, days = f0 * 1.004, vol0 + 0.003, 1.0
    p1 = pricing.black_price(f1, k, t - days / 365, d, vol1, is_call)
    a = attribute(q, 100.0, p0, p1, f0, f1, vol0, vol1, days, g.delta, g.gamma, g.vega, g.theta)
    parts = a.delta + a.gamma + a.vega + a.theta + a.residual
    np.testing.assert_allclose(parts, a.actual, rtol=0, atol=1e-9)
    tot = a.totals()
    assert tot["actual"] == pytest.approx(float(np.sum(q * 100 * (p1 - p0))))
    assert abs(tot["residual"]) < 0.05 * abs(tot["actual"]) + 50.0      # Greeks explain most of it


def test_book_attribution_uses_its_positions():
    book = Book()
    book.apply_fill(fill(CALL, "BUY", 2, 10.0))
    a = book.attribute_pnl([1001], [10.0], [11.0], [6700.0], [6710.0], [0.15], [0.15], [0.0],
                           [0.1], [0.0], [0.0], [0.0])
    assert a.totals()["actual"] == pytest.approx(200.0)
    assert a.totals()["delta"] == pytest.approx(2 * 100 * 0.1 * 10.0)
    assert a.totals()["residual"] == pytest.approx(0.0)
