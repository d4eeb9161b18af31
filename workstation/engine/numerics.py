"""The numerics of a cycle, run in the worker thread: surface (forwards, IVs, filters) and its sanity check,
the arbitrage-free fair-value surface, the Heston-family fit and the signal scan (the `model` family: the
trusted fair surface against the fit; the `relative` family: quotes against the fair surface; each candidate with
its proposed structure); then, on the loop thread,
the fit journaled, published and alerted on."""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from .. import bus as topics
from ..bus import EventBus
from ..config import Settings
from ..domain import ChainSnapshot, Severity, Side
from ..events import FitEvent
from ..strategy.calibrator import Calibrator, ModelValues
from ..strategy.arbitrage_signals import arbitrage_in
from ..strategy.fair_value import FairValueFit, FairValueSurface
from ..strategy.sanity import SanityGuard, SanityVerdict
from ..strategy.relative_signals import RelativeScanner, signal_fair
from ..strategy.signals import SignalModel
from ..strategy.structures import Values, with_structures
from ..strategy.surface import Surface, build_surface
from .market_view import AlertSink

log = logging.getLogger(__name__)

CONTRACT_MULTIPLIER = 100.0     # SPX and XSP options: fees in $ per contract -> index points per unit

Budget = Callable[[int, Side, float], int]


@dataclass
class Computed:
    """What the worker thread computed for one snapshot."""

    surface: Surface
    fit: FitEvent | None
    model: ModelValues | None
    candidates: list
    timings: dict[str, float]
    verdict: SanityVerdict
    fair: FairValueFit | None
    arbitrage: list = field(default_factory=list)      # strategy.arbitrage_signals.Arbitrage of this snapshot


