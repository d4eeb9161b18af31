"""Market data of the practice gateway: contract definitions (details, option chains), the market-data lines a
client opens (streaming or snapshot, live or delayed) and the tick messages they carry.

Limits as TWS has them: `max_lines` streaming lines per client (snapshots hold none); live data refused with 354
when the account is not entitled (`faults.live_entitled`), delayed tick ids then; while IB is lost (1100) or the
market-data farm is down (2103) a new line stays silent until the data are back.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np

from workstation.domain.contracts import index_scale
from workstation.domain.ticks import FUTURE_TICK
from workstation.market.ib_codes import Code
from workstation.sim.gateway import protocol as P
from workstation.sim.gateway.catalog import INDEX_IDS, INDEX_NAMES, OPTION_EXCHANGES
from workstation.sim.gateway.protocol import WireContract
from workstation.sim.listing import FUTURES
from workstation.sim.world import SimWorld

if TYPE_CHECKING:
    from workstation.sim.gateway.session import Handler, Session

LIVE_TICKS = {"bid": 1, "ask": 2, "last": 4, "bid_size": 0, "ask_size": 3, "close": 9, "model": 13}
DELAYED_TICKS = {"bid": 66, "ask": 67, "last": 68, "bid_size": 69, "ask_size": 70, "close": 75, "model": 83}
NO_DEFINITION = "No security definition has been found for the request"


@dataclass
class Line:
    """One market-data line a client opened."""

    req_id: int
    con_id: int
    kind: str              # IND | FUT | OPT
    key: object            # index symbol, future Contract, listing row
    delayed: bool
    sent: dict = field(default_factory=dict)
    dead: bool = False                   # killed by a farm break: never ticks again (the client must resubscribe)
    opened: float = 0.0                  # monotonic time of the request


class MarketData:
    """Tick and contract-details messages from the simulated market at the simulated time."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world

    def tick_messages(self, lines: list[Line], changed_only: bool = False) -> list[list]:
        """Tick messages for `lines` at the current simulated time (only changed values when `changed_only`)."""
        market = self.world.market
        out: list[list] = []
        rows = [int(ln.key) for ln in lines if ln.kind == "OPT"]
        quotes = market.quote_rows(np.array(rows, dtype=np.int64)) if rows else None
        by_row = {r: i for i, r in enumerate(rows)}
        lst = market.listing
        for ln in lines:
            ticks = DELAYED_TICKS if ln.delayed else LIVE_TICKS
            values: dict[str, tuple] = {}
            if ln.kind == "IND":
                scale = index_scale(ln.key)
                values["last"] = (round(market.spot * scale, 2),)
                opening = market.prints.get(market.trade_date, {}).get("open", market.spot)
                values["close"] = (round(opening * scale, 2),)
            elif ln.kind == "FUT":
                fq = market.future_quote(lst.future_by_id(ln.con_id))
                values["bid"] = (fq.bid, fq.bid_size)
                values["ask"] = (fq.ask, fq.ask_size)
            elif ln.kind == "BAG":
                values["bid"], values["ask"] = self.bag_quote(ln.key)
            else:
                if int(ln.key) >= len(lst) or int(lst.contract_id[int(ln.key)]) != ln.con_id:
                    row = lst.row_of(ln.con_id)            # a new listing (midnight): find the row again
                    if row is None:
                        continue
                    ln.key = row
                    quotes = market.quote_rows(np.array([row]))
                    by_row = {row: 0}
                i = by_row[int(ln.key)]
                bid, ask = float(quotes.bid[i]), float(quotes.ask[i])
                bsz, asz = int(quotes.bid_size[i]), int(quotes.ask_size[i])
                values["bid"] = (bid, bsz) if bid > 0 and bsz > 0 else (-1.0, 0)
                values["ask"] = (ask, asz) if ask > 0 and asz > 0 else (-1.0, 0)
                row = int(ln.key)
                und = float(market.spot * lst.scale[row])
                delta = _delta(quotes, i, float(lst.strike[row]), bool(lst.is_call[row]))
                values["model"] = (round(float(quotes.vol[i]), 6), round(delta, 6), round(float(quotes.fair[i]), 4),
                                   round(und, 2))
            for name, value in values.items():
                if changed_only and ln.sent.get(name) == value:
                    continue
                ln.sent[name] = value
                tick = ticks[name]
                if name in ("bid", "ask"):
                    out.append(P.tick_price(ln.req_id, tick, value[0], value[1], 0))
                    out.append(P.tick_size(ln.req_id, ticks[f"{name}_size"], value[1]))
                elif name == "model":
                    iv, delta, price, und = value
                    out.append(P.tick_option_computation(ln.req_id, tick, iv, delta, price, und))
                else:
                    out.append(P.tick_price(ln.req_id, tick, value[0], 0, 0))
        return out

    def bag_quote(self, legs) -> tuple[tuple[float, int], tuple[float, int]]:
        """A combo's net (bid, size) and (ask, size) from its legs' quotes now ((-1, 0): no price)."""
        from workstation.sim.gateway.combos import net_quote
        lst = self.world.market.listing
        rows = [lst.row_of(leg.con_id) for leg in legs]
        if any(r is None for r in rows):
            return (-1.0, 0), (-1.0, 0)
        q = self.world.market.quote_rows(np.array(rows, dtype=np.int64))
        return net_quote(legs, [float(x) for x in q.bid], [float(x) for x in q.ask],
                         [int(x) for x in q.bid_size], [int(x) for x in q.ask_size])

    def details_message(self, req_id: int, c: WireContract) -> list:
        hours = self._hours()
        if c.sec_type == "IND":
            return P.contract_details(
                req_id, c, market_name=c.symbol, min_tick=0.01, order_types="", valid_exchanges="CBOE",
                under_con_id=0, long_name=INDEX_NAMES[c.symbol], contract_month="", time_zone="US/Central",
                trading_hours=hours, liquid_hours=hours, under_symbol="", under_sec_type="", real_expiration="")
        if c.sec_type == "FUT":
            return P.contract_details(
                req_id, c, market_name=c.trading_class, min_tick=FUTURE_TICK, order_types="LMT,MKT",
                valid_exchanges="CME", under_con_id=INDEX_IDS["SPX"], long_name=FUTURES[c.symbol][1],
                contract_month=c.last_trade_date[:6], time_zone="US/Central", trading_hours=hours,
                liquid_hours=hours, under_symbol=c.symbol, under_sec_type="IND", real_expiration=c.last_trade_date)
        return P.contract_details(
            req_id, c, market_name=c.trading_class, min_tick=0.05, order_types="LMT,MKT",
            valid_exchanges="SMART,CBOE", under_con_id=INDEX_IDS[c.symbol], long_name=INDEX_NAMES[c.symbol],
            contract_month=c.last_trade_date[:6], time_zone="US/Central", trading_hours=hours,
            liquid_hours=hours, under_symbol=c.symbol, under_sec_type="IND", real_expiration=c.last_trade_date)

    def _hours(self) -> str:
        d = self.now().astimezone(ZoneInfo("America/Chicago")).strftime("%Y%m%d")
        return f"{d}:0830-{d}:1500"

    def now(self) -> datetime:
        return self.world.clock.now()


