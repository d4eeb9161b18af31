"""Can this session show OpenGL views? Offscreen/minimal platforms and failed context probes say no."""
from __future__ import annotations

import os

from PySide6.QtGui import QGuiApplication, QOffscreenSurface, QOpenGLContext

NO_GL_PLATFORMS = ("offscreen", "minimal", "vnc")
_cache: dict[str, tuple[bool, str]] = {}


def opengl_status(mode: str = "auto") -> tuple[bool, str]:
    """(usable, why not). `mode` is UIConfig.opengl: 'off' never, 'on' skips the platform check."""
    if mode == "off":
        return False, "3-D view switched off (ui.opengl: off)"
    if mode in _cache:
        return _cache[mode]
    result = _probe(mode)
    _cache[mode] = result
    return result


def _probe(mode: str) -> tuple[bool, str]:
    platform = (QGuiApplication.platformName() or os.environ.get("QT_QPA_PLATFORM", "")).lower()
    if mode != "on" and platform in NO_GL_PLATFORMS:
        return False, f"no OpenGL on the '{platform}' display platform: showing 2-D views"
    try:
        import OpenGL.GL  # noqa: F401  (pyqtgraph.opengl needs PyOpenGL)
        import pyqtgraph.opengl  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the machine
        return False, f"OpenGL libraries unavailable ({exc.__class__.__name__}): showing 2-D views"
    surface = QOffscreenSurface()
    surface.create()
    context = QOpenGLContext()
    if not context.create() or not surface.isValid() or not context.makeCurrent(surface):
        return False, "could not create an OpenGL context (remote desktop or missing driver): showing 2-D views"
    context.doneCurrent()
    return True, ""
