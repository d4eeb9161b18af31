"""Combos end to end on real components: the domain (net price, Greeks, payoff bounds against hand computations),
the paper exchange and the backtest broker (atomic fills across legs, no legging, fees and booking per leg), the
SQLite journal (package state and each leg's fills, recoverable) and the pre-trade checks on the package."""
from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from test_sim_exchange import Harness

from workstation.backtest.broker import BacktestBroker
from workstation.config import PaperConfig, RiskConfig
from workstation.domain import ChainSnapshot, Contract, OrderStatus, Position, Side
from workstation.domain.combos import (Combo, ComboError, ComboLeg, ComboOrder, ComboReason, butterfly, calendar,
                                       condor, risk_reversal, straddle, strangle, vertical)
from workstation.execution.combo_desk import ComboDesk
from workstation.execution.paper import PaperBroker
from workstation.portfolio.book import Book
from workstation.portfolio.greeks import DollarGreeks
from workstation.risk import ContractMarket, RiskCode, RiskContext, margin
from workstation.risk.combo_checks import check_combo
from workstation.risk.limits import COMBO_CODES
from workstation.sim import clearing
from workstation.storage import Journal

T0 = datetime(2025, 10, 1, 14, 0, tzinfo=timezone.utc)
EXPIRY = date(2025, 10, 17)


def opt(cid: int, strike: float, right: str = "C", expiry: date = EXPIRY, symbol: str = "SPX") -> Contract:
    return Contract(contract_id=cid, symbol=symbol, trading_class="SPXW" if symbol == "SPX" else symbol,
                    expiry=expiry, strike=strike, right=right, multiplier=100.0)


C5900, C5950, C6000, C6050 = opt(1, 5900), opt(2, 5950), opt(3, 6000), opt(4, 6050)
P5850, P5900 = opt(5, 5850, "P"), opt(6, 5900, "P")
C5900_NOV = opt(7, 5900, expiry=date(2025, 11, 21))


# ------------------------------------------------------------------------------------------- domain
def test_vertical_net_price_greeks_and_payoff_by_hand():
    v = vertical(C5900, C5950)
    assert [leg.weight for leg in v.legs] == [1, -1]
    # quotes: 5900C 75.6/76.4, 5950C 47.2/48.1 -> the package trades 27.5 bid (75.6 - 48.1) / 29.2 ask (76.4 - 47.2)
    assert v.net_quote([75.6, 47.2], [76.4, 48.1]) == pytest.approx((27.5, 29.2))
    assert v.net_mid([75.6, 47.2], [76.4, 48.1]) == pytest.approx(28.35)
    greeks = v.net_greeks({"delta": [0.55, 0.42], "vega": [6.1, 5.8]})
    assert greeks == pytest.approx({"delta": 0.13, "vega": 0.3})
    b = v.payoff_bounds(29.2)                           # pay 29.2 for a 50-wide spread
    assert b.max_loss == pytest.approx(2_920.0) and b.max_gain == pytest.approx(2_080.0) and b.exact
    sold = v.payoff_bounds(27.5, Side.SELL)             # sell it for 27.5: keep 27.5, owe at most 50
    assert sold.max_loss == pytest.approx(2_250.0) and sold.max_gain == pytest.approx(2_750.0)


def test_butterfly_condor_calendar_straddle_bounds_by_hand():
    fly = butterfly(C5900, C5950, C6000)
    assert [leg.weight for leg in fly.legs] == [1, -2, 1]
    b = fly.payoff_bounds(8.0)                          # worst: expire outside the wings; best: at 5950
    assert (b.max_loss, b.max_gain) == pytest.approx((800.0, 4_200.0))
    con = condor(C5900, C5950, C6000, C6050)
    assert (con.payoff_bounds(10.0).max_loss, con.payoff_bounds(10.0).max_gain) == pytest.approx((1_000.0, 4_000.0))
    cal = calendar(C5900, C5900_NOV)                    # long calendar: at the front expiry, worst is the debit
    bc = cal.payoff_bounds(25.0)
    assert bc.max_loss == pytest.approx(2_500.0) and bc.exact
    assert not cal.payoff_bounds(25.0, Side.SELL).exact            # short the later leg: its time value unknown
    st = straddle(C5900, P5900)
    assert st.payoff_bounds(90.0).max_loss == pytest.approx(9_000.0) and st.payoff_bounds(90.0).max_gain == math.inf
    assert st.payoff_bounds(90.0, Side.SELL).max_loss == math.inf    # a short straddle: unbounded
    rr = risk_reversal(P5850, C5950)
    assert rr.payoff_bounds(0.0).max_loss == pytest.approx(585_000.0)  # short put to zero
    assert strangle(P5850, C5950).structure == "strangle"


