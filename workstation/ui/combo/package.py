"""The combo ticket's package summary: net bid/ask and mid (index points and $), net dollar Greeks, and the
order's max loss / max gain at the front expiry."""
from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QWidget

from ...analytics import combo_ticket as ct
from .. import theme

TIPS = {"Net bid / ask": "What the package sells for / costs now, from the legs' quotes; index points per "
                         "package, $ = × multiplier (debit > 0, credit < 0)",
        "Net mid": "Σ ratio × side × leg mid",
        "Net Greeks $": "Dollar Greeks of one package bought: delta$ and gamma$ per 1 % move, vega$ per vol "
                        "point, theta$ per day",
        "At expiry": "Worst and best P&L of the whole order at the front expiry, at the net limit"}


def pts_and_dollars(points: float, multiplier: float) -> str:
    return f"{theme.fmt(points)} pts ({theme.fmt(points * multiplier, 0, dollars=True)})"


class PackageSummary(QGroupBox):
    """One selectable line per figure, keyed by its row label in `values`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Package", parent)
        form = QFormLayout(self)
        form.setVerticalSpacing(3)
        self.values: dict[str, QLabel] = {}
        for key, tip in TIPS.items():
            label = QLabel("–")
            label.setFont(theme.mono_font(9))
            label.setTextInteractionFlags(Qt.TextSelectableByMouse)
            label.setToolTip(tip)
            self.values[key] = label
            form.addRow(key, label)

    def clear(self) -> None:
        for label in self.values.values():
            label.setText("–")

    def show_numbers(self, n: ct.ComboNumbers, multiplier: float, side: str, qty: int, limit: float) -> None:
        """The package's numbers; max loss / gain for the whole order (`qty` packages at `limit`)."""
        mult = multiplier
        self.values["Net bid / ask"].setText(f"{theme.fmt(n.net_bid)} / {theme.fmt(n.net_ask)} pts   "
                                             f"({theme.fmt(n.net_bid * mult, 0, dollars=True)} / "
                                             f"{theme.fmt(n.net_ask * mult, 0, dollars=True)} per package)")
        self.values["Net mid"].setText(pts_and_dollars(n.net_mid, mult) + " per package")
        g = n.greeks
        self.values["Net Greeks $"].setText(
            f"delta {theme.fmt(g['delta'], 0, dollars=True)}  gamma {theme.fmt(g['gamma'], 0, dollars=True)}  "
            f"vega {theme.fmt(g['vega'], 0, dollars=True)}  theta {theme.fmt(g['theta'], 0, dollars=True)}"
            f"  per package")
        b = n.bounds
        loss = "unlimited" if math.isinf(b.max_loss) else theme.fmt(b.max_loss * qty, 0, dollars=True)
        gain = "unlimited" if math.isinf(b.max_gain) else theme.fmt(b.max_gain * qty, 0, dollars=True)
        exact = "" if b.exact else "  (later short leg's time value not counted)"
        self.values["At expiry"].setText(f"max loss {loss} · max gain {gain}  for {side} {qty} at "
                                         f"{theme.fmt(limit)} pts{exact}")
