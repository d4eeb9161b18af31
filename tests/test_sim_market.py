"""The simulated market: clock, listing, quotes, smile, mispricings, determinism and speed."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest

from workstation.config import MarketConfig, SimulatorConfig
from workstation.domain import calendar
from workstation.domain.calendar import expiry_on_or_before
from workstation.domain.contracts import index_scale
from workstation.domain.snapshot import NEW_YORK
from workstation.domain.ticks import on_tick
from workstation.sim.clock import SimClock, is_session_open
from workstation.sim.listing import (
    build_listing,
    contract_id_for,
    pm_expiries,
    spx_monthlies,
    third_friday,
)
from workstation.sim.market import SimMarket, parity_twin

DAY = date(2025, 10, 1)   # a Wednesday


def make_market(**overrides) -> tuple[SimClock, SimMarket]:
    cfg = SimulatorConfig(start_date=DAY, **overrides)
    clock = SimClock.from_config(cfg, manual=True)
    return clock, SimMarket(cfg, clock.now())


def chain(market: SimMarket, window: float = 0.25):
    rows = market.select_rows("SPX", 0, 400, window)
    return market.snapshot(rows, "SPX"), market.quote_rows(rows)


# ------------------------------------------------------------------------------------------- clock
def test_clock_starts_at_the_open_of_the_configured_day_and_runs_at_speed():
    ticks = iter([100.0, 110.0])
    clock = SimClock.from_config(SimulatorConfig(start_date=DAY, speed=30), wall=lambda: next(ticks))
    assert clock.start.astimezone(NEW_YORK) == datetime(2025, 10, 1, 9, 30, tzinfo=NEW_YORK)
    assert clock.now() - clock.start == timedelta(seconds=300)    # 10 wall seconds x 30


def test_clock_default_day_is_the_last_trading_day_and_manual_mode_advances():
    clock = SimClock.from_config(SimulatorConfig(), manual=True, today=date(2025, 10, 5))  # a Sunday
    assert clock.trade_date() == date(2025, 10, 3)
    assert clock.is_open()
    clock.advance(6.5 * 3600)
    assert not clock.is_open()                                     # 16:00: closed
    assert is_session_open(clock.now(), always_open=True)


# ----------------------------------------------------------------------------------------- listing
def test_spx_monthlies_are_third_fridays_am_settled_and_spxw_is_pm():
    lst = build_listing(DAY, 5900.0, 400)
    spx = lst.trading_class == "SPX"
    for exp in np.unique(lst.expiry[spx]).astype(date):
        assert exp == expiry_on_or_before(third_friday(exp.year, exp.month))   # Juneteenth 2026: Thu 18 Jun
    assert lst.am_settled[spx].all() and not lst.am_settled[~spx].any()
    pm = set(np.unique(lst.expiry[lst.trading_class == "SPXW"]).astype(date))
    assert DAY in pm                                               # 0DTE
    weekdays = {DAY + timedelta(days=i) for i in range(14) if (DAY + timedelta(days=i)).weekday() < 5}
    assert weekdays <= pm                                          # dailies for the near two weeks
    assert max(pm) - DAY >= timedelta(days=365) or max(np.unique(lst.expiry).astype(date)) - DAY >= timedelta(365)
    assert date(2025, 10, 31) in pm and date(2025, 12, 31) in pm  # end of month / quarterly


def test_strikes_every_5_near_the_money_and_coarser_far_out():
    lst = build_listing(DAY, 5900.0, 400)
    short = np.unique(lst.strike[lst.expiry == np.datetime64("2025-10-03")])
    near = short[np.abs(short - 5900) <= 30]
    assert set(np.diff(near)) == {5.0}
    far = short[short < 5600]
    assert np.all(np.diff(far) >= 25) and np.all(far % 25 == 0)
    long = np.unique(lst.strike[lst.expiry == lst.expiry.max()])
    assert np.all(long % 25 == 0)


def test_contract_ids_are_stable_unique_and_readable():
    a, b = build_listing(DAY, 5900.0, 400, ("SPX", "XSP")), build_listing(DAY, 5900.0, 400, ("SPX", "XSP"))
    assert np.array_equal(a.contract_id, b.contract_id)
    assert len(np.unique(a.contract_id)) == len(a)
    row = a.row_of(contract_id_for("SPXW", date(2025, 10, 3), 5900.0, True))
    assert row is not None and a.contract(row).description == "SPXW 03Oct25 5900 C"
    xsp = a.underlying == "XSP"
    assert xsp.any() and np.all(a.strike[xsp] < 1000) and np.all(a.multiplier[xsp] == 100)


def test_xsp_is_a_tenth_of_spx_in_the_listing_and_the_snapshot():
    """One home for the XSP scale (domain.contracts.index_scale): the listing, the chain and its level agree."""
    _, market = make_market(underlyings=["SPX", "XSP"])
    lst = market.listing
    assert index_scale("XSP") == 0.1 and index_scale("SPX") == 1.0
    assert np.all(lst.scale[lst.underlying == "XSP"] == 0.1) and np.all(lst.scale[lst.underlying == "SPX"] == 1.0)
    rows = market.select_rows("XSP", 0, 400, 0.1)
    snap = market.snapshot(rows, "XSP")
    assert len(snap) and snap.underlying_price == pytest.approx(market.spot / 10)
    assert np.all(np.abs(snap.strike / snap.underlying_price - 1.0) <= 0.1 + 1e-12)


def test_expiry_calendar_helpers():
    assert spx_monthlies(date(2025, 10, 17), 40) == [date(2025, 11, 21)]   # an AM monthly is gone on its day
    assert pm_expiries(date(2025, 10, 17), 3)[0] == date(2025, 10, 17)


def test_default_chain_holds_1500_to_2500_options():
    m = MarketConfig()
    _, market = make_market()
    rows = market.select_rows(m.underlying, m.min_expiry_days, m.max_expiry_days, m.strike_window)
    assert 1500 <= len(rows) <= 2500


# ------------------------------------------------------------------------------------------ quotes
def test_quotes_on_tick_never_crossed_or_locked_with_zero_bid_wings():
    clock, market = make_market()
    market.advance_to(clock.advance(1800))
    snap, _ = chain(market)
    assert np.all(snap.ask > snap.bid)
    for px in np.concatenate([snap.bid[snap.bid > 0], snap.ask]):
        assert on_tick(float(px)), px
    zero = snap.bid == 0
    assert zero.any() and np.all(snap.bid_size[zero] == 0)
    assert np.all(snap.ask[zero] <= 0.25)                         # 0 bid, a few ticks offered
    assert np.all(snap.ask_size > 0)
    assert snap.future is not None and snap.future.ask - snap.future.bid == 0.25
    assert snap.future_contract.trading_class == "ES" and snap.future_contract.multiplier == 50


def test_spreads_widen_away_from_the_money_and_at_short_maturity():
    _, market = make_market(mispricing_rate=0)
    snap, q = chain(market, 0.3)
    days = snap.maturity * 365
    k = np.log(snap.strike / q.forward)
    otm = np.where(snap.is_call, k > 0, k < 0) & (snap.bid > 0)
    month = otm & (np.abs(days - 50) < 10)
    rel = (snap.ask - snap.bid) / snap.mid
    atm_rel = np.median(rel[month & (np.abs(k) < 0.02)])
    wing_rel = np.median(rel[month & (np.abs(k) > 0.10)])
    assert wing_rel > 2 * atm_rel
    # in vol terms, short-dated options are quoted wider than long-dated ones
    from workstation.sim.smile import black76
    _, vega = black76(q.forward, snap.strike, q.years, q.vol, np.exp(-0.04 * q.years), snap.is_call)
    spread_vol = (snap.ask - snap.bid) / vega
    atm = np.abs(k) < 0.01
    assert np.median(spread_vol[atm & (days < 3)]) > np.median(spread_vol[atm & (days > 200)])


def test_smile_has_put_skew_steeper_at_short_maturity():
    _, market = make_market(mispricing_rate=0)
    snap, q = chain(market, 0.3)
    days = snap.maturity * 365
    k = np.log(snap.strike / q.forward)

    def skew(lo, hi):
        m = (days > lo) & (days < hi) & ~snap.is_call
        slope = np.polyfit(k[m & (np.abs(k) < 0.05)], q.fair_vol[m & (np.abs(k) < 0.05)], 1)[0]
        return slope

    assert skew(5, 10) < skew(200, 400) < 0


# ------------------------------------------------------------------------------------- mispricings
def test_mispricings_are_where_the_market_says():
    """A mispricing is planted on a strike (its call and its put alike, so put-call parity holds) and quoted as
    its vol offset, cut where the price moves by `mispricing_max_spreads` of the option's own spread."""
    clock_a, plain = make_market(mispricing_rate=0)
    clock_b, mis = make_market(mispricing_rate=0.05, mispricing_size_vol=0.05)
    plain.advance_to(clock_a.advance(900))
    mis.advance_to(clock_b.advance(900))
    assert plain.spot == mis.spot                       # mispricings have their own random streams
    planted, quoted = mis.mispricings(), mis.quoted_mispricings()
    assert len(planted) >= 10 and set(quoted) == set(planted)
    assert all(planted[parity_twin(cid)] == off for cid, off in planted.items())
    assert all(np.sign(quoted[c]) == np.sign(planted[c]) and abs(quoted[c]) <= abs(planted[c]) for c in planted)
    assert sum(abs(quoted[c]) < abs(planted[c]) for c in planted) >= 2     # 5 vol points: cut on most strikes
    rows = mis.select_rows("SPX", 0, 400, 0.25)
    a, b = plain.quote_rows(rows), mis.quote_rows(rows)
    ids = mis.listing.contract_id[rows]
    hit = np.isin(ids, list(quoted))
    assert np.array_equal(a.fair_vol, b.fair_vol)
    np.testing.assert_allclose(b.vol[hit] - b.fair_vol[hit], [quoted[int(c)] for c in ids[hit]], atol=1e-12)
    assert np.array_equal(a.bid[~hit], b.bid[~hit]) and np.array_equal(a.ask[~hit], b.ask[~hit])
    moved = (b.fair - a.fair)[hit]
    assert np.all(np.sign(moved) == np.sign((b.vol - b.fair_vol)[hit]))
    # within the room: the price moved by at most 0.5 of the clean quote's spread (vega is linear to ~2 %)
    assert np.all(np.abs(moved) <= 0.5 * 1.02 * (a.ask - a.bid)[hit])


