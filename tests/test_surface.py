"""The surface: forwards from put-call parity, implied vols, quality filters with a count per reason."""
from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from workstation.config import Settings
from workstation.domain import ChainSnapshot
from workstation.domain.snapshot import series_index, series_key, series_of_key
from workstation.pricing import black_price
from workstation.strategy.forwards import RATE_MAX, grouped_median, series_forwards
from workstation.strategy.surface import Filter, build_surface

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "spx_2022-06-10_cboe.csv"


def wide_settings() -> Settings:
    s = Settings()
    s.market.max_expiry_days, s.market.strike_window = 2000, 0.7
    return s


@pytest.mark.skipif(not DATA.exists(), reason="real SPX chain not present in ../shared/data")
def test_forwards_match_the_published_parity_forwards_on_the_real_chain():
    from workstation.market.replay import read_cboe_csv
    snap = read_cboe_csv(DATA)
    surface = build_surface(snap, wide_settings().market, wide_settings().calibration)
    published = {}
    with DATA.open() as fh:
        for row in csv.DictReader(fh):
            published[(row["expiry_or_T"], row["root"] == "SPX")] = float(row["F_pcp"])
    checked = 0
    for e in surface.expiries:
        f_ref = published.get((str(e.expiry), e.am_settled))
        if f_ref is None or e.pairs < 30:
            continue
        checked += 1
        assert abs(e.forward - f_ref) < max(0.6, 2e-4 * f_ref), (e.expiry, e.am_settled, e.forward, f_ref)
    assert checked >= 25
    assert surface.filter_counts["OK"] > 8000


def synthetic_chain(vol: float = 0.2) -> ChainSnapshot:
    """Calls and puts priced off a known forward and discount, with a few broken quotes planted."""
    now = datetime(2025, 10, 1, 15, 0, tzinfo=timezone.utc)
    strikes = np.arange(5000.0, 7001.0, 25.0)
    expiry = np.datetime64("2025-11-21")
    n = len(strikes)
    k = np.concatenate([strikes, strikes])
    call = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    snap = ChainSnapshot.from_columns(timestamp=now, underlying="SPX", underlying_price=6000.0, columns={
        "contract_id": np.arange(1, 2 * n + 1), "trading_class": np.full(2 * n, "SPXW"),
        "expiry": np.full(2 * n, expiry), "strike": k, "is_call": call,
        "bid": np.zeros(2 * n), "ask": np.zeros(2 * n), "bid_size": np.full(2 * n, 10),
        "ask_size": np.full(2 * n, 10)})
    t = snap.maturity
    fair = black_price(6010.0, k, t, 0.995, vol, call)
    bid, ask = fair - 0.05, fair + 0.05
    bid[0], ask[0] = np.nan, np.nan                  # no quote at all
    bid[5] = 0.0                                     # no bid
    bid[10], ask[10] = fair[10] + 1, fair[10]        # crossed
    bid[15], ask[15] = fair[15] * 0.2, fair[15] * 3  # far too wide
    cols = snap.columns()
    cols.update(bid=bid, ask=ask)
    return ChainSnapshot.from_columns(timestamp=now, underlying="SPX", underlying_price=6000.0, columns=cols)


def test_forward_discount_and_vols_are_recovered_and_bad_quotes_filtered_by_reason():
    snap = synthetic_chain()
    s = wide_settings()
    surface = build_surface(snap, s.market, s.calibration)
    (expiry,) = surface.expiries
    assert expiry.forward == pytest.approx(6010.0, abs=1e-6) and expiry.discount == pytest.approx(0.995, abs=1e-9)
    reasons = surface.filter_reason
    assert reasons[0] == Filter.NON_FINITE and reasons[5] == Filter.NO_BID
    assert reasons[10] == Filter.CROSSED and reasons[15] == Filter.TOO_WIDE
    ok = surface.usable
    assert np.allclose(surface.iv_mid[ok], 0.2, atol=2e-3)           # mid IV of fair +- 0.05
    assert np.all(surface.iv_bid[ok] <= surface.iv_mid[ok]) and np.all(surface.iv_mid[ok] <= surface.iv_ask[ok])
    counts = surface.filter_counts
    assert counts["NO_BID"] == 1 and counts["CROSSED"] == 1 and counts["TOO_WIDE"] == 1
    assert sum(counts.values()) == len(snap)


def test_a_stale_pair_does_not_move_the_forward():
    snap = synthetic_chain()
    cols = snap.columns()
    n = len(snap) // 2
    bid, ask = cols["bid"].copy(), cols["ask"].copy()
    atm = int(np.argmin(np.abs(snap.strike[:n] - 6000)))
    bid[atm] += 8.0
    ask[atm] += 8.0                                   # one call left 8 points rich (a stale quote)
    cols.update(bid=bid, ask=ask)
    bad = ChainSnapshot.from_columns(timestamp=snap.timestamp, underlying="SPX", underlying_price=6000.0,
                                     columns=cols)
    s = wide_settings()
    (expiry,) = build_surface(bad, s.market, s.calibration).expiries
    assert expiry.forward == pytest.approx(6010.0, abs=0.05)


