"""The combo ticket's live pre-trade checks: the verdict line, the checks table and the last send's message."""
from __future__ import annotations

from PySide6.QtWidgets import QGroupBox, QLabel, QVBoxLayout, QWidget

from ...risk.limits import RiskDecision
from .. import theme
from ..dialogs.whatif import ChecksTable


def denial(decision: RiskDecision | None) -> str:
    """Every failing check of a decision, 'CODE: detail; ...' ('' when approved)."""
    return "no pre-trade decision" if decision is None else decision.denial()


class ChecksBox(QGroupBox):
    """Verdict, (check, result, detail) table, and a message line under it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Pre-trade checks on the package (live)", parent)
        v = QVBoxLayout(self)
        self.verdict = QLabel("")
        self.verdict.setWordWrap(True)
        v.addWidget(self.verdict)
        self.checks = ChecksTable(visible=5)
        v.addWidget(self.checks, 1)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        v.addWidget(self.message)

    def show_verdict(self, decision: RiskDecision | None, message: str = "") -> bool:
        """Passes / DENIED with the reason (`message` overrides the decision's); True when it passes."""
        why = message or denial(decision)
        ok = decision is not None and decision.approved and not message
        self.verdict.setObjectName("approved" if ok else "denied")
        margin = f"   margin {theme.fmt(decision.margin, 0, dollars=True)}" if decision is not None else ""
        self.verdict.setText(f"✔ passes every pre-trade check{margin}" if ok else f"✖ DENIED — {why}")
        self.verdict.setStyleSheet(f"color: {theme.POSITIVE if ok else theme.NEGATIVE}; font-weight: bold")
        self.checks.show_decision(decision)
        return ok

    def say(self, text: str, good: bool | None = None) -> None:
        """The message line, green when good, red when not, unstyled when None."""
        if good is not None:
            self.message.setStyleSheet(f"color: {theme.POSITIVE if good else theme.NEGATIVE}")
        self.message.setText(text)
