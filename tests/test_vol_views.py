"""Vol views numerics against independent computations: the 25-delta risk reversal of a hand-built smile, total
variance interpolation, realised vol of known paths, a scenario cell against Black-76 by hand, bucket sums equal
to the portfolio's Greeks on the real engine, the bucket limit pre-trade, the metric history round trip."""
from __future__ import annotations

import asyncio
import math
from datetime import date, datetime, timezone

import numpy as np
import pytest
from scipy.optimize import brentq

from engine_support import SimRig, fast_settings
from workstation.analytics import realised
from workstation.analytics.history import MetricHistory, percentile_of
from workstation.analytics.skew import constant_maturities, smile_metrics
from workstation.domain import Position, Right, SecType
from workstation.domain.calendar import NEW_YORK
from workstation.domain.contracts import Contract
from workstation.risk import buckets
from workstation.risk.monitor import Exposure
from workstation.risk.scenarios import time_grid


def ncdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black(f: float, k: float, t: float, df: float, vol: float, call: bool) -> float:
    """Black-76 by hand (math.erf), independent of workstation.pricing."""
    sd = vol * math.sqrt(t)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if call:
        return df * (f * ncdf(d1) - k * ncdf(d2))
    return df * (k * ncdf(-d2) - f * ncdf(-d1))


# ------------------------------------------------------------------------------------------ skew
def smile(k: np.ndarray) -> np.ndarray:
    """A hand-built smile in log-moneyness: put skew and some curvature."""
    return 0.20 - 0.15 * k + 0.30 * k * k


def test_25_delta_risk_reversal_and_butterfly_of_a_hand_built_smile():
    f, t = 5000.0, 30 / 365
    strikes = np.arange(3500.0, 6500.0, 5.0)
    m = smile_metrics(strikes, smile(np.log(strikes / f)), f, t)

    def vol_at_call_delta(target: float) -> float:      # solve N(d1(k, σ(k))) = target for k
        def g(k):
            s = float(smile(np.array(k)))
            return ncdf((-k + 0.5 * s * s * t) / (s * math.sqrt(t))) - target
        return float(smile(np.array(brentq(g, -1.0, 1.0, xtol=1e-14))))

    c25, p25 = vol_at_call_delta(0.25), vol_at_call_delta(0.75)
    atm = 0.20
    assert m.atm_vol == pytest.approx(100 * atm, abs=1e-6)
    assert m.rr25 == pytest.approx(100 * (c25 - p25), abs=0.01)
    assert m.bf25 == pytest.approx(100 * (0.5 * (c25 + p25) - atm), abs=0.01)
    c10, p10 = vol_at_call_delta(0.10), vol_at_call_delta(0.90)
    assert m.rr10 == pytest.approx(100 * (c10 - p10), abs=0.02)
    assert m.rr25 < 0 < m.bf25 and m.slope > 0          # puts richer; wings above ATM


def test_constant_maturity_is_interpolated_in_total_variance():
    f = 5000.0
    strikes = np.arange(4000.0, 6000.0, 10.0)
    near = smile_metrics(strikes, np.full(len(strikes), 0.20), f, 20 / 365)
    far = smile_metrics(strikes, np.full(len(strikes), 0.30), f, 40 / 365)
    cm = constant_maturities([near, far], targets=(30, 60))
    expected = math.sqrt((0.04 * 20 + 0.09 * 40) / 2 / 30)       # σ²T linear in T, halfway
    assert cm[30].atm_vol == pytest.approx(100 * expected, abs=1e-4)
    assert cm[30].rr25 == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(cm[60].atm_vol)                              # beyond the last expiry: not extrapolated


