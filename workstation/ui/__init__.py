"""PySide6 user interface: the only package that imports Qt. Nothing imports it."""
from . import qtfix  # noqa: F401  (before any Qt signal is emitted)
