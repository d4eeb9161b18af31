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
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from workstation.config import RiskConfig
from workstation.domain import Order, OrderPurpose, OrderType, Position, SecType, Side, TradingState
from workstation.domain.ticks import FUTURE_TICK, contract_tick, on_tick
from workstation.domain.calendar import NEW_YORK
from workstation.domain.snapshot import settlement_instant
from workstation.portfolio.greeks import DollarGreeks

from . import buckets, hours, margin
from .limits import CheckResult, RiskCode, RiskDecision, greek_limits

THROTTLE_WINDOW = timedelta(minutes=1)
GREEK_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class ContractMarket:
    """The ordered contract's market: prices in index points (NaN when missing), `greeks` in dollars per
    +1 contract, and the underlying index level (for margin; the XSP level for XSP options)."""

    bid: float = math.nan
    ask: float = math.nan
    model_price: float = math.nan
    greeks: DollarGreeks = field(default_factory=DollarGreeks)
    underlying_price: float = math.nan

    @property
    def mid(self) -> float:
        """Mid of a two-sided quote with a positive bid, else NaN."""
        if math.isfinite(self.bid) and math.isfinite(self.ask) and self.bid > 0:
            return 0.5 * (self.bid + self.ask)
        return math.nan


@dataclass(frozen=True)
class RiskContext:
    """Everything the checks read, captured at `now` (the injected clock: checks never read the time).

    positions: by contract id; open_orders: working orders, `filled` their filled quantity so far by
    client order id; recent_orders: orders sent lately (created_at set) for the throttle and duplicate
    guard; market: the ordered contract's market; portfolio_greeks: current dollar Greeks; day_pnl and
    buying_power_used in dollars; marks: prices of held contracts for the margin estimate (else avg cost).
    pending_greeks: the dollar Greeks of the working orders' unfilled quantity as if it filled (orders approved
    earlier in the same cycle included); the Greek limits count them. var99: the last full revaluation's 1-day
    99% VaR of the book ($, NaN before the first); daily_moves: one-day standard deviations of the index (in %)
    and of implied vol (in vol points) and their correlation, for the order's linearised VaR contribution.
    """

    settings: RiskConfig
    now: datetime
    trading_state: TradingState = TradingState.ACTIVE
    positions: Mapping[int, Position] = field(default_factory=dict)
    open_orders: Sequence[Order] = ()
    filled: Mapping[str, int] = field(default_factory=dict)
    recent_orders: Sequence[Order] = ()
    market: ContractMarket | None = None
    portfolio_greeks: DollarGreeks = field(default_factory=DollarGreeks)
    day_pnl: float = 0.0
    buying_power_used: float = 0.0
    marks: Mapping[int, float] = field(default_factory=dict)
    trading_enabled: bool = True
    pending_greeks: DollarGreeks = field(default_factory=DollarGreeks)
    var99: float = math.nan
    daily_moves: "DailyMoves | None" = None
    bucket_greeks: Mapping[str, DollarGreeks] = field(default_factory=dict)   # per expiry bucket, working incl.

    def remaining(self, order: Order) -> int:
        """Unfilled quantity of a working order."""
        return max(0, order.quantity - self.filled.get(order.client_order_id, 0))


@dataclass(frozen=True, slots=True)
class DailyMoves:
    """One-day standard deviations of the index (percent) and of implied vol (vol points), and their correlation:
    what turns dollar Greeks (delta$ per 1 %, vega$ per vol point) into a linear one-day P&L spread."""

    spot_pct: float
    vol_points: float
    correlation: float

    def sd(self, greeks: DollarGreeks) -> float:
        """Standard deviation ($) of the one-day P&L of `greeks`, linearised."""
        a, b = greeks.delta * self.spot_pct, greeks.vega * self.vol_points
        return math.sqrt(max(a * a + b * b + 2.0 * self.correlation * a * b, 0.0))


Z99 = 2.326347874     # one-sided 99% normal quantile


def _ok(name: str, code: RiskCode, passed: bool, detail: str) -> CheckResult:
    return CheckResult(name, bool(passed), code, detail)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


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


def _price(order: Order, market: ContractMarket | None) -> float:
    """The price the order trades at, at worst: its limit, or the far side for a market order."""
    if order.order_type is OrderType.LIMIT:
        return float(order.limit_price) if order.limit_price is not None else math.nan
    if market is None:
        return math.nan
    return market.ask if order.side is Side.BUY else market.bid


def _legs(ctx: RiskContext, order: Order, price: float, with_order: bool) -> list[margin.Leg]:
    """Held legs of the order's underlying (and futures), optionally with the order filled in full."""
    symbol = order.contract.symbol
    legs = [margin.Leg(p.contract, p.quantity, ctx.marks.get(cid, p.avg_cost))
            for cid, p in ctx.positions.items() if p.contract.symbol == symbol and p.quantity]
    if with_order:
        legs.append(margin.Leg(order.contract, order.signed_quantity, price))
    return legs


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


