"""Work around a PySide6 6.12 refcount bug: `SignalInstance.emit()` returns `True` without a new reference.

Each emit then steals one reference from `True`; after a few thousand emits (minutes of a busy window) the
interpreter aborts with "Fatal Python error: bool_dealloc". Python 3.12+ makes True/False immortal, so
the bug is harmless there; on 3.11 we give them a very large reference count once, which has the same
effect. `None` gets the same treatment: under Xvfb the OpenGL paint path drains it the same way. Remove when PySide6 is fixed (check: `sys.getrefcount(True)` must not fall across emits).
"""
from __future__ import annotations

import ctypes
import sys

_EXTRA_REFS = 1 << 40
_applied = False


def make_bools_immortal() -> None:
    """Add 2**40 references to True, False and None (no-op on Python >= 3.12 and on repeat calls)."""
    global _applied
    if _applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    for value in (True, False, None):
        ctypes.c_ssize_t.from_address(id(value)).value += _EXTRA_REFS
    _applied = True


make_bools_immortal()
