"""Pre-trade risk: `check(order, ctx)` runs every check on an order and returns a RiskDecision.

Every check runs and reports, so the GUI and the journal show all the reasons at once. Exposure
checks are "no worse than now": an order that does not increase the measure it limits passes even when
the measure is already beyond its limit (a lowered limit must not trap a position). Working orders
count at their remaining size on the side they push, so no sequence of fills of approved orders can
take a position or the total contracts past a limit. An order "reduces risk" when it shrinks its
contract's position without flipping it (working orders on that side included), or when it is a HEDGE
that shrinks |portfolio delta$| without adding gamma or vega; only such orders pass in REDUCING state,
past the daily-loss check and past the restricted-list and days-to-expiry checks (exits stay possible).
Dollar Greeks follow `workstation.portfolio.greeks`.

The checks live by job: `context` (what they read), `exposure_checks` (state, flow, Greeks, VaR, buckets),
`order_checks` (price band, duplicates, compliance) and `margin_checks`; this module runs them all and keeps
their old names importable.
"""
from __future__ import annotations

import math

from workstation.domain import Order, OrderPurpose, OrderType, SecType, Side
from workstation.domain.ticks import FUTURE_TICK, contract_tick, on_tick
from workstation.portfolio.greeks import DollarGreeks

from .context import GREEK_TOLERANCE, Z99, ContractMarket, DailyMoves, RiskContext, _finite, _ok
from .exposure_checks import (THROTTLE_WINDOW, _Exposure, _worst_case, bucket_check, exposure, flow_checks,
                              greek_checks, state_checks, var_check)
from .limits import CheckResult, RiskCode, RiskDecision
from .margin_checks import _legs, _margin_checks, _margin_needed, _underlying
from .order_checks import _duplicate, _price_band, compliance_checks

__all__ = ["GREEK_TOLERANCE", "THROTTLE_WINDOW", "Z99", "CheckResult", "ContractMarket", "DailyMoves", "RiskContext",
           "bucket_check", "check", "compliance_checks", "exposure", "flow_checks", "greek_checks", "state_checks",
           "var_check"]
_REEXPORTED = (_Exposure, _worst_case, _legs, _underlying)   # old private names, still importable from here


def _price(order: Order, market: ContractMarket | None) -> float:
    """The price the order trades at, at worst: its limit, or the far side for a market order."""
    if order.order_type is OrderType.LIMIT:
        return float(order.limit_price) if order.limit_price is not None else math.nan
    if market is None:
        return math.nan
    return market.ask if order.side is Side.BUY else market.bid


def check(order: Order, ctx: RiskContext) -> RiskDecision:
    """Run every pre-trade check on `order` against `ctx`; approved only when all pass."""
    cfg, c, mkt = ctx.settings, order.contract, ctx.market
    q, s = order.quantity, order.signed_quantity
    price = _price(order, mkt)
    exp = exposure(order, ctx)
    pre_g = ctx.portfolio_greeks
    have_greeks = mkt is not None and all(_finite(v) for v in mkt.greeks.as_dict().values())
    order_g = mkt.greeks.scaled(s) if have_greeks and mkt is not None else DollarGreeks()
    what_if = pre_g + order_g
    pending_g = pre_g + ctx.pending_greeks              # the book as if every working order filled
    what_if_all = pending_g + order_g
    hedge_reduces = (order.purpose is OrderPurpose.HEDGE and have_greeks
                     and abs(what_if.delta) < abs(pre_g.delta)
                     and abs(what_if.gamma) <= abs(pre_g.gamma) + GREEK_TOLERANCE
                     and abs(what_if.vega) <= abs(pre_g.vega) + GREEK_TOLERANCE)
    reduces = exp.reduces_position or hedge_reduces
    results: list[CheckResult] = []
    add = results.append

    results.extend(state_checks(ctx, reduces, "order"))

    # --- the order itself and its market
    problems = []
    if q <= 0:
        problems.append(f"quantity {q} <= 0")
    if order.order_type is OrderType.LIMIT and not (_finite(order.limit_price) and order.limit_price > 0):
        problems.append(f"limit price {order.limit_price!r} not a positive finite number")
    elif order.order_type is OrderType.LIMIT:
        is_future = c.sec_type is SecType.FUTURE
        if not on_tick(float(order.limit_price), FUTURE_TICK if is_future else None):
            problems.append(f"limit {order.limit_price:g} is off the tick "
                            f"({contract_tick(is_future, float(order.limit_price)):g})")
    if c.sec_type not in (SecType.OPTION, SecType.FUTURE):
        problems.append(f"{c.sec_type.value} is not tradable")
    add(_ok("well-formed order", RiskCode.BAD_ORDER, not problems, "; ".join(problems) or "ok"))
    if mkt is None:
        have_market, why = False, "no quote or model for the contract"
    elif order.order_type is OrderType.MARKET:
        have_market = _finite(price) and price > 0
        why = f"far side {price:g}" if have_market else "market order without a quote on the far side"
    else:
        have_market = _finite(mkt.mid) or _finite(mkt.model_price)
        why = f"mid {mkt.mid:g}, model {mkt.model_price:g}"
    add(_ok("market available", RiskCode.NO_MARKET, have_market, why))

    # --- size and exposure
    add(_ok("max quantity", RiskCode.MAX_QUANTITY, q <= cfg.max_order_quantity,
            f"{q} vs limit {cfg.max_order_quantity}"))
    if c.is_option:
        premium = abs(q) * price * c.multiplier
        add(_ok("max premium", RiskCode.MAX_PREMIUM, _finite(premium) and premium <= cfg.max_order_premium,
                f"${premium:,.0f} vs limit ${cfg.max_order_premium:,.0f}"))
    else:
        add(_ok("max premium", RiskCode.MAX_PREMIUM, True, "not an option"))
    add(_ok("max position", RiskCode.MAX_POSITION,
            exp.post <= cfg.max_position or exp.post <= exp.pre,
            f"worst-case |position| {exp.pre} -> {exp.post} vs limit {cfg.max_position}"))
    results.extend(flow_checks(ctx, exp.gross_pre, exp.gross_post))

    # --- price and duplicates
    add(_price_band(order, mkt, cfg, reduces))
    add(_duplicate(order, ctx))

    # --- loss and Greeks
    loss_ok = ctx.day_pnl > -cfg.max_daily_loss or reduces
    add(_ok("daily loss", RiskCode.DAILY_LOSS, loss_ok,
            f"day P&L ${ctx.day_pnl:,.0f} vs limit -${cfg.max_daily_loss:,.0f}"))
    results.extend(greek_checks(ctx, order_g, have_greeks))
    add(var_check(ctx, pending_g, what_if_all, have_greeks))
    add(bucket_check(ctx, [(c.expiry, order_g)], have_greeks))

    # --- compliance
    results.extend(compliance_checks(order, ctx, exp.reduces_position))
    results.extend(_margin_checks(order, ctx, price))

    return RiskDecision(order.client_order_id, all(r.passed for r in results), tuple(results), what_if,
                        margin=_margin_needed(order, ctx, price), reduces_risk=reduces)