def _price_band(order: Order, mkt: ContractMarket | None, cfg: RiskConfig, reduces: bool = False) -> CheckResult:
    """Fat finger: the limit within max(price_band x ref, price_band_min) of the mid, and not worse than the
    model by more than that band (paying above it, selling below it). Beating the model is the point of a
    signal, so that side is free; an order that reduces risk is checked against the mid only (an exit must
    be able to pay the market even where the model disagrees)."""
    name, code = "price band", RiskCode.PRICE_BAND
    if order.order_type is not OrderType.LIMIT:
        return _ok(name, code, True, "market order: takes the far side")
    if mkt is None or not (_finite(mkt.mid) or _finite(mkt.model_price)):
        return _ok(name, code, True, "no mid or model to compare with (NO_MARKET decides)")
    limit = float(order.limit_price)  # type: ignore[arg-type]
    out = []
    for label, ref in (("mid", mkt.mid), ("model", mkt.model_price)):
        if not _finite(ref) or (label == "model" and reduces):
            continue
        band = max(cfg.price_band * abs(ref), cfg.price_band_min)
        worse = (limit - ref) * order.side.sign if label == "model" else abs(limit - ref)
        if worse > band:
            out.append(f"{label} {ref:g} +- {band:g}")
    return _ok(name, code, not out, f"limit {limit:g} outside " + ", ".join(out) if out else f"limit {limit:g} ok")


def _duplicate(order: Order, ctx: RiskContext) -> CheckResult:
    """Same client id as a working/recent order, or same contract/side/quantity within the window."""
    window = timedelta(seconds=ctx.settings.duplicate_window_s)
    for other in (*ctx.open_orders, *ctx.recent_orders):
        if other.client_order_id == order.client_order_id:
            return _ok("duplicate guard", RiskCode.DUPLICATE_ORDER, False,
                       f"client order id {order.client_order_id} already sent")
        same = (other.contract.contract_id == order.contract.contract_id and other.side is order.side
                and other.quantity == order.quantity)
        if same and other.created_at is not None and ctx.now - other.created_at <= window:
            return _ok("duplicate guard", RiskCode.DUPLICATE_ORDER, False,
                       f"same as {other.client_order_id} sent {(ctx.now - other.created_at).total_seconds():.1f}s ago")
    return _ok("duplicate guard", RiskCode.DUPLICATE_ORDER, True, "no duplicate")


def compliance_checks(order: Order, ctx: RiskContext, exit_ok: bool) -> list[CheckResult]:
    """Trading hours, the restricted lists and the days-to-expiry guard (exits pass the last four)."""
    cfg, c = ctx.settings, order.contract
    out = []
    if cfg.enforce_trading_hours:
        open_now = hours.is_open(c, ctx.now)
        out.append(_ok("trading hours", RiskCode.TRADING_HOURS, open_now,
                       f"{'open' if open_now else 'closed'}: {hours.session_label(c, ctx.now)}"))
    else:
        out.append(_ok("trading hours", RiskCode.TRADING_HOURS, True, "not enforced"))
    names = {n.upper() for n in cfg.restricted_underlyings}
    hit = {c.symbol.upper(), c.trading_class.upper()} & names
    out.append(_ok("restricted underlying", RiskCode.RESTRICTED_UNDERLYING, not hit or exit_ok,
                   f"{', '.join(sorted(hit))} restricted" if hit else "not restricted"))
    hit_exp = c.expiry is not None and c.is_option and c.expiry in set(cfg.restricted_expiries)
    out.append(_ok("restricted expiry", RiskCode.RESTRICTED_EXPIRY, not hit_exp or exit_ok,
                   f"expiry {c.expiry} restricted" if hit_exp else "not restricted"))
    hit_k = c.strike is not None and any(abs(c.strike - k) < 1e-9 for k in cfg.restricted_strikes)
    out.append(_ok("restricted strike", RiskCode.RESTRICTED_STRIKE, not hit_k or exit_ok,
                   f"strike {c.strike:g} restricted" if hit_k else "not restricted"))
    if c.is_option and c.expiry is not None:
        days = (settlement_instant(c.expiry, c.settlement.value == "AM") - ctx.now).total_seconds() / 86400.0
        out.append(_ok("days to expiry", RiskCode.MIN_DAYS_TO_EXPIRY, days >= cfg.min_days_to_expiry or exit_ok,
                       f"{days:.2f} days vs minimum {cfg.min_days_to_expiry:g}"))
    else:
        out.append(_ok("days to expiry", RiskCode.MIN_DAYS_TO_EXPIRY, True, "not an option"))
    return out


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
