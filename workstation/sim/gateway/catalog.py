"""What the practice gateway lists: the SPX/XSP indices, their options (SPX, SPXW, XSP classes) and the hedge future,
as TWS contracts. Option and future contract ids are the simulator's; the index ids are IB's own (SPX 416904).

Searches work like TWS contract-details requests: every field given must match, the rest is free, so
`Option('SPX', '20251017', tradingClass='SPXW', exchange='SMART')` returns every SPXW option of that day.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np

from workstation.domain import Contract, SecType
from workstation.sim.listing import Listing
from workstation.sim.gateway.protocol import WireContract

INDEX_IDS = {"SPX": 416904, "XSP": 13455763}
INDEX_NAMES = {"SPX": "S&P 500 Stock Index", "XSP": "Mini-SPX Index"}
OPTION_EXCHANGES = ("SMART", "CBOE")
MAX_DETAILS = 20_000


def _ymd(d) -> str:
    return np.datetime64(d, "D").astype(date).strftime("%Y%m%d")


def index_contract(symbol: str) -> WireContract:
    return WireContract(INDEX_IDS[symbol], symbol, "IND", "", 0.0, "", "", "CBOE", "CBOE", "USD", symbol, symbol)


def future_wire(fut: Contract, exchange: str = "CME") -> WireContract:
    assert fut.expiry is not None
    code = "HMUZ"[(fut.expiry.month - 1) // 3]
    return WireContract(fut.contract_id, fut.symbol, "FUT", fut.expiry.strftime("%Y%m%d"), 0.0, "",
                        f"{fut.multiplier:g}", exchange, "CME", "USD", f"{fut.symbol}{code}{fut.expiry.year % 10}",
                        fut.trading_class or fut.symbol)


def option_wire(listing: Listing, row: int, exchange: str = "SMART") -> WireContract:
    c = listing.contract(row)
    return WireContract(c.contract_id, c.symbol, "OPT", c.expiry.strftime("%Y%m%d"), c.strike, c.right.value,
                        "100", exchange, "CBOE", "USD", c.local_symbol, c.trading_class)


def wire_of(c: Contract, exchange: str = "") -> WireContract:
    """The wire form of a domain contract (positions and executions)."""
    if c.sec_type is SecType.FUTURE:
        return future_wire(c, exchange or "CME")
    if c.sec_type is SecType.INDEX:
        return index_contract(c.symbol)
    assert c.expiry is not None and c.right is not None and c.strike is not None
    return WireContract(c.contract_id, c.symbol, "OPT", c.expiry.strftime("%Y%m%d"), c.strike, c.right.value,
                        f"{c.multiplier:g}", exchange or "SMART", "CBOE", "USD", c.local_symbol, c.trading_class)


class Catalog:
    """Lookups over the listing of the moment (the listing changes at New York midnight)."""

    def __init__(self, listing_source) -> None:
        self._listing_source = listing_source     # () -> Listing

    @property
    def listing(self) -> Listing:
        return self._listing_source()

    def by_id(self, con_id: int) -> tuple[str, object] | None:
        """('IND', symbol) | ('FUT', Contract) | ('OPT', row) for a contract id, None when unknown."""
        for sym, cid in INDEX_IDS.items():
            if cid == con_id:
                return "IND", sym
        lst = self.listing
        fut = lst.future_by_id(con_id)
        if fut is not None:
            return "FUT", fut
        row = lst.row_of(con_id)
        return ("OPT", row) if row is not None else None

    def domain_contract(self, con_id: int) -> Contract | None:
        """The domain Contract the paper exchange trades (options and the future)."""
        found = self.by_id(con_id)
        if found is None or found[0] == "IND":
            return None
        kind, value = found
        return value if kind == "FUT" else self.listing.contract(int(value))

    def wire(self, con_id: int, exchange: str = "") -> WireContract | None:
        found = self.by_id(con_id)
        if found is None:
            return None
        kind, value = found
        if kind == "IND":
            return index_contract(str(value))
        if kind == "FUT":
            return future_wire(value, exchange or "CME")
        return option_wire(self.listing, int(value), exchange or "SMART")

    def search(self, q: WireContract) -> list[WireContract]:
        """Every listed contract matching the request's given fields (TWS contract-details semantics)."""
        if q.con_id:
            c = self.wire(q.con_id, q.exchange if q.exchange in OPTION_EXCHANGES + ("CME",) else "")
            if c is None or (q.sec_type and q.sec_type != c.sec_type):
                return []
            return [c]
        sec = q.sec_type
        symbol = q.symbol.upper()
        if sec == "IND":
            return [index_contract(symbol)] if symbol in INDEX_IDS and q.exchange in ("", "CBOE", "SMART") else []
        if sec == "FUT":
            if not (symbol or q.local_symbol) or q.exchange not in ("", "CME", "GLOBEX"):
                return []
            return [future_wire(fut) for fut in self.listing.futures
                    if symbol in (fut.symbol, "") and (not q.trading_class or q.trading_class == fut.trading_class)
                    and (not q.last_trade_date or fut.expiry.strftime("%Y%m%d").startswith(q.last_trade_date))
                    and (not q.local_symbol or q.local_symbol == future_wire(fut).local_symbol)]
        if sec == "OPT":
            return self._search_options(q)
        return []

    def _search_options(self, q: WireContract) -> list[WireContract]:
        lst = self.listing
        if q.exchange and q.exchange not in OPTION_EXCHANGES:
            return []
        mask = np.ones(len(lst), dtype=bool)
        if q.symbol:
            mask &= lst.underlying == q.symbol.upper()
        if q.trading_class:
            mask &= lst.trading_class == q.trading_class.upper()
        if q.last_trade_date:
            ymd = np.array([_ymd(e) for e in np.unique(lst.expiry)])
            keep = np.unique(lst.expiry)[np.char.startswith(ymd, q.last_trade_date)]
            mask &= np.isin(lst.expiry, keep)
        if q.strike:
            mask &= np.abs(lst.strike - q.strike) < 1e-6
        if q.right in ("C", "P"):
            mask &= lst.is_call == (q.right == "C")
        if q.multiplier and q.multiplier not in ("100", "100.0"):
            return []
        rows = np.flatnonzero(mask)[:MAX_DETAILS]
        if q.local_symbol:
            rows = [r for r in rows if lst.contract(int(r)).local_symbol.replace(" ", "") ==
                    q.local_symbol.replace(" ", "")]
        exchange = q.exchange or "SMART"
        return [option_wire(lst, int(r), exchange) for r in rows]

    def option_chains(self, symbol: str) -> list[tuple[str, list[str], list[float]]]:
        """(trading class, expiries 'YYYYMMDD', strikes) per class of `symbol` — strikes are the union over expiries,
        as in TWS, so not every (expiry, strike) pair exists."""
        lst = self.listing
        out = []
        mask_sym = lst.underlying == symbol.upper()
        for cls in sorted(set(lst.trading_class[mask_sym].tolist())):
            m = mask_sym & (lst.trading_class == cls)
            expiries = [_ymd(e) for e in np.unique(lst.expiry[m])]
            strikes = [float(k) for k in np.unique(lst.strike[m])]
            out.append((cls, expiries, strikes))
        return out

    def with_exchange(self, c: WireContract, exchange: str) -> WireContract:
        return replace(c, exchange=exchange)