def test_the_exchange_sees_a_mispriced_contract_as_the_chain_quotes_it():
    """The paper exchange asks for one contract at a time (only its own mispricing is worked out, and its
    put-call twin's room): the same bid and ask as the whole chain's quote, capped or not."""
    clock, market = make_market(mispricing_rate=0.5, mispricing_size_vol=0.05)
    market.advance_to(clock.advance(900))
    rows = market.select_rows("SPX", 0, 400, 0.25)
    chain = market.quote_rows(rows)
    mispriced = [i for i, c in enumerate(market.listing.contract_id[rows]) if int(c) in market.mispricings()]
    assert len(mispriced) >= 20
    for i in mispriced[:40]:
        one = market.quote_rows([rows[i]])
        assert (one.bid[0], one.ask[0], one.vol[0]) == (chain.bid[i], chain.ask[i], chain.vol[i])


def test_the_simulated_chain_quotes_no_static_arbitrage_and_can_be_told_to():
    """A real SPX chain has no static arbitrage worth a fee; nor has the simulated one, through a day of
    mispricings at five times the default rate, to the 0DTE's last minutes. Allowed to move prices by many
    spreads, the same mispricings make arbitrage at once (butterflies, verticals and calendars around a mispriced
    strike), so the check can fail."""
    from workstation.config import Settings
    from workstation.strategy.arbitrage import find_arbitrage
    from workstation.strategy.surface import build_surface

    settings = Settings()
    fee = 1.25 / 100          # the paper account's commission and fees a contract, in index points
    counts = {}
    for room in (0.5, 100.0):
        clock, market = make_market(mispricing_rate=0.1, mispricing_max_spreads=room)
        counts[room] = 0
        for _ in range(15):   # every 25 minutes to 15:45 ET
            market.advance_to(clock.advance(1500))
            snap = market.snapshot(market.select_rows("SPX", 0, 400, 0.25), "SPX")
            found = find_arbitrage(build_surface(snap, settings.market, settings.calibration), fee)
            counts[room] += sum(len(v) for v in found.values())
        assert len(market.mispricings()) >= 50
    assert counts[0.5] == 0 and counts[100.0] >= 50, counts


