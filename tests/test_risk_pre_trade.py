"""Pre-trade risk: every reason code fires on its own, every check reports, state rules hold."""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from workstation.config import RiskConfig
from workstation.domain import Contract, Order, OrderPurpose, OrderType, Position, SecType, Side, TradingState
from workstation.portfolio.greeks import DollarGreeks
from workstation.risk import ContractMarket, DailyMoves, RiskCode, RiskContext, check
from workstation.risk import hours, margin
from workstation.risk.limits import COMBO_CODES, greek_limits, order_size_cap

NY = ZoneInfo("America/New_York")
NOW = datetime(2025, 10, 1, 11, 0, tzinfo=NY)            # a Wednesday, mid-session
CALL = Contract(1001, "SPX", trading_class="SPXW", expiry=date(2025, 10, 17), strike=6700.0, right="C")
OTHER = Contract(1002, "SPX", trading_class="SPXW", expiry=date(2025, 10, 17), strike=6800.0, right="C")
FUTURE = Contract(2001, "SPX", sec_type=SecType.FUTURE, trading_class="ES", expiry=date(2025, 12, 19),
                  multiplier=50.0, exchange="CME")
MARKET = ContractMarket(bid=50.0, ask=52.0, model_price=51.0, underlying_price=6700.0,
                        greeks=DollarGreeks(delta=3_000.0, gamma=500.0, vega=700.0, theta=-100.0))
FUT_MARKET = ContractMarket(bid=6750.0, ask=6750.25, model_price=6750.125, underlying_price=6700.0,
                            greeks=DollarGreeks(delta=6750.0 * 0.01 * 50))


def order(**kw) -> Order:
    base = dict(client_order_id="o-1", contract=CALL, side=Side.BUY, quantity=2, limit_price=51.5,
                created_at=NOW, purpose=OrderPurpose.SIGNAL)
    base.update(kw)
    return Order(**base)


def ctx(**kw) -> RiskContext:
    base = dict(settings=RiskConfig(), now=NOW, market=MARKET)
    base.update(kw)
    return RiskContext(**base)


def cfg(**kw) -> RiskConfig:
    return RiskConfig(**kw)


def test_baseline_order_is_approved_and_every_check_reports():
    decision = check(order(), ctx())
    assert decision.approved, decision.failures
    assert decision.reasons == []
    codes = {r.code for r in decision.results}
    expected = set(RiskCode) - {RiskCode.STOP_LOSS} - COMBO_CODES            # monitor-only and combo-only codes
    assert codes == expected
    assert decision.what_if == DollarGreeks(6_000.0, 1_000.0, 1_400.0, -200.0)
    assert decision.margin == pytest.approx(2 * 51.5 * 100)


HELD_5 = {CALL.contract_id: Position(CALL, 5, 40.0)}
MOVES = DailyMoves(spot_pct=1.0, vol_points=1.0, correlation=-0.7)     # 1 % and 1 vol point a day