def _delta(q, i: int, strike: float, is_call: bool) -> float:
    """Forward Black-76 delta of row i of `quote_rows` output (for the model-greeks tick)."""
    vol, years, fwd = float(q.vol[i]), float(q.years[i]), float(q.forward[i])
    sd = vol * math.sqrt(max(years, 1e-9))
    d1 = (math.log(fwd / strike) + 0.5 * sd * sd) / sd
    n = 0.5 * (1.0 + math.erf(d1 / math.sqrt(2.0)))
    return n if is_call else n - 1.0


# ------------------------------------------------------------------------------------- handlers
def market_data_type(s: Session, f: list[str]) -> None:      # reqMarketDataType [59, 1, type]
    t = int(f[2])
    if t not in (1, 2, 3, 4):
        s.error(-1, Code.VALIDATION_ERROR, f"Error validating request: market data type {t} must be 1-4")
        return
    s.md_type = t


def contract_details(s: Session, f: list[str]) -> None:      # reqContractDetails [9, 8, reqId, C12, ...]
    req_id = int(f[2])
    found = s.gw.catalog.search(WireContract.parse(f[3:15]))
    if not found:
        s.error(req_id, Code.NO_SECURITY_DEFINITION, NO_DEFINITION)
        return
    for c in found:
        s.send(s.gw.market_data.details_message(req_id, c))
    s.send(P.contract_details_end(req_id))


