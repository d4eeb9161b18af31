"""Static arbitrage in the quotes themselves, tradable at the quoted prices after fees.

Four families, each found by one vectorised scan of the chain (numba kernels over strike-sorted groups):
- vertical: call prices must not rise with strike (buy the lower call at its ask, sell the higher at its bid for
  a credit) and must not fall faster than the discounted strike gap (the mirror for puts);
- butterfly: prices convex in strike on adjacent strikes (buy the wings at their asks, sell the body at its bid
  for a credit; weights (K3-K2)/(K3-K1) and (K2-K1)/(K3-K1) for uneven strikes);
- calendar: normalised prices c = price / (D F) non-decreasing in maturity at fixed forward moneyness K/F (sell the
  nearer option at its bid, buy the farther expiry at the same moneyness - interpolated between its two
  neighbouring strikes, which by convexity costs at least the option itself - at the asks). Locked in under
  deterministic rates and dividends proportional to the index (Gatheral's standard condition);
- parity: C - P = D (F - K) against the expiry's implied forward (buy the synthetic at ask/bid when it is cheaper
  than the forward, sell it when richer; the forward leg is the hedge future).

Each opportunity names its legs (Surface rows), signed quantities (+ buy at the ask, - sell at the bid) and the
locked-in edge per unit in index points after `fee` per option contract and leg.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..domain.snapshot import rows_by_series
from .surface import Filter, Surface

KINDS = ("vertical", "butterfly", "calendar", "parity")


@dataclass(frozen=True, eq=False)
class QuoteArbitrage:
    """Opportunities of one kind, one per row: legs (m, L) Surface rows (-1: no leg), quantity (m, L) signed
    units per leg, forward (m,) units of the forward bought (+) or sold (-) beside them, edge (m,) index points."""

    kind: str
    legs: np.ndarray
    quantity: np.ndarray
    forward: np.ndarray
    edge: np.ndarray

    def __len__(self) -> int:
        return int(self.edge.size)

    def describe(self, surface: Surface, i: int) -> str:
        """One line a trader reads: 'butterfly +0.5 C3900 -1 C3925 +0.5 C3950 2022-07-15: edge 0.35'."""
        snap = surface.snapshot
        parts = []
        for leg, q in zip(self.legs[i], self.quantity[i]):
            if leg >= 0:
                parts.append(f"{q:+.4g} {'C' if snap.is_call[leg] else 'P'}{snap.strike[leg]:g} {snap.expiry[leg]}")
        if self.forward[i]:
            parts.append(f"{self.forward[i]:+.4g} forward")
        return f"{self.kind} {' '.join(parts)}: edge {self.edge[i]:.4g}"


def tradable(surface: Surface) -> np.ndarray:
    """Rows with a live two-sided uncrossed quote and a forward (the window filters do not matter here)."""
    reason = surface.filter_reason
    dead = np.isin(reason, [Filter.NON_FINITE, Filter.NO_BID, Filter.CROSSED, Filter.STALE, Filter.NO_FORWARD])
    snap = surface.snapshot
    return ~dead & np.isfinite(snap.bid) & np.isfinite(snap.ask) & (snap.ask > snap.bid) & (snap.bid > 0)


def _groups(keys: np.ndarray, within: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`rows` sorted by (key, within) and the start of each key's run (with the end appended)."""
    order = np.lexsort((within[rows], keys[rows]))
    rows = rows[order]
    k = keys[rows]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if rows.size else np.zeros(0, np.int64)
    return rows, np.r_[starts, rows.size].astype(np.int64)


