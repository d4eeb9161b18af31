"""The window reads only fields its events have.

Statically: every attribute read in `workstation/ui` on a value typed as a seam payload (a parameter annotated
RiskReport, BookSummary, EngineStatus, OrderPreview..., a `self.x: T` slot, a name assigned from one of their
fields, a loop over one of their tuples) exists on that type; a misspelt field fails here, not silently on
screen. Dynamically: the real engine's events after a few offscreen cycles with a position, fed to every panel
handler that takes them, render without error and show the events' own numbers.
"""
from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path

import pytest

from workstation import events, reports
from workstation.domain import Contract, Order
from workstation.execution.orders import OrderRecord
from workstation.portfolio.greeks import DollarGreeks
from workstation.risk.limits import CheckResult, RiskDecision
from workstation.risk.monitor import Breach, StressGrid

UI = Path(__file__).resolve().parents[1] / "workstation" / "ui"
SEAM = {cls.__name__: cls for cls in (
    reports.RiskReport, reports.RiskLimits, reports.BookSummary, reports.BookPnl, reports.PositionLine,
    reports.PnlExplain, reports.EngineStatus, events.OrderPreview, events.FitEvent, events.CycleReport,
    RiskDecision, CheckResult, StressGrid, Breach, DollarGreeks, Order, OrderRecord, Contract)}


# ------------------------------------------------------------------------------------ the checker
def _has(cls: type, name: str) -> bool:
    return name in {f.name for f in dataclasses.fields(cls)} or hasattr(cls, name)


def _seam_type(hint) -> type | tuple | None:
    """A seam class, ("each", class) for a tuple/list of one, or None (optional members unwrapped)."""
    if isinstance(hint, type) and hint.__name__ in SEAM:
        return hint
    args = [a for a in typing.get_args(hint) if a is not type(None) and a is not Ellipsis]
    origin = typing.get_origin(hint)
    if origin in (tuple, list) and len(args) == 1 and _seam_type(args[0]) in SEAM.values():
        return ("each", _seam_type(args[0]))
    found = {_seam_type(a) for a in args} - {None} if origin is not None else set()
    return found.pop() if len(found) == 1 and origin not in (tuple, list, dict) else None


def _field_type(cls: type, name: str):
    """The seam type of `cls.name` (a field or a property), else None."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = {}
    if name in hints:
        return _seam_type(hints[name])
    prop = getattr(cls, name, None)
    if isinstance(prop, property):
        try:
            return _seam_type(typing.get_type_hints(prop.fget).get("return"))
        except Exception:
            return None
    return None


def _annotation(node: ast.expr | None):
    """The seam class named in an annotation (`RiskReport`, `OrderPreview | None`); None for unions of two."""
    if node is None:
        return None
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in SEAM}
    names |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute) and n.attr in SEAM}
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _annotation(ast.parse(node.value, mode="eval").body)
    return SEAM[names.pop()] if len(names) == 1 else None


class Reads(ast.NodeVisitor):
    """Attribute reads on seam-typed names, per function: (file, line, type, attribute, known)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.reads: list[tuple[str, int, str, str, bool]] = []
        self.slots: dict[str, type] = {}           # self.x: T in the class being visited

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        outer = self.slots
        self.slots = {}
        for n in ast.walk(node):
            if (isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Attribute)
                    and isinstance(n.target.value, ast.Name) and n.target.value.id == "self"):
                cls = _annotation(n.annotation)
                if cls is not None:
                    self.slots[n.target.attr] = cls
        self.generic_visit(node)
        self.slots = outer

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        env: dict[str, object] = {a.arg: _annotation(a.annotation) for a in (*node.args.args, *node.args.kwonlyargs)}
        env = {k: v for k, v in env.items() if v is not None}
        for _ in range(4):                                      # assignments and loops, to a fixed point
            for n in ast.walk(node):
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
                    cls = _annotation(n.annotation)
                    if cls is not None:
                        env[n.target.id] = cls
                elif isinstance(n, ast.Assign):
                    for target in n.targets:
                        pairs = (zip(target.elts, n.value.elts) if isinstance(target, ast.Tuple)
                                 and isinstance(n.value, ast.Tuple) else [(target, n.value)])
                        for t, v in pairs:
                            typ = self.type_of(v, env)
                            if isinstance(t, ast.Name) and typ is not None:
                                env[t.id] = typ
                elif isinstance(n, (ast.For, ast.comprehension)):
                    typ = self.type_of(n.iter, env)
                    if isinstance(typ, tuple) and isinstance(n.target, ast.Name):
                        env[n.target.id] = typ[1]
        for n in ast.walk(node):
            if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load):
                owner = self.type_of(n.value, env)
                if isinstance(owner, type):
                    self.reads.append((self.path, n.lineno, owner.__name__, n.attr, _has(owner, n.attr)))
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def type_of(self, node: ast.expr, env: dict):
        if isinstance(node, ast.Name):
            return env.get(node.id)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self" and node.attr in self.slots:
                return self.slots[node.attr]
            owner = self.type_of(node.value, env)
            return _field_type(owner, node.attr) if isinstance(owner, type) else None
        return None


def attribute_reads(source: str, path: str = "<source>") -> list[tuple[str, int, str, str, bool]]:
    visitor = Reads(path)
    visitor.visit(ast.parse(source))
    return visitor.reads


