"""Combo (BAG) orders on Interactive Brokers: what the IB broker needs to know of a package beyond a single order.

IB reports a combo's fill as one execution of the BAG (the net price, no commission) and one execution per leg
(each with its commission report), all under the order's orderRef and permId; the order's status counts packages.
The broker books only the legs: each leg's execution becomes a `Fill` under the combo's client order id carrying
the leg's own contract (the one of the `ComboOrder` when the broker placed it), with {"combo", "leg"} metadata.
No ib_async here: the broker hands in what it read.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

from workstation.domain import Fill
from workstation.domain.combos import ComboOrder

BAG = "BAG"


def leg_fill(fill: Fill, order: ComboOrder | None) -> Fill:
    """`fill` (one leg's execution) with the leg's contract and its place in the package, when `order` has it."""
    if order is None:
        return fill
    for i, leg in enumerate(order.combo.legs):
        if leg.contract.contract_id == fill.contract.contract_id:
            return replace(fill, contract=leg.contract,
                           metadata={**fill.metadata, "combo": order.client_order_id, "leg": i})
    return fill


def package_fills(order: ComboOrder, fills: Iterable[Fill]) -> tuple[int, float]:
    """Whole packages filled and their average net price (NaN when none) from the legs' fills of `order`."""
    fills = [f for f in fills if f.client_order_id == order.client_order_id]
    first = order.combo.legs[0]
    packages = sum(f.quantity for f in fills if f.contract.contract_id == first.contract.contract_id) // first.ratio
    if packages <= 0:
        return 0, math.nan
    paid = sum(f.side.sign * f.quantity * f.price for f in fills)       # per package bought: + debit, - credit
    return packages, round(order.side.sign * paid / packages, 6)
