"""Packages held as packages: a structure bought as a combo (a signal's vertical or calendar, an arbitrage
butterfly, the trader's own combo) is closed as one combo, never leg by leg — a leg closed alone would leave the
other naked. The exit rules are the single-option rules read on the package: days to its front expiry, its
P&L against the stop-loss, the time stop, and (for a signal's package) every leg's residual back within
`exit_converged_vol` of its level at entry. A package whose legs the book no longer holds (the trader closed a
leg by hand) is dissolved: its remaining legs fall back to the single-option rules."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable

from ..config import SignalsConfig
from ..domain import Fill, OrderPurpose, Side
from ..domain.combos import Combo, ComboOrder, marketable_limit
from ..portfolio.book import Book, trading_day_of

log = logging.getLogger(__name__)

LegKey = tuple[tuple[int, int, str], ...]


def package_key(combo: Combo) -> LegKey:
    """Packages with the same legs, ratios and sides are one holding, whichever order opened them."""
    return tuple((leg.contract.contract_id, leg.ratio, leg.side.value) for leg in combo.legs)


@dataclass
class HeldPackage:
    """`quantity` packages of `combo` held long (> 0: bought as the combo's legs say) or short (< 0)."""

    combo: Combo
    quantity: int = 0
    opened_at: datetime | None = None
    from_signal: bool = False
    cost: float = 0.0             # dollars paid for the packages held at their fill prices (a credit < 0)
    usual: dict[int, float] = field(default_factory=dict)   # each leg's usual IV residual at entry (vol points)

    def pnl(self, mark: Callable[[int], float]) -> float:
        """Dollars: the legs held at their marks less what they cost."""
        value = sum(leg.weight * mark(leg.contract.contract_id) for leg in self.combo.legs)
        return value * self.quantity * self.combo.multiplier - self.cost


@dataclass
class _Filling:
    """One combo order's leg fills so far: contracts and points paid per leg, whole packages booked."""

    order: ComboOrder
    contracts: dict[int, int] = field(default_factory=dict)
    points: dict[int, float] = field(default_factory=dict)
    booked: int = 0

    def whole(self) -> int:
        return min(self.contracts.get(leg.contract.contract_id, 0) // leg.ratio for leg in self.order.combo.legs)

    def net_price(self) -> float:
        """Points per package bought, at the legs' average fill prices."""
        return sum(leg.weight * self.points[leg.contract.contract_id] / self.contracts[leg.contract.contract_id]
                   for leg in self.order.combo.legs)


class PackageBook:
    """The packages held, built from combo fills (live, and from the journal after a restart)."""

    def __init__(self, usual_residual: Callable[[int], float]) -> None:
        self.usual_residual = usual_residual
        self.held: dict[LegKey, HeldPackage] = {}
        self._filling: dict[str, _Filling] = {}
        self._counted: set[str] = set()          # fill ids already in the holdings (a replayed fill is not new)

    def fill(self, order: ComboOrder, fill: Fill, live: bool = True) -> None:
        """One leg's fill of `order`: the holding moves by whole packages, once every leg has filled its share."""
        if fill.fill_id in self._counted:
            return
        self._counted.add(fill.fill_id)
        f = self._filling.setdefault(order.client_order_id, _Filling(order))
        cid = fill.contract.contract_id
        f.contracts[cid] = f.contracts.get(cid, 0) + fill.quantity
        f.points[cid] = f.points.get(cid, 0.0) + fill.quantity * fill.price
        whole = f.whole()
        if whole > f.booked:
            self._move(order, (whole - f.booked) * order.side.sign, f.net_price(), fill.timestamp, live)
            f.booked = whole
        if f.booked >= order.quantity:            # done: a replayed fill of it is caught by its fill id
            del self._filling[order.client_order_id]

    def _move(self, order: ComboOrder, packages: int, net: float, at: datetime, live: bool) -> None:
        key = package_key(order.combo)
        held = self.held.setdefault(key, HeldPackage(order.combo))
        before, after = held.quantity, held.quantity + packages
        if after == 0:
            del self.held[key]
            return
        if before == 0 or (after > 0) != (before > 0):               # opened (or flipped through flat)
            held.opened_at = at
            held.from_signal = live and order.purpose is OrderPurpose.SIGNAL
            held.usual = {leg.contract.contract_id: self.usual_residual(leg.contract.contract_id) if live
                          else math.nan for leg in order.combo.legs}
            held.cost = after * net * order.combo.multiplier
        elif abs(after) > abs(before):
            held.cost += packages * net * order.combo.multiplier
        else:
            held.cost *= after / before
        held.quantity = after

    def recovered(self, orders: Iterable[ComboOrder], fills: Iterable[Fill]) -> None:
        """Rebuild the holdings from the journal's combo orders and fills (their entry residuals are unknown)."""
        by_id = {o.client_order_id: o for o in orders}
        for fill in sorted(fills, key=lambda f: f.timestamp):
            order = by_id.get(fill.client_order_id)
            if order is not None:
                self.fill(order, fill, live=False)

    def legs(self) -> set[int]:
        """Every contract some held package has a leg in (the single-option rules leave these alone)."""
        return {leg.contract.contract_id for p in self.held.values() for leg in p.combo.legs}

    def dissolve_broken(self, book: Book) -> list[HeldPackage]:
        """Drop the holdings the book no longer backs (a leg closed or cut by hand); returns them."""
        need: dict[int, int] = {}
        for p in self.held.values():
            for leg in p.combo.legs:
                cid = leg.contract.contract_id
                need[cid] = need.get(cid, 0) + leg.weight * p.quantity
        short = {cid for cid, n in need.items() if (book.quantity(cid) - n) * (1 if n > 0 else -1) < 0}
        broken = [p for p in self.held.values() if any(leg.contract.contract_id in short for leg in p.combo.legs)]
        for p in broken:
            del self.held[package_key(p.combo)]
        return broken


def package_exit_reason(p: HeldPackage, book: Book, cfg: SignalsConfig, now: datetime,
                        residual: Callable[[int], float]) -> str:
    """Why package `p` should be closed now ('' when it should not)."""
    days_left = (p.combo.front_expiry - trading_day_of(now)).days
    if days_left < cfg.close_days_before_expiry:
        return f"{days_left} day(s) to its front expiry"
    pnl = p.pnl(book.mark_of)
    if math.isfinite(pnl) and pnl < -cfg.stop_loss_dollars:
        return f"stop-loss: {pnl:,.0f} $ on the package"
    if p.opened_at is not None and (now - p.opened_at).total_seconds() > cfg.time_stop_minutes * 60:
        return "time stop"
    if p.from_signal and p.opened_at is not None and (now - p.opened_at).total_seconds() > 0:
        gaps = [abs(residual(cid) - usual) for cid, usual in p.usual.items()]
        gaps = [g for g in gaps if math.isfinite(g)]
        if gaps and max(gaps) < cfg.exit_converged_vol:
            return f"converged (every leg within {max(gaps):.2f} vol pts of its usual level)"
    return ""


def closing_order(p: HeldPackage, bid: list[float], ask: list[float]) -> tuple[Side, int, float] | None:
    """The combo order that closes `p` at the legs' quotes: (side, packages, net limit on the combo tick);
    None when a leg has no two-sided quote."""
    net_bid, net_ask = p.combo.net_quote(bid, ask)
    side = Side.SELL if p.quantity > 0 else Side.BUY
    net = net_bid if side is Side.SELL else net_ask
    if not math.isfinite(net):
        return None
    return side, abs(p.quantity), marketable_limit(net, side)