# -------------------------------------------------------------------------------------- realised
def test_realised_vol_of_known_paths():
    r = 0.01 * np.array([1, -1] * 15, dtype=float)                  # |log return| 1 % every day
    closes = 5000 * np.exp(np.r_[0.0, np.cumsum(r)])
    assert realised.close_to_close(closes, 21) == pytest.approx(100 * 0.01 * math.sqrt(252), rel=1e-12)
    # intraday: a price every 5 s, each 5-minute bar closing 0.1 % from the last
    bars = 20
    seconds = np.arange(bars * 60) * 5.0
    level = 0.001 * np.array([1, -1] * (bars // 2), dtype=float).cumsum()
    prices = 5000 * np.exp(np.repeat(np.r_[level], 60))
    vol, n = realised.intraday(seconds, prices)
    assert n == bars - 1
    assert vol == pytest.approx(100 * 0.001 * math.sqrt(252 * 78), rel=1e-9)
    # Parkinson: every day's high/low 2 % apart
    highs, lows = np.full(10, 5050.0), 5050.0 * np.exp(-0.02) * np.ones(10)
    assert realised.parkinson(highs, lows) == pytest.approx(100 * math.sqrt(252 * 0.02**2 / (4 * math.log(2))))


def test_vol_cone_needs_two_windows_and_ranks_the_current_value():
    rng = np.random.default_rng(3)
    closes = 5000 * np.exp(np.r_[0.0, np.cumsum(0.01 * rng.standard_normal(150))])
    cone = realised.vol_cone(closes)
    assert np.isfinite(cone.levels[:2]).all()                        # 10 and 21 days: enough history
    assert np.isfinite(cone.levels[2]).all()                         # 63: 149 returns >= 2 x 63
    r = np.diff(np.log(closes))[-21:]
    assert cone.current[1] == pytest.approx(100 * math.sqrt(252 * np.mean(r * r)))
    assert (cone.levels[:, 0] <= cone.current).all() and (cone.current <= cone.levels[:, -1]).all()
    short = realised.vol_cone(closes[:40])
    assert np.isnan(short.levels[2]).all()


def test_metric_history_round_trip_and_percentile(tmp_path):
    h = MetricHistory(tmp_path, flush_every=2)
    for day, value in ((date(2026, 12, 1), 10.0), (date(2026, 12, 2), 20.0), (date(2026, 12, 3), 30.0)):
        for i in range(3):
            at = datetime(day.year, day.month, day.day, 15, i, tzinfo=timezone.utc)
            h.append(at, {"spot": 5000.0 + i, "market_30_atm_vol": value + i})
    h.flush()
    again = MetricHistory(tmp_path)
    days, values = again.daily("market_30_atm_vol")
    assert days == [date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)]
    assert values.tolist() == [12.0, 22.0, 32.0]
    assert percentile_of(25.0, values) == pytest.approx(200 / 3)


def test_the_metric_history_is_written_off_the_callers_thread_in_order(tmp_path, monkeypatch):
    """The engine appends a row every snapshot on the loop thread; every `flush_every` rows the day's file is
    rewritten, in the history's own writer thread (a process's first Parquet write took ~350 ms there): the
    append returns while the write is still going, writes land in order, and closing waits for them."""
    import threading

    h = MetricHistory(tmp_path, flush_every=2)
    gate, writes = threading.Event(), []
    write = h._write

    def slow_write(day, cols):
        assert gate.wait(30), "the write was never let through"
        writes.append(len(cols["spot"]))
        write(day, cols)
    monkeypatch.setattr(h, "_write", slow_write)
    at = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)
    for i in range(4):                                   # two saves queued behind the held write
        h.append(at.replace(minute=i), {"spot": 5000.0 + i})
    assert writes == []                                  # the appends did not wait for the file
    gate.set()
    h.close()
    assert writes == [2, 4]                              # in order, the last one whole
    days, values = MetricHistory(tmp_path).daily("spot")
    assert days == [date(2026, 12, 1)] and values.tolist() == [5003.0]


# ------------------------------------------------------------------------------------- scenarios
def _position(cid, qty, strike, call, expiry, sec=SecType.OPTION):
    contract = Contract(contract_id=cid, symbol="SPX", sec_type=sec, trading_class="SPXW", expiry=expiry,
                        strike=strike, right=(Right.CALL if call else Right.PUT) if sec is SecType.OPTION else None,
                        multiplier=100.0 if sec is SecType.OPTION else 50.0)
    return Position(contract, qty, 1.0)