CASES = {
    RiskCode.TRADING_DISABLED: (order(), ctx(trading_enabled=False)),
    RiskCode.TRADING_HALTED: (order(), ctx(trading_state=TradingState.HALTED)),
    RiskCode.REDUCING_ONLY: (order(), ctx(trading_state=TradingState.REDUCING)),
    RiskCode.BAD_ORDER: (order(quantity=0), ctx()),
    RiskCode.NO_MARKET: (order(), ctx(market=replace(MARKET, bid=math.nan, ask=math.nan, model_price=math.nan))),
    RiskCode.MAX_QUANTITY: (order(), ctx(settings=cfg(max_order_quantity=1))),
    RiskCode.MAX_PREMIUM: (order(), ctx(settings=cfg(max_order_premium=5_000.0))),
    RiskCode.MAX_POSITION: (order(), ctx(settings=cfg(max_position=6), positions=HELD_5)),
    RiskCode.MAX_TOTAL_CONTRACTS: (order(), ctx(settings=cfg(max_total_contracts=3),
                                                positions={OTHER.contract_id: Position(OTHER, 2, 10.0)})),
    RiskCode.MAX_OPEN_ORDERS: (order(), ctx(settings=cfg(max_open_orders=1),
                                            open_orders=[order(client_order_id="w-1", contract=OTHER,
                                                               side=Side.SELL, quantity=1, limit_price=20.0)],
                                            positions={OTHER.contract_id: Position(OTHER, 3, 10.0)})),
    RiskCode.RATE_THROTTLE: (order(), ctx(settings=cfg(max_orders_per_minute=2), recent_orders=[
        order(client_order_id=f"r-{i}", contract=OTHER, quantity=1, limit_price=20.0,
              created_at=NOW - timedelta(seconds=10 + i)) for i in range(2)])),
    RiskCode.PRICE_BAND: (order(limit_price=80.0), ctx()),
    RiskCode.DUPLICATE_ORDER: (order(), ctx(recent_orders=[order(client_order_id="o-0",
                                                                 created_at=NOW - timedelta(seconds=1))])),
    RiskCode.DAILY_LOSS: (order(), ctx(day_pnl=-30_000.0)),
    RiskCode.DELTA_LIMIT: (order(), ctx(portfolio_greeks=DollarGreeks(delta=499_000.0))),
    RiskCode.GAMMA_LIMIT: (order(), ctx(portfolio_greeks=DollarGreeks(gamma=49_500.0))),
    RiskCode.VEGA_LIMIT: (order(), ctx(portfolio_greeks=DollarGreeks(vega=49_500.0))),
    RiskCode.TRADING_HOURS: (order(), ctx(now=NOW.replace(hour=17))),
    RiskCode.RESTRICTED_UNDERLYING: (order(), ctx(settings=cfg(restricted_underlyings=["spx"]))),
    RiskCode.RESTRICTED_EXPIRY: (order(), ctx(settings=cfg(restricted_expiries=[date(2025, 10, 17)]))),
    RiskCode.RESTRICTED_STRIKE: (order(), ctx(settings=cfg(restricted_strikes=[6700.0]))),
    RiskCode.MIN_DAYS_TO_EXPIRY: (order(), ctx(settings=cfg(min_days_to_expiry=30.0))),
    RiskCode.UNCOVERED_SHORT: (order(side=Side.SELL, limit_price=50.5), ctx()),
    RiskCode.MARGIN: (order(), ctx(buying_power_used=995_000.0)),
    RiskCode.VAR_LIMIT: (order(), ctx(var99=99_000.0, daily_moves=MOVES)),
    RiskCode.BUCKET_LIMIT: (order(), ctx(settings=cfg(bucket_limits={name: {"vega": 1.0} for name in (
        "upto_7d", "d8_30", "d31_90", "d91_365", "over_1y")}))),      # $1 of vega in whichever bucket it is
}


@pytest.mark.parametrize("code", list(CASES), ids=lambda c: c.value)
def test_each_reason_code_fires_alone(code):
    o, c = CASES[code]
    decision = check(o, c)
    assert not decision.approved
    assert decision.reasons == [code], [r.detail for r in decision.failures]
    assert len(decision.results) == len(check(order(), ctx()).results)


def test_every_pre_trade_code_has_a_case():
    assert set(CASES) == set(RiskCode) - {RiskCode.STOP_LOSS} - COMBO_CODES


def test_all_failures_are_reported_together():
    decision = check(order(quantity=30, limit_price=90.0),
                     ctx(trading_state=TradingState.HALTED, day_pnl=-1e6, now=NOW.replace(hour=20)))
    assert {RiskCode.TRADING_HALTED, RiskCode.MAX_QUANTITY, RiskCode.MAX_PREMIUM, RiskCode.PRICE_BAND,
            RiskCode.DAILY_LOSS, RiskCode.TRADING_HOURS} <= set(decision.reasons)
    assert decision.as_dict()["reasons"] == [c.value for c in decision.reasons]


