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


def gl_view_window():
    """A pyqtgraph 3-D view as a native OpenGL window, to embed with `QWidget.createWindowContainer`.

    pyqtgraph's GLViewWidget is a QOpenGLWidget, and one QOpenGLWidget switches its whole top-level window to
    OpenGL composition: every repaint of any panel then re-composes the entire window through OpenGL, which on
    a software renderer (remote desktops, Xvfb) cost the event loop 30-60 ms a frame. A native GL window renders
    only itself; the rest of the window keeps ordinary raster painting.
    """
    from PySide6.QtOpenGL import QOpenGLWindow
    from pyqtgraph.opengl.GLViewWidget import GLViewMixin

    class GLViewWindow(GLViewMixin, QOpenGLWindow):
        def devicePixelRatioF(self) -> float:        # the mixin asks a widget's name; a QWindow calls it this
            return float(self.devicePixelRatio())

        def grab(self):
            """The rendered view as a QImage (what a widget's grab() gives, for screenshots)."""
            return self.grabFramebuffer()

    return GLViewWindow()


def grab_with_gl(widget, gl_views) -> "QPixmap":
    """`widget.grab()` with the native GL windows inside it painted in (a grab does not see native windows).

    `gl_views`: (container widget, GL window) pairs; those visible inside `widget` are drawn at their place."""
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QPainter

    pixmap = widget.grab()
    painter = None
    for container, window in gl_views:
        if container is None or not container.isVisible() or not (container is widget or widget.isAncestorOf(container)):
            continue
        image = window.grabFramebuffer()
        if image.isNull():
            continue
        painter = painter or QPainter(pixmap)
        painter.drawImage(container.mapTo(widget, QPoint(0, 0)), image.scaled(container.size()))
    if painter is not None:
        painter.end()
    return pixmap