def option_params(s: Session, f: list[str]) -> None:
    """reqSecDefOptParams [78, reqId, symbol, futFopExchange, secType, conId]"""
    req_id, symbol = int(f[1]), f[2].upper()
    underlyings = s.gw.world.market.underlyings
    if symbol in INDEX_IDS and symbol in underlyings or (symbol == "XSP" and "XSP" in underlyings):
        for cls, expiries, strikes in s.gw.catalog.option_chains(symbol):
            for exchange in OPTION_EXCHANGES:
                s.send(P.sec_def_opt_params(req_id, exchange, INDEX_IDS[symbol], cls, "100", expiries, strikes))
    s.send(P.sec_def_opt_params_end(req_id))


def open_line(s: Session, f: list[str]) -> None:
    """reqMktData [1, 11, reqId, C12, dnc, ticks, snapshot, regSnap, opts]"""
    gw = s.gw
    req_id = int(f[2])
    q = WireContract.parse(f[3:15])
    snapshot = f[17] == "1" if len(f) > 17 else False
    if req_id in s.lines:
        s.error(req_id, Code.DUPLICATE_TICKER, f"Error processing request: duplicate ticker id {req_id}")
        return
    if q.sec_type == "BAG":                 # a combo: quoted from its legs (reqMktData carries 4 fields a leg)
        from workstation.sim.gateway.combos import SMART_COMBO_CON_ID, parse_legs
        legs, at = parse_legs(f, 15, 4)
        at += 4 if f[at] == "1" else 1      # a delta-neutral block, or none
        snapshot = f[at + 1] == "1" if len(f) > at + 1 else False
        known = [gw.catalog.by_id(leg.con_id) for leg in legs]
        if not legs or any(k is None or k[0] != "OPT" for k in known):
            s.error(req_id, Code.NO_SECURITY_DEFINITION, NO_DEFINITION)
            return
        found, kind, key = [WireContract(SMART_COMBO_CON_ID)], "BAG", legs
    else:
        found = gw.catalog.search(q)
        if len(found) != 1:
            s.error(req_id, Code.NO_SECURITY_DEFINITION, NO_DEFINITION)
            return
        kind, key = gw.catalog.by_id(found[0].con_id)
    delayed = not gw.faults.live_entitled
    if delayed and s.md_type in (1, 2):
        s.error(req_id, Code.NOT_SUBSCRIBED,
                "Requested market data is not subscribed. Delayed market data is available.")
        return
    if not snapshot and len(s.lines) >= gw.max_lines:
        s.error(req_id, Code.MAX_TICKERS, "Max number of tickers has been reached")
        return
    line = Line(req_id, found[0].con_id, kind, key, delayed, opened=time.monotonic())
    if not snapshot and kind in ("IND", "FUT"):
        gw.stream_requests.append((time.monotonic(), kind))
    if gw.faults.ib_lost or gw.faults.farm_down:
        if not snapshot:                # silent until the data are back; snapshots go unanswered
            s.lines[req_id] = line
        return
    s.send(P.market_data_type(req_id, 3 if delayed else 1))
    for msg in gw.market_data.tick_messages([line]):
        s.send(msg)
    if snapshot:
        s.send(P.tick_snapshot_end(req_id))
    else:
        s.lines[req_id] = line


def close_line(s: Session, f: list[str]) -> None:           # cancelMktData [2, 2, reqId]
    s.lines.pop(int(f[2]), None)


HANDLERS: dict[int, Handler] = {
    59: market_data_type, 9: contract_details, 78: option_params, 1: open_line, 2: close_line}
