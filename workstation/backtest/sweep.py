"""Parameter sweeps: every combination of `--sweep KEY=V1,V2` values, one backtest each, in parallel.

Keys are dotted settings paths (`risk.max_position`); values are read as YAML scalars (5, 0.5, true, HALTED) and
every combination is validated with the pydantic settings before anything runs, so a typo or a bad value stops
the sweep with a clear message. The executor is pluggable: worker processes on this machine by default
(concurrent.futures), or a Dask distributed cluster (`dask://HOST:PORT`; its workers need this package installed
and the data at the same path). Workers return the report files' text; the client writes them, so workers need
no access to the output directory. Writes `sweep.csv`, `sweep.md` and `sweep.html` (a comparison table
linking each run's report) beside `runs/<name>/`.
"""
from __future__ import annotations

import csv
import difflib
import io
import itertools
import logging
import multiprocessing
import os
import re
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from workstation.config import ConfigError, Settings, validate

log = logging.getLogger(__name__)

SWEEP_CSV, SWEEP_MD, SWEEP_HTML = "sweep.csv", "sweep.md", "sweep.html"
COLUMNS = (("total_pnl", "total P&L $"), ("sharpe", "Sharpe"), ("sortino", "Sortino"),
           ("max_drawdown", "max DD $"), ("trades", "trades"), ("hit_rate", "hit rate"), ("fees", "fees $"),
           ("turnover", "turnover $"), ("fit_rmse_median", "fit RMSE"), ("snapshots", "snapshots"))


class SweepError(ValueError):
    """A bad --sweep or --executor argument; the message says what and how to fix it."""


# --------------------------------------------------------------------------------------------- parsing
def _leaves(data: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_leaves(value, path + "."))
        else:
            out[path] = value
    return out


