"""Pricing core (pure numerics): Black-76, implied volatility, Heston pricing, Greeks and calibration."""
from workstation.domain.heston import HestonParams

from .black import black_greeks, black_price
from .implied_vol import implied_vol
from .results import CalibrationResult, Greeks

__all__ = ["HestonParams", "Greeks", "CalibrationResult", "black_price", "black_greeks", "implied_vol"]
