"""Risk: pre-trade checks with named reason codes, the trading-state machine and the portfolio monitor."""
from .limits import CheckResult, RiskCode, RiskDecision
from .combo_checks import check_combo
from .pre_trade import ContractMarket, DailyMoves, RiskContext, check
from .state import Hold, Lift, StateChange, TradingStateMachine

__all__ = ["CheckResult", "RiskCode", "RiskDecision", "ContractMarket", "DailyMoves", "RiskContext", "check",
           "check_combo", "Hold", "Lift", "StateChange", "TradingStateMachine"]