def test_halted_denies_everything_even_exits_and_hedges():
    halted = dict(trading_state=TradingState.HALTED, positions=HELD_5)
    exit_ = check(order(side=Side.SELL, limit_price=50.5, purpose=OrderPurpose.EXIT), ctx(**halted))
    hedge = check(order(contract=FUTURE, side=Side.SELL, quantity=1, limit_price=6750.0,
                        purpose=OrderPurpose.HEDGE),
                  ctx(market=FUT_MARKET, portfolio_greeks=DollarGreeks(delta=20_000.0), **halted))
    assert exit_.reasons == [RiskCode.TRADING_HALTED]
    assert hedge.reasons == [RiskCode.TRADING_HALTED]


def test_reducing_lets_exits_and_hedges_through_and_stops_the_rest():
    reducing = dict(trading_state=TradingState.REDUCING, positions=HELD_5)
    exit_ = check(order(side=Side.SELL, limit_price=50.5, purpose=OrderPurpose.EXIT), ctx(**reducing))
    assert exit_.approved and exit_.reduces_risk
    # an exit larger than the position would flip it: not risk-reducing
    flip = check(order(side=Side.SELL, quantity=8, limit_price=50.5, purpose=OrderPurpose.EXIT), ctx(**reducing))
    assert RiskCode.REDUCING_ONLY in flip.reasons
    # two working exits of 3 and a third: the stacked exits would flip the position of 5
    stacked = check(order(client_order_id="x-3", side=Side.SELL, quantity=3, limit_price=50.5,
                          purpose=OrderPurpose.EXIT),
                    ctx(open_orders=[order(client_order_id="x-1", side=Side.SELL, quantity=3, limit_price=50.5,
                                           created_at=NOW - timedelta(seconds=30))], **reducing))
    assert RiskCode.REDUCING_ONLY in stacked.reasons
    hedge = check(order(contract=FUTURE, side=Side.SELL, quantity=1, limit_price=6750.0,
                        purpose=OrderPurpose.HEDGE),
                  ctx(market=FUT_MARKET, portfolio_greeks=DollarGreeks(delta=20_000.0), **reducing))
    assert hedge.approved, hedge.failures
    wrong_way = check(order(contract=FUTURE, side=Side.BUY, quantity=1, limit_price=6750.0,
                            purpose=OrderPurpose.HEDGE),
                      ctx(market=FUT_MARKET, portfolio_greeks=DollarGreeks(delta=20_000.0), **reducing))
    assert wrong_way.reasons == [RiskCode.REDUCING_ONLY]
    opening = check(order(), ctx(**reducing))
    assert opening.reasons == [RiskCode.REDUCING_ONLY]


def test_exits_pass_daily_loss_and_restrictions():
    settings = cfg(restricted_underlyings=["SPX"], restricted_strikes=[6700.0], min_days_to_expiry=30.0)
    d = check(order(side=Side.SELL, limit_price=50.5, purpose=OrderPurpose.EXIT),
              ctx(settings=settings, positions=HELD_5, day_pnl=-40_000.0))
    assert d.approved, d.failures


def test_limits_are_no_worse_than_now():
    """A lowered limit must not trap a position: reducing trades pass even when still beyond it."""
    big = {CALL.contract_id: Position(CALL, 10, 40.0)}
    d = check(order(side=Side.SELL, limit_price=50.5), ctx(settings=cfg(max_position=3), positions=big,
                                                           portfolio_greeks=DollarGreeks(delta=900_000.0)))
    assert d.approved, d.failures


def test_market_order_uses_far_side_and_needs_it():
    mkt = order(order_type=OrderType.MARKET, limit_price=None)
    assert check(mkt, ctx()).approved
    one_sided = check(mkt, ctx(market=replace(MARKET, ask=math.nan)))
    assert RiskCode.NO_MARKET in one_sided.reasons


