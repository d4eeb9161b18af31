"""The typed seam payloads (RISK, BOOK, STATUS) and the window's commands: JSON forms keep their keys, every
command reaches an engine method with the parameters it names."""
from __future__ import annotations

import inspect
import json
import typing
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np

from workstation import commands
from workstation.config import Settings
from workstation.domain import Contract, Fill, SecType, Side
from workstation.portfolio import Book
from workstation.portfolio.explain import DayExplain
from workstation.portfolio.greeks import DollarGreeks
from workstation.reports import BookSummary, EngineStatus, PnlExplain, RiskLimits, RiskReport
from workstation.risk.limits import RiskCode
from workstation.risk.monitor import Breach, StressGrid

NY = ZoneInfo("America/New_York")
T0 = datetime(2025, 10, 1, 10, 0, tzinfo=NY)
PUT = Contract(1002, "SPX", trading_class="SPXW", expiry=date(2025, 10, 17), strike=6500.0, right="P")
FUT = Contract(2001, "SPX", sec_type=SecType.FUTURE, trading_class="ES", expiry=date(2025, 12, 19), multiplier=50.0)


def _book() -> Book:
    book = Book(trading_day=T0.date())
    book.apply_fill(Fill("f1", "o1", PUT, Side.BUY, 2, 5.0, T0, 1.3))
    book.apply_fill(Fill("f2", "o2", FUT, Side.SELL, 1, 6710.0, T0, 2.1))
    book.mark({PUT.contract_id: 5.5, FUT.contract_id: 6700.0})
    return book


def test_the_book_summary_is_typed_and_its_json_is_the_books_own_summary_plus_the_explain():
    book = _book()
    explain = DayExplain(T0.date()).lines(book.day_pnl)
    summary = BookSummary.of(book, explain)
    assert summary.to_dict() == {**book.to_summary(), "attribution": explain}
    json.dumps(summary.to_dict())                                       # JSON-ready
    put = next(p for p in summary.positions if p.contract_id == PUT.contract_id)
    assert put.description == PUT.description and put.quantity == 2 and put.mark == 5.5
    assert put.unrealized_pnl == book.to_summary()["positions"][0]["unrealized_pnl"]
    assert summary.pnl.day == book.day_pnl and summary.greeks == book.greeks
    assert summary.attribution.day == book.day_pnl and summary.trading_day == T0.date()


def test_the_risk_report_and_the_status_keep_the_keys_they_were_published_with():
    greeks = DollarGreeks(1.0, 2.0, 3.0, -4.0)
    stress = StressGrid(np.array([-0.05, 0.0]), np.array([0.0, 5.0]), np.array([[-10.0, 5.0], [0.0, 20.0]]))
    breach = Breach(RiskCode.VEGA_LIMIT, 3.0, 2.0, "vega beyond its limit")
    explain = PnlExplain.of(DayExplain().lines(0.0))
    report = RiskReport(T0, "market", 6700.0, greeks, greeks, RiskLimits.of(Settings().risk), 10.0, 20.0, T0,
                        stress, (breach,), "REDUCING", -5.0, explain)
    d = report.to_dict()
    assert list(d) == ["at", "greeks_from", "forward", "greeks", "book_greeks", "limits", "var95", "var99",
                       "var_at", "stress", "breaches", "trading_state", "day_pnl", "attribution"]
    assert d["limits"] == {"delta": Settings().risk.max_delta_dollars, "gamma": Settings().risk.max_gamma_dollars,
                           "vega": Settings().risk.max_vega_dollars, "var99": Settings().risk.max_var_99,
                           "daily_loss": Settings().risk.max_daily_loss}
    assert d["breaches"][0]["code"] == "VEGA_LIMIT" and d["at"] == T0.isoformat()
    assert list(d["attribution"]) == ["delta", "gamma", "vega", "theta", "new_trades", "fees", "residual", "day"]
    json.dumps(d)
    status = EngineStatus("simulated", True, "connected", 1.5, T0, "sim ×30", "ACTIVE", "", ("index 42s",),
                          False, False, 12.0, 3.0)
    assert status.to_dict()["stale_data"] == ["index 42s"] and status.to_dict()["sim_time"] == T0.isoformat()
    json.dumps(status.to_dict())


def test_every_command_is_mapped_and_names_an_engine_method_with_its_parameters():
    """The Desk protocol is the engine's: each method exists on Engine with the same parameters, and every command
    type has its call in the table."""
    from workstation.engine import Engine

    for name, method in inspect.getmembers(commands.Desk, inspect.isfunction):
        if name.startswith("_"):
            continue
        wanted = list(inspect.signature(method).parameters)
        have = list(inspect.signature(getattr(Engine, name)).parameters)
        assert have[:len(wanted)] == wanted, name
    assert set(commands.CALLS) == set(typing.get_args(commands.Command))