def _scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_sweeps(specs: Iterable[str], settings: Settings) -> list[tuple[str, list[Any]]]:
    """[(dotted key, [values...])] from `KEY=V1,V2` strings; SweepError for unknown keys or malformed specs."""
    leaves = _leaves(settings.model_dump(mode="json"))
    out: list[tuple[str, list[Any]]] = []
    for spec in specs:
        key, sep, raw = spec.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise SweepError(f"--sweep {spec!r}: expected KEY=V1,V2,... (e.g. risk.max_position=5,10,20)")
        if key not in leaves:
            close = difflib.get_close_matches(key, list(leaves), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else " (see config/default.yaml and workstation/config.py)"
            raise SweepError(f"--sweep {key}: unknown setting{hint}")
        if any(k == key for k, _ in out):
            raise SweepError(f"--sweep {key} is given twice: put all its values in one --sweep")
        values = [_scalar(v.strip()) for v in raw.split(",") if v.strip()]
        if len(values) != len(set(map(repr, values))):
            raise SweepError(f"--sweep {key}: a value is repeated")
        out.append((key, values))
    return out


def _set(data: dict, dotted: str, value: Any) -> None:
    node = data
    *parents, last = dotted.split(".")
    for p in parents:
        node = node[p]
    node[last] = value


def combinations(settings: Settings, sweeps: list[tuple[str, list[Any]]]) -> list[tuple[dict[str, Any], Settings]]:
    """Every combination as (changed keys -> values, validated Settings); ConfigError names the bad values."""
    keys = [k for k, _ in sweeps]
    out = []
    problems: list[str] = []
    for values in itertools.product(*(v for _, v in sweeps)):
        changed = dict(zip(keys, values))
        data = settings.model_dump()
        for k, v in changed.items():
            _set(data, k, v)
        try:
            out.append((changed, validate(data)))
        except ConfigError as exc:
            problems += [p for p in exc.problems if p not in problems]
    if problems:
        raise ConfigError([f"--sweep: {p}" for p in problems])
    return out


def run_name(index: int, changed: dict[str, Any]) -> str:
    """`003_max_position=10_min_edge_vol=0.5`: sortable and readable, safe as a directory name."""
    label = "_".join(f"{k.split('.')[-1]}={v}" for k, v in changed.items())
    return f"{index:03d}_" + re.sub(r"[^A-Za-z0-9_.=-]+", "-", label)[:120]


# --------------------------------------------------------------------------------------------- running
@dataclass(frozen=True)
class Task:
    """One backtest of a sweep (plain values: it travels to worker processes and Dask workers)."""

    name: str
    changed: dict
    settings: dict
    data: str
    date_from: str | None
    date_to: str | None


def run_task(task: Task) -> dict:
    """Worker side: run one backtest and build its report; returns the metrics and the files' text."""
    from .report import build_report
    from .runner import run
    logging.getLogger("workstation").setLevel(logging.WARNING)
    settings = validate(task.settings)
    result = run(settings, Path(task.data), task.date_from, task.date_to)
    label = ", ".join(f"{k}={v}" for k, v in task.changed.items())
    report = build_report(result, title=f"Backtest {task.name}: {label}", changed=task.changed)
    return {"name": task.name, "changed": task.changed, "metrics": report.metrics,
            "files": {"metrics.json": report.metrics_json, "trades.csv": report.trades_csv,
                      "report.html": report.html}}


def parse_executor(spec: str) -> tuple[str, str | None]:
    """('local', None) or ('dask', 'tcp://HOST:PORT')."""
    spec = (spec or "local").strip()
    if spec == "local":
        return "local", None
    m = re.fullmatch(r"dask://([^:/\s]+):(\d{1,5})", spec)
    if not m:
        raise SweepError(f"--executor {spec!r}: use 'local' or 'dask://HOST:PORT' (a Dask scheduler)")
    return "dask", f"tcp://{m.group(1)}:{m.group(2)}"


class LocalExecutor:
    """Worker processes on this machine (spawned: no forked threads or numba state)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(1, min(os.cpu_count() or 1, 8))

    def map_unordered(self, fn: Callable[[Task], dict], tasks: list[Task]) -> Iterable[tuple[Task, dict | BaseException]]:
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)), mp_context=ctx)
        futures: dict[Future, Task] = {pool.submit(fn, t): t for t in tasks}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in sorted(done, key=lambda f: futures[f].name):
                    exc = f.exception()
                    yield futures[f], (exc if exc is not None else f.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Tasks on a Dask distributed scheduler at `address` (tcp://HOST:PORT)."""

    def __init__(self, address: str, timeout_s: float = 10.0) -> None:
        self.address, self.timeout_s = address, timeout_s

    def map_unordered(self, fn: Callable[[Task], dict], tasks: list[Task]) -> Iterable[tuple[Task, dict | BaseException]]:
        try:
            from distributed import Client, as_completed
        except ImportError:   # pragma: no cover - dask is a test extra
            raise SweepError("--executor dask://...: install dask[distributed] (pip install 'dask[distributed]')")
        try:
            client = Client(self.address, timeout=self.timeout_s)
        except (OSError, TimeoutError) as exc:
            raise SweepError(f"--executor: cannot reach the Dask scheduler at {self.address}: {exc}") from None
        try:
            futures = {client.submit(fn, t, key=f"backtest-{t.name}-{os.getpid()}", pure=False): t for t in tasks}
            try:
                for f in as_completed(list(futures)):
                    try:
                        yield futures[f], f.result()
                    except Exception as exc:
                        yield futures[f], exc
            finally:
                for f in futures:
                    f.cancel()
        finally:
            client.close()


def make_executor(spec: str) -> LocalExecutor | DaskExecutor:
    kind, address = parse_executor(spec)
    return LocalExecutor() if kind == "local" else DaskExecutor(address)


# --------------------------------------------------------------------------------------------- tables
def table_rows(results: list[dict], keys: list[str]) -> list[dict[str, Any]]:
    """One flat row per run: the swept values then the comparison metrics."""
    rows = []
    for r in sorted(results, key=lambda r: r["name"]):
        m = r.get("metrics") or {}
        row = {"run": r["name"], **{k: r["changed"].get(k) for k in keys}}
        if m:
            row.update(total_pnl=m["pnl"]["total"], sharpe=m["sharpe"], sortino=m["sortino"],
                       max_drawdown=m["max_drawdown"], trades=m["trades"]["total"], hit_rate=m["hit_rate"],
                       fees=m["fees"], turnover=m["turnover"]["premium"], fit_rmse_median=m["fit_rmse_iv"]["median"],
                       snapshots=m["snapshots"])
        row["status"] = r.get("status", "ok")
        rows.append(row)
    return rows


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) >= 100 else f"{v:.4g}"
    return str(v)


