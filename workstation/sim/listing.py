"""Cboe-like listing of SPX/XSP options and the hedge future, with stable contract ids.

- SPX: AM-settled monthlies (third Friday), trading_class "SPX".
- SPXW: PM-settled dailies (every trading day of the next two weeks, 0DTE included), Fridays further out,
  end-of-month and quarterly (last trading day of Mar/Jun/Sep/Dec) expiries.
- No expiry on an exchange holiday: as Cboe does, a holiday expiry moves to the trading day before
  (Good Friday's monthly to Thursday), and no daily is listed on a holiday.
- XSP: the same PM expiries on one tenth of the index (strikes every point near the money).
- Strikes: every 5 points near the money, 25/50/100 further out; the listed range widens with maturity.
- The index futures: the front quarterly "ES"-like future (multiplier 50, the hedge) and its "MES" micro (multiplier
  5, for finer hedges on IB configurations), rolled eight days before expiry.

Contract ids encode class, expiry, strike and right, so the same option has the same id on every run:
``class_code * 1e17 + yyyymmdd * 1e9 + round(strike * 100) * 10 + (1 call | 2 put | 0 future)``.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

import numpy as np

from workstation.domain import Contract, Right, SecType, Settlement, settlement_instant
from workstation.domain.calendar import expiry_on_or_before, is_trading_day
from workstation.domain.contracts import index_scale

CLASS_CODES = {"SPX": 1, "SPXW": 2, "XSP": 3, "ES": 9, "MES": 10}
FUTURE_MULTIPLIER = 50.0
FUTURES = {"ES": (FUTURE_MULTIPLIER, "E-mini S&P 500"), "MES": (5.0, "Micro E-mini S&P 500")}   # multiplier, name
STRIKE_STEPS = {"SPX": (5.0, 25.0, 50.0, 100.0, 200.0), "XSP": (1.0, 5.0, 10.0, 20.0, 50.0)}
LISTING_VOL = 0.20        # vol used to size strike bands (sd = LISTING_VOL * sqrt(T))
NEAR_STEP_SD = 0.17       # the near-the-money step is about this fraction of one stdev (then the next listed step)
NEAR_BAND = (1.0, 0.04)   # fine steps within min(1 stdev, 4%) of spot,
MID_BAND = (2.0, 0.12)    # the next step within min(2.5 stdevs, 15%), coarser beyond
FULL_EXPIRIES = dict(daily_days=30, friday_days=120, eom_days=366)   # the real-size SPXW listing
FULL_MONTHLIES_DAYS = 366  # SPX AM monthlies for a year, then June and December (LEAPS) to the last expiry


def contract_id_for(trading_class: str, expiry: date, strike: float, is_call: bool | None) -> int:
    """Stable id of an option (is_call True/False) or future (is_call None)."""
    right = 0 if is_call is None else (1 if is_call else 2)
    ymd = expiry.year * 10_000 + expiry.month * 100 + expiry.day
    return CLASS_CODES[trading_class] * 10**17 + ymd * 10**9 + int(round(strike * 100)) * 10 + right


def contract_ids(trading_class: np.ndarray, expiry: np.ndarray, strike: np.ndarray, is_call: np.ndarray) -> np.ndarray:
    """Vectorised `contract_id_for` for options (expiry as datetime64[D])."""
    codes = np.array([CLASS_CODES[str(c)] for c in trading_class], dtype=np.int64) if len(trading_class) else \
        np.zeros(0, np.int64)
    exp = np.asarray(expiry, dtype="datetime64[D]")
    years = exp.astype("datetime64[Y]").astype(np.int64) + 1970
    months = exp.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (exp - exp.astype("datetime64[M]")).astype(np.int64) + 1
    ymd = years * 10_000 + months * 100 + days
    k = np.rint(np.asarray(strike, dtype=np.float64) * 100).astype(np.int64)
    return codes * 10**17 + ymd * 10**9 + k * 10 + np.where(is_call, 1, 2)


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def last_trading_day_of_month(year: int, month: int) -> date:
    return expiry_on_or_before(date(year, month, calendar.monthrange(year, month)[1]))


def _months(start: date, end: date):
    y, m = start.year, start.month
    while date(y, m, 1) <= end:
        yield y, m
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def spx_monthlies(trade_date: date, max_days: int) -> list[date]:
    """AM-settled third-Friday expiries after `trade_date` (an AM option is gone on its expiry morning); a
    holiday third Friday moves to the trading day before."""
    end = trade_date + timedelta(days=max_days)
    return [d for y, m in _months(trade_date, end)
            if trade_date < (d := expiry_on_or_before(third_friday(y, m))) <= end]


def pm_expiries(trade_date: date, max_days: int, daily_days: int = 14, friday_days: int = 42,
                eom_days: int = 150) -> list[date]:
    """PM-settled SPXW/XSP expiries: dailies, then Fridays, end-of-month, quarterlies up to `max_days`."""
    end = trade_date + timedelta(days=max_days)
    out: set[date] = set()
    for i in range(max_days + 1):
        d = trade_date + timedelta(days=i)
        if d.weekday() >= 5:
            continue
        if i < daily_days and is_trading_day(d):
            out.add(d)
        elif d.weekday() == 4 and i <= friday_days and (moved := expiry_on_or_before(d)) >= trade_date:
            out.add(moved)
    for y, m in _months(trade_date, end):
        eom = last_trading_day_of_month(y, m)
        if trade_date <= eom <= end and ((eom - trade_date).days <= eom_days or m % 3 == 0):
            out.add(eom)
    return sorted(out)


def future_expiry(trade_date: date, roll_days: int = 8) -> date:
    """Front quarterly future (third Friday of Mar/Jun/Sep/Dec), rolled `roll_days` before it expires."""
    for y, m in _months(trade_date, trade_date + timedelta(days=200)):
        if m % 3 == 0 and (third_friday(y, m) - trade_date).days >= roll_days:
            return third_friday(y, m)
    raise AssertionError("no quarterly within 200 days")  # pragma: no cover


def full_strikes_for(spot: float, years: float, steps: tuple[float, ...]) -> np.ndarray:
    """The real-size listing: the finest step over min(2 stdevs, 8 %) below and 60 % of that above spot (at
    least 4 %), the third step out to min(5 stdevs, 40 %), the fourth to -60 % / +35 %: ~300 options a series."""
    sd = LISTING_VOL * np.sqrt(max(years, 1.0 / 365.0))
    fine, mid = max(min(2.0 * sd, 0.08), 0.04), max(min(5.0 * sd, 0.40), 0.12)
    sets = []
    for lo_w, hi_w, step in ((fine, 0.6 * fine, steps[0]), (mid, 0.5 * mid, steps[2]), (0.6, 0.35, steps[3])):
        lo, hi = spot * np.exp(-lo_w), spot * np.exp(hi_w)
        sets.append(np.arange(np.ceil(lo / step) * step, np.floor(hi / step) * step + step / 2, step))
    return np.unique(np.concatenate(sets))


def strikes_for(spot: float, years: float, steps: tuple[float, ...]) -> np.ndarray:
    """Listed strikes of one expiry: a fine step near the money, coarser steps further out.

    The near step is the listed step closest to NEAR_STEP_SD stdevs (5 points for short SPX expiries, 25-100 for
    long ones); the range spans about -4.5 / +2.5 stdevs (at least -8% / +4%): puts reach further than calls.
    """
    sd = LISTING_VOL * np.sqrt(max(years, 1.0 / 365.0))
    lo_cap, hi_cap = min(0.60, max(0.08, 4.5 * sd)), min(0.35, max(0.04, 2.5 * sd))
    i = min(max(int(np.searchsorted(steps, NEAR_STEP_SD * sd * spot, "right")) - 1, 0), len(steps) - 3)
    tiers = ((min(NEAR_BAND[0] * sd, NEAR_BAND[1]), steps[i]), (min(MID_BAND[0] * sd, MID_BAND[1]), steps[i + 1]),
             (1.0, steps[i + 2]))
    sets = []
    for width, step in tiers:
        lo = spot * np.exp(-min(width, lo_cap))
        hi = spot * np.exp(min(width, hi_cap))
        sets.append(np.arange(np.ceil(lo / step) * step, np.floor(hi / step) * step + step / 2, step))
    return np.unique(np.concatenate(sets))


@dataclass(frozen=True, eq=False)
class Listing:
    """Every listed option of one trade date as columns, plus the hedge future."""

    trade_date: date
    underlying: np.ndarray      # "SPX" | "XSP"
    trading_class: np.ndarray   # "SPX" | "SPXW" | "XSP"
    expiry: np.ndarray          # datetime64[D]
    strike: np.ndarray
    is_call: np.ndarray
    am_settled: np.ndarray
    multiplier: np.ndarray
    settle_epoch: np.ndarray    # settlement instant, seconds since 1970 UTC
    scale: np.ndarray           # index_scale of the underlying: 1.0 for SPX, 0.1 for XSP (index = SPX * scale)
    contract_id: np.ndarray
    futures: tuple[Contract, ...]       # every listed future, the hedge future (ES) first

    def __len__(self) -> int:
        return len(self.contract_id)

    @cached_property
    def _row_by_id(self) -> dict[int, int]:
        return {int(c): i for i, c in enumerate(self.contract_id)}

    @property
    def future(self) -> Contract:
        """The hedge future (ES)."""
        return self.futures[0]

    def future_by_id(self, contract_id: int) -> Contract | None:
        """The listed future with this id, or None."""
        return next((f for f in self.futures if f.contract_id == contract_id), None)

    def row_of(self, contract_id: int) -> int | None:
        """Row of a listed option, None when not listed."""
        return self._row_by_id.get(int(contract_id))

    def contract(self, row: int) -> Contract:
        """The option Contract of `row`."""
        return Contract(contract_id=int(self.contract_id[row]), symbol=str(self.underlying[row]),
                        sec_type=SecType.OPTION, trading_class=str(self.trading_class[row]),
                        expiry=self.expiry[row].astype(date), strike=float(self.strike[row]),
                        right=Right.CALL if self.is_call[row] else Right.PUT,
                        multiplier=float(self.multiplier[row]),
                        settlement=Settlement.AM if self.am_settled[row] else Settlement.PM)


def future_contract(trade_date: date, symbol: str = "ES") -> Contract:
    """The front quarterly index future `symbol` ("ES" or its micro "MES")."""
    expiry = future_expiry(trade_date)
    return Contract(contract_id=contract_id_for(symbol, expiry, 0.0, None), symbol=symbol, sec_type=SecType.FUTURE,
                    trading_class=symbol, expiry=expiry, multiplier=FUTURES[symbol][0],
                    settlement=Settlement.AM, exchange="CME")


def build_listing(trade_date: date, spot: float, max_expiry_days: int,
                  underlyings: tuple[str, ...] = ("SPX",), full: bool = False) -> Listing:
    """List the chains of `underlyings` for `trade_date` around the SPX level `spot` (`full`: the real-size
    chain, ~20,000 SPX options)."""
    series: list[tuple[str, str, date, bool, float]] = []   # (underlying, class, expiry, am, scale)
    pm = pm_expiries(trade_date, max_expiry_days, **(FULL_EXPIRIES if full else {}))
    monthlies = spx_monthlies(trade_date, max_expiry_days)
    if full:
        monthlies = [d for d in monthlies if (d - trade_date).days <= FULL_MONTHLIES_DAYS or d.month in (6, 12)]
    strikes = full_strikes_for if full else strikes_for
    if "SPX" in underlyings:
        series += [("SPX", "SPX", d, True, index_scale("SPX")) for d in monthlies]
        series += [("SPX", "SPXW", d, False, index_scale("SPX")) for d in pm]
    if "XSP" in underlyings:
        series += [("XSP", "XSP", d, False, index_scale("XSP")) for d in pm]
    cols: dict[str, list] = {k: [] for k in ("underlying", "trading_class", "expiry", "strike", "am", "scale",
                                             "epoch")}
    for und, cls, exp, am, scale in series:
        epoch = settlement_instant(exp, am).timestamp()
        years = max((exp - trade_date).days, 0.5) / 365.0
        ks = strikes(spot * scale, years, STRIKE_STEPS[und])
        n = len(ks)
        cols["underlying"] += [und] * n
        cols["trading_class"] += [cls] * n
        cols["expiry"] += [exp] * n
        cols["strike"].append(ks)
        cols["am"] += [am] * n
        cols["scale"] += [scale] * n
        cols["epoch"] += [epoch] * n
    strikes = np.concatenate(cols["strike"]) if cols["strike"] else np.zeros(0)
    both = lambda a, dtype=None: np.concatenate([np.asarray(a, dtype=dtype)] * 2)  # calls then puts
    n = len(strikes)
    is_call = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
    trading_class = both(cols["trading_class"], "<U8")
    expiry = both(cols["expiry"], "datetime64[D]")
    strike = both(strikes, np.float64)
    order = np.lexsort((~is_call, strike, expiry, trading_class))  # class, expiry, strike, call before put
    trading_class, expiry, strike, is_call = trading_class[order], expiry[order], strike[order], is_call[order]
    return Listing(
        trade_date=trade_date, underlying=both(cols["underlying"], "<U8")[order], trading_class=trading_class,
        expiry=expiry, strike=strike, is_call=is_call, am_settled=both(cols["am"], bool)[order],
        multiplier=np.full(2 * n, 100.0), settle_epoch=both(cols["epoch"], np.float64)[order],
        scale=both(cols["scale"], np.float64)[order],
        contract_id=contract_ids(trading_class, expiry, strike, is_call),
        futures=tuple(future_contract(trade_date, symbol) for symbol in FUTURES))
