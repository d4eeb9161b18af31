"""Benchmark: a backtest parameter sweep on a local Dask cluster, 16 combinations on 2 workers against 8 on 1.

Target (issue 23): 16 combinations on a local Dask cluster with 2 workers take <= 2x the time of 8 combinations
on one (the sweep scales with the workers: ideal 1.0, 2.0 means the second worker bought nothing).

A stretch of 5-second simulator snapshots (~1,950 options each, as `benchmarks/backtest.py`) is recorded first
(not timed). Then, for each case, a `distributed.LocalCluster(n_workers=N, threads_per_worker=1, processes=True)`
is started, each worker is warmed with one backtest of the stretch (imports, numba caches: a long-lived cluster
has them; `--cold` skips this), and the sweep is timed through the command line's own code path,
`workstation.cli.main(["backtest", DATA, "--sweep", ..., "--executor", "dask://127.0.0.1:PORT"])` with the
LocalCluster's scheduler address. (a) 8 combinations (signals.min_edge_vol x 4, risk.max_position x 2) on 1
worker; (b) 16 (x 4, x 4) on 2 workers. The workers' CPU seconds are read before and after (psutil on each
worker) to show how many cores each case really used; the machine has 2 cores and may be shared.

Run: `.venv/bin/python benchmarks/sweep.py [--snapshots 120] [--cold]` — prints a table and writes
benchmarks/results/sweep.json.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from backtest import record  # benchmarks/backtest.py: the simulator stretch it replays

RESULTS = Path(__file__).resolve().parent / "results" / "sweep.json"
TARGET_RATIO = 2.0
EDGES = "signals.min_edge_vol=0.5,0.75,1.0,1.25"
POSITIONS = {8: "risk.max_position=20,30", 16: "risk.max_position=20,30,40,50"}
CONFIG = """\
market:
  snapshot_interval_s: 5
  strike_window: 0.25
  simulator:
    start_date: 2025-10-01
risk:
  allow_uncovered_shorts: true
