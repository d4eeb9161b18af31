"""The account at the practice gateway: positions with their average cost, account values, P&L, and the position,
portfolio and account messages (streamed to the clients that subscribed).

Average-cost accounting is the one rule the book and the journal share (`domain.positions.trade`); IB's realized
P&L in a commission report also takes off the commission of the closing fill, so the gateway's realized figure does.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from workstation.domain import Contract, Fill, Position, SecType
from workstation.domain.positions import trade
from workstation.sim.gateway import protocol as P
from workstation.sim.gateway.catalog import wire_of
from workstation.sim.world import SimWorld

if TYPE_CHECKING:
    from workstation.sim.gateway.session import Handler, Session


class AccountBook:
    """Positions, average costs and realized P&L of the gateway's one account."""

    def __init__(self, world: SimWorld, sessions: dict[int, Session], account: str, capital: float) -> None:
        self.world = world
        self.sessions = sessions
        self.account = account
        self.capital = capital
        self.held: dict[int, Position] = {}              # contract id -> position at average cost
        self.contracts: dict[int, Contract] = {}
        self.realized_by_fill: dict[str, float | None] = {}   # fill id -> realized $ (None: an opening fill)

    def book_fill(self, fill: Fill) -> None:
        """Average-cost book: avgCost for positions, realized P&L (after commission) for commission reports."""
        c = fill.contract
        self.contracts[c.contract_id] = c
        before = self.held.get(c.contract_id)
        closing = before is not None and before.quantity * fill.signed_quantity < 0
        after, made = trade(before, c, fill.signed_quantity, fill.price)
        if closing:
            made -= fill.commission
            after = replace(after, realized_pnl=before.realized_pnl + made)
        self.held[c.contract_id] = after
        self.realized_by_fill[fill.fill_id] = made if closing else None

    def _contract(self, con_id: int) -> Contract:
        return self.contracts.get(con_id) or self.world.exchange.contracts[con_id]

    def _avg_cost(self, con_id: int) -> float:
        p = self.held.get(con_id)
        return p.avg_cost if p is not None else 0.0

    def positions(self) -> dict[int, int]:
        return dict(self.world.exchange.positions)

    def position_message(self, con_id: int, qty: int) -> list:
        c = self.contracts.get(con_id) or self.world.exchange.contracts.get(con_id)
        return P.position(self.account, wire_of(c), float(qty), round(self._avg_cost(con_id) * c.multiplier, 6))

    def broadcast_position(self, con_id: int) -> None:
        qty = self.world.exchange.positions.get(con_id, 0)
        for s in list(self.sessions.values()):
            if s.positions_sub:
                s.send(self.position_message(con_id, qty))
            if s.account_sub:
                s.send(self._portfolio_message(con_id, qty))
                for msg in self._value_messages():
                    s.send(msg)

    def _mark(self, c: Contract) -> float:
        market = self.world.market
        if c.sec_type is SecType.FUTURE:
            q = market.future_quote(market.listing.future_by_id(c.contract_id))
            return 0.5 * (q.bid + q.ask)
        row = market.listing.row_of(c.contract_id)
        if row is None:
            return 0.0
        q = market.quote_rows(np.array([row]))
        bid, ask = float(q.bid[0]), float(q.ask[0])
        return 0.5 * (bid + ask) if bid > 0 else ask / 2

    def _portfolio_message(self, con_id: int, qty: int) -> list:
        c = self._contract(con_id)
        p = self.held.get(con_id)
        avg, realized = (p.avg_cost, p.realized_pnl) if p is not None else (0.0, 0.0)
        mark = self._mark(c)
        value = qty * mark * c.multiplier
        return P.portfolio_value(wire_of(c), float(qty), round(mark, 4), round(value, 2),
                                 round(avg * c.multiplier, 4), round(value - qty * avg * c.multiplier, 2),
                                 round(realized, 2), self.account)

    def pnl(self) -> tuple[float, float, float]:
        """(daily, unrealized, realized) in dollars since the gateway started."""
        realized = sum(p.realized_pnl for p in self.held.values())
        unrealized = 0.0
        for cid, qty in self.world.exchange.positions.items():
            c = self._contract(cid)
            unrealized += qty * (self._mark(c) - self._avg_cost(cid)) * c.multiplier
        return round(realized + unrealized, 2), round(unrealized, 2), round(realized, 2)

    def account_values(self) -> list[tuple[str, str, str]]:
        cash = self.capital + self.world.exchange.cash
        value = 0.0
        for cid, qty in self.world.exchange.positions.items():
            c = self._contract(cid)
            if c.sec_type is not SecType.FUTURE:
                value += qty * self._mark(c) * c.multiplier
        daily, unrealized, realized = self.pnl()
        net = cash + value          # futures: their P&L is not marked into cash here (a simplification)
        usd = "USD"
        return [("AccountCode", self.account, ""), ("AccountType", "INDIVIDUAL", ""),
                ("NetLiquidation", f"{net:.2f}", usd), ("TotalCashValue", f"{cash:.2f}", usd),
                ("AvailableFunds", f"{net:.2f}", usd), ("ExcessLiquidity", f"{net:.2f}", usd),
                ("BuyingPower", f"{net:.2f}", usd), ("InitMarginReq", "0.00", usd),
                ("MaintMarginReq", "0.00", usd), ("GrossPositionValue", f"{abs(value):.2f}", usd),
                ("UnrealizedPnL", f"{unrealized:.2f}", usd), ("RealizedPnL", f"{realized:.2f}", usd),
                ("Currency", usd, usd)]

    def _value_messages(self) -> list[list]:
        return [P.account_value(k, v, ccy, self.account) for k, v, ccy in self.account_values()]

    def account_messages(self) -> list[list]:
        msgs = self._value_messages()
        for cid, qty in self.world.exchange.positions.items():
            msgs.append(self._portfolio_message(cid, qty))
        msgs.append(P.account_time(self.world.clock.now()))
        return msgs


