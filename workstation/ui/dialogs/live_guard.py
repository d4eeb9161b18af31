"""Live-trading guard: orders on a live account are enabled only after typing the account id."""
from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QVBoxLayout, QWidget

from ...commands import ApplySettings
from .. import theme


def account_of(settings: Any) -> str:
    secret = getattr(settings.ib, "account", None)
    return secret.get_secret_value() if secret is not None else ""


class LiveGuardDialog(QDialog):
    """Type the account id exactly to enable trading on the live account (execution.trading_enabled)."""

    def __init__(self, settings: Any, bridge: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.bridge = bridge
        self.account = account_of(settings)
        self.setWindowTitle("Enable LIVE trading")
        layout = QVBoxLayout(self)
        banner = QLabel("● LIVE ACCOUNT — real money")
        banner.setStyleSheet(f"background: {theme.LIVE}; color: white; font-size: 14pt; font-weight: bold; "
                             "padding: 8px;")
        layout.addWidget(banner)
        live = bool(settings.ib.live)
        if not live:
            text = "This configuration is not a live account (ib.live is false); no confirmation is needed."
        elif not self.account:
            text = "No account id is configured: set HESTON_IB_ACCOUNT in the environment and restart."
        else:
            text = ("Until you confirm, the live configuration is read-only: no orders are sent.\n"
                    "Type the account id to enable trading:")
        info = QLabel(text)
        info.setWordWrap(True)
        layout.addWidget(info)
        self.entry = QLineEdit()
        self.entry.setPlaceholderText("account id")
        self.entry.setEnabled(live and bool(self.account))
        layout.addWidget(self.entry)
        self.message = QLabel("")
        self.message.setStyleSheet(f"color: {theme.NEGATIVE}")
        layout.addWidget(self.message)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Cancel)
        self.enable = self.buttons.addButton("Enable live trading", QDialogButtonBox.AcceptRole)
        self.enable.setEnabled(False)
        self.entry.textChanged.connect(lambda t: self.enable.setEnabled(bool(self.account) and t == self.account))
        self.buttons.accepted.connect(self.confirm)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def confirm(self) -> None:
        if not self.account or self.entry.text() != self.account:
            self.message.setText("The account id does not match.")
            return
        new = self.settings.model_copy(deep=True)
        new.execution.trading_enabled = True
        self.bridge.command(ApplySettings(new, "live trading confirmation"),
                            on_done=self._done, on_error=lambda m: self._done([m]))

    def _done(self, problems) -> None:
        if problems:
            self.message.setText("; ".join(str(p) for p in problems))
        else:
            self.accept()
