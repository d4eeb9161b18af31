"""Pre-trade checks on the order itself: the fat-finger price band, the duplicate guard and compliance (trading
hours, restricted underlyings/expiries/strikes, days to expiry)."""
from __future__ import annotations

from datetime import timedelta

from workstation.config import RiskConfig
from workstation.domain import Order, OrderType
from workstation.domain.snapshot import settlement_instant

from . import hours
from .context import ContractMarket, RiskContext, _finite, _ok
from .limits import CheckResult, RiskCode


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