def test_mispricings_decay_with_the_half_life():
    clock, market = make_market(mispricing_rate=0.05, mispricing_half_life_s=300)
    market.advance_to(clock.advance(600))
    before = market.mispricings()
    market.cfg.mispricing_rate = 0.0
    market.advance_to(clock.advance(300))
    after = market.mispricings()
    for cid, off in after.items():
        assert off == pytest.approx(before[cid] / 2, rel=1e-9)


# ------------------------------------------------------------------------------------- determinism
def test_same_seed_same_market_regardless_of_how_time_is_sliced():
    c1, m1 = make_market()
    c2, m2 = make_market()
    m1.advance_to(c1.advance(600))
    for _ in range(6):
        m2.advance_to(c2.advance(100))
    s1, s2 = chain(m1)[0], chain(m2)[0]
    assert s1.equals(s2) and m1.mispricings() == m2.mispricings()
    c3, m3 = make_market(seed=8)
    m3.advance_to(c3.advance(600))
    assert m3.spot != m1.spot


def test_a_frozen_state_quotes_the_same_chain_while_the_market_moves_on():
    """The feed freezes the market where it advances and quotes the chain from that state in a thread of its own:
    the snapshot of a state is the snapshot of that moment, however far the live market has moved since."""
    clock, market = make_market(mispricing_rate=0.05, mispricing_size_vol=0.05)
    market.advance_to(clock.advance(600))
    then = chain(market)[0]
    state = market.state()
    assert state.mispricings                            # the planted mispricings travel with the state
    market.advance_to(clock.advance(300))               # the paper exchange's pump moves the live market on
    rows = market.select_rows("SPX", 0, 400, 0.25, state=state)
    frozen = market.snapshot(rows, "SPX", state=state)
    assert frozen.equals(then) and frozen.timestamp == then.timestamp
    assert frozen.future == then.future
    assert not chain(market)[0].equals(then)            # the live market did move


