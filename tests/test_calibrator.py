"""The calibrator on the full-size chain: the fit spreads itself over 20 expiries (`calibration.max_expiries`) and
still prices every expiry as well as a fit to all of them; the per-expiry errors cover every expiry."""
from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pytest

from workstation.config import Settings
from workstation.sim.world import SimWorld
from workstation.strategy.calibrator import Calibrator, spread_expiries
from workstation.strategy.surface import build_surface

DAY = date(2025, 10, 1)


def test_spread_expiries_keeps_the_ends_and_every_kth_expiry():
    days = np.r_[np.arange(1, 43), [49, 56, 63, 70, 77, 84, 91, 182, 273, 365, 547, 730]]     # dailies, then sparse
    maturity = np.repeat(days / 365.0, 3)
    rows = np.arange(maturity.size)
    kept = spread_expiries(rows, maturity, 10)
    chosen = np.unique(maturity[kept])
    assert chosen.size == 10 and chosen[0] == days[0] / 365 and chosen[-1] == days[-1] / 365
    assert all((maturity[kept] == t).sum() == 3 for t in chosen)                          # whole expiries
    steps = np.diff(np.searchsorted(np.unique(maturity), chosen))
    assert steps.min() >= 5 and steps.max() <= 6                                        # 53 apart in 9 steps
    assert np.array_equal(spread_expiries(rows, maturity, 100), rows)                     # fewer: all of them


@pytest.fixture(scope="module")
def full_surfaces():
    """Two snapshots a minute apart of the simulated real-size chain (55 expiries in the calibration window)."""
    s = Settings()
    sim = s.market.simulator
    sim.start_date, sim.always_open, sim.listing, sim.max_expiry_days = DAY, True, "full", 1100
    s.market.max_expiry_days, s.market.strike_window = 1100, 0.4
    world = SimWorld.from_settings(s, manual=True)
    m, out = world.market, []
    for _ in range(2):
        world.clock.advance(60)
        m.advance_to(world.clock.now())
        rows = m.select_rows("SPX", s.market.min_expiry_days, s.market.max_expiry_days, s.market.strike_window)
        out.append(build_surface(m.snapshot(rows, "SPX"), s.market, s.calibration))
    return s, out


def _rmse_everywhere(values, surface) -> float:
    rows = np.flatnonzero(surface.calibration_mask)
    return float(np.sqrt(np.nanmean((values.iv[rows] - surface.iv_mid[rows]) ** 2)) * 100)


def test_a_fit_over_twenty_expiries_prices_all_of_them_as_well_as_a_fit_to_all(full_surfaces, warm_numba):
    settings, (first, second) = full_surfaces
    now = datetime(2025, 10, 1, 14, tzinfo=timezone.utc)
    fits = {}
    for cap in (20, 1000):
        calibrator = Calibrator(settings.calibration.model_copy(update={"max_expiries": cap}))
        calibrator.fit(first, now)                                  # cold, then warm on the next snapshot
        event, values = calibrator.fit(second, now)
        assert event.accepted, event.message
        fits[cap] = (event, values)
    spread, everything = fits[20][0], fits[1000][0]
    fitted = np.unique(second.maturity[np.flatnonzero(second.calibration_mask)])
    assert fitted.size >= 50
    assert len(spread.per_expiry_rmse) == len(everything.per_expiry_rmse) == fitted.size   # every expiry shown
    err = {cap: _rmse_everywhere(values, second) for cap, (_, values) in fits.items()}
    assert err[20] == pytest.approx(err[1000], abs=0.01), err                  # vol points, over all its quotes
    # the per-expiry errors, one expiry at a time by hand
    values = fits[20][1]
    rows = np.flatnonzero(second.calibration_mask)
    snap = second.snapshot
    for t in fitted[:: max(1, fitted.size // 8)]:
        mine = rows[second.maturity[rows] == t]
        label = f"{snap.expiry[mine[0]]} {'AM' if snap.am_settled[mine[0]] else 'PM'}"
        by_hand = np.sqrt(np.nanmean((values.iv[mine] - second.iv_mid[mine]) ** 2)) * 100
        assert spread.per_expiry_rmse[label] == pytest.approx(by_hand, rel=1e-9)
