"""Payloads of the bus topics that are not domain values: fits, cycle reports, order previews."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .domain import HestonParams, Order
from .risk.limits import RiskDecision


@dataclass(frozen=True)
class FitEvent:
    """One calibration: accepted fits become the model; rejected ones keep the last good parameters."""

    timestamp: datetime
    params: HestonParams            # the Heston part of the parameters now in use (last good when rejected)
    rmse_iv: float                  # vol points
    max_abs_iv_error: float
    per_expiry_rmse: dict[str, float]
    iterations: int
    elapsed_ms: float
    quotes_used: int
    accepted: bool
    stale: bool                     # True while the model runs on older parameters
    message: str = ""
    feller_ok: bool = True
    model: str = "heston"           # calibration.model: heston | bates | heston_td
    model_params: Any = None        # the full parameters of `model` (params holds their Heston part); None: params


@dataclass(frozen=True)
class CycleReport:
    """What one engine cycle did and how long each step took."""

    sequence: int
    timestamp: datetime
    options: int
    usable: int
    timings_ms: dict[str, float]
    skipped_snapshots: int
    signals_open: int
    filter_counts: dict[str, int] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return float(sum(self.timings_ms.values()))


@dataclass(frozen=True)
class OrderPreview:
    """An order as it would be sent, with the pre-trade decision (what-if Greeks included).

    `sent` is True when the order actually went to the broker (approved and routed).
    """

    order: Order | None
    decision: RiskDecision | None   # None when no order could be built (see `message`)
    model_price: float
    mid: float
    edge_dollars: float
    sent: bool = False
    message: str = ""

    @property
    def approved(self) -> bool:
        return bool(self.decision is not None and self.decision.approved)
