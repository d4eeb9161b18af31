"""What the trader asks of the engine from the window: small frozen commands, one per engine method.

The bridge passes a command on with `send(engine, command)`; the table below names the engine method each
command calls, written out (no method looked up by its name), so a renamed method fails here, loudly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Protocol

from .config import Settings
from .domain.combos import Combo, ComboOrder


class Desk(Protocol):
    """The engine methods the window may call."""

    def preview_signal(self, signal_id: str, quantity: int | None = None) -> Any: ...
    def approve_signal(self, signal_id: str, by: str = "trader", quantity: int | None = None) -> Any: ...
    def reject_signal(self, signal_id: str, reason: str = "") -> bool: ...
    def set_auto_execute(self, on: bool) -> None: ...
    def preview_order(self, contract_id: int, side: str, quantity: int, limit_price: float | None) -> Any: ...
    def submit_order(self, contract_id: int, side: str, quantity: int, limit_price: float | None) -> Any: ...
    def close_position(self, contract_id: int, quantity: int | None = None) -> Any: ...
    def cancel_order(self, client_order_id: str) -> None: ...
    def modify_order(self, client_order_id: str, limit_price: float | None = None,
                     quantity: int | None = None) -> None: ...
    def check_combo(self, order: ComboOrder) -> Any: ...
    def send_combo(self, combo: Combo, side: Any, quantity: int, limit_price: float, purpose: Any = ...,
                   signal_id: str = "") -> Any: ...
    def kill_switch(self, by: str = "trader") -> None: ...
    def resume_trading(self, override: bool = False) -> bool: ...
    def apply_settings(self, new: Settings, source: str = "settings dialog") -> list[str]: ...


@dataclass(frozen=True)
class PreviewSignal:
    """The what-if of a signal's order at `quantity` (None: the signal's size)."""
    title: ClassVar[str] = "preview signal"
    signal_id: str
    quantity: int | None = None


@dataclass(frozen=True)
class ApproveSignal:
    title: ClassVar[str] = "approve signal"
    signal_id: str
    by: str = "trader"
    quantity: int | None = None


@dataclass(frozen=True)
class RejectSignal:
    title: ClassVar[str] = "reject signal"
    signal_id: str
    reason: str = ""


@dataclass(frozen=True)
class SetAutoExecute:
    title: ClassVar[str] = "set auto execute"
    on: bool


@dataclass(frozen=True)
class Ticket:
    """A manual order as the ticket holds it."""
    contract_id: int
    side: str                       # BUY | SELL
    quantity: int
    limit_price: float | None


@dataclass(frozen=True)
class PreviewOrder(Ticket):
    """The ticket checked, not sent."""
    title: ClassVar[str] = "preview order"


@dataclass(frozen=True)
class SubmitOrder(Ticket):
    """The ticket sent (after the same checks)."""
    title: ClassVar[str] = "submit order"


@dataclass(frozen=True)
class ClosePosition:
    """An exit order for `quantity` of a position (None: all of it)."""
    title: ClassVar[str] = "close position"
    contract_id: int
    quantity: int | None = None


@dataclass(frozen=True)
class CancelOrder:
    title: ClassVar[str] = "cancel order"
    client_order_id: str


@dataclass(frozen=True)
class ModifyOrder:
    title: ClassVar[str] = "modify order"
    client_order_id: str
    limit_price: float | None = None
    quantity: int | None = None


@dataclass(frozen=True)
class CheckCombo:
    """Every pre-trade check on a combo order (the combo ticket's preview), nothing sent."""
    title: ClassVar[str] = "check combo"
    order: ComboOrder


@dataclass(frozen=True)
class SendCombo:
    """A combo order at a net limit (debit > 0, credit < 0, on the 0.05 tick): checked, journaled, sent."""
    title: ClassVar[str] = "send combo"
    combo: Combo
    side: str                       # BUY | SELL the package
    quantity: int                   # packages
    limit_price: float
    signal_id: str = ""             # the open signal this package trades (its proposed structure), if any


@dataclass(frozen=True)
class KillSwitch:
    """Cancel every working order and halt."""
    title: ClassVar[str] = "kill switch"
    by: str = "trader"


@dataclass(frozen=True)
class ResumeTrading:
    title: ClassVar[str] = "resume trading"
    override: bool = False


@dataclass(frozen=True)
class ApplySettings:
    title: ClassVar[str] = "apply settings"
    settings: Settings
    source: str = "settings dialog"


Command = (PreviewSignal | ApproveSignal | RejectSignal | SetAutoExecute | PreviewOrder | SubmitOrder
           | ClosePosition | CancelOrder | ModifyOrder | CheckCombo | SendCombo | KillSwitch | ResumeTrading
           | ApplySettings)

# command type -> the engine call it makes
CALLS: dict[type, Callable[[Desk, Any], Any]] = {
    PreviewSignal: lambda e, c: e.preview_signal(c.signal_id, c.quantity),
    ApproveSignal: lambda e, c: e.approve_signal(c.signal_id, c.by, c.quantity),
    RejectSignal: lambda e, c: e.reject_signal(c.signal_id, c.reason),
    SetAutoExecute: lambda e, c: e.set_auto_execute(c.on),
    PreviewOrder: lambda e, c: e.preview_order(c.contract_id, c.side, c.quantity, c.limit_price),
    SubmitOrder: lambda e, c: e.submit_order(c.contract_id, c.side, c.quantity, c.limit_price),
    ClosePosition: lambda e, c: e.close_position(c.contract_id, c.quantity),
    CancelOrder: lambda e, c: e.cancel_order(c.client_order_id),
    ModifyOrder: lambda e, c: e.modify_order(c.client_order_id, c.limit_price, c.quantity),
    CheckCombo: lambda e, c: e.check_combo(c.order),
    SendCombo: lambda e, c: e.send_combo(c.combo, c.side, c.quantity, c.limit_price, signal_id=c.signal_id),
    KillSwitch: lambda e, c: e.kill_switch(c.by),
    ResumeTrading: lambda e, c: e.resume_trading(c.override),
    ApplySettings: lambda e, c: e.apply_settings(c.settings, c.source),
}


def send(engine: Desk, command: Command) -> Any:
    """Run `command` on `engine`; returns what the engine method returns (maybe an awaitable)."""
    call = CALLS.get(type(command))
    if call is None:
        raise TypeError(f"not a desk command: {command!r}")
    return call(engine, command)


__all__ = ["Desk", "Command", "CALLS", "send", "PreviewSignal", "ApproveSignal", "RejectSignal", "SetAutoExecute",
           "Ticket", "PreviewOrder", "SubmitOrder", "ClosePosition", "CancelOrder", "ModifyOrder", "CheckCombo", "SendCombo", "KillSwitch",
           "ResumeTrading", "ApplySettings"]