@njit(nogil=True, cache=True)
def _vertical_kernel(rows, bounds, strike, bid, ask, discount, is_call, fee):
    """For each lower strike the best arbitrage pair (monotonicity or the slope bound); (n, 4): K1 row, K2 row,
    which (0: monotone, 1: slope bound), edge.

    One pass per group from the highest strike down, keeping the best partner among the strikes above: each edge
    is a term of K1 plus a term of K2 (one expiry, one discount factor), so the best K2 for every K1 is a running
    maximum. (All pairs, as before, cost the full chain's 500-strike groups 125,000 pairs each.) Ties go to the
    lower K2, and to the monotone pair at one K2, as a scan from K1 upwards would pick."""
    partner = np.full(rows.size, -1, dtype=np.int64)     # per position of K1: K2's position, kind, edge
    kinds = np.zeros(rows.size)
    edges = np.zeros(rows.size)
    for g in range(bounds.size - 1):
        lo, hi = bounds[g], bounds[g + 1]
        call = is_call[rows[lo]]
        d = discount[rows[lo]]
        # the best K2 term among the strikes above, and its position: monotone (call: bid; put: -ask) and slope
        # bound (call: -(ask + d K); put: bid - d K)
        mono_v, mono_p = -np.inf, -1
        slope_v, slope_p = -np.inf, -1
        a = hi - 1
        while a >= lo:
            top = a                        # positions a..top share one strike: none pairs with another
            while a - 1 >= lo and strike[rows[a - 1]] == strike[rows[top]]:
                a -= 1
            if mono_p >= 0:
                for b in range(a, top + 1):
                    i = rows[b]
                    if call:
                        mono = mono_v - ask[i] - 2.0 * fee
                        slope = bid[i] + d * strike[i] + slope_v - 2.0 * fee
                    else:
                        mono = bid[i] + mono_v - 2.0 * fee
                        slope = slope_v - ask[i] + d * strike[i] - 2.0 * fee
                    best, best_p, kind = 0.0, -1, 0
                    if mono > best:
                        best, best_p, kind = mono, mono_p, 0
                    if slope > best or (best_p >= 0 and slope == best and slope_p < best_p):
                        best, best_p, kind = slope, slope_p, 1
                    partner[b], kinds[b], edges[b] = best_p, kind, best
            for b in range(top, a - 1, -1):      # the run joins the strikes above (its first row wins a tie)
                j = rows[b]
                mv = bid[j] if call else -ask[j]
                sv = -(ask[j] + d * strike[j]) if call else bid[j] - d * strike[j]
                if mv >= mono_v:
                    mono_v, mono_p = mv, b
                if sv >= slope_v:
                    slope_v, slope_p = sv, b
            a -= 1
    out = np.empty((rows.size, 4))
    m = 0
    for b in range(rows.size):                     # in strike order, as the lower strikes come
        if partner[b] >= 0:
            out[m, 0], out[m, 1], out[m, 2], out[m, 3] = rows[b], rows[partner[b]], kinds[b], edges[b]
            m += 1
    return out[:m]


@njit(nogil=True, cache=True)
def _butterfly_kernel(rows, bounds, strike, bid, ask, fee):
    """Adjacent-strike butterflies sold for a credit; (n, 6): rows K1, K2, K3, weights of K1 and K3, edge."""
    out = np.empty((rows.size, 6))
    m = 0
    for g in range(bounds.size - 1):
        for a in range(bounds[g] + 1, bounds[g + 1] - 1):
            i, j, k = rows[a - 1], rows[a], rows[a + 1]
            span = strike[k] - strike[i]
            if span <= 0 or strike[j] <= strike[i] or strike[k] <= strike[j]:
                continue
            lam = (strike[k] - strike[j]) / span
            edge = bid[j] - lam * ask[i] - (1.0 - lam) * ask[k] - 2.0 * fee
            if edge > 0.0:
                out[m, 0], out[m, 1], out[m, 2], out[m, 3], out[m, 4], out[m, 5] = i, j, k, lam, 1.0 - lam, edge
                m += 1
    return out[:m]


