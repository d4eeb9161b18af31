"""The fair-value surface on the IB feed with its default settings: IBFeed (ib_async) against the practice gateway
over a real socket, the gateway's clock driven by hand so quote ages do not depend on how fast the machine is.

With `Settings()`'s market window (every expiry to 400 days, +-25 % of spot), the 90-line budget and the default
pacing, the watch plan must give every watched expiry in the fair surface's window enough fresh quotes for a slice,
the slices must fit (not fall back), and a quote the feed has not refreshed for `market.stale_after_s` must never
be part of a fitted, trusted slice. Plus the plan itself, on a synthetic chain: budget, priority and spread.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("ib_async")

from workstation.config import Settings  # noqa: E402
from workstation.domain.snapshot import series_key  # noqa: E402
from workstation.engine.wiring import slice_needs  # noqa: E402
from workstation.market.ib import RECENTRE_SHARE, IBFeed  # noqa: E402
from workstation.market.ib_watch import (PARITY_REACH, PARITY_STRIKES, WING_FACTOR, SliceNeeds,  # noqa: E402
                                         capacity, plan_watch, spread_order)
from workstation.sim.gateway import PracticeGateway  # noqa: E402
from workstation.sim.world import SimWorld  # noqa: E402
from workstation.strategy.fair_value import FairValueSettings, FairValueSurface, fit_rows  # noqa: E402
from workstation.strategy.surface import Filter, build_surface  # noqa: E402

from gateway_support import HOST, decoder_clean, practice_settings  # noqa: E402,F401  (fixture)


@pytest.fixture
async def still_gateway():
    """The practice gateway on a manual clock: simulated time moves only when the test advances it."""
    settings = practice_settings()
    gw = PracticeGateway(settings, SimWorld.from_settings(settings, manual=True))
    await gw.start(HOST, 0)
    yield gw
    await gw.stop()


def default_ib_settings(port: int) -> Settings:
    """The IB feed's defaults: nothing changed but the source, the broker and where the gateway listens."""
    s = Settings()
    s.market.source, s.execution.broker = "ib", "ib"
    s.ib.host, s.ib.port, s.ib.client_id = HOST, port, 51
    return s


async def test_every_watched_expiry_gets_a_fitted_fair_slice_with_the_default_ib_settings(still_gateway,
                                                                                          decoder_clean):
    gw = still_gateway
    s = default_ib_settings(gw.port)
    needs = slice_needs()
    fair_settings = FairValueSettings()
    assert (needs.min_quotes, needs.min_days, needs.max_days) == (fair_settings.min_quotes,
                                                                  fair_settings.min_expiry_days,
                                                                  fair_settings.max_expiry_days)
    feed = IBFeed(s, needs=needs)
    await feed.connect()
    try:
        snap = await feed.snapshot_now()
        plan = feed.plan
        # the whole plan is quoted within the refreshes the capacity was sized for (plus two for requests the
        # gateway's message-rate limit may have refused)
        rounds = math.ceil(plan.capacity / feed.per_cycle())
        for _ in range(rounds + 2):
            if snap.metadata["complete"]:
                break
            snap = await feed.snapshot_now()
        plan = feed.plan
        assert snap.metadata["complete"], snap.metadata
        assert len(plan.options) <= plan.capacity == capacity(feed.per_cycle(), s.market.snapshot_interval_s,
                                                              s.market.stale_after_s)
        assert snap.metadata["watched_expiries"] == len(plan.watched) and snap.metadata["coverage"] == 1.0

        surface = build_surface(snap, s.market, s.calibration)
        assert (surface.filter_reason != Filter.STALE).all()          # quoted within this (frozen) moment
        fair = FairValueSurface(fair_settings).fit(surface)
        rows = fit_rows(surface, fair_settings)
        days = surface.maturity * 365.0
        in_window = (days >= needs.min_days) & (days <= needs.max_days)
        keys = snap.series_key
        fair_keys = set(np.unique(keys[in_window]).tolist())
        assert len(fair_keys) >= 10                                    # the listing's expiries from 7 to 400 days
        per_expiry = {k: int(np.sum(rows & (keys == k))) for k in fair_keys}
        assert min(per_expiry.values()) >= needs.min_quotes, per_expiry
        slices = {series_key([sl.expiry], [sl.am_settled])[0]: sl for sl in fair.slices}
        assert set(slices) == fair_keys                                # a slice for every watched fair expiry
        assert all(sl.status == "ok" for sl in slices.values()), "; ".join(
            f"{sl.expiry} {sl.status} {sl.reason} {sl.quotes}" for sl in slices.values())
        assert fair.trusted()[:-1].all(), [(str(sl.expiry), round(sl.inside_pct)) for sl in fair.slices]
        assert fair.arbitrage_violations == 0

        # what the budget cannot keep fresh is not watched, and said so: the furthest expiries, never the near
        watched_days = [feed_days(feed, k) for k in plan.watched]
        skipped_days = [feed_days(feed, k) for k in plan.skipped]
        fitted_skipped = [d for d in skipped_days if d >= needs.min_days]
        assert not fitted_skipped or min(fitted_skipped) >= max(d for d in watched_days if d <= needs.max_days)

        # the same quotes a minute past stale_after_s, not refreshed (the client's clock runs on between its syncs
        # with the server, so a quote may be stamped up to one refresh after the frozen server time): all stale,
        # no fitted slice, no trusted row
        gw.world.clock.advance(s.market.stale_after_s + 60.0)
        await feed.conn.sync_time()
        old = feed.build_snapshot(feed.wanted(snap.underlying_price), snap.underlying_price, feed.conn.now())
        assert old.metadata["coverage"] == 0.0
        ages = (np.datetime64(old.timestamp.replace(tzinfo=None), "ms") - old.quote_time).astype(float) / 1e3
        assert (ages > s.market.stale_after_s).all()                   # ages carried honestly, not renewed
        old_surface = build_surface(old, s.market, s.calibration)
        assert (old_surface.filter_reason == Filter.STALE).all() or not old_surface.usable.any()
        later = FairValueSurface(fair_settings).fit(old_surface, fair)
        assert not later.trusted_rows().any()
        assert all(sl.status != "ok" for sl in later.slices)

        # the plan holds still while the index moves a little (no churn of strikes), re-centres when it moves more
        ids = [c.conId for c in plan.options]
        index = snap.underlying_price
        assert [c.conId for c in feed.wanted(index * (1 + 0.5 * RECENTRE_SHARE))] == ids
        assert [c.conId for c in feed.wanted(index * 1.02)] != ids

        # a position (or working order) in an expiry the plan does not watch is quoted all the same
        held = feed._contracts[feed.plan.skipped[0]][0]
        feed.keep_quoted = lambda: {held.conId}
        assert feed.wanted(index * 1.02)[0].conId == held.conId
    finally:
        await feed.close()


