"""Dark theme: one palette, one set of fonts, and the colours that mean the same thing everywhere.

Green is always a gain / long / passed check, red always a loss / short / denial / live money.
"""
from __future__ import annotations

import math
import numbers
from pathlib import Path

from PySide6.QtGui import QColor, QFont, QFontDatabase, QIcon, QPalette
from PySide6.QtWidgets import QApplication

RESOURCES = Path(__file__).resolve().parents[2] / "resources"

BACKGROUND = "#14171c"
PANEL = "#1b1f26"
BASE = "#101317"
ALTERNATE = "#171b21"
BORDER = "#2b313b"
TEXT = "#d7dce2"
MUTED = "#8b95a1"
ACCENT = "#4c9ff0"
POSITIVE = "#3fb950"        # gains, longs, passed checks
NEGATIVE = "#f2564b"        # losses, shorts, denials, LIVE
WARNING = "#e3a43a"
INFO = "#58a6ff"
LIVE = NEGATIVE

SEVERITY_COLOURS = {"INFO": INFO, "WARNING": WARNING, "ERROR": "#ff7b54", "CRITICAL": NEGATIVE}
STATE_COLOURS = {"ACTIVE": POSITIVE, "REDUCING": WARNING, "HALTED": NEGATIVE}

_STYLE = f"""
QMainWindow, QDialog {{ background: {BACKGROUND}; }}
QDockWidget {{ color: {TEXT}; titlebar-close-icon: none; }}
QDockWidget::title {{ background: {PANEL}; padding: 4px 6px; border-bottom: 1px solid {BORDER}; }}
QToolTip {{ color: {TEXT}; background: {PANEL}; border: 1px solid {BORDER}; }}
QHeaderView::section {{ background: {PANEL}; color: {MUTED}; border: 0; border-right: 1px solid {BORDER};
                       border-bottom: 1px solid {BORDER}; padding: 3px 6px; }}
QTableView {{ gridline-color: {BORDER}; selection-background-color: #24476e; }}
QPushButton {{ background: #242a33; border: 1px solid {BORDER}; border-radius: 3px; padding: 4px 10px; }}
QPushButton:hover {{ background: #2c3440; }}
QPushButton:disabled {{ color: #59616c; }}
QPushButton#killSwitch {{ background: #a3201a; color: white; font-size: 16pt; font-weight: bold;
                         border: 2px solid #ff5a4f; border-radius: 6px; padding: 10px; }}
QPushButton#killSwitch:hover {{ background: #c4271f; }}
QPushButton#approve {{ background: #1d5b2a; }}
QPushButton#reject {{ background: #6b2320; }}
QStatusBar QLabel {{ padding: 0 8px; border-right: 1px solid {BORDER}; }}
QLabel#note {{ color: {WARNING}; }}
QLabel#denied {{ color: {NEGATIVE}; font-weight: bold; }}
QLabel#approved {{ color: {POSITIVE}; font-weight: bold; }}
QLabel#error {{ color: {NEGATIVE}; }}
QTabWidget::pane {{ border: 1px solid {BORDER}; }}
"""


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style, dark palette, one UI font and the stylesheet above."""
    app.setStyle("Fusion")
    pal = QPalette()
    colours = {
        QPalette.Window: BACKGROUND, QPalette.WindowText: TEXT, QPalette.Base: BASE,
        QPalette.AlternateBase: ALTERNATE, QPalette.ToolTipBase: PANEL, QPalette.ToolTipText: TEXT,
        QPalette.Text: TEXT, QPalette.Button: PANEL, QPalette.ButtonText: TEXT, QPalette.BrightText: "#ffffff",
        QPalette.Highlight: "#2f6db3", QPalette.HighlightedText: "#ffffff", QPalette.Link: ACCENT,
        QPalette.PlaceholderText: MUTED,
    }
    for role, colour in colours.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.Text, QPalette.ButtonText, QPalette.WindowText):
        pal.setColor(QPalette.Disabled, role, QColor("#59616c"))
    app.setPalette(pal)
    font = QFont("DejaVu Sans", 9)
    app.setFont(font)
    app.setStyleSheet(_STYLE)
    try:
        import pyqtgraph as pg
        # no antialiasing: the plots repaint every cycle on the loop thread, and antialiased QPainter lines
        # were the largest share of the window's stalls in benchmarks/gui.py
        pg.setConfigOptions(background=BASE, foreground=TEXT, antialias=False)
    except ImportError:  # pragma: no cover - pyqtgraph is a dependency
        pass


def restyle(widget, css: str) -> None:
    """setStyleSheet only when the sheet changes: re-polishing costs milliseconds on the loop thread, and the
    risk panel and status bar would otherwise pay it for every label on every update."""
    if widget.styleSheet() != css:
        widget.setStyleSheet(css)


def mono_font(size: int = 9) -> QFont:
    """Fixed-width font for numbers, so columns line up."""
    font = QFontDatabase.systemFont(QFontDatabase.FixedFont)
    font.setPointSize(size)
    return font


def icon(name: str) -> QIcon:
    """An icon from resources/icons (empty icon when missing)."""
    path = RESOURCES / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()


def signed_colour(value: float | None) -> QColor | None:
    """Green for > 0, red for < 0, None for zero or missing."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value) or value == 0:
        return None
    return QColor(POSITIVE if value > 0 else NEGATIVE)


def fmt(value, digits: int = 2, dollars: bool = False) -> str:
    """Number formatting used by every panel: thousands separators, '–' for missing."""
    if value is None:
        return "–"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value) if not isinstance(value, int) else value
        if isinstance(value, float) and not math.isfinite(value):
            return "–"
        text = f"{value:,.{digits}f}" if isinstance(value, float) or digits else f"{value:,}"
        if text.startswith("-") and not text.strip("-0.,"):      # rounds to zero: never "-0" or "$-0"
            text = text[1:]
        if not dollars:
            return text
        return f"-${text[1:]}" if text.startswith("-") else f"${text}"
    return str(value)