# ------------------------------------------------------------------------------------- handlers
def positions(s: Session, f: list[str]) -> None:                   # reqPositions
    s.positions_sub = True
    book = s.gw.account_book
    for cid, qty in book.positions().items():
        s.send(book.position_message(cid, qty))
    s.send(P.position_end())


def cancel_positions(s: Session, f: list[str]) -> None:            # cancelPositions
    s.positions_sub = False


def account_updates(s: Session, f: list[str]) -> None:             # reqAccountUpdates [6, 2, subscribe, acct]
    s.account_sub = f[2] == "1"
    if s.account_sub:
        for msg in s.gw.account_book.account_messages():
            s.send(msg)
        s.send(P.account_download_end(s.gw.account))


def account_updates_multi(s: Session, f: list[str]) -> None:
    """reqAccountUpdatesMulti [76, 1, reqId, acct, model, ledger]"""
    req_id = int(f[2])
    for key, value, ccy in s.gw.account_book.account_values():
        s.send(P.account_update_multi(req_id, s.gw.account, f[4], key, value, ccy))
    s.send(P.account_update_multi_end(req_id))


def account_summary(s: Session, f: list[str]) -> None:             # reqAccountSummary [62, 1, reqId, group, tags]
    req_id = int(f[2])
    tags = {t.strip() for t in f[4].split(",") if t.strip()}
    for key, value, ccy in s.gw.account_book.account_values():
        if not tags or key in tags or "All" in tags:
            s.send(P.account_summary(req_id, s.gw.account, key, value, ccy))
    s.send(P.account_summary_end(req_id))


def pnl(s: Session, f: list[str]) -> None:                         # reqPnL [92, reqId, acct, model]
    req_id = int(f[1])
    s.pnl_subs.add(req_id)
    s.send(P.pnl(req_id, *s.gw.account_book.pnl()))


def cancel_pnl(s: Session, f: list[str]) -> None:                  # cancelPnL
    s.pnl_subs.discard(int(f[1]))


def ignored(s: Session, f: list[str]) -> None:                     # cancelAccountUpdatesMulti, cancelAccountSummary
    pass


HANDLERS: dict[int, Handler] = {
    61: positions, 64: cancel_positions, 6: account_updates, 76: account_updates_multi, 77: ignored,
    62: account_summary, 63: ignored, 92: pnl, 93: cancel_pnl}
