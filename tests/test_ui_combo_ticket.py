"""The combo ticket on the real engine, simulator, paper exchange and journal (offscreen): a vertical built from the
template on the real chain shows the domain's net price, Greeks and max loss, passes the live checks, is sent,
fills on both legs and appears as one package in the blotter and as two legs naming their package in positions;
a vertical over a lowered max-loss limit shows the reason and sends nothing; legs added from the chain board."""
# ruff: noqa: F811, SIM118  (the desk fixture is imported; RecordModel.keys() is not a dict's)
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_ui_panels import Desk, app, desk, store  # noqa: F401  (the window on a SimRig)

from workstation.commands import ApplySettings
from workstation.domain import OrderStatus, Side
from workstation.domain.combos import COMBO_TICK
from workstation.ui import theme


def _ticket(desk: Desk):
    """The combo ticket with a vertical of calls around the money on the default (about 30-day) expiry."""
    w, engine = desk.window, desk.engine
    desk.until(lambda: engine.last_surface is not None and engine.last_snapshot is not None, what="a surface")
    ticket = w.open_combo_ticket()
    desk.wait(lambda: ticket.expiry.count() > 3, what="the ticket's expiries")
    ticket.set_template("vertical", right="C")
    ticket.refresh()
    assert ticket.combo is not None and ticket.combo.structure == "vertical", ticket.problem
    return ticket


def _legs_market(engine, combo):
    markets = [engine.market_for(leg.contract) for leg in combo.legs]
    return [m.bid for m in markets], [m.ask for m in markets], markets


def test_a_vertical_from_the_template_shows_the_domains_numbers_is_sent_filled_and_booked_per_leg(desk):
    w, engine = desk.window, desk.engine
    ticket = _ticket(desk)
    combo = ticket.combo
    long, short = combo.legs
    assert long.side is Side.BUY and short.side is Side.SELL and long.contract.is_call
    spot = engine.last_snapshot.underlying_price
    assert abs(long.contract.strike - spot) < 0.01 * spot and short.contract.strike > long.contract.strike

    bid, ask, markets = _legs_market(engine, combo)
    net_bid, net_ask = combo.net_quote(bid, ask)
    limit = math.ceil(net_ask / COMBO_TICK + 1) * COMBO_TICK          # marketable: at or above the net ask
    ticket.side.setCurrentText("BUY")
    ticket.limit.setValue(limit)
    ticket.refresh()
    n = ticket.numbers
    mult = combo.multiplier
    assert (n.net_bid, n.net_ask) == pytest.approx((net_bid, net_ask))
    assert n.net_mid == pytest.approx(combo.net_mid(bid, ask))
    greeks = combo.net_greeks({k: [m.greeks.as_dict()[k] for m in markets] for k in ("delta", "vega", "theta")})
    for name, value in greeks.items():
        assert n.greeks[name] == pytest.approx(value)
        assert theme.fmt(value, 0, dollars=True) in ticket.values["Net Greeks $"].text()
    bounds = combo.payoff_bounds(round(limit, 2), Side.BUY)
    assert n.bounds == bounds and bounds.exact and math.isfinite(bounds.max_loss)
    assert f"max loss {theme.fmt(bounds.max_loss, 0, dollars=True)}" in ticket.values["At expiry"].text()
    assert f"({theme.fmt(net_bid * mult, 0, dollars=True)} / {theme.fmt(net_ask * mult, 0, dollars=True)} per " \
           f"package)" in ticket.values["Net bid / ask"].text()
    assert ticket.values["Net mid"].text().startswith(f"{theme.fmt(n.net_mid)} pts")
    # the what-if curve: at expiry its floor is the max loss and its cap the max gain; today lies between
    p = ticket.payoff
    assert p.at_expiry.min() == pytest.approx(-bounds.max_loss) and p.at_expiry.max() == pytest.approx(bounds.max_gain)
    assert np.all(np.isfinite(p.today)) and p.today.min() >= -bounds.max_loss - 1 and p.today.max() <= bounds.max_gain + 1
    x, _ = ticket.expiry_curve.getData()
    assert len(x) == len(p.levels) and ticket.today_curve.getData()[0] is not None
    # the live checks, then Send
    assert ticket.decision is not None and ticket.decision.approved, ticket.verdict.text()
    assert "passes every pre-trade check" in ticket.verdict.text() and ticket.checks.rowCount() > 5
    assert ticket.send.isEnabled()
    ticket.submit()
    desk.wait(lambda: ticket.result is not None, what="the send")
    assert ticket.message.text().startswith("Sent "), ticket.message.text()
    order_id = ticket.result.client_order_id

    desk.until(lambda: (row := w.orders.blotter.get(order_id)) is not None and row.status == "FILLED",
               what="the package filled in the blotter")
    row = w.orders.blotter.get(order_id)
    assert row.filled == 1 and row.extra["legs"] == 2 and row.extra["fills"] == 2
    tip = w.orders.blotter.data(w.orders.blotter.index(w.orders.blotter.keys().index(order_id), 0), Qt.ToolTipRole)
    assert long.contract.description in tip and short.contract.description in tip and "filled 1 @" in tip
    assert desk.rig.journal.combo_states()[order_id].status is OrderStatus.FILLED

    ids = [leg.contract.contract_id for leg in combo.legs]
    desk.until(lambda: all(cid in w.positions.model.keys() for cid in ids), what="both legs in positions")
    assert [w.positions.model.get(cid).quantity for cid in ids] == [1, -1]
    package = len(w.positions.model.columns) - 1
    for cid in ids:
        row = w.positions.model.keys().index(cid)
        assert w.positions.model.data(w.positions.model.index(row, package)) == f"{order_id} vertical"