@njit(nogil=True, cache=True)
def _calendar_kernel(near_rows, far_rows, money_near, money_far, norm_near, norm_far, bid, ask, fee):
    """Near options (sorted by moneyness) against the far expiry's two neighbouring strikes at the same moneyness.
    (n, 6): near row, far rows a and b, their weights (of the normalised notional), edge (normalised)."""
    out = np.empty((near_rows.size, 6))
    m = 0
    nf = far_rows.size
    for a in range(near_rows.size):
        i = near_rows[a]
        x = money_near[a]
        j = np.searchsorted(money_far, x)
        if nf == 0 or j >= nf or (j == 0 and money_far[0] != x):
            continue
        if money_far[j] == x:
            lo, hi, lam = j, j, 1.0
        else:
            lo, hi = j - 1, j
            lam = (money_far[hi] - x) / (money_far[hi] - money_far[lo])
        cost = (lam * ask[far_rows[lo]] + (1.0 - lam) * ask[far_rows[hi]] if hi != lo else ask[far_rows[lo]]) \
            / norm_far[lo]
        edge = bid[i] / norm_near[a] - cost
        legs = 1.0 + (1.0 if hi == lo else 2.0)
        edge -= legs * fee / norm_near[a]
        if edge > 0.0:
            out[m, 0], out[m, 1], out[m, 2], out[m, 3], out[m, 4], out[m, 5] = i, far_rows[lo], far_rows[hi], \
                lam, 1.0 - lam, edge
            m += 1
    return out[:m]


def _empty(kind: str, legs: int) -> QuoteArbitrage:
    return QuoteArbitrage(kind, np.zeros((0, legs), np.int64), np.zeros((0, legs)), np.zeros(0), np.zeros(0))


