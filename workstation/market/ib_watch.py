"""Which options the IB feed keeps quoted: a watch plan that spends the snapshot budget so that every watched expiry
gets enough fresh quotes for a fair-value slice.

Snapshot requests are paced (`ib.pacing_per_s`, less a reserve for orders), so only so many options can be
re-quoted before their quotes turn stale (`market.stale_after_s`): the capacity. The default window (0-400 days,
+-25 %: 2,106 options on the practice gateway, far more on a real SPX chain) is far beyond it, and a rotation over
all of it nearest the money first left each expiry a handful of fresh quotes, under the fair surface's minimum per
slice. The plan instead:

1. ranks the expiries: those the fair surface fits (its expiry window) first, nearest first, then the others;
2. gives each, in that order, the minimum a slice needs - PARITY_STRIKES strikes around the money on both sides
   (the forward from put-call parity) plus WING_FACTOR x the slice's minimum of out-of-the-money wings -
   while the capacity lasts; expiries beyond it are not watched (named in the log and the snapshot metadata);
3. shares what is left among the watched expiries equally, up to every option of each in the window;
4. picks each expiry's wings spread evenly over the strikes a smile is fitted to (out of the money, within
   WING_SD standard deviations at PLAN_VOL below the money and CALL_REACH of that above, the strike window and the
   fair surface's moneyness window), so a slice sees its skew, not only the strikes around the money.

Pure Python over objects with `strike`, `right` and `conId` (ib_async contracts or anything alike); no I/O.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

PARITY_STRIKES = 5        # strikes watched as put-call pairs: the forward (parity needs >= 3 pairs), spread over
PARITY_REACH = (0.01, 0.05)   # one standard deviation around the money, within these bounds, so the parity line's
                              # slope (the discount factor) is pinned: five pairs 5 points apart leave it to noise
WING_FACTOR = 3.0         # out-of-the-money wings per fit quote a slice needs: some quote no bid or too wide, and
                          # a smile of 1.5x its minimum failed its own butterfly check in ~1 slice of 5 (cold fits
                          # on the practice gateway; 3x: none) - thin slices are fragile fits
WING_SD = 3.0             # put wings spread over this many standard deviations of the expiry below the money,
PLAN_VOL = 0.25           # at this volatility (a plan made before any quote: no implied vol yet);
CALL_REACH = 0.5          # call wings over this share of the puts' reach (the skew: far calls quote no bid)
FRESH_SHARE = 0.5         # every watched option is re-quoted within this share of stale_after_s


@dataclass(frozen=True)
class SliceNeeds:
    """What the fair-value surface needs of an expiry (the engine passes strategy's FairValueSettings)."""

    min_days: float = 7.0
    max_days: float = 730.0
    min_quotes: int = 8
    max_moneyness: float = 0.2       # |K/F - 1| of a fit quote

    @property
    def per_expiry(self) -> int:
        """Options an expiry is watched with at least: parity pairs plus wings."""
        return 2 * PARITY_STRIKES + math.ceil(WING_FACTOR * self.min_quotes)

    def fitted(self, days: float) -> bool:
        return self.min_days <= days <= self.max_days


@dataclass(frozen=True)
class WatchPlan:
    """The options to keep quoted (expiry by expiry in priority order, each in its `ranked` order) and why."""

    options: list
    watched: list[tuple[str, str]]                       # (class, expiry) in priority order
    skipped: list[tuple[str, str]] = field(default_factory=list)   # in the window, beyond the capacity
    capacity: int = 0
    quota: dict[tuple[str, str], int] = field(default_factory=dict)

    def describe(self) -> str:
        watched = ", ".join(f"{c} {e}" for c, e in self.watched) or "none"
        text = f"watching {len(self.options)} options in {len(self.watched)} expiries ({watched})"
        if self.skipped:
            text += (f"; {len(self.skipped)} expiries not watched ({', '.join(f'{c} {e}' for c, e in self.skipped)}):"
                     f" the snapshot budget keeps {self.capacity} quotes fresh")
        return text


def capacity(per_cycle: int, interval_s: float, stale_after_s: float) -> int:
    """Options that can be re-quoted within FRESH_SHARE of `stale_after_s`, `per_cycle` requests per snapshot."""
    cycles = max(1, int(FRESH_SHARE * stale_after_s / max(interval_s, 1e-9)))
    return per_cycle * cycles


def spread_order(items: list) -> list:
    """`items` reordered so that every prefix is spread evenly over them (both ends, then the middle, then the
    quarters...): a quota of any size takes a smile's whole range, not its first strikes."""
    n = len(items)
    order: list[int] = []
    seen: set[int] = set()
    m = 2
    while len(order) < n:
        for j in range(min(m, n)):
            i = round(j * (n - 1) / max(min(m, n) - 1, 1))
            if i not in seen:
                seen.add(i)
                order.append(i)
        m = 2 * m - 1
    return [items[i] for i in order]


def ranked(contracts: list, index: float, days: float, window: float, needs: SliceNeeds) -> list:
    """One expiry's options in the window, in the order the plan takes them: the put-call pairs of PARITY_STRIKES
    strikes around the money (the nearest, the rest spread over about one standard deviation), then
    out-of-the-money wings spread over the smile's range (by strike), then the rest nearest the money first."""
    inside = [c for c in contracts if abs(c.strike / index - 1.0) <= window]
    inside.sort(key=lambda c: (abs(math.log(c.strike / index)), c.right))
    sd = PLAN_VOL * math.sqrt(max(days, 0.5) / 365.0)
    strikes = sorted({c.strike for c in inside})
    if not strikes:
        return []
    nearest = min(strikes, key=lambda k: abs(math.log(k / index)))
    parity = min(max(sd, PARITY_REACH[0]), PARITY_REACH[1])
    around = [k for k in strikes if abs(math.log(k / index)) <= parity]
    core_strikes = list(dict.fromkeys([nearest] + spread_order(around)))[:PARITY_STRIKES]
    core = sorted((c for c in inside if c.strike in core_strikes),
                  key=lambda c: (core_strikes.index(c.strike), c.right))
    reach = min(window, needs.max_moneyness, WING_SD * sd)
    wings = sorted((c for c in inside if c.strike not in core_strikes and _otm(c, index)
                    and abs(c.strike / index - 1.0) <= (reach if c.strike < index else CALL_REACH * reach)),
                   key=lambda c: c.strike)
    taken = {id(c) for c in core} | {id(c) for c in wings}
    return core + spread_order(wings) + [c for c in inside if id(c) not in taken]


def _otm(contract, index: float) -> bool:
    call = contract.right.upper().startswith("C")
    return call if contract.strike >= index else not call


def plan_watch(chain: dict[tuple[str, str], list], days: dict[tuple[str, str], float], index: float,
               window: float, budget: int, needs: SliceNeeds) -> WatchPlan:
    """The watch plan for `chain` ((class, expiry) -> contracts) around `index` within `budget` options."""
    lists = {key: ranked(cs, index, days[key], window, needs) for key, cs in chain.items()}
    lists = {k: v for k, v in lists.items() if v}
    order = sorted(lists, key=lambda k: (not needs.fitted(days[k]), days[k], k))
    quota: dict[tuple[str, str], int] = {}
    left = budget
    skipped: list[tuple[str, str]] = []
    for key in order:
        need = min(needs.per_expiry, len(lists[key]))
        if skipped or need > left:
            skipped.append(key)
            continue
        quota[key] = need
        left -= need
    while left > 0:                                   # the rest, shared equally up to each expiry's window
        open_ = [k for k in quota if quota[k] < len(lists[k])]
        if not open_:
            break
        share = max(1, left // len(open_))
        for k in open_:
            add = min(share, len(lists[k]) - quota[k], left)
            quota[k] += add
            left -= add
            if left == 0:
                break
    watched = [k for k in order if k in quota]
    picks = {k: lists[k][:quota[k]] for k in watched}
    # expiry by expiry in priority order: the first refreshes (never-quoted first, in this order) complete whole
    # slices one after another instead of leaving every expiry a few quotes short of a fit
    options = [c for k in watched for c in picks[k]]
    return WatchPlan(options, watched, skipped, budget, quota)
