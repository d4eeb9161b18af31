"""Limit breaches of the book (daily loss, Greeks, VaR), stop losses per position, and the trading-state changes
the breaches call for."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from workstation.config import RiskConfig
from workstation.portfolio.greeks import DollarGreeks

from .limits import RiskCode, greek_limits
from .state import Lift, StateChange, TradingStateMachine

LIMIT_CODES = (RiskCode.DELTA_LIMIT, RiskCode.GAMMA_LIMIT, RiskCode.VEGA_LIMIT, RiskCode.VAR_LIMIT)


@dataclass(frozen=True, slots=True)
class Breach:
    """A limit the book is beyond: code, the measured value, the limit, and the position when per-contract."""

    code: RiskCode
    value: float
    limit: float
    message: str
    contract_id: int | None = None

    def as_dict(self) -> dict:
        return {"code": self.code.value, "value": self.value, "limit": self.limit, "message": self.message,
                "contract_id": self.contract_id}


def limit_breaches(greeks: DollarGreeks, var99: float, day_pnl: float, cfg: RiskConfig) -> list[Breach]:
    """Daily loss, |delta$|, |gamma$|, |vega$| and VaR99 against their limits."""
    out = []
    if day_pnl <= -cfg.max_daily_loss:
        out.append(Breach(RiskCode.DAILY_LOSS, day_pnl, -cfg.max_daily_loss,
                          f"day P&L ${day_pnl:,.0f} beyond the daily loss limit ${cfg.max_daily_loss:,.0f}"))
    for name, code, limit in greek_limits(cfg):
        value = getattr(greeks, name)
        if abs(value) > limit:
            out.append(Breach(code, value, limit, f"|{name}$| {abs(value):,.0f} above limit {limit:,.0f}"))
    if var99 > cfg.max_var_99:
        out.append(Breach(RiskCode.VAR_LIMIT, var99, cfg.max_var_99,
                          f"1-day VaR99 ${var99:,.0f} above limit ${cfg.max_var_99:,.0f}"))
    return out


def stop_losses(contract_ids, unrealized, stop_loss: float) -> list[Breach]:
    """Positions whose unrealised P&L ($) is a loss of more than `stop_loss` (e.g. signals.stop_loss_dollars)."""
    ids = np.asarray(contract_ids).reshape(-1)
    pnl = np.asarray(unrealized, dtype=float).reshape(-1)
    hit = np.flatnonzero(pnl < -stop_loss)
    return [Breach(RiskCode.STOP_LOSS, float(pnl[i]), -stop_loss,
                   f"position {int(ids[i])} down ${-pnl[i]:,.0f}, stop ${stop_loss:,.0f}", int(ids[i]))
            for i in hit]


def apply_breaches(machine: TradingStateMachine, breaches: Sequence[Breach], cfg: RiskConfig,
                   at: datetime) -> list[StateChange]:
    """Trading-state changes the breaches call for: daily loss -> daily_loss_action until the next day;
    Greek/VaR -> limit_breach_action, lifted by itself once clear when auto_resume_limits. Stops: none."""
    changes = []
    codes = {b.code for b in breaches}
    for b in breaches:
        change = None
        if b.code is RiskCode.DAILY_LOSS:
            change = machine.hold(b.code.value, cfg.daily_loss_action, b.message, at, Lift.NEXT_DAY)
        elif b.code in LIMIT_CODES and cfg.limit_breach_action != "NONE":
            lift = Lift.WHEN_CLEAR if cfg.auto_resume_limits else Lift.MANUAL
            change = machine.hold(b.code.value, cfg.limit_breach_action, b.message, at, lift)
        if change:
            changes.append(change)
    for code in LIMIT_CODES:
        if code not in codes:
            change = machine.release(code.value, at, reason=f"{code.value} back inside its limit")
            if change:
                changes.append(change)
    return changes
