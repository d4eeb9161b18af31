"""Pre-trade checks on a combo order as one package: `check_combo(order, ctx, markets)` -> RiskDecision.

The package is checked as a whole where the whole is what matters (net premium, max loss at expiry, net Greeks
what-if, the margin of the structure, one open order, one order sent) and leg by leg where a leg is what the
limit is about (position per contract, contracts per order, hours and restricted lists, days to expiry). Its
shape is checked first: too many legs (`risk.max_combo_legs`), unbalanced ratios, mixed underlyings and
duplicate legs each deny with their own code. `markets[i]` is leg i's market (Greeks per +1 contract).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from workstation.config import RiskConfig
from workstation.domain import Order, OrderType
from workstation.domain.combos import COMBO_TICK, ComboOrder, ComboReason, on_combo_tick
from workstation.portfolio.greeks import DollarGreeks

from . import margin
from .limits import CheckResult, RiskCode, RiskDecision
from .pre_trade import (ContractMarket, RiskContext, _finite, _ok, bucket_check, compliance_checks, exposure,
                        flow_checks, greek_checks, state_checks, var_check)

_SHAPE = ((ComboReason.MAX_LEGS, RiskCode.MAX_LEGS, "max legs"),
          (ComboReason.UNBALANCED_RATIOS, RiskCode.UNBALANCED_RATIOS, "balanced ratios"),
          (ComboReason.MIXED_UNDERLYINGS, RiskCode.MIXED_UNDERLYINGS, "one underlying"),
          (ComboReason.DUPLICATE_LEGS, RiskCode.DUPLICATE_LEGS, "distinct legs"))


def _leg_orders(order: ComboOrder) -> list[Order]:
    """Each leg as the single-contract order it amounts to (for the per-contract checks)."""
    return [Order(f"{order.client_order_id}#{i}", leg.contract, side, qty, OrderType.MARKET,
                  created_at=order.created_at, purpose=order.purpose)
            for i, (leg, side, qty) in enumerate(order.leg_quantities())]


def _leg_price(m: ContractMarket) -> float:
    """A leg's price for the margin estimate: mid, else model, else NaN."""
    return m.mid if _finite(m.mid) else m.model_price


def _shape_checks(order: ComboOrder, ctx: RiskContext) -> list[CheckResult]:
    problems = order.combo.problems(ctx.settings.max_combo_legs)
    found = {reason: detail for reason, detail in problems}
    out = [_ok(name, code, reason not in found, found.get(reason, "ok")) for reason, code, name in _SHAPE]
    bad = [f"{r.value}: {d}" for r, d in problems if r in (ComboReason.BAD_LEG, ComboReason.BAD_STRUCTURE)]
    if order.quantity <= 0:
        bad.append(f"quantity {order.quantity} <= 0")
    if not on_combo_tick(order.limit_price):
        bad.append(f"net limit {order.limit_price:g} is off the combo tick ({COMBO_TICK:g})")
    out.append(_ok("well-formed order", RiskCode.BAD_ORDER, not bad, "; ".join(bad) or "ok"))
    return out


def _merge(name: str, results: list[CheckResult]) -> CheckResult:
    """One result for a check run on every leg: passed when every leg passed, the failing legs' details."""
    failed = [r.detail for r in results if not r.passed]
    return CheckResult(name, not failed, results[0].code, "; ".join(failed) if failed else results[0].detail)


