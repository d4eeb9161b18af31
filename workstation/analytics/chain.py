"""The chain board of one expiry: calls | strike | puts, per strike, as columns (numbers only, no Qt).

Per side: bid, ask, bid/ask IV, fair IV (the fair-value surface when there is one, else the model), model IV,
edge = fair IV - mid IV (vol points; > 0: the quote is cheap against fair), Black-76 forward delta and vega ($ per
vol point per contract) at the fair vol, and the contract id the panel trades.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..domain.snapshot import series_label
from ..pricing import black_greeks

SIDE_FIELDS = ("contract_id", "bid", "ask", "iv_bid", "iv_ask", "fair_iv", "model_iv", "edge", "delta", "vega")


@dataclass(frozen=True)
class Board:
    """One expiry: strikes ascending, `calls[name]` / `puts[name]` arrays aligned with them (NaN when absent;
    `contract_id` int64, -1 when absent)."""

    label: str
    strikes: np.ndarray
    calls: dict[str, np.ndarray]
    puts: dict[str, np.ndarray]
    forward: float
    days: float
    atm_index: int


def expiry_labels(surface) -> list[str]:
    """"YYYY-MM-DD AM|PM" of each expiry series of the surface, in its order."""
    return [series_label(e.expiry, e.am_settled) for e in surface.expiries]


def board(surface, series_index: int, model_iv: np.ndarray | None, fair_iv: np.ndarray | None = None
          ) -> Board | None:
    """The board of expiry series `series_index` of `surface` (None when the series has no rows). Only the
    series' own rows are read (`Surface.expiry_rows`, grouped in the engine's worker): the window's thread
    makes no pass over the whole chain."""
    snap = surface.snapshot
    if not 0 <= series_index < len(surface.expiries):
        return None
    rows = surface.expiry_rows[series_index]
    if not len(rows):
        return None
    n = len(snap)
    model = model_iv[rows] if model_iv is not None and len(model_iv) == n else np.full(len(rows), np.nan)
    fair = model                                 # the fair-value surface where it has a value, else the model
    if fair_iv is not None and len(fair_iv) == n:
        fair = fair_iv[rows]
        fair = np.where(np.isfinite(fair), fair, model)
    strikes = np.unique(snap.strike[rows])
    f = float(surface.forward[rows[0]])
    t = float(surface.maturity[rows[0]])
    vol = np.where(np.isfinite(fair), fair, surface.iv_mid[rows])
    g = black_greeks(surface.forward[rows], snap.strike[rows], surface.maturity[rows], np.ones(len(rows)),
                     vol, snap.is_call[rows])
    cols = {"contract_id": snap.contract_id[rows], "bid": snap.bid[rows], "ask": snap.ask[rows],
            "iv_bid": np.where(snap.bid[rows] > 0, 100 * surface.iv_bid[rows], np.nan),   # no bid: no bid IV
            "iv_ask": 100 * surface.iv_ask[rows],
            "fair_iv": 100 * fair, "model_iv": 100 * model,
            "edge": 100 * (fair - surface.iv_mid[rows]), "delta": np.asarray(g.delta),
            "vega": np.asarray(g.vega) * snap.multiplier[rows]}
    pos = np.searchsorted(strikes, snap.strike[rows])
    sides = {}
    for name, is_call in (("calls", True), ("puts", False)):
        mine = snap.is_call[rows] == is_call
        sides[name] = {}
        for field, values in cols.items():
            out = np.full(len(strikes), -1 if values.dtype.kind == "i" else np.nan, dtype=values.dtype)
            out[pos[mine]] = values[mine]           # contract ids stay int64 (-1: none): ids exceed 2**53
            sides[name][field] = out
    atm = int(np.argmin(np.abs(strikes - f))) if np.isfinite(f) else int(np.argmin(np.abs(strikes - snap.underlying_price)))
    label = expiry_labels(surface)[series_index]
    return Board(label, strikes, sides["calls"], sides["puts"], f, t * 365.0, atm)
