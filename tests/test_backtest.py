"""Backtests: an hour of the simulator recorded, replayed through the engine, reported, reconciled, repeated
identically; the CLI's files and exit codes; sweeps on local processes and on a local Dask cluster; the Cboe CSV;
the backtest broker's fills against recorded quotes."""
from __future__ import annotations

import asyncio
import csv
import json
import math
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from workstation.backtest.broker import BacktestBroker
from workstation.backtest.report import build_report
from workstation.backtest.runner import run
from workstation.backtest.sweep import SweepError, parse_executor, parse_sweeps
from workstation.cli import main
from workstation.config import PaperConfig, Settings
from workstation.domain import ChainSnapshot, Contract, Order, OrderPurpose, OrderStatus, SecType, Side
from workstation.market.recorder import SnapshotRecorder
from workstation.market.sim_feed import SimulatedFeed

DAY = date(2025, 10, 1)                      # a Wednesday: the simulated session opens 09:30 ET
CBOE_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "spx_2022-06-10_cboe.csv"
FILES = ("report.html", "metrics.json", "trades.csv")


# ------------------------------------------------------------------------------------------ fixtures
async def _record(out: Path, snapshots: int, interval_s: float) -> None:
    s = Settings()
    s.market.simulator.start_date = DAY
    s.market.simulator.mispricing_max_spreads = 100.0   # planted in full: signals to trade (arbitrage too)
    s.market.snapshot_interval_s = interval_s
    s.market.simulator.min_wall_interval_s = 0.001     # manual clock: interval x speed of market time per snapshot
    feed = SimulatedFeed.from_settings(s, manual=True)
    await feed.connect()
    m = s.market
    feed.select_chain(m.underlying, m.min_expiry_days, m.max_expiry_days, m.strike_window)
    n = 0
    with SnapshotRecorder(out) as rec:
        async for snap in feed.snapshots():
            rec.write(snap)
            n += 1
            if n == snapshots:
                break
    await feed.close()


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """One simulated hour at 30-second snapshots (120 snapshots of ~2,000 options)."""
    out = tmp_path_factory.mktemp("recording")
    asyncio.run(_record(out, 120, 30.0))
    return out


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    """Settings that make signals fire and trade within an hour (auto-execution is implied in backtests)."""
    path = tmp_path_factory.mktemp("config") / "backtest.yaml"
    path.write_text("risk:\n  allow_uncovered_shorts: true\n  max_position: 50\n"
                    "signals:\n  min_zscore: 2.0\n  min_edge_dollars: 20\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cli_run(recording, config_file, tmp_path_factory, warm_numba) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("report")
    rc = main(["backtest", str(recording), "--config", str(config_file), "--out", str(out)])
    return rc, out


def _trades(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------------------ the core
def test_cli_writes_the_three_files_and_exits_0(cli_run):
    rc, out = cli_run
    assert rc == 0
    for name in FILES:
        assert (out / name).stat().st_size > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["snapshots"] == 120 and not metrics["interrupted"] and metrics["cycle_failures"] == 0
    for key in ("sharpe", "sortino", "max_drawdown", "hit_rate", "turnover", "fees", "trades", "fit_rmse_iv"):
        assert key in metrics
    assert metrics["pnl"]["daily"] and metrics["fit_rmse_iv"]["accepted"] > 100
    assert metrics["trades"]["total"] > 0, "settings should make the engine trade within the hour"
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 8                      # equity, drawdown, daily, attribution x2, edge, params
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "<link" not in html                            # self-contained: no external CSS or JS


def test_report_reconciles_with_its_own_trades(cli_run):
    _, out = cli_run
    metrics = json.loads((out / "metrics.json").read_text())
    trades = _trades(out / "trades.csv")
    gross = sum(float(t["gross_pnl"]) for t in trades)
    fees = sum(float(t["fees"]) for t in trades)
    assert metrics["pnl"]["total"] == pytest.approx(gross - fees, abs=0.01)
    assert fees == pytest.approx(metrics["fees"], abs=0.01)
    assert sum(float(t["net_pnl"]) for t in trades) == pytest.approx(metrics["pnl"]["total"], abs=0.01)
    assert abs(metrics["reconciliation"]["difference"]) < 1e-6
    # the attribution's parts add up to the total as well (held positions by Greeks + new trades - fees)
    a = metrics["attribution"]
    parts = a["delta"] + a["gamma"] + a["vega"] + a["theta"] + a["residual"] + a["trading"] - a["fees"]
    assert parts == pytest.approx(metrics["pnl"]["total"], abs=0.05)


def test_trades_csv_re_summed_per_contract_equals_the_fills_and_the_total(cli_run, recording, config_file):
    """Independent of the report's trade builder and its `difference` field: replay the same data (a backtest is
    deterministic), value every contract from its raw fills (cash flows + last position x last mark - commissions),
    and check trades.csv summed per contract and metrics.json's total against it."""
    from workstation.config import load_settings

    _, out = cli_run
    result = run(load_settings(config_file, environ={}), recording)
    cash: dict[int, float] = {}
    held: dict[int, int] = {}
    fees: dict[int, float] = {}
    mult: dict[int, float] = {}
    for f in result.fills:
        cid = f.contract.contract_id
        cash[cid] = cash.get(cid, 0.0) - f.signed_quantity * f.price * f.contract.multiplier
        held[cid] = held.get(cid, 0) + f.signed_quantity
        fees[cid] = fees.get(cid, 0.0) + f.commission
        mult[cid] = f.contract.multiplier
    gross = {cid: cash[cid] + (held[cid] * result.marks[cid] * mult[cid] if held[cid] else 0.0) for cid in cash}
    assert len(gross) >= 2, "the hour should trade more than one contract"
    trades = _trades(out / "trades.csv")
    csv_gross: dict[int, float] = {}
    csv_fees: dict[int, float] = {}
    for t in trades:
        cid = int(t["contract_id"])
        csv_gross[cid] = csv_gross.get(cid, 0.0) + float(t["gross_pnl"])
        csv_fees[cid] = csv_fees.get(cid, 0.0) + float(t["fees"])
        assert float(t["net_pnl"]) == pytest.approx(float(t["gross_pnl"]) - float(t["fees"]), abs=2e-6)
    assert set(csv_gross) == set(gross)
    for cid in gross:
        assert csv_gross[cid] == pytest.approx(gross[cid], abs=1e-4), cid
        assert csv_fees[cid] == pytest.approx(fees[cid], abs=1e-4), cid
    total = sum(gross.values()) - sum(fees.values())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pnl"]["total"] == pytest.approx(total, abs=0.01)
    assert metrics["fees"] == pytest.approx(sum(fees.values()), abs=0.01)
    assert metrics["fills"] == len(result.fills)
    # a closed round trip from one entry and one exit: (exit - entry) x quantity x multiplier, by hand
    simple = [t for t in trades if t["status"] == "closed" and t["fills"] == "2"]
    assert simple, "no closed round trip of one entry and one exit"
    for t in simple:
        sign = 1 if t["direction"] == "long" else -1
        by_hand = sign * (float(t["exit_price"]) - float(t["entry_price"])) * int(t["quantity"]) * \
            mult[int(t["contract_id"])]
        assert float(t["gross_pnl"]) == pytest.approx(by_hand, abs=1e-4)


def test_two_runs_are_identical(cli_run, recording, config_file, tmp_path):
    _, first = cli_run
    assert main(["backtest", str(recording), "--config", str(config_file), "--out", str(tmp_path)]) == 0
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (first, tmp_path))
    a.pop("run"), b.pop("run")                           # wall-clock timings only
    assert a == b
    assert (first / "trades.csv").read_bytes() == (tmp_path / "trades.csv").read_bytes()


def test_date_window_and_ctrl_c_partial_report(recording, tmp_path):
    stops = iter([False] * 10 + [True] * 1000)
    result = run(Settings(), recording, "2025-10-01T09:45", "2025-10-01", should_stop=lambda: next(stops))
    assert result.interrupted and result.snapshots == 10
    assert result.first == datetime(2025, 10, 1, 13, 45, tzinfo=timezone.utc)
    report = build_report(result)
    report.write(tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["interrupted"] and metrics["snapshots"] == 10
    assert "interrupted" in (tmp_path / "report.html").read_text()


# ------------------------------------------------------------------------------------------ CLI errors
@pytest.mark.parametrize("extra, message", [
    (["--sweep", "risk.max_positon=5,10"], "did you mean risk.max_position"),
    (["--sweep", "risk.max_position=0,10"], "risk.max_position: must be >= 1, got 0"),
    (["--sweep", "risk.max_position"], "expected KEY=V1,V2"),
    (["--executor", "spark://x:1"], "dask://HOST:PORT"),
    (["--from", "yesterday"], "bad date"),
    (["--from", "2025-10-02", "--to", "2025-10-01"], "before --from"),
])
def test_cli_usage_errors_exit_2(recording, tmp_path, capsys, extra, message):
    assert main(["backtest", str(recording), "--out", str(tmp_path / "x"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_missing_data_exits_2(tmp_path, capsys):
    assert main(["backtest", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert "no such recording" in capsys.readouterr().err


def test_sweep_values_are_typed_and_validated():
    sweeps = parse_sweeps(["risk.max_position=5,10", "signals.min_edge_vol=0.5,1.0",
                           "hedging.enabled=true,false"], Settings())
    assert sweeps == [("risk.max_position", [5, 10]), ("signals.min_edge_vol", [0.5, 1.0]),
                      ("hedging.enabled", [True, False])]
    with pytest.raises(SweepError, match="given twice"):
        parse_sweeps(["risk.max_position=5", "risk.max_position=10"], Settings())
    with pytest.raises(SweepError, match="unknown setting"):
        parse_sweeps(["risk=5"], Settings())
    assert parse_executor("dask://127.0.0.1:8786") == ("dask", "tcp://127.0.0.1:8786")


# ------------------------------------------------------------------------------------------ sweeps
SWEEP_WINDOW = ["--from", "2025-10-01T09:30", "--to", "2025-10-01T09:45"]   # 30 snapshots per run


def _check_sweep(out: Path, runs: int) -> list[dict]:
    rows = _trades(out / "sweep.csv")
    assert len(rows) == runs and all(r["status"] == "ok" for r in rows)
    assert (out / "sweep.html").exists() and (out / "sweep.md").exists()
    for r in rows:
        for name in FILES:
            assert (out / "runs" / r["run"] / name).exists()
        assert int(r["snapshots"]) == 30
    return rows


def test_sweep_on_local_processes(recording, config_file, tmp_path):
    rc = main(["backtest", str(recording), "--config", str(config_file), "--out", str(tmp_path), *SWEEP_WINDOW,
               "--sweep", "risk.max_position=20,50"])   # >= max_order_quantity (20): a rule across fields
    assert rc == 0
    rows = _check_sweep(tmp_path, 2)
    assert [r["risk.max_position"] for r in rows] == ["20", "50"]


def test_sweep_on_a_local_dask_cluster(recording, config_file, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        port = cluster.scheduler_address.rsplit(":", 1)[1]
        rc = main(["backtest", str(recording), "--config", str(config_file), "--out", str(tmp_path), *SWEEP_WINDOW,
                   "--sweep", "signals.min_edge_vol=0.5,1.0", "--executor", f"dask://127.0.0.1:{port}"])
    assert rc == 0
    _check_sweep(tmp_path, 2)


# ------------------------------------------------------------------------------------------ Cboe CSV
@pytest.mark.skipif(not CBOE_CSV.exists(), reason="Cboe sample data not present in ../shared/data")
def test_cboe_csv_runs_as_a_one_snapshot_backtest(tmp_path):
    assert main(["backtest", str(CBOE_CSV), "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["snapshots"] == 1 and metrics["cycle_failures"] == 0
    assert metrics["fit_rmse_iv"]["fits"] == 1


# ------------------------------------------------------------------------------------------ the broker
T0 = datetime(2025, 10, 1, 14, 0, tzinfo=timezone.utc)
OPTION = Contract(contract_id=1, symbol="SPX", sec_type=SecType.OPTION, trading_class="SPXW",
                  expiry=date(2025, 10, 3), strike=5900.0, right="C", multiplier=100.0, settlement="PM")


def _snap(at: datetime, bid: float, ask: float, size: int = 5, spot: float = 5900.0) -> ChainSnapshot:
    cols = {"contract_id": np.array([1]), "trading_class": np.array(["SPXW"]),
            "expiry": np.array(["2025-10-03"], dtype="datetime64[D]"), "strike": np.array([5900.0]),
            "is_call": np.array([True]), "bid": np.array([bid]), "ask": np.array([ask]),
            "bid_size": np.array([size]), "ask_size": np.array([size])}
    return ChainSnapshot.from_columns(timestamp=at, underlying="SPX", underlying_price=spot, columns=cols)


def _broker(**paper) -> tuple[BacktestBroker, list, list]:
    broker = BacktestBroker(PaperConfig(**paper))
    events, fills = [], []
    broker.on_order_event.append(events.append)
    broker.on_fill.append(fills.append)
    asyncio.run(broker.connect())
    return broker, events, fills


def _order(coid: str, side: Side, qty: int, limit: float) -> Order:
    return Order(coid, OPTION, side, qty, limit_price=limit, created_at=T0, purpose=OrderPurpose.SIGNAL)


def test_broker_fills_at_the_recorded_ask_next_snapshot_up_to_displayed_size():
    broker, events, fills = _broker(commission_per_contract=0.65, fees_per_contract=0.60)
    broker.on_snapshot(_snap(T0, 10.0, 10.5, size=3))
    asyncio.run(broker.place(_order("A", Side.BUY, 5, 10.5)))
    assert not events                                                     # latency: nothing until the next snapshot
    broker.on_snapshot(_snap(T0 + timedelta(seconds=5), 10.0, 10.5, size=3))
    assert [(f.quantity, f.price, f.commission) for f in fills] == [(3, 10.5, 3.75)]
    assert events[-1].status is OrderStatus.PARTIALLY_FILLED
    broker.on_snapshot(_snap(T0 + timedelta(seconds=10), 10.4, 10.8, size=3))   # ask above the limit: no fill
    assert len(fills) == 1
    broker.on_snapshot(_snap(T0 + timedelta(seconds=15), 10.0, 10.4, size=3))
    assert [(f.quantity, f.price) for f in fills[1:]] == [(2, 10.4)]
    assert events[-1].status is OrderStatus.FILLED and broker.position_by_id == {1: 5}


def test_broker_slippage_sells_and_settlement_at_intrinsic():
    broker, events, fills = _broker(slippage_ticks=2)
    broker.on_snapshot(_snap(T0, 10.0, 10.5))
    asyncio.run(broker.place(_order("S", Side.SELL, 2, 9.9)))
    broker.on_snapshot(_snap(T0 + timedelta(seconds=5), 10.0, 10.5))
    assert [(f.side, f.quantity, f.price) for f in fills] == [(Side.SELL, 2, 9.8)]   # 10.0 - 2 ticks of 0.10
    after_expiry = datetime(2025, 10, 3, 20, 5, tzinfo=timezone.utc)                  # 16:05 ET on expiry day
    broker.on_snapshot(_snap(after_expiry, 0.0, 0.05, spot=5912.5))
    settle = fills[-1]
    assert settle.liquidity == "settlement" and settle.side is Side.BUY and settle.quantity == 2
    assert settle.price == 12.5 and settle.commission == 0.0 and broker.position_by_id == {}


def test_broker_rejects_bad_orders_and_cancels_next_snapshot():
    broker, events, _ = _broker()
    asyncio.run(broker.place(_order("T", Side.BUY, 1, 10.03)))           # off the 0.05/0.10 tick grid
    asyncio.run(broker.place(_order("C", Side.BUY, 1, 5.0)))
    broker.on_snapshot(_snap(T0, 10.0, 10.5))
    assert events[0].status is OrderStatus.REJECTED and "tick" in events[0].reason
    assert events[1].status is OrderStatus.SUBMITTED
    asyncio.run(broker.cancel("C"))
    broker.on_snapshot(_snap(T0 + timedelta(seconds=5), 10.0, 10.5))
    assert events[-1].status is OrderStatus.CANCELLED and not asyncio.run(broker.open_orders())
    assert math.isnan(events[-1].avg_fill_price)