def test_problems_have_named_reasons():
    assert Combo((ComboLeg(C5900, 2, Side.BUY), ComboLeg(C5950, 2, Side.SELL))).problems()[0][0] \
        is ComboReason.UNBALANCED_RATIOS                                  # 2:2 is 1:1 twice
    odd_fly = Combo((ComboLeg(C5900, 1, Side.BUY), ComboLeg(C5950, 1, Side.SELL), ComboLeg(C6000, 1, Side.BUY)),
                    "butterfly")
    assert [r for r, _ in odd_fly.problems()] == [ComboReason.UNBALANCED_RATIOS]   # a butterfly is 1:2:1
    xsp = opt(9, 590.0, symbol="XSP")
    mixed = Combo((ComboLeg(C5900, 1, Side.BUY), ComboLeg(xsp, 1, Side.SELL)))
    assert [r for r, _ in mixed.problems()] == [ComboReason.MIXED_UNDERLYINGS]
    dup = Combo((ComboLeg(C5900, 1, Side.BUY), ComboLeg(C5900, 1, Side.SELL)))
    assert [r for r, _ in dup.problems()] == [ComboReason.DUPLICATE_LEGS]
    five = Combo(tuple(ComboLeg(opt(20 + i, 5800 + 50 * i), 1, Side.BUY) for i in range(5)))
    assert [r for r, _ in five.problems(max_legs=4)] == [ComboReason.MAX_LEGS]
    with pytest.raises(ComboError) as err:
        vertical(C5900, C5900_NOV)
    assert err.value.reason is ComboReason.BAD_STRUCTURE


def test_clearing_is_the_one_home_of_fees_and_settlement():
    cfg = PaperConfig(commission_per_contract=0.65, fees_per_contract=0.60)
    assert clearing.commission(cfg, C5900, 3) == pytest.approx(3.75)
    assert clearing.settlement_value(C5900, 5912.5) == 12.5
    assert clearing.settlement_value(opt(9, 590.0, symbol="XSP"), 5912.5) == pytest.approx(1.25)
    t = clearing.settlement_trade(P5900, -2, 5880.0)
    assert (t.side, t.quantity, t.price, t.client_order_id) == (Side.BUY, 2, 20.0, "settlement-20251017")


# ------------------------------------------------------------------------------------- paper exchange
GREEKS = DollarGreeks(delta=100.0, gamma=10.0, vega=50.0, theta=-5.0)


class Desk:
    """A manual-clock paper world, PaperBroker, SQLite journal, book and the combo checks, wired by a ComboDesk."""

    def __init__(self, tmp_path, **risk) -> None:
        self.h = Harness(latency_ms=0)
        self.h.run(1)
        self.broker = PaperBroker(self.h.world)
        asyncio.run(self.broker.connect())
        self.journal_path = tmp_path / "journal.sqlite"
        self.journal = Journal(self.journal_path, clock=lambda: self.h.world.market.now)
        self.book = Book()
        self.risk = RiskConfig(**risk)
        self.desk = ComboDesk(self.broker, self.journal, self.check, self.book, lambda: self.h.world.market.now)

    def markets(self, order: ComboOrder) -> list[ContractMarket]:
        out = []
        for leg in order.combo.legs:
            bid, ask, _, _ = self.h.touch(leg.contract)
            out.append(ContractMarket(bid=bid, ask=ask, greeks=GREEKS, underlying_price=self.h.world.market.spot))
        return out

    def check(self, order: ComboOrder):
        ctx = RiskContext(settings=self.risk, now=self.h.world.market.now, positions=self.book.positions)
        return check_combo(order, ctx, self.markets(order))

    def marketable(self, coid: str, combo: Combo, qty: int = 1) -> ComboOrder:
        """A buy at the package's net ask (rounded up to the combo tick)."""
        legs = [self.h.touch(leg.contract) for leg in combo.legs]
        _, ask = combo.net_quote([t[0] for t in legs], [t[1] for t in legs])
        return ComboOrder(coid, combo, Side.BUY, qty, round(math.ceil(ask / 0.05 - 1e-9) * 0.05, 2),
                          created_at=self.h.world.market.now)

    def send(self, order: ComboOrder):
        decision = asyncio.run(self.desk.send(order))
        self.h.world.sync()
        return decision


