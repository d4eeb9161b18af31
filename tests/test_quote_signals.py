"""Quote-level signal families: static arbitrage in the quotes (planted violations found with their legs and
edge, none in a clean chain) and `relative` candidates against the fair-value surface (rare on real chains)."""
from __future__ import annotations

import numpy as np
import pytest

from chain_support import CHAINS, clean_chain, forward_discount, row, smile, wide_settings, with_quotes
from workstation.pricing import black_price
from workstation.strategy.arbitrage import find_arbitrage
from workstation.strategy.fair_value import FairValueSurface
from workstation.strategy.relative import relative_candidates, scan_relative
from workstation.strategy.surface import build_surface


def surface_of(snap):
    s = wide_settings()
    return build_surface(snap, s.market, s.calibration)


def planted(edit) -> tuple:
    """A clean chain with `edit(snap, bid, ask)` applied to copies of its quotes; returns (surface, found)."""
    snap = clean_chain()
    bid, ask = snap.bid.copy(), snap.ask.copy()
    rows = edit(snap, bid, ask)
    surface = surface_of(with_quotes(snap, bid, ask))
    return surface, find_arbitrage(surface), rows


def only_touching(found, rows) -> None:
    """Every opportunity found involves a planted row (nothing spurious elsewhere in the chain)."""
    for kind, arb in found.items():
        for legs in arb.legs:
            assert set(legs.tolist()) & set(rows), (kind, legs)


def test_clean_chain_has_no_quote_arbitrage():
    found = find_arbitrage(surface_of(clean_chain()))
    assert {k: len(v) for k, v in found.items()} == {"vertical": 0, "butterfly": 0, "calendar": 0, "parity": 0}


def test_planted_butterfly_is_found_with_its_legs_and_credit():
    def edit(snap, bid, ask):
        k1, k2, k3 = (row(snap, "2025-02-21", k, True) for k in (6100.0, 6125.0, 6150.0))
        bid[k2] = 0.5 * (ask[k1] + ask[k3]) + 0.40
        ask[k2] = bid[k2] + 0.5
        return [k1, k2, k3]
    surface, found, (k1, k2, k3) = planted(edit)
    bf = found["butterfly"]
    hit = [i for i, legs in enumerate(bf.legs) if legs.tolist() == [k1, k2, k3]]
    assert len(hit) == 1
    i = hit[0]
    assert np.allclose(bf.quantity[i], [0.5, -1.0, 0.5])
    assert bf.edge[i] == pytest.approx(0.40)
    only_touching(found, [k2])
    assert "butterfly +0.5 C6100" in bf.describe(surface, i)
    # after fees of 0.25 a leg the credit no longer pays (2 units of option traded per unit of body: 0.5+1+0.5)
    assert len(find_arbitrage(surface, fee=0.25)["butterfly"]) == 0


def test_planted_vertical_is_found_with_its_legs_and_credit():
    def edit(snap, bid, ask):
        lo, hi = row(snap, "2025-03-21", 6300.0, True), row(snap, "2025-03-21", 6325.0, True)
        bid[hi] = ask[lo] + 1.0
        ask[hi] = bid[hi] + 0.5
        return [lo, hi]
    surface, found, (lo, hi) = planted(edit)
    v = found["vertical"]
    i = [j for j, legs in enumerate(v.legs) if legs.tolist() == [lo, hi]]
    assert len(i) == 1
    assert v.quantity[i[0]].tolist() == [1.0, -1.0] and v.edge[i[0]] == pytest.approx(1.0)
    only_touching(found, [hi])


