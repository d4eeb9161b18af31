"""Contracts: the SPX/XSP index, its options and the hedge future, identified by a stable contract id."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from enum import Enum


# Index level per SPX point of each underlying: XSP (the Mini-SPX) is SPX / 10; its options list on that level.
INDEX_SCALE: dict[str, float] = {"SPX": 1.0, "XSP": 0.1}


def index_scale(symbol: str) -> float:
    """Level of `symbol`'s index per SPX point: 0.1 for XSP, 1 for SPX (and anything else)."""
    return INDEX_SCALE.get(symbol, 1.0)


class Right(str, Enum):
    """Option right."""

    CALL = "C"
    PUT = "P"


class SecType(str, Enum):
    """Instrument kind, named as in the TWS API."""

    INDEX = "IND"
    OPTION = "OPT"
    FUTURE = "FUT"


class Settlement(str, Enum):
    """SPX monthlies settle on the opening print (AM); SPXW/XSP on the close (PM)."""

    AM = "AM"
    PM = "PM"


@dataclass(frozen=True, slots=True)
class Contract:
    """One tradable (or quotable) instrument. Options carry expiry, strike and right."""

    contract_id: int
    symbol: str                       # underlying index: "SPX" or "XSP"
    sec_type: SecType = SecType.OPTION
    trading_class: str = ""           # "SPX" (AM monthlies), "SPXW" (PM weeklies), "XSP", "ES"/"MES"...
    expiry: date | None = None
    strike: float | None = None
    right: Right | None = None
    multiplier: float = 100.0
    settlement: Settlement = Settlement.PM
    exchange: str = "CBOE"
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not isinstance(self.contract_id, int) or self.contract_id <= 0:
            raise ValueError(f"Contract.contract_id must be a positive int, got {self.contract_id!r}")
        if not self.symbol:
            raise ValueError("Contract.symbol must not be empty")
        object.__setattr__(self, "sec_type", SecType(self.sec_type))
        object.__setattr__(self, "settlement", Settlement(self.settlement))
        if not (isinstance(self.multiplier, (int, float)) and math.isfinite(self.multiplier) and self.multiplier > 0):
            raise ValueError(f"Contract.multiplier must be > 0, got {self.multiplier!r}")
        if self.sec_type is SecType.OPTION:
            if self.expiry is None or self.strike is None or self.right is None:
                raise ValueError(f"option contract {self.contract_id} needs expiry, strike and right")
            if not math.isfinite(self.strike) or self.strike <= 0:
                raise ValueError(f"Contract.strike must be > 0, got {self.strike!r}")
            object.__setattr__(self, "right", Right(self.right))
            object.__setattr__(self, "strike", float(self.strike))
        elif self.sec_type is SecType.FUTURE and self.expiry is None:
            raise ValueError(f"future contract {self.contract_id} needs an expiry")

    @property
    def is_option(self) -> bool:
        return self.sec_type is SecType.OPTION

    @property
    def is_call(self) -> bool:
        return self.right is Right.CALL

    @property
    def local_symbol(self) -> str:
        """OCC-style symbol, e.g. 'SPXW 251017C06700000' (what a trader reads on a blotter)."""
        if self.sec_type is SecType.OPTION:
            assert self.expiry is not None and self.strike is not None and self.right is not None
            root = self.trading_class or self.symbol
            return f"{root:<6}{self.expiry:%y%m%d}{self.right.value}{round(self.strike * 1000):08d}"
        if self.sec_type is SecType.FUTURE and self.expiry is not None:
            return f"{self.trading_class or self.symbol} {self.expiry:%Y%m}"
        return self.symbol

    @property
    def description(self) -> str:
        """Short human label: 'SPXW 17Oct25 6700 C'."""
        if self.sec_type is SecType.OPTION:
            assert self.expiry is not None and self.right is not None
            return f"{self.trading_class or self.symbol} {self.expiry:%d%b%y} {self.strike:g} {self.right.value}"
        return self.local_symbol