def test_vertical_and_butterfly_fill_atomically_and_book_per_leg_on_the_paper_exchange(tmp_path):
    d = Desk(tmp_path)
    v, fly = vertical(d.h.option(strike=5900.0), d.h.option(strike=5950.0)), butterfly(
        d.h.option(strike=5900.0, call=False), d.h.option(strike=5950.0, call=False),
        d.h.option(strike=6000.0, call=False))
    for coid, combo in (("V1", v), ("F1", fly)):
        decision = d.send(d.marketable(coid, combo))
        assert decision.approved, decision.failures
    for coid, combo in (("V1", v), ("F1", fly)):
        fills = d.journal.fills_of(coid)
        assert [(f.contract.contract_id, f.side, f.quantity) for f in fills] == \
            [(leg.contract.contract_id, leg.side, leg.ratio) for leg in combo.legs]       # every leg, at once
        assert len({f.timestamp for f in fills}) == 1
        assert all(f.commission == pytest.approx(1.25 * f.quantity) for f in fills)     # fees per leg
        assert [f.metadata["leg"] for f in fills] == list(range(len(combo.legs)))
        state = d.journal.combo_states()[coid]
        assert state.status is OrderStatus.FILLED and state.filled_quantity == 1
        assert state.avg_fill_price == pytest.approx(combo.net([f.price for f in fills]))
        for leg in combo.legs:                                                            # booked per leg
            assert d.book.quantity(leg.contract.contract_id) == leg.weight
            assert d.h.ex.positions[leg.contract.contract_id] == leg.weight
    d.journal.close()
    with Journal(d.journal_path) as again:                                                # recoverable
        assert {o.client_order_id: o.combo for o in again.combo_orders()} == {"V1": v, "F1": fly}
        assert [e.status for e in again.combo_events("F1")] == [OrderStatus.SUBMITTED, OrderStatus.FILLED]
        assert again.positions_from_fills()[fly.legs[1].contract.contract_id].quantity == -2


def test_no_legging_on_the_paper_exchange_when_one_leg_has_no_price(tmp_path):
    d = Desk(tmp_path)
    lo, hi = d.h.option(strike=6400.0), d.h.option(strike=6500.0)
    assert d.h.touch(hi)[0] == 0.0                                   # nobody bids the far call: it cannot be sold
    order = ComboOrder("NL", vertical(lo, hi), Side.BUY, 1, round(d.h.touch(lo)[1] + 1.0, 2),
                       created_at=d.h.world.market.now)
    asyncio.run(d.broker.place_combo(order))                          # straight to the broker (the checks agree)
    for _ in range(5):
        d.h.run(1)
    assert [e.status for e in d.h.order_events("NL")] == [OrderStatus.SUBMITTED]
    assert d.h.fills("NL") == [] and lo.contract_id not in d.h.ex.positions      # not even the priced leg
    asyncio.run(d.broker.cancel("NL"))
    d.h.world.sync()
    assert d.h.order_events("NL")[-1].status is OrderStatus.CANCELLED


def test_paper_exchange_refuses_malformed_combos_with_the_reason(tmp_path):
    d = Desk(tmp_path)
    c1, c2 = d.h.option(strike=5900.0), d.h.option(strike=5950.0)
    bad = Combo((ComboLeg(c1, 2, Side.BUY), ComboLeg(c2, 2, Side.SELL)))
    asyncio.run(d.broker.place_combo(ComboOrder("R1", bad, Side.BUY, 1, 60.0)))
    asyncio.run(d.broker.place_combo(ComboOrder("R2", vertical(c1, c2), Side.BUY, 1, 28.03)))
    d.h.world.sync()
    assert d.h.order_events("R1")[-1].status is OrderStatus.REJECTED
    assert "UNBALANCED_RATIOS" in d.h.order_events("R1")[-1].reason
    assert "tick" in d.h.order_events("R2")[-1].reason


def test_combo_denied_for_max_loss_is_journaled_and_not_sent(tmp_path):
    d = Desk(tmp_path, max_combo_loss=1_000.0)
    order = d.marketable("ML", vertical(d.h.option(strike=5900.0), d.h.option(strike=5950.0)))
    decision = d.send(order)
    assert decision.reasons == [RiskCode.MAX_LOSS]
    assert d.h.order_events("ML") == [] and d.h.ex.combos == {}
    state = d.journal.combo_states()["ML"]
    assert state.status is OrderStatus.REJECTED and state.reason == "risk: MAX_LOSS"
    assert [r.reason for r in d.journal.risk_checks("ML") if not r.passed] == ["MAX_LOSS"]