def test_stale_quotes_take_no_part_in_the_forward():
    """A feed that carries each quote with its age (IB's rotation): pairs older than market.stale_after_s, here every
    second strike with its call 3 points rich, neither move the forward nor pass as usable."""
    snap = synthetic_chain()
    cols = snap.columns()
    n = len(snap) // 2
    s = wide_settings()
    stale = np.zeros(len(snap), dtype=bool)
    stale[:n:2] = stale[n::2] = True                  # every second strike, call and put
    cols["bid"] = np.where(stale & snap.is_call, cols["bid"] + 3.0, cols["bid"])
    cols["ask"] = np.where(stale & snap.is_call, cols["ask"] + 3.0, cols["ask"])
    now = np.datetime64(snap.timestamp.replace(tzinfo=None), "ms")
    cols["quote_time"] = np.where(stale, now - np.timedelta64(int(s.market.stale_after_s * 1000) + 1, "ms"), now)
    aged = ChainSnapshot.from_columns(timestamp=snap.timestamp, underlying="SPX", underlying_price=6000.0,
                                      columns=cols)
    surface = build_surface(aged, s.market, s.calibration)
    (expiry,) = surface.expiries
    assert expiry.forward == pytest.approx(6010.0, abs=1e-6) and expiry.discount == pytest.approx(0.995, abs=1e-9)
    assert (surface.filter_reason[stale] == Filter.STALE).sum() >= stale.sum() - 4     # (4 broken quotes planted)
    assert not surface.usable[stale].any()


def test_a_short_expirys_noisy_parity_slope_is_held_to_a_plausible_rate():
    """Twenty minutes before a close, C - P across the strikes can say D = 0.998: a slope within the quotes' noise
    (an implied rate of thousands of percent a year), which would move every bound built on D (a 0DTE vertical's
    D x strike gap: half a point of false arbitrage). D is held at the plausible bound and the forward refit with
    it; a year out the same slope is a plausible rate (0.2 %) and is kept."""
    k = np.arange(5450.0, 6101.0, 5.0)
    f = 5911.7
    strike, is_call = np.r_[k, k], np.r_[np.ones(k.size, bool), np.zeros(k.size, bool)]
    mid = np.r_[100.0 + 0.998 * (f - k), np.full(k.size, 100.0)]       # C - P = 0.998 (F - K)
    series, near = np.zeros(strike.size, np.int64), np.ones(strike.size, bool)
    twenty_minutes = 20.0 / (365 * 24 * 60)
    fwd, d, pairs, _ = series_forwards(series, 1, strike, is_call, mid, near, np.array([twenty_minutes]))
    assert d[0] == pytest.approx(np.exp(-RATE_MAX * twenty_minutes), rel=1e-12) and pairs[0] == k.size
    assert fwd[0] == pytest.approx(np.mean(k + 0.998 * (f - k) / d[0]), rel=1e-12) and abs(fwd[0] - f) < 0.5
    fwd, d, _, resid = series_forwards(series, 1, strike, is_call, mid, near, np.array([1.0]))
    assert d[0] == pytest.approx(0.998, rel=1e-12) and fwd[0] == pytest.approx(f, rel=1e-12) and resid[0] < 1e-9


def test_grouped_median():
    g = np.array([0, 0, 0, 1, 1, 2])
    v = np.array([3.0, 1.0, 2.0, 10.0, 20.0, 7.0])
    assert list(grouped_median(g, v, 4)[:3]) == [2.0, 15.0, 7.0] and np.isnan(grouped_median(g, v, 4)[3])


def test_series_key_tells_am_from_pm_on_one_date_and_is_found_without_a_loop():
    """One expiry-series key (domain.snapshot): the same date AM and PM are two series; the lookup finds each."""
    expiry = np.array(["2025-11-21", "2025-11-21", "2025-11-20", "2025-12-19"], dtype="datetime64[D]")
    am = np.array([True, False, False, True])
    keys = series_key(expiry, am)
    assert len(set(keys.tolist())) == 4
    assert [series_of_key(k) for k in keys] == [(e, bool(a)) for e, a in zip(expiry, am)]
    known = series_key(np.array(["2025-12-19", "2025-11-21"], dtype="datetime64[D]"), [True, False])
    assert series_index(keys, known).tolist() == [-1, 1, -1, 0]
    assert series_index(keys, known[:0]).tolist() == [-1, -1, -1, -1]
