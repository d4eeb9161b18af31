"""Exits: close positions on convergence, stop-loss, time stop or the days-before-expiry rule; remember when
and why each position was entered (the exit rules read it). Packages bought as combos are closed as combos
(`package_exits`); the single-option rules leave their legs alone."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable

from ..config import Settings
from ..domain import Fill, OrderPurpose, SecType, Side
from ..domain.combos import ComboOrder
from ..execution.orders import OrderManager
from ..portfolio.book import Book, trading_day_of
from ..strategy.signals import SignalModel
from .order_desk import OrderDesk
from .package_exits import HeldPackage, PackageBook, closing_order, package_exit_reason, package_key

log = logging.getLogger(__name__)


@dataclass
class Entry:
    """When and why we got into a position (for the exit rules)."""

    opened_at: datetime
    from_signal: bool
    usual_residual: float = math.nan    # the contract's usual IV residual when we entered (vol points)


class ExitDesk:
    """The exit rules over the book, each exit an order through the order desk (sliced to the order limits)."""

    def __init__(self, settings: Callable[[], Settings], book: Book, orders: OrderManager, desk: OrderDesk,
                 signal_model: SignalModel) -> None:
        self._settings, self.book, self.orders, self.desk = settings, book, orders, desk
        self.signal_model = signal_model
        self.entries: dict[int, Entry] = {}
        self.packages = PackageBook(signal_model.usual_residual)

    def recovered(self, fills: Iterable[Fill], combo_orders: Iterable[ComboOrder] = ()) -> None:
        """Entries of the positions rebuilt from the journal (their reason is not known: not from a signal), and
        the packages held (from the journal's combo orders and their leg fills)."""
        fills = list(fills)
        self.packages.recovered(combo_orders, fills)
        for fill in fills:
            cid = fill.contract.contract_id
            if self.book.quantity(cid) and cid not in self.entries:
                self.entries[cid] = Entry(fill.timestamp, False)

    def filled(self, fill: Fill, before: int, from_signal: bool) -> None:
        """A fill moved a position from `before`: a new or flipped position is a new entry; flat, none."""
        cid = fill.contract.contract_id
        after = self.book.quantity(cid)
        if after == 0:
            self.entries.pop(cid, None)
        elif before == 0 or (before > 0) != (after > 0):
            self.entries[cid] = Entry(fill.timestamp, from_signal, self.signal_model.usual_residual(cid))

    def _reason(self, cid: int, now: datetime) -> str:
        """Why the position in `cid` should be closed now ('' when it should not)."""
        cfg = self._settings().signals
        pos = self.book.positions[cid]
        entry = self.entries.get(cid)
        days_left = (pos.contract.expiry - trading_day_of(now)).days if pos.contract.expiry else 99
        unrealized = pos.unrealized_pnl(self.book.mark_of(cid))
        if days_left < cfg.close_days_before_expiry:
            return f"{days_left} day(s) to expiry"
        if unrealized < -cfg.stop_loss_dollars:
            return f"stop-loss: {unrealized:,.0f} $"
        if entry and (now - entry.opened_at).total_seconds() > cfg.time_stop_minutes * 60:
            return "time stop"
        if entry and entry.from_signal and (now - entry.opened_at).total_seconds() > 0:
            gap = self.signal_model.residual(cid) - entry.usual_residual
            if math.isfinite(gap) and abs(gap) < cfg.exit_converged_vol:
                return f"converged ({gap:+.2f} vol pts from its usual level)"
        return ""

    def package_filled(self, order: ComboOrder, fill: Fill) -> None:
        """A leg of one of our combos filled (journaled and booked): the packages held move."""
        self.packages.fill(order, fill)

    def run(self, now: datetime) -> None:
        """Close what the rules say to close (a denied exit waits `risk.retry_denied_s` before it is retried):
        packages as packages first, then single options outside any package."""
        for held in self.packages.dissolve_broken(self.book):
            # its legs already have entries (every fill, a combo's legs too, passed through `filled`/`recovered`)
            log.info("package %s no longer held whole: its legs are single positions now", held.combo.description)
        for held in list(self.packages.held.values()):
            self._close_package(held, now)
        in_packages = self.packages.legs()
        for cid, pos in list(self.book.positions.items()):
            if (not pos.quantity or pos.contract.sec_type is not SecType.OPTION or self.orders.working_for(cid)
                    or cid in in_packages):
                continue
            reason = self._reason(cid, now)
            if not reason or not self.desk.may_retry(("exit", cid), now):
                continue
            log.info("exit %s: %s", pos.contract.description, reason)
            side = Side.SELL if pos.quantity > 0 else Side.BUY
            pv = self.desk.slice_and_route(pos.contract, side, abs(pos.quantity), None, OrderPurpose.EXIT,
                                           self.book.mark_of(cid))
            if pv.order is not None and not pv.sent:
                self.desk.denied(("exit", cid), now)

    def _close_package(self, held: HeldPackage, now: datetime) -> None:
        """One combo order closing `held` when a rule says so (none while a closing order works)."""
        combos = self.desk.combos
        key = package_key(held.combo)
        if combos is None or any(package_key(o.combo) == key and o.purpose is OrderPurpose.EXIT
                                 for o in combos.working.values()):
            return
        reason = package_exit_reason(held, self.book, self._settings().signals, now, self.signal_model.residual)
        if not reason or not self.desk.may_retry(("exit", key), now):
            return
        quotes = [self.desk.market.market_for(leg.contract) for leg in held.combo.legs]
        close = closing_order(held, [q.bid if q else float("nan") for q in quotes],
                              [q.ask if q else float("nan") for q in quotes])
        if close is None:
            log.info("exit %s: %s; waiting for two-sided quotes on every leg", held.combo.description, reason)
            return
        side, packages, limit = close
        log.info("exit %s: %s", held.combo.description, reason)
        decision = self.desk.send_combo(held.combo, side, packages, limit, OrderPurpose.EXIT)
        if isinstance(decision, str) or not decision.approved:
            self.desk.denied(("exit", key), now)