def feed_days(feed: IBFeed, key: tuple[str, str]) -> float:
    return (feed._settles[key] - feed.conn.now()).total_seconds() / 86400


# ---------------------------------------------------------------------------------------------- the plan alone
def chain(days_list: list[float], step: float = 5.0) -> tuple[dict, dict]:
    out, days, cid = {}, {}, 0
    for d in days_list:
        key = ("SPXW", f"{d:06.1f}")
        contracts = []
        for k in np.arange(4500.0, 7300.0, step):
            for right in ("C", "P"):
                cid += 1
                contracts.append(SimpleNamespace(strike=float(k), right=right, conId=cid))
        out[key], days[key] = contracts, d
    return out, days


def test_the_plan_gives_each_fitted_expiry_its_minimum_nearest_first_and_says_what_it_leaves_out():
    needs = SliceNeeds()
    contracts, days = chain([1, 3, 8, 15, 30, 60, 90, 180, 365])
    budget = 5 * needs.per_expiry + 7
    plan = plan_watch(contracts, days, 5900.0, 0.25, budget, needs)
    # the five nearest expiries in the fair window, each its minimum, the 7 left over shared among them
    assert [days[k] for k in plan.watched] == [8, 15, 30, 60, 90]
    assert [days[k] for k in plan.skipped] == [180, 365, 1, 3]
    assert len(plan.options) == budget and sum(plan.quota.values()) == budget
    assert all(plan.quota[k] >= needs.per_expiry for k in plan.watched)
    assert len({c.conId for c in plan.options}) == len(plan.options)
    assert "4 expiries not watched" in plan.describe()
    for key in plan.watched:
        mine = [c for c in plan.options if c in contracts[key]]
        strikes = sorted({c.strike for c in mine})
        nearest = min(strikes, key=lambda k: abs(math.log(k / 5900.0)))
        pairs = sorted(k for k in strikes if {c.right for c in mine if c.strike == k} == {"C", "P"})
        # the forward: put-call pairs at the nearest strike and spread around it, so parity pins the discount
        assert nearest in pairs and len(pairs) >= PARITY_STRIKES
        assert pairs[-1] - pairs[0] >= 2 * PARITY_REACH[0] * 5900.0 * 0.9
        otm = [c for c in mine if (c.right == "P") == (c.strike < 5900.0)]
        assert len(otm) >= WING_FACTOR * needs.min_quotes
        # the wings reach out: the smile's range, not the ten strikes around the money
        assert min(strikes) < 5900.0 * (1 - 0.3 * math.sqrt(days[key] / 365.0))
    # a larger budget watches every expiry, up to all their options in the window
    everything = plan_watch(contracts, days, 5900.0, 0.25, 10**6, needs)
    assert not everything.skipped and len(everything.options) == sum(
        sum(abs(c.strike / 5900.0 - 1) <= 0.25 for c in cs) for cs in contracts.values())


def test_spread_order_takes_both_ends_then_the_middle():
    items = list(range(9))
    assert spread_order(items)[:3] == [0, 8, 4]
    assert sorted(spread_order(items)) == items
    assert spread_order([1]) == [1] and spread_order([]) == []