def _verticals_by_every_pair(rows, bounds, strike, bid, ask, discount, is_call, fee):
    """The vertical scan as first written: every pair of strikes of a group, the best partner of each lower one."""
    out = []
    for g in range(len(bounds) - 1):
        for a in range(bounds[g], bounds[g + 1]):
            i, best, best_j, kind = rows[a], 0.0, -1, 0
            for b in range(a + 1, bounds[g + 1]):
                j = rows[b]
                if strike[j] <= strike[i]:
                    continue
                gap = discount[i] * (strike[j] - strike[i])
                mono = (bid[j] - ask[i] if is_call[i] else bid[i] - ask[j]) - 2 * fee
                slope = (bid[i] - ask[j] - gap if is_call[i] else bid[j] - ask[i] - gap) - 2 * fee
                if mono > best:
                    best, best_j, kind = mono, j, 0
                if slope > best:
                    best, best_j, kind = slope, j, 1
            if best_j >= 0:
                out.append((i, best_j, kind, best))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_the_one_pass_vertical_scan_finds_what_every_pair_finds(seed):
    """The vertical kernel keeps a running best partner instead of trying every pair (the full chain's 500-strike
    groups made 125,000 pairs each): on random, arbitrage-ridden groups with repeated strikes and tied prices it
    returns the same pairs, kinds and edges, in the same order."""
    from workstation.strategy.arbitrage import _vertical_kernel

    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 40, 12)
    bounds = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    n = int(bounds[-1])
    strike = np.concatenate([np.sort(rng.choice(np.arange(4000.0, 4400.0, 25.0), k)) for k in sizes])
    is_call = np.repeat(rng.random(sizes.size) < 0.5, sizes)
    discount = np.repeat(rng.uniform(0.95, 1.0, sizes.size), sizes)
    bid = np.round(rng.uniform(0.0, 60.0, n), 1)            # random quotes: arbitrage everywhere, ties common
    ask = bid + np.round(rng.uniform(0.1, 3.0, n), 1)
    rows = rng.permutation(n)                                 # the scan sees rows through `rows`
    order = np.empty(n, np.int64)
    order[rows] = np.arange(n)
    s_, b_, a_, c_, d_ = (v[order] for v in (strike, bid, ask, is_call, discount))   # row r's values at rows[p]
    fast = _vertical_kernel(rows, bounds, s_, b_, a_, d_, c_, 0.0125)
    slow = _verticals_by_every_pair(rows, bounds, s_, b_, a_, d_, c_, 0.0125)
    assert len(slow) > 20
    assert [(int(r[0]), int(r[1]), int(r[2])) for r in fast] == [(i, j, k) for i, j, k, _ in slow]
    np.testing.assert_allclose(fast[:, 3], [e for *_, e in slow], rtol=0, atol=1e-9)


def test_planted_put_slope_bound_violation_is_a_vertical():
    def edit(snap, bid, ask):
        lo, hi = row(snap, "2025-03-21", 6000.0, False), row(snap, "2025-03-21", 6025.0, False)
        d = forward_discount(np.array([snap.maturity[hi]]))[1][0]
        bid[hi] = ask[lo] + d * 25.0 + 0.7          # the higher put dearer than the lower by more than the strike gap
        ask[hi] = bid[hi] + 0.5
        return [lo, hi]
    surface, found, (lo, hi) = planted(edit)
    v = found["vertical"]
    i = [j for j, legs in enumerate(v.legs) if legs.tolist() == [lo, hi]]
    assert len(i) == 1
    assert v.quantity[i[0]].tolist() == [1.0, -1.0] and v.edge[i[0]] == pytest.approx(0.7, abs=1e-6)


def test_planted_calendar_is_found_at_the_same_forward_moneyness():
    def edit(snap, bid, ask):
        a, b = row(snap, "2025-04-17", 5800.0, False), row(snap, "2025-04-17", 5825.0, False)
        for r in (a, b):
            bid[r], ask[r] = 0.5 * bid[r], 0.6 * bid[r]
        return [a, b]
    surface, found, (a, b) = planted(edit)
    snap = surface.snapshot
    near = row(snap, "2025-03-21", 5800.0, False)
    cal = found["calendar"]
    i = [j for j, legs in enumerate(cal.legs) if legs[0] == near]
    assert len(i) == 1
    i = i[0]
    assert cal.legs[i].tolist() == [near, a, b]
    # by hand: normalised near bid against the far puts interpolated to the same K/F
    f1, d1 = surface.forward[near], surface.discount[near]
    f2, d2 = surface.forward[a], surface.discount[a]
    x = 5800.0 / f1
    lam = (5825.0 / f2 - x) / (5825.0 / f2 - 5800.0 / f2)
    edge = (snap.bid[near] / (d1 * f1) - (lam * snap.ask[a] + (1 - lam) * snap.ask[b]) / (d2 * f2)) * d1 * f1
    assert cal.edge[i] == pytest.approx(edge, rel=1e-9) and edge > 0
    q = (d1 * f1) / (d2 * f2)
    assert np.allclose(cal.quantity[i], [-1.0, lam * q, (1 - lam) * q])
    only_touching(found, [a, b])


def test_planted_parity_violation_is_found_against_the_implied_forward():
    def edit(snap, bid, ask):
        c = row(snap, "2025-02-21", 6000.0, True)
        bid[c] += 3.0
        ask[c] += 3.0
        return [c]
    surface, found, (c,) = planted(edit)
    snap = surface.snapshot
    p = row(snap, "2025-02-21", 6000.0, False)
    par = found["parity"]
    assert par.legs.tolist() == [[c, p]]
    assert par.quantity[0].tolist() == [-1.0, 1.0] and par.forward[0] == 1.0     # sell the synthetic, buy forward
    f, d = forward_discount(np.array([snap.maturity[c]]))
    edge = snap.bid[c] - snap.ask[p] - d[0] * (f[0] - 6000.0)
    assert par.edge[0] == pytest.approx(edge, abs=1e-6) and edge > 1.0
    only_touching(found, [c])


