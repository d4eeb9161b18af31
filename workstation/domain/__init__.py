"""Value types the whole system speaks: frozen, validated at construction, Qt- and I/O-free."""
from .alerts import Alert, Severity
from .contracts import Contract, Right, SecType, Settlement
from .heston import HestonParams
from .heston_family import TD_BUCKET_ENDS, BatesParams, TimeDependentHestonParams
from .orders import Fill, Order, OrderEvent, OrderPurpose, OrderStatus, OrderType, Side
from .positions import Position
from .quotes import Quote
from .signals import Signal, SignalState, SignalStructure
from .snapshot import COLUMNS, ChainSnapshot, settlement_instant
from .trading_state import TradingState

__all__ = [
    "Alert", "Severity", "Contract", "Right", "SecType", "Settlement", "HestonParams", "BatesParams",
    "TimeDependentHestonParams", "TD_BUCKET_ENDS", "Fill", "Order",
    "OrderEvent", "OrderPurpose", "OrderStatus", "OrderType", "Side", "Position", "Quote", "Signal",
    "SignalState", "SignalStructure", "COLUMNS", "ChainSnapshot", "settlement_instant", "TradingState",
]