class CycleNumerics:
    """Surface, sanity, fair value, calibration and the signal scan of one snapshot; the fit history."""

    def __init__(self, settings: Settings, journal, bus: EventBus, alert: AlertSink,
                 journal_failed: Callable[[str, BaseException], None]) -> None:
        self.settings = settings
        self.journal, self.bus, self.alert, self.journal_failed = journal, bus, alert, journal_failed
        self.calibrator = Calibrator(settings.calibration)
        self.sanity = SanityGuard(settings.market.sanity)
        self.fair_value = FairValueSurface()
        self.signal_model = SignalModel(settings.signals)
        self.relative = RelativeScanner(self.fair_value)
        self.last_fit: FitEvent | None = None
        self.fit_history: deque[FitEvent] = deque(maxlen=500)
        self.fit_ms: list[float] = []
        self.fit_rmse: list[float] = []
        self.fair_ms: list[float] = []

    def configure(self, settings: Settings) -> None:
        """New settings from the next cycle on."""
        self.settings = settings
        self.calibrator.config = settings.calibration
        self.sanity.config = settings.market.sanity
        self.signal_model.config = settings.signals

    def compute(self, snapshot: ChainSnapshot, now: datetime, budget: Budget, last_fair: FairValueFit | None
                ) -> Computed:
        """The numerical part of a cycle (worker thread): touches no shared state but the calibrator, the
        residual history and the sanity guard, which only the (sequential) cycles use."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        surface = build_surface(snapshot, self.settings.market, self.settings.calibration)
        surface, verdict = self.sanity.check(surface)
        surface.snapshot.build_index()          # the loop thread looks contracts up in it
        surface.prepare_views()                 # ... and draws the smiles from these
        t1 = time.perf_counter()
        timings["surface"] = (t1 - t0) * 1e3
        if verdict.skip:
            return Computed(surface, self.last_fit, None, [], timings, verdict, None)
        fair = self._fit_fair_value(surface, last_fair)
        t_fair = time.perf_counter()
        timings["fair_value"] = (t_fair - t1) * 1e3
        if self.settings.calibration.enabled or self.calibrator.last_good is None:
            fit, model = self.calibrator.fit(surface, now)
        else:
            fit, model = self.last_fit, self.calibrator.evaluate(self.calibrator.last_good, surface)
        t2 = time.perf_counter()
        families = self.settings.signals.families
        paper = self.settings.execution.paper
        fee_dollars = paper.commission_per_contract + paper.fees_per_contract                 # per contract
        candidates = self.signal_model.scan(surface, model, fair, fee_dollars, budget) \
            if model is not None and "model" in families else []
        if fair is not None and "relative" in families:
            candidates += self.relative.scan(fair, self.settings.signals, paper, budget)
        if candidates:
            values = {"model": Values(model.price, model.iv)} if model is not None else {}
            if fair is not None:
                values["relative"] = Values(signal_fair(fair), fair.fair_iv)
            candidates = with_structures(surface, candidates, values, fee_dollars, self.settings.signals)
        fee = fee_dollars / CONTRACT_MULTIPLIER                                                  # points per unit
        arbitrage = arbitrage_in(surface, fee) if "arbitrage" in families else []
        t3 = time.perf_counter()
        timings.update(calibration=(t2 - t_fair) * 1e3, signals=(t3 - t2) * 1e3)
        return Computed(surface, fit, model, candidates, timings, verdict, fair, arbitrage)

    def _fit_fair_value(self, surface: Surface, last_fair: FairValueFit | None) -> FairValueFit | None:
        """The arbitrage-free fair-value surface of this snapshot (worker thread), warm-started from the last;
        an expiry that cannot be fitted keeps its last good slice (marked `fallback`) or is marked `failed`."""
        started = time.perf_counter()
        try:
            fair = self.fair_value.fit(surface, last_fair)     # cycles run one at a time
        except Exception:           # the fair surface informs; it must never stop the cycle
            log.exception("fair-value fit failed")
            return None
        self.fair_ms.append((time.perf_counter() - started) * 1e3)
        return fair

    def after_fair(self, fair: FairValueFit | None, previous: FairValueFit | None) -> None:
        """Alert (journaled with the reason) when an expiry of the fair surface falls back, fails or loses every
        quote it was fitted to, once per change of its state (loop thread)."""
        if fair is None:
            return
        before = {s.key: s.status for s in previous.slices} if previous is not None else {}
        now = {s.key: s for s in fair.slices}
        news = [(s.key, s.status, s.reason) for s in fair.slices
                if s.status != "ok" and before.get(s.key, "ok") != s.status]
        news += [(key, "dropped", "no quotes left to fit") for key, status in before.items()
                 if key not in now and status != "dropped"]
        for (expiry, am), status, reason in news:
            self.alert("FAIR_VALUE_FALLBACK", Severity.WARNING,
                       f"fair value {str(expiry)[:10]} {'AM' if am else 'PM'}: {status} ({reason or 'no reason given'})",
                       source="fair value")

    def after_fit(self, fit: FitEvent, surface: Surface, now: datetime) -> None:
        """Journal, publish and alert on a fit (loop thread)."""
        if fit is self.last_fit:
            return
        self.last_fit = fit
        self.fit_history.append(fit)
        self.fit_ms.append(fit.elapsed_ms)
        if fit.accepted:
            self.fit_rmse.append(fit.rmse_iv)
        try:
            self.journal.record_fit(fit.params, rmse=fit.rmse_iv, elapsed_ms=fit.elapsed_ms,
                                    quotes_used=fit.quotes_used, accepted=fit.accepted, stale=fit.stale,
                                    timestamp=now, underlying=surface.snapshot.underlying, detail=fit.message)
        except Exception as exc:
            self.journal_failed("fit", exc)
        self.bus.publish(topics.FIT, fit)
        if not fit.accepted:
            self.alert("FIT_FAILED", Severity.WARNING,
                       f"fit rejected ({fit.message}); model stale, keeping the last good parameters")
        elif fit.elapsed_ms > self.settings.calibration.timeout_s * 1e3:
            self.alert("FIT_SLOW", Severity.WARNING, f"fit took {fit.elapsed_ms:.0f} ms")
