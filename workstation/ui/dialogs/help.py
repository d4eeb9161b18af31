"""Help: the README's "The window" section and the keyboard shortcuts in the app, and About with the version."""
from __future__ import annotations

import platform
import re
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

import workstation

README = Path(workstation.__file__).resolve().parents[1] / "README.md"
FALLBACK = ("Docked panels (movable, floatable, restorable from the View menu, layout saved): volatility surface, "
            "mispricings, order ticket and blotter, positions, Greeks & risk with the KILL SWITCH, alerts, "
            "calibration and log. The status bar shows the market clock in ET, the connection, data age, last fit, "
            "trading state, day P&L and event-loop lag.")


def readme_section(title: str = "The window", path: Path = README) -> str:
    """The markdown of one `## title` section of the README (a short built-in text when it is not installed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return f"## {title}\n\n{FALLBACK}"
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    return f"## {title}\n{match.group(1).rstrip()}" if match else f"## {title}\n\n{FALLBACK}"


def shortcuts_markdown(actions) -> str:
    """A table of every menu action that has a shortcut, from the window's own actions (never out of date)."""
    rows = [(a.shortcut().toString(), a.text().replace("&", "").rstrip("…"), a.statusTip())
            for a in actions if not a.shortcut().isEmpty()]
    lines = ["## Keyboard shortcuts", "", "| Key | Action | |", "|---|---|---|"]
    lines += [f"| {key} | {text} | {tip} |" for key, text, tip in rows]
    return "\n".join(lines)


def about_text() -> str:
    return (f"<b>Heston Workstation {workstation.__version__}</b><br>"
            f"SPX/XSP options: Heston fit, mispricings, risk-checked orders, delta hedging.<br><br>"
            f"Python {platform.python_version()}, PySide6 {pyside_version}")


class HelpDialog(QDialog):
    """Markdown help in a browser widget (non-modal: the trader keeps working beside it)."""

    def __init__(self, title: str, markdown: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(760, 560)
        layout = QVBoxLayout(self)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setMarkdown(markdown)
        layout.addWidget(self.browser)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
