"""Data sanity: nothing acts on a number that has not earned it.

Per snapshot, against the last good values (vectorised over the chain):
- the index must sit near the options' own parity forward of the nearest expiry (`max_index_basis`), else the
  whole snapshot is skipped;
- the hedge future must sit near the options' forward nearest its expiry (`max_future_basis`), else its quote
  is dropped: no hedge, no mark, no order price from it;
- each quote's mid implied vol may move at most `max_iv_jump` (+ twice the index's move) from its last good
  value; a quote that jumped is unusable (Filter.JUMP, its bid/ask blanked) for signals, hedges and marks;
- a snapshot in which more than `max_bad_share` of the quotes jumped, or whose usable quotes fell by more than
  `max_usable_drop` (garbage prices fail the parity forwards and the IV inversion), is skipped as a whole.
A new level that persists for `confirm_snapshots` snapshots in a row is the market's, not a bad print, and is
accepted. Counts by reason accumulate in `counts` (the headless summary's `quality`, the log).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from ..config import SanityConfig
from .surface import Filter, Surface


@dataclass(frozen=True)
class SanityVerdict:
    """What the check found in one snapshot; `skip_reason` is empty when the snapshot may be used."""

    skip_reason: str = ""
    jumped: int = 0
    compared: int = 0
    future_dropped: str = ""          # why the future quote was dropped ("" when it was kept or absent)

    @property
    def skip(self) -> bool:
        return bool(self.skip_reason)


class SanityGuard:
    """Remembers the last good index, future basis and per-contract mid IV; flags what jumped."""

    def __init__(self, config: SanityConfig) -> None:
        self.config = config
        self.counts: Counter[str] = Counter()
        self._ids = np.zeros(0, np.int64)          # sorted contract ids with a last good IV
        self._good = np.zeros(0)                   # their last good mid IV
        self._cand = np.zeros(0)                   # a new level being confirmed (NaN: none)
        self._seen = np.zeros(0, np.int64)         # how many snapshots in a row it was seen
        self._index: float | None = None           # last good index level
        self._usable = 0                           # usable quotes in the last good snapshot

    # ---------------------------------------------------------------------------------------- check
    def check(self, surface: Surface) -> tuple[Surface, SanityVerdict]:
        """The surface with jumped quotes marked unusable (and blanked in its snapshot), and the verdict."""
        cfg, snap = self.config, surface.snapshot
        index_reason = self._index_basis(surface)
        index_move = self._index_move(snap.underlying_price)
        if index_reason:
            self.counts["INDEX_BAD"] += 1
            self.counts["SNAPSHOT_SKIPPED"] += 1
            return surface, SanityVerdict(skip_reason=index_reason)
        usable = int(np.count_nonzero(surface.usable))
        if self._usable and usable < (1.0 - cfg.max_usable_drop) * self._usable:
            self.counts["SNAPSHOT_SKIPPED"] += 1
            return surface, SanityVerdict(skip_reason=f"usable quotes fell from {self._usable:,} to {usable:,} "
                                                      f"({surface.filter_counts})")
        jumped, compared = self._iv_jumps(surface, index_move)
        share = jumped.sum() / compared if compared else 0.0
        if compared and share > cfg.max_bad_share:
            self.counts["SNAPSHOT_SKIPPED"] += 1
            return surface, SanityVerdict(
                skip_reason=f"{share:.0%} of {compared:,} quotes jumped more than "
                            f"{cfg.max_iv_jump * 100:.0f} vol points from their last good values",
                jumped=int(jumped.sum()), compared=compared)
        self._index = float(snap.underlying_price)
        self._usable = usable - int(jumped.sum())
        future_reason = self._future_basis(surface)
        if jumped.any() or future_reason:
            self.counts["JUMP"] += int(jumped.sum())
            if future_reason:
                self.counts["FUTURE_BAD"] += 1
            surface = _without(surface, jumped, drop_future=bool(future_reason))
        return surface, SanityVerdict(jumped=int(jumped.sum()), compared=compared, future_dropped=future_reason)

    # ------------------------------------------------------------------------------------ the parts
    def _index_basis(self, surface: Surface) -> str:
        """Why the index cannot be trusted ("" when it can): far from the nearest reliable parity forward."""
        near = [e for e in surface.expiries if e.reliable and math.isfinite(e.forward) and e.maturity > 0]
        if not near:
            return ""
        nearest = min(near, key=lambda e: e.maturity)
        spot = surface.snapshot.underlying_price
        gap = abs(spot / nearest.forward - 1.0)
        if gap > self.config.max_index_basis:
            return (f"index {spot:,.2f} is {gap:.1%} from the options' forward {nearest.forward:,.2f} "
                    f"({nearest.expiry}): index or chain is bad")
        return ""

    def _index_move(self, spot: float) -> float:
        """|log move| of the index since the last good snapshot (0 at the start)."""
        return abs(math.log(spot / self._index)) if self._index else 0.0

    def _future_basis(self, surface: Surface) -> str:
        snap = surface.snapshot
        q, fut = snap.future, snap.future_contract
        if q is None:
            return ""
        mid = 0.5 * (q.bid + q.ask)
        reliable = [e for e in surface.expiries if e.reliable and math.isfinite(e.forward)]
        if not reliable:
            return "" if math.isfinite(mid) and mid > 0 else "future quote has no price"
        target = np.datetime64(fut.expiry, "D") if fut is not None and fut.expiry is not None else None
        ref = min(reliable, key=lambda e: abs((e.expiry - target).astype(int)) if target is not None else e.maturity)
        if not (math.isfinite(mid) and mid > 0):
            return "future quote has no price"
        gap = abs(mid / ref.forward - 1.0)
        if gap > self.config.max_future_basis:
            return (f"future {mid:,.2f} is {gap:.1%} from the options' forward {ref.forward:,.2f}: "
                    f"its quote is not used")
        return ""

    def _iv_jumps(self, surface: Surface, index_move: float) -> tuple[np.ndarray, int]:
        """Rows whose mid IV jumped (bool mask aligned with the surface) and how many rows were compared.

        Updates the per-contract state: accepted rows become the new good values; a jumped row's new level is
        confirmed after `confirm_snapshots` sightings in a row."""
        cfg, snap = self.config, surface.snapshot
        ids, iv = snap.contract_id, surface.iv_mid
        live = (surface.filter_reason == Filter.OK) & np.isfinite(iv)
        good, cand, seen = np.full(len(ids), np.nan), np.full(len(ids), np.nan), np.zeros(len(ids), np.int64)
        known = np.zeros(len(ids), bool)
        if len(self._ids):
            pos = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
            known = live & (self._ids[pos] == ids)
            good = np.where(known, self._good[pos], np.nan)
            cand = np.where(known, self._cand[pos], np.nan)
            seen = np.where(known, self._seen[pos], 0)
        allowed = cfg.max_iv_jump + 2.0 * index_move
        with np.errstate(invalid="ignore"):
            jumped = known & (np.abs(iv - good) > allowed)
            again = jumped & (np.abs(iv - cand) <= 0.5 * allowed)     # the same new level seen once more
        seen = np.where(again, seen + 1, np.where(jumped, 1, 0))
        cand = np.where(again, cand, np.where(jumped, iv, np.nan))
        jumped &= seen < cfg.confirm_snapshots                          # confirmed: the market's new level
        good = np.where(live & ~jumped, iv, good)
        order = np.argsort(ids[live], kind="stable")
        self._ids = ids[live][order]
        self._good = good[live][order]
        self._cand = np.where(jumped, cand, np.nan)[live][order]
        self._seen = np.where(jumped, seen, 0)[live][order]
        return jumped, int(known.sum())


def _without(surface: Surface, jumped: np.ndarray, drop_future: bool) -> Surface:
    """`surface` with the jumped quotes unusable and blanked (and the future dropped): downstream code sees no
    quote rather than a bad one."""
    snap = surface.snapshot
    bid, ask = snap.bid.copy(), snap.ask.copy()
    bid[jumped] = np.nan
    ask[jumped] = np.nan
    clean = replace(snap, bid=bid, ask=ask, future=None if drop_future else snap.future)
    reason = surface.filter_reason.copy()
    reason[jumped] = Filter.JUMP
    nan_if = lambda a: np.where(jumped, np.nan, a)
    return replace(surface, snapshot=clean, filter_reason=reason, calibration_mask=surface.calibration_mask & ~jumped,
                   iv_bid=nan_if(surface.iv_bid), iv_mid=nan_if(surface.iv_mid), iv_ask=nan_if(surface.iv_ask))
