"""The `model` signal family: where the arbitrage-free fair-value surface departs from the Heston-family model,
confirmed by the residual's own history, and tradable at the quotes.

The residual is fair IV - model IV at the contract's strike (vol points), only where the fair slice is trusted
(`FairValueFit.trusted_rows`: fitted this snapshot, inside the spread of >= MIN_INSIDE_PCT % of its quotes, a
liquid out-of-the-money quote it was fitted to); elsewhere it is NaN and the contract raises no `model` signal
(never a fall back to the quote). A candidate needs |z| >= min_zscore for that residual against the contract's
recent history, the side it says (sell where the surface is rich to the model, buy where cheap), a departure from
its usual residual worth the threshold, and an executable edge: bid - model - fee to sell, model - ask - fee to
buy (per unit of premium; x multiplier for dollars) >= threshold = max(min_edge_vol x vega, spread_multiple x
half-spread, min_edge_dollars).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Callable

import numpy as np

from ..config import SignalsConfig
from ..domain import ChainSnapshot, Side, Signal, SignalState, SignalStructure
from .calibrator import ModelValues
from .fair_value import VOL_POINT, FairValueFit
from .residuals import ResidualHistory
from .surface import Surface


@dataclass(frozen=True)
class Candidate:
    """A row of the chain that passes every signal test this cycle."""

    row: int
    contract_id: int
    side: Side
    edge: float            # per unit of premium
    edge_dollars: float    # per contract
    edge_vol: float        # vol points
    zscore: float
    vega: float            # dollars per vol point per contract
    model_price: float     # the value the edge is measured against (the fair value for `relative`)
    quantity: int
    family: str = "model"
    structure: SignalStructure | None = None     # the package proposed instead (strategy.structures)


# (contract_id, side, vega per contract) -> contracts the risk budget still allows
Budget = Callable[[int, Side, float], int]


class SignalModel:
    """Scans a surface and its model values for candidates; keeps the residual history."""

    def __init__(self, config: SignalsConfig) -> None:
        self.config = config
        self.history = ResidualHistory(config.history_length)
        self._latest: tuple[ChainSnapshot, np.ndarray] | None = None

    def residual(self, contract_id: int) -> float:
        """Latest IV residual of a contract, fair IV - model IV in vol points (NaN when unknown or untrusted)."""
        if self._latest is None:
            return float("nan")
        snap, residual = self._latest
        row = snap.index_of(contract_id)
        return float(residual[row]) if row is not None else float("nan")

    def usual_residual(self, contract_id: int) -> float:
        """The contract's usual residual: the median of its recent history.

        The model does not fit every strike exactly; a mispricing is a departure from this level, and a
        position taken on one has converged when the residual is back at the level it had at entry."""
        return self.history.median(contract_id)

    def scan(self, surface: Surface, model: ModelValues, fair: FairValueFit | None, fee_per_contract: float = 0.0,
             budget: Budget | None = None) -> list[Candidate]:
        """This snapshot's `model` candidates, best edge first (at most `max_open_signals`); appends the
        residuals to the history. `fee_per_contract`: commission + fees, dollars."""
        cfg = self.config
        snap = surface.snapshot
        residual = model_residual(surface, model, fair)
        rows = self.history.rows_for(snap.contract_id)
        self._latest = (snap, residual)

        mult = snap.multiplier
        half_spread = 0.5 * (snap.ask - snap.bid)
        vega_pt = model.vega                                          # per vol point, per unit
        threshold = np.maximum.reduce([cfg.min_edge_vol * vega_pt, cfg.spread_multiple * half_spread,
                                       cfg.min_edge_dollars / mult])
        days = surface.maturity * 365.0
        fee = fee_per_contract / mult
        buy_edge = model.price - snap.ask - fee                      # executable: at the ask, after fees
        sell_edge = snap.bid - model.price - fee
        with np.errstate(invalid="ignore"):
            eligible = (surface.usable & np.isfinite(residual) & np.isfinite(model.price)
                        & (vega_pt * mult >= cfg.min_vega)
                        & (days >= cfg.min_expiry_days) & (days <= cfg.max_expiry_days)
                        & ((buy_edge >= threshold) | (sell_edge >= threshold)))
        # history statistics only where the edge already pays: a few dozen rows, not the chain
        z = np.full(len(snap), np.nan)
        median = np.full(len(snap), np.nan)
        picked = np.flatnonzero(eligible)
        z[picked], count, median[picked] = self.history.zscores(rows[picked], residual[picked])
        eligible[picked[count < cfg.min_history]] = False
        self.history.append(rows, residual)
        # the departure from the contract's usual residual must pay for the trade too, not only the gap to
        # the model: a strike where the model always misses the surface is not an opportunity
        convergence = np.abs(residual - median) * vega_pt
        with np.errstate(invalid="ignore"):
            buy = (eligible & (buy_edge >= threshold) & (z <= -cfg.min_zscore) & (convergence >= threshold)
                   & (snap.ask_size >= cfg.min_size))
            sell = (eligible & (sell_edge >= threshold) & (z >= cfg.min_zscore) & (convergence >= threshold)
                    & (snap.bid_size >= cfg.min_size))

        out: list[Candidate] = []
        for side, mask, edge in ((Side.BUY, buy, buy_edge), (Side.SELL, sell, sell_edge)):
            for row in np.flatnonzero(mask):
                edge_vol = edge[row] / vega_pt[row]
                vega_c = float(vega_pt[row] * mult[row])
                size = int(min(cfg.max_quantity, cfg.base_quantity * max(1.0, edge[row] / threshold[row])))
                if budget is not None:
                    size = min(size, budget(int(snap.contract_id[row]), side, vega_c))
                if size < 1:
                    continue
                out.append(Candidate(int(row), int(snap.contract_id[row]), side, float(edge[row]),
                                     float(edge[row] * mult[row]), float(edge_vol), float(z[row]), vega_c,
                                     float(model.price[row]), size))
        out.sort(key=lambda c: -c.edge_dollars * c.quantity)
        return out[: cfg.max_open_signals]


def model_residual(surface: Surface, model: ModelValues, fair: FairValueFit | None) -> np.ndarray:
    """Per row, fair IV - model IV in vol points where the fair surface is trusted (`FairValueFit.trusted_rows`);
    NaN elsewhere, and everywhere when there is no fair surface of this snapshot."""
    out = np.full(len(surface.snapshot), np.nan)
    if fair is None or fair.surface.snapshot is not surface.snapshot:
        return out
    rows = fair.trusted_rows()
    out[rows] = (fair.fair_iv[rows] - model.iv[rows]) / VOL_POINT
    return out


class SignalBook:
    """Open signals and their lifecycle: NEW -> APPROVED / REJECTED / EXPIRED -> ORDERED."""

    def __init__(self, config: SignalsConfig, publish: Callable[[Signal, bool], None],
                 new_id: Callable[[], str] | None = None) -> None:
        self.config = config
        self.publish = publish          # (signal, state_changed): updates of a NEW signal's edge are not changes
        self._quiet_until: dict[tuple[int, Side, str], datetime] = {}
        counter = itertools.count(1)
        self.new_id = new_id or (lambda: f"S{next(counter)}")   # the engine passes the journal's counter
        self.open: dict[str, Signal] = {}
        self._by_key: dict[tuple[int, Side, str], str] = {}
        self.counts: dict[str, int] = {s.value: 0 for s in SignalState}

    def update(self, candidates: list[Candidate], surface: Surface, now: datetime) -> list[Signal]:
        """Refresh NEW signals from this cycle's candidates; expire the rest. Returns newly created ones."""
        snap = surface.snapshot
        seen: set[tuple[int, Side, str]] = set()
        created = []
        for c in candidates:
            key = (c.contract_id, c.side, c.family)
            seen.add(key)
            sid = self._by_key.get(key)
            if sid is None and self._quiet_until.get(key, now) > now:
                continue            # the same idea was just rejected, expired or ordered: let it rest
            fields = dict(bid=float(snap.bid[c.row]), ask=float(snap.ask[c.row]), model_price=c.model_price,
                          edge_dollars=c.edge_dollars, edge_vol=c.edge_vol, zscore=c.zscore, vega=c.vega,
                          quantity=c.quantity, structure=c.structure)
            if sid is None:
                signal = Signal(self.new_id(), snap.contract(c.row), c.side, now, **fields, family=c.family)
                self._add(signal)
                created.append(signal)
            elif self.open[sid].state is SignalState.NEW:
                self.open[sid] = replace(self.open[sid], **fields, updated_at=now)
                self.publish(self.open[sid], False)
        for sid, signal in list(self.open.items()):
            if signal.state is not SignalState.NEW:
                continue
            age = (now - signal.created_at).total_seconds()
            if _key(signal) not in seen:
                self.transition(sid, SignalState.EXPIRED, now, "edge gone")
            elif age > self.config.max_age_s:
                self.transition(sid, SignalState.EXPIRED, now, "timed out")
        return created

    def _add(self, signal: Signal) -> None:
        self.open[signal.signal_id] = signal
        self._by_key[_key(signal)] = signal.signal_id
        self.counts[signal.state.value] += 1
        self.publish(signal, True)

    def transition(self, signal_id: str, state: SignalState, now: datetime, reason: str = "") -> Signal | None:
        """Move a signal to `state`; closed states leave the open set. None when the id is unknown."""
        signal = self.open.get(signal_id)
        if signal is None:
            return None
        signal = signal.with_state(state, now, reason)
        self.counts[state.value] += 1
        if state.is_open:
            self.open[signal_id] = signal
        else:
            del self.open[signal_id]
            key = _key(signal)
            if self._by_key.get(key) == signal_id:
                del self._by_key[key]
            self._quiet_until[key] = now + timedelta(seconds=self.config.cooldown_s)
        self.publish(signal, True)
        return signal

    def get(self, signal_id: str) -> Signal | None:
        return self.open.get(signal_id)

    def new_signals(self) -> list[Signal]:
        return [s for s in self.open.values() if s.state is SignalState.NEW]


def _key(signal: Signal) -> tuple[int, Side, str]:
    """One open signal per contract, side and family."""
    return signal.contract.contract_id, signal.side, signal.family