# -------------------------------------------------------------------------------------------- backtest
def _snap(at: datetime, quotes: dict[int, tuple[float, float]], spot: float = 5950.0) -> ChainSnapshot:
    contracts = [c for c in (C5900, C5950, C6000) if c.contract_id in quotes]
    cols = {"contract_id": np.array([c.contract_id for c in contracts]),
            "trading_class": np.array(["SPXW"] * len(contracts)),
            "expiry": np.array([str(EXPIRY)] * len(contracts), dtype="datetime64[D]"),
            "strike": np.array([c.strike for c in contracts]), "is_call": np.array([True] * len(contracts)),
            "bid": np.array([quotes[c.contract_id][0] for c in contracts]),
            "ask": np.array([quotes[c.contract_id][1] for c in contracts]),
            "bid_size": np.array([10] * len(contracts)), "ask_size": np.array([10] * len(contracts))}
    return ChainSnapshot.from_columns(timestamp=at, underlying="SPX", underlying_price=spot, columns=cols)


QUOTES = {1: (75.6, 76.4), 2: (47.2, 48.1), 3: (25.6, 26.3)}


def _backtest() -> tuple[BacktestBroker, list, list]:
    broker = BacktestBroker(PaperConfig(commission_per_contract=0.65, fees_per_contract=0.60))
    events, fills = [], []
    broker.on_order_event.append(events.append)
    broker.on_fill.append(fills.append)
    asyncio.run(broker.connect())
    return broker, events, fills


def test_vertical_and_butterfly_fill_atomically_in_a_backtest():
    broker, events, fills = _backtest()
    broker.on_snapshot(_snap(T0, QUOTES))
    asyncio.run(broker.place_combo(ComboOrder("V", vertical(C5900, C5950), Side.BUY, 2, 29.2)))   # net ask 29.2
    asyncio.run(broker.place_combo(ComboOrder("F", butterfly(C5900, C5950, C6000), Side.BUY, 1, 7.0)))
    assert not fills                                                       # latency: one snapshot
    broker.on_snapshot(_snap(T0 + timedelta(seconds=5), QUOTES))
    # the butterfly's net ask is 76.4 - 2 x 47.2 + 26.3 = 8.3 > 7.0: only the vertical fills
    assert [(f.client_order_id, f.contract.contract_id, f.side, f.quantity, f.price) for f in fills] == \
        [("V", 1, Side.BUY, 2, 76.4), ("V", 2, Side.SELL, 2, 47.2)]
    assert [f.commission for f in fills] == [2.5, 2.5]
    assert events[-1].status is OrderStatus.FILLED and events[-1].avg_fill_price == pytest.approx(29.2)
    broker.on_snapshot(_snap(T0 + timedelta(seconds=10), {1: (75.6, 76.4), 2: (47.8, 48.1), 3: (25.6, 26.3)}))
    fly = [f for f in fills if f.client_order_id == "F"]                   # body bid up to 47.8: net ask 7.1
    assert fly == []
    broker.on_snapshot(_snap(T0 + timedelta(seconds=15), {1: (75.6, 76.2), 2: (47.8, 48.1), 3: (25.6, 26.3)}))
    fly = [f for f in fills if f.client_order_id == "F"]                   # 76.2 - 95.6 + 26.3 = 6.9 <= 7.0
    assert [(f.contract.contract_id, f.side, f.quantity) for f in fly] == [(1, Side.BUY, 1), (2, Side.SELL, 2),
                                                                           (3, Side.BUY, 1)]
    assert broker.position_by_id == {1: 3, 2: -4, 3: 1}
    assert broker.cash == pytest.approx(-(2 * 29.2 + 6.9) * 100 - 1.25 * 8)