def write_tables(out: Path, results: list[dict], keys: list[str], data: str) -> list[Path]:
    rows = table_rows(results, keys)
    header = ["run", *keys, *(c for c, _ in COLUMNS), "status"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in header})
    (out / SWEEP_CSV).write_text(buf.getvalue(), encoding="utf-8")

    labels = ["run", *keys, *(label for _, label in COLUMNS), "status"]
    md = ["| " + " | ".join(labels) + " |", "|" + "---|" * len(labels)]
    for row in rows:
        md.append("| " + " | ".join(_cell(row.get(k)) for k in header) + " |")
    (out / SWEEP_MD).write_text(f"# Sweep on {data}\n\n" + "\n".join(md) + "\n", encoding="utf-8")

    ok = [r for r in rows if r.get("total_pnl") is not None]
    best = max(ok, key=lambda r: r["total_pnl"])["run"] if ok else None
    body = []
    for row in rows:
        cells = []
        for k in header:
            text = escape(_cell(row.get(k)))
            if k == "run" and row["status"] == "ok":
                text = f"<a href='runs/{escape(row['run'])}/report.html'>{text}</a>"
            cells.append(f"<td>{text}</td>")
        cls = " class='best'" if row["run"] == best else ""
        body.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    html = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sweep</title><style>
body {{ font-family: 'DejaVu Sans', Arial, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; font-size: 12px; }} td, th {{ padding: 4px 10px; border-bottom: 1px solid #e4e4e4; text-align: right; }}
th {{ border-bottom: 2px solid #bbb; }} td:first-child, th:first-child {{ text-align: left; }} tr.best {{ background: #e9f6ee; }}
</style></head><body><h1>Sweep on {escape(data)}</h1>
<p>{len(rows)} run(s); the best total P&amp;L is highlighted. Each run links to its report.</p>
<table><tr>{"".join(f"<th>{escape(label)}</th>" for label in labels)}</tr>{"".join(body)}</table></body></html>
"""
    (out / SWEEP_HTML).write_text(html, encoding="utf-8")
    return [out / SWEEP_CSV, out / SWEEP_MD, out / SWEEP_HTML]


def run_sweep(tasks: list[Task], executor, out: Path, keys: list[str], data: str,
              on_done: Callable[[int, int, Task, dict | BaseException], None] | None = None) -> list[dict]:
    """Run every task on `executor`, write each run's files under out/runs/ as it finishes, then the tables.
    A KeyboardInterrupt stops waiting, and the tables are still written for the runs that finished."""
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    try:
        for i, (task, outcome) in enumerate(executor.map_unordered(run_task, tasks), 1):
            if isinstance(outcome, BaseException):
                log.error("sweep run %s failed: %s", task.name, outcome)
                results.append({"name": task.name, "changed": task.changed, "metrics": None,
                                "status": f"failed: {type(outcome).__name__}: {outcome}"})
            else:
                run_dir = out / "runs" / task.name
                run_dir.mkdir(parents=True, exist_ok=True)
                for name, text in outcome["files"].items():
                    (run_dir / name).write_text(text, encoding="utf-8")
                results.append({"name": task.name, "changed": task.changed, "metrics": outcome["metrics"],
                                "status": "interrupted" if outcome["metrics"].get("interrupted") else "ok"})
            if on_done is not None:
                on_done(i, len(tasks), task, outcome)
    finally:
        done = {r["name"] for r in results}
        results += [{"name": t.name, "changed": t.changed, "metrics": None, "status": "not run"}
                    for t in tasks if t.name not in done]
        write_tables(out, results, keys, data)
    return results