def check_combo(order: ComboOrder, ctx: RiskContext, markets: Sequence[ContractMarket]) -> RiskDecision:
    """Run every pre-trade check on the package `order`; approved only when all pass."""
    cfg, combo, q = ctx.settings, order.combo, order.quantity
    if len(markets) != len(combo.legs):
        raise ValueError(f"{len(markets)} markets for {len(combo.legs)} legs")
    legs = _leg_orders(order)
    exposures = [exposure(leg, ctx) for leg in legs]
    reduces = all(e.reduces_position for e in exposures)
    have_greeks = all(all(_finite(v) for v in m.greeks.as_dict().values()) for m in markets)
    sign = order.side.sign * q
    net_g = combo.net_greeks({g: [m.greeks.as_dict()[g] for m in markets] for g in ("delta", "gamma", "vega", "theta")})
    order_g = DollarGreeks(**net_g).scaled(sign) if have_greeks else DollarGreeks()
    results: list[CheckResult] = []
    add = results.append

    results.extend(state_checks(ctx, reduces, "package (every leg)"))

    # --- the package's shape and market
    results.extend(_shape_checks(order, ctx))
    mids = [m.mid for m in markets]
    models = [m.model_price for m in markets]
    have_market = all(_finite(a) or _finite(b) for a, b in zip(mids, models))
    add(_ok("market available", RiskCode.NO_MARKET, have_market,
            "every leg quoted or modelled" if have_market else "a leg has no quote and no model price"))

    # --- size and exposure (per leg) and the package's premium and max loss
    biggest = max(leg.quantity for leg in legs)
    add(_ok("max quantity", RiskCode.MAX_QUANTITY, biggest <= cfg.max_order_quantity,
            f"largest leg {biggest} contracts vs limit {cfg.max_order_quantity}"))
    premium = abs(q * order.limit_price * combo.multiplier)
    add(_ok("max premium", RiskCode.MAX_PREMIUM, premium <= cfg.max_order_premium,
            f"net ${premium:,.0f} vs limit ${cfg.max_order_premium:,.0f}"))
    bounds = combo.payoff_bounds(order.limit_price, order.side)
    loss = q * bounds.max_loss
    add(_ok("max loss", RiskCode.MAX_LOSS, math.isfinite(loss) and loss <= cfg.max_combo_loss,
            f"max loss at expiry ${loss:,.0f}{'' if bounds.exact else ' (later legs at intrinsic)'} "
            f"vs limit ${cfg.max_combo_loss:,.0f}"))
    over = [f"{leg.contract.description} {e.pre} -> {e.post}" for leg, e in zip(legs, exposures)
            if e.post > cfg.max_position and e.post > e.pre]
    add(_ok("max position", RiskCode.MAX_POSITION, not over,
            "; ".join(over) + f" vs limit {cfg.max_position}" if over else "every leg inside"))
    gross_pre = exposures[0].gross_pre
    gross_post = gross_pre + sum(e.gross_post - e.gross_pre for e in exposures)
    results.extend(flow_checks(ctx, gross_pre, gross_post))

    # --- price and duplicates
    add(_net_price_band(order, combo.net(mids), combo.net(models), cfg, reduces))
    dup = any(o.client_order_id == order.client_order_id for o in (*ctx.open_orders, *ctx.recent_orders))
    add(_ok("duplicate guard", RiskCode.DUPLICATE_ORDER, not dup,
            f"client order id {order.client_order_id} already sent" if dup else "no duplicate"))

    # --- loss and Greeks (net)
    add(_ok("daily loss", RiskCode.DAILY_LOSS, ctx.day_pnl > -cfg.max_daily_loss or reduces,
            f"day P&L ${ctx.day_pnl:,.0f} vs limit -${cfg.max_daily_loss:,.0f}"))
    results.extend(greek_checks(ctx, order_g, have_greeks))
    pending_g = ctx.portfolio_greeks + ctx.pending_greeks
    add(var_check(ctx, pending_g, pending_g + order_g, have_greeks))
    by_expiry = [(leg.contract.expiry, m.greeks.scaled(leg.weight * sign)) for leg, m in zip(combo.legs, markets)]
    add(bucket_check(ctx, by_expiry, have_greeks))

    # --- compliance per leg, margin of the structure
    per_leg = [compliance_checks(leg, ctx, e.reduces_position) for leg, e in zip(legs, exposures)]
    results.extend(_merge(checks[0].name, list(checks)) for checks in zip(*per_leg))
    need = _margin_needed(order, ctx, markets)
    results.extend(_margin_checks(order, ctx, markets, need))
    return RiskDecision(order.client_order_id, all(r.passed for r in results), tuple(results),
                        ctx.portfolio_greeks + order_g, margin=need, reduces_risk=reduces)