# ------------------------------------------------------------------------------------ static tests
def test_every_field_the_window_reads_on_an_event_exists():
    reads = [r for path in sorted(UI.rglob("*.py")) for r in attribute_reads(path.read_text(), path.name)]
    missing = [f"{p}:{line} {cls}.{attr}" for p, line, cls, attr, known in reads if not known]
    assert not missing, "the window reads fields its events lack:\n" + "\n".join(missing)
    seen = {(cls, attr) for _, _, cls, attr, _ in reads}
    assert len(reads) > 60                                            # the checker does see the panels' reads
    assert {("RiskReport", "var99"), ("BookSummary", "pnl"), ("BookPnl", "day"), ("EngineStatus", "data_age_s"),
            ("StressGrid", "spot_shocks"), ("OrderPreview", "sent"), ("DollarGreeks", "delta")} <= seen


def test_the_checker_flags_a_misspelt_field():
    source = '''
class Panel:
    def __init__(self):
        self._report: RiskReport | None = None

    def _on_book(self, book: BookSummary) -> None:
        day = book.pnl.day_pnl
        for p in book.positions:
            p.quantty

    def render(self) -> None:
        report = self._report
        greeks, limits = report.greeks, report.limits
        return report.var_95, greeks.delta_dollars, limits.var99
'''
    missing = {(cls, attr) for _, _, cls, attr, known in attribute_reads(source) if not known}
    assert missing == {("BookPnl", "day_pnl"), ("PositionLine", "quantty"), ("RiskReport", "var_95"),
                       ("DollarGreeks", "delta_dollars")}


# ------------------------------------------------------------------------------------ the real events
pytest.importorskip("pytestqt")

from test_ui_panels import Desk, app, desk, desk_settings, store  # noqa: E402,F401  (shared fixtures)

from workstation import bus as topics  # noqa: E402
from workstation.commands import PreviewOrder  # noqa: E402
from workstation.ui import theme  # noqa: E402


def _position(desk: Desk, quantity: int = 2) -> int:
    """BUY `quantity` of a liquid put a few weeks out at the ask (fills), through the engine."""
    import numpy as np

    engine = desk.engine
    desk.until(lambda: engine.last_model is not None, what="a fit")
    snap, surface = engine.last_snapshot, engine.last_surface
    rows = np.flatnonzero(~snap.is_call & (snap.maturity > 14 / 365) & np.isfinite(surface.iv_mid) & (snap.bid > 1))
    row = int(rows[np.argmin(np.abs(snap.strike[rows] - 0.97 * snap.underlying_price))])
    cid = int(snap.contract_id[row])
    pv = engine.submit_order(cid, "BUY", quantity, float(snap.ask[row]) + 0.5)
    assert pv.sent, pv.message
    desk.until(lambda: engine.book.quantity(cid) == quantity, what="fill")
    return cid


def test_every_panel_renders_the_real_engines_events(desk):
    w, engine = desk.window, desk.engine
    seen: dict[str, object] = {}
    for topic in (topics.RISK, topics.BOOK, topics.STATUS):
        engine.bus.subscribe(topic, lambda payload, topic=topic: seen.__setitem__(topic, payload))
    cid = _position(desk)
    desk.until(lambda: engine.last_risk is not None and engine.last_risk.var99 > 0 and len(seen) == 3,
               what="a risk report of the book")
    report, book, status = seen[topics.RISK], seen[topics.BOOK], seen[topics.STATUS]
    assert (type(report), type(book), type(status)) == (reports.RiskReport, reports.BookSummary,
                                                       reports.EngineStatus)

    # every handler of these topics, called directly: a missing field raises here
    w.risk._on_risk(report)
    w.risk.render()
    for on_book in (w.risk._on_book, w.positions._on_book, w.chain._on_book, w.status_line.on_book):
        on_book(book)
    w.positions.render()
    w.status_line.on_status(status)

    assert w.risk.bars["delta"].number == report.greeks.delta and w.risk.bars["var99"].number == report.var99
    assert w.risk.numbers["VaR 95"].text() == theme.fmt(report.var95, 0, dollars=True)
    assert w.risk.numbers["Day P&L"].text() == theme.fmt(book.pnl.day, 0, dollars=True)
    assert w.risk.attr["new_trades"].text() == theme.fmt(book.attribution.new_trades, 0, dollars=True)
    assert w.risk.stress.rowCount() == len(report.stress.spot_shocks)
    line = next(p for p in book.positions if p.contract_id == cid)
    assert w.positions.model.get(cid) == line
    row = w.positions.model.keys().index(cid)
    shown = [w.positions.model.data(w.positions.model.index(row, col)) for col in range(w.positions.model.columnCount())]
    assert shown[0] == engine.contract_by_id(cid).description and shown[1] == f"{line.quantity:+d}"
    assert theme.fmt(line.unrealized_pnl, 0, dollars=True) in shown
    assert w.chain._positions[cid] == line.quantity
    assert w.status_line.pnl_label.text() == f"day P&L {theme.fmt(book.pnl.day, 0, dollars=True)}"
    assert w.status_line.data_age.text().startswith(f"data {status.data_age_s:,.1f}s")
    assert f"{len([p for p in book.positions if p.quantity])} positions" in w.positions.totals.text()

    # a command passed on through the bridge reaches the engine's method and comes back typed
    back = w.bridge.command(PreviewOrder(cid, "SELL", 1, None))
    assert isinstance(back, events.OrderPreview) and back.order is not None and back.order.contract.contract_id == cid