def test_the_real_time_feed_quotes_off_the_event_loop_thread():
    """In real time the world advances on the loop's thread (fills go out there) and the chain is quoted in the
    feed's own thread; each snapshot is the market at its time stamp, in sequence."""
    import asyncio
    import threading

    from workstation.config import PaperConfig
    from workstation.market.sim_feed import SimulatedFeed
    from workstation.sim.world import SimWorld

    cfg = SimulatorConfig(start_date=DAY, speed=600, always_open=True)
    world = SimWorld(cfg, PaperConfig(), clock=SimClock.from_config(cfg))
    feed = SimulatedFeed(world, interval_s=60.0, min_wall_interval_s=0.05)
    feed.select_chain("SPX", 0, 60, 0.1)
    quoted_in: list[str] = []
    snapshot = world.market.snapshot

    def recording(*args, **kwargs):
        quoted_in.append(threading.current_thread().name)
        return snapshot(*args, **kwargs)
    world.market.snapshot = recording

    async def three():
        out = []
        async for snap in feed.snapshots():
            out.append((snap, world.market.state()))
            if len(out) == 3:
                await feed.close()
        return out
    taken = asyncio.run(three())
    assert len(quoted_in) == 3 and all(name.startswith("sim-quotes") for name in quoted_in), quoted_in
    assert [s.sequence for s, _ in taken] == [1, 2, 3]
    assert taken[0][0].timestamp < taken[1][0].timestamp < taken[2][0].timestamp
    for snap, live in taken:                            # the live market is at or past the snapshot's moment
        assert snap.timestamp <= live.now


def test_index_is_frozen_when_closed_and_settlement_prints_are_recorded():
    clock, market = make_market()
    market.advance_to(clock.advance(6.5 * 3600))
    close = market.settlement_price(DAY, am_settled=False)
    assert close == market.spot
    market.advance_to(clock.advance(3600))
    assert market.spot == close


def test_the_full_listing_is_the_real_size_spx_chain():
    """`listing: full`: ~20,000+ options in ~60 series (SPXW dailies, Fridays, month-ends, quarterlies; SPX AM
    monthlies and LEAPS), 5-point strikes near the money, no expiry on a holiday."""
    lst = build_listing(date(2026, 12, 7), 5900.0, 1100, full=True)
    series = set(zip(np.asarray(lst.expiry).astype(date), lst.trading_class.tolist()))
    assert len(lst) >= 20_000 and 55 <= len(series) <= 80
    near = lst.strike[(lst.expiry == np.datetime64("2026-12-18")) & (np.abs(lst.strike / 5900.0 - 1) < 0.03)]
    assert set(np.diff(np.unique(near))) == {5.0}
    assert max(d for d, _ in series) - date(2026, 12, 7) > timedelta(days=900)
    assert not any(calendar.is_holiday(d) for d, _ in series)