def test_a_scenario_cell_is_black_76_repricing_at_the_shocked_forward_vol_and_time():
    now = datetime(2026, 12, 11, 15, 0, tzinfo=timezone.utc)        # a Friday: one trading day is Monday
    positions = [_position(1, 3, 5100.0, True, date(2027, 1, 15)), _position(2, -2, 4800.0, False, date(2026, 12, 18)),
                 _position(3, 1, 0.0, True, date(2027, 3, 19), SecType.FUTURE)]
    fwd = np.array([5010.0, 5002.0, 5020.0])
    df = np.array([0.995, 0.999, 1.0])
    mat = np.array([35.0, 7.04, 0.0]) / 365
    exp = Exposure.from_positions(positions, fwd, df, mat)
    vol = np.array([0.17, 0.21, np.nan])
    g = time_grid(exp, vol, now, expiry=[p.contract.expiry for p in positions])
    assert g.days[:3] == (0, 1, 5) and g.labels[3].startswith("expiry")
    i, j, d = 6, 3, 1                                                # +5 % forward, +5 vol points, 1 day
    s, dv = g.spot_shocks[i], g.vol_shocks[j]
    assert (s, dv) == (pytest.approx(0.05), 5.0)
    elapsed = 3 / 365                                                # Friday -> Monday
    expected = 0.0
    for q, k, call, f, t, dfi, v in ((3, 5100.0, True, 5010.0, mat[0], 0.995, 0.17),
                                     (-2, 4800.0, False, 5002.0, mat[1], 0.999, 0.21)):
        expected += q * 100 * (black(f * (1 + s), k, t - elapsed, dfi, v + dv / 100, call) - black(f, k, t, dfi, v, call))
    expected += 1 * 50 * 5020.0 * s                                   # the future
    assert g.pnl[d, i, j] == pytest.approx(expected, rel=1e-9)
    # the next expiry (18 Dec, 5 trading days): the put is worth its intrinsic value at the shocked forward
    e = 3
    assert g.days[e] == 5
    put_then = max(4800.0 - 5002.0 * (1 - 0.10), 0.0)
    call_then = black(5010.0 * 0.9, 5100.0, mat[0] - mat[1], 0.995, 0.17 + dv / 100, True)
    expected = (3 * 100 * (call_then - black(5010.0, 5100.0, mat[0], 0.995, 0.17, True))
                - 2 * 100 * (put_then - black(5002.0, 4800.0, mat[1], 0.999, 0.21, False)) + 50 * 5020.0 * -0.10)
    assert g.pnl[e, 0, j] == pytest.approx(expected, rel=1e-9)
    # term-scaled: the 7-day put's vol moves √(30/7.04) times the shock
    scaled = time_grid(exp, vol, now, term_scaled=True)
    v_put = 0.21 + dv / 100 * math.sqrt(30 / 7.04)
    v_call = 0.17 + dv / 100 * math.sqrt(30 / 35.0)
    want = (3 * 100 * (black(5010.0, 5100.0, mat[0], 0.995, v_call, True) - black(5010.0, 5100.0, mat[0], 0.995, 0.17, True))
            - 2 * 100 * (black(5002.0, 4800.0, mat[1], 0.999, v_put, False) - black(5002.0, 4800.0, mat[1], 0.999, 0.21, False)))
    assert scaled.pnl[0, 4, j] == pytest.approx(want, rel=1e-9)
    # sticky-delta: with skew dσ/dlnK = -0.2 a +5 % move lowers each strike's vol by 0.2 ln(1.05)
    sd = time_grid(exp, vol, now, skew=np.array([-0.2, -0.2, 0.0]), sticky="delta")
    v = 0.17 + 0.2 * math.log(1.05)
    assert sd.pnl[0, i, 2] - 50 * 5020.0 * s + 2 * 100 * (black(5002.0 * 1.05, 4800.0, mat[1], 0.999, 0.21 + 0.2 * math.log(1.05), False)
                                                         - black(5002.0, 4800.0, mat[1], 0.999, 0.21, False)) \
        == pytest.approx(3 * 100 * (black(5010.0 * 1.05, 5100.0, mat[0], 0.995, v, True)
                                    - black(5010.0, 5100.0, mat[0], 0.995, 0.17, True)), rel=1e-9)


# ---------------------------------------------------------------------------------- on the engine
def _trade(rig: SimRig, n: int = 4) -> None:
    """Buy a few out-of-the-money options across the expiry buckets; wait for the fills."""
    eng = rig.engine
    snap, sur = eng.last_snapshot, eng.last_surface
    days = sur.maturity * 365
    targets = [3, 20, 60, 200][:n]
    for target in targets:
        ok = sur.usable & (np.abs(days - target) < 25) & ~snap.is_call & (snap.strike < 0.97 * sur.forward) \
            & (snap.ask * 100 < eng.settings.risk.max_order_premium / 2) & (days > 1)
        rows = np.flatnonzero(ok)
        if not len(rows):
            continue
        row = rows[np.argmin(np.abs(days[rows] - target))]
        pv = eng.submit_order(int(snap.contract_id[row]), "BUY", 1, float(snap.ask[row]))
        assert pv.sent, pv.message


