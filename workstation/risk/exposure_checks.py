"""Pre-trade checks on the book around an order: worst-case exposure over the working orders, trading state,
contract/order flow, portfolio Greeks, the VaR what-if and the expiry buckets (shared by single and combo orders)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from workstation.domain import Order, Side, TradingState
from workstation.domain.calendar import NEW_YORK
from workstation.portfolio.greeks import DollarGreeks

from . import buckets
from .context import GREEK_TOLERANCE, Z99, RiskContext, _finite, _ok
from .limits import CheckResult, RiskCode, greek_limits

THROTTLE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class _Exposure:
    """Worst-case positions around an order: one contract (pre/post) and all options (gross pre/post)."""

    pre: int
    post: int
    gross_pre: int
    gross_post: int
    reduces_position: bool


def _worst_case(longest: int, shortest: int) -> int:
    return max(abs(longest), abs(shortest))


def exposure(order: Order, ctx: RiskContext) -> _Exposure:
    """Position bounds over any fills of the working orders: each contract lies in [pos - sells, pos + buys]."""
    bounds: dict[int, list[int]] = {cid: [p.quantity, p.quantity] for cid, p in ctx.positions.items()}
    is_option = {cid: p.contract.is_option for cid, p in ctx.positions.items()}
    for o in ctx.open_orders:
        cid = o.contract.contract_id
        b = bounds.setdefault(cid, [0, 0])
        is_option[cid] = o.contract.is_option
        if o.side is Side.BUY:
            b[1] += ctx.remaining(o)
        else:
            b[0] -= ctx.remaining(o)
    cid = order.contract.contract_id
    lo, hi = bounds.get(cid, [0, 0])
    q = max(order.quantity, 0)
    if order.side is Side.BUY:
        new_lo, new_hi, side_pre = lo, hi + q, hi
        reduces = side_pre < 0 and side_pre + q <= 0
    else:
        new_lo, new_hi, side_pre = lo - q, hi, lo
        reduces = side_pre > 0 and side_pre - q >= 0
    pre, post = _worst_case(hi, lo), _worst_case(new_hi, new_lo)
    gross_pre = sum(_worst_case(h, l) for c, (l, h) in bounds.items() if is_option.get(c))
    gross_post = gross_pre + (post - pre if order.contract.is_option else 0)
    return _Exposure(pre, post, gross_pre, gross_post, reduces and q > 0)


def state_checks(ctx: RiskContext, reduces: bool, what: str) -> list[CheckResult]:
    """Trading enabled, not HALTED, and in REDUCING only what reduces risk (`what`: "order" or "package")."""
    return [_ok("trading enabled", RiskCode.TRADING_DISABLED, ctx.trading_enabled,
                "trading enabled" if ctx.trading_enabled else "trading is disabled (read-only)"),
            _ok("not halted", RiskCode.TRADING_HALTED, ctx.trading_state is not TradingState.HALTED,
                f"state {ctx.trading_state.value}"),
            _ok("reducing only", RiskCode.REDUCING_ONLY, ctx.trading_state is not TradingState.REDUCING or reduces,
                f"state {ctx.trading_state.value}; {what} {'reduces' if reduces else 'does not reduce'} risk")]


def flow_checks(ctx: RiskContext, gross_pre: int, gross_post: int) -> list[CheckResult]:
    """Total option contracts (worst case, before -> after), working orders and the order rate, for one more order."""
    cfg = ctx.settings
    n_open = sum(1 for o in ctx.open_orders if ctx.remaining(o) > 0)
    start = ctx.now - THROTTLE_WINDOW
    n_recent = sum(1 for o in ctx.recent_orders if o.created_at is not None and start < o.created_at <= ctx.now)
    return [_ok("max total contracts", RiskCode.MAX_TOTAL_CONTRACTS,
                gross_post <= cfg.max_total_contracts or gross_post <= gross_pre,
                f"worst-case option contracts {gross_pre} -> {gross_post} vs limit {cfg.max_total_contracts}"),
            _ok("max open orders", RiskCode.MAX_OPEN_ORDERS, n_open + 1 <= cfg.max_open_orders,
                f"{n_open} working + 1 vs limit {cfg.max_open_orders}"),
            _ok("order rate", RiskCode.RATE_THROTTLE, n_recent + 1 <= cfg.max_orders_per_minute,
                f"{n_recent} in the last minute + 1 vs limit {cfg.max_orders_per_minute}/min")]


def greek_checks(ctx: RiskContext, order_g: DollarGreeks, have_greeks: bool) -> list[CheckResult]:
    """Portfolio delta$, gamma$ and vega$ after an order adding `order_g`: within the limit (or no worse) both if
    the working orders fill and if they do not."""
    cfg, pre_g = ctx.settings, ctx.portfolio_greeks
    what_if, pending_g = pre_g + order_g, pre_g + ctx.pending_greeks
    what_if_all = pending_g + order_g
    out = []
    for name, code, limit in greek_limits(cfg):
        before, after = getattr(pre_g, name), getattr(what_if, name)
        before_all, after_all = getattr(pending_g, name), getattr(what_if_all, name)
        passed = have_greeks and all(abs(a) <= limit or abs(a) <= abs(b) + GREEK_TOLERANCE
                                     for b, a in ((before, after), (before_all, after_all)))
        working = f" (with working orders {before_all:,.0f} -> {after_all:,.0f})" if ctx.pending_greeks != \
            DollarGreeks() else ""
        detail = (f"{name}$ {before:,.0f} -> {after:,.0f}{working} vs limit {limit:,.0f}" if have_greeks
                  else f"no {name} for the contract")
        out.append(_ok(f"{name} limit", code, passed, detail))
    return out


def var_check(ctx: RiskContext, before: DollarGreeks, after: DollarGreeks, have_greeks: bool) -> CheckResult:
    """1-day 99% VaR after the trade: the last full revaluation plus the linearised change the working orders and
    this order make (z99 x the change of the linear P&L spread). An order that lowers the spread passes."""
    limit, moves = ctx.settings.max_var_99, ctx.daily_moves
    if moves is None or not have_greeks:
        return _ok("VaR limit", RiskCode.VAR_LIMIT, True, "no model yet: VaR checked by the monitor")
    sd_book, sd_before, sd_after = moves.sd(ctx.portfolio_greeks), moves.sd(before), moves.sd(after)
    base = ctx.var99 if _finite(ctx.var99) else Z99 * sd_book
    var_after = max(base + Z99 * (sd_after - sd_book), 0.0)
    passed = var_after <= limit or sd_after <= sd_before + GREEK_TOLERANCE
    return _ok("VaR limit", RiskCode.VAR_LIMIT, passed,
               f"VaR99 ${base:,.0f} -> ${var_after:,.0f} (linearised what-if) vs limit ${limit:,.0f}")


def bucket_check(ctx: RiskContext, by_expiry: Sequence[tuple[date | None, DollarGreeks]],
                 have_greeks: bool) -> CheckResult:
    """Each expiry bucket the order trades in within `risk.bucket_limits` after the trade (working orders counted
    as filled), or no worse than before; `by_expiry` the order's dollar Greeks per expiry (one per leg)."""
    limits = buckets.bucket_limits(ctx.settings.bucket_limits)
    today = ctx.now.astimezone(NEW_YORK).date()
    added: dict[str, DollarGreeks] = {}
    for expiry, greeks in by_expiry:
        label = buckets.bucket_of(buckets.days_to(expiry, today))
        added[label] = added.get(label, DollarGreeks()) + greeks
    limited = {label: limits[label] for label in added if limits.get(label)}
    if not limited:
        return _ok("bucket limits", RiskCode.BUCKET_LIMIT, True,
                   f"no limits for the {', '.join(added)} bucket")
    if not have_greeks:
        return _ok("bucket limits", RiskCode.BUCKET_LIMIT, False,
                   f"no Greeks for the contract ({', '.join(limited)} limits)")
    over, inside = [], []
    for label, limit in limited.items():
        before = ctx.bucket_greeks.get(label, DollarGreeks())
        after = before + added[label]
        over += [f"{label}: {g}$ {getattr(before, g):,.0f} -> {getattr(after, g):,.0f} vs {v:,.0f}"
                 for g, v in limit.items()
                 if abs(getattr(after, g)) > v and abs(getattr(after, g)) > abs(getattr(before, g)) + GREEK_TOLERANCE]
        inside.append(f"{label}: inside " + ", ".join(f"{g} {v:,.0f}" for g, v in limit.items()))
    return _ok("bucket limits", RiskCode.BUCKET_LIMIT, not over, "; ".join(over) if over else "; ".join(inside))
