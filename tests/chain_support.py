"""Hand-built option chains for the fair-value and quote-arbitrage tests: Black-76 prices off a known forward,
discount and smile, quoted a fixed width around them (arbitrage-free by construction), and the real chains."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from workstation.config import Settings
from workstation.domain import ChainSnapshot
from workstation.pricing import black_price

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CHAINS = [DATA / "spx_2022-06-10_cboe.csv", DATA / "spx_2025-10-01_cboe_longdated.csv"]
NOW = datetime(2025, 1, 2, 18, 0, tzinfo=timezone.utc)        # 13:00 ET
SPOT = 6000.0
RATE = 0.04


def smile(k: np.ndarray) -> np.ndarray:
    """A smooth SPX-like skew in log-moneyness, the same at every expiry (so total variance grows with T)."""
    return 0.18 - 0.25 * k + 0.6 * k * k


def forward_discount(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return SPOT * np.exp((RATE - 0.01) * t), np.exp(-RATE * t)


def clean_chain(expiries=("2025-02-21", "2025-03-21", "2025-04-17"), strikes=np.arange(5000.0, 7001.0, 25.0),
                half_spread: float = 0.05, rel_half_spread: float = 0.004) -> ChainSnapshot:
    """Calls and puts on every strike and expiry; bid/ask = Black-76 price -/+ max(half_spread, rel x price)."""
    ex = np.repeat(np.array(expiries, dtype="datetime64[D]"), 2 * strikes.size)
    k = np.tile(np.r_[strikes, strikes], len(expiries))
    call = np.tile(np.r_[np.ones(strikes.size, bool), np.zeros(strikes.size, bool)], len(expiries))
    n = k.size
    cols = {"contract_id": np.arange(1, n + 1), "trading_class": np.full(n, "SPXW"), "expiry": ex, "strike": k,
            "is_call": call, "bid": np.zeros(n), "ask": np.zeros(n), "bid_size": np.full(n, 10),
            "ask_size": np.full(n, 10)}
    snap = ChainSnapshot.from_columns(timestamp=NOW, underlying="SPX", underlying_price=SPOT, columns=cols)
    t = snap.maturity
    f, d = forward_discount(t)
    price = black_price(f, k, t, d, smile(np.log(k / f)), call)
    h = np.maximum(half_spread, rel_half_spread * price)
    cols["bid"], cols["ask"] = np.maximum(price - h, 0.0), price + h
    cols["bid"][cols["bid"] < 0.05] = 0.0          # sub-nickel bids are not quoted
    return ChainSnapshot.from_columns(timestamp=NOW, underlying="SPX", underlying_price=SPOT, columns=cols)


def with_quotes(snap: ChainSnapshot, bid: np.ndarray, ask: np.ndarray) -> ChainSnapshot:
    cols = snap.columns()
    cols["bid"], cols["ask"] = bid, ask
    return ChainSnapshot.from_columns(timestamp=snap.timestamp, underlying=snap.underlying,
                                      underlying_price=snap.underlying_price, columns=cols)


def wide_settings() -> Settings:
    """Market filters that keep every listed expiry and strike (the fair-value fit applies its own window)."""
    s = Settings()
    s.market.min_expiry_days, s.market.max_expiry_days, s.market.strike_window = 0.0, 3650.0, 1.0
    return s


def row(snap: ChainSnapshot, expiry: str, strike: float, call: bool) -> int:
    hit = np.flatnonzero((snap.expiry == np.datetime64(expiry)) & (snap.strike == strike) & (snap.is_call == call))
    assert hit.size == 1
    return int(hit[0])


async def simulated_snapshots(n: int, day) -> list:
    """`n` clean simulated snapshots of `day`, 30 s apart, of a narrow chain (fast recordings and backtests)."""
    from workstation.market.sim_feed import SimulatedFeed

    s = Settings()
    s.market.simulator.start_date = day
    s.market.simulator.mispricing_max_spreads = 100.0   # planted in full: signals to trade (arbitrage too)
    s.market.snapshot_interval_s = 30.0
    s.market.simulator.min_wall_interval_s = 0.001
    feed = SimulatedFeed.from_settings(s, manual=True)
    await feed.connect()
    m = s.market
    feed.select_chain(m.underlying, m.min_expiry_days, m.max_expiry_days, 0.1)
    snaps = []
    async for snap in feed.snapshots():
        snaps.append(snap)
        if len(snaps) == n:
            break
    await feed.close()
    return snaps
