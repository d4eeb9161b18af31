"""`python main.py backtest DATA [--config FILE] [--from DATE] [--to DATE] --out DIR [--sweep KEY=V1,V2 ...]
[--executor local|dask://HOST:PORT]`.

Exit codes: 0 done, 1 nothing replayed or every sweep run failed, 2 bad arguments (data, dates, sweep keys or
values, executor) or a data file refused (corrupt, truncated, mostly bad rows: one line naming the file),
130 stopped by Ctrl-C (the partial report is written first). Bad rows and bad snapshots are skipped and counted.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from workstation.config import ConfigError, Settings
from workstation.storage.integrity import StorageError

from .progress import Progress
from .report import build_report, hit_rate_text, ratios_text
from .runner import backtest_settings, run
from .source import SnapshotSource
from .sweep import SweepError, Task, combinations, make_executor, parse_executor, parse_sweeps, run_name, run_sweep

log = logging.getLogger(__name__)
EXIT_OK, EXIT_EMPTY, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@contextmanager
def quiet_engine_logs() -> Iterator[None]:
    """The engine logs every exit and timeout at INFO: fine live, a flood at replay speed (trades.csv has them).
    Unless the root logger is at DEBUG, raise the engine's loggers to WARNING for the run."""
    names = ("workstation.engine", "workstation.execution", "workstation.strategy", "workstation.risk")
    loggers = [logging.getLogger(n) for n in names]
    before = [lg.level for lg in loggers]
    if logging.getLogger().level > logging.DEBUG:
        for lg in loggers:
            lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, before):
            lg.setLevel(level)


@contextmanager
def ctrl_c_stops(stop: threading.Event) -> Iterator[None]:
    """First Ctrl-C sets `stop` (finish the snapshot, write the partial report); a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if stop.is_set():
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after this snapshot (Ctrl-C again to abort)...", file=sys.stderr)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_backtest(settings: Settings, args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        source = SnapshotSource.from_settings(Path(args.data), backtest_settings(settings), args.date_from, args.date_to)
        source.check()
        sweeps = parse_sweeps(getattr(args, "sweep", None) or [], settings)
        parse_executor(getattr(args, "executor", "local"))
        combos = combinations(settings, sweeps) if sweeps else []
    except ConfigError as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (SweepError, ValueError, FileNotFoundError, StorageError) as exc:   # StorageError: a bad data file
        print(f"backtest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if combos:
        return _sweep(combos, [k for k, _ in sweeps], args, out)
    return _single(settings, args, out)


def _single(settings: Settings, args: argparse.Namespace, out: Path) -> int:
    stop = threading.Event()
    bar = Progress("backtest", "snapshots")
    with ctrl_c_stops(stop), quiet_engine_logs():
        result = run(settings, Path(args.data), args.date_from, args.date_to, progress=bar.update,
                     should_stop=stop.is_set)
    bar.close()
    report = build_report(result, title=f"Backtest of {Path(args.data).name}")
    report.write(out)
    m = report.metrics
    print(f"{'partial ' if result.interrupted else ''}backtest: {result.snapshots} snapshots in {result.elapsed_s:.1f} s; "
          f"P&L {m['pnl']['total']:,.2f} $ (fees {m['fees']:,.2f}), {m['trades']['total']} trades, "
          f"hit rate {hit_rate_text(m['hit_rate'], m['trades']['closed'])}, max drawdown {m['max_drawdown']:,.2f} $, "
          f"{ratios_text(m)}")
    print(f"report: {out / 'report.html'} (metrics.json, trades.csv beside it)")
    if result.skipped:
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(result.skipped.items()))
        print(f"data: {sum(result.skipped.values()):,} skipped ({counts}); first: {result.skipped_examples[0]}"
              if result.skipped_examples else f"data: skipped {counts}")
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.snapshots else EXIT_EMPTY


def _sweep(combos, keys: list[str], args: argparse.Namespace, out: Path) -> int:
    tasks = [Task(run_name(i, changed), changed, s.model_dump(mode="json"), str(Path(args.data).resolve()),
                  args.date_from, args.date_to) for i, (changed, s) in enumerate(combos, 1)]
    bar = Progress("sweep", "runs")
    bar.update(0, len(tasks))
    failed: list[str] = []

    def on_done(done: int, total: int, task: Task, outcome) -> None:
        if isinstance(outcome, BaseException):
            failed.append(task.name)
        bar.update(done, total)

    print(f"sweep: {len(tasks)} runs on {args.executor}", file=sys.stderr)
    try:
        executor = make_executor(args.executor)
        results = run_sweep(tasks, executor, out, keys, str(args.data), on_done)
    except SweepError as exc:
        bar.close()
        print(f"backtest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        bar.close()
        print(f"sweep interrupted: partial table in {out / 'sweep.html'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    bar.close()
    ok = [r for r in results if r["status"] == "ok"]
    print(f"sweep: {len(ok)}/{len(tasks)} runs done; table: {out / 'sweep.html'} (sweep.csv, sweep.md)")
    for name in failed:
        print(f"  failed: {name}", file=sys.stderr)
    return EXIT_OK if ok else EXIT_EMPTY