def _net_price_band(order: ComboOrder, net_mid: float, net_model: float, cfg: RiskConfig,
                    reduces: bool) -> CheckResult:
    """Fat finger on the net price: within max(price_band x |ref|, price_band_min x contracts per package) of the
    net mid, and not worse than the net model by more than that (a package that reduces risk is held to the mid
    only). The floor grows with the legs: a butterfly's net spread is the sum of four contracts' spreads."""
    out = []
    contracts = sum(leg.ratio for leg in order.combo.legs)
    for label, ref in (("net mid", net_mid), ("net model", net_model)):
        if not _finite(ref) or (label == "net model" and reduces):
            continue
        band = max(cfg.price_band * abs(ref), cfg.price_band_min * contracts)
        worse = (order.limit_price - ref) * order.side.sign if label == "net model" else abs(order.limit_price - ref)
        if worse > band:
            out.append(f"{label} {ref:g} +- {band:g}")
    return _ok("price band", RiskCode.PRICE_BAND, not out,
               f"net limit {order.limit_price:g} outside " + ", ".join(out) if out
               else f"net limit {order.limit_price:g} ok")


def _margin_legs(order: ComboOrder, ctx: RiskContext, markets: Sequence[ContractMarket],
                 with_order: bool) -> list[margin.Leg]:
    symbol = order.combo.symbol
    held = [margin.Leg(p.contract, p.quantity, ctx.marks.get(cid, p.avg_cost))
            for cid, p in ctx.positions.items() if p.contract.symbol == symbol and p.quantity]
    if not with_order:
        return held
    return held + [margin.Leg(leg.contract, side.sign * qty, _leg_price(m))
                   for (leg, side, qty), m in zip(order.leg_quantities(), markets)]


def _margin_needed(order: ComboOrder, ctx: RiskContext, markets: Sequence[ContractMarket]) -> float:
    """Margin the package adds: the structure's own (its max loss) or, when the book offsets it, the Reg-T
    estimate's change, whichever is smaller; NaN when neither is known."""
    structure = margin.structure_margin(order.combo, order.side, order.limit_price, order.quantity)
    u = markets[0].underlying_price
    prices_known = all(_finite(_leg_price(m)) for m in markets)
    incremental = math.nan
    if _finite(u) and prices_known:
        rate = ctx.settings.future_margin_rate
        incremental = (margin.estimate(_margin_legs(order, ctx, markets, True), u, rate).margin
                       - margin.estimate(_margin_legs(order, ctx, markets, False), u, rate).margin)
    known = [x for x in (structure, incremental) if _finite(x)]
    return min(known) if known else math.nan


def _margin_checks(order: ComboOrder, ctx: RiskContext, markets: Sequence[ContractMarket],
                   need: float) -> list[CheckResult]:
    cfg = ctx.settings
    if cfg.allow_uncovered_shorts:
        covered = _ok("covered shorts", RiskCode.UNCOVERED_SHORT, True, "uncovered shorts allowed")
    else:
        before = margin.estimate(_margin_legs(order, ctx, markets, False), 1.0).naked_shorts
        after = margin.estimate(_margin_legs(order, ctx, markets, True), 1.0).naked_shorts
        covered = _ok("covered shorts", RiskCode.UNCOVERED_SHORT, after <= before,
                      f"uncovered short options {before} -> {after}")
    left = cfg.buying_power - ctx.buying_power_used
    if not _finite(need):
        enough = _ok("margin", RiskCode.MARGIN, False, "cannot estimate margin (no leg prices or underlying level)")
    else:
        enough = _ok("margin", RiskCode.MARGIN, need <= 0 or need <= left,
                     f"structure needs ${need:,.0f}, buying power left ${left:,.0f}")
    return [covered, enough]
