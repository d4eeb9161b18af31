"""Where the workstation keeps its files: platformdirs user directories for the app "heston-workstation".

Functions only compute paths; the code that writes a file creates its directory.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "heston-workstation"
OVERRIDES_FILE = "overrides.yaml"


def default_data_dir() -> Path:
    """Journal and recordings (e.g. ~/.local/share/heston-workstation on Linux)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def data_dir_for(args: Any) -> Path:
    """The data dir of a command: its --data-dir (`args.data_dir`) when given, else `default_data_dir()`."""
    chosen = getattr(args, "data_dir", None)
    return Path(chosen) if chosen else default_data_dir()


def default_log_dir() -> Path:
    """Rotating log files (e.g. ~/.local/state/heston-workstation/log on Linux)."""
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def default_config_dir() -> Path:
    """User configuration (e.g. ~/.config/heston-workstation on Linux)."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def overrides_path() -> Path:
    """The user overrides YAML the settings dialog writes; layered over the --config file."""
    return default_config_dir() / OVERRIDES_FILE