def test_backtest_does_not_leg_when_one_leg_quote_is_missing():
    broker, events, fills = _backtest()
    broker.on_snapshot(_snap(T0, QUOTES))
    asyncio.run(broker.place_combo(ComboOrder("V", vertical(C5900, C5950), Side.BUY, 1, 30.0)))
    broker.on_snapshot(_snap(T0 + timedelta(seconds=5), {1: QUOTES[1]}))                # the short leg unquoted
    broker.on_snapshot(_snap(T0 + timedelta(seconds=10), {1: QUOTES[1], 2: (math.nan, 48.1)}))   # no bid
    assert fills == [] and broker.position_by_id == {} and events[-1].status is OrderStatus.SUBMITTED
    broker.on_snapshot(_snap(T0 + timedelta(seconds=15), QUOTES))
    assert [f.contract.contract_id for f in fills] == [1, 2] and events[-1].status is OrderStatus.FILLED


def test_backtest_settles_each_leg_at_expiry_and_cancels_working_packages():
    broker, events, fills = _backtest()
    broker.on_snapshot(_snap(T0, QUOTES))
    asyncio.run(broker.place_combo(ComboOrder("V", vertical(C5900, C5950), Side.BUY, 1, 29.2)))
    asyncio.run(broker.place_combo(ComboOrder("W", vertical(C5950, C6000), Side.BUY, 1, 5.0)))   # never marketable
    broker.on_snapshot(_snap(T0 + timedelta(seconds=5), QUOTES))
    broker.on_snapshot(_snap(datetime(2025, 10, 17, 20, 5, tzinfo=timezone.utc), QUOTES, spot=5925.0))
    settled = [(f.contract.contract_id, f.side, f.price) for f in fills if f.liquidity == "settlement"]
    assert settled == [(1, Side.SELL, 25.0), (2, Side.BUY, 0.0)] and broker.position_by_id == {}
    last = [e for e in events if e.client_order_id == "W"][-1]
    assert (last.status, last.reason) == (OrderStatus.CANCELLED, "contract expired")


# -------------------------------------------------------------------------------------------- risk
NOW = datetime(2025, 10, 1, 15, 0, tzinfo=timezone.utc)
LEG_MARKETS = {1: ContractMarket(75.6, 76.4, greeks=DollarGreeks(1_500.0, 120.0, 600.0, -90.0), underlying_price=5950),
               2: ContractMarket(47.2, 48.1, greeks=DollarGreeks(1_100.0, 110.0, 580.0, -85.0), underlying_price=5950),
               3: ContractMarket(25.6, 26.3, greeks=DollarGreeks(700.0, 90.0, 500.0, -70.0), underlying_price=5950),
               4: ContractMarket(12.0, 12.6, greeks=DollarGreeks(400.0, 60.0, 350.0, -50.0), underlying_price=5950),
               9: ContractMarket(7.5, 7.7, greeks=DollarGreeks(140.0, 11.0, 58.0, -8.0), underlying_price=595)}


def _check(order: ComboOrder, **kw):
    ctx = RiskContext(**{"settings": RiskConfig(), "now": NOW, **kw})
    return check_combo(order, ctx, [LEG_MARKETS[leg.contract.contract_id] for leg in order.combo.legs])


def test_package_checks_pass_with_net_greeks_and_structure_margin():
    d = _check(ComboOrder("C1", vertical(C5900, C5950), Side.BUY, 3, 29.0))
    assert d.approved, d.failures
    assert {r.code for r in d.results} == set(RiskCode) - {RiskCode.STOP_LOSS}       # every check reports
    # net: 3 x (leg1 - leg2) = 3 x (400, 10, 20, -5)
    assert d.what_if == DollarGreeks(1_200.0, 30.0, 60.0, -15.0)
    assert d.margin == pytest.approx(3 * 29.0 * 100)                                 # a debit spread: its debit


def test_margin_of_a_credit_vertical_is_its_width_not_the_naked_short():
    credit = ComboOrder("C2", vertical(C5950, C6000), Side.SELL, 1, 21.0)           # sell 5950C, buy 6000C
    d = _check(credit)
    assert d.approved, d.failures
    assert d.margin == pytest.approx(50 * 100)                                       # width x multiplier
    naked = margin.estimate([margin.Leg(C5950, -1, 47.65)], 5950.0).margin
    assert naked > d.margin * 10                                                     # ~ $94k naked


