"""What a fill costs and what an expiry pays, for the paper exchange and the backtest broker alike.

Commissions and fees per contract (a combo pays them on every leg), the taker's fill price with the configured
slippage, and cash settlement at intrinsic value of the settlement print (futures at the print on their tick).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from workstation.domain import Contract, SecType, Side, settlement_instant
from workstation.domain.contracts import index_scale
from workstation.domain.ticks import FUTURE_TICK, contract_tick

SETTLEMENT = "settlement"     # client order id prefix and liquidity flag of settlement fills


def expired(contract: Contract, at: datetime) -> bool:
    """True once `contract`'s settlement instant has passed."""
    return contract.expiry is not None and \
        settlement_instant(contract.expiry, contract.settlement.value == "AM") <= at


def commission(config, contract: Contract, quantity: int) -> float:
    """Commission plus exchange fees ($) for `quantity` contracts of `contract` under the `PaperConfig`."""
    if contract.sec_type is SecType.FUTURE:
        return config.future_commission * quantity
    return (config.commission_per_contract + config.fees_per_contract) * quantity


def taker_price(contract: Contract, side: Side, touch: float, slippage_ticks: int) -> float:
    """The fill price of a taker at `touch` (the ask for a buy, the bid for a sell) after slippage."""
    slip = slippage_ticks * contract_tick(contract.sec_type is SecType.FUTURE, touch)
    return max(round(touch + Side(side).sign * slip, 2), 0.0)


def settlement_value(contract: Contract, index: float, index_symbol: str = "SPX") -> float:
    """Cash value per unit of `contract` at a settlement print `index` of `index_symbol` (an SPX print
    settles XSP options at a tenth of it)."""
    if contract.sec_type is SecType.FUTURE:
        return round(index / FUTURE_TICK) * FUTURE_TICK
    level = index * index_scale(contract.symbol) / index_scale(index_symbol)
    value = max(level - contract.strike, 0.0) if contract.is_call else max(contract.strike - level, 0.0)
    return round(value, 4)


@dataclass(frozen=True, slots=True)
class SettlementTrade:
    """The closing trade that cash-settles a position at expiry (no commission)."""

    client_order_id: str
    side: Side
    quantity: int
    price: float
    broker_id: str


def settlement_trade(contract: Contract, position: int, index: float, index_symbol: str = "SPX") -> SettlementTrade:
    """The trade that flattens `position` of an expired `contract` at its settlement value."""
    return SettlementTrade(f"{SETTLEMENT}-{contract.expiry:%Y%m%d}", Side.SELL if position > 0 else Side.BUY,
                           abs(position), settlement_value(contract, index, index_symbol),
                           f"S{contract.contract_id}")