def test_a_combo_over_the_max_loss_limit_shows_the_reason_and_sends_nothing(desk):
    w, engine = desk.window, desk.engine
    ticket = _ticket(desk)
    settings = engine.settings.model_copy(deep=True)
    settings.risk.max_combo_loss = 100.0                       # a 1-lot vertical can lose its debit (> $100)
    assert w.bridge.command(ApplySettings(settings)) == []
    ticket.refresh()
    assert ticket.decision is not None and not ticket.decision.approved
    assert "MAX_LOSS" in ticket.verdict.text() and not ticket.send.isEnabled()
    assert ticket.checks.item(0, 1).text() == "FAIL MAX_LOSS"  # failing checks first, with their reason
    assert ticket.checks.item(0, 2).text()

    ticket.submit()                                            # even forced, the engine refuses it
    desk.wait(lambda: ticket.result is not None, what="the refusal")
    assert "Not sent" in ticket.message.text() and "MAX_LOSS" in ticket.message.text()
    order_id = ticket.result.client_order_id
    desk.step(2)
    assert desk.rig.journal.combo_states()[order_id].status is OrderStatus.REJECTED
    assert desk.rig.journal.fills_of(order_id) == []
    assert w.orders.blotter.get(order_id).status == "REJECTED"
    assert all(engine.book.quantity(leg.contract.contract_id) == 0 for leg in ticket.combo.legs)


def test_legs_added_from_the_chain_board_make_a_custom_combo(desk):
    w = desk.window
    desk.until(lambda: w.chain.model.rowCount() > 10, what="the chain board")
    keys = w.chain.model.keys()
    atm = next(r.strike for r in (w.chain.model.get(k) for k in keys) if r.atm)
    higher = keys[keys.index(atm) + 2]
    w.chain.select_strike(atm, "C")
    QTest.keyClick(w.chain.view, Qt.Key_Plus)                  # + : buy the call under the cursor
    ticket = w.combo_ticket
    assert ticket is not None and ticket.isVisible() and ticket.template.currentData() == "custom"
    w.chain.select_strike(higher, "C")
    QTest.keyClick(w.chain.view, Qt.Key_Minus)                 # − : sell this one
    assert [(leg.contract.strike, leg.side) for leg in ticket.legs] == [(atm, Side.BUY), (higher, Side.SELL)]
    QTest.keyClick(w.chain.view, Qt.Key_Plus)                  # + on the sold leg: it goes
    assert [leg.contract.strike for leg in ticket.legs] == [atm]
    ticket.refresh()
    assert ticket.numbers is not None and ticket.numbers.net_mid > 0


def send_and_wait(desk, ticket) -> str:
    """The ticket's live checks pass, Send, and the engine says it sent: the package's order id."""
    ticket.refresh()
    assert ticket.decision is not None and ticket.decision.approved, ticket.verdict.text()
    ticket.submit()
    desk.wait(lambda: ticket.result is not None, what="the send")
    assert ticket.message.text().startswith("Sent "), ticket.message.text()
    return ticket.result.client_order_id


