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
    _assert_fair_column_is_the_engines(board, desk.engine)
    assert "forward" in board.info.text() and ("AM" in board.info.text() or "PM" in board.info.text())
    # Enter on the ATM call's ask opens the ticket on that contract, BUY
    board.select_strike(atm[0].strike, "C")
    board.view.setFocus()
    QTest.keyClick(board.view, Qt.Key_Return)
    desk.wait(lambda: w.orders.contract_id() == int(snap.contract_id[row]), what="ticket on the ATM call")
    assert w.orders.side.currentText() == "BUY"
    # a double-click on the put bid: the put, SELL
    index = board.model.index(board.model.keys().index(atm[0].strike), STRIKE_COLUMN + 2)
    board.open_ticket(index)
    put = next(i for i in range(len(snap)) if str(snap.expiry[i]) == expiry and not snap.is_call[i]
               and snap.strike[i] == atm[0].strike)
    desk.wait(lambda: w.orders.contract_id() == int(snap.contract_id[put]), what="ticket on the ATM put")
    assert w.orders.side.currentText() == "SELL"


def test_an_expiry_listed_or_gone_elsewhere_leaves_the_board_in_place(desk):
    """The expiry list changes when a series is listed, expires or drops out of the surface for a snapshot; the
    board on screen stays (rows updated in place, scroll and selection kept) unless its own expiry went: a
    refill of the full chain's board held the window 40-76 ms."""
    import dataclasses

    w = desk.window
    _show(desk, "chain")
    desk.until(lambda: w.chain.model.rowCount() > 20, what="chain board rows")
    board, surface = w.chain, desk.engine.last_surface
    board.flush()
    shown = board.expiry.currentText()
    assert board.expiry.currentIndex() < len(surface.expiries) - 1
    resets = []
    board.model.modelReset.connect(lambda: resets.append(1))
    board._on_surface(dataclasses.replace(surface, expiries=surface.expiries[:-1]))      # the last one gone
    board.flush()
    assert board.expiry.count() == len(surface.expiries) - 1 and board.expiry.currentText() == shown
    assert not resets and board.model.rowCount() > 20
    board.expiry.setCurrentIndex(0 if board.expiry.currentIndex() else 1)                 # the trader's switch
    assert resets and board.expiry.currentText() != shown


def _assert_fair_column_is_the_engines(board, engine) -> None:
    """Every shown row's fair IV (calls and puts) is 100 x the engine's fair-value surface at that contract; where
    the surface has no value the board falls back to the model IV."""
    fair, snap = engine.last_fair, engine.last_surface.snapshot
    assert fair is not None and fair.surface is engine.last_surface, "the fair fit of the shown snapshot"
    checked = from_surface = 0
    for record in board.model.records():
        for side in (record.call, record.put):
            if side["cid"] is None:
                continue
            row = snap.index_of(side["cid"])
            want = fair.fair_iv[row] if np.isfinite(fair.fair_iv[row]) else engine.last_model.iv[row]
            from_surface += bool(np.isfinite(fair.fair_iv[row]))
            if np.isfinite(want):
                assert side["fair_iv"] == pytest.approx(100 * want, rel=1e-12), (record.strike, side["cid"])
            else:
                assert not np.isfinite(side["fair_iv"])
            checked += 1
    assert checked == 2 * board.model.rowCount() and from_surface > board.model.rowCount()


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


PAST_DAYS = 25


