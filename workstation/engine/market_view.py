"""The market the engine acts on: the last used snapshot, its surface, model values and fair surface.

One home for "what is this contract worth now": the order desk prices and checks against it, the marks and
the monitor revalue from it, and everything stale in it is named (`check_freshness`).
"""
from __future__ import annotations

import math
from datetime import datetime
from typing import Callable

import numpy as np

from ..config import Settings
from ..domain import ChainSnapshot, Contract, SecType, Severity
from ..market.freshness import Freshness, freshness
from ..portfolio.book import Book
from ..portfolio.greeks import DollarGreeks, dollar_greeks
from ..risk import revaluation
from ..risk.pre_trade import ContractMarket
from ..strategy.calibrator import ModelValues
from ..strategy.fair_value import FairValueFit
from ..strategy.surface import Surface

AlertSink = Callable[..., None]      # alert(code, severity, message, source=...)


class MarketView:
    """The last cycle's market (set by the engine after each used snapshot) and the questions asked of it."""

    def __init__(self, settings: Callable[[], Settings], clock: Callable[[], datetime], book: Book) -> None:
        self._settings = settings
        self.clock = clock
        self.book = book
        self.snapshot: ChainSnapshot | None = None
        self.surface: Surface | None = None
        self.model: ModelValues | None = None
        self.fair: FairValueFit | None = None       # the fair surface of the last used snapshot (warm start)
        self.freshness: Freshness | None = None

    def check_freshness(self, snapshot: ChainSnapshot, alert: AlertSink) -> Freshness:
        """The age of the index, the future and each option of `snapshot`; alert when the index or the future
        turns stale (each transition once)."""
        before = self.freshness
        fresh = freshness(snapshot, self._settings().market.stale_after_s)
        self.freshness = fresh
        for name, now_stale, was_stale in (
                ("index", fresh.index_stale, before is not None and before.index_stale),
                ("future", fresh.future_stale and snapshot.future_contract is not None,
                 before is not None and before.future_stale)):
            if now_stale and not was_stale:
                alert("DATA_STALE", Severity.WARNING, f"{name} price stale ({', '.join(fresh.stale())}): "
                                                      "not used for signals, hedges or marks")
        return fresh

    def market_for(self, contract: Contract) -> ContractMarket | None:
        """Bid, ask, model value and per-contract dollar Greeks of `contract` from the last cycle."""
        snap, surface, model = self.snapshot, self.surface, self.model
        if snap is None:
            return None
        if contract.sec_type is SecType.FUTURE:
            q = snap.future
            stale_after = self._settings().market.stale_after_s
            if q is None or not (self.clock() - q.timestamp).total_seconds() <= stale_after:
                return None                 # no price, or a frozen one
            mid = 0.5 * (q.bid + q.ask)
            return ContractMarket(q.bid, q.ask, mid, DollarGreeks(mid * 0.01 * contract.multiplier, 0, 0, 0),
                                  snap.underlying_price)
        row = snap.index_of(contract.contract_id)
        if row is None or surface is None:
            return None
        price = float(model.price[row]) if model is not None else math.nan
        if model is not None:
            d, g, v, th = dollar_greeks(*self.unit_greeks(surface, model, [row])[0], surface.forward[row],
                                        contract.multiplier, 1)
            greeks = DollarGreeks(float(d), float(g), float(v), float(th))
        else:
            greeks = DollarGreeks()
        return ContractMarket(float(snap.bid[row]), float(snap.ask[row]), price, greeks, snap.underlying_price)

    def contract_by_id(self, contract_id: int) -> Contract | None:
        """The contract with this id: in the last snapshot (option or hedge future), else in the book."""
        snap = self.snapshot
        if snap is not None:
            row = snap.index_of(contract_id)
            if row is not None:
                return snap.contract(row)
            if snap.future_contract is not None and snap.future_contract.contract_id == contract_id:
                return snap.future_contract
        pos = self.book.position(contract_id)
        return pos.contract if pos else None

    def unit_greeks(self, surface: Surface, model: ModelValues | None, rows: list[int]) -> np.ndarray:
        """Per-unit Greeks of chain `rows` under `risk.greeks_from` (one path: book, what-if and monitor)."""
        idx = np.asarray(rows, dtype=np.int64)
        snap = surface.snapshot
        vol = revaluation.market_vols(surface.iv_mid[idx], model.iv[idx] if model is not None else None)
        return revaluation.unit_greeks(self._settings().risk.greeks_from, surface.forward[idx], snap.strike[idx],
                                       surface.maturity[idx], surface.discount[idx], snap.is_call[idx], vol,
                                       (lambda: model.greeks(idx)) if model is not None else None)

    def position_markets(self, positions, surface: Surface
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Forward, discount, maturity and market vol per position (futures: their mark; unquoted: NaN)."""
        snap = surface.snapshot
        model = self.model
        model_iv = None if model is None or len(model.iv) != len(surface.iv_mid) else model.iv
        fwd, df, mat, vol = [], [], [], []
        for p in positions:
            row = snap.index_of(p.contract.contract_id)
            if row is not None:
                fwd.append(surface.forward[row]), df.append(surface.discount[row]), mat.append(surface.maturity[row])
                vol.append(revaluation.market_vols(surface.iv_mid[row:row + 1],
                                                   None if model_iv is None else model_iv[row:row + 1])[0])
            else:
                fwd.append(self.book.mark_of(p.contract.contract_id)), df.append(1.0), mat.append(0.0)
                vol.append(math.nan)
        return np.array(fwd, float), np.array(df, float), np.array(mat, float), np.array(vol, float)

    def mark_now(self, contract: Contract, fallback: float) -> float:
        """The contract's mark at this moment: the last snapshot's mid, else `fallback`."""
        snap = self.snapshot
        if snap is not None:
            row = snap.index_of(contract.contract_id)
            if row is not None and math.isfinite(snap.mid[row]):
                return float(snap.mid[row])
            if snap.future_contract is not None and snap.future_contract.contract_id == contract.contract_id \
                    and snap.future is not None:
                return 0.5 * (snap.future.bid + snap.future.ask)
        return fallback