def _strike_groups(surface: Surface, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """`rows` (default: the tradable ones) by expiry series and right, each group in strike order (`_groups`)."""
    snap = surface.snapshot
    rows = np.flatnonzero(tradable(surface)) if rows is None else rows
    return _groups(surface.expiry_index() * 2 + snap.is_call.astype(np.int64), snap.strike, rows)


def verticals(surface: Surface, fee: float = 0.0, rows: np.ndarray | None = None,
              groups: tuple[np.ndarray, np.ndarray] | None = None) -> QuoteArbitrage:
    """Monotonicity and slope-bound violations between two strikes of one expiry and right (`groups`: the
    rows' `_strike_groups`, when the caller has them)."""
    snap = surface.snapshot
    srt, bounds = groups if groups is not None else _strike_groups(surface, rows)
    found = _vertical_kernel(srt, bounds, snap.strike, snap.bid, snap.ask, surface.discount, snap.is_call, fee)
    if not len(found):
        return _empty("vertical", 2)
    k1, k2, kind = found[:, 0].astype(np.int64), found[:, 1].astype(np.int64), found[:, 2]
    call = snap.is_call[k1]
    # monotone: buy the dearer-by-right leg (call K1 / put K2); slope bound: the reverse
    buy_low = np.where(kind == 0, call, ~call)
    qty = np.stack([np.where(buy_low, 1.0, -1.0), np.where(buy_low, -1.0, 1.0)], axis=1)
    return QuoteArbitrage("vertical", np.stack([k1, k2], axis=1), qty, np.zeros(len(found)), found[:, 3])


def butterflies(surface: Surface, fee: float = 0.0, rows: np.ndarray | None = None,
                groups: tuple[np.ndarray, np.ndarray] | None = None) -> QuoteArbitrage:
    """Convexity violations on adjacent strikes of one expiry and right (the butterfly sold for a credit)."""
    snap = surface.snapshot
    srt, bounds = groups if groups is not None else _strike_groups(surface, rows)
    found = _butterfly_kernel(srt, bounds, snap.strike, snap.bid, snap.ask, fee)
    if not len(found):
        return _empty("butterfly", 3)
    legs = found[:, :3].astype(np.int64)
    qty = np.stack([found[:, 3], -np.ones(len(found)), found[:, 4]], axis=1)
    return QuoteArbitrage("butterfly", legs, qty, np.zeros(len(found)), found[:, 5])


def calendars(surface: Surface, fee: float = 0.0, rows: np.ndarray | None = None) -> QuoteArbitrage:
    """Normalised price falling from one expiry to the next (in maturity order) at fixed forward moneyness."""
    snap = surface.snapshot
    rows = np.flatnonzero(tradable(surface)) if rows is None else rows
    series = surface.expiry_index()
    n = len(surface.expiries)
    norm = surface.discount * surface.forward
    money = snap.strike / surface.forward
    # each expiry's puts (2 e) and calls (2 e + 1) in moneyness order, from one sort of the chain
    group = rows_by_series(np.where(series >= 0, series * 2 + snap.is_call, -1), 2 * n, rows, money)
    order = sorted((e for e in range(n) if group[2 * e].size or group[2 * e + 1].size),
                   key=lambda e: surface.expiries[e].maturity)
    found = []
    for near, far in zip(order[:-1], order[1:]):
        for call in (1, 0):
            nr, fr = group[near * 2 + call], group[far * 2 + call]
            if not nr.size or not fr.size:
                continue
            hit = _calendar_kernel(nr, fr, money[nr], money[fr], norm[nr], norm[fr], snap.bid, snap.ask, fee)
            if len(hit):
                found.append(hit)
    if not found:
        return _empty("calendar", 3)
    f = np.concatenate(found)
    near, a, b = (f[:, i].astype(np.int64) for i in range(3))
    scale = norm[near] / norm[a]               # far units per near unit (same normalised notional)
    same = a == b
    legs = np.stack([near, a, np.where(same, -1, b)], axis=1)
    qty = np.stack([-np.ones(len(f)), f[:, 3] * scale, np.where(same, 0.0, f[:, 4] * scale)], axis=1)
    return QuoteArbitrage("calendar", legs, qty, np.zeros(len(f)), f[:, 5] * norm[near])


def parity(surface: Surface, fee: float = 0.0, rows: np.ndarray | None = None) -> QuoteArbitrage:
    """Call and put of one strike whose synthetic forward, at the quoted prices, beats the implied forward."""
    snap = surface.snapshot
    rows = np.flatnonzero(tradable(surface)) if rows is None else rows
    series = surface.expiry_index()
    key = series[rows].astype(np.int64) * 1_000_000_000 + np.round(snap.strike[rows] * 100).astype(np.int64)
    calls, puts = rows[snap.is_call[rows]], rows[~snap.is_call[rows]]
    ck, pk = key[snap.is_call[rows]], key[~snap.is_call[rows]]
    common, ci, pi = np.intersect1d(ck, pk, return_indices=True)
    c, p = calls[ci], puts[pi]
    fwd_value = surface.discount[c] * (surface.forward[c] - snap.strike[c])
    buy = fwd_value - (snap.ask[c] - snap.bid[p]) - 2.0 * fee      # buy call, sell put, sell the forward
    sell = (snap.bid[c] - snap.ask[p]) - fwd_value - 2.0 * fee     # sell call, buy put, buy the forward
    edge = np.maximum(buy, sell)
    hit = edge > 0
    if not hit.any():
        return _empty("parity", 2)
    sign = np.where(buy[hit] >= sell[hit], 1.0, -1.0)
    legs = np.stack([c[hit], p[hit]], axis=1)
    qty = np.stack([sign, -sign], axis=1)
    return QuoteArbitrage("parity", legs, qty, -sign, edge[hit])


def find_arbitrage(surface: Surface, fee: float = 0.0) -> dict[str, QuoteArbitrage]:
    """Every static arbitrage in the quotes of one snapshot, by kind."""
    rows = np.flatnonzero(tradable(surface))
    groups = _strike_groups(surface, rows)          # one sort for both strike-wise scans
    return {"vertical": verticals(surface, fee, groups=groups), "butterfly": butterflies(surface, fee, groups=groups),
            "calendar": calendars(surface, fee, rows), "parity": parity(surface, fee, rows)}