@pytest.fixture
def recorded_days(tmp_path):
    """25 earlier days of index prices in the metric history the engine loads (`<data>/vol-metrics`), written
    before the desk's engine starts: (closes, highs, lows) per day, as written."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datetime import date, datetime, timedelta, timezone

    rng = np.random.default_rng(21)
    folder = tmp_path / "vol-metrics"
    folder.mkdir()
    closes, highs, lows, level = [], [], [], 6000.0
    for d in range(PAST_DAYS):
        day = date(2020, 1, 1) + timedelta(days=d)                  # long before any simulated day
        prices = level * np.exp(np.cumsum(rng.normal(0, 0.004, 6)))
        start = datetime(day.year, day.month, day.day, 15, tzinfo=timezone.utc).timestamp()
        pq.write_table(pa.table({"timestamp": start + 600.0 * np.arange(6), "spot": prices}),
                       folder / f"vol-metrics-{day}.parquet")
        closes.append(prices[-1]), highs.append(prices.max()), lows.append(prices.min())
        level = prices[-1]
    return np.array(closes), np.array(highs), np.array(lows)


def test_realised_panel_numbers_are_the_index_prices_realised_vol(recorded_days, desk):
    """The Realised vs implied panel against estimators written out here from the index prices it was given: the
    recorded days' closes plus today's live price (close-to-close, zero mean, x252, last 21 returns: the
    headline), the recorded days' highs and lows (Parkinson), today's prices in 5-minute bars (intraday);
    VRP = 30-day ATM implied − headline."""
    w, eng = desk.window, desk.engine
    closes, highs, lows = recorded_days
    def views_of_this_snapshot():
        last = eng.vol_views.last
        return last is not None and last.at == eng.last_snapshot.timestamp
    for _ in range(8):                                   # 20 minutes of market: four 5-minute bars today
        desk.run(desk.rig.step(150.0))
        desk.wait(views_of_this_snapshot, 30, what="the views of this snapshot")
    _show(desk, "realised")
    v = eng.vol_views.last
    assert w.realised.views is v
    r = np.diff(np.log(np.r_[closes, v.spot]))[-21:]
    ctc = 100 * math.sqrt(252 * np.mean(r * r))
    hl = np.log(highs / lows)
    parkinson = 100 * math.sqrt(252 * np.mean(hl * hl) / (4 * math.log(2)))
    t, spot = v.history.column("timestamp"), v.history.column("spot")     # today's prices, the live one last
    assert spot[-1] == v.spot and t[-1] == v.at.timestamp()
    bars = np.floor((t - t[0]) / 300)
    bar_close = spot[np.r_[bars[1:] != bars[:-1], True]]
    rb = np.diff(np.log(bar_close))
    assert len(rb) >= 3
    intraday = 100 * math.sqrt(252 * 78 * np.mean(rb * rb))
    implied = v.market.constant[30].atm_vol
    for key, want in (("value", ctc), ("close_to_close", ctc), ("parkinson", parkinson), ("intraday", intraday),
                      ("vrp", implied - ctc)):
        assert getattr(v.realised, key) == pytest.approx(want, rel=1e-9), key
        assert w.realised.values[key].text() == theme.fmt(want), key
    assert w.realised.window.text().startswith("close-to-close 21d (21 returns)")
    cone = v.realised.cone                               # 25 daily returns: the 10-day window's cone exists
    r_all = np.diff(np.log(np.r_[closes, v.spot]))
    rolling10 = [100 * math.sqrt(252 * np.mean(r_all[i - 10:i] ** 2)) for i in range(10, len(r_all) + 1)]
    assert cone.current[0] == pytest.approx(rolling10[-1], rel=1e-9)
    assert cone.levels[0, 0] == pytest.approx(min(rolling10), rel=1e-9)
    assert cone.levels[0, -1] == pytest.approx(max(rolling10), rel=1e-9)
    assert w.realised.cone_lines[100].getData()[1][0] == pytest.approx(max(rolling10), rel=1e-9)
    for p in (w.realised.day, w.realised.cone):          # every point of every curve in view (no auto-range)
        (x0, x1), (y0, y1) = p.getViewBox().viewRange()
        for item in p.getPlotItem().listDataItems():
            x, y = (np.asarray(a, float) for a in item.getData())
            ok = np.isfinite(x) & np.isfinite(y)
            assert ((x[ok] >= x0) & (x[ok] <= x1) & (y[ok] >= y0) & (y[ok] <= y1)).all(), p
    x_day = np.asarray(w.realised.iv_curve.getData()[0], float)     # ... and the day's curves fill the plot:
    (x0, x1), _ = w.realised.day.getViewBox().viewRange()             # not a sliver of a weeks-wide axis
    assert x1 - x0 <= 2 * (x_day.max() - x_day.min()), (x1 - x0, x_day.max() - x_day.min())
    first = float(w.realised.iv_curve.getData()[0][0])
    zoom = (first, first + 120.0)                        # the trader zooms into the first two minutes of the day
    w.realised.day.setXRange(*zoom, padding=0)
    desk.run(desk.rig.step(150.0))
    desk.wait(views_of_this_snapshot, 30, what="the views of the next snapshot")
    _show(desk, "realised")
    assert w.realised.views is eng.vol_views.last        # redrawn on the new snapshot ...
    assert w.realised.day.getViewBox().viewRange()[0] == pytest.approx(list(zoom), abs=1.0)   # ... the zoom kept


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
