"""Property: with random limits and random order/fill/cancel streams through `check` and the Book, fills of
approved orders never take a position, the total contracts, the working orders or the order rate past a
limit, and every approved order's what-if Greeks are within the limits (or no worse than before)."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings, strategies as st

from workstation.config import RiskConfig
from workstation.domain import Contract, Fill, Order, OrderPurpose, SecType, Side
from workstation.portfolio import Book
from workstation.portfolio.greeks import DollarGreeks
from workstation.risk import ContractMarket, RiskContext, check

NY = ZoneInfo("America/New_York")
START = datetime(2025, 10, 1, 10, 0, tzinfo=NY)
EXPIRY = date(2025, 11, 21)
CONTRACTS = [
    Contract(11, "SPX", trading_class="SPXW", expiry=EXPIRY, strike=6600.0, right="P"),
    Contract(12, "SPX", trading_class="SPXW", expiry=EXPIRY, strike=6700.0, right="C"),
    Contract(13, "SPX", trading_class="SPXW", expiry=EXPIRY, strike=6800.0, right="C"),
    Contract(14, "SPX", trading_class="SPXW", expiry=date(2025, 12, 19), strike=6700.0, right="P"),
    Contract(21, "SPX", sec_type=SecType.FUTURE, trading_class="ES", expiry=date(2025, 12, 19), multiplier=50.0),
]
MARKETS = {
    11: ContractMarket(30.0, 31.0, 30.4, DollarGreeks(-2_000.0, 450.0, 700.0, -90.0), 6700.0),
    12: ContractMarket(80.0, 81.0, 80.6, DollarGreeks(3_500.0, 500.0, 820.0, -110.0), 6700.0),
    13: ContractMarket(40.0, 41.0, 40.2, DollarGreeks(2_100.0, 420.0, 690.0, -80.0), 6700.0),
    14: ContractMarket(120.0, 122.0, 121.0, DollarGreeks(-3_000.0, 300.0, 1_100.0, -60.0), 6700.0),
    21: ContractMarket(6750.0, 6750.25, 6750.1, DollarGreeks(6750.0 * 0.01 * 50), 6700.0),
}

limits = st.builds(
    RiskConfig,
    max_order_quantity=st.integers(1, 10), max_position=st.integers(1, 30),
    max_total_contracts=st.integers(1, 60), max_open_orders=st.integers(1, 8),
    max_orders_per_minute=st.integers(1, 12),
    max_delta_dollars=st.floats(1_000, 150_000), max_gamma_dollars=st.floats(500, 20_000),
    max_vega_dollars=st.floats(700, 30_000), allow_uncovered_shorts=st.booleans(),
    duplicate_window_s=st.floats(0, 5), buying_power=st.just(1e9), max_order_premium=st.just(1e8),
)
actions = st.lists(st.one_of(
    st.tuples(st.just("order"), st.integers(0, len(CONTRACTS) - 1), st.sampled_from([Side.BUY, Side.SELL]),
              st.integers(1, 8), st.floats(0, 30), st.sampled_from(list(OrderPurpose))),
    st.tuples(st.just("fill"), st.integers(0, 50), st.floats(0, 1)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
), min_size=10, max_size=80)


def greeks_of(book: Book) -> DollarGreeks:
    total = DollarGreeks()
    for cid, p in book.positions.items():
        total = total + MARKETS[cid].greeks.scaled(p.quantity)
    return total


def within(after: float, before: float, limit: float) -> bool:
    return abs(after) <= limit + 1e-6 or abs(after) <= abs(before) + 1e-6


class Desk:
    """Drives check + Book the way the engine will: approved orders work, then fill or cancel."""

    def __init__(self, cfg: RiskConfig, fill_at_once: bool) -> None:
        self.cfg, self.fill_at_once = cfg, fill_at_once
        self.book, self.now = Book(), START
        self.working: dict[str, Order] = {}
        self.filled: dict[str, int] = {}
        self.sent: list[Order] = []
        self.n = 0

    def ctx(self, cid: int) -> RiskContext:
        return RiskContext(settings=self.cfg, now=self.now, positions=self.book.positions,
                           open_orders=list(self.working.values()), filled=dict(self.filled),
                           recent_orders=self.sent[-50:], market=MARKETS[cid], portfolio_greeks=greeks_of(self.book))

    def order(self, idx: int, side: Side, qty: int, advance: float, purpose: OrderPurpose) -> None:
        self.now += timedelta(seconds=advance)
        contract = CONTRACTS[idx]
        self.n += 1
        o = Order(f"c{self.n}", contract, side, qty, limit_price=MARKETS[contract.contract_id].mid,
                  created_at=self.now, purpose=purpose)
        ctx = self.ctx(contract.contract_id)
        decision = check(o, ctx)
        assert len(decision.results) >= 20
        if not decision.approved:
            return
        before = ctx.portfolio_greeks
        for name, limit in (("delta", self.cfg.max_delta_dollars), ("gamma", self.cfg.max_gamma_dollars),
                            ("vega", self.cfg.max_vega_dollars)):
            assert within(getattr(decision.what_if, name), getattr(before, name), limit), (name, decision)
        self.working[o.client_order_id] = o
        self.filled[o.client_order_id] = 0
        self.sent.append(o)
        if self.fill_at_once:
            self.fill(o.client_order_id, 1.0)

    def fill(self, order_id: str, fraction: float) -> None:
        o = self.working[order_id]
        remaining = o.quantity - self.filled[order_id]
        qty = max(1, min(remaining, round(remaining * fraction)))
        self.book.apply_fill(Fill(f"x{self.n}-{order_id}-{self.filled[order_id]}", order_id, o.contract, o.side,
                                  qty, o.limit_price, self.now))
        self.filled[order_id] += qty
        if self.filled[order_id] == o.quantity:
            del self.working[order_id]

    def pick(self, k: int) -> str | None:
        ids = sorted(self.working)
        return ids[k % len(ids)] if ids else None

    def assert_limits(self) -> None:
        cfg = self.cfg
        for p in self.book.positions.values():
            assert abs(p.quantity) <= cfg.max_position
        assert self.book.total_option_contracts <= cfg.max_total_contracts
        assert len(self.working) <= cfg.max_open_orders
        in_last_minute = [o for o in self.sent if self.now - timedelta(minutes=1) < o.created_at <= self.now]
        assert len(in_last_minute) <= cfg.max_orders_per_minute


def run(cfg: RiskConfig, steps, fill_at_once: bool) -> Desk:
    desk = Desk(cfg, fill_at_once)
    for step in steps:
        if step[0] == "order":
            desk.order(*step[1:])
        elif step[0] == "fill" and (oid := desk.pick(step[1])):
            desk.fill(oid, step[2])
        elif step[0] == "cancel" and (oid := desk.pick(step[1])):
            del desk.working[oid]
        desk.assert_limits()
    return desk


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=limits, steps=actions)
def test_fills_of_approved_orders_never_breach_limits(cfg, steps):
    run(cfg, steps, fill_at_once=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=limits, steps=actions)
def test_portfolio_greeks_stay_inside_limits_when_orders_fill_at_once(cfg, steps):
    desk = run(cfg, steps, fill_at_once=True)
    g = greeks_of(desk.book)
    assert abs(g.delta) <= cfg.max_delta_dollars + 1e-6
    assert abs(g.gamma) <= cfg.max_gamma_dollars + 1e-6
    assert abs(g.vega) <= cfg.max_vega_dollars + 1e-6


def test_some_orders_get_through():
    """Guard against a vacuous property: generous limits approve a plain stream."""
    cfg = RiskConfig(allow_uncovered_shorts=True)
    desk = run(cfg, [("order", i % 4, Side.BUY, 1, 5.0, OrderPurpose.SIGNAL) for i in range(6)], True)
    assert len(desk.sent) == 6 and desk.book.total_option_contracts == 6