"""


def worker_cpu_s() -> float:
    """CPU seconds (user + system) this Dask worker process has used so far (run on each worker)."""
    import psutil
    t = psutil.Process().cpu_times()
    return t.user + t.system


def warm(data: str, config: str) -> float:
    """One backtest of the stretch on this worker: imports and numba caches loaded (run on each worker)."""
    from workstation.backtest.sweep import Task, run_task
    from workstation.config import load_settings
    t0 = time.perf_counter()
    run_task(Task("warm", {}, load_settings(Path(config)).model_dump(mode="json"), data, None, None))
    return time.perf_counter() - t0


def warm_each(client, data: Path, config: Path) -> dict[str, float]:
    """`warm` once on every worker (as a task: a backtest runs its own event loop, which client.run cannot)."""
    workers = list(client.scheduler_info()["workers"])
    futures = {w: client.submit(warm, str(data), str(config), workers=[w], allow_other_workers=False, pure=False,
                                key=f"warm-{i}") for i, w in enumerate(workers)}
    return {w: f.result() for w, f in futures.items()}


def timed_sweep(workers: int, combos: int, data: Path, config: Path, out: Path, cold: bool) -> dict:
    """Start a LocalCluster of `workers`, optionally warm it, time `combos` runs through the CLI's dask path."""
    from distributed import Client, LocalCluster

    from workstation.cli import main as cli_main
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.WARNING) as cluster, Client(cluster) as client:
        address = cluster.scheduler_address                       # tcp://127.0.0.1:PORT
        executor = "dask://" + address.removeprefix("tcp://")
        warm_s = {} if cold else warm_each(client, data, config)
        cpu0 = client.run(worker_cpu_s)
        load0 = os.getloadavg()
        t0 = time.perf_counter()
        rc = cli_main(["backtest", str(data), "--config", str(config), "--out", str(out), "--log-level", "WARNING",
                       "--sweep", EDGES, "--sweep", POSITIONS[combos], "--executor", executor])
        wall = time.perf_counter() - t0
        cpu1 = client.run(worker_cpu_s)
        load1 = os.getloadavg()
    if rc != 0 and not (out / "sweep.csv").exists():
        raise SystemExit(f"sweep on {workers} worker(s) failed: exit {rc} (see the lines above)")
    with open(out / "sweep.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ok = sum(1 for r in rows if r["status"] == "ok")
    if rc != 0 or ok != combos:
        raise SystemExit(f"sweep on {workers} worker(s) failed: exit {rc}, {ok}/{combos} runs ok "
                         f"({[r['status'] for r in rows if r['status'] != 'ok'][:3]})")
    cpu = sum(cpu1[w] - cpu0[w] for w in cpu1)
    return {"workers": workers, "combinations": combos, "executor": executor, "wall_s": round(wall, 2),
            "per_run_s": round(wall / combos, 3), "worker_cpu_s": round(cpu, 2),
            "cores_used": round(cpu / wall, 2), "warm_s": {k: round(v, 2) for k, v in warm_s.items()},
            "load_before": [round(x, 2) for x in load0], "load_after": [round(x, 2) for x in load1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snapshots", type=int, default=120, help="snapshots in the recorded stretch (default 120)")
    ap.add_argument("--cold", action="store_true", help="do not warm the workers before timing")
    args = ap.parse_args()
    logging.getLogger("distributed").setLevel(logging.WARNING)
    load_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp_name:
        tmp = Path(tmp_name)
        for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):   # no user overrides, logs in tmp
            os.environ[var] = str(tmp / var.lower())
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        config = tmp / "bench.yaml"
        config.write_text(CONFIG, encoding="utf-8")
        data = tmp / "day"
        logging.disable(logging.INFO)
        t0 = time.perf_counter()
        snapshots, options = asyncio.run(record(data, args.snapshots))
        record_s = time.perf_counter() - t0
        logging.disable(logging.NOTSET)
        print(f"recorded {snapshots} snapshots of ~{options:,.0f} options in {record_s:.1f} s; load {load_start}",
              file=sys.stderr, flush=True)
        one = timed_sweep(1, 8, data, config, tmp / "sweep8", args.cold)
        print(f"(a) 8 on 1 worker: {one['wall_s']:.1f} s", file=sys.stderr, flush=True)
        two = timed_sweep(2, 16, data, config, tmp / "sweep16", args.cold)
        print(f"(b) 16 on 2 workers: {two['wall_s']:.1f} s", file=sys.stderr, flush=True)
    load_end = [round(x, 2) for x in os.getloadavg()]
    ratio = two["wall_s"] / one["wall_s"]
    ok = ratio <= TARGET_RATIO
    print(f"Dask sweep benchmark ({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load {load_start} -> {load_end}; {snapshots} snapshots of ~{options:,.0f} options per run, "
          f"workers {'cold' if args.cold else 'warmed'})")
    print(f"  {'case':<34}{'wall':>9}{'per run':>10}{'worker CPU':>12}{'cores used':>12}")
    for label, r in (("(a) reference: 8 runs, 1 worker", one), ("(b) ours: 16 runs, 2 workers", two)):
        print(f"  {label:<34}{r['wall_s']:>8.1f}s{r['per_run_s']:>9.2f}s{r['worker_cpu_s']:>11.1f}s"
              f"{r['cores_used']:>12.2f}")
    print(f"  {'ratio (b)/(a)':<34}{ratio:>9.2f}   target <= {TARGET_RATIO:.1f} (ideal 1.0): "
          f"{'PASS' if ok else f'MISS by {ratio - TARGET_RATIO:.2f}'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "snapshots": snapshots, "options_per_snapshot": round(options), "record_s": round(record_s, 1),
        "warmed": not args.cold, "one_worker_8": one, "two_workers_16": two, "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO, "pass": ok, "sweeps": [EDGES, POSITIONS[8], POSITIONS[16]],
        "load_average_start": load_start, "load_average_end": load_end,
        "machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }, indent=2) + "\n", encoding="utf-8")
    print(f"written {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
