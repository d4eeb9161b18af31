"""Storage: the SQLite journal (crash-safe record the book is rebuilt from), codecs and user paths."""
from .journal import (FitRecord, Journal, JournalError, JournalVersionError, RiskCheckRecord, SettingChange,
                      apply_fill, rebuild_positions)
from .integrity import StorageError, check_data_dir
from .schema import CURRENT_VERSION

__all__ = [
    "CURRENT_VERSION", "FitRecord", "Journal", "JournalError", "JournalVersionError", "RiskCheckRecord",
    "SettingChange", "StorageError", "apply_fill", "check_data_dir", "rebuild_positions",
]