CASES = {
    RiskCode.MAX_LEGS: (Combo(tuple(ComboLeg(opt(1 + i, 5900 + 50 * i), 1, Side.BUY if i % 2 else Side.SELL)
                                    for i in range(4))), dict(max_combo_legs=3)),
    RiskCode.UNBALANCED_RATIOS: (Combo((ComboLeg(C5900, 2, Side.BUY), ComboLeg(C5950, 2, Side.SELL))), {}),
    RiskCode.MIXED_UNDERLYINGS: (Combo((ComboLeg(C5900, 1, Side.BUY), ComboLeg(opt(9, 600.0, symbol="XSP"), 1,
                                                                               Side.BUY))), {}),
    RiskCode.DUPLICATE_LEGS: (Combo((ComboLeg(C5900, 1, Side.BUY), ComboLeg(C5900, 1, Side.BUY))), {}),
    RiskCode.MAX_LOSS: (vertical(C5900, C5950), dict(max_combo_loss=2_000.0)),
}


@pytest.mark.parametrize("code", list(CASES), ids=lambda c: c.value)
def test_each_combo_reason_denies_with_its_code(code):
    combo, settings = CASES[code]
    ctx = {"settings": RiskConfig(**{"max_order_premium": 1e6, **settings})}
    d = _check(ComboOrder("X", combo, Side.BUY, 1, 29.0), **ctx)
    assert not d.approved and code in d.reasons, [r.detail for r in d.failures]
    assert set(d.reasons) - {code} <= {RiskCode.PRICE_BAND}, [r.detail for r in d.failures]


def test_every_combo_code_has_a_case():
    assert set(CASES) == set(COMBO_CODES)


def test_package_position_and_unbounded_loss_per_leg():
    held = {2: Position(C5950, -49, 47.0)}
    d = _check(ComboOrder("P1", vertical(C5900, C5950), Side.BUY, 2, 29.0), positions=held)
    assert d.reasons == [RiskCode.MAX_POSITION] and "5950" in next(r.detail for r in d.failures)
    short_straddle = Combo((ComboLeg(C5900, 1, Side.SELL), ComboLeg(opt(6, 5900, "P"), 1, Side.SELL)), "custom")
    markets = [LEG_MARKETS[1], replace(LEG_MARKETS[1], bid=30.0, ask=30.6)]
    d = check_combo(ComboOrder("S1", short_straddle, Side.BUY, 1, -106.0),
                    RiskContext(RiskConfig(allow_uncovered_shorts=True), NOW), markets)
    assert RiskCode.MAX_LOSS in d.reasons and "inf" in next(r.detail for r in d.failures if r.code is RiskCode.MAX_LOSS)


def test_desk_recovers_a_working_package_and_books_its_later_fills(tmp_path):
    """A butterfly of 6 against 10 shown on the body fills 5 packages, then the journal is reopened by a new desk
    that takes the working package back and books the last package's legs."""
    clock = [T0]
    path = tmp_path / "journal.sqlite"

    def checker(order):
        ctx = RiskContext(RiskConfig(max_order_quantity=20, max_order_premium=1e6), NOW)
        return check_combo(order, ctx, [LEG_MARKETS[leg.contract.contract_id] for leg in order.combo.legs])

    broker, _, _ = _backtest()
    journal, book = Journal(path, clock=lambda: clock[0]), Book()
    desk = ComboDesk(broker, journal, checker, book, lambda: clock[0])
    broker.on_snapshot(_snap(T0, QUOTES))
    fly = ComboOrder("F6", butterfly(C5900, C5950, C6000), Side.BUY, 6, 8.5, created_at=NOW)
    assert asyncio.run(desk.send(fly)).approved
    broker.on_snapshot(_snap(T0 + timedelta(seconds=5), QUOTES))
    state = journal.combo_states()["F6"]
    assert (state.status, state.filled_quantity, state.remaining_quantity) == (OrderStatus.PARTIALLY_FILLED, 5, 1)
    assert book.quantity(2) == -10
    journal.close()

    journal, book = Journal(path, clock=lambda: clock[0]), Book()
    book.apply_fills(journal.fills())
    broker.on_order_event.clear()
    broker.on_fill.clear()
    desk = ComboDesk(broker, journal, checker, book, lambda: clock[0])
    assert [o.client_order_id for o in desk.recover()] == ["F6"]
    assert not asyncio.run(desk.send(fly)).approved                         # journaled before: never sent twice
    broker.on_snapshot(_snap(T0 + timedelta(seconds=10), QUOTES))
    assert journal.combo_states()["F6"].status is OrderStatus.FILLED and not desk.working
    assert [book.quantity(c) for c in (1, 2, 3)] == [6, -12, 6]
    assert [f.quantity for f in journal.fills_of("F6")] == [5, 10, 5, 1, 2, 1]
    journal.close()
