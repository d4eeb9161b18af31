"""The vol views in the window (offscreen) on the real engine and simulator (`SimRig`): the chain board updates in
place and opens the ticket, the skew, realised and scenario/bucket panels show what the engine computed."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from test_ui_panels import Desk, app, desk, store  # noqa: E402,F401  (fixtures)
from workstation.ui import theme  # noqa: E402
from workstation.ui.panels.chain_board import STRIKE_COLUMN  # noqa: E402


def _show(desk: Desk, name: str) -> None:
    desk.window.docks[name].raise_()
    desk.window.flush()


def test_chain_board_updates_in_place_and_opens_the_ticket(desk):
    w = desk.window
    _show(desk, "chain")
    desk.until(lambda: w.chain.model.rowCount() > 20, what="chain board rows")
    board = w.chain
    resets, changes = [], []
    board.model.modelReset.connect(lambda: resets.append(1))
    board.model.dataChanged.connect(lambda *a: changes.append(1))
    desk.step(2)
    _show(desk, "chain")
    assert not resets and changes, "a new cycle must update cells, not reset the table"
    atm = [r for r in board.model.records() if r.atm]
    assert len(atm) == 1
    snap, surface = desk.engine.last_snapshot, desk.engine.last_surface
    known = {(e.expiry, e.am_settled): j for j, e in enumerate(surface.expiries)}   # the per-row reference
    assert surface.expiry_index().tolist() == [known.get((snap.expiry[i], bool(snap.am_settled[i])), -1)
                                               for i in range(len(snap))]
    expiry = board.expiry.currentText().split()[0]
    row = next(i for i in range(len(snap)) if str(snap.expiry[i]) == expiry and snap.is_call[i]
               and snap.strike[i] == atm[0].strike)
    # the board's numbers are the engine's: bid, bid IV, model IV of the ATM call
    assert atm[0].call["bid"] == snap.bid[row]
    assert atm[0].call["iv_bid"] == pytest.approx(100 * surface.iv_bid[row])
    assert atm[0].call["model_iv"] == pytest.approx(100 * desk.engine.last_model.iv[row])
    assert "forward" in board.info.text() and ("AM" in board.info.text() or "PM" in board.info.text())
    # Enter on the ATM call's ask opens the ticket on that contract, BUY
    board.select_strike(atm[0].strike, "C")
    board.view.setFocus()
    QTest.keyClick(board.view, Qt.Key_Return)
    desk.wait(lambda: w.orders.contract_id() == int(snap.contract_id[row]), what="ticket on the ATM call")
    assert w.orders.side.currentText() == "BUY"
    # a double-click on the put bid: the put, SELL
    index = board.proxy.index(board.model.keys().index(atm[0].strike), STRIKE_COLUMN + 2)
    board.open_ticket(index)
    put = next(i for i in range(len(snap)) if str(snap.expiry[i]) == expiry and not snap.is_call[i]
               and snap.strike[i] == atm[0].strike)
    desk.wait(lambda: w.orders.contract_id() == int(snap.contract_id[put]), what="ticket on the ATM put")
    assert w.orders.side.currentText() == "SELL"


def test_vol_panels_show_the_engines_views(desk):
    w, eng = desk.window, desk.engine
    desk.until(lambda: eng.vol_views.last is not None and eng.vol_views.last.model is not None, what="vol views")
    # a position in two expiries, so the scenario grid and the buckets are not all zero
    snap, sur = eng.last_snapshot, eng.last_surface
    days = sur.maturity * 365
    for lo, hi in ((10, 28), (40, 85)):
        rows = np.flatnonzero(sur.usable & (days >= lo) & (days <= hi) & ~snap.is_call
                              & (snap.strike < 0.98 * sur.forward) & (snap.ask * 100 < 20_000))
        pv = eng.submit_order(int(snap.contract_id[rows[-1]]), "BUY", 1, float(snap.ask[rows[-1]]))
        assert pv.sent, pv.message
    desk.until(lambda: sum(1 for p in eng.book.positions.values() if p.quantity) >= 2, what="two fills")
    desk.step(2)
    # the chain board on a held expiry shows the position on its row
    held = next(p.contract for p in eng.book.positions.values() if p.quantity and p.contract.expiry)
    _show(desk, "chain")
    labels = [w.chain.expiry.itemText(i) for i in range(w.chain.expiry.count())]
    w.chain.expiry.setCurrentIndex(next(i for i, t in enumerate(labels) if t.startswith(str(held.expiry))))
    desk.step()
    _show(desk, "chain")
    row = w.chain.model.get(float(held.strike))
    assert row.put["pos"] == eng.book.quantity(held.contract_id) == 1, (row.put, held)
    v = eng.vol_views.last
    for name in ("skew", "realised", "volrisk"):
        _show(desk, name)
    m30 = v.market.constant[30]
    assert w.skew.cm.item(1, 1).text() == theme.fmt(m30.atm_vol)
    assert w.skew.cm.item(1, 2).text() == theme.fmt(m30.rr25)
    w.skew.tabs.setCurrentIndex(1)                      # only the tab in view is drawn; a tab change redraws
    assert w.skew.per_expiry.rowCount() == len(v.market.per_expiry)
    assert w.skew.per_expiry.item(0, 0).text() == v.market.per_expiry[0].label
    assert w.realised.values["implied_30d"].text() == theme.fmt(v.realised.implied_30d)
    grid = v.scenarios[("strike", False)]
    assert w.volrisk.grid.rowCount() == len(grid.spot_shocks)
    assert w.volrisk.grid.item(0, 0).text() == theme.fmt(float(grid.pnl[0, 0, 0]), 0, dollars=True)
    assert grid.pnl[0, 0, 0] != 0
    w.volrisk.sticky.setCurrentIndex(1)
    w.volrisk.term.setChecked(True)
    alt = v.scenarios[("delta", True)]
    assert w.volrisk.grid.item(0, 0).text() == theme.fmt(float(alt.pnl[0, 0, 0]), 0, dollars=True)
    total_row = list(v.buckets).__len__()
    assert w.volrisk.buckets.item(total_row, 0).text().endswith("Total")
    total_vega = sum(b["vega"] for b in v.buckets.values())
    assert w.volrisk.buckets.item(total_row, 4).text() == theme.fmt(total_vega, 0, dollars=True)
    assert math.isfinite(total_vega) and total_vega > 0


def test_chain_board_highlights_a_signals_row(desk):
    from test_ui_panels import _signal
    from workstation.ui.panels.chain_board import SIGNAL_BACKGROUND
    w = desk.window
    sig = _signal(desk, tradable=False)
    c = sig.contract
    _show(desk, "chain")
    labels = [w.chain.expiry.itemText(i) for i in range(w.chain.expiry.count())]
    w.chain.expiry.setCurrentIndex(next(i for i, t in enumerate(labels) if t.startswith(str(c.expiry))))
    _show(desk, "chain")
    row = w.chain.model.keys().index(float(c.strike))
    column = STRIKE_COLUMN - 1 if c.is_call else STRIKE_COLUMN + 1
    assert sig.state.value == "NEW"
    assert w.chain.model.data(w.chain.model.index(row, column), Qt.BackgroundRole) == SIGNAL_BACKGROUND