def test_trading_hours_rules():
    wed = datetime(2025, 10, 1, tzinfo=NY)
    at = lambda d, h, m=0: (wed + timedelta(days=d)).replace(hour=h, minute=m)  # noqa: E731
    assert not hours.is_open(CALL, at(0, 9, 29)) and hours.is_open(CALL, at(0, 9, 30))
    assert hours.is_open(CALL, at(0, 16, 14)) and not hours.is_open(CALL, at(0, 16, 15))
    assert not hours.is_open(CALL, at(3, 12))                          # Saturday
    expiry_day = datetime(2025, 10, 17, 16, 5, tzinfo=NY)
    assert not hours.is_open(CALL, expiry_day) and hours.is_open(CALL, expiry_day.replace(hour=15))
    assert hours.is_open(FUTURE, at(0, 3)) and hours.is_open(FUTURE, at(0, 20))
    assert not hours.is_open(FUTURE, at(0, 17, 30))                    # daily break
    assert not hours.is_open(FUTURE, at(3, 12))                        # Saturday
    assert hours.is_open(FUTURE, at(4, 18, 30)) and not hours.is_open(FUTURE, at(4, 17, 30))  # Sunday
    index = Contract(1, "SPX", sec_type=SecType.INDEX)
    assert not hours.is_open(index, at(0, 12))


def test_margin_estimate_long_naked_and_spread():
    u = 6700.0
    long_ = margin.estimate([margin.Leg(CALL, 1, 50.0)], u)
    assert long_.margin == pytest.approx(5_000.0) and long_.naked_shorts == 0
    naked = margin.estimate([margin.Leg(OTHER, -1, 20.0)], u)           # 100 points OTM call
    assert naked.margin == pytest.approx((20.0 + max(0.15 * u - 100.0, 0.10 * u)) * 100)
    assert naked.naked_shorts == 1
    spread = margin.estimate([margin.Leg(CALL, -1, 50.0), margin.Leg(OTHER, 1, 20.0)], u)
    assert spread.naked_shorts == 0
    assert spread.margin == pytest.approx(20.0 * 100 + 100.0 * 100)
    put = Contract(1003, "SPX", expiry=date(2025, 10, 17), strike=5000.0, right="P")
    far_otm_put = margin.estimate([margin.Leg(put, -1, 1.0)], u)
    assert far_otm_put.margin == pytest.approx((1.0 + 0.10 * 5000.0) * 100)


def test_covered_short_is_allowed():
    d = check(order(side=Side.SELL, limit_price=50.5), ctx(positions={OTHER.contract_id: Position(OTHER, 2, 20.0)}))
    assert d.approved, d.failures


def test_price_band_is_one_sided_against_the_model():
    """Buying well below the model is the edge a signal trades on; paying well above it is a fat finger."""
    cheap = replace(MARKET, bid=30.0, ask=31.0, model_price=51.0)          # market 40% under the model
    assert check(order(limit_price=30.5), ctx(market=cheap)).approved
    rich = replace(MARKET, bid=70.0, ask=71.0, model_price=51.0)           # buying 40% over the model
    assert RiskCode.PRICE_BAND in check(order(limit_price=70.5), ctx(market=rich)).reasons
    sell_rich = order(side=Side.SELL, limit_price=70.5)
    held = {CALL.contract_id: Position(CALL, 10, 60.0)}
    assert RiskCode.PRICE_BAND not in check(sell_rich, ctx(market=rich, positions=held)).reasons


def test_an_exit_may_pay_the_market_where_the_model_disagrees():
    rich = replace(MARKET, bid=70.0, ask=71.0, model_price=51.0)
    short = {CALL.contract_id: Position(CALL, -2, 60.0)}
    close = order(limit_price=70.5, purpose=OrderPurpose.EXIT)
    assert RiskCode.PRICE_BAND not in check(close, ctx(market=rich, positions=short)).reasons
    assert RiskCode.PRICE_BAND in check(order(limit_price=95.0, purpose=OrderPurpose.EXIT),
                                        ctx(market=rich, positions=short)).reasons   # still fenced by the mid


def test_a_limit_off_the_tick_is_a_bad_order():
    """Exchanges reject 51.55 above 3.00 (ticks of 0.10): catch it before it leaves."""
    assert RiskCode.BAD_ORDER in check(order(limit_price=51.55), ctx()).reasons
    assert check(order(limit_price=51.5), ctx()).approved
    hedge = order(contract=FUTURE, side=Side.SELL, quantity=1, limit_price=6750.1, purpose=OrderPurpose.HEDGE)
    assert RiskCode.BAD_ORDER in check(hedge, ctx(market=FUT_MARKET)).reasons


