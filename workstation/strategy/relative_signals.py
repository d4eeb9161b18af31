"""The `relative` signal family through time: quotes that stray from the arbitrage-free fair-value surface by more
than fees, the minimum edge and the surface's own uncertainty at that strike — for `relative_persist` snapshots
in a row.

The uncertainty per expiry is the surface's cross-validated error (fold fits cold, `strategy.fair_value`),
refreshed every `signals.relative_cv_every` snapshots and carried by expiry series in between; an expiry not yet
cross-validated does not signal, nor one whose fit sits inside fewer than MIN_INSIDE_PCT % of its own quotes'
spreads this snapshot (`FairValueFit.trusted`: a fit that went wrong is no fair value).

The cross-validation is five cold fits of the whole surface: in the cycle, one snapshot in twenty takes that much
longer. Given a `background` executor (headless mode's pool), it runs there and its errors are taken by the first
scan after it finished; without one it runs in the scan: backtests must repeat exactly, and in the window a second
busy Python thread beside the cycle lengthened the event loop's worst stalls.
"""
from __future__ import annotations

import logging
import math
from concurrent.futures import Executor, Future

import numpy as np

from ..config import PaperConfig, SignalsConfig
from ..domain import Side
from ..pricing import black_greeks
from .fair_value import FairValueFit, FairValueSurface
from .relative import relative_candidates, slice_errors, uncertainty_from_errors
from .signals import Budget, Candidate

CV_FOLDS = 5

log = logging.getLogger(__name__)


def signal_fair(fit: FairValueFit) -> np.ndarray:
    """The fair price signals are measured against (NaN elsewhere): the surface's trusted rows
    (`FairValueFit.trusted_rows`)."""
    return np.where(fit.trusted_rows(), fit.fair_price, np.nan)


class RelativeScanner:
    """Scans each fair-value fit for `relative` candidates; keeps the expiry errors and the persistence."""

    def __init__(self, fair_value: FairValueSurface, background: Executor | None = None) -> None:
        self.fair_value = fair_value
        self.background = background                  # where cross-validations run (None: in the scan)
        self.errors: dict[tuple, float] = {}          # expiry series key -> cross-validated fair-IV error (vol)
        self._since_cv: int | None = None
        self._validating: Future | None = None        # a cross-validation running in the background
        self._streak: dict[tuple[int, int], int] = {}  # (contract id, side) -> snapshots in a row

    def _refresh_errors(self, fit: FairValueFit, every: int) -> None:
        if self._validating is not None and self._validating.done():
            validation, self._validating = self._validating, None
            try:
                self._take(*validation.result())
            except Exception:                 # the errors already known stay; the next one is due on schedule
                log.exception("the fair surface's cross-validation failed")
        if self._since_cv is not None and self._since_cv + 1 < every:
            self._since_cv += 1
            return
        if self.background is None:
            self._take(*self._validate(fit))
        elif self._validating is None:
            self._validating = self.background.submit(self._validate, fit)
        else:                                 # the last one is still running: due again once it is taken
            return
        self._since_cv = 0

    def _validate(self, fit: FairValueFit) -> tuple[FairValueFit, np.ndarray]:
        cv_iv, _ = self.fair_value.cross_validate(fit.surface, fit, CV_FOLDS)
        return fit, cv_iv

    def _take(self, fit: FairValueFit, cv_iv: np.ndarray) -> None:
        rms = slice_errors(fit, cv_iv)
        self.errors.update({s.key: float(rms[i]) for i, s in enumerate(fit.slices) if math.isfinite(rms[i])})

    def scan(self, fit: FairValueFit, cfg: SignalsConfig, fees: PaperConfig, budget: Budget | None = None
             ) -> list[Candidate]:
        """This snapshot's confirmed `relative` candidates, best edge first (at most `max_open_signals`)."""
        self._refresh_errors(fit, cfg.relative_cv_every)
        surface, snap = fit.surface, fit.surface.snapshot
        rms = np.array([self.errors.get(s.key, np.nan) for s in fit.slices] + [np.nan])
        uncertainty = uncertainty_from_errors(fit, rms, cfg.relative_uncertainty)
        mult = snap.multiplier
        fee = (fees.commission_per_contract + fees.fees_per_contract) / mult          # index points per unit
        fair = signal_fair(fit)
        found = relative_candidates(snap.bid, snap.ask, fair, uncertainty, fee, cfg.min_edge_dollars / mult)
        days = surface.maturity[found.rows] * 365.0
        size_shown = np.where(found.side > 0, snap.ask_size[found.rows], snap.bid_size[found.rows])
        keep = (days >= cfg.min_expiry_days) & (days <= cfg.max_expiry_days) & (size_shown >= cfg.min_size)
        streak: dict[tuple[int, int], int] = {}
        out: list[Candidate] = []
        for i in np.flatnonzero(keep):
            row, side = int(found.rows[i]), int(found.side[i])
            key = (int(snap.contract_id[row]), side)
            streak[key] = self._streak.get(key, 0) + 1
            if streak[key] < cfg.relative_persist:
                continue
            out.append(self._candidate(fit, row, side, float(found.edge[i]), float(found.gross[i]), cfg, budget))
        self._streak = streak                       # a gap of one snapshot starts the count again
        out = [c for c in out if c is not None and c.quantity >= 1]
        out.sort(key=lambda c: -c.edge_dollars * c.quantity)
        return out[: cfg.max_open_signals]

    @staticmethod
    def _candidate(fit: FairValueFit, row: int, side: int, edge: float, gross: float, cfg: SignalsConfig,
                   budget: Budget | None) -> Candidate | None:
        surface, snap = fit.surface, fit.surface.snapshot
        mult = float(snap.multiplier[row])
        vega_pt = float(black_greeks(surface.forward[row:row + 1], snap.strike[row:row + 1],
                                     surface.maturity[row:row + 1], surface.discount[row:row + 1],
                                     fit.fair_iv[row:row + 1], snap.is_call[row:row + 1]).vega[0])
        if not (vega_pt > 0 and mult * vega_pt >= cfg.min_vega):
            return None
        cost = gross - edge
        size = int(min(cfg.max_quantity, cfg.base_quantity * max(1.0, gross / cost if cost > 0 else 1.0)))
        trade_side = Side.BUY if side > 0 else Side.SELL
        if budget is not None:
            size = min(size, budget(int(snap.contract_id[row]), trade_side, vega_pt * mult))
        return Candidate(row, int(snap.contract_id[row]), trade_side, edge, edge * mult, edge / vega_pt,
                         math.nan, vega_pt * mult, float(fit.fair_price[row]), size, family="relative")
