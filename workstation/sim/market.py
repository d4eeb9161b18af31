"""The simulated SPX/XSP market: Heston index path, SSVI fair values, Cboe-like quotes and decaying mispricings.

`SimMarket` is a pure function of (seed, config, the times it is advanced to): the index moves on a fixed
one-second grid with its own random streams, so the same seed and the same clock give the same quotes.
Quotes are computed on demand for any set of listing rows (a chain snapshot, or one contract for the exchange),
from a `MarketState`: one instant of the market, frozen. The feed takes the state on the event loop's thread (where
the market advances) and computes a full-chain snapshot from it in a worker thread, while the paper exchange keeps
advancing the live market.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np

from workstation.domain import ChainSnapshot, Contract, Quote, settlement_instant
from workstation.domain.calendar import is_trading_day, session_bounds
from workstation.domain.contracts import index_scale
from workstation.domain.snapshot import NEW_YORK
from workstation.domain.ticks import FUTURE_TICK
from workstation.domain.ticks import SMALL_TICK as TICK_SMALL
from workstation.domain.ticks import option_tick_array as tick_for
from workstation.sim.clock import is_session_open
from workstation.sim.dynamics import (
    GRID_SECONDS,
    SECONDS_PER_YEAR,
    heston_path,
    open_mask,
)
from workstation.sim.listing import Listing, build_listing
from workstation.sim.smile import SmileParams, atm_total_variance, black76, ssvi_vol

MISPRICING_FLOOR = 0.0005         # mispricings below 0.05 vol points are forgotten
SPREAD_VOL = 0.0010               # ATM one-month bid/ask spread, in vol (0.1 vol points) before widening


@dataclass(frozen=True)
class RowQuotes:
    """Quotes of some listing rows at one instant (prices per unit of the index of each row)."""

    rows: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    fair: np.ndarray
    vol: np.ndarray          # quoted vol (fair smile + mispricing)
    fair_vol: np.ndarray     # smile vol without the mispricing
    forward: np.ndarray
    years: np.ndarray


@dataclass(frozen=True)
class SmileRows:
    """The fair smile at some listing rows, one instant: what a quote is built around."""

    years: np.ndarray
    scale: np.ndarray        # index units of the row (0.1 for XSP)
    strike: np.ndarray
    is_call: np.ndarray
    forward: np.ndarray
    discount: np.ndarray
    atm_w: np.ndarray        # ATM total variance of the row's expiry
    z: np.ndarray            # |log-moneyness| in ATM standard deviations
    fair_vol: np.ndarray


def quoted_spread(smile: SmileRows, price: np.ndarray, vega: np.ndarray) -> np.ndarray:
    """Cboe-like bid-ask width around `price` (before ticks): a vol spread, wider away from the money, on short
    expiries and in high vol, times vega; plus a share of the premium and a floor."""
    days = smile.years * 365.0
    atm_vol = np.sqrt(smile.atm_w / smile.years)
    spread_vol = SPREAD_VOL * (1.0 + 0.5 * np.minimum(smile.z, 8.0)) \
        * (1.0 + 0.5 / np.sqrt(np.maximum(days, 0.1))) * (atm_vol / 0.15)
    return spread_vol * vega + 0.002 * price + 0.04 * smile.scale


def parity_twin(contract_id: int) -> int:
    """The put of a call's strike and expiry, or the call of a put's (`listing.contract_id_for`'s last digit)."""
    return contract_id + 1 if contract_id % 10 == 1 else contract_id - 1


@dataclass(frozen=True)
class MarketState:
    """The market at one instant: what quotes, sizes and a snapshot are computed from (nothing in it changes)."""

    now: datetime
    spot: float
    var: float
    grid_epoch: int
    listing: Listing
    mispricings: dict[int, float]       # contract id -> vol offset at `now`


class SimMarket:
    """State of the simulated world: index level, variance, today's listing, active mispricings."""

    def __init__(self, cfg, start: datetime, smile: SmileParams | None = None) -> None:
        self.cfg = cfg
        self.smile = smile or SmileParams(rho=max(-0.95, min(0.0, cfg.rho)))
        seq = np.random.SeedSequence(cfg.seed)
        path_seq, arrival_seq, choice_seq = seq.spawn(3)
        self._path_rng = np.random.default_rng(path_seq)
        self._arrival_rng = np.random.default_rng(arrival_seq)
        self._choice_rng = np.random.default_rng(choice_seq)
        self.underlyings = tuple(cfg.underlyings)
        self._grid_epoch = math.floor(start.timestamp())       # last simulated grid second
        self.now = start.astimezone(timezone.utc)
        self.spot = float(cfg.spot)
        self.var = float(cfg.v0)
        self._mis: dict[int, tuple[float, float]] = {}          # contract id -> (epoch, vol offset then)
        self._draws: tuple[int, Listing, np.ndarray] | None = None   # (grid second, listing, size draws)
        self.prints: dict[date, dict[str, float]] = {}           # day -> {"open": S, "close": S}
        self._listing = build_listing(self.trade_date, self.spot, cfg.max_expiry_days, self.underlyings,
                                      cfg.listing == "full")
        if self.now == session_bounds(self.trade_date)[0]:       # started at the open: that is the opening print
            self.prints.setdefault(self.trade_date, {})["open"] = self.spot

    # ---------------------------------------------------------------------------------------- time
    @property
    def trade_date(self) -> date:
        return self.now.astimezone(NEW_YORK).date()

    @property
    def is_open(self) -> bool:
        return is_session_open(self.now, self.cfg.always_open)

    @property
    def listing(self) -> Listing:
        """Today's listing, built at New York midnight (or the start) around the index level of that moment."""
        return self._listing

    def advance_to(self, at: datetime) -> None:
        """Simulate the index and the mispricings up to `at` (a time in the past is ignored)."""
        if at <= self.now:
            return
        target = math.floor(at.timestamp())
        while True:
            midnight = datetime.combine(self.trade_date + timedelta(days=1), datetime.min.time(), tzinfo=NEW_YORK)
            stop = min(target, math.floor(midnight.timestamp()))
            n = int(stop - self._grid_epoch)
            if n > 0:
                self._simulate(n)
            if stop == target:
                break
            self.now = midnight.astimezone(timezone.utc)     # a new trade date: list its chain
            self._listing = build_listing(self.trade_date, self.spot, self.cfg.max_expiry_days,
                                          self.underlyings, self.cfg.listing == "full")
        self.now = max(self.now, at.astimezone(timezone.utc))

    def _simulate(self, n: int) -> None:
        cfg = self.cfg
        epochs = self._grid_epoch + np.arange(n, dtype=np.float64)           # step start times
        if cfg.always_open:
            moving = np.ones(n, dtype=np.bool_)
            boundaries = np.zeros(0)
        else:
            first = datetime.fromtimestamp(epochs[0], timezone.utc).date() - timedelta(days=1)
            last = datetime.fromtimestamp(epochs[-1], timezone.utc).date() + timedelta(days=1)
            days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
            boundaries = np.array([b.timestamp() for d in days if is_trading_day(d) for b in session_bounds(d)])
            moving = open_mask(epochs, boundaries)
        z = self._path_rng.standard_normal(2 * n)
        dt = GRID_SECONDS / SECONDS_PER_YEAR
        s_path, v_path = heston_path(self.spot, self.var, z[0::2].copy(), z[1::2].copy(), moving, dt,
                                     cfg.rate - cfg.dividend_yield, cfg.kappa, cfg.theta, cfg.sigma, cfg.rho)
        self._record_prints(epochs, s_path, boundaries)
        self._arrivals(epochs, moving, s_path, v_path)
        self.spot, self.var = float(s_path[-1]), float(v_path[-1])
        self._grid_epoch += n

    def _record_prints(self, epochs: np.ndarray, s_path: np.ndarray, boundaries: np.ndarray) -> None:
        """Opening and closing prints of the index (the settlement values of AM and PM options)."""
        end = epochs[-1] + GRID_SECONDS
        for j, b in enumerate(boundaries):
            if epochs[0] < b <= end:
                i = int(b - epochs[0]) - 1                     # the step that ends at b
                day = datetime.fromtimestamp(b, timezone.utc).astimezone(NEW_YORK).date()
                self.prints.setdefault(day, {})["open" if j % 2 == 0 else "close"] = float(s_path[i])

    def _arrivals(self, epochs: np.ndarray, moving: np.ndarray, s_path: np.ndarray, v_path: np.ndarray) -> None:
        """Poisson arrivals of new mispricings (only while the market moves)."""
        cfg = self.cfg
        counts = self._arrival_rng.poisson(cfg.mispricing_rate * GRID_SECONDS, size=len(epochs))
        counts[~moving] = 0
        for i in np.flatnonzero(counts):
            for _ in range(int(counts[i])):
                u, sign, size = self._choice_rng.random(), self._choice_rng.random(), self._choice_rng.normal()
                at = float(epochs[i] + GRID_SECONDS)
                rows = self._eligible(at, float(s_path[i]), float(v_path[i]))
                if not len(rows):
                    continue
                cid = int(self.listing.contract_id[rows[int(u * len(rows))]])
                amp = (1.0 if sign < 0.5 else -1.0) * cfg.mispricing_size_vol * math.exp(0.35 * size)
                for one in (cid, parity_twin(cid)):     # the strike's vol: call and put alike, parity holds
                    self._mis[one] = (at, self._offset(one, at) + amp)

    def _eligible(self, at: float, spot: float, var: float) -> np.ndarray:
        """Options that may be mispriced: at least a day to go, within two stdevs of the money."""
        lst = self.listing
        years = (lst.settle_epoch - at) / SECONDS_PER_YEAR
        sd = math.sqrt(max(var, 1e-4)) * np.sqrt(np.maximum(years, 1e-8))
        z = np.abs(np.log(lst.strike / (spot * lst.scale))) / sd
        return np.flatnonzero((years > 1.0 / 365.0) & (z < 2.0))

    def _offset(self, cid: int, at: float) -> float:
        if cid not in self._mis:
            return 0.0
        t0, amp = self._mis[cid]
        return amp * 0.5 ** ((at - t0) / self.cfg.mispricing_half_life_s)

    def mispricings(self) -> dict[int, float]:
        """Contract id -> vol offset planted and not yet decayed (0.01 = one vol point); what the quotes show of it
        is `quoted_mispricings`."""
        at = self.now.timestamp()
        out = {cid: self._offset(cid, at) for cid in self._mis}
        for cid, off in list(out.items()):
            if abs(off) < MISPRICING_FLOOR:
                del out[cid], self._mis[cid]
        return out

    def quoted_mispricings(self, only=None) -> dict[int, float]:
        """Contract id -> vol offset of the quoted price from fair value now: each planted offset, cut where its
        price displacement would reach `mispricing_max_spreads` of the option's own bid-ask spread. Below one
        spread a mispriced strike makes no static arbitrage against its fairly quoted neighbours (buying a wing at
        its ask and selling the body at its bid still costs more than the convexity it captures), as on a real SPX
        chain; the mispricing shows as a bid above fair value or an ask below it. `only`: the contract ids asked
        about (default all; the exchange asks for one at a time)."""
        planted = self.mispricings()
        if only is not None and planted:
            wanted = {int(c) for c in only}
            planted = {cid: off for cid, off in planted.items() if cid in wanted or parity_twin(cid) in wanted}
        if not planted:
            return {}
        listed = {cid: row for cid in planted if (row := self.listing.row_of(cid)) is not None}
        if not listed:
            return {}
        ids, rows = list(listed), np.fromiter(listed.values(), dtype=np.int64, count=len(listed))
        smile = self._smile_rows(rows, self._level(None))
        price, vega = black76(smile.forward, smile.strike, smile.years, smile.fair_vol, smile.discount, smile.is_call)
        room = dict(zip(ids, self.cfg.mispricing_max_spreads * quoted_spread(smile, price, vega)
                        / np.maximum(vega, 1e-12)))
        out = {}
        for cid in ids:        # the strike's room, the narrower of its call's and its put's: parity still holds
            cut = min(room[cid], room.get(parity_twin(cid), math.inf))
            out[cid] = math.copysign(min(abs(planted[cid]), cut), planted[cid])
        return out

    def settlement_price(self, expiry: date, am_settled: bool) -> float | None:
        """SPX opening (AM) or closing (PM) print of `expiry`, None until it is known."""
        return self.prints.get(expiry, {}).get("open" if am_settled else "close")

    # -------------------------------------------------------------------------------------- quotes
    def state(self, only=None) -> MarketState:
        """The market now, frozen (take it where the market advances; quote from it anywhere); `only`: the
        contract ids whose mispricings it needs (default all)."""
        return MarketState(self.now, self.spot, self.var, self._grid_epoch, self.listing,
                           self.quoted_mispricings(only) if self._mis else {})

    def _level(self, state: MarketState | None) -> MarketState:
        """`state`, or the market now without its mispricings (for what does not quote options)."""
        return state or MarketState(self.now, self.spot, self.var, self._grid_epoch, self.listing, {})

    def quote_rows(self, rows: np.ndarray | None = None, state: MarketState | None = None) -> RowQuotes:
        """Bid/ask, sizes and fair values of listing `rows` (default: all) at the current time (or `state`'s)."""
        if state is None and rows is not None:     # the exchange's one contract: its own mispricing only
            rows = np.asarray(rows, dtype=np.int64)
            state = self.state(self.listing.contract_id[rows])
        st = state or self.state()
        lst = st.listing
        rows = np.arange(len(lst)) if rows is None else np.asarray(rows, dtype=np.int64)
        smile = self._smile_rows(rows, st)
        offsets = np.zeros(len(rows))
        mis = st.mispricings
        if mis:
            ids = lst.contract_id[rows]
            hit = np.isin(ids, np.fromiter(mis.keys(), dtype=np.int64))
            offsets[hit] = [mis[int(c)] for c in ids[hit]]
        vol = np.maximum(smile.fair_vol + offsets, 0.01)
        fair, vega = black76(smile.forward, smile.strike, smile.years, vol, smile.discount, smile.is_call)
        half = 0.5 * quoted_spread(smile, fair, vega)
        lo, hi = fair - half, fair + half
        tick_lo, tick_hi = tick_for(lo), tick_for(hi)
        bid = np.round(np.floor(lo / tick_lo + 1e-9) * tick_lo, 2)
        ask = np.round(np.ceil(hi / tick_hi - 1e-9) * tick_hi, 2)
        bid = np.where(bid < TICK_SMALL - 1e-9, 0.0, bid)
        ask = np.maximum(ask, np.round(bid + tick_for(bid), 2))
        ask = np.maximum(ask, TICK_SMALL)
        bid_size, ask_size = self._sizes(rows, smile.z, st)
        bid_size = np.where(bid > 0, bid_size, 0)
        return RowQuotes(rows, bid, ask, bid_size, ask_size, fair, vol, smile.fair_vol, smile.forward, smile.years)

    def _smile_rows(self, rows: np.ndarray, st: MarketState) -> SmileRows:
        """The fair smile of listing `rows` at `st`'s instant."""
        lst, cfg = st.listing, self.cfg
        years = np.maximum((lst.settle_epoch[rows] - st.now.timestamp()) / SECONDS_PER_YEAR, 1e-7)
        scale, strike, is_call = lst.scale[rows], lst.strike[rows], lst.is_call[rows]
        forward = st.spot * scale * np.exp((cfg.rate - cfg.dividend_yield) * years)
        k = np.log(strike / forward)
        atm_w = atm_total_variance(st.var, years, cfg.kappa, cfg.theta)
        return SmileRows(years, scale, strike, is_call, forward, np.exp(-cfg.rate * years), atm_w,
                         np.abs(k) / (np.sqrt(atm_w) + 1e-12), ssvi_vol(k, years, atm_w, self.smile))

    def _sizes(self, rows: np.ndarray, z: np.ndarray, st: MarketState) -> tuple[np.ndarray, np.ndarray]:
        """Displayed sizes: deeper near the money, fresh every simulated second (deterministic per seed)."""
        u = self._size_draws(st)[:, rows]
        depth = 10.0 + 40.0 * np.exp(-0.5 * z)
        return (1 + (u[0] * depth)).astype(np.int64), (1 + (u[1] * depth)).astype(np.int64)

    def _size_draws(self, st: MarketState) -> np.ndarray:
        """The size draws of every listed option for one simulated second, kept for that second: the exchange
        asks one contract at a time (each resting order, every pump), and each ask drew the whole listing."""
        kept = self._draws
        if kept is None or kept[0] != st.grid_epoch or kept[1] is not st.listing:
            rng = np.random.default_rng([self.cfg.seed, 7, int(st.grid_epoch)])
            kept = self._draws = (st.grid_epoch, st.listing, rng.random((2, len(st.listing))))
        return kept[2]

    def future_quote(self, future: Contract | None = None, state: MarketState | None = None) -> Quote:
        """A listed future (default the hedge future): fair = index forward to its expiry, one tick wide."""
        st = self._level(state)
        fut = future or st.listing.future
        years = max((settlement_instant(fut.expiry, True) - st.now).total_seconds() / SECONDS_PER_YEAR, 0.0)
        fair = st.spot * math.exp((self.cfg.rate - self.cfg.dividend_yield) * years)
        bid = math.floor(fair / FUTURE_TICK) * FUTURE_TICK
        rng = np.random.default_rng([self.cfg.seed, 11 if fut.symbol == "ES" else 12, int(st.grid_epoch)])
        sizes = rng.integers(20, 300, size=2)
        return Quote(fut.contract_id, bid, bid + FUTURE_TICK, int(sizes[0]), int(sizes[1]), st.now)

    def select_rows(self, underlying: str, min_expiry_days: float, max_expiry_days: float,
                    strike_window: float, state: MarketState | None = None) -> np.ndarray:
        """Listing rows of one chain, not yet settled, in the expiry window and within +-window of the index."""
        st = self._level(state)
        lst = st.listing
        days = (lst.settle_epoch - st.now.timestamp()) / 86_400.0
        index = st.spot * index_scale(underlying)
        mask = (lst.underlying == underlying) & (days > 0) & (days >= min_expiry_days) & \
            (days <= max_expiry_days) & (np.abs(lst.strike / index - 1.0) <= strike_window)
        return np.flatnonzero(mask)

    def snapshot(self, rows: np.ndarray, underlying: str, sequence: int = 0,
                 state: MarketState | None = None) -> ChainSnapshot:
        """A ChainSnapshot of listing `rows` (from `select_rows`) with the future quote, at the current time or
        at `state`'s (a pure function of the state: it may run in any thread)."""
        st = state or self.state()
        lst = st.listing
        q = self.quote_rows(rows, st)
        qt = np.datetime64(st.now.replace(tzinfo=None), "ms")
        return ChainSnapshot(
            timestamp=st.now, underlying=underlying,
            underlying_price=st.spot * index_scale(underlying),
            contract_id=lst.contract_id[rows], trading_class=lst.trading_class[rows], expiry=lst.expiry[rows],
            strike=lst.strike[rows], is_call=lst.is_call[rows], bid=q.bid, ask=q.ask, bid_size=q.bid_size,
            ask_size=q.ask_size, am_settled=lst.am_settled[rows], multiplier=lst.multiplier[rows],
            quote_time=np.full(len(rows), qt), source="sim", future=self.future_quote(state=st),
            future_contract=lst.future, sequence=sequence)