# ----------------------------------------------------------------- working orders and the VaR what-if
def test_greek_limits_count_working_orders_as_if_filled():
    """Twenty buy orders approved one after another must not each see gamma$ 0: the working ones count."""
    limit = cfg(max_gamma_dollars=5_000.0)
    first = check(order(), ctx(settings=limit))                        # gamma$ 0 -> 1,000: fine
    assert first.approved
    pending = DollarGreeks(gamma=4_500.0)                              # working orders worth gamma$ 4,500
    decision = check(order(), ctx(settings=limit, pending_greeks=pending))
    assert decision.reasons == [RiskCode.GAMMA_LIMIT]
    detail = next(r.detail for r in decision.results if r.code is RiskCode.GAMMA_LIMIT)
    assert "with working orders 4,500 -> 5,500" in detail
    # an order that offsets the working ones passes: it lowers the as-if-filled gamma
    offset = check(order(side=Side.SELL, limit_price=50.5), ctx(settings=limit, pending_greeks=pending,
                                                                positions=HELD_5))
    assert RiskCode.GAMMA_LIMIT not in offset.reasons


def test_var_what_if_is_the_last_revaluation_plus_the_linear_change():
    """VaR after = VaR99 + z99 x (sd of the linear one-day P&L after - before), by hand."""
    greeks = MARKET.greeks.scaled(2)                                   # the order: 2 calls
    a, b = greeks.delta * 1.0, greeks.vega * 1.0
    sd_after = math.sqrt(a * a + b * b + 2 * -0.7 * a * b)
    expected = 60_000.0 + 2.326347874 * sd_after
    decision = check(order(), ctx(var99=60_000.0, daily_moves=MOVES))
    detail = next(r.detail for r in decision.results if r.code is RiskCode.VAR_LIMIT)
    assert f"-> ${expected:,.0f}" in detail and decision.approved
    tight = check(order(), ctx(var99=60_000.0, daily_moves=MOVES, settings=cfg(max_var_99=expected - 1)))
    assert tight.reasons == [RiskCode.VAR_LIMIT]
    # over the limit already: a trade that lowers the linear spread still passes (never trapped)
    held = {CALL.contract_id: Position(CALL, 5, 40.0)}
    sell = check(order(side=Side.SELL, limit_price=50.5),
                 ctx(var99=150_000.0, daily_moves=MOVES, positions=held, portfolio_greeks=MARKET.greeks.scaled(5)))
    assert RiskCode.VAR_LIMIT not in sell.reasons


def test_the_order_size_cap_is_the_largest_size_the_quantity_and_premium_checks_pass():
    """risk.limits.order_size_cap (an exit's or a hedge's slice) and the checks read the same two limits."""
    settings = cfg(max_order_quantity=10, max_order_premium=20_000.0)
    size_checks = {RiskCode.MAX_QUANTITY, RiskCode.MAX_PREMIUM}

    def passes(q: int) -> bool:
        return not size_checks & set(check(order(quantity=q), ctx(settings=settings)).reasons)

    cap = order_size_cap(settings, CALL, 50, 51.5)
    assert cap == 3 and passes(cap) and not passes(cap + 1)                # 3 x 51.5 x 100 <= 20,000 < 4 x ...
    assert order_size_cap(settings, FUTURE, 50, 6750.0) == 10              # a future: the quantity limit only
    assert order_size_cap(settings, CALL, 50, 500.0) == 1                  # never below one contract


def test_the_limits_are_read_in_one_place():
    settings = cfg(max_delta_dollars=1.0, max_gamma_dollars=2.0, max_vega_dollars=3.0)
    assert [(n, lim) for n, _, lim in greek_limits(settings)] == [("delta", 1.0), ("gamma", 2.0), ("vega", 3.0)]
