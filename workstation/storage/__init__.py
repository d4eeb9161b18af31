"""Storage: the SQLite journal (crash-safe record the book is rebuilt from), codecs and user paths."""
from .journal import (FitRecord, Journal, JournalError, JournalVersionError, RiskCheckRecord, SettingChange,
                      apply_fill, rebuild_positions)
from .schema import CURRENT_VERSION

__all__ = [
    "CURRENT_VERSION", "FitRecord", "Journal", "JournalError", "JournalVersionError", "RiskCheckRecord",
    "SettingChange", "apply_fill", "rebuild_positions",
]
