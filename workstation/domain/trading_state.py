"""Trading state: what the engine may do right now."""
from __future__ import annotations

from enum import Enum


class TradingState(str, Enum):
    """ACTIVE trades; REDUCING only lets through what lowers risk; HALTED denies every order."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"