def wait_filled(desk, order_id: str) -> None:
    desk.until(lambda: getattr(desk.rig.journal.combo_states().get(order_id), "status", None) is OrderStatus.FILLED,
               steps=10, what="the package filled")


def test_a_static_arbitrage_is_traded_as_a_package_from_the_mispricings_panel(desk):
    """The arbitrage family end to end from the window: a tradable static arbitrage selected in its table opens
    in the combo ticket with its legs, side and net limit (a credit), passes the live checks, is sent and fills
    as one package; both legs land in positions naming it."""
    w, engine = desk.window, desk.engine
    panel = w.mispricings

    def packages():
        return [a for a in panel.arbitrage.records() if a.combo is not None and a.limit_price + 0.25 < 0]
    desk.until(lambda: packages(), steps=60, what="a tradable static arbitrage in the table")
    found = max(packages(), key=lambda a: a.edge_dollars)
    row = next(r for r in range(panel.arbitrage.rowCount()) if panel.arbitrage.key(r) == found.key)
    panel.arbitrage_table.selectRow(panel.arbitrage_table.model().mapFromSource(panel.arbitrage.index(row, 0)).row())
    assert panel.selected_package() is found
    panel.package_button.click()
    ticket = w.combo_ticket
    assert ticket is not None and ticket.isVisible() and ticket.combo is not None
    assert [(leg.contract.contract_id, leg.weight) for leg in ticket.combo.legs] == \
        [(leg.contract.contract_id, leg.weight) for leg in found.combo.legs]
    ticket.limit.setValue(found.limit_price + 0.25)                   # room for the quotes' jitter, still a credit
    order_id = send_and_wait(desk, ticket)
    wait_filled(desk, order_id)
    fills = desk.rig.journal.fills_of(order_id)
    assert sum(f.signed_quantity * f.price for f in fills) < 0                     # the credit was received
    ids = [leg.contract.contract_id for leg in found.combo.legs]
    desk.until(lambda: all(cid in w.positions.model.keys() for cid in ids), what="the legs in positions")


def test_a_signals_structure_is_approved_as_a_package_from_the_mispricings_panel(desk):
    """A spread signal end to end from the window: a signal proposing a structure shows it in its row; Trade
    package… opens it in the combo ticket (legs, side, net limit, the signal), it passes the live checks, is sent
    (the signal is ORDERED with the package's id), fills atomically, and both legs land in positions."""
    w, engine = desk.window, desk.engine
    panel = w.mispricings
    structure_column = next(i for i, c in enumerate(panel.model.columns) if c.header == "Structure")

    def spread():
        return next((s for s in engine.open_signals() if s.state.value == "NEW" and s.structure is not None
                     and s.structure.quantity >= 1 and s.signal_id in panel.model.keys()), None)
    desk.until(lambda: spread() is not None, steps=60, what="a signal proposing a sendable structure")
    sig = spread()
    st = sig.structure
    row = panel.model.keys().index(sig.signal_id)
    assert panel.model.data(panel.model.index(row, structure_column)) == st.label
    assert panel.select_signal(sig.signal_id)
    panel.structure_button.click()
    ticket = w.combo_ticket
    assert ticket is not None and ticket.isVisible() and ticket.signal_id == sig.signal_id
    assert [(leg.contract.contract_id, leg.weight) for leg in ticket.combo.legs] == \
        [(leg.contract.contract_id, leg.weight) for leg in st.combo.legs]
    assert ticket.side.currentText() == st.side.value and ticket.limit.value() == pytest.approx(st.limit_price)
    ticket.quantity.setValue(1)
    ticket.limit.setValue(st.limit_price + st.side.sign * 0.25)          # room for the quotes' jitter
    order_id = send_and_wait(desk, ticket)
    (kept,) = [s for s in desk.rig.journal.signals() if s.signal_id == sig.signal_id]
    assert kept.state.value == "ORDERED" and kept.reason == order_id
    wait_filled(desk, order_id)
    fills = desk.rig.journal.fills_of(order_id)
    assert len({f.timestamp for f in fills}) == 1 and len(fills) == 2          # one atomic fill, both legs
    ids = [leg.contract.contract_id for leg in st.combo.legs]
    desk.until(lambda: all(cid in w.positions.model.keys() for cid in ids), what="the legs in positions")
    assert [w.positions.model.get(cid).quantity for cid in ids] == [st.side.sign * leg.weight for leg in st.combo.legs]
