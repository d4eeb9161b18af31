"""Feeds and recordings: the sim feed, Parquet record -> replay round trip, the Cboe CSV, the record command."""
from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from workstation.config import Settings
from workstation.market.feed import FeedState, MarketFeed
from workstation.market.record_command import run_record
from workstation.market.recorder import SnapshotRecorder, file_metadata
from workstation.market.replay import ReplayFeed, read_cboe_csv, read_recording
from workstation.market.sim_feed import SimulatedFeed
from workstation.sim.world import SimWorld

DAY = date(2025, 10, 1)
CBOE_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "spx_2022-06-10_cboe.csv"


def sim_feed(interval_s: float = 5.0, speed: float = 60.0) -> SimulatedFeed:
    s = Settings()
    s.market.simulator.start_date = DAY
    s.market.simulator.speed = speed
    s.market.snapshot_interval_s = interval_s
    return SimulatedFeed.from_settings(s, world=SimWorld.from_settings(s, manual=True))


async def take(feed, n: int) -> list:
    out = []
    async for snap in feed.snapshots():
        out.append(snap)
        if len(out) == n:
            break
    return out


async def test_sim_feed_streams_snapshots_in_simulated_time_with_status():
    feed = sim_feed()
    assert isinstance(feed, MarketFeed)
    states = []
    feed.on_status.append(lambda s: states.append(s.state))
    await feed.connect()
    feed.select_chain("SPX", 7, 60, 0.1)
    snaps = await take(feed, 3)
    assert [(b.timestamp - a.timestamp).total_seconds() for a, b in zip(snaps, snaps[1:])] == [5.0, 5.0]  # market time
    assert all(len(s) > 100 for s in snaps) and [s.sequence for s in snaps] == [1, 2, 3]
    days = snaps[0].maturity * 365
    assert days.min() >= 7 and days.max() <= 60
    assert np.all(np.abs(snaps[0].strike / snaps[0].underlying_price - 1) <= 0.1)
    feed.world.clock.advance(7 * 3600)                      # after the close
    await take(feed, 1)
    assert feed.status.state is FeedState.STALE and feed.status.message == "market closed"
    await feed.close()
    assert states == [FeedState.CONNECTED, FeedState.STALE, FeedState.DISCONNECTED]
    with pytest.raises(ValueError):
        feed.select_chain("XSP", 0, 10, 0.1)


async def test_record_then_replay_is_exact(tmp_path):
    feed = sim_feed()
    await feed.connect()
    snaps = await take(feed, 4)
    with SnapshotRecorder(tmp_path) as rec:
        for s in snaps:
            rec.write(s)
    assert rec.files and rec.files[0].parent.name == "date=2025-10-01"
    assert file_metadata(rec.files[0])["source"] == "sim"
    table = pq.read_table(rec.files[0])
    for col in ("timestamp", "contract_id", "underlying", "trading_class", "expiry", "strike", "right", "bid",
                "ask", "bid_size", "ask_size", "underlying_price"):
        assert col in table.column_names
    assert table.num_rows == sum(len(s) for s in snaps)
    back = list(read_recording(tmp_path))
    assert len(back) == 4
    for a, b in zip(snaps, back):
        assert a.equals(b)
        assert (a.future, a.future_contract, a.sequence, b.source) == (b.future, b.future_contract, b.sequence, "sim")
    replay = ReplayFeed(tmp_path, speed=0)
    assert isinstance(replay, MarketFeed)
    played = await take(replay, 10)
    assert len(played) == 4 and all(a.equals(b) for a, b in zip(snaps, played))
    assert replay.status.state is FeedState.DISCONNECTED and replay.status.message == "replay finished"


async def test_replay_paces_and_selects(tmp_path):
    feed = sim_feed(interval_s=5.0, speed=1.0)                 # snapshots 5 s apart in simulated time
    await feed.connect()
    with SnapshotRecorder(tmp_path) as rec:
        for s in await take(feed, 3):
            rec.write(s)
    replay = ReplayFeed(tmp_path, speed=50.0)                  # 5 s / 50 = 0.1 s between snapshots
    replay.select_chain("SPX", 0, 30, 0.05)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    played = await take(replay, 3)
    assert loop.time() - t0 >= 0.18                           # paced: two gaps of 0.1 s (never faster)
    assert all(np.all(np.abs(s.strike / s.underlying_price - 1) <= 0.05) for s in played)


@pytest.mark.skipif(not CBOE_CSV.exists(), reason="shared Cboe data not present")
async def test_cboe_csv_reads_as_one_snapshot():
    snap = read_cboe_csv(CBOE_CSV)
    assert len(snap) == 18156 and snap.underlying == "SPX" and snap.underlying_price == pytest.approx(3900.8601)
    assert snap.am_settled.sum() == 6408 and set(np.unique(snap.trading_class)) == {"SPX", "SPXW"}
    assert np.all(snap.ask > snap.bid) and len(np.unique(snap.contract_id)) == len(snap)
    assert snap.maturity.min() > 0
    feed = ReplayFeed(CBOE_CSV)
    played = await take(feed, 5)
    assert len(played) == 1 and played[0].equals(snap)


def test_record_command_writes_parquet(tmp_path, capsys):
    s = Settings()
    s.market.snapshot_interval_s = 0.5
    code = run_record(s, duration=1.2, speed=30.0, out=tmp_path)
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("recorded ")
    snaps = list(read_recording(tmp_path))
    assert len(snaps) >= 2 and all(len(x) >= 1500 for x in snaps)
    gap = (snaps[1].timestamp - snaps[0].timestamp).total_seconds()
    assert 10 <= gap <= 25                                        # 0.5 wall s x speed 30
    assert run_record(s, duration=0, speed=None, out=tmp_path) == 2