@pytest.fixture
def rig(tmp_path):
    s = fast_settings()
    s.hedging.enabled = True
    rig = SimRig(tmp_path, s)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(rig.open())
    yield rig, loop
    loop.run_until_complete(rig.close())
    loop.close()
    asyncio.set_event_loop(None)


def test_bucket_sums_equal_the_portfolio_greeks_on_the_engine(rig):
    rig, loop = rig
    for _ in range(4):
        loop.run_until_complete(rig.step())
    _trade(rig)
    for _ in range(4):
        loop.run_until_complete(rig.step())
    loop.run_until_complete(rig.engine.settle_tasks())
    summary = rig.engine.summary()
    held = [p for p in summary["positions"] if p["quantity"]]
    assert len(held) >= 3
    per = summary["risk_buckets"]
    assert list(per) == list(buckets.LABELS)
    assert sum(1 for g in per.values() if g["vega"]) >= 2            # more than one bucket holds risk
    for greek in ("delta", "gamma", "vega", "theta"):
        assert sum(g[greek] for g in per.values()) == pytest.approx(summary["greeks"][greek], rel=1e-9, abs=1e-6)
    views = rig.engine.vol_views.last
    assert views is not None and views.market.constant[30].atm_vol > 0
    # weighted vega: each expiry's vega$ x √(30 / days), and the buckets add up to the expiries
    for e, row in views.expiries.items():
        assert row["weighted_vega"] == pytest.approx(row["vega"] * math.sqrt(30 / max(row["days"], 1)))
        assert row["days"] == (e - views.at.astimezone(NEW_YORK).date()).days
    assert sum(b["weighted_vega"] for b in views.buckets.values()) == pytest.approx(
        sum(r["weighted_vega"] for r in views.expiries.values()))
    grid = summary["scenarios"]
    assert np.array(grid["pnl"]).shape == (len(grid["days"]), len(grid["spot_shocks"]), len(grid["vol_shocks"]))


def test_a_bucket_limit_denies_an_order_in_that_bucket_only(rig):
    rig, loop = rig
    for _ in range(4):
        loop.run_until_complete(rig.step())
    eng = rig.engine
    eng.settings.risk.bucket_limits.d8_30.vega = 1.0                  # $1 of vega: any 8-30 day option is too much
    snap, sur = eng.last_snapshot, eng.last_surface
    days = sur.maturity * 365
    pick = lambda lo, hi: int(np.flatnonzero(sur.usable & (days >= lo) & (days <= hi) & (snap.strike < sur.forward)
                                             & ~snap.is_call & (snap.ask * 100 < 20_000))[-1])
    inside, outside = pick(10, 28), pick(35, 85)
    denied = eng.preview_order(int(snap.contract_id[inside]), "BUY", 1, float(snap.ask[inside]))
    assert not denied.approved
    assert "BUCKET_LIMIT" in [c.value for c in denied.decision.reasons]
    check = next(r for r in denied.decision.results if r.code.value == "BUCKET_LIMIT")
    assert "8-30d" in check.detail and "vega$" in check.detail
    other = eng.preview_order(int(snap.contract_id[outside]), "BUY", 1, float(snap.ask[outside]))
    assert "BUCKET_LIMIT" not in [c.value for c in other.decision.reasons]


