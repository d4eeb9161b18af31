"""IB order statuses and executions as our OrderEvents and Fills, read off ib_async's objects by attribute (this
module imports no ib_async: the adapter in `execution.ib` hands it the trades and fills).

TWS statuses: PreSubmitted/Submitted -> SUBMITTED or PARTIALLY_FILLED, Filled, Cancelled; an order cancelled by
an error such as 201 -> REJECTED with IB's text; a new order TWS refuses with a "warning" code (321: ib_async leaves
it alive as ValidationError) -> REJECTED. Each execution is one Fill (fill_id = IB execId); a combo's own (BAG)
execution is not a fill, its legs' are (under the combo's id, with the leg's contract).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from workstation.domain import Fill, OrderEvent, OrderStatus, Side
from workstation.domain.combos import ComboOrder
from workstation.execution.ib_combos import BAG, leg_fill
from workstation.market.ib_codes import Code
from workstation.market.ib_session import domain_contract

WORKING = {"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted", "PendingCancel"}
CANCELLED = {"Cancelled", "ApiCancelled", "Inactive"}


def order_event(trade, now: datetime) -> OrderEvent | None:
    """The OrderEvent an ib_async Trade's status means (None: no orderRef of ours, or nothing to say yet)."""
    coid = trade.order.orderRef
    if not coid:
        return None
    st = trade.orderStatus
    filled = int(round(st.filled))
    total = int(round(trade.order.totalQuantity))
    reason = ""
    if st.status == "Filled":
        status = OrderStatus.FILLED
    elif st.status in CANCELLED:
        error = next((e for e in reversed(trade.log) if e.errorCode), None)
        if error is not None and error.errorCode != Code.ORDER_CANCELLED and filled == 0:
            status, reason = OrderStatus.REJECTED, f"IB {error.errorCode}: {error.message}"
        else:
            status, reason = OrderStatus.CANCELLED, "cancelled"
    elif st.status == "ValidationError" and not (trade.order.permId or st.permId):
        error = next((e for e in reversed(trade.log) if e.errorCode), None)     # refused, never acknowledged
        status = OrderStatus.REJECTED
        reason = f"IB {error.errorCode}: {error.message}" if error else "IB validation error"
    elif st.status in WORKING or st.status == "ValidationError":
        if st.status in ("PendingSubmit", "ApiPending"):
            return None
        status = OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.SUBMITTED
    else:
        return None
    avg = st.avgFillPrice if filled > 0 and st.avgFillPrice else math.nan
    if status is OrderStatus.FILLED and filled == 0:      # a completed order read after a reconnect: no counts
        filled, avg = total, average_price(f for f in trade.fills if f.contract.secType == trade.contract.secType)
    remaining = max(total - filled, 0) if status.is_working else 0
    limit = trade.order.lmtPrice if trade.order.orderType == "LMT" else None
    broker_id = str(trade.order.permId or st.permId or trade.order.orderId)
    return OrderEvent(coid, status, now, filled, remaining, avg, reason, broker_id, limit)


def execution_fill(ib_fill, contract, exec_ref: Mapping[str, str],
                   combos: Mapping[str, ComboOrder]) -> Fill | None:
    """One ib_async fill as our Fill (`contract`: the executed contract when the fill's own is not it; `exec_ref`:
    client order id by execId for executions without an orderRef); None when not ours or a BAG's own."""
    ex = ib_fill.execution
    coid = ex.orderRef or exec_ref.get(ex.execId, "")
    if not coid or (contract or ib_fill.contract).secType == BAG:      # a combo's own execution: its legs count
        return None
    report = ib_fill.commissionReport
    commission = report.commission if report and report.execId and math.isfinite(report.commission) else 0.0
    when = ex.time if isinstance(ex.time, datetime) else ib_fill.time
    fill = Fill(ex.execId, coid, domain_contract(contract or ib_fill.contract),
                Side.BUY if ex.side.upper() in ("BOT", "BUY") else Side.SELL, int(round(ex.shares)),
                float(ex.price), when, float(commission),
                {1: "maker", 2: "taker"}.get(ex.lastLiquidity, ""), {"perm_id": ex.permId})
    return leg_fill(fill, combos.get(coid))


def average_price(fills) -> float:
    """Average price of ib_async fills (NaN when none)."""
    fills = list(fills)
    shares = sum(f.execution.shares for f in fills)
    return sum(f.execution.price * f.execution.shares for f in fills) / shares if shares else math.nan