def test_relative_candidates_edge_is_after_fee_and_uncertainty():
    bid = np.array([9.0, 10.0, 10.0, np.nan])
    ask = np.array([9.5, 10.5, 10.5, 11.0])
    fair = np.array([10.0, 10.2, 11.6, 12.0])
    cands = relative_candidates(bid, ask, fair, uncertainty=np.array([0.1, 0.1, 0.3, 0.1]), fee=0.2)
    assert cands.rows.tolist() == [0, 2, 3]
    assert cands.side.tolist() == [1, 1, 1]
    assert np.allclose(cands.edge, [0.5 - 0.3, 1.1 - 0.5, 1.0 - 0.3])
    sell = relative_candidates(np.array([11.0]), np.array([11.5]), np.array([10.0]), np.array([0.2]), 0.1)
    assert sell.side.tolist() == [-1] and np.allclose(sell.edge, [0.7])


def cheap_quote() -> tuple:
    """The clean chain with the 2025-03-21 5700 put quoted 5.5-6 points under its value: (surface, its row)."""
    snap = clean_chain()
    r = row(snap, "2025-03-21", 5700.0, False)
    bid, ask = snap.bid.copy(), snap.ask.copy()
    true = float(0.5 * (bid[r] + ask[r]))
    bid[r], ask[r] = true - 6.0, true - 5.5
    return surface_of(with_quotes(snap, bid, ask)), r


def test_a_cheap_quote_is_a_relative_buy_and_nothing_else_is():
    surface, r = cheap_quote()
    fv = FairValueSurface()
    fit = fv.fit(surface)
    cv_iv, _ = fv.cross_validate(surface, fit, 5)
    cands = scan_relative(fit, cv_iv, fee=0.1)
    assert cands.rows.tolist() == [r] and cands.side.tolist() == [1]
    t = surface.maturity[r]
    f, d = forward_discount(np.array([t]))
    ref = black_price(f, 5700.0, t, d, smile(np.log(5700.0 / f)), False)[0]     # the smile the chain was built on
    assert fit.fair_price[r] == pytest.approx(ref, abs=0.1)
    assert 5.0 < cands.gross[0] < 6.0 and cands.edge[0] < cands.gross[0] - 0.1


@pytest.fixture(scope="module", params=CHAINS, ids=lambda p: p.stem)
def real_surface(request):
    if not request.param.exists():
        pytest.skip("real SPX chain not present in ../shared/data")
    from workstation.config import Settings
    from workstation.fit_command import fit_surface_for
    from workstation.market.replay import read_cboe_csv
    return fit_surface_for(read_cboe_csv(request.param), Settings())


def test_relative_flags_under_two_percent_of_a_real_snapshot(real_surface):
    fv = FairValueSurface()
    fit = fv.fit(real_surface)
    cv_iv, _ = fv.cross_validate(real_surface, fit, 5)
    cands = scan_relative(fit, cv_iv)
    assert len(cands) < 0.02 * fit.in_fit.sum()
    assert np.all(cands.edge > 0) and np.all(fit.in_fit[cands.rows])


def test_quote_arbitrage_on_a_real_snapshot_is_rare_and_well_formed(real_surface):
    found = find_arbitrage(real_surface)
    n = len(real_surface.snapshot)
    for kind, arb in found.items():
        assert len(arb) < 0.01 * n, kind
        assert np.all(arb.edge > 0)
        assert arb.legs.shape == arb.quantity.shape and np.all(arb.legs[:, :2] >= 0)


def test_a_background_cross_validation_gives_the_errors_the_scan_would_have_computed():
    """The live engine cross-validates beside the cycle (a thread of its pool): the scan that submits it knows no
    error yet, the first scan after it finished has exactly the in-scan errors; while one runs none starts; backtests
    (no executor) cross-validate in the scan, as before."""
    from concurrent.futures import ThreadPoolExecutor

    from workstation.config import PaperConfig, SignalsConfig
    from workstation.strategy.relative_signals import RelativeScanner

    surface, r = cheap_quote()
    fv = FairValueSurface()
    fit = fv.fit(surface)
    cfg, fees = SignalsConfig(relative_persist=1, relative_cv_every=3), PaperConfig()
    in_scan = RelativeScanner(fv)
    expected = in_scan.scan(fit, cfg, fees)
    assert [c.row for c in expected] == [r] and in_scan.errors

    with ThreadPoolExecutor(1) as pool:
        beside = RelativeScanner(fv, background=pool)
        assert beside.scan(fit, cfg, fees) == [] and beside.errors == {}      # submitted: nothing known yet
        running = beside._validating
        assert running is not None
        running.result()
        assert beside.scan(fit, cfg, fees) == expected                       # taken by the next scan
        assert beside.errors == in_scan.errors and beside._validating is None
        beside.scan(fit, cfg, fees)                                            # 2 of 3: not due
        assert beside._validating is None
        beside.scan(fit, cfg, fees)                                            # due again: submitted
        assert beside._validating is not None and beside._validating is not running