@pytest.mark.slow
def test_headless_json_has_the_vol_views(tmp_path):
    """A real short headless run: the summary carries skew, realised_vol, risk_buckets and scenarios."""
    import json

    from test_cli import run
    summary_file = tmp_path / "summary.json"
    out = run("headless", "--duration", "15", "--speed", "30", "--data-dir", str(tmp_path / "d"),
              "--json", str(summary_file), tmp=tmp_path, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    s = json.loads(summary_file.read_text())
    assert set(s["skew"]) == {"7", "30", "60", "90", "180", "365"}
    for days, m in s["skew"].items():
        assert set(m) == {"atm_vol", "rr25", "bf25"}
    m30 = s["skew"]["30"]
    assert 5 < m30["atm_vol"] < 80 and m30["rr25"] < 0 < m30["bf25"]          # vol points, put skew
    rv = s["realised_vol"]
    assert "window" in rv and "value" in rv
    assert rv["value"] is None or 0 < rv["value"] < 200
    assert list(s["risk_buckets"]) == list(buckets.LABELS)
    for greek in ("delta", "gamma", "vega", "theta"):
        assert sum(b[greek] for b in s["risk_buckets"].values()) == pytest.approx(s["greeks"][greek], rel=1e-9,
                                                                                  abs=1e-6)
    grid = s["scenarios"]
    assert {0, 1, 5} <= set(grid["days"]) and grid["days"] == sorted(grid["days"]) and len(grid["spot_shocks"]) == 9 and len(grid["vol_shocks"]) == 5
    assert np.array(grid["pnl"]).shape == (len(grid["days"]), 9, 5)
    assert list((tmp_path / "d" / "vol-metrics").glob("vol-metrics-*.parquet"))      # the history was written


def test_bucket_limit_is_no_worse_than_before():
    """A bucket already over its limit: an order adding vega there is denied, one taking vega off passes."""
    from test_risk_pre_trade import cfg, ctx, order
    from workstation.domain import Side
    from workstation.portfolio.greeks import DollarGreeks
    from workstation.risk.pre_trade import check
    settings = cfg(bucket_limits={"d8_30": {"vega": 1_000.0}}, allow_uncovered_shorts=True)
    over = {"8-30d": DollarGreeks(vega=5_000.0)}                          # 16 days to the order's expiry
    buy = check(order(), ctx(settings=settings, bucket_greeks=over))
    sell = check(order(side=Side.SELL, limit_price=50.5), ctx(settings=settings, bucket_greeks=over))
    bucket = lambda d: next(r for r in d.results if r.code.value == "BUCKET_LIMIT")   # noqa: E731
    assert not bucket(buy).passed and "8-30d" in bucket(buy).detail and "5,000 -> 6,400" in bucket(buy).detail     # 2 contracts x $700
    assert bucket(sell).passed
    other = check(order(), ctx(settings=cfg(bucket_limits={"d31_90": {"vega": 1.0}}), bucket_greeks=over))
    assert bucket(other).passed                                              # a limit on another bucket


def test_index_closes_come_from_the_snapshot_recordings(tmp_path):
    """Days only in the recordings give their index prices (row-group statistics) to the history: close-to-close
    realised vol over them is the hand-computed one."""
    from datetime import timedelta

    from workstation.domain import ChainSnapshot
    from workstation.market.recorder import SnapshotRecorder

    def snap(at: datetime, spot: float) -> ChainSnapshot:
        n = 3
        return ChainSnapshot.from_columns(timestamp=at, underlying="SPX", underlying_price=spot, columns={
            "contract_id": np.arange(n), "trading_class": np.array(["SPXW"] * n), "expiry": np.full(n, "2027-01-15",
            dtype="datetime64[D]"), "strike": np.array([5000.0, 5100.0, 5200.0]), "is_call": np.ones(n, bool),
            "bid": np.ones(n), "ask": np.full(n, 1.2), "bid_size": np.ones(n, np.int64), "ask_size": np.ones(n, np.int64)})

    closes = [5000.0, 5050.0, 4990.0, 5020.0]
    start = datetime(2026, 11, 30, 15, 0, tzinfo=timezone.utc)                 # Monday, 10:00 ET
    with SnapshotRecorder(tmp_path / "recordings") as rec:
        for i, close in enumerate(closes):
            day = start + timedelta(days=i)
            for k, spot in enumerate((close * 1.01, close * 0.98, close)):      # high, low, then the close
                rec.write(snap(day + timedelta(minutes=k), spot))
    h = MetricHistory(tmp_path / "metrics", recordings=tmp_path / "recordings")
    last, high, low = h.ranges("spot")
    assert last.tolist() == closes
    assert high == pytest.approx(np.array(closes) * 1.01) and low == pytest.approx(np.array(closes) * 0.98)
    r = np.diff(np.log(closes))
    assert realised.close_to_close(last) == pytest.approx(100 * math.sqrt(252 * np.mean(r * r)))
