"""Pre-trade margin checks: no new uncovered shorts unless allowed, and the Reg-T margin an order needs within
the buying power left (`risk.margin` estimates it on the held legs of the underlying)."""
from __future__ import annotations

import math

from workstation.domain import Order

from . import margin
from .context import RiskContext, _finite, _ok
from .limits import CheckResult, RiskCode


def _legs(ctx: RiskContext, order: Order, price: float, with_order: bool) -> list[margin.Leg]:
    """Held legs of the order's underlying (and futures), optionally with the order filled in full."""
    symbol = order.contract.symbol
    legs = [margin.Leg(p.contract, p.quantity, ctx.marks.get(cid, p.avg_cost))
            for cid, p in ctx.positions.items() if p.contract.symbol == symbol and p.quantity]
    if with_order:
        legs.append(margin.Leg(order.contract, order.signed_quantity, price))
    return legs


def _underlying(ctx: RiskContext) -> float:
    mkt = ctx.market
    return mkt.underlying_price if mkt is not None and _finite(mkt.underlying_price) else math.nan


def _margin_needed(order: Order, ctx: RiskContext, price: float) -> float:
    """Change of the Reg-T estimate if the order fills (negative when it frees margin); NaN when unknown."""
    u = _underlying(ctx)
    if not (_finite(price) and (_finite(u) or not order.contract.is_option)):
        return math.nan
    rate = ctx.settings.future_margin_rate
    before = margin.estimate(_legs(ctx, order, price, False), u, rate).margin
    after = margin.estimate(_legs(ctx, order, price, True), u, rate).margin
    return after - before


def _margin_checks(order: Order, ctx: RiskContext, price: float) -> list[CheckResult]:
    """No new naked shorts unless allowed; the margin the order needs within the buying power left."""
    cfg, c = ctx.settings, order.contract
    out = []
    if c.is_option and not cfg.allow_uncovered_shorts:
        before = margin.estimate(_legs(ctx, order, 0.0, False), 1.0).naked_shorts
        after = margin.estimate(_legs(ctx, order, 0.0, True), 1.0).naked_shorts
        out.append(_ok("covered shorts", RiskCode.UNCOVERED_SHORT, after <= before,
                       f"uncovered short options {before} -> {after}"))
    else:
        out.append(_ok("covered shorts", RiskCode.UNCOVERED_SHORT, True,
                       "uncovered shorts allowed" if c.is_option else "not an option"))
    need = _margin_needed(order, ctx, price)
    left = cfg.buying_power - ctx.buying_power_used
    if not _finite(need):
        out.append(_ok("margin", RiskCode.MARGIN, False, "cannot estimate margin (no price or underlying level)"))
    else:
        out.append(_ok("margin", RiskCode.MARGIN, need <= 0 or need <= left,
                       f"needs ${need:,.0f}, buying power left ${left:,.0f}"))
    return out
